"""The program's own check of the meshed namespaces, against a real API server (tests/api_server.py).

Under plain `pulumi preview`/`up` no pre-flight runs: the program itself must refuse to create a
namespace that someone else already has (pulumi-kubernetes would take it over by server-side apply).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from support import clusters, live_cluster, retained
from support.config import load
from support.config_model import StackConfig
from support.config_sources import SettingsSource
from support.errors import ConfigError
from support.namespaces import check_live
from tests.api_server import ApiServer, api_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    with api_server(tmp_path_factory.mktemp("api")) as running:
        yield running


def stack_config(server: ApiServer, meshed: list[str], existing: list[str]) -> StackConfig:
    values = {
        "role": "target",
        "context": "admin",
        "kubeconfig": server.kubeconfig,
        "kubectl": server.kubectl,
        "gatewayHostname": "gateway.example.com",
        "edgeStackProduct": "emissary",
        "edgeStackVersion": "3.9.1",
        "edgeStackCrds": "emissary-crds.yaml",
        "edgeStackManifest": "emissary.yaml",
        "meshedNamespaces": meshed,
        "existingNamespaces": existing,
        "qotm": False,
    }
    return load(SettingsSource(values, frozenset(), "target"))


def make_namespace(server: ApiServer, name: str, owner: str | None = None) -> None:
    server.run("admin", "create", "namespace", name)
    if owner:
        server.run("admin", "annotate", "namespace", name, f"aes-linkerd2.io/stack={owner}")


OWNER = "aes-linkerd2.io/stack"

# The real reading (tests/conftest.py stands it in for the unit tests' stub server).
READ_LIVE = live_cluster.read


def check(cfg: StackConfig, stack: str, run: live_cluster.RunKubectl = live_cluster.run_kubectl) -> None:
    """What the program does first: read the cluster, then refuse what it cannot own."""
    check_live(cfg, stack, READ_LIVE(cfg, run))


@pytest.fixture(autouse=True)
def no_preflight(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(clusters.PREFLIGHT_ENV, raising=False)
    monkeypatch.delenv(clusters.OFFLINE_ENV, raising=False)


def test_someone_elses_namespace_is_refused_before_anything_is_registered(server: ApiServer) -> None:
    make_namespace(server, "team-a")
    with pytest.raises(ConfigError) as refused:
        check(stack_config(server, ["default", "team-a"], ["default"]), "target")
    assert (refused.value.key, refused.value.value) == ("meshedNamespaces", "team-a")
    assert "exists and was not created by this stack: add it to existingNamespaces in Pulumi.target.yaml" in str(refused.value)


def test_a_listed_one_a_new_one_and_one_this_stack_made_are_accepted(server: ApiServer) -> None:
    make_namespace(server, "team-b")
    make_namespace(server, "made-here", owner="aes-linkerd2/target")
    # team-b listed as existing, made-here marked as this stack's, brand-new created by the program.
    check(stack_config(server, ["default", "team-b", "made-here", "brand-new"], ["default", "team-b"]), "target")


def test_another_stacks_namespace_is_not_this_ones(server: ApiServer) -> None:
    make_namespace(server, "made-by-source", owner="aes-linkerd2/source")
    with pytest.raises(ConfigError) as refused:
        check(stack_config(server, ["default", "made-by-source"], ["default"]), "target")
    assert refused.value.value == "made-by-source"


def test_a_listed_namespace_that_does_not_exist_is_refused(server: ApiServer) -> None:
    with pytest.raises(ConfigError) as refused:
        check(stack_config(server, ["default", "nowhere"], ["default", "nowhere"]), "target")
    assert refused.value.value == "nowhere" and "does not exist" in str(refused.value)


def test_skipped_where_the_pre_flight_asked_or_no_kubeconfig_names_the_context(
    server: ApiServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    make_namespace(server, "team-c")
    cfg = stack_config(server, ["default", "team-c"], ["default"])
    monkeypatch.setenv(clusters.PREFLIGHT_ENV, "1")
    check(cfg, "target")  # the pre-flight reported it already, with every other stack's problems
    monkeypatch.delenv(clusters.PREFLIGHT_ENV)
    asked: list[list[str]] = []
    other = dataclasses.replace(cfg, cluster=dataclasses.replace(cfg.cluster, context="not-in-the-kubeconfig"))

    def kubectl(argv: Sequence[str]) -> str:
        asked.append(list(argv))
        return '{"items": []}'

    check(other, "target", run=kubectl)
    assert asked == []  # the provider reports a context it cannot find


def test_an_unreachable_cluster_names_kubectl(server: ApiServer, tmp_path: Path) -> None:
    broken = tmp_path / "kubectl"
    broken.write_text("#!/bin/sh\necho 'The connection to the server was refused' >&2\nexit 1\n")
    broken.chmod(0o755)
    cfg = dataclasses.replace(stack_config(server, ["default"], ["default"]), kubectl=str(broken))
    with pytest.raises(ConfigError) as refused:
        check(cfg, "target")
    assert refused.value.key == "kubectl" and "connection to the server was refused" in str(refused.value)


def test_the_crds_are_read_by_name_and_what_is_not_held_is_already_there(server: ApiServer, tmp_path: Path) -> None:
    """What support/retained.py decides from: the live CRD names and the namespaces with this stack's mark."""
    definition = tmp_path / "crd.yaml"
    definition.write_text(
        """apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  names: {kind: Widget, plural: widgets}
  scope: Namespaced
  versions: [{name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object}}}]
"""
    )
    server.run("admin", "apply", "-f", str(definition))
    make_namespace(server, "left-by-destroy", owner="aes-linkerd2/target")
    live = READ_LIVE(stack_config(server, ["default"], ["default"]))
    assert live is not None and "widgets.example.com" in live.crds
    found = retained.already_there(live, "target", frozenset({"CustomResourceDefinition/widgets.example.com"}))
    assert "Namespace/left-by-destroy" in found and "CustomResourceDefinition/widgets.example.com" not in found
    # Only namespaces with this stack's mark (earlier tests here made some), never kube-system or default.
    marked = {
        name
        for name, metadata in live.namespaces.items()
        if (metadata.get("annotations") or {}).get(OWNER) == "aes-linkerd2/target"
    }
    assert {key.partition("/")[2] for key in found if key.startswith("Namespace/")} == marked
    assert {"default", "kube-system"}.isdisjoint(marked) and "left-by-destroy" in marked


