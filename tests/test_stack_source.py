"""The source stack: the shared anchor from the target, the Link, and the verification steps."""

from __future__ import annotations

import re
from typing import Any

import pytest

from driver.offline import offline_cluster
from support.errors import ConfigError
from tests import certificate_audit
from tests.conftest import (
    TARGET_CONTEXT,
    kubernetes_resources,
    provider_urn,
    run_refused,
    run_stack,
    source_config,
    target_outputs,
)
from tests.harness import Run

OWN = "organization/aes-linkerd2/target"

LINES = ["current", "linkerd-2.8"]


def up(line: str = "current", preview: bool = False, **overrides: object) -> Run:
    run = run_stack("source", source_config(line, **overrides), preview=preview)
    assert run.error is None, run.error
    return run


@pytest.mark.parametrize("line", LINES)
@pytest.mark.parametrize("preview", [False, True])
def test_source_registers_link_and_checks_on_its_own_provider(line: str, preview: bool) -> None:
    run = up(line, preview)
    provider = provider_urn(run, "cluster")
    for resource in kubernetes_resources(run):
        assert resource.provider == provider, resource.name
    assert run.one("Secret", "cluster-credentials-target", "linkerd-multicluster").is_secret("data")
    checks = {c.name for c in run.find("Command") if c.name.startswith("multicluster-source-")}
    assert checks == {"multicluster-source-multicluster-check", "multicluster-source-gateways"}


def test_source_keeps_edge_stacks_port_names() -> None:
    assert up().one("Service", "edge-stack", "ambassador").inputs["spec"]["ports"][0]["name"] == "http"


def test_source_trusts_the_targets_anchor_and_makes_its_own_issuer_in_its_cluster() -> None:
    run = up()
    refs = run.mocks.stack_references["organization/aes-linkerd2/target"]
    roots = run.one("ConfigMap", "linkerd-identity-trust-roots").inputs["data"]["ca-bundle.crt"]
    assert roots.strip() == refs["trustAnchorPem"].strip()
    assert run.find("Secret", "linkerd-identity-issuer") == []
    assert run.find("Command", "identity-trust-anchor") == [], "only the target makes an anchor"
    issuer = run.one("Command", "identity-source-issuer")
    python = issuer.inputs["create"].split(" ")[0]
    # Reads the anchor's Secret from the target cluster, writes its own issuer into the source cluster.
    assert issuer.inputs["create"] == (
        f"{python} -m support.certificates issuer --secret linkerd-trust-anchor --kubectl kubectl --context source-ctx "
        "--anchor-context target-ctx --common-name identity.linkerd.cluster.local --valid-hours 6600 "
        "--scheme kubernetes.io/tls"
    )
    assert issuer.inputs["triggers"] == [refs["trustAnchorPem"], "0"]
    assert run.depends(issuer, on=run.one("Namespace", "linkerd"))
    assert run.depends(run.one("Deployment", "linkerd-identity", "linkerd"), on=issuer)
    secret = certificate_audit.cluster_secret("source-ctx", "linkerd-identity-issuer")
    certificate_audit.assert_issuer_secret(secret, refs["trustAnchorPem"], "kubernetes.io/tls")
    # Nothing written into the target cluster: the source only reads the anchor there.
    assert offline_cluster("target-ctx").get("linkerd-identity-issuer") is None
    assert run.outputs["trustAnchorPem"] == refs["trustAnchorPem"]
    assert list(run.outputs["identityIssuers"]) == ["source"] and run.secret_outputs == set()


def test_source_declares_the_service_mirror_for_the_target_link() -> None:
    run = up()
    assert run.one("Deployment", "controller-target", "linkerd-multicluster")
    [link] = [c for c in run.mocks.commands if "link-gen" in c]
    expected = "multicluster link-gen --cluster-name target --gateway-name edge-stack --gateway-namespace ambassador"
    assert f"--context {TARGET_CONTEXT} {expected}" in link


def test_checks_depend_on_everything_they_verify() -> None:
    run = up()
    check = run.one("Command", "multicluster-source-multicluster-check")
    for resource in (
        run.one("Link"),
        run.one("Deployment", "edge-stack", "ambassador"),
        run.one("NamespacePatch"),
        run.one("Deployment", "linkerd-identity"),
    ):
        assert run.depends(check, on=resource), resource.name


def test_a_target_built_for_another_line_fails_the_update() -> None:
    config = source_config()
    outputs = target_outputs("linkerd-2.8")
    run = run_stack("source", config, stack_references={config["targetStack"]: outputs})
    assert str(run.error) == (
        "config aes-linkerd2:versionLine = 'current': the target stack organization/aes-linkerd2/target uses version line "
        "'linkerd-2.8'"
    )
    # Read and refused before the first registration, as every other refusal.
    assert run.registrations == []


