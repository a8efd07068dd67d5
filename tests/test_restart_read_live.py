"""Which workloads of the meshed namespaces a trust rotation restarts, read from a real API server through the real
kubectl (tests/api_server.py): the program's own read (support/live_cluster.workloads), which the unit tests stand in."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import yaml

from support import clusters, live_cluster
from support.restarts import Workload
from tests.api_server import ApiServer, api_server
from tests.test_namespaces_live import stack_config

# The real reading (tests/conftest.py stands it in for the unit tests' stub server).
READ_LIVE = live_cluster.workloads


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    with api_server(tmp_path_factory.mktemp("api")) as running:
        yield running


def workload(kind: str, namespace: str, name: str, inject: str | None = None) -> str:
    template: dict[str, object] = {
        "metadata": {"labels": {"app": name}, **({"annotations": {"linkerd.io/inject": inject}} if inject else {})},
        "spec": {"containers": [{"name": "app", "image": "example.invalid/app:1"}]},
    }
    spec: dict[str, object] = {"selector": {"matchLabels": {"app": name}}, "template": template}
    if kind == "StatefulSet":
        spec["serviceName"] = name
    body = {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name, "namespace": namespace}, "spec": spec}
    return yaml.safe_dump(body)


def test_the_meshed_namespaces_workloads_are_read_live_without_the_opted_out(
    server: ApiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(clusters.OFFLINE_ENV, raising=False)
    for namespace in ("apps", "elsewhere"):
        server.run("admin", "create", "namespace", namespace)
    objects = [
        workload("Deployment", "apps", "web"),
        workload("StatefulSet", "apps", "db"),
        workload("DaemonSet", "apps", "agent"),
        # Opted out of the mesh: its pods hold no roots, nothing to restart.
        workload("Deployment", "apps", "batch", inject="disabled"),
        # Not in a meshed namespace.
        workload("Deployment", "elsewhere", "other"),
    ]
    server.run("admin", "apply", "-f", "-", stdin="---\n".join(objects))
    # `fresh` does not exist yet (the program creates it): nothing there.
    cfg = stack_config(server, meshed=["apps", "fresh"], existing=["apps"])
    assert READ_LIVE(cfg) == (
        Workload("DaemonSet", "apps", "agent"),
        Workload("Deployment", "apps", "web"),
        Workload("StatefulSet", "apps", "db"),
    )
