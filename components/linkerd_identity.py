"""One trust anchor for both clusters, and this cluster's issuer signed by it.

Two clusters installed with `linkerd install`'s own certificates share no anchor, and multicluster
then fails. The target makes the anchor once, by a Command that keeps its key in a Secret of the
target cluster (reused, never overwritten, when the Command is made again) and prints only its
certificate. Each stack makes its own cluster's issuer with a Command that reads the anchor's Secret
from the target cluster and writes the issuer's Secret into its own: no private key ever enters
Pulumi's state, config, outputs or logs, nor the linkerd CLI.

Rotating it takes three `up`s (`trustAnchorRotation`: bundle, issuers, drop-old), as Linkerd's guide
does by hand: a new anchor (a new Command, by its generation's name) joins the trust roots; then
the issuers are re-issued by it; then the old one leaves the roots. Each proxy trusts both anchors
while either signs an issuer, so none is rejected at any step. A fourth, optional, between issuers and
drop-old (`restart`) only changes the restart mark: every meshed proxy restarts and gets a certificate
from the new issuer at once, instead of within a certificate's lifetime.
"""

from __future__ import annotations

import datetime
import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import pulumi
import pulumi_command as command

from support import clock, upstream
from support.certificates import RotationStep, anchor_secret_name, bundle, expiry
from support.config_model import ClusterAccess
from support.config_target import TRUST_ANCHOR_ROTATION as ROTATION_KEY
from support.errors import ConfigError
from support.project import PROJECT_ROOT, RUNS_OFFLINE_ENV


class Phase(StrEnum):
    """Where a rotation stands after an update."""

    STABLE = "stable"  # one anchor, in the roots and signing the issuers
    BUNDLE = "bundle"  # the roots carry the old and the new anchor; the old one signs the issuers
    ISSUERS = "issuers"  # the roots carry both; the new one signs the issuers
    RESTART = "restart"  # as ISSUERS, and the meshed workloads restarted since (the restart mark says so)


@dataclass(frozen=True)
class AnchorPlan:
    """The anchors this update keeps: generation `generation` is the newest (0 is the first anchor)."""

    generation: int = 0
    phase: Phase = Phase.STABLE
    # The warning the preview gives about this update's step (None: no step, nothing to say).
    preview_warning: str | None = None

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

    @property
    def restart_mark(self) -> str | None:
        """The value of the meshed pod templates' `aes-linkerd2.io/trust-anchors`: the anchors in the roots, and
        `after issuers` once the `restart` step asked for new proxies.

        It changes exactly when the roots do (`bundle`, `drop-old`) and at `restart`, so those updates roll the
        meshed workloads the program restarts: their proxies read the new roots, or get a certificate from the new
        issuer. None before any rotation: the templates of a stack that never rotated stay as they were.
        """
        if self.generation == 0 and self.phase is Phase.STABLE:
            return None
        anchors = " ".join(str(generation) for generation in self.trusted)
        return f"{anchors} after issuers" if self.phase is Phase.RESTART else anchors

    @property
    def control_plane_mark(self) -> str | None:
        """The mark for Linkerd's own Deployments: only at `restart`, where the roots (whose hash their templates
        carry, which rolls them in the other steps) do not change. None elsewhere: no roll of theirs is added."""
        return self.restart_mark if self.phase is Phase.RESTART else None


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
    (Phase.ISSUERS, RotationStep.RESTART): Phase.RESTART,
    (Phase.RESTART, RotationStep.RESTART): Phase.RESTART,
    (Phase.RESTART, RotationStep.DROP_OLD): Phase.STABLE,
}
_NEXT = {
    Phase.STABLE: "bundle",
    Phase.BUNDLE: "issuers",
    Phase.ISSUERS: "restart (or drop-old, a certificate lifetime after issuers)",
    Phase.RESTART: "drop-old",
}


