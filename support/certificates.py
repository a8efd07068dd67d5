"""Linkerd's identity certificates, made with `cryptography` (ECDSA P-256, as Linkerd's docs ask).

Run as `python -m support.certificates anchor|issuer ...` by a pulumi-command Command, so the
key pair is made once at create time and kept in state (as a secret) afterwards. An issuer is signed
by the anchor given in the environment (TRUST_ANCHOR_CERT_PEM / TRUST_ANCHOR_KEY_PEM), never on argv.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import hashlib
import json
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from support import upstream

ANCHOR_CERT_ENV = "TRUST_ANCHOR_CERT_PEM"
ANCHOR_KEY_ENV = "TRUST_ANCHOR_KEY_PEM"


class RotationStep(StrEnum):
    """The steps of a trust anchor rotation, one `up` each (Linkerd's "manually rotating the trust anchor")."""

    BUNDLE = "bundle"  # a new anchor; the trust roots carry the old and the new one
    ISSUERS = "issuers"  # every issuer re-issued by the new anchor; the roots still carry both
    DROP_OLD = "drop-old"  # the roots carry only the new anchor


@dataclass(frozen=True)
class KeyPair:
    cert_pem: str
    key_pem: str

    def to_json(self) -> str:
        return json.dumps({"certPem": self.cert_pem, "keyPem": self.key_pem})

    @staticmethod
    def from_json(text: str) -> KeyPair:
        data = json.loads(text)
        return KeyPair(cert_pem=data["certPem"], key_pem=data["keyPem"])


# A fixed window for placeholders, so that their PEM is the same at every render.
_PLACEHOLDER_NOT_BEFORE = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)
_PLACEHOLDER_NOT_AFTER = datetime.datetime(2125, 1, 1, tzinfo=datetime.UTC)
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def _ca_certificate(
    common_name: str,
    *,
    key: ec.EllipticCurvePrivateKey,
    path_length: int,
    signer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None,
    not_before: datetime.datetime,
    not_after: datetime.datetime,
    serial: int,
    deterministic: bool = False,
) -> KeyPair:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    issuer_name, signing_key = (signer[0].subject, signer[1]) if signer else (subject, key)
    usage = x509.KeyUsage(
        digital_signature=False,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        # Linkerd 2.8 verifies the issuer by DNS name, so the name is a SAN as well as the CN.
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(common_name)]), critical=False)
    )
    if signer:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer[1].public_key()), critical=False
        )
    certificate = builder.sign(signing_key, hashes.SHA256(), ecdsa_deterministic=deterministic or None)
    return KeyPair(
        cert_pem=certificate.public_bytes(serialization.Encoding.PEM).decode(),
        # SEC1 ("EC PRIVATE KEY"): the form every Linkerd release reads.
        key_pem=key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        ).decode(),
    )


