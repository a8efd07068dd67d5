"""Shared fixtures: the stacks' config (on the project's own fixtures), upstream's release files by name,
the real linkerd CLI, an isolated kubeconfig, and the closing list of every test that did not run."""

from __future__ import annotations

import functools
import importlib.util
import os
import runpy
import shutil
import socket
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from driver.offline import Registration
from support import clusters, live_cluster, render_cache, tools, upstream
from tests.fake_linkerd import CURRENT_VERSION, PAGE_VERSION, FakeLinkerd
from tests.harness import Run, run_program

ROOT = Path(__file__).resolve().parent.parent
# Every test sees the linkerd CLI run (what it asserts of the commands); tests/test_render_cache.py turns it on.
os.environ[render_cache.RENDER_CACHE_ENV] = render_cache.OFF
FIXTURES = Path(__file__).resolve().parent / "fixtures"
# The getambassador.io CRDs the program's own objects need (Module, Mapping, Host, Listener), written
# for this project: the stacks' config points at them, so no test needs upstream's files for that.
OWN_CRDS = FIXTURES / "getambassador-crds.v3alpha1.yaml"
# The one command that gets every real tool and upstream file a skipped test needs.
SETUP = "./aes-linkerd2 setup --all"
# Upstream's release manifests and CRDs, which are not committed here. Tests that need one are skipped,
# by name and loudly, without it.
HAND_COPIED = "emissary/crds.v4-head.yaml"
REFERENCE_FILES = (
    "emissary/aes-crds.v1.14.4.yaml",
    "emissary/aes.v1.14.4.yaml",
    "emissary/crds.v4-head.yaml",
    "emissary/emissary-crds.v3.9.1.yaml",
    "emissary/emissary-emissaryns.v3.9.1.yaml",
)


def reference_candidates() -> list[Path]:
    """Where upstream's files are looked for: $AES_LINKERD2_REFERENCE alone when set, else ../shared/reference
    beside the clone, then the project's cache (what `./aes-linkerd2 setup --all` fills)."""
    named = os.environ.get("AES_LINKERD2_REFERENCE")
    if named:
        return [Path(named).expanduser()]
    return [ROOT.parent / "shared" / "reference", tools.reference_dir()]


def _reference_dir(candidates: list[Path]) -> Path:
    """The first folder holding all of upstream's files, else the first that holds any, else the first."""
    complete = [c for c in candidates if all((c / name).is_file() for name in REFERENCE_FILES)]
    partial = [c for c in candidates if any((c / name).is_file() for name in REFERENCE_FILES)]
    return (complete or partial or candidates)[0]


REFERENCE_CANDIDATES = reference_candidates()
REFERENCE = _reference_dir(REFERENCE_CANDIDATES)


def looked_in() -> str:
    return ", ".join(f"{c}{'' if c.is_dir() else ' (absent)'}" for c in REFERENCE_CANDIDATES)


def upstream_file(name: str) -> Path:
    """One of upstream's release files (a name of REFERENCE_FILES); the test is skipped, loudly, without it."""
    assert name in REFERENCE_FILES, name
    path = REFERENCE / name
    if not path.is_file():
        # Emissary's CRDs at the head of its repository: no release publishes them, so no set-up can fetch them.
        get = "copy it from Emissary's repository (manifests/emissary)" if name == HAND_COPIED else f"`{SETUP}` fetches it"
        pytest.skip(f"UPSTREAM FILE {name} NOT FOUND (looked in {looked_in()}): test NOT RUN; {get}")
    return path


# Emissary 4.1.0's two charts as its release tag has them (charts/ in emissary-ingress/emissary at v4.1.0),
# or as `helm pull` leaves them; no set-up fetches them where ghcr.io is out of reach.
EMISSARY_CHARTS = "emissary/charts-4.1.0"
CHART_DIRS = ("emissary-crds", "emissary-ingress")


def emissary_charts() -> tuple[Path, Path]:
    """The CRD chart and the main chart of Emissary 4.1.0; the test is skipped, loudly, without them."""
    for candidate in REFERENCE_CANDIDATES:
        found = tuple(candidate / EMISSARY_CHARTS / name for name in CHART_DIRS)
        if all((path / "Chart.yaml").is_file() for path in found):
            return found[0], found[1]
    pytest.skip(
        f"UPSTREAM CHARTS {EMISSARY_CHARTS}/{{{','.join(CHART_DIRS)}}} NOT FOUND (looked in {looked_in()}): test NOT RUN; "
        "copy them from Emissary's v4.1.0 tag (charts/), or `helm pull` both charts and unpack them there"
    )


def real_helm() -> str:
    """The real helm CLI of the pinned release; the test is skipped, loudly, without it."""
    from support import helm

    found = helm.find_helm()
    if found is None:
        pytest.skip(f"REAL helm v{helm.HELM_VERSION} NOT FOUND ({helm.where_to_look()}): test NOT RUN")
    return found


