"""A trust rotation restarts exactly the meshed pod templates the program meshes: the real program under mocks,
the real linkerd CLI rendering Linkerd, the live workloads of the meshed namespaces given by the test.

The mark (`aes-linkerd2.io/trust-anchors`, the anchors in the roots) changes when the roots do, at `bundle`
and `drop-old`, and at the optional `restart` step between `issuers` and `drop-old` (`0 1 after issuers`); a new
value rolls the pods. The program's own templates carry it (Edge Stack's inject patch, QOTM, the multicluster
extension's injected workloads, and at `restart` alone Linkerd's own Deployments, the identity controller's first);
each other workload of a meshed namespace gets it by a patch of its own field manager, retained on delete.
"""

from __future__ import annotations

from typing import Any

import pytest

from support import live_cluster, upstream
from support.restarts import Workload
from tests.conftest import run_stack, source_config, target_config, target_outputs
from tests.harness import Run

MARK = upstream.TRUST_ANCHORS_ANNOTATION
TARGET = "organization/aes-linkerd2/target"
SOURCE = "organization/aes-linkerd2/source"
WORKLOADS = (
    Workload("Deployment", "default", "web"),
    Workload("StatefulSet", "default", "db"),
    Workload("DaemonSet", "default", "agent"),
    # QOTM is the program's own: its Deployment carries the mark itself, never a patch.
    Workload("Deployment", "default", "qotm"),
)
PATCH_KINDS = ("DeploymentPatch", "StatefulSetPatch", "DaemonSetPatch")


@pytest.fixture
def live(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The meshed namespaces' workloads as the cluster lists them; records each read."""
    reads: list[Any] = []

    def workloads(cfg: Any, run: Any = None) -> tuple[Workload, ...]:
        reads.append(cfg.workloads.meshed_namespaces)
        return WORKLOADS

    monkeypatch.setattr(live_cluster, "workloads", workloads)
    return reads


def target_step(
    step: str | None, previous: dict[str, Any] | None, last: dict[str, Any] | None = None, preview: bool = False
) -> Run:
    config = target_config(**({"trustAnchorRotation": step} if step else {}))
    outputs = {**({"identityAnchors": previous} if previous else {}), **(last or {})}
    run = run_stack("target", config, preview=preview, stack_references={TARGET: outputs} if outputs else None)
    assert run.error is None, run.error
    return run


def template_annotations(run: Run) -> dict[str, dict[str, str]]:
    """Every pod template the stack registers or patches, by resource name, with its annotations."""
    found = {}
    for r in run.registrations:
        template = (r.inputs.get("spec") or {}).get("template")
        if r.kind in ("Deployment", "StatefulSet", "DaemonSet", *PATCH_KINDS) and isinstance(template, dict):
            found[r.name] = dict((template.get("metadata") or {}).get("annotations") or {})
    return found


def marked(run: Run) -> dict[str, str]:
    return {name: annotations[MARK] for name, annotations in template_annotations(run).items() if MARK in annotations}


def restart_patches(run: Run) -> list[Any]:
    return [r for r in run.registrations if r.kind in PATCH_KINDS and r.name.startswith("restart-")]


# The program's own templates that carry the mark on the target: Edge Stack's Deployment, QOTM, and the multicluster
# extension's workloads the injector meshes. Linkerd's control plane rolls by its own `linkerd.io/trust-root-sha256`.
OWN_TARGET = {
    "edge-stack:ambassador/edge-stack",
    "qotm-deployment",
    "linkerd-multicluster:linkerd-multicluster/linkerd-local-service-mirror",
}
USERS = {"restart-deployment-default-web", "restart-statefulset-default-db", "restart-daemonset-default-agent"}


@pytest.mark.parametrize("preview", [False, True])
def test_bundle_marks_exactly_the_meshed_templates_the_program_meshes(live: list[Any], preview: bool) -> None:
    run = target_step("bundle", {"generation": 0, "phase": "stable"}, preview=preview)
    assert marked(run) == dict.fromkeys(OWN_TARGET | USERS, "0 1")
    assert live == [("default",)]
    # Edge Stack: the mark rides on the inject patch, beside what `linkerd inject` added.
    inject = template_annotations(run)["edge-stack:ambassador/edge-stack"]
    assert inject[upstream.INJECT_ANNOTATION] == upstream.INJECT_ENABLED and inject[MARK] == "0 1"
    # QOTM: its own Deployment's template, nothing else there.
    assert template_annotations(run)["qotm-deployment"] == {MARK: "0 1"}
    # Linkerd's control plane: not marked (its roots hash rolls it), and the extension's own hash-less injected pods are.
    for deployment in run.find("Deployment", namespace="linkerd"):
        assert MARK not in template_annotations(run)[deployment.name]
    assert run.outputs["restartedWorkloads"] == {
        "mark": "0 1",
        "workloads": ["DaemonSet/default/agent", "Deployment/default/web", "StatefulSet/default/db"],
    }


def test_a_users_workload_is_patched_with_its_own_field_manager_retained_after_the_control_plane(live: list[Any]) -> None:
    run = target_step("bundle", {"generation": 0, "phase": "stable"})
    patches = {r.name: r for r in restart_patches(run)}
    assert set(patches) == USERS
    web = patches["restart-deployment-default-web"]
    assert web.type == "kubernetes:apps/v1:DeploymentPatch"
    assert web.inputs == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": "default",
            "annotations": {"pulumi.com/patchFieldManager": "aes-linkerd2-restart"},
        },
        "spec": {"template": {"metadata": {"annotations": {MARK: "0 1"}}}},
    }
    # Removing the patch must leave the annotation (its removal would roll the workload); never forced.
    assert all(p.retain_on_delete and not p.protect for p in patches.values())
    assert "pulumi.com/patchForce" not in str(web.inputs)
    assert patches["restart-statefulset-default-db"].type == "kubernetes:apps/v1:StatefulSetPatch"
    assert patches["restart-daemonset-default-agent"].type == "kubernetes:apps/v1:DaemonSetPatch"
    # Restarted pods must be admitted by an injector that holds the new roots: after the control plane's rollout.
    injector = run.one("Deployment", "linkerd-proxy-injector", "linkerd")
    assert all(run.depends(p, on=injector) for p in patches.values())
    component = run.one("WorkloadRestart", "restart")
    assert all(p.parent == component.urn for p in patches.values())


