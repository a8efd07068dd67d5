"""LinkerdControlPlane: CRDs, then the HA control plane with the shared identity, then multicluster."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from typing import Any

import pulumi
import pulumi_command as command
import pulumi_kubernetes as k8s
import pytest
import yaml

from components.linkerd_control_plane import ControlPlaneIdentity, LinkerdControlPlane, LinkerdControlPlaneArgs
from driver.offline import cli_args, run_like_the_command_provider
from support import certificates, stand_ins, upstream
from support.config_model import ClusterAccess
from support.linkerd_cli import LinkerdCli
from tests.conftest import kubernetes_resources, provider_urn, real_linkerd
from tests.fake_linkerd import FakeLinkerd
from tests.harness import Run, run_program

ANCHOR = certificates.new_trust_anchor("root.linkerd.cluster.local", 10)


def identity(namespace: pulumi.Resource | None) -> ControlPlaneIdentity:
    """The real roots, and a Command standing for the one that writes the issuer Secret (in the namespace)."""
    issuer = command.local.Command(
        "identity-issuer", create="true", opts=pulumi.ResourceOptions(depends_on=[namespace] if namespace else [])
    )
    return ControlPlaneIdentity(trust_roots_pem=ANCHOR.cert_pem, issuer=issuer)


def build(line: upstream.VersionLine = upstream.CURRENT, *, ha: bool = True, links: tuple[str, ...] = ("target",)) -> Run:
    """The control plane as the real linkerd CLI of `line` renders it."""
    binary = real_linkerd(line)

    def program() -> None:
        provider = k8s.Provider("target-cluster", context="target-ctx")
        LinkerdControlPlane(
            "linkerd",
            LinkerdControlPlaneArgs(
                cli=LinkerdCli(binary=binary, cluster=ClusterAccess(context="target-ctx", kubeconfig="/k/config")),
                kubectl="kubectl",
                line=line,
                ha=ha,
                trust_domain="cluster.local",
                identity=identity,
                multicluster=True,
                links=links,
            ),
            opts=pulumi.ResourceOptions(providers={"kubernetes": provider}),
        )

    run = run_program(program)
    assert run.error is None, run.error
    return run


def minimal_control_plane() -> None:
    """The current line's control plane alone, without a provider or the extension."""
    LinkerdControlPlane(
        "linkerd",
        LinkerdControlPlaneArgs(
            cli=LinkerdCli(binary=real_linkerd(), cluster=ClusterAccess(context="c")),
            kubectl="kubectl",
            line=upstream.CURRENT,
            ha=True,
            trust_domain="cluster.local",
            identity=identity,
            multicluster=False,
        ),
    )


def test_renders_offline_with_the_pinned_cli_and_exact_flags() -> None:
    run = build()
    # The renders run at once, so in no fixed order: one of each.
    calls = {tuple(call[:2]): call for call in run.mocks.calls}
    assert len(calls) == len(run.mocks.calls) == 3
    assert calls["install", "--crds"] == ["install", "--crds", "--ignore-cluster", "--set", "installGatewayAPI=true"]
    install = calls["install", "--ignore-cluster"]
    files = {
        flag: install[install.index(flag) + 1]
        for flag in ("--identity-trust-anchors-file", "--identity-issuer-certificate-file", "--identity-issuer-key-file")
    }
    assert install == [
        "install",
        "--ignore-cluster",
        "--ha",
        "--identity-trust-domain",
        "cluster.local",
        "--identity-trust-anchors-file",
        files["--identity-trust-anchors-file"],
        "--identity-issuer-certificate-file",
        files["--identity-issuer-certificate-file"],
        "--identity-issuer-key-file",
        files["--identity-issuer-key-file"],
        "--disable-heartbeat",
    ]
    assert calls["multicluster", "install"] == [
        "multicluster",
        "install",
        "--ignore-cluster",
        "--gateway=false",
        "--set",
        "controllers[0].link.ref.name=target",
    ]
    # Every step runs against this stack's kubeconfig and context.
    binary = real_linkerd()
    assert all(c.startswith(f"{binary} --kubeconfig /k/config --context target-ctx ") for c in run.mocks.commands)
    # The CLI only ever sees public stand-ins, from a private directory that is gone once it has read them.
    folders = {os.path.dirname(path) for path in files.values()}
    assert len(folders) == 1 and not os.path.exists(folders.pop())
    assert "PRIVATE KEY" not in " ".join(run.mocks.commands)


