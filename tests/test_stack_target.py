"""The target stack as `pulumi up` / `pulumi preview` would run __main__.py, on both version lines."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from driver.offline import Registration
from support import upstream
from support.errors import ConfigError
from support.project import RUNS_OFFLINE_ENV
from tests import certificate_audit
from tests.conftest import kubernetes_resources, provider_urn, run_refused, run_stack, target_config
from tests.harness import Run
from tests.schemas import validate_custom_resource

LINES = ["current", "linkerd-2.8"]


def up(line: str = "current", preview: bool = False, **overrides: object) -> Run:
    run = run_stack("target", target_config(line, **overrides), preview=preview)
    assert run.error is None, run.error
    return run


@pytest.mark.parametrize("line", LINES)
def test_preview_lists_the_same_objects_as_an_update(line: str) -> None:
    """Unknown certificates at a first preview must not hide any object."""

    def names(run: Run) -> list[tuple[str, str]]:
        return sorted((r.type, r.name) for r in run.registrations)

    assert names(up(line, preview=True)) == names(up(line))


@pytest.mark.parametrize("line", LINES)
@pytest.mark.parametrize("preview", [False, True])
def test_every_kubernetes_resource_uses_the_stacks_provider(line: str, preview: bool) -> None:
    run = up(line, preview)
    provider = provider_urn(run, "cluster")
    provider_inputs = run.one("kubernetes", "cluster").inputs
    # A path, never a kubeconfig's contents: the project's link to $KUBECONFIG's file, the same on every machine.
    assert provider_inputs["context"] == "target-ctx" and provider_inputs["kubeconfig"] == ".kubeconfig/target"
    # Its identity is the cluster's name: another kubeconfig path for the same cluster updates it, replaces nothing.
    assert provider_inputs["clusterIdentifier"] == "target"
    # A changed ConfigMap (the trust roots at a rotation) is updated in place, never deleted and made again.
    assert provider_inputs["enableConfigMapMutable"] == "true"
    for resource in kubernetes_resources(run):
        assert resource.provider == provider, resource.name


def test_kubeconfig_path_not_contents_goes_to_the_provider(kubeconfig: Path) -> None:
    run = up(kubeconfig=str(kubeconfig))
    # The provider runs in the project's folder (here the test's): the relative link resolves to the file given.
    assert run.one("kubernetes", "cluster").inputs["kubeconfig"] == ".kubeconfig/target"
    assert os.readlink(kubeconfig.parent / ".kubeconfig" / "target") == str(kubeconfig)


@pytest.mark.parametrize("line", LINES)
def test_every_step_of_the_page_is_registered(line: str) -> None:
    run = up(line)
    edge = {"current": ("edge-stack", "ambassador"), "linkerd-2.8": ("ambassador", "ambassador")}[line]
    # Linkerd control plane with its identity from the shared anchor, and multicluster.
    assert run.one("Deployment", "linkerd-identity", "linkerd").inputs["spec"]["replicas"] == 3
    assert run.one("MutatingWebhookConfiguration", "linkerd-proxy-injector-webhook-config")
    # The issuer Secret is not an object of the render: the issuer's Command writes it into the cluster.
    assert run.find("Secret", "linkerd-identity-issuer") == []
    assert run.depends(run.one("Deployment", "linkerd-identity", "linkerd"), on=run.one("Command", "identity-target-issuer"))
    # Edge Stack, its Module with add_linkerd_headers, meshed by inject.
    assert run.one("Deployment", edge[0], edge[1])
    assert run.one("Module", "ambassador", edge[1]).inputs["spec"]["config"]["add_linkerd_headers"] is True
    page_flags = "inject --skip-inbound-ports 80,443 --require-identity-on-inbound-ports 4143 -"
    # Written once, meshed and as the gateway: no patch of its pod template (one rollout).
    assert run.find("DeploymentPatch") == []
    if line == "current":
        mesh = run.one("Deployment", edge[0], edge[1]).inputs["spec"]["template"]["metadata"]["annotations"]
        assert mesh["config.linkerd.io/skip-inbound-ports"] == "80,443"
        assert mesh["config.linkerd.io/proxy-require-identity-inbound-ports"] == "4143"
        assert mesh["linkerd.io/inject"] == "enabled"
        assert mesh["config.linkerd.io/enable-gateway"] == "true"
    else:  # 2.8 injects against the live control plane, at `up` (the end-to-end tier shows what it adds)
        assert run.one("Command", "edge-stack-linkerd-inject-render").inputs["create"].endswith(page_flags)
    # The meshed namespace and QOTM.
    assert run.one("NamespacePatch", "ns-default").inputs["metadata"]["annotations"] == {"linkerd.io/inject": "enabled"}
    assert run.one("Deployment", "qotm", "default") and run.one("Service", "qotm-linkerd2", "default")
    assert run.one("Mapping", "linkerd2-qotm", "default").inputs["spec"]["prefix"] == "/qotm-linkerd2/"
    # The gateway.
    assert run.one("Host", "linkerd-host") and run.one("Mapping", "public-health-check")
    gateway = run.one("ServicePatch", "multicluster-target-gateway-service").inputs
    assert [(p["name"], p["port"]) for p in gateway["spec"]["ports"]] == [("mc-probe", 80), ("https", 443), ("mc-gateway", 4143)]
    assert (
        gateway["metadata"]["annotations"]["mirror.linkerd.io/gateway-identity"]
        == f"{edge[0]}.{edge[1]}.serviceaccount.identity.linkerd.cluster.local"
    )
    assert run.one("ServicePatch", "multicluster-target-export-default-qotm-linkerd2")
    # The Service Edge Stack's manifest brings agrees with the patch on the renamed port.
    assert run.one("Service", edge[0], edge[1]).inputs["spec"]["ports"][0]["name"] == "mc-probe"


@pytest.mark.parametrize("line", LINES)
def test_every_getambassador_object_is_valid_for_its_line(line: str) -> None:
    run = up(line, tlsHostname="www.example.com", tlsAcmeEmail="ops@example.com")
    objects = [r for r in run.registrations if r.type.startswith("kubernetes:getambassador.io/")]
    assert {r.kind for r in objects} >= {"Module", "Mapping", "Host"}
    for resource in objects:
        api_version = resource.type.split(":")[1]
        assert api_version == ("getambassador.io/v2" if line == "linkerd-2.8" else "getambassador.io/v3alpha1")
        validate_custom_resource(
            api_version, resource.kind, {k: v for k, v in resource.inputs.items() if k in ("metadata", "spec")}
        )


def direct(run: Run, resource: Registration) -> set[str]:
    """The names of what `resource` waits for itself (not through others)."""
    by_urn = {r.urn: r.name for r in run.registrations}
    return {by_urn[urn] for urn in resource.dependencies}


def test_only_the_real_dependencies_and_a_removal_linkerd_accepts() -> None:
    """CRDs before their objects; the proxy injector serving before a meshed pod; the gateway Service before its patch
    and the exports; nothing else. Pulumi deletes in reverse: the meshed workloads go before the control plane."""
    run = up()
    control_plane = run.one("Deployment", "linkerd-proxy-injector", "linkerd")
    webhook = run.one("MutatingWebhookConfiguration")
    # What says the injector serves: the control plane's webhooks and API services (each waits for its Deployments).
    serving = {
        r.name
        for r in run.registrations
        if r.name.startswith("linkerd:")
        and r.kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration", "APIService")
    }
    assert webhook.name in serving and run.depends(webhook, on=control_plane)
    edge_stack = run.one("Deployment", "edge-stack", "ambassador")
    edge_stack_crds = {r.name for r in run.registrations if r.name.startswith("edge-stack-crds:")}
    assert direct(run, edge_stack) == {"edge-stack:ambassador"} | edge_stack_crds | serving
    namespace = run.one("NamespacePatch", "ns-default")
    assert direct(run, namespace) == serving
    assert direct(run, run.one("Deployment", "qotm")) == {"ns-default"}
    assert direct(run, run.one("Service", "qotm-linkerd2")) == {"ns-default"}
    assert direct(run, run.one("Mapping", "linkerd2-qotm")) == {"ns-default"} | edge_stack_crds
    module = run.one("Module")
    assert run.depends(module, on=run.one("CustomResourceDefinition", "modules.getambassador.io"))
    # The gateway: its Service first, nothing else; the Host and the health Mapping after Edge Stack's CRDs.
    gateway_patch = run.one("ServicePatch", "multicluster-target-gateway-service")
    edge_stack_service = run.one("Service", "edge-stack", "ambassador")
    assert gateway_patch.dependencies == [edge_stack_service.urn]
    assert gateway_patch.deleted_with == edge_stack_service.urn
    assert direct(run, run.one("Host", "linkerd-host")) == edge_stack_crds
    assert direct(run, run.one("Mapping", "public-health-check")) == edge_stack_crds
    export = run.one("ServicePatch", "multicluster-target-export-default-qotm-linkerd2")
    assert direct(run, export) == {"multicluster-target-gateway-service", "qotm-service"}
    # Nothing of the target waits for the multicluster extension but its own objects.
    extension = {r.urn for r in run.registrations if r.name.startswith("linkerd-multicluster:")}
    assert [r.name for r in run.registrations if set(r.dependencies) & extension and r.urn not in extension] == []
    # The link's token is filled only once its account exists (the real CLI renders both).
    token = run.one("Secret", "linkerd-service-mirror-remote-access-default-token", "linkerd-multicluster")
    assert token.inputs["type"] == "kubernetes.io/service-account-token"
    account = run.one("ServiceAccount", "linkerd-service-mirror-remote-access-default", "linkerd-multicluster")
    assert run.depends(token, on=account)


def test_outputs_for_the_source_and_no_key_among_them() -> None:
    run = up()
    outputs = run.outputs
    assert outputs["clusterName"] == "target" and outputs["context"] == "target-ctx"
    assert outputs["versionLine"] == "current" and outputs["linkerdVersion"] == "edge-26.8.3"
    assert outputs["gatewayName"] == "edge-stack" and outputs["gatewayNamespace"] == "ambassador"
    assert outputs["exportedServices"] == ["default/qotm-linkerd2"]
    assert outputs["exportedServiceModes"] == {"default/qotm-linkerd2": "gateway"}
    assert outputs["trustAnchorPem"].startswith("-----BEGIN CERTIFICATE-----")
    # The source signs its own issuer with the anchor in this Secret of the target cluster.
    assert outputs["trustAnchorSecret"] == "linkerd-trust-anchor"
    assert "peerIssuerKeyPem" not in outputs and "peerIssuerCertPem" not in outputs
    assert run.secret_outputs == set()
    assert "PRIVATE KEY" not in repr(outputs)
    assert list(outputs["identityIssuers"]) == ["target"]


def test_the_anchor_and_issuer_keys_live_only_in_the_cluster() -> None:
    run = up()
    namespace = run.one("Namespace", "linkerd")
    python = run.one("Command", "identity-trust-anchor").inputs["create"].split(" ")[0]
    cluster = "--kubectl kubectl --context target-ctx"
    anchor = run.one("Command", "identity-trust-anchor")
    assert anchor.inputs["create"] == (
        f"{python} -m support.certificates anchor --secret linkerd-trust-anchor {cluster} "
        "--common-name root.linkerd.cluster.local --valid-hours 87600"
    )
    assert anchor.inputs["delete"] == f"{python} -m support.certificates delete-anchor --secret linkerd-trust-anchor {cluster}"
    assert anchor.inputs["triggers"] == ["cluster.local"]
    assert anchor.ignore_changes == ["create", "delete", "dir", "environment"]
    assert anchor.protect and anchor.raw.get("deleteBeforeReplace", True)
    assert run.depends(anchor, on=namespace)
    issuer = run.one("Command", "identity-target-issuer")
    assert issuer.inputs["create"] == (
        f"{python} -m support.certificates issuer --secret linkerd-trust-anchor {cluster} --anchor-context target-ctx "
        "--common-name identity.linkerd.cluster.local --valid-hours 8760 --scheme kubernetes.io/tls"
    )
    assert "delete" not in issuer.inputs
    assert issuer.ignore_changes == ["create", "dir", "environment"]
    assert run.depends(issuer, on=anchor) and run.depends(issuer, on=namespace)
    # Nothing a Command holds is secret, because nothing it prints or is given is a key.
    for command in (anchor, issuer):
        # The environment holds only the offline marker: no key, no certificate.
        assert command.additional_secret_outputs == [] and command.inputs["environment"] == {RUNS_OFFLINE_ENV: "1"}
        assert "PRIVATE KEY" not in run.mocks.command_stdouts[command.name]
    anchor_secret = certificate_audit.cluster_secret("target-ctx", "linkerd-trust-anchor")
    assert anchor_secret["type"] == "kubernetes.io/tls" and sorted(anchor_secret["data"]) == ["ca.crt", "tls.crt", "tls.key"]
    assert certificate_audit.key_pair(anchor_secret).cert_pem == run.outputs["trustAnchorPem"]
    issuer_secret = certificate_audit.cluster_secret("target-ctx", "linkerd-identity-issuer")
    made = certificate_audit.assert_issuer_secret(issuer_secret, run.outputs["trustAnchorPem"], "kubernetes.io/tls")
    assert made == x509.load_pem_x509_certificate(run.mocks.command_stdouts["identity-target-issuer"].encode())


def test_a_second_up_reuses_the_anchor_in_the_cluster() -> None:
    """State lost, or the Command made again: the anchor Secret outlives it and is not replaced."""
    first = up().outputs["trustAnchorPem"]
    assert up().outputs["trustAnchorPem"] == first


@pytest.mark.parametrize("preview", [False, True])
def test_each_export_is_labelled_for_its_mode_and_the_modes_are_an_output(preview: bool) -> None:
    run = up(
        preview=preview,
        meshedNamespaces=["default", "shop"],
        exportedServices=["default/qotm-linkerd2", {"shop/cart": "remote-discovery"}, {"shop/api": "federated"}],
    )
    patches = {p.name: p.inputs["metadata"] for p in run.find("ServicePatch") if "export" in p.name}
    assert patches == {
        "multicluster-target-export-default-qotm-linkerd2": {
            "name": "qotm-linkerd2",
            "namespace": "default",
            "labels": {"mirror.linkerd.io/exported": "true"},
            "annotations": {"pulumi.com/skipAwait": "true"},
        },
        "multicluster-target-export-shop-cart": {
            "name": "cart",
            "namespace": "shop",
            "labels": {"mirror.linkerd.io/exported": "remote-discovery"},
            "annotations": {"pulumi.com/skipAwait": "true"},
        },
        "multicluster-target-export-shop-api": {
            "name": "api",
            "namespace": "shop",
            "labels": {"mirror.linkerd.io/federated": "member"},
            "annotations": {"pulumi.com/skipAwait": "true"},
        },
    }
    # What the source and `status` read: the list as before, and each one's mode beside it.
    assert run.outputs["exportedServices"] == ["default/qotm-linkerd2", "shop/cart", "shop/api"]
    assert run.outputs["exportedServiceModes"] == {
        "default/qotm-linkerd2": "gateway",
        "shop/cart": "remote-discovery",
        "shop/api": "federated",
    }


def test_emissary_and_no_qotm() -> None:
    run = up(edgeStackProduct="emissary", qotm="false")
    assert run.one("Deployment", "emissary-ingress", "emissary")
    assert run.find("Deployment", "qotm") == []
    assert [p for p in run.find("ServicePatch") if "export" in p.name] == []
    assert run.outputs["gatewayName"] == "emissary-ingress"


@pytest.mark.parametrize("line", LINES)
def test_every_certificate_applied_is_the_real_anchor_and_the_issuer_is_in_the_cluster(line: str) -> None:
    """Decoded from every object, in every shape the real CLI writes them: no stand-in survives, no key is applied."""
    run = up(line)
    anchor_pem = run.mocks.command_stdouts["identity-trust-anchor"]
    certificate_audit.assert_only_the_real_identity(run, anchor_pem)
    scheme = upstream.VERSION_LINES[line].issuer_scheme
    secret = certificate_audit.cluster_secret("target-ctx", "linkerd-identity-issuer")
    certificate_audit.assert_issuer_secret(secret, anchor_pem, scheme)
    anchor_hash = hashlib.sha256(anchor_pem.strip().encode() + b"\n").hexdigest()
    for deployment in run.find("Deployment", namespace="linkerd"):
        annotations = deployment.inputs["spec"]["template"]["metadata"].get("annotations") or {}
        if line == "current":
            assert annotations["linkerd.io/trust-root-sha256"] == anchor_hash, deployment.name


def test_meshed_workloads_wait_for_what_runs_linkerd_not_for_every_object() -> None:
    """Every Deployment and webhook of the control plane first, through the few that wait for the rest
    (the SDK walks every edge); not the multicluster extension, which no meshed pod needs."""
    run = up()
    namespace = run.one("NamespacePatch", "ns-default")
    waited = {r.kind for r in run.registrations if r.urn in namespace.dependencies}
    assert waited <= {"Deployment", "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration", "CustomResourceDefinition"}
    control_plane = [
        r
        for kind in ("Deployment", "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")
        for r in run.find(kind)
        if r.namespace == "linkerd" or (r.namespace is None and (r.object_name or "").startswith("linkerd-"))
    ]
    assert {r.kind for r in control_plane} == {"Deployment", "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"}
    assert all(run.depends(namespace, on=r) for r in control_plane)
    assert not any(run.depends(namespace, on=r) for r in run.find("Deployment", namespace="linkerd-multicluster"))
    assert len(namespace.dependencies) <= 3


@pytest.mark.parametrize("preview", [False, True])
def test_what_upstream_keeps_on_uninstall_outlives_destroy(preview: bool) -> None:
    """The Gateway API CRDs Linkerd's real render marks `helm.sh/resource-policy: keep`: other teams' routes need them."""
    run = up(preview=preview)
    retained = sorted(r.object_name or "" for r in kubernetes_resources(run) if r.retain_on_delete)
    assert retained == [
        "grpcroutes.gateway.networking.k8s.io",
        "httproutes.gateway.networking.k8s.io",
        "tcproutes.gateway.networking.k8s.io",
        "tlsroutes.gateway.networking.k8s.io",
    ]
    for resource in kubernetes_resources(run):
        annotations = (resource.inputs.get("metadata") or {}).get("annotations") or {}
        assert resource.retain_on_delete is (annotations.get("helm.sh/resource-policy") == "keep"), resource.name


def test_an_edge_stack_product_switch_keeps_the_old_namespace_on_the_cluster() -> None:
    """Issue 18: switching edgeStackProduct never plans a delete of the previous product's namespace.

    The namespace may hold what users put there: it stays declared, under the URN it had, retained on
    delete, so the engine's delete of it (now or at the next `up`) only forgets it.
    """
    before = up()  # edge-stack, in namespace ambassador
    old = before.one("Namespace", "ambassador")
    assert not old.retain_on_delete
    own = "organization/aes-linkerd2/target"
    assert before.outputs["edgeStackNamespace"] == "ambassador"
    switched = run_stack(
        "target", target_config(edgeStackProduct="emissary"), stack_references={own: {"edgeStackNamespace": "ambassador"}}
    )
    assert switched.error is None, switched.error
    kept = switched.one("Namespace", "ambassador")
    assert kept.urn == old.urn and kept.retain_on_delete and kept.protect is False
    assert kept.inputs["metadata"] == {"name": "ambassador"}
    new = switched.one("Namespace", "emissary")
    assert new.retain_on_delete is False
    assert switched.outputs["edgeStackNamespace"] == "emissary"
    # Not switched: the last outputs name this product's own namespace, and nothing else is declared.
    same = run_stack("target", target_config(), stack_references={own: {"edgeStackNamespace": "ambassador"}})
    assert same.error is None and [r.object_name for r in same.find("Namespace") if r.retain_on_delete] == []


REMOTE_ACCESS = "linkerd-service-mirror-remote-access"
OWN = "organization/aes-linkerd2/target"


def remote_access(run: Run, account: str) -> dict[str, Any]:
    """The account's objects as registered: what the multicluster chart renders for each remote-access name."""
    ns = "linkerd-multicluster"
    return {
        "account": run.one("ServiceAccount", account, ns),
        "token": run.one("Secret", f"{account}-token", ns),
        "role": run.one("ClusterRole", account),
        "binding": run.one("ClusterRoleBinding", account),
    }


