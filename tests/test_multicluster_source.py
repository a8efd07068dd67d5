"""MulticlusterSource: the Link generated against the target, applied to the source; then the checks."""

from __future__ import annotations

import base64

import pulumi
import pulumi_kubernetes as k8s
import pytest

from components.multicluster_source import MulticlusterSource, MulticlusterSourceArgs
from support import upstream
from support.config_model import ClusterAccess
from support.linkerd_cli import LinkerdCli
from tests.conftest import provider_urn
from tests.fake_linkerd import CURRENT_VERSION, PAGE_VERSION, FakeLinkerd
from tests.harness import Run, run_program


def build(
    line: upstream.VersionLine = upstream.CURRENT,
    *,
    verify: bool = True,
    addresses: tuple[str, ...] = (),
    preview: bool = False,
    api_server_address: str | None = None,
    gateway: bool = True,
) -> Run:
    def program() -> None:
        provider = k8s.Provider("source-cluster", context="source-ctx")
        extension = k8s.core.v1.Namespace(
            "mc", metadata={"name": "linkerd-multicluster"}, opts=pulumi.ResourceOptions(provider=provider)
        )
        mesh = k8s.apps.v1.DeploymentPatch("mesh", metadata={"name": "edge"}, opts=pulumi.ResourceOptions(provider=provider))
        MulticlusterSource(
            "multicluster-source",
            MulticlusterSourceArgs(
                line=line,
                cli=LinkerdCli(binary="linkerd", cluster=ClusterAccess(context="source-ctx")),
                target_cli=LinkerdCli(binary="linkerd", cluster=ClusterAccess(context="target-ctx", kubeconfig="/t/config")),
                target_cluster_name="target",
                gateway_name="edge-stack",
                gateway_namespace="ambassador",
                gateway_addresses=addresses,
                gateway=gateway,
                api_server_address=api_server_address,
                control_plane=[extension],
                verify=verify,
                verify_after=[mesh],
            ),
            opts=pulumi.ResourceOptions(providers={"kubernetes": provider}),
        )

    run = run_program(program, linkerd=FakeLinkerd(PAGE_VERSION if line is upstream.PAGE else CURRENT_VERSION), preview=preview)
    assert run.error is None, run.error
    return run


@pytest.mark.parametrize("preview", [False, True])
def test_link_is_generated_against_the_target_with_the_edge_stack_gateway(preview: bool) -> None:
    run = build(addresses=("203.0.113.10",), preview=preview)
    assert run.mocks.commands == [
        "linkerd --kubeconfig /t/config --context target-ctx multicluster link-gen --cluster-name target "
        "--gateway-name edge-stack --gateway-namespace ambassador --gateway-addresses 203.0.113.10"
    ]
    component, provider = run.one("MulticlusterSource"), provider_urn(run, "source-cluster")
    secret = run.one("Secret", "cluster-credentials-target", "linkerd-multicluster")
    link = run.one("Link", "target", "linkerd-multicluster")
    for resource in (secret, link):
        assert resource.parent == component.urn and resource.provider == provider
        assert run.depends(resource, on=run.one("Namespace", "linkerd-multicluster"))
    assert secret.is_secret("data", "kubeconfig")
    assert "target-service-account-token" in base64.b64decode(secret.inputs["data"]["kubeconfig"]).decode()
    assert link.inputs["spec"]["gatewayIdentity"] == "edge-stack.ambassador.serviceaccount.identity.linkerd.cluster.local"


def test_page_line_links_without_naming_the_gateway() -> None:
    run = build(upstream.PAGE)
    assert run.mocks.calls == [["multicluster", "link", "--cluster-name", "target"]]
    assert run.one("Secret", "cluster-credentials-target").inputs["type"] == "mirror.linkerd.io/remote-kubeconfig"
    assert run.find("Link") == []
    check = run.one("Command", "multicluster-source-multicluster-check")
    assert check.inputs["create"] == "linkerd --context source-ctx check --multicluster"


