"""One trust anchor for both clusters and an issuer per cluster signed by it.

Two clusters installed with `linkerd install`'s own certificates share no anchor, and multicluster
then fails. The anchor is made once, by a Command whose output stays in state (as a secret), and is
never regenerated on a later `up`: only a change of trust domain replaces it.

Rotating it takes three `up`s (`trustAnchorRotation`: bundle, issuers, drop-old), as Linkerd's guide
does by hand: a new anchor (a new Command, by its generation's name) joins the trust roots; then
the issuers are re-issued by it; then the old one leaves the roots. Each proxy trusts both anchors
while either signs an issuer, so none is rejected at any step.
"""

from __future__ import annotations

import datetime
import functools
import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import pulumi
import pulumi_command as command

from support import clock, upstream
from support.certificates import ANCHOR_CERT_ENV, ANCHOR_KEY_ENV, KeyPair, RotationStep, bundle, expiry
from support.config import TRUST_ANCHOR_ROTATION as ROTATION_KEY
from support.errors import ConfigError
from support.project import PROJECT_ROOT, RUNS_OFFLINE_ENV


class Phase(StrEnum):
    """Where a rotation stands after an update."""

    STABLE = "stable"  # one anchor, in the roots and signing the issuers
    BUNDLE = "bundle"  # the roots carry the old and the new anchor; the old one signs the issuers
    ISSUERS = "issuers"  # the roots carry both; the new one signs the issuers


@dataclass(frozen=True)
class AnchorPlan:
    """The anchors this update keeps: generation `generation` is the newest (0 is the first anchor)."""

    generation: int = 0
    phase: Phase = Phase.STABLE
    # What the preview says about this update's step (None: no step, nothing to say).
    said: str | None = None

    @property
    def trusted(self) -> tuple[int, ...]:
        """The generations in the trust roots, oldest first."""
        return (self.generation,) if self.phase is Phase.STABLE else (self.generation - 1, self.generation)

    @property
    def signing(self) -> int:
        """The generation that signs the issuers."""
        return self.generation - 1 if self.phase is Phase.BUNDLE else self.generation

    def state(self) -> dict[str, Any]:
        """What the stack exports (`identityAnchors`) for the next update's plan."""
        return {"generation": self.generation, "phase": self.phase.value}


# (phase the last update left, step asked) -> phase of this update; a step that repeats the last
# one changes nothing, so keeping the value after each `up` is safe.
_STEPS = {
    (Phase.STABLE, None): Phase.STABLE,
    (Phase.STABLE, RotationStep.DROP_OLD): Phase.STABLE,
    (Phase.STABLE, RotationStep.BUNDLE): Phase.BUNDLE,
    (Phase.BUNDLE, RotationStep.BUNDLE): Phase.BUNDLE,
    (Phase.BUNDLE, RotationStep.ISSUERS): Phase.ISSUERS,
    (Phase.ISSUERS, RotationStep.ISSUERS): Phase.ISSUERS,
    (Phase.ISSUERS, RotationStep.DROP_OLD): Phase.STABLE,
}
_NEXT = {Phase.STABLE: RotationStep.BUNDLE, Phase.BUNDLE: RotationStep.ISSUERS, Phase.ISSUERS: RotationStep.DROP_OLD}


