"""`status`: the checks on constructed objects, then on live objects of two local API servers.

The live tests start two clusters with e2e/cluster.sh (etcd, kube-apiserver, controller-manager,
scheduler and kwok nodes, all on loopback), apply what the stacks and the service mirror leave
there, and read them back through the real kubectl. Nothing here runs a proxy or a service mirror:
the mirror objects are written by the test as the service mirror writes them (STAND-IN), so the
gateway's liveness and latency stay "unknown", as `status` says.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
import yaml
from rich.console import Console

from driver.settings import StackSettings
from driver.status import checks, read, views
from support import tools, upstream
from tests.conftest import ROOT, real_linkerd

GATEWAY = upstream.CURRENT.edge_stack["emissary"]
IDENTITY = upstream.gateway_identity(GATEWAY.service_account, GATEWAY.namespace, "cluster.local")
NOW = datetime.datetime.now(datetime.UTC)


def certificate(name: str, role: str, days: int) -> dict[str, Any]:
    not_after = (NOW + datetime.timedelta(days=days, hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"name": name, "role": role, "subject": f"CN={name}", "notBefore": "2026-01-01T00:00:00Z", "notAfter": not_after}


def outputs(target_context: str = "target", source_context: str = "source", issuer_days: int = 300) -> dict[str, Any]:
    common = {"edgeStackNamespace": GATEWAY.namespace, "meshedNamespaces": ["default"]}
    return {
        "target": {
            **common,
            "clusterName": "target",
            "context": target_context,
            "gatewayIdentity": IDENTITY,
            "exportedServices": ["default/qotm-linkerd2"],
            "identityCertificates": [certificate("trust-anchor", "anchor", 3600), certificate("target-issuer", "issuer", 360)],
        },
        "source": {
            **common,
            "clusterName": "source",
            "context": source_context,
            "linkedCluster": "target",
            "identityCertificates": [certificate("source-issuer", "issuer", issuer_days)],
        },
    }


def settings(
    kubectl: str = "kubectl", kubeconfig: str | None = None, ha: bool = True, linkerd: str | None = None
) -> dict[str, StackSettings]:
    common = {
        "edgeStackProduct": "emissary",
        "linkerdHa": ha,
        "kubectl": kubectl,
        "kubeconfig": kubeconfig,
        "linkerdCli": linkerd,
    }
    return {"target": StackSettings({"role": "target", **common}), "source": StackSettings({"role": "source", **common})}


# --- the objects a healthy pair of clusters holds ----------------------------------------------------


def meta(name: str, namespace: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"name": name, **({"namespace": namespace} if namespace else {}), **extra}


def deployment(name: str, namespace: str, replicas: int = 1, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta(name, namespace),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels, "annotations": annotations or {}},
                "spec": {"containers": [{"name": "main", "image": "example.invalid/none:1"}]},
            },
        },
    }


def service(name: str, namespace: str, ports: list[dict[str, Any]], selector: bool = True, **metadata: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"ports": ports}
    if selector:
        spec["selector"] = {"app": name}
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta(name, namespace, **metadata), "spec": spec}


def endpoints(name: str, namespace: str, address: str, port: int, **metadata: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": meta(name, namespace, **metadata),
        "subsets": [{"addresses": [{"ip": address}], "ports": [{"port": port}]}],
    }


def webhook(name: str, service_name: str) -> dict[str, Any]:
    """Linkerd's proxy injector webhook, selecting no namespace so the API server never calls it here."""
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": meta(name),
        "webhooks": [
            {
                "name": "linkerd-proxy-injector.linkerd.io",
                "clientConfig": {"service": {"name": service_name, "namespace": "linkerd", "path": "/"}},
                "failurePolicy": "Ignore",
                "sideEffects": "None",
                "admissionReviewVersions": ["v1"],
                "namespaceSelector": {"matchLabels": {"status-test": "never"}},
                "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}],
            }
        ],
    }


def namespaces() -> list[dict[str, Any]]:
    made = [{"apiVersion": "v1", "kind": "Namespace", "metadata": meta(name)} for name in ("linkerd", GATEWAY.namespace)]
    # The extension's label, as `linkerd multicluster install` renders it: the CLI finds the namespace by it.
    extension = meta("linkerd-multicluster", labels={"linkerd.io/extension": "multicluster"})
    made.append({"apiVersion": "v1", "kind": "Namespace", "metadata": extension})
    # `default` exists; the stacks annotate it (MeshedNamespace), which is what server-side apply does here.
    return [
        *made,
        {"apiVersion": "v1", "kind": "Namespace", "metadata": meta("default", annotations={"linkerd.io/inject": "enabled"})},
    ]


MESHED = {
    "linkerd.io/inject": "enabled",
    "config.linkerd.io/skip-inbound-ports": "80,443",
    "config.linkerd.io/proxy-require-identity-inbound-ports": "4143",
}


def cluster_objects(role: str) -> list[dict[str, Any]]:
    """What `up` leaves on a cluster, reduced to what `status` reads."""
    objects = namespaces()
    objects += [deployment(name, "linkerd", replicas=3) for name in checks.HA_DEPLOYMENTS]
    objects += [service("linkerd-proxy-injector", "linkerd", [{"name": "injector", "port": 443, "targetPort": 8443}])]
    objects += [webhook("linkerd-proxy-injector-webhook-config", "linkerd-proxy-injector")]
    notes = {**MESHED, **({"config.linkerd.io/enable-gateway": "true"} if role == "target" else {})}
    objects += [deployment(GATEWAY.deployment, GATEWAY.namespace, annotations=notes)]
    if role == "target":
        ports = [
            {"name": "mc-probe", "port": 80, "targetPort": 8080},
            {"name": "https", "port": 443, "targetPort": 8443},
            {"name": "mc-gateway", "port": 4143, "targetPort": 4143},
        ]
        annotations = {
            "mirror.linkerd.io/gateway-identity": IDENTITY,
            "mirror.linkerd.io/multicluster-gateway": "true",
            "mirror.linkerd.io/probe-path": upstream.DEFAULT_PROBE_PATH,
            "mirror.linkerd.io/probe-period": "3",
        }
        objects += [service(GATEWAY.service, GATEWAY.namespace, ports, annotations=annotations)]
        objects += [deployment("qotm", "default")]
        objects += [service("qotm-linkerd2", "default", [{"port": 80}], labels={"mirror.linkerd.io/exported": "true"})]
    else:
        objects += [deployment("controller-target", "linkerd-multicluster")]
    return objects


# The API server refuses loopback addresses in Endpoints, so the stand-in gateway address is
# TEST-NET-1 (RFC 5737, never routed); nothing here dials it: no proxy or service mirror runs.
GATEWAY_ADDRESS = "192.0.2.1"


def mirror_objects() -> list[dict[str, Any]]:
    """STAND-IN: what the source's service mirror writes once it reads the target (it does not run here)."""
    mirrored = {"mirror.linkerd.io/mirrored-service": "true", "mirror.linkerd.io/cluster-name": "target"}
    gateway = {**mirrored, "mirror.linkerd.io/mirrored-gateway": "true"}
    return [
        service("probe-gateway-target", "linkerd-multicluster", [{"name": "mc-probe", "port": 80}], False, labels=gateway),
        endpoints("probe-gateway-target", "linkerd-multicluster", GATEWAY_ADDRESS, 80, labels=gateway),
        service("qotm-linkerd2-target", "default", [{"port": 80}], False, labels=mirrored),
        endpoints("qotm-linkerd2-target", "default", GATEWAY_ADDRESS, 4143, labels=mirrored),
    ]


def link_object() -> dict[str, Any]:
    return {
        "apiVersion": "multicluster.linkerd.io/v1alpha3",
        "kind": "Link",
        "metadata": meta("target", "linkerd-multicluster"),
        "spec": {
            "targetClusterName": "target",
            "gatewayAddress": GATEWAY_ADDRESS,
            "gatewayPort": "4143",
            "gatewayIdentity": IDENTITY,
            "probeSpec": {"path": upstream.DEFAULT_PROBE_PATH, "port": "80", "period": "3s"},
        },
    }


LINK_STATUS = {
    "mirrorServices": [
        {
            "controllerName": "linkerd.io/service-mirror",
            "remoteRef": {"name": "qotm-linkerd2", "namespace": "default", "kind": "Service"},
            "conditions": [
                {
                    "type": "Mirrored",
                    "status": "True",
                    "reason": "Mirrored",
                    "message": "",
                    "lastTransitionTime": "2026-11-27T00:00:00Z",
                    "localRef": {"name": "qotm-linkerd2-target", "namespace": "default", "kind": "Service"},
                }
            ],
        }
    ]
}