def anchor_plan(previous: Mapping[str, Any] | None, step: RotationStep | None) -> AnchorPlan:
    """This update's anchors, from the last update's (`identityAnchors`) and the step asked.

    Refused (naming the key) when the step skips one, goes back, or is removed mid-rotation.
    """
    generation, last = _last_anchors(previous, step)
    phase = _STEPS.get((last, step))
    if phase is None:
        where = "no rotation is under way" if last is Phase.STABLE else f"the last update did step {last.value}"
        reason = "removed while a rotation is under way" if step is None else "skips a step or goes back"
        raise ConfigError(ROTATION_KEY, step and step.value, f"{reason}: {where}; the next step is {_NEXT[last]}")
    if phase is last:
        return AnchorPlan(generation, phase)
    if phase is Phase.BUNDLE:
        generation += 1  # the step that makes the new anchor
    return AnchorPlan(generation, phase, _step_warning(phase, generation))


def current_anchors(previous: Mapping[str, Any] | None) -> AnchorPlan:
    """The anchors as the target's last update left them (its `identityAnchors`), as the source follows them."""
    generation, phase = _last_anchors(previous, None)
    return AnchorPlan(generation, phase)


def _last_anchors(previous: Mapping[str, Any] | None, step: RotationStep | None) -> tuple[int, Phase]:
    """The newest generation and the phase the last update left (none: the first anchor, stable)."""
    last = previous or {}
    try:
        return int(last.get("generation", 0)), Phase(last.get("phase", Phase.STABLE.value))
    except ValueError:
        raise ConfigError(
            ROTATION_KEY, step and step.value, f"the stack's last identityAnchors output is unreadable: {previous!r}"
        ) from None


def _step_warning(phase: Phase, generation: int) -> str:
    """What the preview says about the rotation step that moves to `phase`, `generation` the newest anchor."""
    if phase is Phase.BUNDLE:
        return (
            f"trust anchor rotation, step bundle: makes trust anchor {generation}; the trust roots carry "
            f"anchors {generation - 1} and {generation}; anchor {generation - 1} still signs the issuers; the workloads "
            f"the program meshes restart. Once every meshed pod holds both (`./aes-linkerd2 certs`), set {ROTATION_KEY}=issuers"
        )
    if phase is Phase.ISSUERS:
        return (
            f"trust anchor rotation, step issuers: every issuer is re-issued by trust anchor {generation}; "
            f"the trust roots still carry anchors {generation - 1} and {generation}. "
            f"Once both identity controllers loaded it (`./aes-linkerd2 certs`: issuer loaded), set {ROTATION_KEY}=restart; "
            f"or, once every proxy has a certificate from a new issuer (24h), {ROTATION_KEY}=drop-old"
        )
    if phase is Phase.RESTART:
        return (
            f"trust anchor rotation, step restart: the workloads the program meshes restart, Linkerd's own with the "
            f"identity controller first, so that every proxy gets a certificate from the issuer trust anchor {generation} "
            f"signed. Once none is left from an old one (`./aes-linkerd2 certs`: drop-old), set {ROTATION_KEY}=drop-old"
        )
    return (
        f"trust anchor rotation, step drop-old: the trust roots carry only trust anchor {generation}; "
        f"anchor {generation - 1} is deleted; the workloads the program meshes restart. The rotation is done"
    )


def anchor_resource_name(name: str, generation: int) -> str:
    # The first anchor keeps the name it always had; each rotation's anchor is a new resource, made once.
    return f"{name}-trust-anchor" if generation == 0 else f"{name}-trust-anchor-{generation}"


@dataclass(frozen=True, kw_only=True)
class SharedAnchor:
    """The target's anchors as the source reads them from the target's outputs (all public)."""

    secret: str  # the Secret of the anchor that signs the issuers, in the target's `linkerd` namespace
    cert_pem: str
    roots_pem: str


