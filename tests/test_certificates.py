"""Linkerd's identity certificates: one anchor, issuers it signs, stand-ins that never change."""

from __future__ import annotations

import datetime
import json
import subprocess
import sys

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from support import certificates
from tests.conftest import ROOT


def _cert(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode())


def test_trust_anchor_is_a_p256_root_ca() -> None:
    anchor = certificates.new_trust_anchor("root.linkerd.cluster.local", 87600)
    cert = _cert(anchor.cert_pem)
    assert cert.subject == cert.issuer
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "root.linkerd.cluster.local"
    key = cert.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1"
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca is True and constraints.path_length == 1
    lifetime = cert.not_valid_after_utc - datetime.datetime.now(datetime.UTC)
    assert datetime.timedelta(hours=87599) < lifetime <= datetime.timedelta(hours=87600)
    assert anchor.key_pem.startswith("-----BEGIN EC PRIVATE KEY-----")


def test_issuer_is_signed_by_the_anchor_and_named_for_linkerd_identity() -> None:
    anchor = certificates.new_trust_anchor("root.linkerd.example.org", 100)
    issuer = certificates.new_issuer(anchor, "identity.linkerd.example.org", 10)
    cert, anchor_cert = _cert(issuer.cert_pem), _cert(anchor.cert_pem)
    cert.verify_directly_issued_by(anchor_cert)
    assert cert.issuer == anchor_cert.subject
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["identity.linkerd.example.org"]
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca is True and constraints.path_length == 0
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign


def test_two_anchors_differ() -> None:
    first, second = (certificates.new_trust_anchor("root.linkerd.cluster.local", 1) for _ in range(2))
    assert first.cert_pem != second.cert_pem and first.key_pem != second.key_pem


def test_placeholders_are_identical_at_every_render_and_form_a_valid_chain() -> None:
    anchor, issuer = certificates.placeholder_identity("cluster.local")
    assert (anchor, issuer) == certificates.placeholder_identity("cluster.local")
    assert anchor != certificates.placeholder_identity("example.org")[0]
    _cert(issuer.cert_pem).verify_directly_issued_by(_cert(anchor.cert_pem))
    # The CLI checks that the issuer is valid now.
    now = datetime.datetime.now(datetime.UTC)
    assert _cert(issuer.cert_pem).not_valid_before_utc < now < _cert(issuer.cert_pem).not_valid_after_utc


def test_command_line_prints_a_key_pair_and_reads_the_anchor_from_the_environment() -> None:
    run = [sys.executable, "-m", "support.certificates"]
    anchor = subprocess.run(
        [*run, "anchor", "--common-name", "root.linkerd.cluster.local", "--valid-hours", "5"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    pair = certificates.KeyPair.from_json(anchor.stdout)
    env = {certificates.ANCHOR_CERT_ENV: pair.cert_pem, certificates.ANCHOR_KEY_ENV: pair.key_pem}
    issuer = subprocess.run(
        [*run, "issuer", "--common-name", "identity.linkerd.cluster.local", "--valid-hours", "2"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    _cert(json.loads(issuer.stdout)["certPem"]).verify_directly_issued_by(_cert(pair.cert_pem))
    assert pair.key_pem not in issuer.stdout and pair.key_pem not in " ".join(run)


def test_issuer_without_anchor_in_environment_fails_and_says_which(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(certificates.ANCHOR_CERT_ENV, raising=False)
    monkeypatch.setenv(certificates.ANCHOR_KEY_ENV, "key")
    assert certificates.main(["issuer", "--common-name", "x", "--valid-hours", "1"]) == 2
    assert capsys.readouterr().err == "certificates: TRUST_ANCHOR_CERT_PEM not set\n"
