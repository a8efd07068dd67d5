"""The real engine behind `Deployment`: the Pulumi Automation API over the project's own stacks."""

from __future__ import annotations

import os
import subprocess
import urllib.parse
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pulumi import automation as auto

from support.project import PROJECT, SECRET_SHOWN

# Steps the engine runs at once (its default is 8): most of a step is waiting for the API server or
# a rollout, and the widest wave here (the CRDs of Linkerd and Edge Stack) is about 35 objects.
PARALLEL = 64
# The engine otherwise writes the whole state after every step: on a fresh target 3 MB (three copies of each CRD's
# schema: inputs, outputs and the provider's copy of the inputs), some 250 times, one write after another.
SKIP_CHECKPOINTS = "PULUMI_SKIP_CHECKPOINTS"
# The Pulumi CLI and its Go plugins collect garbage at Go's default pace (GOGC=100), and what the CLI allocates most is
# the state it serializes after every step, garbage at once. At 400 the heap may grow to five times what is live: the
# CLI's peak through the target's `up` went from 230 to about 440 MB, its CPU (with `without_blob_sidecars`) from 13-15
# to 9-11 s (CONTRIBUTING.md, "The state written after every step"). Go's own variable: a GOGC of the user's is kept.
GO_GC_PACE = {"GOGC": "400"}


def without_blob_sidecars(backend_url: str) -> str:
    """A `file://` backend URL that asks gocloud's fileblob not to write its `.attrs` sidecar files (`metadata=skip`).

    fileblob writes one beside every file it writes, the stack's state and its `.bak` copy too, holding the MD5 of the
    whole file: after every step that is two MD5s of the state, which Pulumi never reads. Other backends, and a URL
    that names `metadata` itself, are kept as they are.
    """
    if not backend_url.startswith("file://"):
        return backend_url
    query = urllib.parse.urlsplit(backend_url).query
    if "metadata" in urllib.parse.parse_qs(query, keep_blank_values=True):
        return backend_url
    return f"{backend_url}{'&' if query else '?'}metadata=skip"


def _step(event: auto.EngineEvent) -> tuple[str, bool] | None:
    """A resource step from an engine event: (what, finished), or None for other events.

    The program's warnings count as steps not yet finished, so they show in the progress (an issuer
    that is due, for instance).
    """
    diagnostic = event.diagnostic_event
    if diagnostic is not None and diagnostic.severity == "warning" and not diagnostic.ephemeral:
        return f"warning: {diagnostic.message.strip()}", False
    if event.resource_pre_event is not None:
        return _what(event.resource_pre_event.metadata), False
    if event.res_outputs_event is not None:
        return _what(event.res_outputs_event.metadata), True
    return None


def _what(metadata: auto.events.StepEventMetadata) -> str:
    """`create Deployment linkerd:linkerd/linkerd-identity`: the kind tells a Service and a Deployment of one name apart."""
    return f"{metadata.op.value} {metadata.type.rsplit(':', 1)[-1]} {metadata.urn.split('::')[-1]}"


def _changes(summary: Mapping[Any, int] | None) -> dict[str, int]:
    return {getattr(kind, "value", str(kind)): count for kind, count in (summary or {}).items()}


def _outputs(outputs: Mapping[str, auto.OutputValue]) -> dict[str, Any]:
    return {key: SECRET_SHOWN if value.secret else value.value for key, value in outputs.items()}


class AutomationEngine:
    def __init__(self, project_dir: Path, environment: Mapping[str, str]) -> None:
        self.project_dir = project_dir
        self.environment = dict(environment)

    def _stack(self, name: str, skip_checkpoints: bool = False) -> auto.Stack:
        # The engine's own switch (pulumi's env.SkipCheckpoints): the state is written when the operation ends.
        environment = {**self.environment, SKIP_CHECKPOINTS: "true"} if skip_checkpoints else self.environment
        workspace = auto.LocalWorkspaceOptions(work_dir=str(self.project_dir), env_vars=environment)
        return auto.create_or_select_stack(stack_name=name, work_dir=str(self.project_dir), opts=workspace)

    def run(
        self,
        stack: str,
        operation: str,
        on_step: Callable[[str, bool], None],
        expect_no_changes: bool = False,
        skip_checkpoints: bool = False,
    ) -> tuple[dict[str, int], dict[str, Any]]:
        handle = self._stack(stack, skip_checkpoints)

        def on_event(event: auto.EngineEvent) -> None:
            step = _step(event)
            if step is not None:
                on_step(*step)

        common: dict[str, Any] = {"on_event": on_event, "color": "never", "parallel": PARALLEL}
        if operation == "up":
            up = handle.up(expect_no_changes=expect_no_changes, show_secrets=False, **common)
            return _changes(up.summary.resource_changes), _outputs(up.outputs)
        if operation == "preview":
            preview = handle.preview(expect_no_changes=expect_no_changes, diff=True, **common)
            return _changes(preview.change_summary), _outputs(handle.outputs())
        if operation == "refresh":
            refresh = handle.refresh(expect_no_changes=expect_no_changes, **common)
            return _changes(refresh.summary.resource_changes), _outputs(handle.outputs())
        if operation == "destroy":
            destroy = handle.destroy(**common)
            return _changes(destroy.summary.resource_changes), {}
        raise ValueError(f"unknown operation {operation!r}")

    def outputs(self, stack: str) -> dict[str, Any]:
        return _outputs(self._stack(stack).outputs())

    def unprotect(self, stack: str) -> None:
        # The Automation API has no call for it; the CLI's own command, on the same workspace and backend.
        subprocess.run(
            ["pulumi", "state", "unprotect", "--all", "--yes", "--stack", stack, "--cwd", str(self.project_dir)],
            env={**os.environ, **self.environment},
            check=True,
            capture_output=True,
            text=True,
            timeout=300,
        )

    def get_config(self, stack: str, key: str) -> str | None:
        found = self._stack(stack).get_all_config().get(f"{PROJECT}:{key}")
        return None if found is None or found.secret else found.value

    def set_config(self, stack: str, key: str, value: str) -> None:
        self._stack(stack).set_config(f"{PROJECT}:{key}", auto.ConfigValue(value))
