"""`rotate-trust`: its state machine (driver/rotation.py), and its loop (driver/rotate.py) over a simulated pair of
clusters behind the Automation API boundary, stopped at every point and run again.

The simulated world applies each `up` with the program's own rotation plan (components.linkerd_identity.anchor_plan,
which refuses what the program refuses, and its restart mark) and rolls the meshed pods a few reads after the roots or
the mark change; a proxy certificate from the new issuer otherwise takes a certificate's lifetime; the gates it
reports are the trust gates' verdicts, as driver/status reads them live (tests/test_trust_gates.py and
tests/test_status.py take those on constructed and live objects). What this file proves is the order: no step is
applied before its gate passes on both clusters, none is skipped or repeated, and a run stopped anywhere and started
again ends where one uninterrupted run ends.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from components.linkerd_identity import anchor_plan, current_anchors
from driver import DriverError
from driver.__main__ import main
from driver.rotate import Rotate
from driver.rotation import Act, Gate, Next, Observed, Reading, decide
from support.certificates import RotationStep
from support.trust_gates import Verdict
from tests.test_driver import deployment, kube  # noqa: F401 (the fixture, shared)

PASS, WAIT, FAIL, UNKNOWN = Verdict.PASS, Verdict.WAIT, Verdict.FAIL, Verdict.UNKNOWN


def gates(roots: Verdict = PASS, issuer: Verdict = PASS, drop_old: Verdict = PASS) -> dict[Gate, Reading]:
    return {
        Gate.ROOTS: Reading(roots, f"roots {roots.value}"),
        Gate.ISSUER: Reading(issuer, f"issuer {issuer.value}"),
        Gate.DROP_OLD: Reading(drop_old, f"drop-old {drop_old.value}"),
    }


def seen(step: str | None, phase: str, generation: int = 1, follows: bool = True, **per_stack: dict[Gate, Reading]) -> Observed:
    both = {"target": per_stack.get("target", gates()), "source": per_stack.get("source", gates())}
    return Observed(step, phase, generation, follows, both)


# --- the state machine ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("observed", "expected"),
    [
        # Nothing under way: start.
        (seen(None, "stable", 0), (Act.SET, "bundle")),
        (seen(None, "stable", 3), (Act.SET, "bundle")),
        # drop-old left set on a stack that never rotated: nothing to finish, start.
        (seen("drop-old", "stable", 0), (Act.SET, "bundle")),
        # Set, not applied (a run stopped after setting it, or an `up` that failed).
        (seen("bundle", "stable", 0), (Act.UP, "bundle")),
        # Applied on the target only (stopped between the two stacks): up again, whatever the gates say.
        (seen("bundle", "bundle", follows=False, source=gates(roots=WAIT)), (Act.UP, "bundle")),
        (seen("issuers", "issuers", follows=False), (Act.UP, "issuers")),
        (seen("restart", "restart", follows=False), (Act.UP, "restart")),
        (seen("drop-old", "stable", follows=False), (Act.UP, "drop-old")),
        # bundle applied: issuers only once every meshed pod on both clusters holds both anchors.
        (seen("bundle", "bundle", source=gates(roots=WAIT)), (Act.WAIT, "bundle")),
        (seen("bundle", "bundle", target=gates(roots=UNKNOWN)), (Act.WAIT, "bundle")),
        (seen("bundle", "bundle", source=gates(issuer=WAIT, drop_old=WAIT)), (Act.SET, "issuers")),
        # issuers set by hand before the pods restarted: the `up` waits for them too.
        (seen("issuers", "bundle", target=gates(roots=WAIT)), (Act.WAIT, "issuers")),
        (seen("issuers", "bundle"), (Act.UP, "issuers")),
        # issuers applied: the restart only once gate (b) passes on both (a proxy restarted before gets an old-chain
        # certificate); gate (c) is not asked for yet (the restart is what makes it pass).
        (seen("issuers", "issuers", target=gates(issuer=WAIT, drop_old=WAIT)), (Act.WAIT, "issuers")),
        (seen("issuers", "issuers", source=gates(issuer=UNKNOWN, drop_old=WAIT)), (Act.WAIT, "issuers")),
        (seen("issuers", "issuers", target=gates(drop_old=WAIT)), (Act.SET, "restart")),
        (seen("issuers", "issuers"), (Act.SET, "restart")),
        # restart set (by hand, or a run stopped right after setting it): the `up` waits for gate (b) too.
        (seen("restart", "issuers", source=gates(issuer=WAIT, drop_old=WAIT)), (Act.WAIT, "restart")),
        (seen("restart", "issuers", target=gates(drop_old=WAIT)), (Act.UP, "restart")),
        # restart applied: drop-old only once gate (c) passes on both.
        (seen("restart", "restart", target=gates(drop_old=WAIT)), (Act.WAIT, "restart")),
        (seen("restart", "restart"), (Act.SET, "drop-old")),
        (seen("drop-old", "restart", source=gates(drop_old=WAIT)), (Act.WAIT, "drop-old")),
        (seen("drop-old", "restart"), (Act.UP, "drop-old")),
        # drop-old set by hand right after issuers (no restart: a certificate lifetime instead): gate (c), then up.
        (seen("drop-old", "issuers", source=gates(drop_old=WAIT)), (Act.WAIT, "drop-old")),
        (seen("drop-old", "issuers"), (Act.UP, "drop-old")),
        # drop-old applied: done once every meshed pod holds the new anchor alone.
        (seen("drop-old", "stable", source=gates(roots=WAIT)), (Act.WAIT, "drop-old")),
        (seen("drop-old", "stable"), (Act.DONE, None)),
        # A gate that fails will not take hold by itself.
        (seen("issuers", "issuers", source=gates(issuer=FAIL, drop_old=FAIL)), (Act.REFUSE, "issuers")),
        (seen("restart", "restart", source=gates(drop_old=FAIL)), (Act.REFUSE, "restart")),
        (seen("bundle", "bundle", target=gates(roots=FAIL)), (Act.REFUSE, "bundle")),
    ],
)
def test_the_next_thing_from_the_config_the_outputs_and_the_gates(observed: Observed, expected: tuple[Act, str | None]) -> None:
    decided = decide(observed)
    assert (decided.act, decided.step) == expected, decided


def test_a_wait_names_what_is_missing_on_each_cluster() -> None:
    decided = decide(seen("bundle", "bundle", target=gates(roots=WAIT), source=gates(roots=UNKNOWN)))
    assert decided == Next(
        Act.WAIT, "bundle", ("waiting for roots held:", "target: roots held: roots wait", "source: roots held: roots unknown")
    )
    refused = decide(seen("restart", "restart", target=gates(drop_old=FAIL), source=gates(drop_old=WAIT)))
    assert refused.said == (
        "drop-old allowed will not take hold by itself:",
        "target: drop-old allowed: drop-old fail",
        "source: drop-old allowed: drop-old wait",
    )
    # After issuers it is gate (b) that is waited for, named per cluster, before the restart.
    assert decide(seen("issuers", "issuers", target=gates(issuer=WAIT), source=gates(issuer=WAIT))) == Next(
        Act.WAIT,
        "issuers",
        ("waiting for issuer loaded:", "target: issuer loaded: issuer wait", "source: issuer loaded: issuer wait"),
    )
    assert decide(seen("issuers", "issuers", source=gates(issuer=FAIL))).said == (
        "issuer loaded will not take hold by itself:",
        "source: issuer loaded: issuer fail",
    )


def test_a_complete_rotation_starts_again_only_when_asked() -> None:
    assert decide(seen("drop-old", "stable"), new_anchor=True).act is Act.SET
    # Not before the last one took hold.
    assert decide(seen("drop-old", "stable", source=gates(roots=WAIT)), new_anchor=True).act is Act.WAIT


@pytest.mark.parametrize(
    ("step", "phase", "message"),
    [
        (
            None,
            "bundle",
            "trustAnchorRotation is unset while a rotation is under way (the target's last update did step bundle, trust "
            "anchor 1): set it back with `pulumi config set trustAnchorRotation bundle --stack target`, then run "
            "rotate-trust again",
        ),
        (
            "issuers",
            "stable",
            "trustAnchorRotation = 'issuers' skips a step or goes back (no rotation is under way; the next step is bundle): "
            "set it to 'drop-old' (`pulumi config set trustAnchorRotation drop-old --stack target`), then run rotate-trust again",
        ),
        (
            "bundle",
            "issuers",
            "trustAnchorRotation = 'bundle' skips a step or goes back (the target's last update did step issuers; the next "
            "step is restart): set it to 'issuers' (`pulumi config set trustAnchorRotation issuers --stack target`), then "
            "run rotate-trust again",
        ),
        (
            "issuers",
            "restart",
            "trustAnchorRotation = 'issuers' skips a step or goes back (the target's last update did step restart; the next "
            "step is drop-old): set it to 'restart' (`pulumi config set trustAnchorRotation restart --stack target`), then "
            "run rotate-trust again",
        ),
        (
            "restart",
            "bundle",
            "trustAnchorRotation = 'restart' skips a step or goes back (the target's last update did step bundle; the next "
            "step is issuers): set it to 'bundle' (`pulumi config set trustAnchorRotation bundle --stack target`), then "
            "run rotate-trust again",
        ),
        (
            None,
            "restart",
            "trustAnchorRotation is unset while a rotation is under way (the target's last update did step restart, trust "
            "anchor 1): set it back with `pulumi config set trustAnchorRotation restart --stack target`, then run "
            "rotate-trust again",
        ),
    ],
)
def test_what_the_program_would_refuse_is_refused_with_the_way_back(step: str | None, phase: str, message: str) -> None:
    decided = decide(seen(step, phase))
    assert decided.act is Act.REFUSE and decided.said == (message,)
    # The program agrees: the same combination is refused before any resource.
    with pytest.raises(Exception, match="trustAnchorRotation"):
        anchor_plan({"generation": 1, "phase": phase}, RotationStep(step) if step else None)


# --- the loop, over a simulated pair of clusters ----------------------------------------------------


class Killed(BaseException):
    """The process stopped (kill, ^C): not an error any code here handles."""


@dataclass
class World:
    """Two clusters and the stacks' state, as the Automation API and kubectl would show them.

    Pods roll `rollout` reads after an `up` changes the roots or the restart mark; an issuer is loaded `load` reads
    after it is written; a proxy certificate from the new issuer comes `renew` reads after it is loaded (a day: only a
    restart, `rollout` reads, brings it sooner).
    """

    rollout: int = 2
    load: int = 1
    renew: int = 10_000
    config: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Per cluster: the roots its pods hold, reads left until they hold the applied ones; same for issuer and (c).
    held: dict[str, str] = field(default_factory=dict)
    pending: dict[str, dict[str, int]] = field(default_factory=dict)
    applied: list[tuple[str, str]] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    # Kill the process at this event number (set_config, each stack's up, each cluster's gate read).
    kill_at: int | None = None
    events: int = 0

    def __post_init__(self) -> None:
        for stack in ("target", "source"):
            self.outputs[stack] = {"context": f"{stack}-ctx", "trustRootsPem": "0", "trustAnchorPem": "0"}
            self.held[stack] = "0"
            self.pending[stack] = {"roots": 0, "issuer": 0, "certs": 0}
        self.outputs["target"]["identityAnchors"] = {"generation": 0, "phase": "stable"}

    def tick(self, what: str) -> None:
        self.events += 1
        if self.kill_at == self.events:
            raise Killed(what)

    # The engine's side (driver.api.Engine).
    def run(
        self,
        stack: str,
        operation: str,
        on_step: Callable[[str, bool], None],
        expect_no_changes: bool = False,
        skip_checkpoints: bool = False,
    ) -> Any:
        assert operation == "up"
        self.tick(f"up {stack}")
        step = self.config.get("trustAnchorRotation")
        if stack == "target":
            plan = anchor_plan(self.outputs["target"].get("identityAnchors"), RotationStep(step) if step else None)
            roots, signer, state = " ".join(map(str, plan.trusted)), str(plan.signing), plan.state()
            self._check_gate(plan.phase.value)
            self.outputs["target"].update(identityAnchors=state)
        else:
            target = self.outputs["target"]
            roots, signer = target["trustRootsPem"], target["trustAnchorPem"]
            plan = current_anchors(target.get("identityAnchors"))
        self._apply(stack, roots, signer, plan.restart_mark)
        return {"update": 1}, dict(self.outputs[stack])

    def _apply(self, stack: str, roots: str, signer: str, mark: str | None) -> None:
        outputs, pending = self.outputs[stack], self.pending[stack]
        if outputs["trustRootsPem"] != roots:
            pending["roots"] = self.rollout
        if outputs["trustAnchorPem"] != signer:
            pending["issuer"], pending["certs"] = self.load, self.load + self.renew
        elif outputs.get("restartedWorkloads", {}).get("mark") != mark and pending["certs"]:
            # The restart: new proxies ask for certificates now, from the issuer the controller holds.
            pending["certs"] = self.rollout
        self.applied.append((stack, f"{roots}/{signer}/{mark}"))
        outputs.update(trustRootsPem=roots, trustAnchorPem=signer, restartedWorkloads={"mark": mark} if mark else {})

    def _check_gate(self, phase: str) -> None:
        """A step applied before its gate passed on both clusters is a violation."""
        last = self.outputs["target"]["identityAnchors"]["phase"]
        if (last, phase) == ("bundle", "issuers") and any(self.pending[s]["roots"] for s in self.pending):
            self.violations.append("issuers applied while a pod lacked the new anchor")
        if (last, phase) == ("issuers", "restart") and any(self.pending[s]["issuer"] for s in self.pending):
            self.violations.append("restart applied before an identity controller loaded the new issuer")
        if (last, phase) in {("issuers", "stable"), ("restart", "stable")} and any(
            self.pending[s]["certs"] for s in self.pending
        ):
            self.violations.append("drop-old applied while a proxy certificate came from an old issuer")

    def outputs_of(self, stack: str) -> dict[str, Any]:
        return dict(self.outputs[stack])

    def get_config(self, stack: str, key: str) -> str | None:
        return self.config.get(key) if stack == "target" else None

    def set_config(self, stack: str, key: str, value: str) -> None:
        self.tick(f"set {key}={value}")
        self.config[key] = value

    def unprotect(self, stack: str) -> None:
        raise AssertionError("rotate-trust unprotects nothing")

    # kubectl's side.
    def gates(self, stack: str, outputs: Mapping[str, Any]) -> dict[Gate, Reading]:
        self.tick(f"gates {stack}")
        left = self.pending[stack]
        readings = gates(
            roots=WAIT if left["roots"] else PASS,
            issuer=WAIT if left["issuer"] else PASS,
            drop_old=WAIT if left["certs"] else PASS,
        )
        for key in left:
            left[key] = max(left[key] - 1, 0)
        return readings


class Engine:
    """driver.api.Engine over the world (outputs() is the engine's name for a stack's outputs)."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.run = world.run
        self.get_config = world.get_config
        self.set_config = world.set_config
        self.unprotect = world.unprotect

    def outputs(self, stack: str) -> dict[str, Any]:
        return self.world.outputs_of(stack)