@dataclass(frozen=True, kw_only=True)
class LinkerdIdentityArgs:
    trust_domain: str
    cluster: str  # this cluster's name, which names its issuer
    access: ClusterAccess  # this cluster, where the issuer's Secret goes
    target_access: ClusterAccess  # the target cluster, where the anchors' Secrets live
    kubectl: str
    scheme: str  # the issuer Secret's format (certificates.SCHEME_EXTERNAL, or the 2.8 line's own)
    # The `linkerd` Namespace of the render: every Secret goes there, so the Commands wait for it.
    namespace: pulumi.Resource | None
    # Each further cluster's issuer lives ISSUER_STAGGER_DAYS shorter: renewals never fall together.
    stagger: int = 0
    # An issuer with fewer days left than this is re-issued by the next `up`.
    renew_before_days: int = upstream.ISSUER_RENEW_BEFORE_DAYS
    # This stack's issuers as its last update left them ({cluster: {"generation": n, "notAfter": ...}}).
    previous_issuers: Mapping[str, Any] | None = None
    # The target's: the anchors this update keeps (a rotation's step), decided before anything is registered.
    anchors: AnchorPlan | None = None
    # The source's: the target's anchor, from its outputs.
    shared: SharedAnchor | None = None


def issuer_generation(previous: Mapping[str, Any] | None, now: datetime.datetime, renew_before_days: int) -> int:
    """The issuer's generation for this update: the last one's, plus one when it is due for renewal."""
    if not previous:
        return 0
    not_after = datetime.datetime.fromisoformat(str(previous["notAfter"]).replace("Z", "+00:00"))
    due = not_after - now < datetime.timedelta(days=renew_before_days)
    return int(previous["generation"]) + (1 if due else 0)


def _certificates(kind: str, secret: str, kubectl: str, access: ClusterAccess, *args: str) -> str:
    """The command line of a certificate Command: the cluster by kubeconfig path and context, never a key."""
    return shlex.join(
        [sys.executable, "-m", "support.certificates", kind, "--secret", secret, "--kubectl", kubectl, *access.flags(), *args]
    )


