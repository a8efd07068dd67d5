"""What the stack creates and retains, found again outside its state: used as it is, never created twice.

pulumi-kubernetes 4.29 on refuses to create what exists (AlreadyExists) and older ones took it over.
The namespaces the program makes and the CRDs upstream keeps outlive `destroy`; another team may have
installed Gateway API first. The program reads which of them are live and which its state holds (its
`retainedObjects` output) and registers only the others. The live reading itself is tested against a
real API server in tests/test_namespaces_live.py.
"""

from __future__ import annotations

import pytest

from support import live_cluster, retained
from support.live_cluster import LiveCluster
from tests.conftest import kubernetes_resources, run_stack, target_config
from tests.harness import Run

GATEWAY_API = [
    "grpcroutes.gateway.networking.k8s.io",
    "httproutes.gateway.networking.k8s.io",
    "tcproutes.gateway.networking.k8s.io",
    "tlsroutes.gateway.networking.k8s.io",
]
OWN_STACK = "organization/aes-linkerd2/target"
OURS = {"annotations": {"aes-linkerd2.io/stack": "aes-linkerd2/target"}}


def crd(name: str) -> str:
    return f"CustomResourceDefinition/{name}"


def test_a_new_or_destroyed_stack_holds_nothing_an_older_one_holds_all_it_declares() -> None:
    assert retained.held({}) == frozenset()
    # Updated before the output existed: everything it declares is in its state, as it always was.
    assert retained.held({"clusterName": "target"}) is None
    assert retained.held({"retainedObjects": ["Namespace/shop", crd(GATEWAY_API[0])]}) == frozenset(
        {"Namespace/shop", crd(GATEWAY_API[0])}
    )


def test_what_is_live_and_not_held_is_already_there() -> None:
    live = LiveCluster(
        namespaces={"shop": OURS, "theirs": {}, "sources": {"annotations": {"aes-linkerd2.io/stack": "aes-linkerd2/source"}}},
        crds=frozenset([GATEWAY_API[0], GATEWAY_API[1], "links.multicluster.linkerd.io"]),
    )
    found = retained.already_there(live, "target", frozenset([crd(GATEWAY_API[1])]))
    # Someone else's namespace is no candidate: it is refused (namespaces.check_live), never used.
    assert found == {"Namespace/shop", crd(GATEWAY_API[0]), crd("links.multicluster.linkerd.io")}
    assert retained.already_there(live, "target", None) == frozenset()
    assert retained.already_there(None, "target", frozenset()) == frozenset()


def up(monkeypatch: pytest.MonkeyPatch, live: LiveCluster, last: dict[str, object], preview: bool = False) -> Run:
    monkeypatch.setattr(live_cluster, "read", lambda cfg, run=None: live)
    config = target_config(meshedNamespaces=["default", "shop"], existingNamespaces=["default"])
    run = run_stack("target", config, preview=preview, stack_references={OWN_STACK: last})
    assert run.error is None, run.error
    return run


@pytest.mark.parametrize("preview", [False, True])
def test_a_first_up_registers_and_records_every_retained_object(monkeypatch: pytest.MonkeyPatch, preview: bool) -> None:
    run = up(monkeypatch, LiveCluster(namespaces={"default": {}}), {}, preview)
    assert sorted(r.object_name or "" for r in run.find("CustomResourceDefinition") if r.retain_on_delete) == GATEWAY_API
    assert run.one("Namespace", "shop").retain_on_delete
    assert run.outputs["retainedObjects"] == sorted([*map(crd, GATEWAY_API), "Namespace/shop"])


@pytest.mark.parametrize("preview", [False, True])
def test_after_destroy_what_it_left_and_others_gateway_api_are_used_as_they_are(
    monkeypatch: pytest.MonkeyPatch, preview: bool
) -> None:
    """After `destroy` (no outputs), with another team's Gateway API CRDs and the stack's own namespace left."""
    live = LiveCluster(namespaces={"default": {}, "shop": OURS}, crds=frozenset(GATEWAY_API[:2]))
    run = up(monkeypatch, live, {}, preview)
    registered = {r.object_name for r in kubernetes_resources(run)}
    assert registered.isdisjoint(GATEWAY_API[:2])
    assert set(GATEWAY_API[2:]) <= registered
    # Not created again: only annotated, by the same patch a created namespace has.
    assert run.find("Namespace", "shop") == []
    patch = run.one("NamespacePatch", "ns-shop-inject")
    assert patch.inputs["metadata"] == {"name": "shop", "annotations": {"linkerd.io/inject": "enabled"}}
    # What it registered, it records; what it used as it was, it does not (it never deletes it).
    assert run.outputs["retainedObjects"] == sorted(map(crd, GATEWAY_API[2:]))


def test_a_second_up_keeps_what_its_state_holds(monkeypatch: pytest.MonkeyPatch) -> None:
    everything = sorted([*map(crd, GATEWAY_API), "Namespace/shop"])
    live = LiveCluster(namespaces={"default": {}, "shop": OURS}, crds=frozenset(GATEWAY_API))
    run = up(monkeypatch, live, {"clusterName": "target", "retainedObjects": everything})
    assert sorted(r.object_name or "" for r in run.find("CustomResourceDefinition") if r.retain_on_delete) == GATEWAY_API
    assert run.one("Namespace", "shop").retain_on_delete
    assert run.outputs["retainedObjects"] == everything


def test_a_stack_from_before_the_output_keeps_all_it_declares(monkeypatch: pytest.MonkeyPatch) -> None:
    """No plan to forget anything on the first `up` after an upgrade: everything live is taken as held."""
    live = LiveCluster(namespaces={"default": {}, "shop": OURS}, crds=frozenset(GATEWAY_API))
    run = up(monkeypatch, live, {"clusterName": "target"})
    assert sorted(r.object_name or "" for r in run.find("CustomResourceDefinition") if r.retain_on_delete) == GATEWAY_API
    assert run.one("Namespace", "shop").retain_on_delete
