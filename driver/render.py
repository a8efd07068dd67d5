"""`render`: every Kubernetes object each stack would apply, as YAML, without a cluster or the Pulumi CLI.

The real program runs under Pulumi's mocks (driver.offline), one stack per subprocess (Pulumi's
runtime settings are process-wide), each into a scratch folder; only the stacks asked for are then
placed in `<out>/<stack>/` (driver.render_folder: never over a file render did not write). The
source reads the target's outputs, so the target is evaluated first even when only the source is
asked for (in the scratch folder, not written out). Secrets are written as `[secret]`, certificates
as `[generated]` and machine paths as placeholders, so two renders of the same inputs are
byte-identical (driver.render_stable says why masked rather than deterministic). What only the
linkerd CLI can render comes from the real CLI of the pinned release; without it the render is
incomplete (exit RENDERED_INCOMPLETELY): what it would have rendered, and every object that
depends on it (Edge Stack's inject patch), is listed in NOT-RENDERED.md instead of guessed. Steps
that need a live cluster are listed there too, and are no failure.
"""

from __future__ import annotations

import json
import os
import re
import runpy
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from driver.offline import OFFLINE_CLUSTERS_ENV, ProgramMocks, Registration, cli_args, evaluate, mask_secrets, needs_a_cluster
from driver.render_folder import place, plan
from driver.render_stable import GENERATED, Masks, Placeholders, kubectl_order, map_strings, mask_field
from driver.settings import DriverError, StackSettings, read_settings
from support.clusters import OFFLINE_ENV
from support.errors import ConfigError
from support.project import SECRET_SHOWN as SECRET
from support.tools import linkerd_client_version

STACK_ORDER = ("target", "source")
# The exit code of a render that left out what only a missing tool could render.
RENDERED_INCOMPLETELY = 3
# Marks what a stand-in answered, so no object built from it is written as if real.
NOT_RENDERED_MARK = "aes-linkerd2.render/not-rendered"


def render_stacks(
    project_dir: Path,
    stacks: Sequence[str],
    out_dir: Path,
    overrides: Mapping[str, Mapping[str, Any]],
    which: Callable[[str], str | None] = shutil.which,
) -> dict[str, Any]:
    """Render each stack of `stacks` into out_dir/<stack>/ (a relative out_dir starts at the current directory)."""
    out = Path(os.path.abspath(out_dir))
    summary: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="aes-linkerd2-render-") as scratch_dir:
        scratch = Path(scratch_dir)
        for stack in STACK_ORDER:
            if stack in stacks or (stack == "target" and "source" in stacks):
                result = _render_in_process(project_dir, stack, scratch, overrides.get(stack, {}), for_source=stack not in stacks)
                if stack in stacks:
                    summary[stack] = {**result, "folder": str(out / stack)}
        # Every folder checked before any is written.
        place([plan(scratch / stack, out / stack) for stack in summary])
    return summary


def _render_in_process(
    project_dir: Path, stack: str, scratch: Path, overrides: Mapping[str, Any], *, for_source: bool
) -> dict[str, Any]:
    command = [
        sys.executable, "-m", "driver.render_worker", "--project-dir", str(project_dir), "--stack", stack,
        "--out", str(scratch / stack), "--outputs", str(scratch / f"{stack}.outputs.json"),
        "--overrides", json.dumps(dict(overrides)),
    ]  # fmt: skip
    if stack == "source":
        command += ["--target-outputs", str(scratch / "target.outputs.json")]
    environment = {**os.environ, OFFLINE_ENV: "1", "PYTHONPATH": str(project_dir)}
    # The target's anchor Secret, which the source's issuer is signed with, in a folder both renders share.
    environment[OFFLINE_CLUSTERS_ENV] = str(scratch / "clusters")
    done = subprocess.run(command, capture_output=True, text=True, env=environment, cwd=project_dir, check=False)
    if done.returncode != 0:
        detail = done.stderr.strip() or done.stdout.strip() or f"exit status {done.returncode}"
        if for_source:
            detail = f"stack source needs the target's outputs, and evaluating the target for them failed: {detail}"
        raise DriverError(detail, exit_code=1)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def incomplete(summary: Mapping[str, Any]) -> list[str]:
    """One line per stack that a missing tool left incomplete, saying which and how to get it."""
    return [
        f"{stack}: rendered INCOMPLETELY: the linkerd CLI {result['missingCli']} was not found, so Linkerd's objects "
        f"and Edge Stack's inject patch are left out (listed in {result['folder']}/NOT-RENDERED.md); "
        "`./aes-linkerd2 setup` gets it"
        for stack, result in summary.items()
        if result.get("missingCli")
    ]


