"""The public stand-in anchor is replaced in every shape a release writes it, and refused where it survives."""

from __future__ import annotations

import base64
import hashlib
import json

import pulumi
import pulumi_kubernetes as k8s
import pytest
import yaml

from support import certificates, stand_ins
from tests.harness import run_program

STAND_IN = certificates.placeholder_identity("cluster.local")[0]
DECOY = certificates.placeholder_identity("decoy.invalid")[0]
REAL = certificates.new_trust_anchor("root.linkerd.cluster.local", 10)
# Two real anchors, as during a rotation: the roots are a bundle.
OTHER = certificates.new_trust_anchor("root.linkerd.cluster.local", 10)
ROOTS = certificates.bundle([REAL.cert_pem, OTHER.cert_pem])
PAIRS = [(STAND_IN.cert_pem, REAL.cert_pem)]


def _literal_block(text: str) -> str:
    """Helm values as linkerd-config holds them: `key: |` blocks, at the top and deeper."""

    def block(pem: str, indent: int) -> str:
        pad = " " * indent
        return "|\n" + "".join(f"{pad}{line}\n" for line in pem.strip().splitlines())

    return (
        f"identityTrustAnchorsPEM: {block(STAND_IN.cert_pem, 2)}"
        "policy:\n  deeper:\n    still:\n"
        f"      anchors: {block(STAND_IN.cert_pem, 8)}"
    ) + text


def _sha(pem: str, newline: bool) -> str:
    return hashlib.sha256((pem.strip() + ("\n" if newline else "")).encode()).hexdigest()


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


SHAPES: dict[str, tuple[str, str]] = {
    "raw": (STAND_IN.cert_pem, REAL.cert_pem.strip()),
    "json-escaped": (json.dumps({"pem": STAND_IN.cert_pem.strip()}), json.dumps({"pem": REAL.cert_pem.strip()})),
    "base64": (_b64(STAND_IN.cert_pem.strip()), _b64(REAL.cert_pem.strip())),
    "base64-with-newline": (_b64(STAND_IN.cert_pem), _b64(REAL.cert_pem.strip() + "\n")),
    "sha256": (_sha(STAND_IN.cert_pem, False), _sha(REAL.cert_pem, False)),
    "sha256-with-newline": (_sha(STAND_IN.cert_pem, True), _sha(REAL.cert_pem, True)),
    "nothing": ("no certificate here", "no certificate here"),
}


@pytest.mark.parametrize("shape", SHAPES)
def test_replace_handles_each_shape(shape: str) -> None:
    written, expected = SHAPES[shape]
    assert stand_ins.replace(written, PAIRS).strip() == expected.strip()


def test_block_scalars_at_any_depth_are_replaced_and_parse_to_the_real_pem() -> None:
    text = _literal_block("")
    replaced = stand_ins.replace(text, PAIRS)
    values = yaml.safe_load(replaced)
    assert values["identityTrustAnchorsPEM"].strip() == REAL.cert_pem.strip()
    assert values["policy"]["deeper"]["still"]["anchors"].strip() == REAL.cert_pem.strip()
    # And inside base64, as a Secret would carry the same YAML.
    decoded = base64.b64decode(stand_ins.replace(_b64(text), PAIRS)).decode()
    assert yaml.safe_load(decoded) == values
    # A bundle of two anchors replaces the one stand-in, each line indented as the block is.
    bundled = yaml.safe_load(stand_ins.replace(text, [(STAND_IN.cert_pem, ROOTS)]))
    assert certificates.split_bundle(bundled["identityTrustAnchorsPEM"]) == [REAL.cert_pem, OTHER.cert_pem]


def test_substitute_makes_an_output_of_the_real_roots_which_are_public() -> None:
    def program() -> None:
        data = stand_ins.substitute(
            {"values": _literal_block(""), "other": "x"}, {STAND_IN.cert_pem: pulumi.Output.from_input(REAL.cert_pem)}
        )
        assert isinstance(data["values"], pulumi.Output) and data["other"] == "x"
        k8s.core.v1.ConfigMap("values", data=data)

    run = run_program(program)
    assert run.error is None, run.error
    config_map = run.one("ConfigMap")
    values = yaml.safe_load(config_map.inputs["data"]["values"])
    assert values["identityTrustAnchorsPEM"].strip() == REAL.cert_pem.strip()
    assert not config_map.is_secret("data")


def test_leftovers_names_objects_where_a_stand_in_survives_in_an_unknown_shape() -> None:
    decoys = {STAND_IN.cert_pem: DECOY.cert_pem}
    der_one_line = "".join(STAND_IN.cert_pem.strip().splitlines()[1:-1])  # no armour, no breaks
    reversed_lines = "\n".join(reversed(STAND_IN.cert_pem.strip().splitlines()))
    bodies = {
        "ConfigMap/n/fine": {"data": {"values": _literal_block(""), "b64": _b64(_literal_block(""))}},
        "ConfigMap/n/der": {"data": {"anchor": der_one_line}},
        "Secret/n/nested": {"data": {"blob": _b64(_b64(reversed_lines))}},
        "ConfigMap/n/clean": {"data": {"a": "b"}},
    }
    assert stand_ins.leftovers(bodies, decoys) == ["ConfigMap/n/der", "Secret/n/nested"]
