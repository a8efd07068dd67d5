"""Linkerd's identity certificates: one anchor, issuers it signs, stand-ins that never change."""

from __future__ import annotations

import base64
import datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from support import certificates


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


def stores(tmp_path: Path) -> dict[str, certificates.SecretStore]:
    """The two clusters' `linkerd` namespaces, as folders."""
    return {context: certificates.FolderStore(tmp_path / context) for context in ("target", "source")}


ANCHOR = ["anchor", "--secret", "linkerd-trust-anchor", "--context", "target"]
NAMES = ["--common-name", "root.linkerd.cluster.local", "--valid-hours", "5"]
ISSUER = ["issuer", "--secret", "linkerd-trust-anchor", "--context", "source", "--anchor-context", "target"]
ISSUER_NAMES = ["--common-name", "identity.linkerd.cluster.local", "--valid-hours", "2"]


def test_the_anchor_is_made_once_into_its_secret_and_only_its_certificate_printed(tmp_path: Path) -> None:
    clusters = stores(tmp_path)
    printed = certificates.run([*ANCHOR, *NAMES], stores=clusters)
    secret = clusters["target"].get("linkerd-trust-anchor")
    assert secret is not None and secret["type"] == "kubernetes.io/tls"
    assert secret["metadata"] == {
        "name": "linkerd-trust-anchor",
        "namespace": "linkerd",
        "labels": {"app.kubernetes.io/managed-by": "aes-linkerd2"},
    }
    pair = certificates.key_pair_of(secret)
    assert printed == pair.cert_pem and "PRIVATE KEY" not in printed
    assert base64.b64decode(secret["data"]["ca.crt"]).decode() == pair.cert_pem
    # Made again (state lost, a Command re-created): the Secret outlives it and is reused, never overwritten.
    assert certificates.run([*ANCHOR, *NAMES], stores=clusters) == printed
    assert clusters["target"].get("linkerd-trust-anchor") == secret


def test_a_secret_of_that_name_that_is_not_ours_is_neither_used_nor_replaced_nor_deleted(tmp_path: Path) -> None:
    clusters = stores(tmp_path)
    foreign = certificates.anchor_secret("linkerd-trust-anchor", certificates.new_trust_anchor("root.linkerd.cluster.local", 1))
    del foreign["metadata"]["labels"]["app.kubernetes.io/managed-by"]
    clusters["target"].apply(foreign)
    with pytest.raises(certificates.CertificateError, match="exists but is not this program's"):
        certificates.run([*ANCHOR, *NAMES], stores=clusters)
    certificates.run(["delete-anchor", "--secret", "linkerd-trust-anchor", "--context", "target"], stores=clusters)
    assert clusters["target"].get("linkerd-trust-anchor") == foreign
    with pytest.raises(certificates.CertificateError, match="missing from the target cluster"):
        certificates.run([*ISSUER, *ISSUER_NAMES], stores=clusters)


def test_the_issuer_is_signed_with_the_anchor_in_the_target_and_written_where_it_serves(tmp_path: Path) -> None:
    clusters = stores(tmp_path)
    anchor = certificates.run([*ANCHOR, *NAMES], stores=clusters)
    printed = certificates.run([*ISSUER, *ISSUER_NAMES], stores=clusters)
    assert clusters["target"].get("linkerd-identity-issuer") is None
    secret = clusters["source"].get("linkerd-identity-issuer")
    assert secret is not None and secret["type"] == "kubernetes.io/tls"
    assert sorted(secret["data"]) == ["ca.crt", "tls.crt", "tls.key"]
    pair = certificates.key_pair_of(secret)
    assert printed == pair.cert_pem and base64.b64decode(secret["data"]["ca.crt"]).decode() == anchor
    _cert(printed).verify_directly_issued_by(_cert(anchor))
    # A renewal overwrites it with a new issuer (ours).
    assert certificates.run([*ISSUER, *ISSUER_NAMES], stores=clusters) != printed


def test_the_page_lines_issuer_secret_is_in_linkerds_own_format(tmp_path: Path) -> None:
    clusters = stores(tmp_path)
    certificates.run([*ANCHOR, *NAMES], stores=clusters)
    printed = certificates.run([*ISSUER, *ISSUER_NAMES, "--scheme", "linkerd.io/tls"], stores=clusters)
    secret = clusters["source"].get("linkerd-identity-issuer")
    assert secret is not None and secret["type"] == "Opaque" and sorted(secret["data"]) == ["crt.pem", "key.pem"]
    assert secret["metadata"]["annotations"] == {"linkerd.io/identity-issuer-expiry": certificates.expiry(printed)}
    assert secret["metadata"]["labels"] == {
        "linkerd.io/control-plane-component": "identity",
        "linkerd.io/control-plane-ns": "linkerd",
        "app.kubernetes.io/managed-by": "aes-linkerd2",
    }


def test_an_issuer_secret_not_ours_is_not_replaced(tmp_path: Path) -> None:
    clusters = stores(tmp_path)
    certificates.run([*ANCHOR, *NAMES], stores=clusters)
    clusters["source"].apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "linkerd-identity-issuer"}})
    with pytest.raises(certificates.CertificateError, match="linkerd-identity-issuer exists but is not this program's"):
        certificates.run([*ISSUER, *ISSUER_NAMES], stores=clusters)


def test_delete_anchor_deletes_our_secret(tmp_path: Path) -> None:
    clusters = stores(tmp_path)
    certificates.run([*ANCHOR, *NAMES], stores=clusters)
    certificates.run(["delete-anchor", "--secret", "linkerd-trust-anchor", "--context", "target"], stores=clusters)
    assert clusters["target"].get("linkerd-trust-anchor") is None


def test_the_command_line_fails_with_one_line_naming_the_secret(capsys: pytest.CaptureFixture[str]) -> None:
    # A kubectl that answers nothing: the Secret is not there.
    args = [*ISSUER, "--kubectl", "true", *ISSUER_NAMES]
    assert certificates.main(args) == 1
    assert capsys.readouterr().err == (
        "certificates: the trust anchor's Secret linkerd/linkerd-trust-anchor is missing from the target cluster\n"
    )
