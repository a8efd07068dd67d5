"""Both stacks in the page's order through the Pulumi Automation API, importable and without global state.

`up` runs the target (gateway, trust anchor, exports) before the source (link, checks); `destroy`
the other way round. Each call stops at the first failing stack, says what was applied, and returns
structured per-stack results. The Automation API sits behind `Engine`, so the order, the checks
before anything runs and the results can be exercised without the Pulumi CLI.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from driver import preflight, setup
from driver.automation import GO_GC_PACE, SKIP_CHECKPOINTS, AutomationEngine, without_blob_sidecars
from driver.render import render_stacks
from driver.settings import STACKS, DriverError, StackSettings
from support import tools
from support.clusters import PREFLIGHT_ENV
from support.upstream_cache import UpstreamCache

CHANGE_KINDS = ("create", "update", "replace", "delete", "same")
# Where `up` or `destroy` with `--skip-checkpoints` marks its stack while it runs (beside a file backend's state, else
# in the project).
UNFINISHED_DIR = ".aes-linkerd2-unfinished"
# The operations that take --skip-checkpoints, are marked while they run, and stop on a mark left over.
MARKED_OPERATIONS = ("up", "destroy")


@dataclass(frozen=True)
class StackResult:
    stack: str
    operation: str
    succeeded: bool
    changes: Mapping[str, int]
    duration_seconds: float
    outputs: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None


@dataclass(frozen=True)
class OperationResult:
    operation: str
    stacks: tuple[StackResult, ...]
    # Stacks the operation did not reach because an earlier one failed.
    skipped: tuple[str, ...] = ()

    @property
    def succeeded(self) -> bool:
        return all(r.succeeded for r in self.stacks) and not self.skipped

    def table(self) -> str:
        header = f"{'stack':<8} {'result':<7} " + " ".join(f"{kind:>7}" for kind in CHANGE_KINDS) + f" {'seconds':>8}"
        rows = [header]
        for r in self.stacks:
            counts = " ".join(f"{r.changes.get(kind, 0):>7}" for kind in CHANGE_KINDS)
            rows.append(f"{r.stack:<8} {'ok' if r.succeeded else 'FAILED':<7} {counts} {r.duration_seconds:>8.1f}")
        rows.extend(f"{stack:<8} {'skipped':<7}" for stack in self.skipped)
        return "\n".join(rows)


@dataclass(frozen=True)
class Progress:
    """One engine event, reduced to what a person watching wants to know."""

    stack: str
    operation: str
    done: int
    elapsed_seconds: float
    step: str


class Engine(Protocol):
    """The Automation API boundary: run one operation on one stack."""

    def run(
        self,
        stack: str,
        operation: str,
        on_step: Callable[[str, bool], None],
        expect_no_changes: bool = False,
        skip_checkpoints: bool = False,
    ) -> tuple[dict[str, int], dict[str, Any]]:
        """Run `operation`; call `on_step(description, finished)` per resource step; return (changes, outputs).

        With `expect_no_changes`, a plan that changes anything fails the stack. With `skip_checkpoints`, the
        engine writes the stack's state once, when the operation ends, not after every step.
        """
        ...

    def outputs(self, stack: str) -> dict[str, Any]: ...

    def unprotect(self, stack: str) -> None:
        """Let go of every protected resource of `stack` (the trust anchor) so its destroy can delete it."""
        ...

    def get_config(self, stack: str, key: str) -> str | None:
        """The stack's value of the project's `key` (None: unset)."""
        ...

    def set_config(self, stack: str, key: str, value: str) -> None:
        """Set the project's `key` on the stack (its settings file, as `pulumi config set` does)."""
        ...


