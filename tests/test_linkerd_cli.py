"""support/linkerd_cli.py: renders started together run at once, and a failed one names its command."""

from __future__ import annotations

import time
from pathlib import Path

from support.config_model import ClusterAccess
from support.linkerd_cli import LinkerdCli, ToolError
from tests.harness import run_program


def _slow_cli(tmp_path: Path) -> str:
    """A CLI that takes a second to answer: what no real one does on demand."""
    script = tmp_path / "slow-linkerd"
    script.write_text('#!/bin/sh\nsleep 1\n[ "$3" = fail ] && { echo "no such step" >&2; exit 3; }\necho "rendered $3"\n')
    script.chmod(0o755)
    return str(script)


def test_renders_started_together_run_at_once_and_each_reads_its_own_output(tmp_path: Path) -> None:
    cli = LinkerdCli(binary=_slow_cli(tmp_path), cluster=ClusterAccess(context="ctx"))
    seen: dict[str, float | str] = {}

    def program() -> None:
        began = time.monotonic()
        first, second, third = (cli.start(step) for step in ("one", "two", "three"))
        seen["started"] = time.monotonic() - began
        seen["outputs"] = " / ".join(render.stdout() for render in (third, first, second))
        seen["read"] = time.monotonic() - began

    run = run_program(program)
    assert run.error is None
    assert seen["outputs"] == "rendered three / rendered one / rendered two"
    assert float(seen["started"]) < 0.5  # starting waits for nothing
    assert float(seen["read"]) < 2.5  # three one-second renders, not one after another
    assert sorted(run.mocks.calls) == [["one"], ["three"], ["two"]]


def test_a_failed_render_names_its_command_when_it_is_read(tmp_path: Path) -> None:
    cli = LinkerdCli(binary=_slow_cli(tmp_path), cluster=ClusterAccess(context="ctx"))

    def program() -> None:
        cli.start("fail").stdout()

    run = run_program(program)
    assert isinstance(run.error, ToolError)
    assert f"`{cli.binary} --context ctx fail` failed" in str(run.error) and "no such step" in str(run.error)
