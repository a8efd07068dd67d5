"""Every certificate an evaluation would apply, decoded, wherever and however the objects carry it."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from driver.offline import Evaluation, Registration, offline_cluster
from support.certificates import KeyPair, expiry, key_pair_of, placeholder_identity

_PEM = re.compile(r"-----BEGIN CERTIFICATE-----(?:\s|\\n)+(?P<body>[A-Za-z0-9+/=\s\\n]+?)-----END CERTIFICATE-----")
_BASE64 = re.compile(r"^[A-Za-z0-9+/]{24,}={0,2}$")


@dataclass(frozen=True)
class Found:
    where: str  # resource name and path of the field
    certificate: x509.Certificate

    @property
    def common_name(self) -> str:
        return str(self.certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value)

    def signed_by(self, issuer: x509.Certificate) -> bool:
        key = issuer.public_key()
        if not isinstance(key, ec.EllipticCurvePublicKey):
            return False
        try:
            self.certificate.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, Exception):
            return False
        return True


def _texts(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _texts(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _texts(item, f"{path}[{index}]")
    elif isinstance(value, str):
        yield path, value
        compact = re.sub(r"\s+", "", value)
        if _BASE64.match(compact):
            try:
                decoded = base64.b64decode(compact).decode()
            except (binascii.Error, UnicodeDecodeError):
                return
            yield from _texts(decoded, f"{path}(base64)")


def certificates(registrations: list[Registration]) -> list[Found]:
    """Each PEM certificate in the inputs of every Kubernetes resource, raw, escaped, indented or base64."""
    found = []
    for resource in registrations:
        if not resource.type.startswith("kubernetes:"):
            continue
        for path, text in _texts(resource.inputs, resource.name):
            for match in _PEM.finditer(text):
                body = re.sub(r"\s+|\\n", "", match.group("body"))
                found.append(Found(path, x509.load_der_x509_certificate(base64.b64decode(body))))
    return found


IDENTITY_NAMES = ("root.linkerd.cluster.local", "identity.linkerd.cluster.local")


def assert_only_the_real_identity(evaluation: Evaluation, anchor_pem: str | list[str]) -> None:
    """Every identity certificate applied is a real anchor (during a rotation, either of two); no stand-in
    anchor or issuer, nor a child of one, anywhere; no issuer at all (its Secret is written by its Command)."""
    anchors = [
        x509.load_pem_x509_certificate(pem.encode()) for pem in ([anchor_pem] if isinstance(anchor_pem, str) else anchor_pem)
    ]
    stand_ins = [x509.load_pem_x509_certificate(p.cert_pem.encode()) for p in placeholder_identity("cluster.local")]
    found = certificates(evaluation.registrations)
    identity = [f for f in found if f.common_name in IDENTITY_NAMES]
    assert {f.certificate for f in identity} == set(anchors), [f.where for f in identity]
    for each in found:
        assert each.certificate not in stand_ins, each.where
        assert not any(each.signed_by(s) for s in stand_ins), each.where
        if each not in identity:  # the webhooks' own serving certificates
            assert not any(each.signed_by(anchor) for anchor in anchors), each.where
    # Where every release puts the anchor: linkerd-config. No key is applied but the webhooks' own
    # serving keys, which the CLI makes (secret in state; they sign no identity).
    places = {f.where.split(".")[0] for f in identity}
    assert "linkerd:linkerd/linkerd-config" in places, places
    keys = {
        where.split(".")[0] for r in evaluation.registrations for where, text in _texts(r.inputs, r.name) if "PRIVATE KEY" in text
    }
    assert all(re.fullmatch(r"linkerd:linkerd/linkerd-[a-z0-9-]+-tls", where) for where in keys), keys


def cluster_secret(context: str, name: str) -> dict[str, Any]:
    """A Secret as the certificate Commands left it in a cluster (offline: its folder)."""
    found = offline_cluster(context).get(name)
    assert found is not None, f"no Secret linkerd/{name} in {context}"
    return found


def key_pair(secret: dict[str, Any]) -> KeyPair:
    return key_pair_of(secret)


def assert_issuer_secret(secret: dict[str, Any], anchor_pem: str, scheme: str) -> x509.Certificate:
    """The issuer Secret in its scheme's format, its key the certificate's, signed by the anchor; returns the issuer."""
    keys = {"kubernetes.io/tls": ["ca.crt", "tls.crt", "tls.key"], "linkerd.io/tls": ["crt.pem", "key.pem"]}[scheme]
    assert sorted(secret["data"]) == keys
    assert secret["type"] == ("kubernetes.io/tls" if scheme == "kubernetes.io/tls" else "Opaque")
    assert secret["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "aes-linkerd2"
    pair = key_pair_of(secret)
    issuer = x509.load_pem_x509_certificate(pair.cert_pem.encode())
    key = serialization.load_pem_private_key(pair.key_pem.encode(), password=None)
    assert key.public_key().public_numbers() == issuer.public_key().public_numbers()  # type: ignore[union-attr]
    anchor = x509.load_pem_x509_certificate(anchor_pem.encode())
    issuer.verify_directly_issued_by(anchor)
    if scheme == "kubernetes.io/tls":
        assert base64.b64decode(secret["data"]["ca.crt"]).decode() == anchor_pem
    else:  # 2.8 writes the issuer's expiry beside it
        assert secret["metadata"]["annotations"]["linkerd.io/identity-issuer-expiry"] == expiry(pair.cert_pem)
    return issuer