def test_checks_run_last_in_order_on_the_source_and_fail_the_update_when_they_fail() -> None:
    run = build()
    check = run.one("Command", "multicluster-source-multicluster-check")
    gateways = run.one("Command", "multicluster-source-gateways")
    assert check.inputs["create"] == "linkerd --context source-ctx multicluster check"
    assert gateways.inputs["create"] == "linkerd --context source-ctx multicluster gateways"
    for command in (check, gateways):
        assert "delete" not in command.inputs
        # Both credentials Secrets link-gen writes: the service mirror's and the destination controller's.
        secrets = [run.one("Secret", "cluster-credentials-target", ns) for ns in ("linkerd-multicluster", "linkerd")]
        for after in (*secrets, run.one("Link"), run.one("Namespace"), run.one("DeploymentPatch")):
            assert run.depends(command, on=after), (command.name, after.name)
    assert run.depends(gateways, on=check)
    triggers = check.inputs["triggers"]
    assert triggers[:5] == ["target", "edge-stack", "ambassador", "", ""]
    # The Link as generated: a new one (credentials, gateway, probe) asks again; kept secret.
    assert len(triggers) == 6 and len(triggers[5]) == 64 and check.is_secret("triggers")


def test_checks_ask_again_when_what_they_verify_changes() -> None:
    first = build().one("Command", "multicluster-source-multicluster-check").inputs["triggers"]
    assert build().one("Command", "multicluster-source-multicluster-check").inputs["triggers"] == first
    moved = build(api_server_address="https://10.0.0.1:6443")
    assert moved.mocks.commands[0].endswith("link-gen --cluster-name target --api-server-address https://10.0.0.1:6443 "
                                            "--gateway-name edge-stack --gateway-namespace ambassador")  # fmt: skip
    assert moved.one("Command", "multicluster-source-multicluster-check").inputs["triggers"] != first


def test_verification_can_be_turned_off() -> None:
    assert build(verify=False).find("Command") == []


@pytest.mark.parametrize("preview", [False, True])
def test_preview_lists_the_link_and_its_credentials_as_planned_resources(preview: bool) -> None:
    """Registered at the component's top level, not inside an apply: a preview shows them like every other object."""
    run = build(preview=preview)
    component = run.one("MulticlusterSource").urn
    link, credentials = run.one("Link"), run.one("Secret", "cluster-credentials-target", "linkerd-multicluster")
    assert link.parent == component and credentials.parent == component
    for secret in run.find("Secret"):  # the destination controller's copy too
        assert secret.parent == component and (secret.is_secret("data") or secret.is_secret("stringData"))
    assert [r.kind for r in run.registrations if r.parent == component and r.type.startswith("kubernetes:")] != []
    # The checks wait for the Link itself, known when they are registered.
    check = run.one("Command", "multicluster-source-multicluster-check")
    assert run.depends(check, on=link) and run.depends(check, on=credentials)


@pytest.mark.parametrize("preview", [False, True])
def test_a_link_without_a_gateway_when_every_export_is_pod_to_pod(preview: bool) -> None:
    """link-gen --gateway=false: no gateway to name or address; `multicluster gateways` would list nothing."""
    run = build(addresses=("203.0.113.10",), gateway=False, preview=preview)
    assert run.mocks.commands == [
        "linkerd --kubeconfig /t/config --context target-ctx multicluster link-gen --cluster-name target --gateway=false"
    ]
    assert [c.name for c in run.find("Command")] == ["multicluster-source-multicluster-check"]
    check = run.one("Command", "multicluster-source-multicluster-check")
    # `linkerd multicluster check` skips the gateway's probe for a Link without one (its own rule).
    assert check.inputs["create"] == "linkerd --context source-ctx multicluster check"
    assert check.inputs["triggers"][:5] == ["target", "", "", "", ""]
    assert run.depends(check, on=run.one("Link"))
    assert all(run.depends(check, on=secret) for secret in run.find("Secret")) and len(run.find("Secret")) == 2
    # The triggers differ from the gateway's Link's: switching asks the checks again.
    with_gateway = build(addresses=("203.0.113.10",)).one("Command", "multicluster-source-multicluster-check")
    assert with_gateway.inputs["triggers"][:5] == ["target", "edge-stack", "ambassador", "203.0.113.10", ""]