def test_a_stack_that_never_rotated_marks_nothing_and_reads_no_workload(live: list[Any]) -> None:
    run = target_step(None, None)
    assert marked(run) == {} and restart_patches(run) == []
    assert "restartedWorkloads" not in run.outputs
    assert live == []


def test_issuers_keeps_the_mark_and_drop_old_changes_it(live: list[Any]) -> None:
    last = {"restartedWorkloads": {"mark": "0 1", "workloads": ["Deployment/default/web", "StatefulSet/default/db"]}}
    issuers = target_step("issuers", {"generation": 1, "phase": "bundle"}, last)
    # The same mark: no restart, and the set stays the one `bundle` decided (agent appeared since: left alone).
    assert marked(issuers) == dict.fromkeys(OWN_TARGET | (USERS - {"restart-daemonset-default-agent"}), "0 1")
    drop = target_step("drop-old", {"generation": 1, "phase": "issuers"}, last)
    assert marked(drop) == dict.fromkeys(OWN_TARGET | USERS, "1")
    # Afterwards, the same mark: nothing new is restarted by a routine `up`.
    after = target_step(None, {"generation": 1, "phase": "stable"}, {"restartedWorkloads": drop.outputs["restartedWorkloads"]})
    assert marked(after) == marked(drop)


def test_a_workload_deleted_since_is_let_go(live: list[Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(live_cluster, "workloads", lambda cfg, run=None: WORKLOADS[1:])
    last = {"restartedWorkloads": {"mark": "0 1", "workloads": ["Deployment/default/web", "StatefulSet/default/db"]}}
    run = target_step("bundle", {"generation": 1, "phase": "bundle"}, last)
    assert {p.name for p in restart_patches(run)} == {"restart-statefulset-default-db"}


def test_the_source_follows_the_targets_anchors(live: list[Any]) -> None:
    target = {**target_outputs(), "identityAnchors": {"generation": 1, "phase": "bundle"}}
    run = run_stack("source", source_config(), stack_references={TARGET: target})
    assert run.error is None, run.error
    own = {"edge-stack:ambassador/edge-stack"} | {name for name in marked(run) if name.startswith("linkerd-multicluster")}
    assert marked(run) == dict.fromkeys(own | (USERS | {"restart-deployment-default-qotm"}), "0 1")
    # On the source QOTM is off by default: its `qotm` Deployment is a user's workload there, patched like any other.
    assert any(name.startswith("linkerd-multicluster") for name in own)


# Linkerd's own Deployments (their proxies are rendered in by `linkerd install`): marked at `restart` alone.
CONTROL_PLANE = {
    "linkerd:linkerd/linkerd-identity",
    "linkerd:linkerd/linkerd-destination",
    "linkerd:linkerd/linkerd-proxy-injector",
}
RESTARTED = "0 1 after issuers"


@pytest.mark.parametrize("preview", [False, True])
def test_restart_marks_every_meshed_template_linkerds_own_too(live: list[Any], preview: bool) -> None:
    last = {"restartedWorkloads": {"mark": "0 1", "workloads": ["Deployment/default/web", "StatefulSet/default/db"]}}
    run = target_step("restart", {"generation": 1, "phase": "issuers"}, last, preview=preview)
    assert {d.name for d in run.find("Deployment", namespace="linkerd")} == CONTROL_PLANE
    # A new mark: every live workload of the meshed namespaces again (agent appeared since `bundle`: it too).
    assert marked(run) == dict.fromkeys(OWN_TARGET | USERS | CONTROL_PLANE, RESTARTED)
    assert run.outputs["restartedWorkloads"] == {
        "mark": RESTARTED,
        "workloads": ["DaemonSet/default/agent", "Deployment/default/web", "StatefulSet/default/db"],
    }
    # Nothing of the identity changes: the roots and the signing anchor are those of `issuers`.
    assert run.outputs["identityAnchors"] == {"generation": 1, "phase": "restart"}
    web = {p.name: p for p in restart_patches(run)}["restart-deployment-default-web"]
    assert web.inputs["spec"] == {"template": {"metadata": {"annotations": {MARK: RESTARTED}}}}
    assert web.inputs["metadata"]["annotations"] == {"pulumi.com/patchFieldManager": "aes-linkerd2-restart"}


def test_restart_rolls_the_identity_controller_before_every_other_proxy(live: list[Any]) -> None:
    """Gate (c) counts from the identity controller's start: every other meshed pod must start after it."""
    run = target_step("restart", {"generation": 1, "phase": "issuers"})
    identity = run.one("Deployment", "linkerd-identity", "linkerd")
    others = [d for d in run.find("Deployment", namespace="linkerd") if d is not identity]
    assert len(others) == 2 and all(identity.urn in d.dependencies for d in others)
    meshed = [
        run.one("Deployment", "edge-stack:ambassador/edge-stack"),
        run.one("Deployment", "qotm-deployment"),
        *run.find("Deployment", namespace="linkerd-multicluster"),
        *restart_patches(run),
    ]
    assert len(meshed) == 6 and all(run.depends(r, on=identity) for r in meshed)
    assert not run.depends(identity, on=others[0]) and not run.depends(identity, on=others[1])
    # Elsewhere the identity controller is no one's prerequisite among Linkerd's Deployments: its rollout is not
    # waited for by the others outside `restart`.
    bundle = target_step("bundle", {"generation": 0, "phase": "stable"})
    identity = bundle.one("Deployment", "linkerd-identity", "linkerd")
    assert not any(identity.urn in d.dependencies for d in bundle.find("Deployment", namespace="linkerd"))


def test_drop_old_after_restart_takes_linkerds_own_mark_off_with_the_roots(live: list[Any]) -> None:
    last = {"restartedWorkloads": {"mark": RESTARTED, "workloads": ["Deployment/default/web"]}}
    run = target_step("drop-old", {"generation": 1, "phase": "restart"}, last)
    assert marked(run) == dict.fromkeys(OWN_TARGET | USERS, "1")
    # Their roots hash changes in this update anyway: dropping the annotation adds no roll of its own.
    for deployment in run.find("Deployment", namespace="linkerd"):
        assert MARK not in template_annotations(run)[deployment.name]
        assert "linkerd.io/trust-root-sha256" in template_annotations(run)[deployment.name]


def test_the_source_follows_the_restart(live: list[Any]) -> None:
    target = {**target_outputs(), "identityAnchors": {"generation": 1, "phase": "restart"}}
    run = run_stack("source", source_config(), stack_references={TARGET: target})
    assert run.error is None, run.error
    marks = marked(run)
    assert set(marks.values()) == {RESTARTED}
    assert set(marks) >= CONTROL_PLANE | {"edge-stack:ambassador/edge-stack", "restart-deployment-default-qotm"}
    identity = run.one("Deployment", "linkerd-identity", "linkerd")
    assert all(identity.urn in d.dependencies for d in run.find("Deployment", namespace="linkerd") if d is not identity)
    assert run.outputs["restartedWorkloads"]["mark"] == RESTARTED