def anchor_plan(previous: Mapping[str, Any] | None, step: RotationStep | None) -> AnchorPlan:
    """This update's anchors, from the last update's (`identityAnchors`) and the step asked.

    Refused (naming the key) when the step skips one, goes back, or is removed mid-rotation.
    """
    try:
        generation = int((previous or {}).get("generation", 0))
        last = Phase((previous or {}).get("phase", Phase.STABLE.value))
    except ValueError:
        raise ConfigError(
            ROTATION_KEY, step and step.value, f"the stack's last identityAnchors output is unreadable: {previous!r}"
        ) from None
    phase = _STEPS.get((last, step))
    if phase is None:
        where = "no rotation is under way" if last is Phase.STABLE else f"the last update did step {last.value}"
        reason = "removed while a rotation is under way" if step is None else "skips a step or goes back"
        raise ConfigError(ROTATION_KEY, step and step.value, f"{reason}: {where}; the next step is {_NEXT[last].value}")
    if phase is last:
        return AnchorPlan(generation, phase)
    if phase is Phase.BUNDLE:
        return AnchorPlan(
            generation + 1,
            phase,
            f"trust anchor rotation, step bundle: makes trust anchor {generation + 1}; the trust roots carry "
            f"anchors {generation} and {generation + 1}; anchor {generation} still signs the issuers. "
            f"Once every meshed pod has restarted, set {ROTATION_KEY}=issuers",
        )
    if phase is Phase.ISSUERS:
        return AnchorPlan(
            generation,
            phase,
            f"trust anchor rotation, step issuers: every issuer is re-issued by trust anchor {generation}; "
            f"the trust roots still carry anchors {generation - 1} and {generation}. "
            f"Once every proxy has a certificate from a new issuer (24h), set {ROTATION_KEY}=drop-old",
        )
    return AnchorPlan(
        generation,
        phase,
        f"trust anchor rotation, step drop-old: the trust roots carry only trust anchor {generation}; "
        f"anchor {generation - 1} is deleted. The rotation is done",
    )


def anchor_resource_name(name: str, generation: int) -> str:
    # The first anchor keeps the name it always had; each rotation's anchor is a new resource, made once.
    return f"{name}-trust-anchor" if generation == 0 else f"{name}-trust-anchor-{generation}"


@dataclass(frozen=True, kw_only=True)
class LinkerdIdentityArgs:
    trust_domain: str
    clusters: tuple[str, ...]  # an issuer for each, e.g. ("target", "source")
    python: str = sys.executable
    # An issuer with fewer days left than this is re-issued by the next `up`.
    renew_before_days: int = upstream.ISSUER_RENEW_BEFORE_DAYS
    # The issuers as the last update left them ({cluster: {"generation": n, "notAfter": ...}}),
    # read from this stack's own outputs; None or {} on the first update.
    previous_issuers: pulumi.Input[Mapping[str, Any]] | None = None
    # The anchors this update keeps (a rotation's step); decided before anything is registered.
    anchors: AnchorPlan = AnchorPlan()


def issuer_generation(previous: Mapping[str, Any] | None, now: datetime.datetime, renew_before_days: int) -> int:
    """The issuer's generation for this update: the last one's, plus one when it is due for renewal."""
    if not previous:
        return 0
    not_after = datetime.datetime.fromisoformat(str(previous["notAfter"]).replace("Z", "+00:00"))
    due = not_after - now < datetime.timedelta(days=renew_before_days)
    return int(previous["generation"]) + (1 if due else 0)


@dataclass(frozen=True)
class Issuer:
    cert_pem: pulumi.Output[str]
    key_pem: pulumi.Output[str]
    # Bumped by each renewal; kept in the stack's outputs for the next update to compare.
    generation: pulumi.Output[int]


def _certificate_command(kind: str, common_name: str, valid_hours: int, python: str) -> str:
    return shlex.join(
        [python, "-m", "support.certificates", kind, "--common-name", common_name, "--valid-hours", str(valid_hours)]
    )


def _key_pair(cmd: command.local.Command) -> tuple[pulumi.Output[str], pulumi.Output[str]]:
    pair = cmd.stdout.apply(KeyPair.from_json)
    # A certificate is public; only the key stays secret.
    return pulumi.Output.unsecret(pair.apply(lambda p: p.cert_pem)), pulumi.Output.secret(pair.apply(lambda p: p.key_pem))


