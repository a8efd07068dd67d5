"""What `up`/`preview`/`refresh`/`destroy` show while they run.

On a terminal: one line per stack, updated in place by rich's Live display (counts of finished
steps by kind, elapsed time, the step under way), with the program's warnings printed above it so
they stay. Anywhere else (a log, CI): one plain line per engine event, as before.
"""

from __future__ import annotations

from collections import Counter
from types import TracebackType
from typing import TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.text import Text

from driver.api import Progress


def plain_line(progress: Progress) -> str:
    minutes, seconds = divmod(int(progress.elapsed_seconds), 60)
    return f"[{progress.stack}] {progress.operation}: {progress.done} done, {minutes:02d}:{seconds:02d}  {progress.step}"


class _Stack:
    def __init__(self, progress: Progress) -> None:
        self.stack, self.operation = progress.stack, progress.operation
        self.kinds: Counter[str] = Counter()
        self.done, self.elapsed, self.step = 0, 0.0, ""

    def update(self, progress: Progress) -> None:
        if progress.done > self.done:  # a step finished: count it by its kind (create, same, ...)
            self.kinds[progress.step.split(" ", 1)[0]] += progress.done - self.done
        self.done, self.elapsed, self.step = progress.done, progress.elapsed_seconds, progress.step

    def line(self, width: int) -> Text:
        minutes, seconds = divmod(int(self.elapsed), 60)
        counts = ", ".join(f"{count} {kind}" for kind, count in sorted(self.kinds.items())) or "starting"
        head = f"{self.stack:<7} {self.operation} {minutes:02d}:{seconds:02d}  {self.done} done ({counts})  "
        rest = max(width - len(head), 10)
        step = self.step if len(self.step) <= rest else "..." + self.step[-(rest - 3) :]
        return Text(head, style="bold") + Text(step, style="dim")


class Display:
    """A context manager whose `update` is the `on_progress` callback of a `Deployment`."""

    def __init__(self, stream: TextIO, console: Console | None = None) -> None:
        self.console = console or Console(file=stream)
        self.stream = stream
        self.stacks: dict[str, _Stack] = {}
        self.live: Live | None = None
        # The engine repeats some warnings (one per plugin load): each is shown once per stack.
        self.warned: set[str] = set()

    def __enter__(self) -> Display:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        if self.live is not None:
            self.live.update(self._render(), refresh=True)
            self.live.__exit__(kind, error, trace)

    def _render(self) -> Group:
        return Group(*(stack.line(self.console.width) for stack in self.stacks.values()))

    def update(self, progress: Progress) -> None:
        if not self.console.is_terminal:
            print(plain_line(progress), file=self.stream, flush=True)
            return
        if self.live is None:  # started by the first event: nothing shows when nothing runs (--json, errors)
            self.live = Live(Group(), console=self.console, refresh_per_second=4, transient=False)
            self.live.__enter__()
        key = f"{progress.stack}:{progress.operation}"
        if key not in self.stacks:
            self.stacks[key] = _Stack(progress)
        self.stacks[key].update(progress)
        warning = f"[{progress.stack}] {progress.step}"
        if progress.step.startswith("warning:") and warning not in self.warned:  # stays on screen, above the live lines
            self.warned.add(warning)
            self.console.print(Text(warning, style="yellow"))
        self.live.update(self._render())