def test_the_program_and_the_pre_flight_read_the_namespaces_alike(server: ApiServer, tmp_path: Path) -> None:
    """One reader (live_cluster.list_items) for both: the same answer, each failure said at its own edge."""
    from driver import api, preflight

    make_namespace(server, "team-d")
    cfg = stack_config(server, ["default", "team-d"], ["default"])
    listed = live_cluster.list_items(api._run_tool, cfg.kubectl, cfg.cluster, "namespaces")
    live = READ_LIVE(cfg)
    assert live is not None and live_cluster.by_name(listed) == live.namespaces and "team-d" in live.namespaces
    [finding] = preflight.namespaces("target", cfg, api._run_tool)
    assert (finding.ok, finding.subject) == (False, f"target: meshedNamespaces on {cfg.cluster.context}: team-d")
    with pytest.raises(ConfigError) as refused:
        check(cfg, "target")
    assert refused.value.value == "team-d" and str(refused.value).endswith(finding.message)
    # A kubectl that answers something else than a list: ConfigError naming it; a failed check in the pre-flight.
    odd = tmp_path / "kubectl"
    odd.write_text('#!/bin/sh\necho \'{"kind": "Status"}\'\n')
    odd.chmod(0o755)
    with pytest.raises(ConfigError) as unread:
        READ_LIVE(dataclasses.replace(cfg, kubectl=str(odd)))
    said = "`kubectl get namespaces -o json` did not print a list"
    assert (unread.value.key, unread.value.value) == ("kubectl", str(odd)) and str(unread.value).endswith(said)
    [failed] = preflight.namespaces("target", dataclasses.replace(cfg, kubectl=str(odd)), api._run_tool)
    assert not failed.ok and failed.message == f"cannot list the cluster's namespaces: {said}"