def rotate(world: World, kubeconfig: Path, *, timeout: float = 600, new_anchor: bool = False) -> tuple[Rotate, list[str]]:
    said: list[str] = []
    clock = [0.0]
    job = Rotate(
        deployment(Engine(world), kubeconfig=kubeconfig),  # type: ignore[arg-type]
        world.gates,
        said.append,
        timeout=timeout,
        interval=10,
        new_anchor=new_anchor,
        monotonic=lambda: clock[0],
        sleep=lambda seconds: clock.__setitem__(0, clock[0] + seconds),
    )
    job.run()
    return job, said


# One uninterrupted run: each stack applies bundle, issuers, restart, drop-old once, in order (roots/signer/mark).
STEPS = [
    ("target", "0 1/0/0 1"), ("source", "0 1/0/0 1"),  # bundle: both anchors trusted, the old one signs
    ("target", "0 1/1/0 1"), ("source", "0 1/1/0 1"),  # issuers: the new one signs; nothing restarts
    ("target", "0 1/1/0 1 after issuers"), ("source", "0 1/1/0 1 after issuers"),  # restart: the mark alone changes
    ("target", "1/1/1"), ("source", "1/1/1"),  # drop-old: the new one alone
]  # fmt: skip


def test_one_run_rotates_both_clusters_in_order_after_each_gate(kube: Path) -> None:  # noqa: F811
    world = World()
    job, said = rotate(world, kube)
    assert world.applied == STEPS and world.violations == []
    assert job.done == [
        ("set", "bundle"),
        ("up", "bundle"),
        ("set", "issuers"),
        ("up", "issuers"),
        ("set", "restart"),
        ("up", "restart"),
        ("set", "drop-old"),
        ("up", "drop-old"),
    ]
    assert world.config == {"trustAnchorRotation": "drop-old"}
    assert world.outputs["target"]["identityAnchors"] == {"generation": 1, "phase": "stable"}
    # Progress names what it waits for, per cluster.
    assert "[0s] waiting for roots held:\n  target: roots held: roots wait\n  source: roots held: roots wait" in said
    # After issuers it waits for gate (b), sets restart, and after the restart's `up` waits for gate (c).
    assert "[0s] waiting for issuer loaded:\n  target: issuer loaded: issuer wait\n  source: issuer loaded: issuer wait" in said
    assert "step restart: both identity controllers loaded the new issuer: set trustAnchorRotation=restart on the target" in said
    assert (
        "[0s] waiting for drop-old allowed:\n  target: drop-old allowed: drop-old wait\n  source: drop-old allowed: drop-old wait"
        in said
    )
    order = [line.split(":")[0] if line.startswith("step") else line.split("\n")[0] for line in said]
    assert (
        order.index("[0s] waiting for issuer loaded:")
        < order.index("step restart")
        < order.index("[0s] waiting for drop-old allowed:")
    )
    assert said[-1] == "done: trust anchor 1 alone in the roots of both clusters; every meshed pod holds the new anchor alone"
    # Run again: complete, nothing done; asked for a new anchor, the next rotation.
    again, _ = rotate(world, kube)
    assert again.done == [] and world.applied == STEPS
    rotate(world, kube, new_anchor=True)
    assert world.outputs["target"]["identityAnchors"] == {"generation": 2, "phase": "stable"} and world.violations == []


