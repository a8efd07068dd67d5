"""scripts/fetch-reference: what it says of the cache the tests fall back on (it never runs a download here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import REFERENCE_FILES, ROOT

SCRIPT = ROOT / "scripts" / "fetch-reference"


def check(cache: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--check"],
        env={"AES_LINKERD2_REFERENCE_CACHE": str(cache), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )


def test_it_names_each_missing_file_and_the_one_without_a_release_url(tmp_path: Path) -> None:
    done = check(tmp_path)
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert sorted(line.split()[1] for line in lines) == sorted(str(tmp_path / name) for name in REFERENCE_FILES)
    assert f"MISSING  {tmp_path / 'emissary/crds.v4-head.yaml'} (no release URL" in done.stdout


def test_a_full_cache_passes(tmp_path: Path) -> None:
    for name in REFERENCE_FILES:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("kind: Placeholder\n")
    done = check(tmp_path)
    assert done.returncode == 0 and done.stdout.count("have     ") == len(REFERENCE_FILES)