def real_pulumi() -> str:
    """The Pulumi CLI: on PATH, else the tool cache's (CONTRIBUTING.md); the test is skipped, loudly, without it."""
    cached = tools.cache_root() / "bin" / "pulumi"
    found = shutil.which("pulumi") or (str(cached) if os.access(cached, os.X_OK) else None)
    if found is None:
        pytest.skip(f"REAL Pulumi CLI NOT FOUND (PATH, {tools.cache_root() / 'bin'}): test NOT RUN; e2e/build-tools.sh pulumi")
    return found


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
    """The page line installs upstream's 1.14.4 release files; today's line the project's own stand-ins."""
    if line == "linkerd-2.8":
        return {
            "versionLine": "linkerd-2.8",
            "edgeStackCrds": str(upstream_file("emissary/aes-crds.v1.14.4.yaml")),
            "edgeStackManifest": str(upstream_file("emissary/aes.v1.14.4.yaml")),
        }
    if product == "emissary-4":
        crds, app = emissary_charts()
        return {
            "versionLine": "current",
            "edgeStackProduct": "emissary",
            "edgeStackVersion": "4.1.0",
            "edgeStackCrds": str(crds),
            "edgeStackManifest": str(app),
            "helm": real_helm(),
        }
    manifest = "edge-stack-3.yaml" if product == "edge-stack" else "emissary-3.yaml"
    # The project's Emissary fixture stands in for 3.9.1's release manifest (4.x comes from its charts).
    return {
        "versionLine": "current",
        "edgeStackProduct": product,
        **({"edgeStackVersion": "3.9.1"} if product == "emissary" else {}),
        "edgeStackCrds": str(OWN_CRDS),
        "edgeStackManifest": str(FIXTURES / manifest),
    }


def licence_for(config: dict[str, Any]) -> dict[str, str]:
    needs = config.get("versionLine") == "current" and config.get("edgeStackProduct", "edge-stack") == "edge-stack"
    return {"edgeStackLicenseKey": LICENSE} if needs else {}


def target_outputs(line: str = "current", product: str = "edge-stack") -> dict[str, Any]:
    from driver.offline import offline_cluster
    from support import certificates

    anchor = certificates.new_trust_anchor("root.linkerd.cluster.local", 24)
    # The target's anchor Secret, as the target's `up` leaves it in its cluster (offline: a folder).
    offline_cluster(TARGET_CONTEXT).apply(certificates.anchor_secret("linkerd-trust-anchor", anchor))
    gateway = upstream.VERSION_LINES[line].edge_stack[product]
    return {
        "trustAnchorPem": anchor.cert_pem,
        "trustAnchorSecret": "linkerd-trust-anchor",
        "gatewayName": gateway.deployment,
        "gatewayNamespace": gateway.namespace,
        "clusterName": "target",
        "context": TARGET_CONTEXT,
        "versionLine": line,
    }


@functools.cache
def e2e_module(name: str) -> ModuleType:
    """e2e/NAME.py as a module, loaded once (e2e/ holds scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "e2e" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(name, module)  # what its dataclasses look their module up by
    spec.loader.exec_module(module)
    return module


def real_linkerd(line: str | upstream.VersionLine = "current") -> str:
    """The real linkerd CLI of the line's pinned release; the test is skipped, loudly, without it."""
    version_line = upstream.VERSION_LINES[line] if isinstance(line, str) else line
    version = version_line.linkerd_versions[0]
    found = tools.find_linkerd(version)
    if found is None:
        pytest.skip(f"REAL linkerd CLI {version} NOT FOUND ({tools.where_to_look(version)}): test NOT RUN")
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


def run_refused(
    stack: str,
    config: dict[str, Any],
    *,
    preview: bool = False,
    secret_config: dict[str, str] | None = None,
    stack_references: dict[str, dict[str, Any]] | None = None,
) -> Run:
    """Run the program on config it must refuse before any command runs or anything is registered.

    The linkerd CLI is a recording stand-in that answers nothing: the test fails if the program asks it
    anything, so the stand-in never decides an outcome.
    """
    never_asked = FakeLinkerd(fail={"": "stand-in: this config must be refused before any command runs"})
    run = run_stack(
        stack, config, preview=preview, linkerd=never_asked, secret_config=secret_config, stack_references=stack_references
    )
    assert never_asked.commands == [], never_asked.commands
    assert run.mocks.commands == [] and run.mocks.commands_run == [], (run.mocks.commands, run.mocks.commands_run)
    assert run.registrations == [], [r.name for r in run.registrations]
    return run


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
def offline_clusters() -> None:
    """Each test starts with empty offline clusters: no anchor Secret left by an earlier test."""
    from driver.offline import forget_offline_clusters

    forget_offline_clusters()


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
    # The provider's kubeconfig link goes to the test's folder, not the project's.
    monkeypatch.setattr(clusters, "PROJECT_ROOT", tmp_path)
    # The stub server above is no API server: its namespaces are what the config says exist. The program's
    # own refusal is tested against a real API server (tests/test_namespaces_live.py, e2e/test_safety.py).
    monkeypatch.setattr(
        live_cluster,
        "read",
        lambda cfg, run=None: (
            live_cluster.LiveCluster(namespaces={name: {} for name in cfg.workloads.existing_namespaces})
            if live_cluster.readable(cfg)
            else None
        ),
    )
    # Nor its workloads: none, unless a test says which (tests/test_rotation_restart.py).
    monkeypatch.setattr(live_cluster, "workloads", lambda cfg, run=None: ())
    return path


def provider_urn(run: Run, name: str) -> str:
    provider = next(r for r in run.registrations if r.type == "pulumi:providers:kubernetes" and r.name == name)
    return f"{provider.urn}::{name}-id"


def kubernetes_resources(run: Run) -> list[Registration]:
    return [r for r in run.registrations if r.type.startswith("kubernetes:")]


def skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return reason.removeprefix("Skipped: ")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say loudly what did not run and why: every skip pytest counted, grouped by its reason."""
    reasons = Counter(skip_reason(report) for report in terminalreporter.stats.get("skipped", []))
    if not reasons:
        return
    total = sum(reasons.values())
    terminalreporter.write_sep("!", f"{total} TESTS DID NOT RUN (real tools or upstream files missing)", red=True, bold=True)
    for reason, count in sorted(reasons.items(), key=lambda item: item[0]):
        terminalreporter.write_line(f"{count:4d} x {reason}", red=True, bold=True)
    if any("UPSTREAM FILE" in reason for reason in reasons):
        terminalreporter.write_line(f"upstream's files were looked for in: {looked_in()}", red=True, bold=True)