def test_stopped_at_every_point_and_run_again_it_ends_as_one_run_does(kube: Path) -> None:  # noqa: F811
    events = World()
    rotate(events, kube)
    for kill_at in range(1, events.events + 1):
        world = World(kill_at=kill_at)
        with pytest.raises(Killed):
            rotate(world, kube)
        world.kill_at = None
        rotate(world, kube)
        # An `up` killed before it applied anything is not in `applied`; one killed between the stacks runs again.
        assert list(dict.fromkeys(world.applied)) == STEPS, kill_at
        assert world.violations == [], kill_at
        assert world.outputs["target"]["identityAnchors"] == {"generation": 1, "phase": "stable"}, kill_at
        assert world.config == {"trustAnchorRotation": "drop-old"}, kill_at


def test_gates_that_never_pass_time_out_naming_what_is_missing(kube: Path) -> None:  # noqa: F811
    world = World(rollout=10_000)
    with pytest.raises(DriverError) as raised:
        rotate(world, kube, timeout=60)
    assert raised.value.exit_code == 1
    assert str(raised.value) == (
        "timed out after 60s waiting for roots held:\n"
        "target: roots held: roots wait\n"
        "source: roots held: roots wait\n"
        "run `./aes-linkerd2 rotate-trust` again to go on from here (nothing is undone)"
    )
    # It stopped after bundle, before issuers: nothing skipped.
    assert world.config == {"trustAnchorRotation": "bundle"} and world.applied == STEPS[:2]