class LinkerdIdentity(pulumi.ComponentResource):
    # The anchor that signs the issuers, and the roots every proxy trusts (during a rotation, two anchors).
    trust_anchor_pem: pulumi.Output[str]
    trust_roots_pem: pulumi.Output[str]
    # The signing anchor's Secret in the target cluster (the target exports it for the source).
    anchor_secret: str
    issuer: command.local.Command
    issuer_cert_pem: pulumi.Output[str]
    # {cluster: {"generation": n, "notAfter": ...}}, for the next update's renewal decision.
    issuer_state: pulumi.Output[dict[str, Any]]
    # The target's {"generation": n, "phase": ...}, for the next update's rotation step.
    anchor_state: dict[str, Any] | None

    def __init__(self, name: str, args: LinkerdIdentityArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("aes-linkerd2:index:LinkerdIdentity", name, None, opts)
        signer: list[pulumi.Resource] = []
        if args.anchors is not None:
            plan = args.anchors
            if plan.preview_warning:
                # Said in the preview, before the update does it.
                pulumi.log.warn(plan.preview_warning, self)
            anchors = {generation: self._anchor(name, generation, args, plan) for generation in plan.trusted}
            self.trust_anchor_pem = anchors[plan.signing].stdout
            self.trust_roots_pem = pulumi.Output.all(*(anchors[g].stdout for g in plan.trusted)).apply(bundle)
            self.anchor_secret = anchor_secret_name(plan.signing)
            self.anchor_state = plan.state()
            signer = [anchors[plan.signing]]
        elif args.shared is not None:
            self.trust_anchor_pem = pulumi.Output.from_input(args.shared.cert_pem)
            self.trust_roots_pem = pulumi.Output.from_input(args.shared.roots_pem)
            self.anchor_secret = args.shared.secret
            self.anchor_state = None
        else:
            raise ValueError("LinkerdIdentity needs the anchors to make (target) or the target's (source)")
        generation = self._generation(args)
        target = args.target_access
        self.issuer = command.local.Command(
            f"{name}-{args.cluster}-issuer",
            create=_certificates(
                "issuer",
                self.anchor_secret,
                args.kubectl,
                args.access,
                *(["--anchor-kubeconfig", target.kubeconfig] if target.kubeconfig else []),
                *("--anchor-context", target.context),
                *("--common-name", upstream.issuer_common_name(args.trust_domain)),
                # Each cluster's issuer is due on another day: renewals never fall together.
                *("--valid-hours", str(upstream.ISSUER_VALIDITY_HOURS - 24 * upstream.ISSUER_STAGGER_DAYS * args.stagger)),
                *("--scheme", args.scheme),
            ),
            # No delete: the namespace goes with `destroy`, and a renewal's new Command overwrites the same
            # Secret (created before the old one is deleted, whose deletion must not remove it).
            dir=str(PROJECT_ROOT),
            # Marks the Command as the program's own: the offline evaluation runs it (on folder stand-ins).
            environment={RUNS_OFFLINE_ENV: "1"},
            logging=command.local.Logging.STDERR,
            # A new signing anchor, or a due renewal, makes a new issuer.
            triggers=[self.trust_anchor_pem, str(generation)],
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[*([args.namespace] if args.namespace else []), *signer],
                # Interpreter and kubeconfig paths differ between machines: not a reason to re-issue.
                ignore_changes=["create", "dir", "environment"],
            ),
        )
        self.issuer_cert_pem = self.issuer.stdout
        cluster = args.cluster
        self.issuer_state = self.issuer_cert_pem.apply(lambda pem: {cluster: {"generation": generation, "notAfter": expiry(pem)}})
        self.register_outputs(
            {
                "trustAnchorPem": self.trust_anchor_pem,
                "trustRootsPem": self.trust_roots_pem,
                "issuers": self.issuer_state,
                "issuerCertPem": self.issuer_cert_pem,
            }
        )

    def _anchor(self, name: str, generation: int, args: LinkerdIdentityArgs, plan: AnchorPlan) -> command.local.Command:
        """One anchor generation: its key made once into a Secret of the target cluster, its certificate printed."""
        secret = anchor_secret_name(generation)
        return command.local.Command(
            anchor_resource_name(name, generation),
            create=_certificates(
                "anchor",
                secret,
                args.kubectl,
                args.target_access,
                *("--common-name", upstream.trust_anchor_common_name(args.trust_domain)),
                *("--valid-hours", str(upstream.TRUST_ANCHOR_VALIDITY_HOURS)),
            ),
            # `drop-old` and `destroy --delete-trust-anchor` take the key with the Command.
            delete=_certificates("delete-anchor", secret, args.kubectl, args.target_access),
            dir=str(PROJECT_ROOT),
            environment={RUNS_OFFLINE_ENV: "1"},
            logging=command.local.Logging.STDERR,
            triggers=[args.trust_domain],
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[args.namespace] if args.namespace else [],
                # The newest anchor is protected: no update replaces it, no plain `pulumi destroy` deletes it.
                # The one a rotation drops is let go of from its `bundle` step on, so `drop-old` can delete it.
                protect=generation == plan.generation,
                # A replacement would find the old key's Secret and reuse it, then delete it: delete it first.
                delete_before_replace=True,
                ignore_changes=["create", "delete", "dir", "environment"],
            ),
        )

    def _generation(self, args: LinkerdIdentityArgs) -> int:
        last = (args.previous_issuers or {}).get(args.cluster)
        generation = issuer_generation(last, clock.now(), args.renew_before_days)
        if last and generation != int(last["generation"]):
            # Said in the preview, before the update replaces it.
            pulumi.log.warn(
                f"the {args.cluster} issuer expires {last['notAfter']}, within {args.renew_before_days} days: "
                "this update issues a new one from the trust anchor that signs the issuers",
                self,
            )
        return generation