@pytest.mark.parametrize(
    ("outputs", "reason"),
    [
        ({}, "the target stack has no outputs: `up` the target stack first"),
        ({"versionLine": "current", "clusterName": "target", "context": "target-ctx"},
         "the target stack lacks trustAnchorPem, trustAnchorSecret, gatewayName, gatewayNamespace"),
    ],
)  # fmt: skip
def test_a_target_not_yet_up_is_refused_before_anything(outputs: dict[str, str], reason: str) -> None:
    config = source_config()
    run = run_stack("source", config, stack_references={config["targetStack"]: outputs})
    assert str(run.error) == f"config aes-linkerd2:targetStack = 'organization/aes-linkerd2/target': {reason}"
    assert run.registrations == []


def test_a_target_with_the_same_context_fails_the_update() -> None:
    config = source_config()
    outputs = {**target_outputs(), "context": "source-ctx"}
    run = run_stack("source", config, stack_references={config["targetStack"]: outputs})
    assert "uses the same context" in str(run.error)


@pytest.mark.parametrize("line", LINES)
def test_every_certificate_applied_is_the_targets_anchor_or_the_issuer_it_signed(line: str) -> None:
    run = up(line)
    refs = run.mocks.stack_references["organization/aes-linkerd2/target"]
    certificate_audit.assert_only_the_real_identity(run, refs["trustAnchorPem"])


def test_the_link_waits_for_its_crd_and_the_running_control_plane() -> None:
    run = up()
    link = run.one("Link")
    assert run.depends(link, on=run.one("CustomResourceDefinition", "links.multicluster.linkerd.io"))
    assert run.depends(link, on=run.one("Deployment", "linkerd-identity", "linkerd"))


def pod_to_pod_target(modes: dict[str, str]) -> dict[str, dict[str, object]]:
    outputs = {**target_outputs(), "exportedServices": list(modes), "exportedServiceModes": modes}
    return {"organization/aes-linkerd2/target": outputs}


def test_pod_to_pod_exports_only_link_without_a_gateway_and_verify_without_listing_gateways() -> None:
    modes = {"default/qotm-linkerd2": "remote-discovery", "shop/cart": "federated"}
    run = run_stack("source", source_config(flatNetwork="true"), stack_references=pod_to_pod_target(modes))
    assert run.error is None, run.error
    [link] = [c for c in run.mocks.commands if "link-gen" in c]
    assert link.endswith(f"--context {TARGET_CONTEXT} multicluster link-gen --cluster-name target --gateway=false")
    checks = [c.name for c in run.find("Command") if c.name.startswith("multicluster-source-")]
    assert checks == ["multicluster-source-multicluster-check"]
    assert run.depends(run.one("Command", "multicluster-source-multicluster-check"), on=run.one("Link"))


def test_one_gateway_export_among_pod_to_pod_ones_keeps_the_gateway() -> None:
    modes = {"default/qotm-linkerd2": "gateway", "shop/cart": "remote-discovery"}
    run = run_stack("source", source_config(flatNetwork="true"), stack_references=pod_to_pod_target(modes))
    assert run.error is None, run.error
    [link] = [c for c in run.mocks.commands if "link-gen" in c]
    assert link.endswith("link-gen --cluster-name target --gateway-name edge-stack --gateway-namespace ambassador")
    checks = {c.name for c in run.find("Command") if c.name.startswith("multicluster-source-")}
    assert checks == {"multicluster-source-multicluster-check", "multicluster-source-gateways"}


def test_a_target_from_before_modes_links_through_its_gateway() -> None:
    """A target stack whose outputs have no exportedServiceModes exported everything through the gateway."""
    outputs = {**target_outputs(), "exportedServices": ["default/qotm-linkerd2"]}
    run = run_stack("source", source_config(), stack_references={"organization/aes-linkerd2/target": outputs})
    assert run.error is None, run.error
    assert any(c.endswith("--gateway-name edge-stack --gateway-namespace ambassador") for c in run.mocks.commands)


def test_pod_to_pod_exports_outside_the_meshed_namespaces_are_said(monkeypatch: pytest.MonkeyPatch) -> None:
    """Their mirrors have no Endpoints: only meshed callers reach them. A warning, the update goes on."""
    said: list[str] = []
    monkeypatch.setattr("pulumi.log.warn", lambda message, *args, **kwargs: said.append(message))
    modes = {"default/qotm-linkerd2": "remote-discovery", "shop/cart": "federated", "shop/web": "gateway"}
    run = run_stack("source", source_config(flatNetwork="true"), stack_references=pod_to_pod_target(modes))
    assert run.error is None, run.error
    assert [m for m in said if "meshedNamespaces" in m] == [
        "shop/cart is exported federated: its mirror in namespace shop has no Endpoints, so only meshed pods reach it, "
        "and shop is not one of this stack's meshedNamespaces"
    ]


