"""`rotate-trust`'s state machine: what to do next, from the target's `trustAnchorRotation`, the stacks' outputs and
the gates read live (support/trust_gates). Pure: the loop around it (driver/rotate.py) reads and acts.

Everything it decides from is where a later run finds it again: the step in the target's config (set through
the Automation API), the step each stack last applied in its outputs, and the clusters themselves. So a run
killed at any point and started again picks up where it stopped: each answer depends only on what it reads.

    (unset, stable)      -> set bundle                       the rotation starts
    (bundle, stable)     -> up                               bundle is set, not applied
    (bundle, bundle)     -> wait (a) on both -> set issuers  every meshed pod holds both anchors
    (issuers, bundle)    -> wait (a) on both -> up
    (issuers, issuers)   -> wait (b) on both -> set restart   both identity controllers loaded the new issuer
    (restart, issuers)   -> wait (b) on both -> up
    (restart, restart)   -> wait (c) on both -> set drop-old  every proxy certificate is from a new-chain issuer
    (drop-old, restart)  -> wait (c) on both -> up
    (drop-old, issuers)  -> wait (c) on both -> up            drop-old set by hand after issuers, no restart
    (drop-old, stable)   -> wait (a) on both -> done          every meshed pod holds the new anchor alone
    anything else        -> refuse, naming the key and the next step

`restart` changes nothing but the restart mark, so its `up` rolls every meshed workload the program restarts
(Linkerd's own too, the identity controller first): their new proxies ask the identity controller, which gate (b)
says holds the new issuer, for their certificates. Before (b) a restarted proxy could still get an old-chain one.

`done` leaves `drop-old` set (the program does nothing with it), so running the command again after a
rotation completed, or after being stopped at its very end, never starts a second one by itself: it
says the rotation is complete. `--new-anchor` starts the next rotation from there; from an unset key
(never rotated, or the key removed after a rotation) a run starts one without it.

An `up` is also asked for while the source does not yet follow the target's step (a run stopped between the
two stacks: its roots, signing anchor or restart mark differ). The restarts are part of the `bundle`, `restart` and
`drop-old` updates themselves (support/restarts.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from support.trust_gates import Verdict

KEY = "trustAnchorRotation"


class Act(StrEnum):
    SET = "set"  # set the target's trustAnchorRotation to `step`
    UP = "up"  # `up` both stacks: the step is set and not applied on both
    WAIT = "wait"  # a gate has not taken hold yet: read again
    DONE = "done"  # the rotation took hold everywhere
    REFUSE = "refuse"  # it cannot go on by itself


class Gate(StrEnum):
    ROOTS = "roots held"  # (a)
    ISSUER = "issuer loaded"  # (b)
    DROP_OLD = "drop-old allowed"  # (c), which includes (b)


@dataclass(frozen=True)
class Reading:
    verdict: Verdict
    detail: str


@dataclass(frozen=True)
class Observed:
    """What a run reads before each decision."""

    # The target's trustAnchorRotation (None: unset or empty).
    step: str | None
    # The target's last `identityAnchors`: phase and newest generation.
    phase: str
    generation: int
    # Whether the source's last update applied the target's roots and signing anchor.
    source_follows: bool
    # Per stack, each gate as read from its cluster now.
    gates: Mapping[str, Mapping[Gate, Reading]]


@dataclass(frozen=True)
class Next:
    act: Act
    step: str | None = None
    # What a person reads: why this, or what is still missing (one line per cluster and gate).
    said: tuple[str, ...] = ()


_START = Next(Act.SET, "bundle", ("a new trust anchor joins the roots of both clusters",))
# (step set, phase applied) -> (gate before going on, what then); None: no gate.
_TABLE: dict[tuple[str | None, str], tuple[Gate | None, Next]] = {
    (None, "stable"): (None, _START),
    ("bundle", "stable"): (None, Next(Act.UP, "bundle", ("bundle is set, not yet applied",))),
    ("bundle", "bundle"): (Gate.ROOTS, Next(Act.SET, "issuers", ("every meshed pod holds both anchors",))),
    ("issuers", "bundle"): (Gate.ROOTS, Next(Act.UP, "issuers", ("issuers is set, not yet applied",))),
    ("issuers", "issuers"): (Gate.ISSUER, Next(Act.SET, "restart", ("both identity controllers loaded the new issuer",))),
    ("restart", "issuers"): (Gate.ISSUER, Next(Act.UP, "restart", ("restart is set, not yet applied",))),
    ("restart", "restart"): (Gate.DROP_OLD, Next(Act.SET, "drop-old", ("every proxy certificate is from a new issuer",))),
    ("drop-old", "restart"): (Gate.DROP_OLD, Next(Act.UP, "drop-old", ("drop-old is set, not yet applied",))),
    ("drop-old", "issuers"): (Gate.DROP_OLD, Next(Act.UP, "drop-old", ("drop-old is set, not yet applied",))),
    ("drop-old", "stable"): (Gate.ROOTS, Next(Act.DONE, None, ("every meshed pod holds the new anchor alone",))),
}
# What the step set says the target's last update should have done.
_APPLIED = {"bundle": "bundle", "issuers": "issuers", "restart": "restart", "drop-old": "stable"}
_NEXT_STEP = {"stable": "bundle", "bundle": "issuers", "issuers": "restart", "restart": "drop-old"}


def decide(seen: Observed, *, new_anchor: bool = False) -> Next:
    """The next thing to do (see the module's table); `new_anchor`: start again once a rotation is complete."""
    entry = _TABLE.get((seen.step, seen.phase))
    if entry is None:
        return _refusal(seen)
    gate, then = entry
    early = _before_the_gate(seen)
    if early is not None:
        return early
    held = _gate(seen, gate) if gate else None
    if held is None and then.act is Act.DONE and new_anchor:
        return _START
    return held or then


def _before_the_gate(seen: Observed) -> Next | None:
    """An `up` when the source does not follow the target's applied step yet; a start when drop-old is set on a
    stack that never rotated (the program does nothing with it: there is nothing to finish)."""
    if seen.step is not None and _APPLIED[seen.step] == seen.phase and not seen.source_follows:
        return Next(Act.UP, seen.step, (f"the source does not follow the target's step {seen.step} yet",))
    if seen.step == "drop-old" and seen.phase == "stable" and seen.generation == 0:
        return _START
    return None


def _gate(seen: Observed, gate: Gate) -> Next | None:
    """None when `gate` passes on every cluster; else a wait naming what is missing, or a refusal on a failure."""
    missing, failed = [], []
    for stack, gates in seen.gates.items():
        reading = gates.get(gate) or Reading(Verdict.UNKNOWN, "not read")
        line = f"{stack}: {gate.value}: {reading.detail}"
        if reading.verdict is Verdict.FAIL:
            failed.append(line)
        elif reading.verdict is not Verdict.PASS:
            missing.append(line)
    if failed:
        return Next(Act.REFUSE, seen.step, (f"{gate.value} will not take hold by itself:", *failed, *missing))
    return Next(Act.WAIT, seen.step, (f"waiting for {gate.value}:", *missing)) if missing else None


def _refusal(seen: Observed) -> Next:
    """A combination the program itself refuses, said with the way back."""
    last = "no rotation is under way" if seen.phase == "stable" else f"the target's last update did step {seen.phase}"
    following = _NEXT_STEP.get(seen.phase)
    if seen.step is None:
        said = (
            f"{KEY} is unset while a rotation is under way ({last}, trust anchor {seen.generation}): set it back with "
            f"`pulumi config set {KEY} {seen.phase} --stack target`, then run rotate-trust again",
        )
    else:
        said = (
            f"{KEY} = {seen.step!r} skips a step or goes back ({last}; the next step is {following}): set it to "
            f"{_current(seen.phase)!r} (`pulumi config set {KEY} {_current(seen.phase)} --stack target`), "
            "then run rotate-trust again",
        )
    return Next(Act.REFUSE, seen.step, said)


def _current(phase: str) -> str:
    """The value that keeps what the target's last update did."""
    return {"stable": "drop-old"}.get(phase, phase)
