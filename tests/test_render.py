"""`render`, end to end: the real program, offline, into YAML that passes the same checks as the unit tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509

from driver import Deployment
from tests.conftest import FIXTURES, OWN_CRDS, real_linkerd, upstream_file
from tests.schemas import validate_builtin, validate_custom_resource

CURRENT = {"edgeStackCrds": str(OWN_CRDS), "edgeStackManifest": str(FIXTURES / "edge-stack-3.yaml")}


def page() -> dict[str, str]:
    """The page line's settings: upstream's 1.14.4 release files (the test is skipped, loudly, without)."""
    return {
        "versionLine": "linkerd-2.8",
        "edgeStackProduct": "edge-stack",
        "edgeStackCrds": str(upstream_file("emissary/aes-crds.v1.14.4.yaml")),
        "edgeStackManifest": str(upstream_file("emissary/aes.v1.14.4.yaml")),
    }


LICENCE = "eyJhbGciOi.licence-token-that-must-not-be-written"


def render(tmp_path: Path, settings: dict[str, Any]) -> tuple[dict[str, Any], Path]:
    overrides = {stack: dict(settings) for stack in ("target", "source")}
    summary = Deployment(Path(__file__).resolve().parent.parent).render(tmp_path, overrides)
    return summary, tmp_path


def objects(folder: Path) -> dict[str, dict[str, Any]]:
    return {p.name: yaml.safe_load(p.read_text()) for p in sorted(folder.glob("*.yaml")) if p.name != "steps.yaml"}


@pytest.fixture(scope="module")
def current(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    settings = {
        **CURRENT,
        "linkerdCli": real_linkerd("current"),
        "edgeStackProduct": "edge-stack",
        "edgeStackLicenseKey": {"secure": "AAABAGVuY3J5cHRlZA=="},
    }
    return render(tmp_path_factory.mktemp("current"), settings)


def test_one_folder_per_stack_with_every_object(current: tuple[dict[str, Any], Path]) -> None:
    summary, out = current
    assert set(summary) == {"target", "source"}
    target = objects(out / "target")
    assert summary["target"]["objects"] == len(target)
    for name in (
        "deployment-ambassador-edge-stack.yaml",
        "module-ambassador-ambassador.yaml",
        "deploymentpatch-ambassador-edge-stack-linkerd-inject.yaml",
        "deploymentpatch-ambassador-multicluster-target-enable-gateway.yaml",
        "servicepatch-ambassador-multicluster-target-gateway-service.yaml",
        "host-ambassador-linkerd-host.yaml",
        "mapping-ambassador-public-health-check.yaml",
        "mapping-default-linkerd2-qotm.yaml",
        "deployment-default-qotm.yaml",
        "service-default-qotm-linkerd2.yaml",
        "namespacepatch-ns-default.yaml",
        "servicepatch-default-multicluster-target-export-default-qotm-linkerd2.yaml",
    ):
        assert name in target, name
    assert target["mapping-default-linkerd2-qotm.yaml"] == {
        "apiVersion": "getambassador.io/v3alpha1",
        "kind": "Mapping",
        "metadata": {"name": "linkerd2-qotm", "namespace": "default"},
        "spec": {"prefix": "/qotm-linkerd2/", "service": "qotm-linkerd2", "hostname": "*"},
    }
    steps = yaml.safe_load((out / "target" / "steps.yaml").read_text())
    assert [s["name"] for s in steps] == ["identity-peer-issuer", "identity-target-issuer", "identity-trust-anchor"]


def test_rendered_objects_pass_the_schema_checks(current: tuple[dict[str, Any], Path]) -> None:
    _, out = current
    for stack in ("target", "source"):
        for name, body in objects(out / stack).items():
            content = {k: v for k, v in body.items() if k not in ("apiVersion", "kind")}
            if body["apiVersion"].startswith("getambassador.io/"):
                validate_custom_resource(body["apiVersion"], body["kind"], content)
            elif body["kind"] in ("Deployment", "Service", "Namespace") and "qotm" in name:
                validate_builtin(body["apiVersion"], body["kind"], content, "1.34")


def test_no_secret_is_written_in_plain_text(current: tuple[dict[str, Any], Path]) -> None:
    _, out = current
    everything = "\n".join(p.read_text() for p in out.rglob("*") if p.is_file())
    assert "PRIVATE KEY-----" not in everything
    assert LICENCE not in everything and "AAABAGVuY3J5cHRlZA==" not in everything
    licence = objects(out / "target")["secret-ambassador-ambassador-edge-stack.yaml"]
    assert licence["stringData"] == "[secret]"
    outputs = json.loads((out / "target" / "outputs.json").read_text())
    assert outputs["peerIssuerKeyPem"] == "[secret]"
    # A certificate made by the render itself (`up` makes its own): public, so written.
    assert x509.load_pem_x509_certificate(outputs["trustAnchorPem"].encode()).subject.rfc4514_string() == (
        "CN=root.linkerd.cluster.local"
    )


def test_with_the_real_cli_only_the_link_is_left_out(current: tuple[dict[str, Any], Path]) -> None:
    summary, out = current
    assert summary["target"]["notRendered"] == []
    link = "multicluster link-gen --cluster-name target --gateway-name edge-stack --gateway-namespace ambassador"
    [listed] = summary["source"]["notRendered"]
    assert listed.endswith(f"{link}` (needs the target cluster)")
    target = objects(out / "target")
    assert len([n for n in target if "linkerd" in n]) > 70, "every object of Linkerd's install"
    patch = target["deploymentpatch-ambassador-edge-stack-linkerd-inject.yaml"]
    assert patch["spec"]["template"]["metadata"]["annotations"] == {
        "config.linkerd.io/proxy-require-identity-inbound-ports": "4143",
        "config.linkerd.io/skip-inbound-ports": "80,443",
        "linkerd.io/inject": "enabled",
    }


def test_without_the_cli_what_it_renders_is_listed_not_guessed(tmp_path: Path) -> None:
    settings = {
        **CURRENT,
        "edgeStackManifest": str(FIXTURES / "emissary-3.yaml"),
        "linkerdCli": str(tmp_path / "no-linkerd-here"),
        "edgeStackProduct": "emissary",
    }
    summary, out = render(tmp_path, settings)
    assert any("install --crds --ignore-cluster" in item for item in summary["target"]["notRendered"])
    patch = objects(out / "target")["deploymentpatch-emissary-edge-stack-linkerd-inject.yaml"]
    assert patch["metadata"] == {"name": "emissary-ingress", "namespace": "emissary"}
    assert patch["spec"]["template"]["metadata"]["annotations"] == {}


def test_page_line_renders_v2_objects(tmp_path: Path) -> None:
    summary, out = render(tmp_path, {**page(), "linkerdCli": real_linkerd("linkerd-2.8")})
    target = objects(out / "target")
    assert target["module-ambassador-ambassador.yaml"]["apiVersion"] == "getambassador.io/v2"
    for body in target.values():
        if body["apiVersion"].startswith("getambassador.io/") and body["kind"] in ("Mapping", "Host", "Module"):
            validate_custom_resource(
                body["apiVersion"], body["kind"], {k: v for k, v in body.items() if k in ("metadata", "spec")}
            )
    assert summary["source"]["objects"] > 0
    # 2.8's inject and multicluster install ask the live control plane at `up`: steps, not objects.
    assert [item for item in summary["target"]["notRendered"] if "inject" in item] != []
    steps = {s["name"] for s in yaml.safe_load((out / "target" / "steps.yaml").read_text())}
    assert {"linkerd-multicluster", "edge-stack-linkerd-inject-render"} <= steps