ROTATED = "linkerd-service-mirror-remote-access-3"


@pytest.mark.parametrize("preview", [False, True])
def test_the_link_carries_the_token_of_the_account_the_target_exports(preview: bool) -> None:
    outputs = {**target_outputs(), "linkServiceAccount": ROTATED, "linkCredentials": 3}
    run = run_stack("source", source_config(), preview=preview, stack_references={OWN: outputs})
    assert run.error is None, run.error
    [link] = [c for c in run.mocks.commands if "link-gen" in c]
    assert link.endswith(
        f"multicluster link-gen --cluster-name target --service-account-name {ROTATED} "
        "--gateway-name edge-stack --gateway-namespace ambassador"
    )
    secret = run.one("Secret", "cluster-credentials-target", "linkerd-multicluster")
    assert secret.is_secret("data", "kubeconfig")
    # The service mirror reads its credentials only when it starts: its pods go once the new Secret is applied.
    reload = run.one("Command", "multicluster-source-reload-mirror")
    assert reload.inputs["create"] == (
        "kubectl --context source-ctx --namespace linkerd-multicluster delete pod "
        "--selector component=controller,mirror.linkerd.io/cluster-name=target --wait=false"
    )
    assert "delete" not in reload.inputs and reload.inputs["triggers"] == [ROTATED]
    assert run.depends(reload, on=secret) and run.depends(reload, on=run.one("Link"))
    assert run.depends(reload, on=run.one("Deployment", "controller-target", "linkerd-multicluster"))
    assert run.depends(run.one("Command", "multicluster-source-multicluster-check"), on=reload)
    # What `status` compares with the target's current account.
    assert run.outputs["linkServiceAccount"] == ROTATED


def test_a_target_on_the_default_account_links_as_before_with_no_reload() -> None:
    """A target from before rotation (no linkServiceAccount) and one at generation 0 plan the same as ever."""
    for extra in ({}, {"linkServiceAccount": "linkerd-service-mirror-remote-access-default", "linkCredentials": 0}):
        run = run_stack("source", source_config(), stack_references={OWN: {**target_outputs(), **extra}})
        assert run.error is None, run.error
        [link] = [c for c in run.mocks.commands if "link-gen" in c]
        assert "--service-account-name" not in link
        assert run.find("Command", "multicluster-source-reload-mirror") == []
        assert run.outputs["linkServiceAccount"] == "linkerd-service-mirror-remote-access-default"


def test_the_links_probe_service_listens_on_the_targets_probe_port() -> None:
    """Found by the real service mirror (e2e/test_mirror.py): the probe Service must listen where the Link's probe dials."""
    refs = {"organization/aes-linkerd2/target": {**target_outputs(), "probePort": 8080}}
    run = run_stack("source", source_config(), stack_references=refs)
    assert run.error is None, run.error
    probe = run.one("Service", "probe-target", "linkerd-multicluster")
    assert [(p["name"], p["port"]) for p in probe.inputs["spec"]["ports"]] == [("mc-probe", 8080)]
    [install] = [c for c in run.mocks.commands if "multicluster install" in c]
    assert "--set 'controllers[0].gateway.probe.port=8080'" in install
    # A target from before the output: the chart's port, as before.
    older = up()
    assert [
        (p["name"], p["port"]) for p in older.one("Service", "probe-target", "linkerd-multicluster").inputs["spec"]["ports"]
    ] == [("mc-probe", 4191)]


@pytest.mark.parametrize("port", ["80", 0, 70000, 80.5, True])
def test_a_target_probe_port_that_is_no_port_is_refused(port: object) -> None:
    refs = {"organization/aes-linkerd2/target": {**target_outputs(), "probePort": port}}
    run = run_refused("source", source_config(), stack_references=refs)
    assert isinstance(run.error, ConfigError) and run.error.key == "targetStack" and "probePort" in str(run.error), run.error


def rotated_target(generation: int, modes: dict[str, str]) -> dict[str, dict[str, object]]:
    outputs = {
        **pod_to_pod_target(modes)[OWN],
        "linkServiceAccount": f"linkerd-service-mirror-remote-access-{generation}",
        "linkCredentials": generation,
    }
    return {OWN: outputs}


