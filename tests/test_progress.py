"""The progress display: one updating line per stack on a terminal, plain lines elsewhere."""

from __future__ import annotations

import re
from io import StringIO

from rich.console import Console

from driver import progress
from driver.api import Progress


def events(stack: str, operation: str, count: int) -> list[Progress]:
    """What `Deployment` reports for `count` resources: each step announced, then finished (same, or create for every 10th)."""
    found = []
    for index in range(count):
        kind = "create" if index % 10 == 0 else "same"
        step = f"{kind} kubernetes:core/v1:ConfigMap::object-{index}"
        found.append(Progress(stack, operation, index, index * 0.5, step))
        found.append(Progress(stack, operation, index + 1, index * 0.5 + 0.2, step))
    return found


def test_plain_lines_when_not_a_terminal() -> None:
    stream = StringIO()
    with progress.Display(stream) as display:
        for event in events("target", "preview", 3):
            display.update(event)
    lines = stream.getvalue().splitlines()
    assert lines == [progress.plain_line(event) for event in events("target", "preview", 3)]
    assert lines[1] == "[target] preview: 1 done, 00:00  create kubernetes:core/v1:ConfigMap::object-0"


def test_one_line_per_stack_on_a_terminal() -> None:
    stream = StringIO()
    console = Console(file=stream, force_terminal=True, width=120, color_system=None)
    display = progress.Display(stream, console=console)
    with display:
        for event in events("target", "preview", 146):
            display.update(event)
        for _ in range(3):  # the engine repeats some warnings
            display.update(Progress("target", "preview", 146, 73.0, "warning: the peer issuer expires on 2027-01-01"))
        for event in events("source", "preview", 120):
            display.update(event)
    output = stream.getvalue()
    # Updated in place with cursor control, never one line per event.
    assert "\x1b[" in output
    assert "[target] preview: " not in output
    assert output.count("\n") < 20, output.count("\n")
    # The warning stays on screen, printed once above the live lines.
    assert output.count("[target] warning: the peer issuer expires on 2027-01-01") == 1
    final = Console(file=StringIO(), width=120, color_system=None)
    final.print(display._render())
    shown = final.file.getvalue().splitlines()  # type: ignore[attr-defined]
    assert len(shown) == 2
    assert re.fullmatch(
        r"target  preview 01:13  146 done \(15 create, 131 same\)  warning: the peer issuer expires on 2027-01-01", shown[0]
    )
    assert shown[1].startswith(
        "source  preview 00:59  120 done (12 create, 108 same)  same kubernetes:core/v1:ConfigMap::object-119"
    )


def test_long_steps_are_cut_to_the_width() -> None:
    stream = StringIO()
    console = Console(file=stream, force_terminal=True, width=80, color_system=None)
    display = progress.Display(stream, console=console)
    with display:
        display.update(Progress("source", "up", 0, 1.0, "create " + "x" * 200 + "::the-end"))
    final = Console(file=StringIO(), width=80, color_system=None)
    final.print(display._render())
    shown = final.file.getvalue().splitlines()  # type: ignore[attr-defined]
    assert len(shown) == 1 and len(shown[0]) <= 80 and shown[0].endswith("::the-end")


def test_nothing_shows_when_nothing_runs() -> None:
    stream = StringIO()
    with progress.Display(stream, console=Console(file=stream, force_terminal=True, width=80)):
        pass
    assert stream.getvalue() == ""
