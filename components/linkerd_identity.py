"""One trust anchor for both clusters and an issuer per cluster signed by it.

Two clusters installed with `linkerd install`'s own certificates share no anchor, and multicluster
then fails. The anchor is made once, by a Command whose output stays in state (as a secret), and is
never regenerated on a later `up`: only a change of trust domain replaces it.
"""

from __future__ import annotations

import datetime
import functools
import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_command as command

from support import clock, upstream
from support.certificates import ANCHOR_CERT_ENV, ANCHOR_KEY_ENV, KeyPair, expiry
from support.manifests import PROJECT_ROOT


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
    trust_anchor_pem: pulumi.Output[str]
    trust_anchor_key_pem: pulumi.Output[str]
    issuers: dict[str, Issuer]
    # {cluster: {"generation": n, "notAfter": ...}}, for the next update's renewal decision.
    issuer_state: pulumi.Output[dict[str, Any]]

    def __init__(self, name: str, args: LinkerdIdentityArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("aes-linkerd2:index:LinkerdIdentity", name, None, opts)
        self._python = args.python
        self.trust_anchor_pem, self.trust_anchor_key_pem = self._certificate(
            f"{name}-trust-anchor",
            "anchor",
            upstream.trust_anchor_common_name(args.trust_domain),
            upstream.TRUST_ANCHOR_VALIDITY_HOURS,
            triggers=[args.trust_domain],
        )
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
                "this update issues a new one from the same trust anchor",
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
    ) -> tuple[pulumi.Output[str], pulumi.Output[str]]:
        """A key pair made once by a Command; only `triggers` replace it."""
        made = command.local.Command(
            resource_name,
            create=_certificate_command(kind, common_name, valid_hours, self._python),
            dir=str(PROJECT_ROOT),
            environment=environment,
            logging=command.local.Logging.NONE,
            triggers=triggers,
            # The interpreter's path differs between machines: a new path must not regenerate the keys.
            opts=pulumi.ResourceOptions(
                parent=self, additional_secret_outputs=["stdout"], ignore_changes=["create", "dir", "environment"]
            ),
        )
        return _key_pair(made)