def test_every_object_is_its_own_typed_resource_on_the_stack_provider() -> None:
    run = build()
    provider = provider_urn(run, "target-cluster")
    component = run.one("LinkerdControlPlane")
    resources = kubernetes_resources(run)
    registered = {(r.kind, r.namespace, r.object_name) for r in resources}
    # What the real release renders, one resource per object (the upgrade blob aside).
    assert len(registered) == len(resources) > 70
    assert registered >= {
        ("CustomResourceDefinition", None, "serviceprofiles.linkerd.io"),
        ("CustomResourceDefinition", None, "httproutes.gateway.networking.k8s.io"),
        ("Namespace", None, "linkerd"),
        ("ConfigMap", "linkerd", "linkerd-config"),
        ("ConfigMap", "linkerd", "linkerd-identity-trust-roots"),
        ("Deployment", "linkerd", "linkerd-identity"),
        ("Deployment", "linkerd", "linkerd-destination"),
        ("Deployment", "linkerd", "linkerd-proxy-injector"),
        ("Secret", "linkerd", "linkerd-proxy-injector-k8s-tls"),
        ("MutatingWebhookConfiguration", None, "linkerd-proxy-injector-webhook-config"),
        ("PodDisruptionBudget", "linkerd", "linkerd-identity"),
        ("Namespace", None, "linkerd-multicluster"),
        ("CustomResourceDefinition", None, "links.multicluster.linkerd.io"),
        ("Deployment", "linkerd-multicluster", "controller-target"),
        ("Server", "linkerd-multicluster", "controller"),
    }
    # The issuer Secret is written by its Command, never applied from the render.
    assert ("Secret", "linkerd", "linkerd-identity-issuer") not in registered
    for resource in resources:
        assert resource.provider == provider, resource.name
        assert resource.parent == component.urn, resource.name


def test_upgrade_blob_holding_the_issuer_key_is_not_applied() -> None:
    run = build()
    assert run.find("Secret", "linkerd-config-overrides") == []


def test_the_real_roots_replace_the_stand_in_and_the_render_is_an_external_issuers() -> None:
    run = build()
    roots = run.one("ConfigMap", "linkerd-identity-trust-roots").inputs["data"]["ca-bundle.crt"]
    assert roots.strip() == ANCHOR.cert_pem.strip()
    # linkerd-config's values: the anchor; the issuer as `install --identity-external-issuer` leaves it.
    values = yaml.safe_load(run.one("ConfigMap", "linkerd-config").inputs["data"]["values"])
    assert values["identityTrustAnchorsPEM"].strip() == ANCHOR.cert_pem.strip()
    assert values["identity"]["issuer"]["scheme"] == "kubernetes.io/tls"
    assert values["identity"]["issuer"]["tls"] == {"crtPEM": ""}
    identity_deployment = run.one("Deployment", "linkerd-identity")
    [container] = [c for c in identity_deployment.inputs["spec"]["template"]["spec"]["containers"] if c["name"] == "identity"]
    assert "-identity-scheme=kubernetes.io/tls" in container["args"]
    assert not any(arg == "-identity-scheme=linkerd.io/tls" for arg in container["args"])
    # The identity controller waits for its issuer's Command, which waits for the namespace.
    issuer = run.one("Command", "identity-issuer")
    assert run.depends(identity_deployment, on=issuer)
    assert run.depends(issuer, on=run.one("Namespace", "linkerd"))
    # Every Deployment starts after the roots: the identity controller reads them once, at its start.
    roots_map = run.one("ConfigMap", "linkerd-identity-trust-roots")
    deployments = [r for r in kubernetes_resources(run) if r.type == "kubernetes:apps/v1:Deployment"]
    names = {d.name.rpartition("/")[2] for d in deployments}
    assert names >= {"linkerd-identity", "linkerd-destination", "linkerd-proxy-injector"}
    assert all(run.depends(deployment, on=roots_map) for deployment in deployments)
    anchor_hash = hashlib.sha256(ANCHOR.cert_pem.encode()).hexdigest()
    annotations = run.one("Deployment", "linkerd-destination").inputs["spec"]["template"]["metadata"]["annotations"]
    assert annotations["linkerd.io/trust-root-sha256"] == anchor_hash
    stand_in_anchor, stand_in_issuer = certificates.placeholder_identity("cluster.local")
    for resource in kubernetes_resources(run):
        for text in _strings(resource.inputs):
            assert not stand_ins.mentions(text, [stand_in_anchor.cert_pem, stand_in_issuer.cert_pem, stand_in_issuer.key_pem]), (
                resource.name
            )


