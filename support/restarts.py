"""Which workloads of the meshed namespaces a trust rotation restarts, and how that is remembered.

The program owns Edge Stack, QOTM and Linkerd's extension: their pod templates carry the rotation's mark
(`aes-linkerd2.io/trust-anchors`) as their own field. The other workloads of `meshedNamespaces` are
someone else's. Each gets the mark by a server-side patch under a field manager of its own
(`aes-linkerd2-restart`), never forced: the patch owns that one annotation and nothing else of the
workload, and a manager that already owns it makes the update fail rather than be overridden. The patch is
retained on delete, so letting go of it (a workload deleted, a namespace unlisted, `destroy`) leaves the
annotation where it is: its removal would change the pod template and roll the workload by surprise.

The set is decided at the update whose mark is new (the roots changed): every such workload live then.
Later updates with the same mark keep the patches of that set that still exist and add none, so a workload
created after the rotation is never restarted by a routine `up` (its pods already hold the roots).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# The stack output that remembers the set: {"mark": ..., "workloads": ["Kind/namespace/name", ...]}.
OUTPUT = "restartedWorkloads"
KINDS = ("Deployment", "StatefulSet", "DaemonSet")


@dataclass(frozen=True, order=True)
class Workload:
    kind: str
    namespace: str
    name: str

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}"


def to_restart(
    live: Iterable[Workload], mark: str | None, owned: Iterable[str], last: Mapping[str, Any] | None
) -> tuple[Workload, ...]:
    """The workloads to carry `mark` in this update: none without a mark; all live ones (not the program's own)
    when the mark is new; else those the last update marked that are still live."""
    if mark is None:
        return ()
    mine = set(owned)
    candidates = sorted(w for w in set(live) if w.key not in mine)
    previous = last or {}
    if previous.get("mark") != mark:
        return tuple(candidates)
    kept = set(previous.get("workloads") or [])
    return tuple(w for w in candidates if w.key in kept)


def output(mark: str | None, workloads: Iterable[Workload]) -> dict[str, Any]:
    """What the stack exports for the next update."""
    return {"mark": mark, "workloads": [w.key for w in workloads]} if mark else {}
