"""e2e/cpu.py, the instrument behind issue 22's CPU figures: /proc read as the kernel writes it, and each process
counted over a window from where it stood at the window's start (or from zero, started inside it)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import e2e_module

cpu = e2e_module("cpu")


def test_this_process_is_in_the_snapshot_with_its_own_cpu_time() -> None:
    before = os.times()
    found = cpu.snapshot()
    mine = found[f"{os.getpid()}:{Path('/proc/self/comm').read_text().strip()}"]
    # /proc's figure for this process is the kernel's: within a few ticks of what os.times() says of it.
    assert abs(mine - (before.user + before.system)) < 0.5, (mine, before)
    assert all(seconds >= 0 for seconds in found.values())


def test_window_counts_each_process_from_the_windows_start_or_from_zero() -> None:
    lines = [
        json.dumps({"t": 100.0, "cpu": {"1:pulumi": 5.0, "2:kube-apiserver": 40.0}}),
        json.dumps({"t": 101.0, "cpu": {"1:pulumi": 6.5, "2:kube-apiserver": 41.0, "3:python": 0.4}}),
        json.dumps({"t": 105.0, "cpu": {"1:pulumi": 9.0, "2:kube-apiserver": 43.0, "3:python": 2.4, "4:python": 1.0}}),
        json.dumps({"t": 200.0, "cpu": {"1:pulumi": 50.0}}),  # after the window: not counted
    ]
    used = cpu.window(lines, 100.0, 105.0)
    # pulumi 9.0 - 5.0; the API server 43 - 40; python 3, first seen within the first second, from there (2.4 - 0.4);
    # python 4, started later in the window, from zero (1.0).
    assert dict(used) == pytest.approx({"pulumi": 4.0, "kube-apiserver": 3.0, "python": 3.0})


def test_a_process_whose_name_changes_is_still_counted_from_where_it_stood() -> None:
    lines = [
        json.dumps({"t": 100.0, "cpu": {"7:kworker/u8:1-writeback": 60.0}}),
        json.dumps({"t": 103.0, "cpu": {"7:kworker/u8:1+ext4-rsv-conversion": 60.5}}),
    ]
    # Its 0.5 s in the window, under its last name; not its 60.5 s since boot.
    assert cpu.window(lines, 100.0, 103.0) == pytest.approx({"kworker/u8:1+ext4-rsv-conversion": 0.5})


def test_this_process_resident_memory_is_what_proc_status_says() -> None:
    found = cpu.resident()[f"{os.getpid()}:{Path('/proc/self/comm').read_text().strip()}"]
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    stated = int(status["VmRSS"].split()[0]) * 1024
    # Two reads of a live process: within a few MB of each other.
    assert abs(found - stated) < 8 * 2**20, (found, stated)


def test_peak_resident_is_the_largest_one_process_of_a_name_held_in_the_window() -> None:
    lines = [
        json.dumps({"t": 99.0, "cpu": {}, "rss": {"1:pulumi": 900}}),  # before the window: not counted
        json.dumps({"t": 100.0, "cpu": {}, "rss": {"1:pulumi": 100, "2:pulumi": 50}}),
        json.dumps({"t": 101.0, "cpu": {}, "rss": {"1:pulumi": 300, "3:python": 20}}),
        json.dumps({"t": 102.0, "cpu": {}}),  # a line of the earlier format: no memory
    ]
    assert cpu.peak_resident(lines, 100.0, 102.0) == {"pulumi": 300, "python": 20}
