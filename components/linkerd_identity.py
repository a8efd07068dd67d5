"""One trust anchor for both clusters and an issuer per cluster signed by it.

Two clusters installed with `linkerd install`'s own certificates share no anchor, and multicluster
then fails. The anchor is made once, by a Command whose output stays in state (as a secret), and is
never regenerated on a later `up`: only a change of trust domain replaces it.
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass

import pulumi
import pulumi_command as command

from components import upstream
from components.certificates import ANCHOR_CERT_ENV, ANCHOR_KEY_ENV, KeyPair
from components.manifests import PROJECT_ROOT


@dataclass(frozen=True, kw_only=True)
class LinkerdIdentityArgs:
    trust_domain: str
    clusters: tuple[str, ...]  # an issuer for each, e.g. ("target", "source")
    python: str = sys.executable


@dataclass(frozen=True)
class Issuer:
    cert_pem: pulumi.Output[str]
    key_pem: pulumi.Output[str]


def _certificate_command(kind: str, common_name: str, valid_hours: int, python: str) -> str:
    return shlex.join(
        [python, "-m", "components.certificates", kind, "--common-name", common_name, "--valid-hours", str(valid_hours)]
    )


def _key_pair(cmd: command.local.Command) -> tuple[pulumi.Output[str], pulumi.Output[str]]:
    pair = cmd.stdout.apply(KeyPair.from_json)
    # A certificate is public; only the key stays secret.
    return pulumi.Output.unsecret(pair.apply(lambda p: p.cert_pem)), pulumi.Output.secret(pair.apply(lambda p: p.key_pem))


class LinkerdIdentity(pulumi.ComponentResource):
    trust_anchor_pem: pulumi.Output[str]
    trust_anchor_key_pem: pulumi.Output[str]
    issuers: dict[str, Issuer]

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
        self.issuers = {
            cluster: Issuer(
                *self._certificate(
                    f"{name}-{cluster}-issuer",
                    "issuer",
                    upstream.issuer_common_name(args.trust_domain),
                    upstream.ISSUER_VALIDITY_HOURS,
                    # A new anchor needs new issuers.
                    triggers=[self.trust_anchor_pem],
                    environment={ANCHOR_CERT_ENV: self.trust_anchor_pem, ANCHOR_KEY_ENV: self.trust_anchor_key_pem},
                )
            )
            for cluster in args.clusters
        }
        self.register_outputs(
            {
                "trustAnchorPem": self.trust_anchor_pem,
                **{f"{cluster}IssuerCertPem": issuer.cert_pem for cluster, issuer in self.issuers.items()},
            }
        )

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
