"""The e2e pytest tiers' fixtures: the live clusters of each tier, and a loud word when they cannot start.

`cluster` (e2e/test_safety.py): cluster `target`, for the session; `interrupted_cluster` (e2e/test_interrupted.py)
the same, for its module. `clusters` (e2e/test_mirror.py): clusters
`target` and `source` with Linkerd's service mirror, for its module. `full` (e2e/test_full.py): clusters `target`
and `source` with every real webhook server that is built, for its module. `trust_clusters`
(e2e/test_trust.py): clusters `target` and `source` with Linkerd's identity controller and proxy injector, for its module.

Collected only when asked (`venv/bin/python -m pytest e2e`): pyproject's testpaths is `tests`, so
`scripts/test` never starts a cluster. Without the tool cache the run stops with exit 2 naming what is
missing; with `--skip-if-missing` (CI) every test is skipped by name instead and the end of the run
says so in a banner.
"""

from __future__ import annotations

import time
from collections.abc import Generator, Iterator

import pytest
from clusters import LiveCluster, missing_tools

# e2e/live.py's checks are plain asserts: pytest explains them as it does a test's own.
pytest.register_assert_rewrite("live")

SKIPPED: list[str] = []
BANNER = "=" * 90
# The first failed step of each module: the steps after it build on it, so they are skipped, naming it.
FAILED: dict[str, str] = {}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--skip-if-missing", action="store_true", help="skip (loudly) instead of failing when the tool cache is missing"
    )


def _live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, tier: str) -> Iterator[LiveCluster]:
    """The tier's clusters, or exit 2 (a skip of every test, said loudly, with --skip-if-missing) naming what is missing."""
    missing = missing_tools(tier)
    if missing:
        reason = f"{tier.upper()} TIER NOT RUN: the tool cache is incomplete (CONTRIBUTING.md, 'The tool cache'); missing:"
        if not request.config.getoption("--skip-if-missing"):
            pytest.exit("\n  ".join([reason, *missing]), returncode=2)
        SKIPPED.extend([reason, *missing])
        pytest.skip(f"{tier.upper()} TIER NOT RUN: {len(missing)} tools or files missing (listed at the end)")
    began = time.monotonic()
    live = LiveCluster.start(tmp_path_factory.mktemp(tier), tier)
    print(f"\n[{tier}] clusters up in {time.monotonic() - began:.0f}s; apiext served: {live.apiext_served}")
    if tier == "full":  # which servers run and which do not (said LOUDLY), the engine and the tools
        print("\n".join(line for line in live.log.read_text().splitlines() if line.startswith(("[full]", "[webhooks]"))))
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture(scope="session")
def cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveCluster]:
    """Cluster `target` on loopback with a copy of the project and the real engine; stopped at the end."""
    yield from _live(request, tmp_path_factory, "safety")


@pytest.fixture(scope="module")
def interrupted_cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveCluster]:
    """Cluster `target` as the safety tier makes it, for e2e/test_interrupted.py's module (it leaves the cluster dirty)."""
    yield from _live(request, tmp_path_factory, "safety")


@pytest.fixture(scope="module")
def clusters(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveCluster]:
    """Clusters `target` and `source` with the service mirror's watcher (e2e/mirror.sh); stopped after the module,
    so a run of every tier never has two tiers' clusters up at once."""
    yield from _live(request, tmp_path_factory, "mirror")


@pytest.fixture(scope="module")
def full(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveCluster]:
    """Clusters `target` and `source` with the real webhook servers (e2e/webhooks.sh), for e2e/test_full.py's module."""
    yield from _live(request, tmp_path_factory, "full")


@pytest.fixture(scope="module")
def trust_clusters(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveCluster]:
    """Clusters `target` and `source` with Linkerd's proxy injector and identity controller (e2e/identity.sh);
    stopped after the module."""
    yield from _live(request, tmp_path_factory, "trust")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report: pytest.TestReport = yield
    if report.failed and report.when in ("setup", "call"):
        FAILED.setdefault(item.nodeid.split("::")[0], item.name)
    return report


@pytest.fixture(autouse=True)
def earlier_steps(request: pytest.FixtureRequest) -> None:
    failed = FAILED.get(request.node.nodeid.split("::")[0])
    if failed is not None:
        pytest.skip(f"an earlier step failed: {failed}")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if SKIPPED:
        terminalreporter.write_line(BANNER, red=True, bold=True)
        for line in SKIPPED:
            terminalreporter.write_line(line if "TIER NOT RUN" in line else f"  {line}", red=True, bold="TIER NOT RUN" in line)
        terminalreporter.write_line("so these did NOT run:", red=True, bold=True)
        for report in terminalreporter.stats.get("skipped", []):
            terminalreporter.write_line(f"  SKIPPED {report.nodeid}", red=True)
        terminalreporter.write_line(BANNER, red=True, bold=True)
