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
        # The interpreter's path differs between machines: a new path must not regenerate the keys.
        keep = ["create", "dir", "environment"]
        anchor = command.local.Command(
            f"{name}-trust-anchor",
            create=_certificate_command(
                "anchor",
                upstream.trust_anchor_common_name(args.trust_domain),
                upstream.TRUST_ANCHOR_VALIDITY_HOURS,
                args.python,
            ),
            dir=str(PROJECT_ROOT),
            logging=command.local.Logging.NONE,
            triggers=[args.trust_domain],
            opts=pulumi.ResourceOptions(parent=self, additional_secret_outputs=["stdout"], ignore_changes=keep),
        )
        self.trust_anchor_pem, self.trust_anchor_key_pem = _key_pair(anchor)

        self.issuers = {}
        for cluster in args.clusters:
            issuer = command.local.Command(
                f"{name}-{cluster}-issuer",
                create=_certificate_command(
                    "issuer",
                    upstream.issuer_common_name(args.trust_domain),
                    upstream.ISSUER_VALIDITY_HOURS,
                    args.python,
                ),
                dir=str(PROJECT_ROOT),
                environment={ANCHOR_CERT_ENV: self.trust_anchor_pem, ANCHOR_KEY_ENV: self.trust_anchor_key_pem},
                logging=command.local.Logging.NONE,
                # A new anchor needs new issuers.
                triggers=[self.trust_anchor_pem],
                opts=pulumi.ResourceOptions(parent=self, additional_secret_outputs=["stdout"], ignore_changes=keep),
            )
            self.issuers[cluster] = Issuer(*_key_pair(issuer))

        self.register_outputs(
            {
                "trustAnchorPem": self.trust_anchor_pem,
                **{f"{cluster}IssuerCertPem": issuer.cert_pem for cluster, issuer in self.issuers.items()},
            }
        )