def _load(pair: KeyPair) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    certificate = x509.load_pem_x509_certificate(pair.cert_pem.encode())
    key = serialization.load_pem_private_key(pair.key_pem.encode(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError("the trust anchor key must be an ECDSA key")
    return certificate, key


def _fresh_window(valid_hours: int) -> tuple[datetime.datetime, datetime.datetime]:
    now = datetime.datetime.now(datetime.UTC)
    # A few minutes back, for clocks that run a little behind.
    return now - datetime.timedelta(minutes=5), now + datetime.timedelta(hours=valid_hours)


def new_trust_anchor(common_name: str, valid_hours: int) -> KeyPair:
    """A self-signed root that both clusters trust."""
    not_before, not_after = _fresh_window(valid_hours)
    return _ca_certificate(
        common_name,
        key=ec.generate_private_key(ec.SECP256R1()),
        path_length=1,
        signer=None,
        not_before=not_before,
        not_after=not_after,
        serial=x509.random_serial_number(),
    )


def new_issuer(anchor: KeyPair, common_name: str, valid_hours: int) -> KeyPair:
    """An intermediate CA for one cluster's identity controller, signed by the shared anchor."""
    not_before, not_after = _fresh_window(valid_hours)
    return _ca_certificate(
        common_name,
        key=ec.generate_private_key(ec.SECP256R1()),
        path_length=0,
        signer=_load(anchor),
        not_before=not_before,
        not_after=not_after,
        serial=x509.random_serial_number(),
    )


@functools.cache
def placeholder_identity(trust_domain: str) -> tuple[KeyPair, KeyPair]:
    """A stand-in anchor and issuer with which the Linkerd CLI can render offline.

    Derived from fixed seeds and signed deterministically, so every render is byte-identical and
    whatever the CLI hashes from them stays stable. Their keys protect nothing: every occurrence is
    replaced by the real certificates before anything is applied.
    """

    def key(seed: str) -> ec.EllipticCurvePrivateKey:
        scalar = int.from_bytes(hashlib.sha256(f"aes-linkerd2 placeholder {seed} {trust_domain}".encode()).digest())
        return ec.derive_private_key(scalar % (_P256_ORDER - 1) + 1, ec.SECP256R1())

    anchor = _ca_certificate(
        upstream.trust_anchor_common_name(trust_domain),
        key=key("anchor"),
        path_length=1,
        signer=None,
        not_before=_PLACEHOLDER_NOT_BEFORE,
        not_after=_PLACEHOLDER_NOT_AFTER,
        serial=1,
        deterministic=True,
    )
    issuer = _ca_certificate(
        upstream.issuer_common_name(trust_domain),
        key=key("issuer"),
        path_length=0,
        signer=_load(anchor),
        not_before=_PLACEHOLDER_NOT_BEFORE,
        not_after=_PLACEHOLDER_NOT_AFTER,
        serial=2,
        deterministic=True,
    )
    return anchor, issuer


def common_name(cert_pem: str) -> str:
    """A certificate's subject common name."""
    names = x509.load_pem_x509_certificate(cert_pem.encode()).subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""


def expiry(cert_pem: str) -> str:
    """A certificate's notAfter as Linkerd writes it (the issuer Secret's linkerd.io/identity-issuer-expiry)."""
    not_after = x509.load_pem_x509_certificate(cert_pem.encode()).not_valid_after_utc
    return not_after.strftime("%Y-%m-%dT%H:%M:%SZ")


def bundle(pems: Iterable[str]) -> str:
    """Trust roots of several anchors: each PEM once, each ending in one newline.

    Linkerd hashes the roots as given (`linkerd.io/trust-root-sha256` is the sha256 of the anchors
    file), and this is the file `cat old.crt new.crt` makes.
    """
    return "".join(pem.strip() + "\n" for pem in pems)


def split_bundle(roots_pem: str) -> list[str]:
    """The PEM certificates of trust roots, in order."""
    marker = "-----END CERTIFICATE-----"
    return [part.strip() + "\n" + marker + "\n" for part in roots_pem.split(marker) if part.strip()]


def anchor_rows(roots_pem: str, signing_pem: str) -> list[tuple[str, str]]:
    """(name, PEM) of each anchor the roots carry: `trust-anchor` signs the issuers; during a rotation the
    other is `new-trust-anchor` (not signing yet) or `old-trust-anchor` (about to be dropped).

    The roots list the anchors oldest first.
    """
    signing = x509.load_pem_x509_certificate(signing_pem.encode())
    rows, seen_signing = [("trust-anchor", signing_pem)], False
    for pem in split_bundle(roots_pem):
        if x509.load_pem_x509_certificate(pem.encode()) == signing:
            seen_signing = True
        else:
            rows.append(("new-trust-anchor" if seen_signing else "old-trust-anchor", pem))
    return rows


def describe(name: str, role: str, cert_pem: str, now: datetime.datetime) -> dict[str, object]:
    """One row of a stack's `identityCertificates`: what it is, its validity and the days it has left."""
    certificate = x509.load_pem_x509_certificate(cert_pem.encode())
    stamp = "%Y-%m-%dT%H:%M:%SZ"
    return {
        "name": name,
        "role": role,
        "subject": certificate.subject.rfc4514_string(),
        "notBefore": certificate.not_valid_before_utc.strftime(stamp),
        "notAfter": certificate.not_valid_after_utc.strftime(stamp),
        "daysLeft": (certificate.not_valid_after_utc - now).days,
    }


def decoys_for(anchor: KeyPair, issuer: KeyPair) -> dict[str, str]:
    """Other values of the same shapes, standing in for the real ones when looking for stand-ins that survive."""
    decoy_anchor, decoy_issuer = placeholder_identity("decoy.invalid")
    return {
        anchor.cert_pem: decoy_anchor.cert_pem,
        issuer.cert_pem: decoy_issuer.cert_pem,
        issuer.key_pem: decoy_issuer.key_pem,
        expiry(issuer.cert_pem): "1999-12-31T23:59:59Z",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m support.certificates", description=__doc__)
    parser.add_argument("kind", choices=["anchor", "issuer"])
    parser.add_argument("--common-name", required=True)
    parser.add_argument("--valid-hours", type=int, required=True)
    args = parser.parse_args(argv)
    if args.kind == "anchor":
        pair = new_trust_anchor(args.common_name, args.valid_hours)
    else:
        missing = [name for name in (ANCHOR_CERT_ENV, ANCHOR_KEY_ENV) if not os.environ.get(name)]
        if missing:
            print(f"certificates: {', '.join(missing)} not set", file=sys.stderr)
            return 2
        anchor = KeyPair(cert_pem=os.environ[ANCHOR_CERT_ENV], key_pem=os.environ[ANCHOR_KEY_ENV])
        pair = new_issuer(anchor, args.common_name, args.valid_hours)
    print(pair.to_json())
    return 0


if __name__ == "__main__":
    sys.exit(main())