def test_the_page_line_keeps_its_own_scheme_and_drops_only_the_issuer_secret() -> None:
    run = build(upstream.PAGE)
    assert run.find("Secret", "linkerd-identity-issuer") == []
    config = json.loads(run.one("ConfigMap", "linkerd-config").inputs["data"]["global"])
    assert config["identityContext"]["scheme"] == "linkerd.io/tls"
    assert run.depends(run.one("Deployment", "linkerd-identity"), on=run.one("Command", "identity-issuer"))


def _strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return [value] if isinstance(value, str) else []


def test_crds_come_first_and_webhooks_wait_for_their_deployments() -> None:
    run = build()
    crds = [r for r in run.find("CustomResourceDefinition") if "linkerd-crds" in r.name]
    injector, webhook = run.one("Deployment", "linkerd-proxy-injector"), run.one("MutatingWebhookConfiguration")
    for resource in (injector, webhook):
        assert all(run.depends(resource, on=crd) for crd in crds), resource.name
    # The namespace needs no CRD: made beside them, so the identity's Commands start sooner.
    namespace = run.one("Namespace", "linkerd")
    assert namespace.dependencies == []
    assert run.depends(webhook, on=injector)
    assert run.depends(injector, on=namespace)
    controller = run.one("Deployment", "controller-target")
    assert run.depends(controller, on=webhook) and run.depends(controller, on=run.one("Deployment", "linkerd-identity"))


def test_only_the_extensions_workloads_wait_for_the_proxy_injector() -> None:
    """Its pods are meshed at admission; its accounts, token, roles, policy and the Link CRD need Linkerd's CRDs alone."""
    run = build()
    control_plane = {r.urn for r in run.registrations if r.name.startswith("linkerd:")}
    crds = {r.urn for r in run.registrations if r.name.startswith("linkerd-crds:")}
    extension = [r for r in run.registrations if r.name.startswith("linkerd-multicluster:")]
    assert extension
    for resource in extension:
        waits = set(resource.dependencies)
        assert crds <= waits, resource.name
        if resource.kind in ("Deployment", "StatefulSet", "DaemonSet"):
            assert waits & control_plane, resource.name
        else:
            assert not waits & control_plane, resource.name
    token = run.one("Secret", "linkerd-service-mirror-remote-access-default-token")
    assert not run.depends(token, on=run.one("MutatingWebhookConfiguration"))


def test_randomly_generated_webhook_material_is_kept_as_first_applied() -> None:
    run = build()
    assert run.one("Secret", "linkerd-proxy-injector-k8s-tls").ignore_changes == ["data"]
    assert run.one("MutatingWebhookConfiguration").ignore_changes == ["webhooks[*].clientConfig.caBundle"]
    assert run.one("Deployment", "linkerd-proxy-injector").ignore_changes == [
        'spec.template.metadata.annotations["checksum/config"]'
    ]
    assert run.one("Deployment", "linkerd-identity").ignore_changes == []


def _without(value: Any, path: list[str]) -> Any:
    """`value` with the field an ignore_changes path names blanked out."""
    if not path:
        return "<ignored>"
    head, rest = path[0], path[1:]
    if head.endswith("[*]"):
        key = head[:-3]
        return {**value, key: [_without(item, rest) for item in value[key]]}
    if head.startswith("annotations["):
        annotation = head[len('annotations["') : -2]
        return {**value, "annotations": {**value["annotations"], annotation: "<ignored>"}}
    return {**value, head: _without(value[head], rest)} if head in value else value


def _split(path: str) -> list[str]:
    head, _, annotation = path.partition('annotations["')
    parts = [p for p in head.split(".") if p]
    return parts + ([f'annotations["{annotation}'] if annotation else [])


def test_a_second_render_changes_nothing_that_is_not_ignored() -> None:
    first, second = build(), build()

    def state(run: Run) -> dict[tuple[str, str], Any]:
        out = {}
        for resource in kubernetes_resources(run):
            value = resource.inputs
            for path in resource.ignore_changes:
                value = _without(value, _split(path))
            out[(resource.type, resource.name)] = value
        return out

    assert state(first) == state(second)


