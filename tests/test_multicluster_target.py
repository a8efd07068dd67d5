"""MulticlusterTarget: Edge Stack as the Linkerd gateway, the page's Service patches as server-side patches."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s
import pytest
import yaml

from components.multicluster_target import MulticlusterTarget, MulticlusterTargetArgs
from support import upstream
from support.config_model import ExportedService, ExportMode, GatewaySettings
from tests.conftest import provider_urn, upstream_file
from tests.harness import Run, run_program
from tests.schemas import validate_builtin, validate_custom_resource

EDGE_STACK_PORTS = ({"name": "http", "port": 80, "targetPort": 8080}, {"name": "https", "port": 443, "targetPort": 8443})


GATEWAY_EXPORTS = (ExportedService("default", "qotm-linkerd2"), ExportedService("shop", "cart"))


def build(
    line: upstream.VersionLine = upstream.CURRENT,
    *,
    probe_path: str = "/-/ambassador/ready",
    preview: bool = False,
    exports: tuple[ExportedService, ...] = GATEWAY_EXPORTS,
) -> Run:
    def program() -> None:
        provider = k8s.Provider("cluster", context="target-ctx")
        on = pulumi.ResourceOptions(provider=provider)
        service = k8s.core.v1.Service("edge-stack-service", metadata={"name": "svc"}, opts=on)
        crd = k8s.core.v1.ConfigMap("edge-stack-crd", metadata={"name": "stands-for-the-crds"}, opts=on)
        qotm = k8s.core.v1.Service("qotm-service", metadata={"name": "qotm-linkerd2"}, opts=on)
        MulticlusterTarget(
            "multicluster-target",
            MulticlusterTargetArgs(
                line=line,
                product=line.edge_stack["edge-stack"],
                service_ports=EDGE_STACK_PORTS,
                hostname="gateway.example.com",
                ports=GatewaySettings(
                    port=4143, probe_port=80, probe_target_port=8080, probe_path=probe_path, probe_period_seconds=3
                ),
                trust_domain="cluster.local",
                exported_services=exports,
                service_resource=service,
                custom_after=[crd],
                exports_after=[qotm],
            ),
            opts=pulumi.ResourceOptions(providers={"kubernetes": provider}),
        )

    run = run_program(program, preview=preview)
    assert run.error is None, run.error
    return run


@pytest.mark.parametrize("line", [upstream.PAGE, upstream.CURRENT])
def test_host_routes_insecure_requests(line: upstream.VersionLine) -> None:
    host = build(line).one("Host", "linkerd-host")
    assert host.inputs["metadata"] == {"name": "linkerd-host", "namespace": "ambassador"}
    assert host.inputs["spec"] == {
        "hostname": "gateway.example.com",
        "acmeProvider": {"authority": "none"},
        "requestPolicy": {"insecure": {"action": "Route"}},
    }
    validate_custom_resource(line.ambassador_api, "Host", {"metadata": host.inputs["metadata"], "spec": host.inputs["spec"]})


@pytest.mark.parametrize("line", [upstream.PAGE, upstream.CURRENT])
def test_health_check_mapping_is_the_pages(line: upstream.VersionLine) -> None:
    mapping = build(line).one("Mapping", "public-health-check")
    expected = {
        "prefix": "/-/ambassador/ready",
        "rewrite": "/ambassador/v0/check_ready",
        "service": "localhost:8877",
        "bypass_auth": True,
    }
    if line.mapping_hostname:
        expected["hostname"] = "*"
    assert mapping.inputs["spec"] == expected
    assert mapping.inputs["metadata"] == {"name": "public-health-check", "namespace": "ambassador"}
    validate_custom_resource(
        line.ambassador_api, "Mapping", {"metadata": mapping.inputs["metadata"], "spec": mapping.inputs["spec"]}
    )


def direct(run: Run, name: str) -> set[str]:
    """The names of what the resource `name` waits for itself (not through others)."""
    by_urn = {r.urn: r.name for r in run.registrations}
    [resource] = [r for r in run.registrations if r.name == name]
    return {by_urn[urn] for urn in resource.dependencies}


def test_each_object_waits_only_for_what_it_needs() -> None:
    """The custom resources for their CRDs, the gateway patch for its Service, each export for the gateway patch and
    the service it labels; nothing waits for the multicluster extension (the Link, on the source, reads the gateway
    later) nor for Edge Stack's rollout."""
    run = build(exports=(ExportedService("default", "qotm-linkerd2"),))
    assert direct(run, "multicluster-target-host") == {"edge-stack-crd"}
    assert direct(run, "multicluster-target-health-mapping") == {"edge-stack-crd"}
    assert direct(run, "multicluster-target-gateway-service") == {"edge-stack-service"}
    assert direct(run, "multicluster-target-export-default-qotm-linkerd2") == {
        "multicluster-target-gateway-service",
        "qotm-service",
    }
    # The page's enable-gateway patch is written with Edge Stack's Deployment (components/edge_stack.py).
    assert run.find("DeploymentPatch") == []


