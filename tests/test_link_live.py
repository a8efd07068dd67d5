"""The Link as the real pinned `linkerd multicluster link-gen` generates it from a live target, with the
program's own arguments (components/multicluster_source.link_args), and the target's export labels
(components/multicluster_target) it selects by.

One etcd and kube-apiserver on loopback (tests/api_server.py) stand in for the target cluster; it holds
what link-gen reads there: linkerd-config, the service mirror's remote-access account and its token
Secret, and, for a gateway Link, Edge Stack's Service as the target's `up` patches it. Skipped, naming
the tools, when they are not built.
"""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from components.multicluster_source import link_args
from components.multicluster_target import MulticlusterTargetArgs, gateway_service_annotations
from support import upstream
from support.config_model import GatewaySettings
from tests.api_server import ApiServer, api_server
from tests.conftest import real_linkerd

LINE = upstream.CURRENT
GATEWAY = LINE.edge_stack["emissary"]
ACCOUNT = "linkerd-service-mirror-remote-access-default"
PORTS = GatewaySettings(
    port=4143, probe_port=80, probe_target_port=8080, probe_path="/-/ambassador/ready", probe_period_seconds=3
)


def target_objects() -> list[dict[str, Any]]:
    """What link-gen reads on the target: Linkerd's config, the mirror's account and token, the gateway Service."""
    annotations = gateway_service_annotations(
        MulticlusterTargetArgs(
            line=LINE, product=GATEWAY, service_ports=(), hostname="gw.example.com", ports=PORTS,
            trust_domain="cluster.local", exported_services=(),
        )
    )  # fmt: skip
    namespaces = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}} for name in
                  ("linkerd", "linkerd-multicluster", GATEWAY.namespace)]  # fmt: skip
    return [
        *namespaces,
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "linkerd-config", "namespace": "linkerd"},
            "data": {"values": "clusterDomain: cluster.local\nidentityTrustDomain: cluster.local\n"},
        },
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": ACCOUNT, "namespace": "linkerd-multicluster"}},
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/service-account-token",
            "metadata": {
                "name": f"{ACCOUNT}-token",
                "namespace": "linkerd-multicluster",
                "annotations": {"kubernetes.io/service-account.name": ACCOUNT},
            },
            # No token controller runs here: the stand-in token is written as the controller would write one.
            "data": {"token": base64.b64encode(b"stand-in-token").decode()},
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": GATEWAY.service, "namespace": GATEWAY.namespace, "annotations": annotations},
            "spec": {
                "selector": {"app": "gateway"},
                "ports": [
                    {"name": "mc-probe", "port": 80, "targetPort": 8080},
                    {"name": "https", "port": 443, "targetPort": 8443},
                    {"name": "mc-gateway", "port": 4143},
                ],
            },
        },
    ]


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    with api_server(tmp_path_factory.mktemp("link-live")) as server:
        server.run("admin", "apply", "--server-side", "-f", "-", stdin=yaml.safe_dump_all(target_objects()))
        yield server


def generate(server: ApiServer, *, gateway: bool, addresses: tuple[str, ...] = ()) -> dict[str, dict[str, Any]]:
    """The real CLI's output for the program's arguments, by kind (Link, and the two credentials Secrets)."""
    args = link_args(LINE, "target", GATEWAY.deployment, GATEWAY.namespace, addresses, gateway=gateway)
    done = subprocess.run(
        [real_linkerd(), "--kubeconfig", server.kubeconfig, "--context", "admin", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    objects = [o for o in yaml.safe_load_all(done.stdout) if o]
    assert sorted(o["kind"] for o in objects) == ["Link", "Secret", "Secret"]
    return {o["kind"]: o for o in objects}


def selected_by(selector: dict[str, Any]) -> dict[str, str]:
    assert set(selector) == {"matchLabels"}, selector
    return dict(selector["matchLabels"])


def test_a_link_without_a_gateway_selects_the_pod_to_pod_modes_by_the_targets_labels(target: ApiServer) -> None:
    spec = generate(target, gateway=False, addresses=("192.0.2.10",))["Link"]["spec"]
    # Nothing of a gateway: no address, identity, port, probe, nor a selector for gateway exports.
    assert not {"gatewayAddress", "gatewayIdentity", "gatewayPort", "probeSpec", "selector"} & {
        key for key, value in spec.items() if value not in (None, "", {})
    }, json.dumps(spec)
    label, value = upstream.EXPORT_LABELS["remote-discovery"]
    assert selected_by(spec["remoteDiscoverySelector"]) == {label: value} == {"mirror.linkerd.io/exported": "remote-discovery"}
    label, value = upstream.EXPORT_LABELS["federated"]
    assert selected_by(spec["federatedServiceSelector"]) == {label: value} == {"mirror.linkerd.io/federated": "member"}


def test_a_link_through_edge_stack_selects_every_mode_by_the_targets_labels(target: ApiServer) -> None:
    spec = generate(target, gateway=True, addresses=("192.0.2.10",))["Link"]["spec"]
    assert spec["gatewayAddress"] == "192.0.2.10"
    assert spec["gatewayIdentity"] == "emissary-ingress.emissary.serviceaccount.identity.linkerd.cluster.local"
    assert spec["gatewayPort"] == "4143"
    assert spec["probeSpec"]["path"] == "/-/ambassador/ready" and spec["probeSpec"]["period"] == "3s"
    for mode, key in (("gateway", "selector"), ("remote-discovery", "remoteDiscoverySelector"),
                      ("federated", "federatedServiceSelector")):  # fmt: skip
        label, value = upstream.EXPORT_LABELS[mode]
        assert selected_by(spec[key]) == {label: value}, mode


def test_the_link_carries_the_token_only_in_its_credentials(target: ApiServer) -> None:
    made = generate(target, gateway=False)
    kubeconfig = base64.b64decode(made["Secret"]["data"]["kubeconfig"]).decode()
    assert "stand-in-token" in kubeconfig
    assert "stand-in-token" not in json.dumps(made["Link"])