class RenderMocks(ProgramMocks):
    """The program's mocks, listing what only a cluster or a missing CLI could answer instead of guessing."""

    def __init__(self, linkerd: str, pinned: str, stack_references: Mapping[str, Mapping[str, Any]]) -> None:
        super().__init__(stack_references)
        self.pinned = pinned
        self.real_cli = linkerd_client_version(linkerd) == pinned
        # Whether anything was left out for want of the CLI (not for want of a cluster).
        self.missing_cli = False

    def stand_in(self, command: str, stdin: str | None) -> str | None:
        words = cli_args(command)
        if words[:1] == ["version"] and not self.real_cli:
            return self.pinned + "\n"
        if self.real_cli and not needs_a_cluster(command):
            return None
        reason = "needs the target cluster" if needs_a_cluster(command) else f"needs the linkerd CLI {self.pinned}"
        self.missing_cli = self.missing_cli or not needs_a_cluster(command)
        self.not_rendered.append(f"`{command}` ({reason})")
        return self.inject_stand_in(stdin or "", reason) if words[:1] == ["inject"] else ""

    def inject_stand_in(self, stdin: str, reason: str) -> str:
        """The Deployment with a marked annotation: the patch built from it is left out, not written empty."""
        deployment = yaml.safe_load(stdin)
        metadata = deployment.setdefault("spec", {}).setdefault("template", {}).setdefault("metadata", {})
        metadata["annotations"] = {**(metadata.get("annotations") or {}), NOT_RENDERED_MARK: reason}
        return json.dumps(deployment)


def _tidy(value: Any) -> Any:
    """Whole numbers as integers (the wire format has only floats), recursively."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _tidy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_tidy(v) for v in value]
    return value


def _mark(value: Any) -> str | None:
    """The reason a stand-in left in `value`, if one did."""
    if isinstance(value, dict):
        if NOT_RENDERED_MARK in value:
            return str(value[NOT_RENDERED_MARK])
        value = list(value.values())
    if isinstance(value, list):
        return next((m for m in map(_mark, value) if m is not None), None)
    return None


def _days_masked(value: Any) -> Any:
    """`daysLeft` masked beside a masked `notAfter`: counted from the clock, it turns at any second of the render."""
    if isinstance(value, list):
        return [_days_masked(item) for item in value]
    if not isinstance(value, dict):
        return value
    masked = {key: _days_masked(item) for key, item in value.items()}
    if masked.get("notAfter") == GENERATED and "daysLeft" in masked:
        masked["daysLeft"] = GENERATED
    return masked


def _file_name(resource: Registration) -> str:
    kind = resource.kind.lower()
    # Several patches may touch one object; each is its own resource, named for what it does.
    name = resource.name if kind.endswith("patch") else resource.object_name or resource.name
    parts = [kind, resource.namespace or "", name]
    return re.sub(r"[^a-z0-9.-]+", "-", "-".join(p for p in parts if p).lower()) + ".yaml"


def _dump(value: Any) -> str:
    return yaml.safe_dump(value, sort_keys=False, width=120)


def write_objects(
    registrations: Sequence[Registration], folder: Path, masks: Masks, paths: Placeholders
) -> tuple[int, list[dict[str, Any]], list[str]]:
    """One YAML file per Kubernetes object (patches included), the CLI steps in steps.yaml.

    Returns the count of objects, the steps, and what was left out because a stand-in built it.
    """
    folder.mkdir(parents=True)
    count, steps, left_out = 0, [], []
    for resource in registrations:
        body = _tidy(mask_secrets(resource.wrapped, SECRET))
        if resource.type.startswith("kubernetes:") and "apiVersion" in body:
            reason = _write_object(resource, body, folder, masks)
            count += reason is None
            left_out += [reason] if reason is not None else []
        elif resource.type == "command:local:Command":
            step = {"name": resource.name, **{k: body[k] for k in ("create", "delete") if k in body}}
            steps.append(map_strings(map_strings(step, masks.text), paths.text))
    (folder / "steps.yaml").write_text(_dump(sorted(steps, key=lambda s: s["name"])), encoding="utf-8")
    return count, steps, left_out


def _write_object(resource: Registration, body: dict[str, Any], folder: Path, masks: Masks) -> str | None:
    """Write one Kubernetes object's file; or, for one a stand-in built, say why it is left out."""
    reason = _mark(body)
    if reason is not None:
        where = "/".join(p for p in (resource.namespace, resource.object_name) if p)
        return f"{resource.kind} {where} (resource `{resource.name}`): built from a step that {reason}"
    for field in resource.ignore_changes:  # what the program itself declares regenerated at every render
        body = mask_field(body, field)
    path = folder / _file_name(resource)
    if path.exists():
        raise DriverError(f"two objects render to {path.name}")
    header = f"# {resource.type} {resource.name}\n"
    path.write_text(header + _dump(kubectl_order(map_strings(body, masks.text))), encoding="utf-8")
    return None


