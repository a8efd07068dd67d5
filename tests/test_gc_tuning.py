"""The program sets the garbage collector's pace before it registers anything (support/gc_tuning.py)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from support import gc_tuning
from tests.conftest import run_stack, target_config


@pytest.fixture
def default_pace() -> Iterator[None]:
    kept = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*kept)


def test_the_program_collects_the_young_generation_less_often(default_pace: None) -> None:
    run = run_stack("target", target_config())
    assert run.error is None, run.error
    assert gc.get_threshold() == gc_tuning.THRESHOLDS
    assert gc_tuning.THRESHOLDS[0] > 700  # rarer than Python's default