@pytest.mark.parametrize("preview", [False, True])
@pytest.mark.parametrize("mode", ["remote-discovery", "federated"])
def test_a_rotation_rolls_the_destination_controller_once_its_credentials_are_applied(preview: bool, mode: str) -> None:
    """It reads the Link's credentials Secret for pod-to-pod exports only when it starts (cluster_store.go handles no update)."""
    modes = {"default/qotm-linkerd2": "gateway", "shop/cart": mode}
    run = run_stack("source", source_config(flatNetwork="true"), preview=preview, stack_references=rotated_target(3, modes))
    assert run.error is None, run.error
    patch = run.one("DeploymentPatch", "multicluster-source-reload-destination")
    assert patch.inputs == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "linkerd-destination", "namespace": "linkerd"},
        "spec": {
            "template": {
                "metadata": {
                    "annotations": {"aes-linkerd2.io/link-credentials": f"target: generation 3, {ROTATED}"},
                }
            }
        },
    }
    assert not patch.is_secret("spec")
    destination = run.one("Deployment", "linkerd-destination", "linkerd")
    assert patch.parent == run.one("MulticlusterSource").urn and patch.provider == provider_urn(run, "cluster")
    assert patch.deleted_with == destination.urn
    # After the Secret it must read (the control plane's own Deployment is applied before the Link).
    for after in (destination, run.one("Secret", "cluster-credentials-target", "linkerd"), run.one("Link")):
        assert run.depends(patch, on=after), after.name
    assert not run.depends(destination, on=patch)
    assert run.depends(run.one("Command", "multicluster-source-multicluster-check"), on=patch)
    assert "linkerd.io/link-credentials" not in str(destination.inputs), "the control plane's Deployment is unchanged"


def test_the_next_generation_changes_one_field_of_the_destination_and_nothing_of_its_deployment() -> None:
    """What the preview of the next rotation shows on the source's control plane: the patch's annotation alone."""
    same = rotated_target(3, {"shop/cart": "remote-discovery"})[OWN]  # one trust anchor for both previews

    def planned(generation: int) -> tuple[dict[str, Any], dict[str, Any]]:
        account = f"linkerd-service-mirror-remote-access-{generation}"
        refs = {OWN: {**same, "linkServiceAccount": account, "linkCredentials": generation}}
        run = run_stack("source", source_config(flatNetwork="true"), preview=True, stack_references=refs)
        assert run.error is None, run.error
        destination = run.one("Deployment", "linkerd-destination", "linkerd")
        # The one field the chart fills anew at every render, kept as first applied (ignore_changes).
        assert destination.ignore_changes == ['spec.template.metadata.annotations["checksum/config"]']
        destination.inputs["spec"]["template"]["metadata"]["annotations"].pop("checksum/config")
        return destination.inputs, run.one("DeploymentPatch", "multicluster-source-reload-destination").inputs

    (deployment_3, patch_3), (deployment_4, patch_4) = planned(3), planned(4)
    assert deployment_3 == deployment_4
    annotation = "aes-linkerd2.io/link-credentials"
    assert patch_3["spec"]["template"]["metadata"]["annotations"] == {annotation: f"target: generation 3, {ROTATED}"}
    patch_3["spec"]["template"]["metadata"]["annotations"][annotation] = (
        "target: generation 4, linkerd-service-mirror-remote-access-4"
    )
    assert patch_3 == patch_4


@pytest.mark.parametrize(
    ("generation", "modes"),
    [
        (3, {"default/qotm-linkerd2": "gateway"}),  # through the gateway: the destination reads no Link credentials
        (0, {"shop/cart": "remote-discovery"}),  # never rotated: nothing to roll
    ],
)
def test_the_destination_is_left_alone_without_a_rotated_pod_to_pod_link(generation: int, modes: dict[str, str]) -> None:
    refs = rotated_target(generation, modes)
    if generation == 0:
        refs[OWN]["linkServiceAccount"] = "linkerd-service-mirror-remote-access-default"
    run = run_stack("source", source_config(flatNetwork="true"), stack_references=refs)
    assert run.error is None, run.error
    assert run.find("DeploymentPatch", "multicluster-source-reload-destination") == []


@pytest.mark.parametrize("generation", ["1", -1, 1.5, True])
def test_a_target_link_credentials_that_is_no_generation_is_refused(generation: object) -> None:
    refs = {OWN: {**target_outputs(), "linkCredentials": generation}}
    run = run_refused("source", source_config(), stack_references=refs)
    assert isinstance(run.error, ConfigError) and run.error.key == "targetStack", run.error
    # Numbers reach the program as floats, as from the engine: -1 is said -1.0.
    assert re.search(r"the target stack's linkCredentials \S+ is not a generation$", str(run.error)), run.error