@pytest.mark.parametrize("preview", [False, True])
def test_gateway_service_patch_has_the_ports_and_derived_annotations(preview: bool) -> None:
    run = build(probe_path="/-/gateway/health", preview=preview)
    patch = run.one("ServicePatch", "multicluster-target-gateway-service")
    assert patch.inputs["metadata"] == {
        "name": "edge-stack",
        "namespace": "ambassador",
        "annotations": {
            "mirror.linkerd.io/gateway-identity": "edge-stack.ambassador.serviceaccount.identity.linkerd.cluster.local",
            "mirror.linkerd.io/multicluster-gateway": "true",
            "mirror.linkerd.io/probe-path": "/-/gateway/health",
            "mirror.linkerd.io/probe-period": "3",
            "pulumi.com/skipAwait": "true",
        },
    }
    # The Service's own ports in its order, port 80 renamed, mc-gateway appended: the order the
    # API server keeps after the merge, so the next preview compares equal lists.
    assert patch.inputs["spec"] == {
        "ports": [
            {"name": "mc-probe", "port": 80, "targetPort": 8080, "protocol": "TCP"},
            {"name": "https", "port": 443, "targetPort": 8443, "protocol": "TCP"},
            {"name": "mc-gateway", "port": 4143, "protocol": "TCP"},
        ]
    }
    # The probe path annotation and the health Mapping come from one value.
    assert run.one("Mapping", "public-health-check").inputs["spec"]["prefix"] == "/-/gateway/health"
    # When the Service itself goes, there is nothing to undo.
    assert patch.deleted_with == run.one("Service", "svc").urn
    assert patch.provider == provider_urn(run, "cluster")


def test_patched_page_service_is_a_valid_service() -> None:
    """The page's Service with the patch merged as server-side apply would (ports keyed by port/protocol)."""
    service = next(
        d
        for d in yaml.safe_load_all(upstream_file("emissary/aes.v1.14.4.yaml").read_text())
        if d and d["kind"] == "Service" and d["metadata"]["name"] == "ambassador"
    )
    patch = build(upstream.PAGE).one("ServicePatch", "multicluster-target-gateway-service").inputs
    ports = {(p["port"], p.get("protocol", "TCP")): dict(p) for p in service["spec"]["ports"]}
    for port in patch["spec"]["ports"]:
        ports.setdefault((port["port"], port["protocol"]), {}).update(port)
    service["spec"]["ports"] = list(ports.values())
    service["metadata"]["annotations"].update(patch["metadata"]["annotations"])
    assert [p["name"] for p in service["spec"]["ports"]] == ["mc-probe", "https", "mc-gateway"]
    validate_builtin("v1", "Service", {k: service[k] for k in ("metadata", "spec")}, "1.34")


def test_exported_services_by_line() -> None:
    page = build(upstream.PAGE).find("ServicePatch")
    exports = {(p.namespace, p.object_name): p.inputs["metadata"] for p in page if "export" in p.name}
    assert exports[("shop", "cart")] == {
        "name": "cart",
        "namespace": "shop",
        "annotations": {
            "mirror.linkerd.io/gateway-name": "ambassador",
            "mirror.linkerd.io/gateway-ns": "ambassador",
            # Not held for the provider's 10-second endpoints settle: labelling changes no endpoint.
            "pulumi.com/skipAwait": "true",
        },
    }
    run = build(upstream.CURRENT)
    current = {(p.namespace, p.object_name): p for p in run.find("ServicePatch") if "export" in p.name}
    assert set(current) == {("default", "qotm-linkerd2"), ("shop", "cart")}
    assert current[("default", "qotm-linkerd2")].inputs["metadata"] == {
        "name": "qotm-linkerd2",
        "namespace": "default",
        "labels": {"mirror.linkerd.io/exported": "true"},
        "annotations": {"pulumi.com/skipAwait": "true"},
    }
    assert run.depends(current[("shop", "cart")], on=run.one("ServicePatch", "multicluster-target-gateway-service"))


def test_each_export_carries_the_label_of_its_mode() -> None:
    """Linkerd's link-gen selects by these: selector, remoteDiscoverySelector, federatedServiceSelector."""
    exports = (
        ExportedService("default", "qotm-linkerd2", ExportMode.GATEWAY),
        ExportedService("shop", "cart", ExportMode.REMOTE_DISCOVERY),
        ExportedService("shop", "api", ExportMode.FEDERATED),
    )
    run = build(exports=exports)
    labels = {
        (p.namespace, p.object_name): p.inputs["metadata"].get("labels") for p in run.find("ServicePatch") if "export" in p.name
    }
    assert labels == {
        ("default", "qotm-linkerd2"): {"mirror.linkerd.io/exported": "true"},
        ("shop", "cart"): {"mirror.linkerd.io/exported": "remote-discovery"},
        ("shop", "api"): {"mirror.linkerd.io/federated": "member"},
    }
    for patch in (p for p in run.find("ServicePatch") if "export" in p.name):
        assert patch.inputs["metadata"]["annotations"] == {"pulumi.com/skipAwait": "true"}
        assert run.depends(patch, on=run.one("ServicePatch", "multicluster-target-gateway-service"))
    # The gateway is Edge Stack's whatever the exports' modes: a gateway export may come with the next `up`.
    assert run.one("ServicePatch", "multicluster-target-gateway-service").inputs["spec"]["ports"][-1]["name"] == "mc-gateway"
