"""`up --skip-checkpoints` killed half-way: the next run stops and says so, on the real engine.

With `--skip-checkpoints` the engine writes the stack's state once, when the `up` ends. One story on its own
live cluster (e2e/clusters.py, the target stack alone), each step a test, in this order:

1. `up --skip-checkpoints` is killed (SIGKILL to the driver, the Pulumi CLI and its plugins) once the `linkerd`
   namespace exists: the namespace is there, the stack's state does not list it, and the stack is marked unfinished;
2. the next `up` and `destroy` stop before anything runs, naming the stack and the marker; nothing on the cluster
   changes;
3. `preview` still runs, and plans to create what the killed run made;
4. with the marker removed by hand and the killed run's lock let go of (`pulumi cancel`), `up` fails on the objects
   that exist rather than taking them over.

Every check of the cluster reads the live objects with kubectl, never what Pulumi reports.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
from pathlib import Path

import pytest
from clusters import LiveCluster, wait_for
from cpu import processes


def marker(cluster: LiveCluster) -> Path:
    """Where the driver marks the stack (driver/api.py: beside a file backend's state)."""
    return Path(cluster.env["PULUMI_BACKEND_URL"].removeprefix("file://")) / ".aes-linkerd2-unfinished" / "target.json"


def names_in_state(cluster: LiveCluster) -> list[str]:
    """The resource names of the target stack's state (none when it was never written)."""
    run = cluster.run(["pulumi", "stack", "export", "--stack", "target"], cwd=cluster.project, timeout=120)
    if run.returncode != 0:
        assert "no stack named" in run.stderr, run.said()
        return []
    resources = json.loads(run.stdout)["deployment"].get("resources") or []
    return [r["urn"].rsplit("::", 1)[1] for r in resources]


def descendants(pid: int) -> list[int]:
    """Every process started under PID, now (from each process's parent in /proc)."""
    children: dict[int, list[int]] = {}
    for child, _name, fields in processes():
        children.setdefault(int(fields[1]), []).append(child)
    found, queue = [], [pid]
    while queue:
        for child in children.get(queue.pop(), []):
            found.append(child)
            queue.append(child)
    return found


def namespaces(cluster: LiveCluster) -> dict[str, str]:
    """Every namespace, by name: its uid."""
    return {n["metadata"]["name"]: n["metadata"]["uid"] for n in cluster.get("namespaces")["items"]}


@pytest.fixture(scope="module")
def killed(interrupted_cluster: LiveCluster) -> dict[str, str]:
    """Step 1's kill; the namespaces live just after it."""
    cluster = interrupted_cluster
    assert "linkerd" not in namespaces(cluster)
    log = cluster.work / "killed-up.log"
    process = cluster.driver_in_background(log, "up", "--skip-checkpoints", "--stack", "target")
    try:
        wait_for("the linkerd namespace, made by the up", lambda: "linkerd" in namespaces(cluster), timeout=300)
    finally:
        everyone = descendants(process.pid)
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        # The Pulumi CLI starts some plugins in process groups of their own: killed one by one, none left behind.
        for pid in everyone:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        process.wait(timeout=60)
    print(f"\n[interrupted] up --skip-checkpoints killed (exit {process.returncode}); its last lines:")
    print("\n".join(log.read_text(errors="replace").splitlines()[-5:]))
    return namespaces(cluster)


def test_1_a_killed_up_leaves_objects_its_state_does_not_list_and_a_marker(
    interrupted_cluster: LiveCluster, killed: dict[str, str]
) -> None:
    cluster = interrupted_cluster
    assert "linkerd" in killed  # made by the killed run (the fixture saw none before it)
    state = names_in_state(cluster)
    assert "linkerd:linkerd" not in state, state
    found = json.loads(marker(cluster).read_text())
    assert (found["stack"], found["operation"]) == ("target", "up"), found


def test_2_the_next_up_and_destroy_stop_before_anything_runs(interrupted_cluster: LiveCluster, killed: dict[str, str]) -> None:
    cluster = interrupted_cluster
    for words in (["up"], ["destroy", "--delete-trust-anchor"]):
        run = cluster.driver(*words, "--stack", "target")
        assert run.returncode == 2, run.said()
        said = " ".join(run.output.split())
        assert "target: last up" in said and "did not end" in said and str(marker(cluster)) in said, run.said()
        assert "Traceback" not in said, run.said()
    assert namespaces(cluster) == killed  # nothing made, nothing deleted


def test_3_preview_still_runs_and_plans_what_the_killed_run_made(
    interrupted_cluster: LiveCluster, killed: dict[str, str]
) -> None:
    run = interrupted_cluster.driver("preview", "--stack", "target", "--json")
    assert run.returncode == 0, run.said()
    planned = json.loads(run.stdout)["stacks"][0]["changes"]
    assert planned.get("create", 0) > 100, planned  # everything, the namespace the killed run made among it
    assert namespaces(interrupted_cluster) == killed


def test_4_without_the_marker_up_fails_on_what_exists_rather_than_taking_it_over(
    interrupted_cluster: LiveCluster, killed: dict[str, str]
) -> None:
    cluster = interrupted_cluster
    # As the message says: looked at, the marker removed by hand, the killed run's lock let go of.
    marker(cluster).unlink()
    cancel = cluster.run(["pulumi", "cancel", "--stack", "target", "--yes"], cwd=cluster.project, timeout=120)
    assert cancel.returncode == 0, cancel.said()
    run = cluster.driver("up", "--stack", "target")
    assert run.returncode == 1, run.said()
    assert "already exists" in run.output, run.said()[-3000:]
    assert namespaces(cluster)["linkerd"] == killed["linkerd"]  # the same namespace, not made again