def as_listed(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Objects as the API server lists them once every pod is ready (status and Endpoints filled in)."""
    listed = []
    for original in objects:
        item = json.loads(json.dumps(original))
        if item["kind"] == "Deployment":
            replicas = item["spec"]["replicas"]
            item["status"] = {"replicas": replicas, "readyReplicas": replicas, "updatedReplicas": replicas}
        listed.append(item)
        if item["kind"] == "Service" and "selector" in item["spec"]:
            listed.append(endpoints(item["metadata"]["name"], item["metadata"]["namespace"], "127.1.0.5", 8443))
    return listed


def fake_kubectl(objects: dict[str, list[dict[str, Any]]]) -> Any:
    """kubectl_for over constructed objects: answers the two `get`s `status` makes, by context."""

    def kubectl_for(binary: str, context: str, kubeconfig: str | None) -> read.Kubectl:
        def run(args: list[str]) -> str:
            if context not in objects:
                raise read.KubectlError(f'context "{context}" does not exist')
            wanted = args[1]
            items = [o for o in objects[context] if (o["kind"] == "Link") == (wanted == read.LINKS)]
            return json.dumps({"kind": "List", "items": items})

        return run

    return kubectl_for


def healthy_objects() -> dict[str, list[dict[str, Any]]]:
    link = {**link_object(), "status": LINK_STATUS}
    return {
        "target": as_listed(cluster_objects("target")),
        "source": [*as_listed(cluster_objects("source") + mirror_objects()), link],
    }


def silent(settings: StackSettings, context: str, link: str) -> list[dict[str, Any]]:
    """`linkerd multicluster gateways -o json` when no service mirror runs (what the real CLI prints here: [])."""
    return []


def by_name(report: checks.Report) -> dict[tuple[str, str], checks.Check]:
    return {(c.stack, c.name): c for c in report.checks}


# --- constructed objects -------------------------------------------------------------------------------


def test_healthy_pair() -> None:
    report = checks.collect(outputs(), settings(), fake_kubectl(healthy_objects()), gateways=silent)
    found = by_name(report)
    assert report.healthy
    assert found[("target", "linkerd/linkerd-identity")].detail == "3/3 ready, HA"
    assert found[("target", "webhook linkerd-proxy-injector-webhook-config")].detail == (
        "linkerd/linkerd-proxy-injector: 1 endpoint(s), failurePolicy Ignore"
    )
    assert found[("target", "gateway ports")].detail == "mc-probe 80->8080, https 443->8443, mc-gateway 4143->4143"
    assert found[("target", "meshed")].detail == (
        "config.linkerd.io/enable-gateway=true, config.linkerd.io/proxy-require-identity-inbound-ports=4143, "
        "config.linkerd.io/skip-inbound-ports=80,443, linkerd.io/inject=enabled"
    )
    assert (
        found[("target", "default/qotm-linkerd2")].detail
        == "mode gateway: label mirror.linkerd.io/exported=true set, 1 endpoint(s)"
    )
    assert found[("source", "Link target")].detail == (
        f"gateway 192.0.2.1:4143 as {IDENTITY}, probe :80{upstream.DEFAULT_PROBE_PATH} every 3s"
    )
    assert found[("source", "mirror default/qotm-linkerd2-target")].detail == (
        "endpoints 192.0.2.1:4143; Link status Mirrored=True Mirrored"
    )
    # The real CLI asked the live source: no service mirror holds the lease here, so it lists no probe.
    assert found[("source", "gateway alive, latency")].detail == (
        "unknown: `linkerd multicluster gateways` lists no probe (is the service mirror running?)"
    )
    assert found[("source", "source-issuer (issuer)")].detail.startswith("300 days left")
    assert report.clusters[1].mirrored == {"default/qotm-linkerd2-target": ["192.0.2.1:4143"]}
    assert [c.stack for c in report.clusters] == ["target", "source"]
    assert found[("source", "namespace default")].detail == "linkerd.io/inject=enabled"
    assert {c.state for c in report.checks} == {checks.OK, checks.UNKNOWN}
    assert [c.name for c in report.checks if c.state == checks.UNKNOWN] == ["gateway alive, latency"]


def test_each_failure_is_named() -> None:
    objects = healthy_objects()
    injector = next(
        o for o in objects["target"] if o["metadata"]["name"] == "linkerd-proxy-injector" and o["kind"] == "Deployment"
    )
    injector["status"]["readyReplicas"] = 2
    objects["target"] = [
        o for o in objects["target"] if not (o["kind"] == "Endpoints" and o["metadata"]["name"] == "qotm-linkerd2")
    ]
    objects["source"] = [o for o in objects["source"] if o["metadata"]["name"] != "qotm-linkerd2-target"]
    gateway = next(o for o in objects["source"] if o["kind"] == "Deployment" and o["metadata"]["name"] == GATEWAY.deployment)
    gateway["spec"]["template"]["metadata"]["annotations"] = {}
    report = checks.collect(outputs(issuer_days=20), settings(), fake_kubectl(objects), gateways=silent)
    failed = {(c.stack, c.name): c.detail for c in report.checks if c.state == checks.FAIL}
    assert failed == {
        ("target", "linkerd/linkerd-proxy-injector"): "2/3 ready, HA",
        ("source", "meshed"): "no Linkerd annotations",
        ("source", "mirror default/qotm-linkerd2-target"): (
            "not mirrored (exported as default/qotm-linkerd2); Link status Mirrored=True Mirrored"
        ),
        ("source", "source-issuer (issuer)"): failed[("source", "source-issuer (issuer)")],
    }
    assert failed[("source", "source-issuer (issuer)")].startswith("20 days left") and failed[
        ("source", "source-issuer (issuer)")
    ].endswith("DUE")
    # The export still stands without endpoints (no pod behind it is not the export's fault).
    assert (
        by_name(report)[("target", "default/qotm-linkerd2")].detail
        == "mode gateway: label mirror.linkerd.io/exported=true set, 0 endpoint(s)"
    )
    assert not report.healthy


def test_ha_off_and_ha_missing() -> None:
    objects = healthy_objects()
    for item in objects["target"]:
        if item["kind"] == "Deployment" and item["metadata"]["name"] in checks.HA_DEPLOYMENTS:
            item["spec"]["replicas"] = item["status"]["readyReplicas"] = item["status"]["updatedReplicas"] = 1
    with_ha = by_name(checks.collect(outputs(), settings(ha=True), fake_kubectl(objects), gateways=silent))
    assert (with_ha[("target", "linkerd/linkerd-identity")].state, with_ha[("target", "linkerd/linkerd-identity")].detail) == (
        checks.FAIL,
        "1/1 ready, HA wants 3",
    )
    without = by_name(checks.collect(outputs(), settings(ha=False), fake_kubectl(objects), gateways=silent))
    assert (without[("target", "linkerd/linkerd-identity")].state, without[("target", "linkerd/linkerd-identity")].detail) == (
        checks.OK,
        "1/1 ready (linkerdHa off)",
    )


def test_unreachable_cluster_and_missing_outputs() -> None:
    values = outputs(source_context="gone")
    values["target"] = {}
    report = checks.collect(values, settings(), fake_kubectl(healthy_objects()), gateways=silent)
    failed = {(c.stack, c.name): c.detail for c in report.checks if c.state == checks.FAIL}
    assert failed == {
        ("target", "stack outputs"): "stack target has no outputs: run `./aes-linkerd2 up`",
        ("source", "API server"): 'context gone: context "gone" does not exist',
    }


def test_text_json_table_and_svg() -> None:
    report = checks.collect(outputs(), settings(), fake_kubectl(healthy_objects()), gateways=silent)
    text = views.text(report).splitlines()
    assert text[0].split() == ["cluster", "area", "check", "state", "detail"]
    assert text[-1].startswith("healthy (")
    assert any(line.split()[:4] == ["source", "link", "gateway", "alive,"] and " unknown " in line for line in text)
    data = json.loads(json.dumps(report.data()))
    assert data["healthy"] is True
    assert data["clusters"][1]["linkedTo"] == "target"
    assert data["clusters"][1]["mirroredServices"] == {"default/qotm-linkerd2-target": ["192.0.2.1:4143"]}
    unknown = "unknown: `linkerd multicluster gateways` lists no probe (is the service mirror running?)"
    assert {"area": "link", "name": "gateway alive, latency", "state": "unknown", "detail": unknown} in data["clusters"][1][
        "checks"
    ]
    console = Console(file=StringIO(), width=200, color_system="truecolor", force_terminal=True)
    console.print(views.table(report))
    shown = console.file.getvalue()  # type: ignore[attr-defined]
    assert "\x1b[" in shown and "qotm-linkerd2-target" in shown
    picture = views.svg(report)
    assert picture.startswith("<svg") and picture.rstrip().endswith("</svg>")
    assert "link target: ok" in picture and "default/qotm-linkerd2-target &lt;- 192.0.2.1:4143" in picture
    assert views.COLOURS[checks.FAIL] not in picture


def test_gateway_alive_latency() -> None:
    """What the CLI says of a running service mirror's probe. STAND-IN answers: no service mirror runs here,
    so the real CLI can only print [] (the live test below runs it)."""

    def answer(*entries: dict[str, Any]) -> read.Gateways:
        return lambda settings, context, link: list(entries)

    def failing(settings: StackSettings, context: str, link: str) -> list[dict[str, Any]]:
        raise read.KubectlError("`linkerd multicluster gateways` failed: context deadline exceeded")

    cases = {
        answer({"clusterName": "target", "alive": True, "numberOfServices": 1, "latency": 3}): (
            checks.OK,
            "alive, latency 3 ms, 1 service(s) (`linkerd multicluster gateways`)",
        ),
        answer(
            {"clusterName": "other", "alive": True},
            {"clusterName": "target", "alive": False, "numberOfServices": 1, "latency": 0},
        ): (
            checks.FAIL,
            "NOT alive, latency 0 ms, 1 service(s) (`linkerd multicluster gateways`)",
        ),
        answer({"clusterName": "other", "alive": True}): (
            checks.UNKNOWN,
            "unknown: `linkerd multicluster gateways` lists no probe (is the service mirror running?)",
        ),
        failing: (checks.UNKNOWN, "unknown: `linkerd multicluster gateways` failed: context deadline exceeded"),
    }
    for gateways, expected in cases.items():
        report = checks.collect(outputs(), settings(), fake_kubectl(healthy_objects()), gateways=gateways)
        check = by_name(report)[("source", "gateway alive, latency")]
        assert (check.state, check.detail) == expected


def test_gateways_asks_the_cli_the_program_would_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No `linkerdCli`: the pinned release's CLI found where the program looks (here, named by its variable),
    run for real against a context no kubeconfig has; none anywhere: refused, saying where it looked."""
    cli = real_linkerd()
    pinned = upstream.CURRENT.linkerd_versions[0]
    unset = settings()["source"]
    monkeypatch.setenv(tools.TOOLS_ENV, str(tmp_path / "no-tools"))
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-kubeconfig"))
    monkeypatch.setenv(tools.linkerd_env(pinned), cli)
    with pytest.raises(read.KubectlError, match=r"^`linkerd multicluster gateways` failed: .*context \"nowhere\" does not exist"):
        read.linkerd_gateways(unset, "nowhere", "target")
    monkeypatch.delenv(tools.linkerd_env(pinned))
    with pytest.raises(read.KubectlError) as refused:
        read.linkerd_gateways(unset, "nowhere", "target")
    assert str(refused.value) == f"no linkerd CLI {pinned} here ({tools.where_to_look(pinned)})"


def test_svg_shows_failure_in_red() -> None:
    objects = healthy_objects()
    objects["source"] = [o for o in objects["source"] if o["kind"] != "Link"]
    picture = views.svg(checks.collect(outputs(), settings(), fake_kubectl(objects), gateways=silent))
    assert f'stroke="{views.COLOURS[checks.FAIL]}"' in picture
    assert "no mirrored services" in picture


# --- a Link without a gateway: every export pod to pod ------------------------------------------------------

POD_TO_POD = {"default/qotm-linkerd2": "remote-discovery", "shop/cart": "federated"}


def pod_to_pod_outputs(modes: dict[str, str] = POD_TO_POD) -> dict[str, Any]:
    values = outputs()
    values["target"] = {**values["target"], "exportedServices": list(modes), "exportedServiceModes": modes}
    return values


def gateway_less_link() -> dict[str, Any]:
    """The Link as the real `link-gen --gateway=false` writes it (tests/test_link_live.py), with the mirror's status."""
    return {
        "apiVersion": "multicluster.linkerd.io/v1alpha3",
        "kind": "Link",
        "metadata": meta("target", "linkerd-multicluster"),
        "spec": {
            "targetClusterName": "target",
            "clusterCredentialsSecret": "cluster-credentials-target",
            "targetClusterDomain": "cluster.local",
            "targetClusterLinkerdNamespace": "linkerd",
            "probeSpec": {},
            "remoteDiscoverySelector": {"matchLabels": {"mirror.linkerd.io/exported": "remote-discovery"}},
            "federatedServiceSelector": {"matchLabels": {"mirror.linkerd.io/federated": "member"}},
        },
        "status": {
            "mirrorServices": [mirrored_status("qotm-linkerd2", "default", "qotm-linkerd2-target")],
            "federatedServices": [mirrored_status("cart", "shop", "cart-federated")],
        },
    }


def mirrored_status(name: str, namespace: str, local: str) -> dict[str, Any]:
    condition = {
        "type": "Mirrored",
        "status": "True",
        "reason": "Mirrored",
        "message": "",
        "lastTransitionTime": "2026-12-07T00:00:00Z",
        "localRef": {"name": local, "namespace": namespace, "kind": "Service"},
    }
    remote = {"name": name, "namespace": namespace, "kind": "Service"}
    return {"controllerName": "linkerd.io/service-mirror", "remoteRef": remote, "conditions": [condition]}


def pod_to_pod_objects() -> dict[str, list[dict[str, Any]]]:
    """STAND-IN mirrors as the service mirror writes them pod to pod: Services, no Endpoints, no probe Service."""
    target = [o for o in cluster_objects("target") if o["metadata"]["name"] != "qotm-linkerd2"]
    target += [service("qotm-linkerd2", "default", [{"port": 80}], labels={"mirror.linkerd.io/exported": "remote-discovery"})]
    target += [
        deployment("cart", "shop"),
        service("cart", "shop", [{"port": 80}], labels={"mirror.linkerd.io/federated": "member"}),
    ]
    remote_discovery = {
        "mirror.linkerd.io/mirrored-service": "true",
        "mirror.linkerd.io/cluster-name": "target",
        "multicluster.linkerd.io/remote-discovery": "target",
        "multicluster.linkerd.io/remote-service": "qotm-linkerd2",
    }
    mirrors = [
        service("qotm-linkerd2-target", "default", [{"port": 80}], False, labels=remote_discovery),
        # One Service for every linked cluster's members: no cluster-name label, members named in an annotation.
        service("cart-federated", "shop", [{"port": 80}], False, labels={"mirror.linkerd.io/mirrored-service": "true"},
                annotations={"multicluster.linkerd.io/remote-discovery": "cart@target"}),
    ]  # fmt: skip
    return {"target": as_listed(target), "source": [*as_listed(cluster_objects("source") + mirrors), gateway_less_link()]}


def never_asked(settings: StackSettings, context: str, link: str) -> list[dict[str, Any]]:
    raise AssertionError("a Link without a gateway has no probe for `linkerd multicluster gateways` to list")


def test_a_link_without_a_gateway_has_no_gateway_lines_and_shows_each_mode() -> None:
    report = checks.collect(pod_to_pod_outputs(), settings(), fake_kubectl(pod_to_pod_objects()), gateways=never_asked)
    found = by_name(report)
    assert report.healthy, views.text(report)
    assert [c.name for c in report.checks if c.stack == "source" and c.area == "link"] == [
        "Link target",
        "mirror default/qotm-linkerd2-target",
        "mirror shop/cart-federated",
    ]
    assert found[("source", "Link target")].detail == (
        "no gateway (every export pod to pod): remote-discovery by mirror.linkerd.io/exported=remote-discovery, "
        "federated by mirror.linkerd.io/federated=member"
    )
    assert found[("source", "mirror default/qotm-linkerd2-target")].detail == (
        "remote-discovery: pod to pod, no Endpoints of its own; Link status Mirrored=True Mirrored"
    )
    assert found[("source", "mirror shop/cart-federated")].detail == (
        "federated: pod to pod, no Endpoints of its own; Link status Mirrored=True Mirrored"
    )
    assert found[("target", "default/qotm-linkerd2")].detail == (
        "mode remote-discovery: label mirror.linkerd.io/exported=remote-discovery set, 1 endpoint(s)"
    )
    assert found[("target", "shop/cart")].detail == "mode federated: label mirror.linkerd.io/federated=member set, 1 endpoint(s)"
    data = report.data()
    assert data["clusters"][0]["exportedServiceModes"] == POD_TO_POD
    picture = views.svg(report)
    assert "exported default/qotm-linkerd2 (remote-discovery)" in picture and "exported shop/cart (federated)" in picture
    assert "default/qotm-linkerd2-target &lt;- remote-discovery</text>" in picture
    assert "shop/cart-federated &lt;- federated</text>" in picture
    assert "gateway mirror" not in picture and views.COLOURS[checks.FAIL] not in picture


def test_what_a_mode_needs_is_named_when_missing() -> None:
    objects = pod_to_pod_objects()
    # The target's Service still carries the gateway's label; the source's federated Service is gone.
    qotm = next(o for o in objects["target"] if o["kind"] == "Service" and o["metadata"]["name"] == "qotm-linkerd2")
    qotm["metadata"]["labels"] = {"mirror.linkerd.io/exported": "true"}
    objects["source"] = [o for o in objects["source"] if o["metadata"]["name"] != "cart-federated"]
    report = checks.collect(pod_to_pod_outputs(), settings(), fake_kubectl(objects), gateways=never_asked)
    failed = {(c.stack, c.name): c.detail for c in report.checks if c.state == checks.FAIL}
    assert failed == {
        ("target", "default/qotm-linkerd2"): "mode remote-discovery: label mirror.linkerd.io/exported=remote-discovery MISSING, "
        "1 endpoint(s)",
        ("source", "mirror shop/cart-federated"): "not mirrored (exported as shop/cart); Link status Mirrored=True Mirrored",
    }


def test_a_gateway_export_needs_a_link_with_a_gateway() -> None:
    """One export through the gateway and a Link without one (made before that export): red, and what to do."""
    modes = {"default/qotm-linkerd2": "gateway", "shop/cart": "federated"}
    report = checks.collect(pod_to_pod_outputs(modes), settings(), fake_kubectl(pod_to_pod_objects()), gateways=never_asked)
    check = by_name(report)[("source", "Link target")]
    assert (check.state, check.detail) == (
        checks.FAIL,
        "no gateway, yet default/qotm-linkerd2 goes through one: `up` the source again",
    )
    # The gateway's mirror is expected with Endpoints (through the gateway), the federated one pod to pod.
    assert by_name(report)[("source", "mirror default/qotm-linkerd2-target")].detail == (
        "endpoints none; Link status Mirrored=True Mirrored"
    )


def test_a_target_from_before_modes_exports_through_its_gateway() -> None:
    """Outputs without exportedServiceModes (the recorded ones below too): every export is the gateway's."""
    values = outputs()
    assert "exportedServiceModes" not in values["target"]
    report = checks.collect(values, settings(), fake_kubectl(healthy_objects()), gateways=silent)
    assert report.clusters[0].export_modes == {"default/qotm-linkerd2": "gateway"}
    assert by_name(report)[("source", "gateway mirror")].state == checks.OK


# --- the views of recorded live answers, byte for byte ----------------------------------------------------

# What kubectl answered from the live clusters of test_live_clusters (after `up`, after breaking it, and with
# the target's context unknown), managedFields left out (status never reads them), with the text, SVG, JSON
# and terminal table the status code drew from them when they were recorded (main 98754f2, before status was
# split into read/checks/views), redrawn once when the exports began to show their mode (only the exports' lines
# and the JSON's exportedServiceModes changed). Certificates at fixed dates on a fixed clock, one issuer due.
RECORDED = ROOT / "tests" / "fixtures" / "status"
RECORDED_NOW = "2026-12-07T00:00:00Z"


def recorded_kubectl(answers: dict[str, dict[str, str]]) -> Any:
    """kubectl_for that answers the two `get`s exactly as the live API servers did (or fails as kubectl did)."""

    def kubectl_for(binary: str, context: str, kubeconfig: str | None) -> read.Kubectl:
        def run(args: list[str]) -> str:
            assert args in [["get", kinds, "--all-namespaces", "-o", "json"] for kinds in (read.KINDS, read.LINKS)]
            said = answers[context]["links" if args[1] == read.LINKS else "kinds"]
            if said.startswith("ERROR: "):
                raise read.KubectlError(said.removeprefix("ERROR: "))
            return said

        return run

    return kubectl_for


@pytest.mark.parametrize("recorded", ["up", "broken", "unreachable"])
def test_views_of_recorded_live_answers_are_unchanged(recorded: str, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = RECORDED / recorded
    monkeypatch.setenv("AES_LINKERD2_NOW", RECORDED_NOW)
    answers = json.loads((folder / "answers.json").read_text())
    values = json.loads((folder / "outputs.json").read_text())
    report = checks.collect(values, settings(), recorded_kubectl(answers), gateways=silent)
    console = Console(file=StringIO(), width=200, color_system="truecolor", force_terminal=True)
    console.print(views.table(report))
    # What `./aes-linkerd2 status` prints (text and a newline) and writes with --svg, and the JSON it prints.
    assert views.text(report) + "\n" == (folder / "view.text").read_text()
    assert views.svg(report) == (folder / "view.svg").read_text()
    assert json.dumps(report.data(), indent=2) + "\n" == (folder / "view.json").read_text()
    assert console.file.getvalue() == (folder / "view.table").read_text()  # type: ignore[attr-defined]


# --- live objects on two local API servers -------------------------------------------------------------

# The kube binaries e2e/build-tools.sh builds: in the project's tool cache, or $E2E_CACHE/bin when set.
_E2E_CACHE = os.environ.get("E2E_CACHE")
CACHE = Path(_E2E_CACHE).expanduser() if _E2E_CACHE else tools.cache_root()
BIN = CACHE / "bin" if _E2E_CACHE else tools.tools_dir()
CLUSTER_TOOLS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kwok")
BUILD_TOOLS = 'E2E_TOOLS="kube etcd kwok" e2e/build-tools.sh'


def _versions() -> dict[str, str]:
    found = {}
    for line in (CACHE / "versions.env").read_text().splitlines():
        key, _, value = line.partition("=")
        if value and not key.startswith("#"):
            found[key] = value
    return found


def cluster_tools(folder: Path) -> tuple[dict[str, str], list[str]]:
    """Each tool e2e/cluster.sh runs, from the tool cache or else PATH, and the names found in neither."""
    found: dict[str, str] = {}
    for tool in CLUSTER_TOOLS:
        path = str(folder / tool) if os.access(folder / tool, os.X_OK) else shutil.which(tool)
        if path is not None:
            found[tool] = path
    return found, [tool for tool in CLUSTER_TOOLS if tool not in found]


def test_a_cluster_tool_on_path_is_found_not_listed_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache, on_path = tmp_path / "cache", tmp_path / "path"
    for folder, tool in ((cache, "etcd"), (on_path, "kubectl"), (on_path, "kwok")):
        folder.mkdir(exist_ok=True)
        (folder / tool).write_text("#!/bin/sh\n")
        (folder / tool).chmod(0o755)
    monkeypatch.setenv("PATH", str(on_path))
    found, missing = cluster_tools(cache)
    assert found == {"etcd": str(cache / "etcd"), "kubectl": str(on_path / "kubectl"), "kwok": str(on_path / "kwok")}
    assert missing == ["kube-apiserver", "kube-controller-manager", "kube-scheduler"]


def tools_folder(found: dict[str, str], folder: Path) -> Path:
    """One folder holding every tool by its name (e2e/cluster.sh runs them from $B)."""
    folder.mkdir()
    for tool, path in found.items():
        (folder / tool).symlink_to(path)
    return folder


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Two API servers (contexts `target` and `source`) with kwok nodes, on loopback; stopped afterwards."""
    found, missing = cluster_tools(BIN)
    lacking = [*missing, *(["versions.env"] if not (CACHE / "versions.env").is_file() else [])]
    lacking += ["openssl"] if shutil.which("openssl") is None else []
    if lacking:
        pytest.skip(
            f"LOCAL API SERVER TOOLS NOT FOUND in {BIN} or on PATH ({', '.join(lacking)}): live status test NOT RUN; "
            f"`{BUILD_TOOLS}` builds them"
        )
    work = tmp_path_factory.mktemp("status-live")
    script = f"""
        set -e
        PIDS=()
        trap 'kill "${{PIDS[@]}}" 2>/dev/null; wait; exit 0' TERM
        . {ROOT}/e2e/cluster.sh
        start_cluster target 127.0.110.0/24 127.10.0.0/16
        start_cluster source 127.0.111.0/24 127.11.0.0/16
        check_loopback target; check_loopback source
        touch {work}/ready
        while true; do sleep 1; done
    """
    env = {
        **os.environ,
        "B": str(tools_folder(found, work / "bin")),
        "WORK": str(work),
        "KUBECONFIG": str(work / "kubeconfig"),
        "KWOK_STAGES": _versions()["KWOK_STAGES"],
    }
    process = subprocess.Popen(
        ["bash", "-c", script], env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 240
        while not (work / "ready").exists():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"local API servers did not start: {process.stderr.read().decode() if process.stderr else ''}")
            time.sleep(1)
        yield {"kubectl": found["kubectl"], "kubeconfig": str(work / "kubeconfig")}
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            # Each API server waits on its etcd when both stop at once (e2e/tier.sh); past a minute, stop them hard.
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


def kubectl(live: dict[str, str], context: str, *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        [live["kubectl"], "--kubeconfig", live["kubeconfig"], "--context", context, *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def apply(live: dict[str, str], context: str, objects: list[dict[str, Any]]) -> None:
    kubectl(live, context, "apply", "--server-side", "-f", "-", stdin=yaml.safe_dump_all(objects))


def link_crd() -> dict[str, Any]:
    """The real Link CRD, as the pinned linkerd CLI renders the multicluster extension."""
    rendered = subprocess.run(
        [real_linkerd(), "multicluster", "install", "--ignore-cluster", "--gateway=false"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return next(d for d in yaml.safe_load_all(rendered) if d and d["metadata"]["name"] == "links.multicluster.linkerd.io")


def live_report(live: dict[str, str]) -> checks.Report:
    return checks.collect(outputs(), settings(live["kubectl"], live["kubeconfig"], linkerd=real_linkerd()), read.kubectl_runner)


def no_pods_here(check: checks.Check) -> bool:
    """A webhook without endpoints: the API server refuses kwok's loopback pod IPs in Endpoints and EndpointSlices."""
    return check.name.startswith("webhook ") and ": 0 endpoint(s)," in check.detail


def wait_ready(live: dict[str, str], timeout: float = 180) -> checks.Report:
    """Until every check but those nothing here can pass is ok (kwok's pods take a few seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        report = live_report(live)
        if all(c.state != checks.FAIL or no_pods_here(c) for c in report.checks) or time.monotonic() > deadline:
            return report
        time.sleep(3)


def established(live: dict[str, str], context: str, crd: str, seconds: float = 60) -> None:
    """Polls for the CRD's Established condition: `kubectl wait` fails on a CRD with no conditions yet (seen under load)."""
    deadline = time.monotonic() + seconds
    while True:
        conditions = json.loads(kubectl(live, context, "get", "crd", crd, "-o", "json")).get("status", {}).get("conditions") or []
        if any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions):
            return
        assert time.monotonic() < deadline, f"{crd} not Established after {seconds}s: {conditions}"
        time.sleep(0.5)


def test_live_clusters(live: dict[str, str]) -> None:
    crd = link_crd()
    apply(live, "target", cluster_objects("target"))
    apply(live, "source", [crd])
    established(live, "source", "links.multicluster.linkerd.io")
    apply(live, "source", [*cluster_objects("source"), *mirror_objects(), link_object()])
    patch = json.dumps({"status": LINK_STATUS})
    kubectl(
        live,
        "source",
        "patch",
        "link",
        "target",
        "-n",
        "linkerd-multicluster",
        "--subresource=status",
        "--type=merge",
        "-p",
        patch,
    )

    report = wait_ready(live)
    failed = [(c.stack, c.name, c.detail) for c in report.checks if c.state == checks.FAIL]
    # Only what needs pods with real addresses fails, and says why.
    assert failed == [
        (
            stack,
            "webhook linkerd-proxy-injector-webhook-config",
            "linkerd/linkerd-proxy-injector: 0 endpoint(s), failurePolicy Ignore",
        )
        for stack in ("target", "source")
    ], views.text(report)
    assert not report.healthy
    found = by_name(report)
    # Real Deployments, scheduled on kwok's nodes by the real scheduler and controllers.
    assert found[("target", "linkerd/linkerd-destination")].detail == "3/3 ready, HA"
    assert found[("source", "linkerd-multicluster/controller-target")].detail == "1/1 ready"
    assert found[("target", "gateway annotations")].detail == (
        f"mirror.linkerd.io/gateway-identity={IDENTITY}, mirror.linkerd.io/multicluster-gateway=true, "
        f"mirror.linkerd.io/probe-path={upstream.DEFAULT_PROBE_PATH}, mirror.linkerd.io/probe-period=3"
    )
    assert found[("target", "gateway ports")].detail == "mc-probe 80->8080, https 443->8443, mc-gateway 4143->4143"
    assert found[("source", "gateway mirror")].detail == "linkerd-multicluster/probe-gateway-target -> 192.0.2.1:80"
    assert found[("source", "mirror default/qotm-linkerd2-target")].detail == (
        "endpoints 192.0.2.1:4143; Link status Mirrored=True Mirrored"
    )
    assert found[("source", "namespace default")].detail == "linkerd.io/inject=enabled"
    # The real CLI asked the live source: no service mirror holds the lease here, so it lists no probe.
    assert found[("source", "gateway alive, latency")].detail == (
        "unknown: `linkerd multicluster gateways` lists no probe (is the service mirror running?)"
    )

    # Break it live: the source's service mirror loses its pods, the gateway its annotation, the mirror its endpoints.
    kubectl(live, "source", "scale", "deploy", "controller-target", "-n", "linkerd-multicluster", "--replicas=0")
    kubectl(
        live, "target", "annotate", "svc", GATEWAY.service, "-n", GATEWAY.namespace, "mirror.linkerd.io/multicluster-gateway-"
    )
    kubectl(live, "source", "delete", "endpoints", "qotm-linkerd2-target", "-n", "default")
    report = live_report(live)
    failed_now = {(c.stack, c.name): c.detail for c in report.checks if c.state == checks.FAIL and not no_pods_here(c)}
    assert set(failed_now) == {
        ("source", "linkerd-multicluster/controller-target"),
        ("target", "gateway annotations"),
        ("source", "mirror default/qotm-linkerd2-target"),
    }, failed_now
    assert failed_now[("source", "linkerd-multicluster/controller-target")] == "0/0 ready"
    assert failed_now[("source", "mirror default/qotm-linkerd2-target")] == "endpoints none; Link status Mirrored=True Mirrored"


def test_live_unreachable(live: dict[str, str]) -> None:
    """A context kubectl cannot reach is one failed line for its cluster; the other cluster is still read."""
    values = outputs(target_context="nowhere")
    report = checks.collect(values, settings(live["kubectl"], live["kubeconfig"], linkerd=real_linkerd()), read.kubectl_runner)
    target = [(c.area, c.name, c.state) for c in report.checks if c.stack == "target"]
    assert target == [
        ("control plane", "API server", checks.FAIL),
        ("certificates", "trust-anchor (anchor)", checks.OK),
        ("certificates", "target-issuer (issuer)", checks.OK),
    ]
    assert (
        report.checks[0].detail == "context nowhere: Error in configuration: context was not found for specified context: nowhere"
    )
    assert any(c.stack == "source" and c.name == "Link target" and c.state == checks.OK for c in report.checks)


def test_driver_status_prints_json_text_svg_and_exits_by_health(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """`./aes-linkerd2 status` from the stacks' outputs (a fake engine) over constructed objects."""
    from driver.__main__ import main
    from tests.test_driver import FakeEngine, deployment

    class Deployed(FakeEngine):
        def outputs(self, stack: str) -> dict[str, Any]:
            return dict(outputs()[stack])

    objects = healthy_objects()
    monkeypatch.setattr("driver.__main__.Deployment", lambda *a, **k: deployment(Deployed(), kubeconfig=tmp_path / "kubeconfig"))
    monkeypatch.setattr("driver.status.read.kubectl_runner", fake_kubectl(objects))
    monkeypatch.setattr("driver.status.read.linkerd_gateways", silent)

    assert main(["status", "--json", "--svg", str(tmp_path / "views.svg")]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["healthy"] is True and [c["context"] for c in data["clusters"]] == ["target", "source"]
    assert (tmp_path / "views.svg").read_text().startswith("<svg")

    gateway = next(o for o in objects["target"] if o["kind"] == "Service" and o["metadata"]["name"] == GATEWAY.service)
    gateway["metadata"]["annotations"] = {}
    assert main(["status"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[:4] for line in out if " FAIL " in line] == [["target", "edge", "stack", "gateway"]]
    assert out[-1].startswith("NOT HEALTHY: 1 check(s) failed")


def test_the_pre_flight_reads_a_live_cluster_and_lists_every_problem_at_once(live: dict[str, str], tmp_path: Path) -> None:
    """Linkerd in HA on a cluster with one schedulable node, a namespace someone else made, no Pulumi CLI, no
    passphrase: one `check`, every problem, each named, read through the real kubectl from a real API server."""
    from driver import Deployment

    project = tmp_path / "project"
    project.mkdir()
    for name in ("Pulumi.yaml", ".pulumi-version"):
        shutil.copy(ROOT / name, project / name)
    fixtures = ROOT / "tests" / "fixtures"
    settings = {
        "aes-linkerd2:role": "target",
        "aes-linkerd2:context": "target",
        "aes-linkerd2:kubeconfig": live["kubeconfig"],
        "aes-linkerd2:kubectl": live["kubectl"],
        "aes-linkerd2:edgeStackProduct": "emissary",
        "aes-linkerd2:edgeStackCrds": str(fixtures / "getambassador-crds.v3alpha1.yaml"),
        "aes-linkerd2:edgeStackManifest": str(fixtures / "emissary-3.yaml"),
        "aes-linkerd2:gatewayHostname": "gw.example.com",
        "aes-linkerd2:meshedNamespaces": ["default", "shop"],
        "aes-linkerd2:linkerdCli": real_linkerd(),
    }
    (project / "Pulumi.target.yaml").write_text(yaml.safe_dump({"config": settings}))
    nodes = json.loads(kubectl(live, "target", "get", "nodes", "-o", "json"))["items"]
    cordoned = [node["metadata"]["name"] for node in nodes[1:]]
    kubectl(live, "target", "create", "namespace", "shop")
    for node in cordoned:
        kubectl(live, "target", "cordon", node)
    try:
        no_pulumi = {"PATH": os.environ["PATH"]}  # and no passphrase
        deployment = Deployment(
            project, stacks=["target"], environ=no_pulumi, which=lambda tool: None if tool == "pulumi" else shutil.which(tool)
        )
        findings = deployment.check()
    finally:
        for node in cordoned:
            kubectl(live, "target", "uncordon", node)
        kubectl(live, "target", "delete", "namespace", "shop", "--wait=false")
    failed = [f"{f.subject}: {f.message}" for f in findings if not f.ok]
    wanted = (project / ".pulumi-version").read_text().strip()
    assert failed == [
        f"Pulumi CLI: `pulumi` is not on PATH: install v{wanted} (https://www.pulumi.com/docs/install/)",
        "PULUMI_CONFIG_PASSPHRASE: not set: the local backend encrypts the stacks' secrets with it (export "
        "PULUMI_CONFIG_PASSPHRASE=... or PULUMI_CONFIG_PASSPHRASE_FILE=...)",
        f"target: linkerdHa on target: config aes-linkerd2:linkerdHa = true needs 3 schedulable nodes (required "
        f"anti-affinity); the cluster has 1 of {len(nodes)} nodes schedulable: add nodes (scripts/kind-clusters makes 4 "
        "each) or `pulumi config set linkerdHa false --stack target`",
        "target: meshedNamespaces on target: shop: exists and was not created by this stack: add it to existingNamespaces "
        "in Pulumi.target.yaml (it is then only annotated, never created or deleted)",
    ]
    # What passed was read live too: the API server's version, the CLI of the pinned release.
    passed = {f.subject: f.message for f in findings if f.ok}
    assert passed["target: context target"] == "API server answers, Kubernetes 1.34"
    assert passed["target: linkerd CLI edge-26.8.3"] == real_linkerd()


def test_live_link_without_a_gateway(live: dict[str, str]) -> None:
    """A second link, `flat`, as `link-gen --gateway=false` writes it, accepted by the real Link CRD; its exports pod to
    pod on the live target; the mirrors as the service mirror writes them (STAND-IN). Read through the real kubectl."""
    apply(live, "source", [link_crd()])
    established(live, "source", "links.multicluster.linkerd.io")
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": meta("flat")}
    apply(live, "target", [
        namespace,
        service("api", "flat", [{"port": 80}], False, labels={"mirror.linkerd.io/exported": "remote-discovery"}),
        service("cart", "flat", [{"port": 80}], False, labels={"mirror.linkerd.io/federated": "member"}),
    ])  # fmt: skip
    link = gateway_less_link()
    link["metadata"]["name"] = link["spec"]["targetClusterName"] = "flat"
    link["spec"]["clusterCredentialsSecret"] = "cluster-credentials-flat"
    link_status = {
        "mirrorServices": [mirrored_status("api", "flat", "api-flat")],
        "federatedServices": [mirrored_status("cart", "flat", "cart-federated")],
    }
    del link["status"]
    remote_discovery = {
        "mirror.linkerd.io/mirrored-service": "true",
        "mirror.linkerd.io/cluster-name": "flat",
        "multicluster.linkerd.io/remote-discovery": "flat",
    }
    extension = next(n for n in namespaces() if n["metadata"]["name"] == "linkerd-multicluster")
    apply(live, "source", [
        namespace,
        extension,
        service("api-flat", "flat", [{"port": 80}], False, labels=remote_discovery),
        service("cart-federated", "flat", [{"port": 80}], False, labels={"mirror.linkerd.io/mirrored-service": "true"}),
        link,
    ])  # fmt: skip
    patch = json.dumps({"status": link_status})
    kubectl(
        live, "source", "patch", "link", "flat", "-n", "linkerd-multicluster", "--subresource=status", "--type=merge", "-p", patch
    )

    values = outputs()
    values["target"] = {**values["target"], "exportedServices": ["flat/api", "flat/cart"],
                        "exportedServiceModes": {"flat/api": "remote-discovery", "flat/cart": "federated"}}  # fmt: skip
    values["source"] = {**values["source"], "linkedCluster": "flat"}
    report = checks.collect(values, settings(live["kubectl"], live["kubeconfig"]), read.kubectl_runner, gateways=never_asked)
    shown = {(c.stack, c.area, c.name): (c.state, c.detail) for c in report.checks if c.area in ("exports", "link")}
    assert shown == {
        ("target", "exports", "flat/api"): (
            checks.OK, "mode remote-discovery: label mirror.linkerd.io/exported=remote-discovery set, 0 endpoint(s)"),
        ("target", "exports", "flat/cart"): (
            checks.OK, "mode federated: label mirror.linkerd.io/federated=member set, 0 endpoint(s)"),
        ("source", "link", "Link flat"): (checks.OK, checks_detail_no_gateway()),
        ("source", "link", "mirror flat/api-flat"): (
            checks.OK, "remote-discovery: pod to pod, no Endpoints of its own; Link status Mirrored=True Mirrored"),
        ("source", "link", "mirror flat/cart-federated"): (
            checks.OK, "federated: pod to pod, no Endpoints of its own; Link status Mirrored=True Mirrored"),
    }, views.text(report)  # fmt: skip


def checks_detail_no_gateway() -> str:
    return (
        "no gateway (every export pod to pod): remote-discovery by mirror.linkerd.io/exported=remote-discovery, "
        "federated by mirror.linkerd.io/federated=member"
    )


def with_gateway_address(objects: dict[str, list[dict[str, Any]]], address: str) -> dict[str, list[dict[str, Any]]]:
    """The target's gateway Service given a load balancer at `address`, as the cloud's controller sets it."""
    for item in objects["target"]:
        if item["kind"] == "Service" and item["metadata"].get("annotations", {}).get("mirror.linkerd.io/multicluster-gateway"):
            item["status"] = {"loadBalancer": {"ingress": [{"ip": address}]}}
    return objects


def test_the_links_gateway_address_follows_the_target_gateway_services() -> None:
    """linkerd2#10635: the load balancer's address changes, the Link dials the old one until the source's next `up`."""
    same = by_name(
        checks.collect(outputs(), settings(), fake_kubectl(with_gateway_address(healthy_objects(), "192.0.2.1")), gateways=silent)
    )
    assert same[("source", "gateway address")] == checks.Check(
        "source", "link", "gateway address", checks.OK, "192.0.2.1, the target's gateway Service's"
    )
    moved = checks.collect(
        outputs(), settings(), fake_kubectl(with_gateway_address(healthy_objects(), "192.0.2.9")), gateways=silent
    )
    assert not moved.healthy
    assert by_name(moved)[("source", "gateway address")].detail == (
        "the Link dials 192.0.2.1; the target's gateway Service is at 192.0.2.9 now: `up` the source to follow it"
    )
    # No load balancer (the Link's address came from gatewayAddresses): nothing live to follow, no line.
    plain = by_name(checks.collect(outputs(), settings(), fake_kubectl(healthy_objects()), gateways=silent))
    assert ("source", "gateway address") not in plain


# --- the Link's credentials -----------------------------------------------------------------------------

ROTATED = "linkerd-service-mirror-remote-access-2"


def remote_access_account(name: str, days_old: int) -> dict[str, Any]:
    made = (NOW - datetime.timedelta(days=days_old, hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {**meta(name, "linkerd-multicluster"),
            "creationTimestamp": made}}  # fmt: skip


def rotated(source_account: str | None) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """A target at generation 2 (its account 12 days old); the source's Link made from `source_account`."""
    values = outputs()
    values["target"].update(linkServiceAccount=ROTATED, linkCredentials=2)
    if source_account:
        values["source"]["linkServiceAccount"] = source_account
    objects = healthy_objects()
    objects["target"].append(remote_access_account(ROTATED, 12))
    return values, objects


def test_link_credentials_generation_age_and_a_source_that_caught_up() -> None:
    values, objects = rotated(ROTATED)
    report = checks.collect(values, settings(), fake_kubectl(objects), gateways=silent)
    found = by_name(report)
    made = objects["target"][-1]["metadata"]["creationTimestamp"]
    target, source = found[("target", "link credentials")], found[("source", "link credentials")]
    assert (target.state, target.detail) == (checks.OK, f"generation 2: account {ROTATED}, made {made} (12 days ago)")
    assert (source.state, source.detail) == (checks.OK, f"from account {ROTATED} (generation 2, the target's)")
    assert (target.area, source.area) == ("exports", "link") and report.healthy


@pytest.mark.parametrize("source_account", ["linkerd-service-mirror-remote-access-1", None])
def test_a_source_behind_the_targets_rotation_is_red_and_says_up_the_source(source_account: str | None) -> None:
    """After the target's `up` and before the source's: the Link still carries the revoked token."""
    values, objects = rotated(source_account)
    report = checks.collect(values, settings(), fake_kubectl(objects), gateways=silent)
    check = by_name(report)[("source", "link credentials")]
    linked = source_account or "linkerd-service-mirror-remote-access-default"  # a source from before rotation
    assert (check.state, check.detail) == (
        checks.FAIL,
        f"made from {linked}; the target exports {ROTATED} (generation 2): the old token is revoked, `up` the source",
    )
    assert not report.healthy and report.clusters[1].area_state("link") == checks.FAIL


def test_the_targets_account_missing_live_is_red() -> None:
    values, objects = rotated(ROTATED)
    objects["target"].pop()
    check = by_name(checks.collect(values, settings(), fake_kubectl(objects), gateways=silent))[("target", "link credentials")]
    assert (check.state, check.detail) == (checks.FAIL, f"generation 2: account {ROTATED} missing: `up` the target")


def test_stacks_from_before_rotation_show_no_credentials_line() -> None:
    report = checks.collect(outputs(), settings(), fake_kubectl(healthy_objects()), gateways=silent)
    assert [c for c in report.checks if c.name == "link credentials"] == []


# --- the trust rotation's gates (support/trust_gates; tests/test_trust_gates.py has every branch) ----------------

ROOTS_PEM = (
    "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nBBBB\n-----END CERTIFICATE-----"
)


def stamped(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def trust_outputs(phase: str) -> dict[str, Any]:
    """Outputs of stacks whose program made their issuers, the target mid-rotation at `phase`."""
    values = outputs()
    values["target"] = {**values["target"], "identityIssuers": {"target": {"generation": 0}}}
    values["target"]["identityAnchors"] = {"generation": 1, "phase": phase}
    values["source"] = {**values["source"], "identityIssuers": {"source": {"generation": 0}}}
    return values


def meshed_pod(namespace: str, name: str, started: datetime.datetime, roots: str | None, **labels: str) -> dict[str, Any]:
    notes = {"linkerd.io/trust-root-sha256": hashlib.sha256(roots.encode()).hexdigest()} if roots else {}
    containers = [{"name": "identity" if labels else "main"}, {"name": "linkerd-proxy"}]
    running = [{"name": c["name"], "state": {"running": {"startedAt": stamped(started)}}} for c in containers]
    return {
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {"linkerd.io/control-plane-ns": "linkerd", **labels},
                     "annotations": notes, "creationTimestamp": stamped(started)},
        "spec": {"containers": containers},
        "status": {"phase": "Running", "startTime": stamped(started), "containerStatuses": running},
    }  # fmt: skip


def trust_answers(written: datetime.datetime, *, loaded: bool) -> dict[str, Any]:
    """What the four trust `get`s answer: roots and issuer written at `written`, one meshed pod from before."""
    fields = [{"manager": "aes-linkerd2", "operation": "Apply", "time": stamped(written)}]
    roots = {"kind": "ConfigMap", "metadata": {"name": "linkerd-identity-trust-roots", "namespace": "linkerd",
             "managedFields": fields}, "data": {"ca-bundle.crt": ROOTS_PEM}}  # fmt: skip
    before, after = written - datetime.timedelta(minutes=30), written + datetime.timedelta(minutes=1)
    pods = [
        meshed_pod("default", "qotm-1", before, "old roots"),
        meshed_pod("default", "qotm-2", after, ROOTS_PEM),
        meshed_pod("linkerd", "linkerd-identity-1", before, None, **{"linkerd.io/control-plane-component": "identity"}),
    ]
    updated = {
        "kind": "Event",
        "metadata": {"name": "linkerd-identity.1", "namespace": "linkerd"},
        "involvedObject": {"kind": "Deployment", "namespace": "linkerd", "name": "linkerd-identity"},
        "reason": "IssuerUpdated",
        "message": "Updated identity issuer",
        "lastTimestamp": stamped(after),
    }
    return {
        stamped_key(read.MESHED_PODS): {"items": pods},
        stamped_key(read.ROOTS): roots,
        stamped_key(read.ISSUER): {"name": "linkerd-identity-issuer", "namespace": "linkerd", "managedFields": fields},
        stamped_key(read.IDENTITY_EVENTS): {"items": [updated] if loaded else []},
    }


def stamped_key(args: list[str]) -> str:
    return " ".join(args)


def trust_kubectl(objects: dict[str, list[dict[str, Any]]], answers: dict[str, dict[str, Any]]) -> Any:
    """fake_kubectl, and the trust gates' `get`s answered from `answers` by context (a missing one: NotFound)."""
    plain = fake_kubectl(objects)

    def kubectl_for(binary: str, context: str, kubeconfig: str | None) -> read.Kubectl:
        def run(args: list[str]) -> str:
            if args[1] in (read.KINDS, read.LINKS):
                return str(plain(binary, context, kubeconfig)(args))
            if stamped_key(args) not in answers[context]:
                raise read.KubectlError(f"Error from server (NotFound): {args[1]} not found")
            return json.dumps(answers[context][stamped_key(args)])

        return run

    return kubectl_for


def trust_lines(report: checks.Report) -> dict[tuple[str, str], tuple[str, str]]:
    return {(c.stack, c.name): (c.state, c.detail) for c in report.checks if c.area == "trust"}


def test_status_shows_the_rotation_its_pods_to_restart_and_the_issuer_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    written = datetime.datetime(2026, 12, 7, 10, 0, tzinfo=datetime.UTC)
    monkeypatch.setenv("AES_LINKERD2_NOW", "2026-12-07T10:03:00Z")
    answers = {"target": trust_answers(written, loaded=True), "source": trust_answers(written, loaded=False)}
    report = checks.collect(trust_outputs("bundle"), settings(), trust_kubectl(healthy_objects(), answers), gateways=silent)
    assert trust_lines(report) == {
        ("target", "rotation"): (checks.OK, f"{checks.PHASES['bundle']} (newest anchor: generation 1)"),
        ("target", "roots held"): (
            checks.WAITING,
            "2 of 3 meshed pod(s) to restart (roots written 2026-12-07T10:00:00Z): default: qotm-1; linkerd: linkerd-identity-1",
        ),
        ("target", "issuer loaded"): (checks.OK, "loaded: written 2026-12-07T10:00:00Z; 1 IssuerUpdated event(s)"),
        ("source", "roots held"): (
            checks.WAITING,
            "2 of 3 meshed pod(s) to restart (roots written 2026-12-07T10:00:00Z): default: qotm-1; linkerd: linkerd-identity-1",
        ),
        ("source", "issuer loaded"): (
            checks.WAITING,
            "not yet: written 2026-12-07T10:00:00Z (180s ago); 1 of 1 identity pod(s) started before it without IssuerUpdated",
        ),
    }
    assert report.healthy  # waiting is no failure
    assert "trust rotation" in views.svg(report) and f'stroke="{views.COLOURS[checks.WAITING]}"' in views.svg(report)
    assert any(
        line.split()[:4] == ["target", "trust", "roots", "held"] and " waiting " in line
        for line in views.text(report).splitlines()
    )

    # During `issuers`, a pod holding roots without the anchor that now signs is a failure; so is an issuer not loaded
    # ten minutes on. drop-old waits on both, naming why; where the Deployment cannot be read, the lifetime's defaults.
    monkeypatch.setenv("AES_LINKERD2_NOW", "2026-12-07T10:10:00Z")
    report = checks.collect(trust_outputs("issuers"), settings(), trust_kubectl(healthy_objects(), answers), gateways=silent)
    lines = trust_lines(report)
    assert lines[("target", "roots held")][0] == checks.FAIL
    assert lines[("source", "issuer loaded")] == (
        checks.FAIL,
        "not loaded: written 2026-12-07T10:00:00Z, 10 min ago; 1 of 1 identity pod(s) started before it without IssuerUpdated "
        "(linkerd2#15109): `kubectl rollout restart deploy/linkerd-identity -n linkerd`",
    )
    assert lines[("target", "drop-old")] == (
        checks.WAITING,
        "2 meshed proxy(ies) started before the new issuer was loaded (2026-12-07T10:01:00Z), restart them or wait until "
        "2026-12-08T10:01:10Z: default: qotm-1; linkerd: linkerd-identity-1; certificate lifetime 1 day, 0:00:00 + 0:00:10 "
        "clock skew (defaults, no flag on linkerd/linkerd-identity)",
    )
    assert lines[("source", "drop-old")][0] == checks.FAIL
    assert not report.healthy
    # During `restart` (the anchors of `issuers`, the meshed workloads restarted since) the same gates, read the same way.
    restart = trust_lines(
        checks.collect(trust_outputs("restart"), settings(), trust_kubectl(healthy_objects(), answers), gateways=silent)
    )
    assert restart.pop(("target", "rotation")) == (
        checks.OK,
        "restart: the meshed workloads restarted for new-chain certificates; `drop-old` waits until every proxy certificate "
        "is from a new issuer (newest anchor: generation 1)",
    )
    lines.pop(("target", "rotation"))
    assert restart == lines


def test_status_trust_lines_stable_and_unreadable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stable with every pod on the live roots: no pods line; a Secret kubectl may not read: unknown, saying why."""
    written = datetime.datetime(2026, 12, 7, 10, 0, tzinfo=datetime.UTC)
    monkeypatch.setenv("AES_LINKERD2_NOW", "2026-12-07T10:03:00Z")
    answers = {"target": trust_answers(written, loaded=True), "source": trust_answers(written, loaded=True)}
    for context in answers:
        answers[context][stamped_key(read.MESHED_PODS)]["items"] = answers[context][stamped_key(read.MESHED_PODS)]["items"][1:2]
    del answers["source"][stamped_key(read.ISSUER)]
    report = checks.collect(trust_outputs("stable"), settings(), trust_kubectl(healthy_objects(), answers), gateways=silent)
    assert trust_lines(report) == {
        ("target", "rotation"): (checks.OK, "stable: one trust anchor (newest anchor: generation 1)"),
        ("target", "issuer loaded"): (checks.UNKNOWN, "no linkerd-identity pod has started"),
        ("source", "issuer loaded"): (checks.UNKNOWN, "unknown: Error from server (NotFound): secret not found"),
    }


def running_pods(live: dict[str, str], context: str, namespace: str, names: list[str], seconds: float = 90) -> dict[str, Any]:
    """The pods once kwok has started each container (it stamps startedAt as it does), by name."""
    deadline = time.monotonic() + seconds
    while True:
        items = json.loads(kubectl(live, context, "get", "pods", "-n", namespace, "-o", "json"))["items"]
        found = {p["metadata"]["name"]: p for p in items if p["metadata"]["name"] in names}
        started = [
            n
            for n, p in found.items()
            if all("running" in (s.get("state") or {}) for s in p["status"].get("containerStatuses") or [{}])
        ]
        if sorted(started) == sorted(names):
            return found
        assert time.monotonic() < deadline, f"pods not running after {seconds}s: {sorted(set(names) - set(started))}"
        time.sleep(0.5)


def live_pod(name: str, namespace: str, roots: str | None = None, **labels: str) -> dict[str, Any]:
    """A pod as Linkerd's injector leaves one (its label, its proxy container, the roots' hash when given)."""
    notes = {"linkerd.io/trust-root-sha256": hashlib.sha256(roots.encode()).hexdigest()} if roots else {}
    first = "identity" if labels else "main"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {"linkerd.io/control-plane-ns": "linkerd", **labels},
                     "annotations": notes},
        "spec": {"containers": [{"name": first, "image": "example.invalid/none:1"},
                                {"name": "linkerd-proxy", "image": "example.invalid/proxy:1"}]},
    }  # fmt: skip


def later_second() -> None:
    """Past the next whole second: managedFields and kwok's startedAt keep seconds."""
    time.sleep(1.1 - (time.time() % 1) + 0.05)


def test_live_trust_gates(live: dict[str, str]) -> None:
    """The gates over objects of a live API server read back through the real kubectl: pods scheduled and started by
    kwok before and after the roots' write, the roots ConfigMap, an issuer Secret (a STAND-IN: no key in it) and an
    `IssuerUpdated` Event written as the identity controller records it (STAND-IN: no identity controller runs here)."""
    from support import trust_gates as gates

    namespaces_ = [{"apiVersion": "v1", "kind": "Namespace", "metadata": meta(n)} for n in ("linkerd", "gates")]
    apply(live, "target", namespaces_)
    identity = {"linkerd.io/control-plane-component": "identity"}
    before = ["old-roots", "unannotated", "current"]
    apply(live, "target", [
        live_pod("old-roots", "gates", roots="old roots"), live_pod("unannotated", "gates"),
        live_pod("current", "gates", roots=ROOTS_PEM), live_pod("linkerd-identity-a", "linkerd", **identity),
    ])  # fmt: skip
    first = running_pods(live, "target", "gates", before)
    running_pods(live, "target", "linkerd", ["linkerd-identity-a"])
    later_second()
    roots = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("linkerd-identity-trust-roots", "linkerd"),
             "data": {"ca-bundle.crt": ROOTS_PEM}}  # fmt: skip
    issuer = {"apiVersion": "v1", "kind": "Secret", "metadata": meta("linkerd-identity-issuer", "linkerd"), "type": "Opaque",
              "stringData": {"note": "stand-in: no key"}}  # fmt: skip
    apply(live, "target", [roots, issuer])
    later_second()
    apply(live, "target", [live_pod("after", "gates")])
    after = running_pods(live, "target", "gates", ["after"])["after"]
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": meta("linkerd-identity.gates", "linkerd"),
        "involvedObject": {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "linkerd", "name": "linkerd-identity"},
        "reason": "IssuerUpdated",
        "message": "Updated identity issuer",
        "source": {"component": "linkerd-identity"},
        "type": "Normal",
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }
    kubectl(live, "target", "create", "-f", "-", stdin=json.dumps(event))

    found = read.read_trust(read.kubectl_runner(live["kubectl"], "target", live["kubeconfig"]))
    assert found.errors == {}
    # Of the Secret, its metadata alone reached this process (its field names, in managedFields; not its value).
    assert found.issuer is not None and list(found.issuer) == ["metadata"] and "c3RhbmQtaW4" not in json.dumps(found.issuer)
    stored = json.loads(kubectl(live, "target", "get", "cm", "linkerd-identity-trust-roots", "-n", "linkerd",
                                "--show-managed-fields", "-o", "json"))  # fmt: skip
    written = gates.last_written(stored)
    assert written is not None and gates.last_written(found.roots) == written
    assert gates.container_started(first["unannotated"], "linkerd-proxy") < written  # type: ignore[operator]
    assert gates.container_started(after, "linkerd-proxy") >= written  # type: ignore[operator]
    assert found.pods is not None and {p["metadata"]["name"] for p in found.pods} >= {*before, "after", "linkerd-identity-a"}
    # Beside ours, what the real deployment controller records about a Deployment of that name (test_live_clusters
    # made one): the gate counts the identity controller's reasons only.
    assert found.events is not None and [e["reason"] for e in found.events if e["reason"] != "ScalingReplicaSet"] == [
        "IssuerUpdated"
    ]

    held = gates.restarted(found.pods, found.roots)
    # The identity pod is meshed too (its proxy), and started before the roots: to restart as well.
    expected = {"gates": ["old-roots", "unannotated"], "linkerd": ["linkerd-identity-a"]}
    assert (held.verdict, held.to_restart) == (gates.Verdict.WAIT, expected)
    assert {k: v for k, v in held.why.items() if k.startswith("gates/")} == {
        "gates/old-roots": f"holds roots {hashlib.sha256(b'old roots').hexdigest()[:12]}, not the live roots'",
        "gates/unannotated": f"proxy started {gates.stamp(gates.container_started(first['unannotated'], 'linkerd-proxy'))}, "
        "before the roots' write",
    }
    issuer_written = gates.last_written(found.issuer)
    assert issuer_written is not None
    loaded = gates.issuer_loaded(found.issuer, found.events, found.pods, datetime.datetime.now(datetime.UTC))
    assert loaded == gates.IssuerLoaded(
        gates.Verdict.PASS,
        f"loaded: written {gates.stamp(issuer_written)}; 1 IssuerUpdated event(s)",
        issuer_written,
        gates.parse_time(now),
    )
    # Before the Event is read (as the write is new): not yet.
    waiting = gates.issuer_loaded(found.issuer, [], found.pods, issuer_written + datetime.timedelta(seconds=30))
    assert waiting.verdict is gates.Verdict.WAIT and waiting.detail.endswith(
        "(30s ago); 1 of 1 identity pod(s) started before it without IssuerUpdated"
    )
    # The same through `status`, mid-rotation: the target's trust lines as read live.
    report = checks.collect(
        trust_outputs("bundle"), settings(live["kubectl"], live["kubeconfig"]), read.kubectl_runner, gateways=silent
    )
    lines = trust_lines(report)
    assert lines[("target", "roots held")] == (checks.WAITING, held.detail)
    assert lines[("target", "issuer loaded")] == (checks.OK, loaded.detail)
    assert held.detail.startswith(f"3 of {held.meshed} meshed pod(s) to restart (roots written {gates.stamp(written)}): ")
    kubectl(live, "target", "delete", "namespace", "gates", "--wait=false")


def test_certs_shows_each_ones_headroom_and_the_gates(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """`./aes-linkerd2 certs` mid-rotation (a fake engine's outputs, constructed answers): the table, the days before
    each certificate is due, the trust lines as `status` reads them; the exit code still says only what is due."""
    from driver.__main__ import main
    from tests.test_driver import FakeEngine, deployment

    class Deployed(FakeEngine):
        def outputs(self, stack: str) -> dict[str, Any]:
            return dict(trust_outputs("bundle")[stack])

    written = datetime.datetime(2026, 12, 7, 10, 0, tzinfo=datetime.UTC)
    monkeypatch.setenv("AES_LINKERD2_NOW", "2026-12-07T10:03:00Z")
    answers = {"target": trust_answers(written, loaded=True), "source": trust_answers(written, loaded=True)}
    monkeypatch.setattr("driver.__main__.Deployment", lambda *a, **k: deployment(Deployed(), kubeconfig=tmp_path / "kubeconfig"))
    monkeypatch.setattr("driver.status.read.kubectl_runner", trust_kubectl(healthy_objects(), answers))

    assert main(["certs"]) == 0
    out = capsys.readouterr().out.splitlines()
    pods = "2 of 3 meshed pod(s) to restart (roots written 2026-12-07T10:00:00Z): default: qotm-1; linkerd: linkerd-identity-1"
    loaded = "loaded: written 2026-12-07T10:00:00Z; 1 IssuerUpdated event(s)"
    headroom = [line for line in out if ": days before due: " in line]
    assert len(headroom) == 2 and headroom[0].startswith("target: days before due: trust-anchor ")
    assert out[out.index(headroom[0]) + 1 :] == [
        f"target: rotation: ok: {checks.PHASES['bundle']} (newest anchor: generation 1)",
        f"target: roots held: waiting: {pods}",
        f"target: issuer loaded: ok: {loaded}",
        headroom[1],
        f"source: roots held: waiting: {pods}",
        f"source: issuer loaded: ok: {loaded}",
    ]
    assert main(["certs", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [(r["name"], r["headroomDays"] == r["daysLeft"] - 60) for r in data["certificates"]] == [
        ("trust-anchor", True), ("target-issuer", True), ("source-issuer", True)
    ]  # fmt: skip
    assert {"stack": "source", "name": "roots held", "state": "waiting", "detail": pods} in data["trust"]
