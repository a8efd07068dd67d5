"""Linkerd's identity certificates, made with `cryptography` (ECDSA P-256, as Linkerd's docs ask).

Run as `python -m support.certificates anchor|issuer|delete-anchor ...` by pulumi-command Commands.
Private keys live only in the clusters, in Secrets of the `linkerd` namespace (as Linkerd's own
cert-manager recipe keeps them): each trust anchor in the target cluster, each issuer in the cluster
it serves. They travel between kubectl and this process over pipes only, never on a command line,
and a Command prints only the public certificate, so no key reaches Pulumi's state or logs.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import functools
import hashlib
import json
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from support import upstream


class RotationStep(StrEnum):
    """The steps of a trust anchor rotation, one `up` each (Linkerd's "manually rotating the trust anchor")."""

    BUNDLE = "bundle"  # a new anchor; the trust roots carry the old and the new one
    ISSUERS = "issuers"  # every issuer re-issued by the new anchor; the roots still carry both
    # The meshed workloads restart (once the identity controllers loaded the new issuer), so every proxy gets a
    # certificate from it now rather than within a certificate's lifetime. Optional: drop-old may follow issuers.
    RESTART = "restart"
    DROP_OLD = "drop-old"  # the roots carry only the new anchor


@dataclass(frozen=True)
class KeyPair:
    cert_pem: str
    key_pem: str


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
    """A public stand-in anchor and issuer with which the Linkerd CLI can render offline.

    Derived from fixed seeds and signed deterministically, so every render is byte-identical and
    whatever the CLI hashes from them stays stable. Their keys are public and protect nothing: the
    render's issuer Secret is dropped (the real one is written by the issuer's Command) and the
    anchor is replaced by the real trust roots before anything is applied.
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


# --- The Secrets that hold the keys ------------------------------------------------------------

NAMESPACE = upstream.CONTROL_PLANE_NAMESPACE
ISSUER_SECRET = "linkerd-identity-issuer"
# The schemes of Linkerd's identity controller: its own format (crt.pem, key.pem: the 2.8 line)
# and the external issuer's (kubernetes.io/tls: tls.crt, tls.key, ca.crt; cert-manager's format).
SCHEME_LINKERD = "linkerd.io/tls"
SCHEME_EXTERNAL = "kubernetes.io/tls"
_OURS = {upstream.MANAGED_BY_LABEL: upstream.MANAGED_BY}


class CertificateError(Exception):
    """A Secret this program needs is missing, or one it would write belongs to someone else."""


def anchor_secret_name(generation: int) -> str:
    # Generation 0 keeps the plain name; each rotation's anchor is a Secret of its own.
    return "linkerd-trust-anchor" if generation == 0 else f"linkerd-trust-anchor-{generation}"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _secret(
    name: str, data: Mapping[str, str], *, kind: str, labels: Mapping[str, str] = {}, annotations: Mapping[str, str] = {}
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": NAMESPACE, "labels": {**labels, **_OURS}}
    if annotations:
        metadata["annotations"] = dict(annotations)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata,
        "type": kind,
        "data": {k: _b64(v) for k, v in data.items()},
    }


def anchor_secret(name: str, anchor: KeyPair) -> dict[str, Any]:
    """A trust anchor as cert-manager keeps a CA: `ca.crt` is the anchor itself."""
    data = {"tls.crt": anchor.cert_pem, "tls.key": anchor.key_pem, "ca.crt": anchor.cert_pem}
    return _secret(name, data, kind=SCHEME_EXTERNAL)


def issuer_secret(issuer: KeyPair, anchor_pem: str, scheme: str) -> dict[str, Any]:
    """The issuer Secret Linkerd's identity controller reads, in the format of its scheme."""
    if scheme == SCHEME_EXTERNAL:
        data = {"tls.crt": issuer.cert_pem, "tls.key": issuer.key_pem, "ca.crt": anchor_pem}
        return _secret(ISSUER_SECRET, data, kind=SCHEME_EXTERNAL)
    # What 2.8's chart renders (templates/identity.yaml), with the CLI's expiry annotation.
    return _secret(
        ISSUER_SECRET,
        {"crt.pem": issuer.cert_pem.strip(), "key.pem": issuer.key_pem.strip()},
        kind="Opaque",
        labels={"linkerd.io/control-plane-component": "identity", "linkerd.io/control-plane-ns": NAMESPACE},
        annotations={"linkerd.io/identity-issuer-expiry": expiry(issuer.cert_pem)},
    )


def key_pair_of(secret: Mapping[str, Any]) -> KeyPair:
    data = secret.get("data") or {}
    cert, key = (data.get("tls.crt") or data.get("crt.pem")), (data.get("tls.key") or data.get("key.pem"))
    if not cert or not key:
        raise CertificateError(f"Secret {NAMESPACE}/{secret['metadata']['name']} holds no certificate and key")
    return KeyPair(cert_pem=base64.b64decode(cert).decode(), key_pem=base64.b64decode(key).decode())


def is_ours(secret: Mapping[str, Any]) -> bool:
    return bool((secret.get("metadata", {}).get("labels") or {}).get(upstream.MANAGED_BY_LABEL) == upstream.MANAGED_BY)


class SecretStore(Protocol):
    """Where Secrets are read and written: a cluster through kubectl, or (offline renders) a folder."""

    def get(self, name: str) -> dict[str, Any] | None: ...
    def create(self, secret: Mapping[str, Any]) -> None: ...
    def apply(self, secret: Mapping[str, Any]) -> None: ...
    def delete(self, name: str) -> None: ...


@dataclass(frozen=True)
class KubectlStore:
    """One cluster's `linkerd` namespace through kubectl; Secrets go in and out over pipes only."""

    kubectl: str
    flags: tuple[str, ...]  # --kubeconfig PATH --context NAME (a path, never the file's contents)

    def _run(self, *args: str, stdin: str | None = None) -> str:
        done = subprocess.run(
            [self.kubectl, *self.flags, *args], input=stdin, capture_output=True, text=True, check=False, timeout=120
        )
        if done.returncode != 0:
            raise CertificateError(f"`{self.kubectl} {' '.join(args[:4])}` failed: {done.stderr.strip()[:400]}")
        return done.stdout

    def get(self, name: str) -> dict[str, Any] | None:
        text = self._run("get", "secret", name, "-n", NAMESPACE, "-o", "json", "--ignore-not-found")
        return json.loads(text) if text.strip() else None

    def create(self, secret: Mapping[str, Any]) -> None:
        self._run("create", "-f", "-", stdin=json.dumps(secret))

    def apply(self, secret: Mapping[str, Any]) -> None:
        # Server-side: no last-applied annotation carrying a second copy of the key.
        self._run(
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager",
            upstream.MANAGED_BY,
            "-f",
            "-",
            stdin=json.dumps(secret),
        )

    def delete(self, name: str) -> None:
        self._run("delete", "secret", name, "-n", NAMESPACE, "--ignore-not-found")


@dataclass(frozen=True)
class FolderStore:
    """Secrets as files of a private folder: what the offline render and the tests use for a cluster."""

    folder: Path

    def _path(self, name: str) -> Path:
        return self.folder / f"{name}.json"

    def get(self, name: str) -> dict[str, Any] | None:
        path = self._path(name)
        return json.loads(path.read_text()) if path.exists() else None

    def create(self, secret: Mapping[str, Any]) -> None:
        if self._path(secret["metadata"]["name"]).exists():
            raise CertificateError(f"Secret {secret['metadata']['name']} already exists")
        self.apply(secret)

    def apply(self, secret: Mapping[str, Any]) -> None:
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = self._path(secret["metadata"]["name"])
        partial = path.with_suffix(".partial")
        partial.write_text(json.dumps(secret))
        partial.replace(path)  # whole or not at all, for a reader at the same time

    def delete(self, name: str) -> None:
        self._path(name).unlink(missing_ok=True)


def ensure_anchor(store: SecretStore, name: str, common_name: str, valid_hours: int) -> str:
    """The anchor's certificate: from its Secret when one of ours exists (it outlives the state), else a new one.

    A new Secret is created, never overwritten: a Secret of that name that is not ours stops here.
    """
    found = store.get(name)
    if found is not None:
        if not is_ours(found):
            raise CertificateError(
                f"Secret {NAMESPACE}/{name} exists but is not this program's (no label {upstream.MANAGED_BY_LABEL}="
                f"{upstream.MANAGED_BY}): refusing to use or replace it"
            )
        return key_pair_of(found).cert_pem
    anchor = new_trust_anchor(common_name, valid_hours)
    store.create(anchor_secret(name, anchor))
    return anchor.cert_pem


def delete_anchor(store: SecretStore, name: str) -> None:
    """Deletes the anchor's Secret when it is ours; a Secret of someone else's stays."""
    found = store.get(name)
    if found is not None and is_ours(found):
        store.delete(name)


def write_issuer(
    anchors: SecretStore, anchor_name: str, served: SecretStore, *, common_name: str, valid_hours: int, scheme: str
) -> str:
    """Mints an issuer signed by the anchor in `anchor_name`, writes it where it serves, returns its certificate."""
    found = anchors.get(anchor_name)
    if found is None or not is_ours(found):
        raise CertificateError(f"the trust anchor's Secret {NAMESPACE}/{anchor_name} is missing from the target cluster")
    anchor = key_pair_of(found)
    existing = served.get(ISSUER_SECRET)
    if existing is not None and not is_ours(existing):
        raise CertificateError(
            f"Secret {NAMESPACE}/{ISSUER_SECRET} exists but is not this program's (no label "
            f"{upstream.MANAGED_BY_LABEL}={upstream.MANAGED_BY}): refusing to replace it"
        )
    issuer = new_issuer(anchor, common_name, valid_hours)
    served.apply(issuer_secret(issuer, anchor.cert_pem, scheme))
    return issuer.cert_pem


def _cluster_flags(kubeconfig: str | None, context: str) -> tuple[str, ...]:
    return (*(("--kubeconfig", kubeconfig) if kubeconfig else ()), "--context", context)


def run(argv: list[str] | None = None, *, stores: Mapping[str, SecretStore] | None = None) -> str:
    """What a certificate Command prints (a public certificate, or nothing). `stores` (by context) stands
    in for the clusters in offline renders; raises CertificateError."""
    parser = argparse.ArgumentParser(prog="python -m support.certificates", description=__doc__)
    parser.add_argument("kind", choices=["anchor", "delete-anchor", "issuer"])
    parser.add_argument("--secret", required=True, help="the anchor's Secret (read by `issuer`)")
    parser.add_argument("--kubectl", default="kubectl")
    parser.add_argument("--kubeconfig", help="the cluster the anchor lives in (`issuer`: the one it serves)")
    parser.add_argument("--context", required=True)
    parser.add_argument("--anchor-kubeconfig", help="`issuer`: the target cluster, where the anchor lives")
    parser.add_argument("--anchor-context")
    parser.add_argument("--common-name")
    parser.add_argument("--valid-hours", type=int)
    parser.add_argument("--scheme", choices=[SCHEME_EXTERNAL, SCHEME_LINKERD], default=SCHEME_EXTERNAL)
    args = parser.parse_args(argv)

    def store(kubeconfig: str | None, context: str) -> SecretStore:
        if stores is not None:
            return stores[context]
        return KubectlStore(args.kubectl, _cluster_flags(kubeconfig, context))

    here = store(args.kubeconfig, args.context)
    if args.kind == "delete-anchor":
        delete_anchor(here, args.secret)
        return ""
    if not args.common_name or not args.valid_hours:
        parser.error("--common-name and --valid-hours are required")
    if args.kind == "anchor":
        return ensure_anchor(here, args.secret, args.common_name, args.valid_hours)
    anchors = store(args.anchor_kubeconfig, args.anchor_context or args.context)
    return write_issuer(
        anchors, args.secret, here, common_name=args.common_name, valid_hours=args.valid_hours, scheme=args.scheme
    )


def main(argv: list[str] | None = None) -> int:
    try:
        print(run(argv), end="")
    except CertificateError as error:
        print(f"certificates: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