def test_without_ha_there_is_one_replica_and_no_disruption_budget() -> None:
    run = build(ha=False)
    assert "--ha" not in run.mocks.calls[1]
    assert run.one("Deployment", "linkerd-identity").inputs["spec"]["replicas"] == 1
    assert run.find("PodDisruptionBudget") == []
    ha = build(ha=True).one("Deployment", "linkerd-identity").inputs["spec"]
    assert ha["replicas"] == 3
    assert ha["template"]["spec"]["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]


def test_page_line_installs_crds_with_the_control_plane_and_multicluster_with_kubectl() -> None:
    run = build(upstream.PAGE, links=())
    calls = run.mocks.calls
    assert [c[:2] for c in calls] == [["install", "--ignore-cluster"]]
    config_map = run.one("ConfigMap", "linkerd-config")
    anchors = json.loads(config_map.inputs["data"]["global"])["identityContext"]["trustAnchorsPem"]
    assert anchors.strip() == ANCHOR.cert_pem.strip()
    assert run.one("Secret", "linkerd-proxy-injector-tls").ignore_changes == ["data"]
    extension = run.one("Command", "linkerd-multicluster")
    mc = f"{real_linkerd(upstream.PAGE)} --kubeconfig /k/config --context target-ctx multicluster install --gateway=false"
    kubectl = "kubectl --kubeconfig /k/config --context target-ctx"
    rendered = f'manifest="$({mc})" && printf "%s\\n" "$manifest" | '
    assert extension.inputs["create"] == f"{rendered}{kubectl} apply -f -"
    assert extension.inputs["delete"] == f"{rendered}{kubectl} delete --ignore-not-found -f -"
    assert run.depends(extension, on=run.one("Deployment", "linkerd-proxy-injector"))


@pytest.mark.parametrize("preview", [False, True])
def test_placeholder_in_a_form_that_cannot_be_replaced_stops_the_program(preview: bool) -> None:
    class LeakyLinkerd(FakeLinkerd):
        """The real CLI, whose install also carries the anchor in a shape `stand_ins.replace` does not know.

        A failure the real release cannot be made to show on demand: the fake adds only the leak.
        """

        def run(self, command: str, stdin: str | None) -> str:
            printed = run_like_the_command_provider(command, stdin)
            args = cli_args(command)
            if args[:1] != ["install"] or "--crds" in args:
                return printed
            with open(args[args.index("--identity-trust-anchors-file") + 1]) as handle:
                anchor = handle.read()
            one_line = "".join(anchor.strip().splitlines()[1:-1])  # the anchor's DER on one line
            blob = base64.b64encode(f"anchorDER: {one_line}\n".encode()).decode()
            return (
                printed
                + f"\n---\napiVersion: v1\nkind: Secret\nmetadata: {{name: leak, namespace: linkerd}}\ndata: {{x: {blob}}}\n"
            )

    run = run_program(minimal_control_plane, linkerd=LeakyLinkerd(), preview=preview)
    assert "put the trust anchor into Secret/linkerd/leak" in str(run.error)
    assert kubernetes_resources(run) == [r for r in kubernetes_resources(run) if "crds" in r.name]


def test_the_links_service_mirror_is_not_awaited_before_its_link_exists() -> None:
    controller = build().one("Deployment", "controller-target", "linkerd-multicluster")
    assert controller.inputs["metadata"]["annotations"] == {"pulumi.com/skipAwait": "true"}
    identity = build().one("Deployment", "linkerd-identity").inputs["metadata"]["annotations"]
    assert "pulumi.com/skipAwait" not in identity


@pytest.mark.parametrize("line", [upstream.CURRENT, upstream.PAGE], ids=["current", "page"])
def test_no_service_of_linkerds_renders_is_awaited_its_deployments_are(line: upstream.VersionLine) -> None:
    """Issue 22: the provider holds a Service until its endpoints have not changed for 10 s (the proxy injector's
    ended the target's `up`); its Deployment is awaited, and what needs Linkerd waits for those and the webhooks."""
    run = build(line)
    services = run.find("Service")
    assert {"linkerd-identity", "linkerd-proxy-injector", "linkerd-dst"} <= {s.inputs["metadata"]["name"] for s in services}
    not_awaited = {s.name: (s.inputs["metadata"].get("annotations") or {}).get("pulumi.com/skipAwait") for s in services}
    assert set(not_awaited.values()) == {"true"}, not_awaited
    awaited = [
        d.name for d in run.find("Deployment") if "pulumi.com/skipAwait" not in (d.inputs["metadata"].get("annotations") or {})
    ]
    assert "linkerd:linkerd/linkerd-proxy-injector" in awaited and "linkerd:linkerd/linkerd-identity" in awaited, awaited
