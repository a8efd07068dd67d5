"""`./aes-linkerd2 rotate-trust` on the real engine: two local clusters (e2e/clusters.py, the `clusters` fixture of
e2e/test_mirror.py), the program run as a user runs it, the clusters read back with kubectl.

Each step is a test, in order (a failed step skips the ones after it):

1. `up` of both stacks, then a Deployment of someone else's (`web`, made with kubectl) in the meshed `default`;
2. `rotate-trust` started, and killed (SIGTERM) at its first wait: it did `bundle` and `issuers` (gate (a) passes
   here, see below), and waits at gate (b) before its `restart`. The target's stack file says `issuers`, both
   clusters' roots carry both anchors, and `web`, Edge Stack (both clusters) and QOTM carry the mark
   `aes-linkerd2.io/trust-anchors: 0 1` on their pod templates, `web`'s owned by the field manager
   `aes-linkerd2-restart` (with the provider's own `pulumi.com/patchFieldManager` annotation on `web`'s metadata:
   nothing else of it touched);
3. `rotate-trust` run again: it goes on from there (no step set or applied again) and waits at gate (b).

GATE (b) CANNOT PASS HERE: no Linkerd identity controller runs in these clusters (e2e/test_trust.py runs one), so no
`IssuerUpdated` Event is ever recorded and the identity pods (kwok's) started before the issuer was written. The
resumed run therefore stops where it must, at gate (b) after `issuers`, before the `restart` that would hand out
certificates from an issuer no controller holds; this test asserts that exact refusal (the timeout naming, per
cluster, the identity pods that have not reported loading the new issuer) and that nothing was restarted: the
templates keep the bundle's mark. `restart`, `drop-old` and the last restart are not reached here.

GATE (a) IS VACUOUS HERE: this tier serves no proxy injector (e2e/clusters.sh, as the safety and mirror tiers; Linkerd
without HA, its webhook failing open), so no pod carries a proxy and "every meshed pod holds both anchors" holds of
none. What is shown is the order, the kill and the resume, the restart mark on the live templates and its field
manager, and the refusal at the gate that cannot pass.
"""

from __future__ import annotations

import pytest
from clusters import LiveCluster, interrupt, wait_for_line

TARGET, SOURCE = "target", "source"
MARK = "aes-linkerd2.io/trust-anchors"
WEB = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "default"},
    "spec": {
        "replicas": 1,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "example.invalid/web:1", "ports": [{"containerPort": 8080}]}]},
        },
    },
}


def template_annotations(clusters: LiveCluster, namespace: str, name: str, context: str = TARGET) -> dict[str, str]:
    found = clusters.get("deployment", name, "-n", namespace, context=context)
    assert found is not None, f"no Deployment {namespace}/{name} on {context}"
    return dict(found["spec"]["template"]["metadata"].get("annotations") or {})


def roots(clusters: LiveCluster, context: str) -> int:
    bundle = clusters.get("configmap", "linkerd-identity-trust-roots", "-n", "linkerd", context=context)["data"]["ca-bundle.crt"]
    return str(bundle).count("BEGIN CERTIFICATE")


def test_up_both_stacks_and_a_workload_of_someone_elses(clusters: LiveCluster) -> None:
    up = clusters.driver("up", timeout=900)
    print(f"\n[rotate] up (target, then source): {up.seconds:.0f}s")
    assert up.returncode == 0, up.said()
    clusters.apply(WEB, context=TARGET)
    assert template_annotations(clusters, "default", "web").get(MARK) is None


def test_rotate_trust_killed_at_its_first_wait(clusters: LiveCluster, tmp_path_factory: pytest.TempPathFactory) -> None:
    log = tmp_path_factory.mktemp("rotate") / "first.log"
    process = clusters.driver_in_background(log, "rotate-trust", "--interval", "5", "--timeout", "600")
    try:
        said = wait_for_line(log, process, "waiting for", timeout=1200)
    finally:
        interrupt(process)
    print(f"\n[rotate] first run, killed while waiting:\n{said}")
    assert "step bundle: a new trust anchor joins the roots of both clusters: set trustAnchorRotation=bundle" in said
    assert "step issuers: every meshed pod holds both anchors: set trustAnchorRotation=issuers" in said
    assert "waiting for issuer loaded:" in said and "step restart" not in said
    assert clusters.stack_config(TARGET)["config"]["aes-linkerd2:trustAnchorRotation"] == "issuers"
    assert (roots(clusters, TARGET), roots(clusters, SOURCE)) == (2, 2)
    # The program's own templates and someone else's `web` carry the mark; `web`'s by its own field manager only.
    assert template_annotations(clusters, "default", "web")[MARK] == "0 1"
    assert template_annotations(clusters, "default", "qotm")[MARK] == "0 1"
    assert template_annotations(clusters, "emissary", "emissary-ingress")[MARK] == "0 1"
    assert template_annotations(clusters, "emissary", "emissary-ingress", context=SOURCE)[MARK] == "0 1"
    web = clusters.get("deployment", "web", "-n", "default", "--show-managed-fields", context=TARGET)
    mine = [entry for entry in web["metadata"]["managedFields"] if entry["manager"] == "aes-linkerd2-restart"]
    assert len(mine) == 1 and mine[0]["operation"] == "Apply"
    # Exactly two fields: the mark on the pod template, and the field-manager annotation pulumi-kubernetes writes on
    # the workload's own metadata (found by this tier; it rolls nothing). Nothing of `web`'s own is taken over.
    assert mine[0]["fieldsV1"] == {
        "f:metadata": {"f:annotations": {"f:pulumi.com/patchFieldManager": {}}},
        "f:spec": {"f:template": {"f:metadata": {"f:annotations": {f"f:{MARK}": {}}}}},
    }, mine[0]["fieldsV1"]
    assert web["spec"]["template"]["spec"]["containers"][0]["image"] == "example.invalid/web:1"


def test_rotate_trust_resumed_stops_at_the_issuer_gate_restarting_nothing(clusters: LiveCluster) -> None:
    run = clusters.driver("rotate-trust", "--interval", "5", "--timeout", "120", timeout=2400)
    print(f"\n[rotate] resumed run (exit {run.returncode}, {run.seconds:.0f}s):\n{run.stderr}")
    # It went on from where it was killed: no step set or applied again.
    assert "step " not in run.stderr, run.said()
    assert run.returncode == 1, run.said()
    lines = run.stderr.strip().splitlines()
    end = lines[lines.index(next(line for line in lines if line.startswith("error: timed out after"))) :]
    assert end[0].startswith("error: timed out after 1") and end[0].endswith("s waiting for issuer loaded:"), end
    for stack, line in zip((TARGET, SOURCE), end[1:3], strict=True):
        assert line.startswith(f"{stack}: issuer loaded: not yet: written "), line
        assert "identity pod(s) started before it without IssuerUpdated" in line, line
    assert end[-1] == "run `./aes-linkerd2 rotate-trust` again to go on from here (nothing is undone)"
    assert clusters.stack_config(TARGET)["config"]["aes-linkerd2:trustAnchorRotation"] == "issuers"
    # Nothing restarted before the identity controllers loaded the new issuer: the bundle's mark, Linkerd's own unmarked.
    assert template_annotations(clusters, "default", "web")[MARK] == "0 1"
    assert template_annotations(clusters, "emissary", "emissary-ingress", context=SOURCE)[MARK] == "0 1"
    assert MARK not in template_annotations(clusters, "linkerd", "linkerd-identity")