def test_a_rotation_started_by_hand_is_taken_over_after_its_gate(kube: Path) -> None:  # noqa: F811
    world = World()
    # The operator set bundle, ran `up`, then set issuers without waiting: the pods have not restarted.
    world.config["trustAnchorRotation"] = "bundle"
    world.run("target", "up", lambda *_: None)
    world.run("source", "up", lambda *_: None)
    world.config["trustAnchorRotation"] = "issuers"
    job, said = rotate(world, kube)
    assert world.violations == [] and world.applied == STEPS
    assert job.done[0] == ("up", "issuers") and said[0].startswith("[0s] waiting for roots held:")


def test_a_hand_rotation_left_in_a_state_the_program_refuses_is_refused_before_anything(kube: Path) -> None:  # noqa: F811
    world = World()
    world.outputs["target"]["identityAnchors"] = {"generation": 1, "phase": "bundle"}
    with pytest.raises(DriverError) as raised:
        rotate(world, kube)
    assert raised.value.exit_code == 2 and str(raised.value).startswith(
        "trustAnchorRotation is unset while a rotation is under way"
    )
    assert world.applied == [] and world.config == {}


def test_a_failing_gate_stops_the_run_naming_it(kube: Path) -> None:  # noqa: F811
    world = World()
    real = world.gates

    def failing(stack: str, outputs: Mapping[str, Any]) -> dict[Gate, Reading]:
        readings = real(stack, outputs)
        if stack == "source":
            readings[Gate.DROP_OLD] = Reading(FAIL, "the new issuer: IssuerUpdateSkipped at 2026-12-07T10:00:00Z")
        return readings

    world.gates = failing  # type: ignore[method-assign]
    with pytest.raises(DriverError) as raised:
        rotate(world, kube)
    assert raised.value.exit_code == 1
    assert "source: drop-old allowed: the new issuer: IssuerUpdateSkipped at 2026-12-07T10:00:00Z" in str(raised.value)
    assert world.config == {"trustAnchorRotation": "restart"} and world.applied == STEPS[:6]


