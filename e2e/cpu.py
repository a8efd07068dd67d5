"""Where the machine's CPU went: every process's CPU time, sampled once a second, summed by name over a window; and
the most memory each process name held at once.

    python e2e/cpu.py sample FILE            appends one JSON line a second to FILE until killed
    python e2e/cpu.py window FILE T0 T1      CPU seconds by process name between epoch times T0 and T1, and the peak
                                             resident memory of the busiest names

A process's CPU time is `utime + stime` of /proc/PID/stat. Over the window each process counts from its first sample
in it (0 if it started inside it) to its last; one that ended between two samples loses at most its last second.
This is how the Pulumi CLI's 15-19 s of CPU through a fresh `up` (its state, written after every step) was found:
CONTRIBUTING.md, "The state written after every step".
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


def processes(proc: Path = Path("/proc")) -> Iterator[tuple[int, str, list[str]]]:
    """Each live process: its PID, its name, and the fields of /proc/PID/stat after the name (state, ppid, ...)."""
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # ended while being read
            continue
        yield int(entry.name), stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :].split()


def readings(proc: Path = Path("/proc")) -> tuple[dict[str, float], dict[str, int]]:
    """Every live process's CPU seconds so far (utime + stime) and resident bytes (rss), by `PID:NAME`: one read of /proc."""
    cpu: dict[str, float] = {}
    rss: dict[str, int] = {}
    for pid, name, fields in processes(proc):
        cpu[f"{pid}:{name}"] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
        rss[f"{pid}:{name}"] = int(fields[21]) * PAGE_BYTES
    return cpu, rss


def snapshot(proc: Path = Path("/proc")) -> dict[str, float]:
    """Every live process's CPU seconds so far, by `PID:NAME`."""
    return readings(proc)[0]


def resident(proc: Path = Path("/proc")) -> dict[str, int]:
    """Every live process's resident memory in bytes, by `PID:NAME`."""
    return readings(proc)[1]


def _in_window(lines: Iterable[str], start: float, end: float) -> Iterator[dict[str, Any]]:
    """`sample`'s records taken between START and END (half a second before, a second after: one sample apart)."""
    for line in lines:
        record = json.loads(line)
        if start - 0.5 <= record["t"] <= end + 1.0:
            yield record


def peak_resident(lines: Iterable[str], start: float, end: float) -> dict[str, int]:
    """The most resident memory one process of each name held in a sample between START and END (bytes)."""
    peaks: dict[str, int] = {}
    for record in _in_window(lines, start, end):
        for process, size in record.get("rss", {}).items():
            name = process.split(":", 1)[1]
            peaks[name] = max(peaks.get(name, 0), size)
    return peaks


def window(lines: Iterable[str], start: float, end: float) -> dict[str, float]:
    """CPU seconds by process name between START and END, from `sample`'s lines."""
    # By PID: a kernel worker's name changes with the work it does, and it is still the same process.
    first: dict[str, float] = {}
    last: dict[str, tuple[str, float]] = {}
    for record in _in_window(lines, start, end):
        at = record["t"]
        for process, seconds in record["cpu"].items():
            pid, name = process.split(":", 1)
            # A process already there at the window's start counts from there; one started later, from zero.
            first.setdefault(pid, seconds if at <= start + 1.0 else 0.0)
            last[pid] = (name, seconds)
    used: dict[str, float] = {}
    for pid, (name, seconds) in last.items():
        used[name] = used.get(name, 0.0) + seconds - first[pid]
    return used


def main(argv: list[str]) -> int:
    if argv[:1] == ["sample"] and len(argv) == 2:
        with Path(argv[1]).open("a", encoding="utf-8") as out:
            while True:
                cpu, rss = readings()
                out.write(json.dumps({"t": time.time(), "cpu": cpu, "rss": rss}) + "\n")
                out.flush()
                time.sleep(1)
    if argv[:1] == ["window"] and len(argv) == 4:
        start, end = float(argv[2]), float(argv[3])
        lines = Path(argv[1]).read_text(encoding="utf-8").splitlines()
        used = window(lines, start, end)
        total = sum(used.values())
        names = [name for name, _ in sorted(used.items(), key=lambda kv: -kv[1])[:6]]
        busiest = ", ".join(f"{name} {used[name]:.1f}s" for name in names)
        print(f"CPU {total:.1f}s over {end - start:.1f}s ({total / max(end - start, 1e-9):.2f} cores): {busiest}")
        peaks = peak_resident(lines, start, end)
        held = ", ".join(f"{name} {peaks[name] / 2**20:.0f} MB" for name in names if name in peaks)
        if held:
            print(f"  peak resident memory, one process of each: {held}")
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