def test_link_credentials_default_to_upstreams_account_with_nothing_new() -> None:
    """Generation 0: the install renders exactly as before (no --set), the outputs name the default account."""
    run = up()
    assert not [c for c in run.mocks.commands if upstream.REMOTE_ACCESS_VALUE in c]
    objects = remote_access(run, f"{REMOTE_ACCESS}-default")
    assert objects["token"].inputs["type"] == "kubernetes.io/service-account-token"
    assert not [r.name for r in run.registrations if REMOTE_ACCESS in r.name and "-default" not in r.name]
    assert run.outputs["linkServiceAccount"] == f"{REMOTE_ACCESS}-default" and run.outputs["linkCredentials"] == 0


@pytest.mark.parametrize("preview", [False, True])
def test_a_new_generation_is_its_own_account_token_and_binding_with_the_default_accounts_rights(preview: bool) -> None:
    default = remote_access(up(), f"{REMOTE_ACCESS}-default")
    run = up(preview=preview, linkCredentials="2")
    account = f"{REMOTE_ACCESS}-2"
    objects = remote_access(run, account)
    # The old generation's objects are no longer declared: the engine deletes them, which revokes its token.
    assert not [r.name for r in run.registrations if REMOTE_ACCESS in r.name and account not in r.name]
    token = objects["token"].inputs
    assert token["type"] == "kubernetes.io/service-account-token"
    assert token["metadata"]["annotations"]["kubernetes.io/service-account.name"] == account
    assert "data" not in token and "stringData" not in token  # the token controller fills it, in the cluster only
    assert run.depends(objects["token"], on=objects["account"])
    # The same rules as upstream's default account, bound to this account alone.
    assert objects["role"].inputs["rules"] == default["role"].inputs["rules"]
    binding = objects["binding"].inputs
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": account}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account, "namespace": "linkerd-multicluster"}]
    assert run.outputs["linkServiceAccount"] == account and run.outputs["linkCredentials"] == 2


def test_link_credentials_go_forward_only() -> None:
    """Going back is refused before anything is registered; the same generation again is no change at all."""
    run = run_refused("target", target_config(linkCredentials="1"), stack_references={OWN: {"linkCredentials": 2}})
    assert isinstance(run.error, ConfigError)
    assert str(run.error) == (
        "config aes-linkerd2:linkCredentials = 1: the target's Link credentials are at generation 2: "
        "rotation goes forward only; set 3 to rotate"
    )
    again = run_stack("target", target_config(linkCredentials="2"), stack_references={OWN: {"linkCredentials": 2}})
    assert again.error is None and again.outputs["linkCredentials"] == 2