def test_an_issuer_never_loaded_stops_the_run_before_the_restart(kube: Path) -> None:  # noqa: F811
    world = World()
    real = world.gates

    def failing(stack: str, outputs: Mapping[str, Any]) -> dict[Gate, Reading]:
        readings = real(stack, outputs)
        if stack == "target" and world.outputs["target"]["identityAnchors"]["phase"] == "issuers":
            readings[Gate.ISSUER] = Reading(FAIL, "not loaded: written 2026-12-07T10:00:00Z, 6 min ago")
        return readings

    world.gates = failing  # type: ignore[method-assign]
    with pytest.raises(DriverError) as raised:
        rotate(world, kube)
    assert str(raised.value) == (
        "issuer loaded will not take hold by itself:\n"
        "target: issuer loaded: not loaded: written 2026-12-07T10:00:00Z, 6 min ago\n"
        "source: issuer loaded: issuer wait"
    )
    # Nothing restarted: the restart is neither set nor applied while an identity controller holds the old issuer.
    assert world.config == {"trustAnchorRotation": "issuers"} and world.applied == STEPS[:4]


def test_without_the_restart_drop_old_would_wait_a_certificate_lifetime(kube: Path) -> None:  # noqa: F811
    """The simulated world's day is real: with the restart step removed from the table, the run times out at (c)."""
    world = World()
    world.config["trustAnchorRotation"] = "bundle"
    for step in ("bundle", "issuers"):
        world.config["trustAnchorRotation"] = step
        world.run("target", "up", lambda *_: None)
        world.run("source", "up", lambda *_: None)
    world.config["trustAnchorRotation"] = "drop-old"  # by hand, straight after issuers
    with pytest.raises(DriverError, match=r"^timed out after 600s waiting for drop-old allowed:"):
        rotate(world, kube)
    assert world.applied == STEPS[:4]