class LinkerdIdentity(pulumi.ComponentResource):
    # The anchor that signs the issuers, and the roots every proxy trusts (during a rotation, two anchors).
    trust_anchor_pem: pulumi.Output[str]
    trust_anchor_key_pem: pulumi.Output[str]
    trust_roots_pem: pulumi.Output[str]
    issuers: dict[str, Issuer]
    # {cluster: {"generation": n, "notAfter": ...}}, for the next update's renewal decision.
    issuer_state: pulumi.Output[dict[str, Any]]
    # {"generation": n, "phase": ...}, for the next update's rotation step.
    anchor_state: dict[str, Any]

    def __init__(self, name: str, args: LinkerdIdentityArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("aes-linkerd2:index:LinkerdIdentity", name, None, opts)
        self._python = args.python
        plan = args.anchors
        if plan.said:
            # Said in the preview, before the update does it.
            pulumi.log.warn(plan.said, self)
        anchors = {
            generation: self._certificate(
                anchor_resource_name(name, generation),
                "anchor",
                upstream.trust_anchor_common_name(args.trust_domain),
                upstream.TRUST_ANCHOR_VALIDITY_HOURS,
                triggers=[args.trust_domain],
                # The newest anchor is protected: no update replaces it, no plain `pulumi destroy` deletes it.
                # The one a rotation drops is let go of from its `bundle` step on, so `drop-old` can delete it.
                protect=generation == plan.generation,
            )
            for generation in plan.trusted
        }
        self.trust_anchor_pem, self.trust_anchor_key_pem = anchors[plan.signing]
        self.trust_roots_pem = pulumi.Output.all(*(anchors[g][0] for g in plan.trusted)).apply(bundle)
        self.anchor_state = plan.state()
        previous = pulumi.Output.from_input(args.previous_issuers or {})
        now = clock.now()
        self.issuers = {}
        for index, cluster in enumerate(args.clusters):
            generation = previous.apply(functools.partial(self._generation, cluster, now, args.renew_before_days))
            cert_pem, key_pem = self._certificate(
                f"{name}-{cluster}-issuer",
                "issuer",
                upstream.issuer_common_name(args.trust_domain),
                # Each cluster's issuer is due on another day: renewals never fall together.
                upstream.ISSUER_VALIDITY_HOURS - 24 * upstream.ISSUER_STAGGER_DAYS * index,
                # A new anchor, or a due renewal, makes a new issuer.
                triggers=[self.trust_anchor_pem, generation.apply(str)],
                environment={ANCHOR_CERT_ENV: self.trust_anchor_pem, ANCHOR_KEY_ENV: self.trust_anchor_key_pem},
            )
            self.issuers[cluster] = Issuer(cert_pem=cert_pem, key_pem=key_pem, generation=generation)
        self.issuer_state = pulumi.Output.all(
            *(pulumi.Output.all(issuer.generation, issuer.cert_pem) for issuer in self.issuers.values())
        ).apply(
            lambda states: {
                cluster: {"generation": generation, "notAfter": expiry(cert_pem)}
                for cluster, (generation, cert_pem) in zip(self.issuers, states, strict=True)
            }
        )
        self.register_outputs(
            {
                "trustAnchorPem": self.trust_anchor_pem,
                "trustRootsPem": self.trust_roots_pem,
                "anchors": self.anchor_state,
                "issuers": self.issuer_state,
                **{f"{cluster}IssuerCertPem": issuer.cert_pem for cluster, issuer in self.issuers.items()},
            }
        )

    def _generation(self, cluster: str, now: datetime.datetime, renew_before_days: int, issuers: Mapping[str, Any] | None) -> int:
        last = (issuers or {}).get(cluster)
        generation = issuer_generation(last, now, renew_before_days)
        if last and generation != int(last["generation"]):
            # Said in the preview, before the update replaces it.
            pulumi.log.warn(
                f"the {cluster} issuer expires {last['notAfter']}, within {renew_before_days} days: "
                "this update issues a new one from the trust anchor that signs the issuers",
                self,
            )
        return generation

    def _certificate(
        self,
        resource_name: str,
        kind: str,
        common_name: str,
        valid_hours: int,
        *,
        triggers: list[pulumi.Input[str]],
        environment: dict[str, pulumi.Input[str]] | None = None,
        protect: bool = False,
    ) -> tuple[pulumi.Output[str], pulumi.Output[str]]:
        """A key pair made once by a Command; only `triggers` replace it."""
        made = command.local.Command(
            resource_name,
            create=_certificate_command(kind, common_name, valid_hours, self._python),
            dir=str(PROJECT_ROOT),
            # Marks the Command as the program's own: the offline evaluation runs it for real.
            environment={**(environment or {}), RUNS_OFFLINE_ENV: "1"},
            logging=command.local.Logging.NONE,
            triggers=triggers,
            # The interpreter's path differs between machines: a new path must not regenerate the keys.
            opts=pulumi.ResourceOptions(
                parent=self,
                additional_secret_outputs=["stdout"],
                ignore_changes=["create", "dir", "environment"],
                protect=protect,
            ),
        )
        return _key_pair(made)
