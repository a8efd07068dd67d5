"""`./aes-linkerd2 rotate-trust`: the trust anchor rotation across both clusters, unattended, resumable.

Each round reads where things stand (the target's `trustAnchorRotation`, both stacks' outputs, the gates
on both clusters), asks driver/rotation.py what comes next, and does that one thing: set the step through
the Automation API, `up` both stacks (target, then source), or wait and read again. Nothing is kept in this
process that a later run would need: stopped at any point, the next run reads the same and goes on.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from driver import rotation
from driver.api import Deployment
from driver.rotation import Act, Gate, Observed, Reading
from driver.settings import STACKS, DriverError, read_settings
from driver.status import checks, read
from support import clock, restarts, trust_gates
from support.certificates import RotationStep

# stack, its outputs -> its gates, read from its cluster now.
GatesFor = Callable[[str, Mapping[str, Any]], Mapping[Gate, Reading]]
DEFAULT_TIMEOUT = 1800.0
DEFAULT_INTERVAL = 10.0


def cluster_gates(kubectl: read.Kubectl, now: datetime.datetime) -> dict[Gate, Reading]:
    """Gates (a), (b) and (c) of one cluster, from the objects `status` reads (driver/status/read.read_trust)."""
    found = read.read_trust(kubectl)
    if found.pods is None:
        roots = Reading(trust_gates.Verdict.UNKNOWN, f"the meshed pods cannot be read: {found.errors.get('pods')}")
    else:
        held = trust_gates.restarted(found.pods, found.roots)
        roots = Reading(held.verdict, held.detail)
    loaded = trust_gates.issuer_loaded(found.issuer, found.events or [], found.pods or [], now)
    if found.issuer is None and "issuer" in found.errors:
        loaded = trust_gates.IssuerLoaded(trust_gates.Verdict.UNKNOWN, f"cannot be read: {found.errors['issuer']}")
    lifetime, _ = checks.certificate_lifetime(kubectl)
    drop_old = trust_gates.drop_old_allowed(found.pods or [], loaded, lifetime, now)
    return {
        Gate.ROOTS: roots,
        Gate.ISSUER: Reading(loaded.verdict, loaded.detail),
        Gate.DROP_OLD: Reading(drop_old.verdict, drop_old.detail),
    }


def live_gates(deployment: Deployment) -> GatesFor:
    """Each stack's cluster through kubectl, as its settings and outputs reach it."""

    def gates(stack: str, outputs: Mapping[str, Any]) -> Mapping[Gate, Reading]:
        settings = read_settings(deployment.project_dir, stack)
        context = str(outputs.get("context") or settings.get("context") or "")
        kubectl = read.kubectl_runner(str(settings.get("kubectl") or "kubectl"), context, settings.get("kubeconfig"))
        return cluster_gates(kubectl, clock.now())

    return gates


def configured_step(deployment: Deployment) -> str | None:
    """The target's trustAnchorRotation (None: unset or empty); refused when it is no step."""
    step = deployment.get_config("target", rotation.KEY) or None
    steps = [s.value for s in RotationStep]
    if step is not None and step not in steps:
        raise DriverError(f"config {rotation.KEY} = {step[:100]!r} on the target: must be unset or one of {', '.join(steps)}")
    return step


def observe(deployment: Deployment, gates_for: GatesFor) -> Observed:
    """Where the rotation stands: the step set, what each stack applied, both clusters' gates."""
    outputs = deployment.outputs()
    for stack in STACKS:
        if not outputs.get(stack):
            raise DriverError(f"stack {stack} has no outputs: `./aes-linkerd2 up` both stacks before rotating their trust")
    step = configured_step(deployment)
    target, source = outputs["target"], outputs["source"]
    anchors = target.get("identityAnchors") or {}
    # The source applied the target's roots and signing anchor, and the same restart mark (the `restart` step's).
    follows = all(source.get(key) == target.get(key) for key in ("trustRootsPem", "trustAnchorPem")) and (
        _mark(source) == _mark(target)
    )
    return Observed(
        step=step,
        phase=str(anchors.get("phase") or "stable"),
        generation=int(anchors.get("generation") or 0),
        source_follows=follows,
        gates={stack: gates_for(stack, outputs[stack]) for stack in STACKS},
    )


def _mark(outputs: Mapping[str, Any]) -> Any:
    """The restart mark a stack's last update applied (support/restarts.output; None: no rotation yet)."""
    restarted = outputs.get(restarts.OUTPUT)
    return restarted.get("mark") if isinstance(restarted, Mapping) else None


@dataclass
class Rotate:
    deployment: Deployment
    gates_for: GatesFor
    say: Callable[[str], None]
    timeout: float = DEFAULT_TIMEOUT
    interval: float = DEFAULT_INTERVAL
    # Start a new rotation once the last one is complete (never needed to resume one).
    new_anchor: bool = False
    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    # What this run did, in order: ("set", step) and ("up", step).
    done: list[tuple[str, str]] = field(default_factory=list)

    def run(self) -> None:
        """Until the rotation is complete; raises DriverError (exit 1, or 2 when nothing was done) when it cannot."""
        waiting: tuple[float, tuple[str, ...]] | None = None
        while True:
            seen = observe(self.deployment, self.gates_for)
            decided = rotation.decide(seen, new_anchor=self.new_anchor)
            if decided.act is Act.WAIT:
                waiting = self._wait(waiting, decided.said)
                continue
            waiting = None
            if decided.act is Act.DONE:
                self.say(f"done: trust anchor {seen.generation} alone in the roots of both clusters; {decided.said[0]}")
                return
            if decided.act is Act.REFUSE:
                raise DriverError("\n".join(decided.said), exit_code=1 if self.done else 2)
            self._act(decided)

    def _wait(self, waiting: tuple[float, tuple[str, ...]] | None, missing: tuple[str, ...]) -> tuple[float, tuple[str, ...]]:
        """One more read after the interval; the missing lines when they change; a failure past the timeout."""
        started = waiting[0] if waiting else self.monotonic()
        waited = self.monotonic() - started
        if waited >= self.timeout:
            raise DriverError(
                "\n".join([f"timed out after {waited:.0f}s {missing[0]}", *missing[1:]])
                + "\nrun `./aes-linkerd2 rotate-trust` again to go on from here (nothing is undone)",
                exit_code=1,
            )
        if waiting is None or waiting[1] != missing:
            self.say("\n".join([f"[{waited:.0f}s] {missing[0]}", *(f"  {line}" for line in missing[1:])]))
        self.sleep(self.interval)
        return started, missing

    def _act(self, decided: rotation.Next) -> None:
        step = str(decided.step)
        if decided.act is Act.SET:
            self.say(f"step {step}: {decided.said[0]}: set {rotation.KEY}={step} on the target")
            self.deployment.set_config("target", rotation.KEY, step)
            self.done.append(("set", step))
            self.new_anchor = False  # started: the end of this rotation is not a reason to start another
            return
        if self.done[-1:] == [("up", step)]:
            # The `up` just ran and succeeded, yet the outputs do not show the step: going round again would not help.
            raise DriverError(f"`up` of step {step} succeeded, yet the stacks' outputs do not show it applied: {decided.said[0]}")
        self.say(f"step {step}: up, target then source ({decided.said[0]})")
        result = self.deployment.up()
        self.done.append(("up", step))
        if not result.succeeded:
            failed = next(s for s in result.stacks if not s.succeeded)
            raise DriverError(f"up of step {step} failed on {failed.stack}: {failed.error}", exit_code=1)
        self.say(result.table())
