"""`render`: every Kubernetes object each stack would apply, as YAML, without a cluster or the Pulumi CLI.

The real program runs under Pulumi's mocks (driver.offline), one stack per subprocess (Pulumi's
runtime settings are process-wide). Secrets are written as `[secret]`. The certificates are fresh
ones the render makes itself (`up` makes its own, once). What only the linkerd CLI can render comes
from the real CLI of the pinned release; without it, and for steps that need a live cluster, the
step is listed in NOT-RENDERED.md instead of guessed.
"""

from __future__ import annotations

import json
import os
import re
import runpy
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from driver.offline import ProgramMocks, Registration, cli_args, evaluate, mask_secrets, needs_a_cluster
from driver.settings import DriverError, read_settings
from support import config as stack_config
from support.tools import find_linkerd, linkerd_client_version

SECRET = stack_config.SECRET_SHOWN


def render_stacks(
    project_dir: Path,
    stacks: Sequence[str],
    out_dir: Path,
    overrides: Mapping[str, Mapping[str, Any]],
    which: Callable[[str], str | None] = shutil.which,
) -> dict[str, Any]:
    """Render each stack into out_dir/<stack>/; the target first, whose outputs the source reads."""
    summary: dict[str, Any] = {}
    environment = {**os.environ, stack_config.OFFLINE_ENV: "1", "PYTHONPATH": str(project_dir)}
    for stack in ("target", "source"):
        if stack not in stacks and not (stack == "target" and "source" in stacks):
            continue
        folder = out_dir / stack
        command = [
            sys.executable, "-m", "driver.render_worker", "--project-dir", str(project_dir), "--stack", stack,
            "--out", str(folder), "--overrides", json.dumps(dict(overrides.get(stack, {}))),
        ]  # fmt: skip
        if stack == "source":
            command += ["--target-outputs", str(out_dir / "target" / "outputs.json")]
        done = subprocess.run(command, capture_output=True, text=True, env=environment, cwd=project_dir, check=False)
        if done.returncode != 0:
            raise DriverError(f"render of stack {stack} failed: {done.stderr.strip() or done.stdout.strip()}", exit_code=1)
        if stack in stacks:
            summary[stack] = json.loads(done.stdout)
    return summary


class RenderMocks(ProgramMocks):
    """The program's mocks, listing what only a cluster or a missing CLI could answer instead of guessing."""

    def __init__(self, linkerd: str, pinned: str, stack_references: Mapping[str, Mapping[str, Any]]) -> None:
        super().__init__(stack_references)
        self.pinned = pinned
        self.real_cli = linkerd_client_version(linkerd) == pinned

    def stand_in(self, command: str, stdin: str | None) -> str | None:
        words = cli_args(command)
        if words[:1] == ["version"] and not self.real_cli:
            return self.pinned + "\n"
        if self.real_cli and not needs_a_cluster(command):
            return None
        reason = "needs the target cluster" if needs_a_cluster(command) else f"needs the linkerd CLI {self.pinned}"
        self.not_rendered.append(f"`{command}` ({reason})")
        # inject only adds annotations: without the CLI the Deployment is passed through unchanged.
        return stdin or "" if words[:1] == ["inject"] else ""


def _tidy(value: Any) -> Any:
    """Whole numbers as integers (the wire format has only floats), recursively."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _tidy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_tidy(v) for v in value]
    return value


def _file_name(resource: Registration) -> str:
    kind = resource.kind.lower()
    # Several patches may touch one object; each is its own resource, named for what it does.
    name = resource.name if kind.endswith("patch") else resource.object_name or resource.name
    parts = [kind, resource.namespace or "", name]
    return re.sub(r"[^a-z0-9.-]+", "-", "-".join(p for p in parts if p).lower()) + ".yaml"


def write_objects(registrations: Sequence[Registration], folder: Path) -> tuple[int, list[dict[str, Any]]]:
    """One YAML file per Kubernetes object (patches included); the CLI steps in steps.yaml."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    count, steps = 0, []
    for resource in registrations:
        body = _tidy(mask_secrets(resource.wrapped, SECRET))
        if resource.type.startswith("kubernetes:") and "apiVersion" in body:
            # The order kubectl prints: apiVersion, kind, metadata, then the rest.
            body = {key: body[key] for key in ("apiVersion", "kind", "metadata") if key in body} | body
            path = folder / _file_name(resource)
            if path.exists():
                raise DriverError(f"two objects render to {path.name}")
            header = f"# {resource.type} {resource.name}\n"
            path.write_text(header + yaml.safe_dump(body, sort_keys=False), encoding="utf-8")
            count += 1
        elif resource.type == "command:local:Command":
            steps.append({"name": resource.name, **{k: body[k] for k in ("create", "delete") if k in body}})
    (folder / "steps.yaml").write_text(yaml.safe_dump(sorted(steps, key=lambda s: s["name"]), sort_keys=False), encoding="utf-8")
    return count, steps


def render_stack(
    project_dir: Path, stack: str, out: Path, overrides: Mapping[str, Any], target_outputs: Path | None
) -> dict[str, Any]:
    settings = read_settings(project_dir, stack)
    settings = type(settings)({**settings.values, **overrides})
    values: dict[str, Any] = {}
    secret_keys: list[str] = []
    for key, value in settings.values.items():
        if isinstance(value, dict) and "secure" in value:
            values[key], secret_keys = SECRET, [*secret_keys, key]
        elif value not in (None, ""):
            values[key] = value
    references: dict[str, Any] = {}
    if settings.get("role") == "source":
        if target_outputs is None or not target_outputs.is_file():
            raise DriverError("rendering the source needs the target's render first")
        references[str(values.get("targetStack"))] = json.loads(target_outputs.read_text(encoding="utf-8"))
    pinned = settings.linkerd_version
    mocks = RenderMocks(
        str(values.get("linkerdCli") or find_linkerd(pinned) or "linkerd"),
        pinned,
        references,
    )
    evaluation = evaluate(
        lambda: runpy.run_path(str(project_dir / "__main__.py")), mocks, stack=stack, config=values, secret_keys=secret_keys
    )
    if evaluation.error is not None:
        raise DriverError(f"stack {stack}: {evaluation.error}", exit_code=1)
    count, steps = write_objects(evaluation.registrations, out)
    outputs = {k: SECRET if k in evaluation.secret_outputs else v for k, v in evaluation.outputs.items()}
    # The source reads these as the target's stack outputs; stand-ins keep the key material out.
    (out / "outputs.json").write_text(json.dumps(outputs, indent=2, sort_keys=True), encoding="utf-8")
    if mocks.not_rendered:
        lines = [f"# Not rendered for stack {stack}", "", *(f"- {item}" for item in mocks.not_rendered), ""]
        (out / "NOT-RENDERED.md").write_text("\n".join(lines), encoding="utf-8")
    return {"objects": count, "steps": len(steps), "notRendered": mocks.not_rendered, "folder": str(out)}
