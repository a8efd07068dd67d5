"""Where the tests read upstream's release files: $AES_LINKERD2_REFERENCE alone, else ../shared/reference
beside the clone, then the project's cache; the first folder holding all of them wins."""

from __future__ import annotations

from pathlib import Path

import pytest

from support import tools
from tests.conftest import REFERENCE_FILES, ROOT, _reference_dir, reference_candidates


def holding(folder: Path, names: tuple[str, ...]) -> Path:
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text("kind: List\n")
    return folder


def test_the_named_folder_is_the_only_one_looked_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AES_LINKERD2_REFERENCE", str(tmp_path / "named"))
    assert reference_candidates() == [tmp_path / "named"]
    monkeypatch.delenv("AES_LINKERD2_REFERENCE")
    monkeypatch.setenv("AES_LINKERD2_CACHE", str(tmp_path / "cache"))
    assert reference_candidates() == [ROOT.parent / "shared" / "reference", tmp_path / "cache" / "reference"]
    assert tools.reference_dir() == tmp_path / "cache" / "reference"


def test_a_complete_folder_wins_over_an_earlier_partial_one(tmp_path: Path) -> None:
    partial = holding(tmp_path / "shared", REFERENCE_FILES[:1])
    complete = holding(tmp_path / "cache", REFERENCE_FILES)
    assert _reference_dir([partial, complete]) == complete
    assert _reference_dir([tmp_path / "absent", partial]) == partial
    assert _reference_dir([tmp_path / "absent", tmp_path / "also-absent"]) == tmp_path / "absent"
