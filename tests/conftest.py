"""Shared fixtures: the stacks' config, the reference manifests, an isolated kubeconfig."""

from __future__ import annotations

import functools
import os
import runpy
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from driver.offline import Registration
from support import tools, upstream
from tests.fake_linkerd import CURRENT_VERSION, PAGE_VERSION, FakeLinkerd
from tests.harness import Run, run_program

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
# Upstream's release manifests and CRDs, which may not be committed here: $AES_LINKERD2_REFERENCE, else
# ../shared/reference beside the clone, else the project's cache (reference/), which `./aes-linkerd2 setup
# --all` fills, verified, from the official release URLs. Tests that need them are skipped, by name and loudly, without.
REFERENCE_FILES = (
    "emissary/aes-crds.v1.14.4.yaml",
    "emissary/aes.v1.14.4.yaml",
    "emissary/crds.v4-head.yaml",
    "emissary/emissary-crds.v3.9.1.yaml",
    "emissary/emissary-emissaryns.v3.9.1.yaml",
)


def _reference_dir() -> Path:
    named = os.environ.get("AES_LINKERD2_REFERENCE")
    if named:
        return Path(named)
    candidates = [ROOT.parent / "shared" / "reference", tools.reference_dir()]
    complete = [c for c in candidates if all((c / name).is_file() for name in REFERENCE_FILES)]
    return (complete or candidates)[0]


REFERENCE = _reference_dir()
EMISSARY = REFERENCE / "emissary"
MISSING_REFERENCE = [name for name in REFERENCE_FILES if not (REFERENCE / name).is_file()]
# What in a test module's text says it reads those files (directly or through the stacks' config).
_READS_REFERENCE = ("EMISSARY", "target_config", "source_config", "run_stack", "tests.schemas")

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
    if line == "linkerd-2.8":
        return {
            "versionLine": "linkerd-2.8",
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
    from support import certificates

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


SKIPPED_FOR_TOOLS: list[str] = []


@functools.cache
def _reads_reference(path: str) -> bool:
    text = Path(path).read_text(encoding="utf-8")
    return any(marker in text for marker in _READS_REFERENCE)


def require_upstream_files() -> None:
    """Skip, loudly, when upstream's release files are not here."""
    if MISSING_REFERENCE:
        message = (
            f"UPSTREAM RELEASE FILES MISSING under {REFERENCE} ({', '.join(MISSING_REFERENCE)}; "
            f"set AES_LINKERD2_REFERENCE to a folder holding them, or run {tools.SETUP_COMMAND} --all): test NOT RUN"
        )
        SKIPPED_FOR_TOOLS.append(message)
        pytest.skip(message)


@pytest.fixture(autouse=True)
def upstream_release_files(request: pytest.FixtureRequest) -> None:
    if _reads_reference(str(request.path)):
        require_upstream_files()


def real_linkerd(line: str | upstream.VersionLine = "current") -> str:
    """The real linkerd CLI of the line's pinned release; the test is skipped, loudly, without it."""
    version_line = upstream.VERSION_LINES[line] if isinstance(line, str) else line
    version = version_line.linkerd_versions[0]
    found = tools.find_linkerd(version)
    if found is None:
        message = f"REAL linkerd CLI {version} NOT FOUND ({tools.where_to_look(version)}): test NOT RUN"
        SKIPPED_FOR_TOOLS.append(message)
        pytest.skip(message)
    return found


def run_stack(
    stack: str,
    config: dict[str, Any],
    *,
    preview: bool = False,
    linkerd: FakeLinkerd | None = None,
    secret_config: dict[str, str] | None = None,
    stack_references: dict[str, dict[str, Any]] | None = None,
) -> Run:
    """Run the real __main__.py as `pulumi up` (or preview) of `stack` would.

    With the real linkerd CLI of the line, unless `linkerd` (a fake, for failures on demand) is given.
    The Link, which needs the target cluster, always comes from the fake.
    """
    line = config.get("versionLine", "current")
    line = line if line in upstream.VERSION_LINES else "current"  # a bad one is refused before any CLI runs
    if linkerd is None:
        binary = real_linkerd(line)
        linkerd = FakeLinkerd(PAGE_VERSION if line == "linkerd-2.8" else CURRENT_VERSION, binary=binary, answers_all=False)
        config = {"linkerdCli": binary, **config}
    else:
        config = {"linkerdCli": linkerd.binary, **config}
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


def kubernetes_resources(run: Run) -> list[Registration]:
    return [r for r in run.registrations if r.type.startswith("kubernetes:")]


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say loudly what did not run for want of a real tool."""
    if SKIPPED_FOR_TOOLS:
        terminalreporter.write_sep("!", "REAL TOOLS OR UPSTREAM FILES MISSING: THESE TESTS DID NOT RUN", red=True, bold=True)
        for message in sorted(set(SKIPPED_FOR_TOOLS)):
            count = SKIPPED_FOR_TOOLS.count(message)
            terminalreporter.write_line(f"{count:4d} x {message}", red=True, bold=True)
