"""Every certificate an evaluation would apply, decoded, wherever and however the objects carry it."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from driver.offline import Evaluation, Registration
from support.certificates import placeholder_identity

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


def assert_only_the_real_identity(evaluation: Evaluation, anchor_pem: str | list[str], issuer_pem: str) -> None:
    """Every identity certificate applied is a real anchor (during a rotation, either of two) or the real
    issuer, which one of them signed; no stand-in or its child anywhere."""
    anchors = [
        x509.load_pem_x509_certificate(pem.encode()) for pem in ([anchor_pem] if isinstance(anchor_pem, str) else anchor_pem)
    ]
    issuer = x509.load_pem_x509_certificate(issuer_pem.encode())
    stand_ins = [x509.load_pem_x509_certificate(p.cert_pem.encode()) for p in placeholder_identity("cluster.local")]
    found = certificates(evaluation.registrations)
    identity = [f for f in found if f.common_name in IDENTITY_NAMES]
    assert {f.certificate for f in identity} == {*anchors, issuer}, [f.where for f in identity]
    for each in found:
        assert each.certificate not in stand_ins, each.where
        assert not any(each.signed_by(s) for s in stand_ins), each.where
        if each not in identity:  # the webhooks' own serving certificates
            assert not any(each.signed_by(anchor) for anchor in anchors), each.where
    assert any(Found("issuer", issuer).signed_by(anchor) for anchor in anchors)
    # Where every release puts them: the issuer Secret, and the anchor in linkerd-config.
    places = {f.where.split(".")[0] for f in identity}
    assert places >= {"linkerd:linkerd/linkerd-identity-issuer", "linkerd:linkerd/linkerd-config"}, places
