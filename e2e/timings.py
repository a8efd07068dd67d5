"""Where `up`'s time went, from the driver's progress lines: the slowest steps, and each Deployment's time on the
API server beside how long `up` awaited it. Shown, never asserted (e2e/test_full.py; e2e/tier.sh for perf.sh:
`python e2e/timings.py slowest|deployments|critical STACK LOG [DEPLOYMENTS.json|STATE.json]`).

A progress line is "[STACK] up: N done, MM:SS  OP KIND NAME": a line whose count went up ends the step of "KIND
NAME", any other starts it (the kind tells a Service and a Deployment of one name apart).
"""

from __future__ import annotations

import datetime
import json
import re
import sys
from pathlib import Path
from typing import Any


def stack_seconds(stack: str, log: str) -> str:
    """STACK's own seconds, from the driver's summary line (`STACK ok ... Ns`)."""
    found = [line.split()[-1] for line in log.splitlines() if line.split()[:2] == [stack, "ok"]]
    return found[-1] if found else ""


def steps(stack: str, log: str) -> tuple[dict[str, int], dict[str, int]]:
    """Each step's start and end, in seconds from the stack's start."""
    start: dict[str, int] = {}
    end: dict[str, int] = {}
    done_before = 0
    for line in log.splitlines():
        m = re.match(r"\[" + re.escape(stack) + r"\] up: (\d+) done, (\d+):(\d+)  \w+ (.*)", line.strip())
        if m:
            done, at, name = int(m[1]), int(m[2]) * 60 + int(m[3]), m[4]
            if done > done_before:
                end[name] = at
            else:
                start.setdefault(name, at)
            done_before = done
    return start, end


def slowest(stack: str, log: str, count: int = 15) -> list[str]:
    start, end = steps(stack, log)
    took = sorted(((end.get(n, began) - began, began, n) for n, began in start.items()), reverse=True)[:count]
    return [f"    {seconds:4d}s  {began:4d} -> {began + seconds:4d}  {name}" for seconds, began, name in took]


def _seconds(stamp: str) -> float:
    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def deployments(stack: str, log: str, listed: dict[str, Any]) -> list[str]:
    """Each Deployment of LISTED (`kubectl get deploy -A -o json`): Available and its last rollout done, in seconds
    from its creation, against how long `up` awaited it."""
    start, end = steps(stack, log)
    lines = []
    for item in listed["items"]:
        meta = item["metadata"]
        created = _seconds(meta["creationTimestamp"])
        conditions = {c["type"]: c for c in item.get("status", {}).get("conditions", [])}
        available = _seconds(conditions["Available"]["lastTransitionTime"]) - created if "Available" in conditions else -1
        rollout = _seconds(conditions["Progressing"]["lastUpdateTime"]) - created if "Progressing" in conditions else -1
        names = [n for n in start if n.startswith("Deployment ") and n.endswith(f":{meta['namespace']}/{meta['name']}")]
        awaited = max((end.get(n, start[n]) - start[n] for n in names), default=-1)
        where = meta["namespace"] + "/" + meta["name"]
        lines.append(
            f"    {where}: Available after {available:.0f}s, last rollout done after {rollout:.0f}s; up awaited {awaited}s"
        )
    return lines


def _name(urn: str) -> str:
    """A step's name in the progress, "KIND NAME", from its URN (`...::parent$pkg:module:KIND::NAME`)."""
    qualified, name = urn.rsplit("::", maxsplit=1)
    return f"{qualified.rsplit('$', 1)[-1].rsplit(':', 1)[-1]} {name}"


def critical_path(stack: str, log: str, state: dict[str, Any]) -> list[str]:
    """The chain of registered dependencies that `up` waited on last, from the stack's state (`pulumi stack export`)
    and each step's start and end in LOG: from the object that finished last, back through the dependency (or
    provider) that finished last before it started."""
    start, end = steps(stack, log)
    waits: dict[str, set[str]] = {}
    for resource in state["deployment"]["resources"]:
        if resource["type"].startswith(("pulumi:", "aes-linkerd2:")):
            continue  # the stack and the components: they last as long as their children
        found = {_name(urn) for urn in resource.get("dependencies", [])}
        if resource.get("provider"):
            found.add(_name(resource["provider"].rsplit("::", 1)[0]))  # "URN::ID"
        waits[_name(resource["urn"])] = found
    timed = [name for name in waits if name in end]
    if not timed:
        return ["    (no step of this stack's up found in the log)"]
    chain = [max(timed, key=lambda n: (end[n], end[n] - start.get(n, end[n])))]
    while True:
        before = [n for n in waits.get(chain[-1], ()) if n in end and n not in chain]
        if not before:
            break
        chain.append(max(before, key=lambda n: end[n]))
    lines = []
    for name in reversed(chain):
        began, ended = start.get(name, end[name]), end[name]
        lines.append(f"    {began:4d} -> {ended:4d}  ({ended - began:3d}s)  {name}")
    return [f"    {len(chain)} steps, the last done at {end[chain[0]]}s:", *lines]


if __name__ == "__main__":
    mode, stack, log = sys.argv[1:4]
    text = Path(log).read_text()
    if mode == "slowest":
        found = slowest(stack, text)
    elif mode == "critical":
        found = critical_path(stack, text, json.loads(Path(sys.argv[4]).read_text()))
    else:
        found = deployments(stack, text, json.loads(Path(sys.argv[4]).read_text()))
    print("\n".join(found), file=sys.stderr)
