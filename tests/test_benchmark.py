"""scripts/benchmark.py: refuses without the linkerd CLI unless told, and its floor registers what it says."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import real_linkerd, upstream_file

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "benchmark.py"


def _without_linkerd(tmp_path: Path) -> dict[str, str]:
    """An environment in which no linkerd CLI of any release can be found."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AES_LINKERD2_LINKERD_")}
    return {**environment, "AES_LINKERD2_TOOLS": str(tmp_path / "no-tools"), "PATH": str(tmp_path)}


def test_refuses_in_one_line_when_the_pinned_cli_is_missing(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT)], env=_without_linkerd(tmp_path), capture_output=True, text=True, check=False
    )
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "REFUSED" in lines[0] and "edge-26.8.3" in lines[0] and "--without-cli" in lines[0]


def test_the_floor_registers_as_many_plain_objects_as_it_is_asked_for(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--one", "floor", "7", str(tmp_path / "no-linkerd")],
        env=_without_linkerd(tmp_path),
        capture_output=True,
        text=True,
        check=True,
    )
    measured = json.loads(done.stdout)
    assert measured["resources"] == 7
    assert measured["seconds"] > 0


def test_a_program_measurement_runs_the_real_cli_for_every_linkerd_object() -> None:
    cli = real_linkerd()
    # The program installs upstream's CRDs here, from the folder the tests found them in.
    reference = upstream_file("emissary/crds.v4-head.yaml").parent.parent
    environment = {**os.environ, "AES_LINKERD2_OFFLINE": "1", "PYTHONPATH": str(ROOT), "AES_LINKERD2_REFERENCE": str(reference)}
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--one", "program", "target", "2", cli],
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )
    measured = json.loads(done.stdout)
    # version, install --crds, install, multicluster install, inject: all real, none stood in for
    assert measured["cli_runs"] == 5 and measured["not_rendered"] == 0
    assert measured["resources"] > 100 and measured["cli_wait_seconds"] > 0


def test_the_source_is_measured_with_the_anchor_the_target_left() -> None:
    """The source's issuer Command reads the target's anchor Secret: every measurement shares the offline clusters."""
    real_linkerd()
    reference = upstream_file("emissary/crds.v4-head.yaml").parent.parent
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--sizes", "0", "--repeat", "1", "--stacks", "source"],
        env={**os.environ, "AES_LINKERD2_REFERENCE": str(reference)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    rows = [line.split() for line in done.stdout.splitlines() if line.startswith("source ")]
    assert len(rows) == 1 and rows[0][1] == "0" and int(rows[0][2]) > 100
