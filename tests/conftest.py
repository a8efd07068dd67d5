"""Shared fixtures: the stacks' config, the reference manifests, an isolated kubeconfig."""

from __future__ import annotations

import runpy
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from components import upstream
from tests.fake_linkerd import CURRENT_VERSION, PAGE_VERSION, FakeLinkerd
from tests.harness import Run, run_program

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
REFERENCE = ROOT.parent / "shared" / "reference"
EMISSARY = REFERENCE / "emissary"

TARGET_CONTEXT = "target-ctx"
SOURCE_CONTEXT = "source-ctx"
LICENSE = "edge-stack-licence-token"


def target_config(line: str = "current", **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {"role": "target", "context": TARGET_CONTEXT, "gatewayHostname": "gateway.example.com"}
    config.update(edge_stack_files(line, overrides.pop("edgeStackProduct", "edge-stack")))
    config.update(overrides)
    return config


def source_config(line: str = "current", **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "role": "source",
        "context": SOURCE_CONTEXT,
        "targetStack": "organization/aes-linkerd2/target",
        "targetContext": TARGET_CONTEXT,
    }
    config.update(edge_stack_files(line, overrides.pop("edgeStackProduct", "edge-stack")))
    config.update(overrides)
    return config


def edge_stack_files(line: str, product: str) -> dict[str, str]:
    if line == "page":
        return {
            "versionLine": "page",
            "edgeStackCrds": str(EMISSARY / "aes-crds.v1.14.4.yaml"),
            "edgeStackManifest": str(EMISSARY / "aes.v1.14.4.yaml"),
        }
    manifest = "edge-stack-3.yaml" if product == "edge-stack" else "emissary-3.yaml"
    return {
        "versionLine": "current",
        "edgeStackProduct": product,
        "edgeStackCrds": str(EMISSARY / "crds.v4-head.yaml"),
        "edgeStackManifest": str(FIXTURES / manifest),
    }


def licence_for(config: dict[str, Any]) -> dict[str, str]:
    needs = config.get("versionLine") == "current" and config.get("edgeStackProduct", "edge-stack") == "edge-stack"
    return {"edgeStackLicenseKey": LICENSE} if needs else {}


def target_outputs(line: str = "current", product: str = "edge-stack") -> dict[str, Any]:
    from components import certificates

    anchor = certificates.new_trust_anchor("root.linkerd.cluster.local", 24)
    issuer = certificates.new_issuer(anchor, "identity.linkerd.cluster.local", 12)
    gateway = upstream.VERSION_LINES[line].edge_stack[product]
    return {
        "trustAnchorPem": anchor.cert_pem,
        "peerIssuerCertPem": issuer.cert_pem,
        "peerIssuerKeyPem": issuer.key_pem,
        "gatewayName": gateway.deployment,
        "gatewayNamespace": gateway.namespace,
        "clusterName": "target",
        "context": TARGET_CONTEXT,
        "versionLine": line,
    }


def run_stack(
    stack: str,
    config: dict[str, Any],
    *,
    preview: bool = False,
    linkerd: FakeLinkerd | None = None,
    secret_config: dict[str, str] | None = None,
    stack_references: dict[str, dict[str, Any]] | None = None,
) -> Run:
    """Run the real __main__.py as `pulumi up` (or preview) of `stack` would."""
    line = config.get("versionLine", "current")
    linkerd = linkerd or FakeLinkerd(PAGE_VERSION if line == "page" else CURRENT_VERSION)
    if stack_references is None and config.get("role") == "source":
        stack_references = {config.get("targetStack", ""): target_outputs(line, config.get("edgeStackProduct", "edge-stack"))}
    return run_program(
        lambda: runpy.run_path(str(ROOT / "__main__.py")),
        stack=stack,
        config=config,
        secret_config=licence_for(config) if secret_config is None else secret_config,
        preview=preview,
        linkerd=linkerd,
        stack_references=stack_references,
    )


@pytest.fixture(scope="session")
def api_server_port() -> Iterator[int]:
    """A listening loopback port standing in for both API servers (the program checks they answer)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)

    def accept() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            connection.close()

    threading.Thread(target=accept, daemon=True).start()
    yield listener.getsockname()[1]
    listener.close()


@pytest.fixture(autouse=True)
def kubeconfig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, api_server_port: int) -> Path:
    """A kubeconfig with both contexts, so no test reads the developer's own."""
    path = tmp_path / "kubeconfig"
    contexts = [TARGET_CONTEXT, SOURCE_CONTEXT]
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": c, "cluster": {"server": f"https://127.0.0.1:{api_server_port}"}} for c in contexts],
                "users": [{"name": c, "user": {}} for c in contexts],
                "contexts": [{"name": c, "context": {"cluster": c, "user": c}} for c in contexts],
            }
        )
    )
    monkeypatch.setenv("KUBECONFIG", str(path))
    monkeypatch.delenv("AES_LINKERD2_OFFLINE", raising=False)
    return path


def provider_urn(run: Run, name: str) -> str:
    provider = next(r for r in run.registrations if r.type == "pulumi:providers:kubernetes" and r.name == name)
    return f"{provider.urn}::{name}-id"


def kubernetes_resources(run: Run) -> list:
    return [r for r in run.registrations if r.type.startswith("kubernetes:")]