def test_a_stack_without_outputs_is_refused_before_anything(kube: Path) -> None:  # noqa: F811
    world = World()
    world.outputs["source"] = {}
    with pytest.raises(DriverError, match=r"stack source has no outputs: `./aes-linkerd2 up` both stacks"):
        rotate(world, kube)
    assert world.applied == [] and world.config == {}


def test_an_unknown_step_in_config_is_refused(kube: Path) -> None:  # noqa: F811
    world = World(config={"trustAnchorRotation": "rotate"})
    with pytest.raises(DriverError, match=r"config trustAnchorRotation = 'rotate' on the target: must be unset or one of bundle"):
        rotate(world, kube)


def test_an_up_that_fails_stops_the_run(kube: Path) -> None:  # noqa: F811
    world = World()
    real = world.run

    def run(stack: str, *args: Any, **kwargs: Any) -> Any:
        if stack == "source" and world.config.get("trustAnchorRotation") == "issuers":
            raise RuntimeError("the source's issuer Command failed")
        return real(stack, *args, **kwargs)

    world.run = run  # type: ignore[method-assign]
    with pytest.raises(DriverError, match="up of step issuers failed on source: the source's issuer Command failed"):
        rotate(world, kube)
    # Run again once it is fixed: the source catches up, nothing is redone on the target beyond its same step.
    world.run = real  # type: ignore[method-assign]
    rotate(world, kube)
    assert list(dict.fromkeys(world.applied)) == STEPS and world.violations == []


def test_the_command_takes_both_stacks() -> None:
    assert main(["rotate-trust", "--stack", "target"]) == 2


def test_an_up_that_changes_nothing_visible_is_not_run_again_and_again(kube: Path) -> None:  # noqa: F811
    world = World()
    world._apply = lambda stack, roots, signer, mark: None  # type: ignore[method-assign]  # the outputs never show the step
    real = world.run

    def run(stack: str, *args: Any, **kwargs: Any) -> Any:
        real(stack, *args, **kwargs)
        if stack == "target":  # the target applies; the source's outputs never follow
            world.outputs["target"].update(trustRootsPem="0 1")
        return {"update": 1}, {}

    world.run = run  # type: ignore[method-assign]
    with pytest.raises(DriverError) as raised:
        rotate(world, kube)
    assert str(raised.value) == (
        "`up` of step bundle succeeded, yet the stacks' outputs do not show it applied: "
        "the source does not follow the target's step bundle yet"
    )