def _stack_values(project_dir: Path, stack: str, overrides: Mapping[str, Any]) -> tuple[StackSettings, dict[str, Any], list[str]]:
    """The stack's settings with the overrides, its config values (secrets shown as such) and its secret keys."""
    values = {**read_settings(project_dir, stack).values, **overrides}
    # An override may be an encrypted value too (`{"secure": ...}`), as a stack file holds it.
    settings = StackSettings(values, frozenset(k for k, v in values.items() if isinstance(v, dict) and "secure" in v), stack)
    secret_keys = sorted(settings.secret_keys)
    values = {key: SECRET if key in settings.secret_keys else value for key, value in settings.values.items()}
    return settings, {key: value for key, value in values.items() if value not in (None, "")}, secret_keys


def _target_references(settings: StackSettings, values: Mapping[str, Any], target_outputs: Path | None) -> dict[str, Any]:
    """What the source reads as the target's outputs: the target's render (the target reads none)."""
    if settings.get("role") != "source":
        return {}
    if target_outputs is None or not target_outputs.is_file():
        raise DriverError(f"stack {settings.stack}: rendering the source needs the target's outputs")
    return {str(values.get("targetStack")): json.loads(target_outputs.read_text(encoding="utf-8"))}


def _write_not_rendered(out: Path, stack: str, not_rendered: list[str]) -> None:
    if not_rendered:
        lines = [f"# Not rendered for stack {stack}", "", *(f"- {item}" for item in not_rendered), ""]
        (out / "NOT-RENDERED.md").write_text("\n".join(lines), encoding="utf-8")


def render_stack(
    project_dir: Path,
    stack: str,
    out: Path,
    overrides: Mapping[str, Any],
    target_outputs: Path | None,
    *,
    outputs_file: Path | None = None,
) -> dict[str, Any]:
    """Evaluate one stack and write its files into `out` (a new folder); its outputs for the source into `outputs_file`."""
    settings, values, secret_keys = _stack_values(project_dir, stack, overrides)
    references = _target_references(settings, values, target_outputs)
    try:
        pinned, linkerd = settings.linkerd_version, settings.linkerd_cli()
    except ConfigError as error:  # what the program would stop with, said without evaluating it
        raise DriverError(f"stack {stack}: {error}", exit_code=1) from None
    mocks = RenderMocks(linkerd, pinned, references)
    evaluation = evaluate(
        lambda: runpy.run_path(str(project_dir / "__main__.py")), mocks, stack=stack, config=values, secret_keys=secret_keys
    )
    if evaluation.error is not None:
        raise DriverError(f"stack {stack}: {evaluation.error}", exit_code=1)
    outputs = {k: SECRET if k in evaluation.secret_outputs else v for k, v in evaluation.outputs.items()}
    # Learnt from everything that may hold a certificate: the objects, the outputs, and what the certificate steps printed.
    masks = Masks(
        [*(mask_secrets(r.wrapped, SECRET) for r in evaluation.registrations), outputs, references, mocks.command_stdouts]
    )
    paths = Placeholders(project_dir, linkerd)
    count, steps, left_out = write_objects(evaluation.registrations, out, masks, paths)
    if outputs_file is not None:
        # What the source reads as the target's stack outputs (secrets stay masked); not written out.
        outputs_file.write_text(json.dumps(outputs, indent=2, sort_keys=True), encoding="utf-8")
    shown = json.dumps(_days_masked(map_strings(outputs, masks.text)), indent=2, sort_keys=True) + "\n"
    (out / "outputs.json").write_text(shown, encoding="utf-8")
    not_rendered = sorted({paths.text(masks.text(item)) for item in [*mocks.not_rendered, *left_out]})
    _write_not_rendered(out, stack, not_rendered)
    return {
        "objects": count,
        "steps": len(steps),
        "notRendered": not_rendered,
        "missingCli": pinned if mocks.missing_cli else None,
    }