class Deployment:
    """The whole page on two clusters. Each instance holds its own settings; none is process-wide."""

    def __init__(
        self,
        project_dir: str | os.PathLike[str] = ".",
        *,
        stacks: Sequence[str] = STACKS,
        backend_url: str | None = None,
        environ: Mapping[str, str] | None = None,
        engine: Engine | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        which: Callable[[str], str | None] = shutil.which,
        run_tool: Callable[[list[str]], str] | None = None,
        find_linkerd: Callable[[str], str | None] = tools.find_linkerd,
        release_files: Callable[[str, StackSettings, bool], list[preflight.Finding]] | None = None,
    ) -> None:
        self.project_dir = Path(project_dir).resolve()
        unknown = [s for s in stacks if s not in STACKS]
        if unknown:
            raise DriverError(f"unknown stack {unknown[0]!r}: the stacks are {', '.join(STACKS)}")
        self.stacks = [s for s in STACKS if s in stacks]
        self.environ = dict(os.environ if environ is None else environ)
        self.backend_url = backend_url or self._default_backend()
        self.on_progress = on_progress
        self._which = which
        self._run_tool = run_tool or _run_tool
        self._find_linkerd = find_linkerd
        self._release_files = release_files or self._setup_findings
        self._cache: UpstreamCache | None = None
        self._engine = engine

    def _default_backend(self) -> str:
        """$PULUMI_BACKEND_URL, else the project's own `.state/` folder."""
        return self.environ.get("PULUMI_BACKEND_URL") or f"file://{self.project_dir / '.state'}"

    def _setup_findings(self, stack: str, settings: StackSettings, fetch: bool) -> list[preflight.Finding]:
        """The set-up's items of `stack`, through one cache (one downloader, one lock file) for the whole run."""
        if self._cache is None:
            self._cache = setup.project_cache(self.project_dir)
        return setup.findings(stack, settings, fetch=fetch, cache=self._cache)

    # --- operations ---------------------------------------------------------------------------

    def up(self, *, expect_no_changes: bool = False, skip_checkpoints: bool = False) -> OperationResult:
        """`skip_checkpoints`: the engine writes each stack's state once, when its `up` ends, rather than the whole
        state after every step (3 MB on a fresh target, mostly CRD schemas, some 250 times). If the run is killed
        before that, the state does not know what the run made: the stack stays marked unfinished
        (`unfinished_marker`) and the next run refuses to start until someone has looked.
        """
        return self._run("up", self.stacks, expect_no_changes, skip_checkpoints)

    def preview(self, *, expect_no_changes: bool = False) -> OperationResult:
        return self._run("preview", self.stacks, expect_no_changes)

    def refresh(self, *, expect_no_changes: bool = False) -> OperationResult:
        return self._run("refresh", self.stacks, expect_no_changes)

    def destroy(
        self, *, force: bool = False, delete_trust_anchor: bool = False, skip_checkpoints: bool = False
    ) -> OperationResult:
        """The source first (its Link and checks point at the target), then the target.

        The target's trust anchor is protected in state (both meshes trust it): it goes only when asked
        for by name, `delete_trust_anchor`, and is then let go of just before the target's destroy.
        `skip_checkpoints` as for `up`: a destroy killed before its end leaves a state that may still list
        what it deleted, so the stack stays marked until someone has looked (`refresh` drops what is gone).
        """
        if "target" in self.stacks and not delete_trust_anchor:
            raise DriverError(
                "destroying the target deletes the trust anchor both meshes trust (protected in its state): pass "
                "--delete-trust-anchor to delete it with the rest, or --stack source to destroy the source alone"
            )
        if self.stacks == ["target"] and not force:
            self._refuse_while_linked()
        return self._run("destroy", list(reversed(self.stacks)), skip_checkpoints=skip_checkpoints)

    def _refuse_while_linked(self) -> None:
        """Destroying the target alone would cut a live source's Link without a word."""
        engine = self._prepare("destroy")
        try:
            linked = engine.outputs("source").get("linkedCluster")
        except Exception:  # no source stack, or never deployed: nothing links here
            return
        if linked:
            raise DriverError(
                f"the source stack still links to cluster {linked!r}: destroy it first (`./aes-linkerd2 destroy` "
                "does both, source first), or pass --force to cut its Link"
            )

    def outputs(self) -> dict[str, dict[str, Any]]:
        engine = self._prepare("outputs")
        return {stack: engine.outputs(stack) for stack in self.stacks}

    def get_config(self, stack: str, key: str) -> str | None:
        return self._prepare("outputs").get_config(stack, key)

    def set_config(self, stack: str, key: str, value: str) -> None:
        self._prepare("outputs").set_config(stack, key, value)

    def render(self, out_dir: str | os.PathLike[str], overrides: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
        """Every object each stack would apply, as YAML, without a cluster or the Pulumi CLI."""
        return render_stacks(self.project_dir, self.stacks, Path(out_dir), overrides or {}, which=self._which)

    # --- checks before anything runs ----------------------------------------------------------

    def unfinished_findings(self) -> list[preflight.Finding]:
        """One failed check per stack whose last `up` or `destroy` with `--skip-checkpoints` did not end."""
        markers = {stack: self.unfinished_marker(stack) for stack in self.stacks}
        return [preflight.unfinished(stack, marker) for stack, marker in markers.items() if marker.exists()]

    def check(self, operation: str = "check") -> list[preflight.Finding]:
        """Every check `operation` needs, each reported, none stopping the others (`./aes-linkerd2 check`).

        Before `up`, `preview` and `refresh` it first fetches what the stacks need and the cache lacks
        (the set-up); `check` only looks.
        """
        # Reading outputs needs only the CLI and the state; the stacks' files and clusters matter to the rest.
        stacks = [] if operation == "outputs" else self.stacks
        tools_ = preflight.Tools(
            which=self._which, run=self._run_tool, find_linkerd=self._find_linkerd, release_files=self._release_files
        )
        findings = preflight.run_checks(
            self.project_dir, stacks, operation, backend_url=self.backend_url, environ=self.environ, tools_=tools_
        )
        # `preview` and `refresh` still run: they are how to see what the state lacks.
        return findings + (self.unfinished_findings() if operation in (*MARKED_OPERATIONS, "check") else [])

    def preflight(self, operation: str) -> None:
        """Stop before anything runs, with every problem listed, when any check fails."""
        findings = self.check(operation)
        if not all(f.ok for f in findings):
            raise DriverError(preflight.report(findings, operation))

    # --- running ------------------------------------------------------------------------------

    def _prepare(self, operation: str) -> Engine:
        self.preflight(operation)
        if self._engine is None:
            self._engine = AutomationEngine(self.project_dir, self._engine_environment())
        return self._engine

    def _state_dir(self) -> Path | None:
        """A `file://` backend's folder (its query, if any, left out); None for other backends."""
        if not self.backend_url.startswith("file://"):
            return None
        return Path(self.backend_url.removeprefix("file://").split("?", 1)[0])

    def _engine_environment(self) -> dict[str, str]:
        state_dir = self._state_dir()
        if state_dir is not None:
            state_dir.mkdir(parents=True, exist_ok=True)
        # The stacks run after the pre-flight passed: the program does not ask the clusters and the CLI again.
        return {
            **GO_GC_PACE,
            **self.environ,
            "PULUMI_BACKEND_URL": without_blob_sidecars(self.backend_url),
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            PREFLIGHT_ENV: "1",
        }

    def unfinished_marker(self, stack: str) -> Path:
        """The file that says `stack`'s last `up` or `destroy` with `--skip-checkpoints` has not ended."""
        return (self._state_dir() or self.project_dir) / UNFINISHED_DIR / f"{stack}.json"

    def _run(
        self, operation: str, order: list[str], expect_no_changes: bool = False, skip_checkpoints: bool = False
    ) -> OperationResult:
        engine = self._prepare(operation)
        # The engine reads the variable from the environment too: set there, it is the flag, and marked as such.
        skip_checkpoints = skip_checkpoints or (
            operation in MARKED_OPERATIONS and self.environ.get(SKIP_CHECKPOINTS, "").lower() in ("1", "t", "true")
        )
        results: list[StackResult] = []
        for index, stack in enumerate(order):
            started = time.monotonic()
            done = 0

            def on_step(step: str, finished: bool, stack: str = stack, started: float = started) -> None:
                nonlocal done
                done += finished
                if self.on_progress is not None:
                    self.on_progress(Progress(stack, operation, done, time.monotonic() - started, step))

            marker = self._mark_unfinished(stack, operation) if skip_checkpoints else None
            try:
                if operation == "destroy" and stack == "target":
                    engine.unprotect(stack)  # destroy() was told to delete the trust anchor too
                changes, outputs = engine.run(stack, operation, on_step, expect_no_changes, skip_checkpoints)
            except Exception as error:
                if marker is not None and _engine_exited(error):
                    marker.unlink()  # the engine ended by itself, failing: it wrote the state on its way out
                results.append(StackResult(stack, operation, False, {}, time.monotonic() - started, error=str(error)))
                return OperationResult(operation, tuple(results), skipped=tuple(order[index + 1 :]))
            # Anything else (Ctrl-C in the driver, a kill) leaves the marker: whether the state was written is not known.
            if marker is not None:
                marker.unlink()
            results.append(StackResult(stack, operation, True, changes, time.monotonic() - started, outputs))
        return OperationResult(operation, tuple(results))

    def _mark_unfinished(self, stack: str, operation: str) -> Path:
        marker = self.unfinished_marker(stack)
        marker.parent.mkdir(parents=True, exist_ok=True)
        started = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        marker.write_text(json.dumps({"stack": stack, "operation": operation, "started": started, "backend": self.backend_url}))
        return marker


def _engine_exited(error: Exception) -> bool:
    """Whether the Pulumi CLI behind `error` exited with a code of its own (the Automation API's error says
    `code: N`; a process killed by a signal has a negative one)."""
    return re.search(r"\bcode: \d+\b", str(error)) is not None


def _run_tool(argv: list[str]) -> str:
    try:
        return subprocess.run(argv, check=True, capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError) as error:
        raise DriverError(f"`{' '.join(argv)}` failed: {error}") from None
