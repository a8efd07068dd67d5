"""What the driver knows before anything runs: the stacks' settings files, and its own error."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from components import upstream


class DriverError(Exception):
    """Stops the driver before (or instead of) running a stack; `exit_code` 2 means nothing ran."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class StackSettings:
    """What the driver reads from Pulumi.yaml and Pulumi.<stack>.yaml before anything runs."""

    values: Mapping[str, Any]

    def get(self, key: str) -> Any:
        value = self.values.get(key)
        return None if value in ("", None) else value

    @property
    def line(self) -> upstream.VersionLine:
        return upstream.VERSION_LINES.get(str(self.get("versionLine") or upstream.DEFAULT_LINE), upstream.CURRENT)


def read_settings(project_dir: Path, stack: str) -> StackSettings:
    project = yaml.safe_load((project_dir / "Pulumi.yaml").read_text(encoding="utf-8"))
    values: dict[str, Any] = {key: spec.get("default") for key, spec in (project.get("config") or {}).items()}
    stack_file = project_dir / f"Pulumi.{stack}.yaml"
    if not stack_file.is_file():
        raise DriverError(f"{stack_file} is missing: each stack needs its settings file")
    prefix = f"{project['name']}:"
    for key, value in (yaml.safe_load(stack_file.read_text(encoding="utf-8")).get("config") or {}).items():
        if key.startswith(prefix):
            values[key[len(prefix) :]] = value
    return StackSettings(values)
