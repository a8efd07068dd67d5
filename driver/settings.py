"""What the driver knows before anything runs: the stacks' settings files, and its own error."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from support import config, tools, upstream
from support.config_model import StackConfig
from support.config_sources import SettingsSource
from support.config_values import Reader
from support.yaml_events import SAFE_LOADER, shape_problem

# The stacks, in the order `up` runs them (the target owns what the source reads).
STACKS = ("target", "source")


class DriverError(Exception):
    """Stops the driver before (or instead of) running a stack; `exit_code` 2 means nothing ran."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class StackSettings:
    """What the driver reads from Pulumi.yaml and Pulumi.<stack>.yaml before anything runs.

    Raw values, so each check of the pre-flight can run on its own; every fact read from them goes
    through the program's own parser (support/config.py), with its rules: an unknown `versionLine`
    is refused here as it is there.
    """

    values: Mapping[str, Any]
    # Keys whose value the stack file holds encrypted (`secure:`): set, but never read here.
    secret_keys: frozenset[str] = frozenset()
    stack: str = ""

    def get(self, key: str) -> Any:
        value = self.values.get(key)
        return None if value in ("", None) else value

    def _reader(self) -> Reader:
        return Reader(SettingsSource(self.values, self.secret_keys, self.stack))

    def config(self) -> StackConfig:
        """The whole stack config, as the program parses it (no cluster asked); raises ConfigError."""
        return config.load(SettingsSource(self.values, self.secret_keys, self.stack))

    @property
    def line(self) -> upstream.VersionLine:
        """The stack's version line; raises ConfigError for one the program would refuse."""
        return config.version_line(self._reader())

    @property
    def linkerd_version(self) -> str:
        """The linkerd release the stack pins: its `linkerdVersion`, else its line's; raises ConfigError."""
        return config.linkerd_version(self._reader(), self.line)

    def edge_stack_product(self) -> tuple[upstream.EdgeStackProduct, str]:
        """The Edge Stack product and release the stack pins; raises ConfigError."""
        return config.edge_stack_product(self._reader(), self.line)

    def linkerd_cli(self, find: Callable[[str], str | None] = tools.find_linkerd) -> str:
        """The linkerd CLI the program would run (support.tools.linkerd_cli); raises ConfigError."""
        return tools.linkerd_cli(self._reader().path("linkerdCli"), self.linkerd_version, find)


def read_settings(project_dir: Path, stack: str) -> StackSettings:
    project = _mapping(project_dir / "Pulumi.yaml")
    values = _declared_defaults(project, project_dir / "Pulumi.yaml")
    stack_file = project_dir / f"Pulumi.{stack}.yaml"
    if not stack_file.is_file():
        raise DriverError(f"{stack_file} is missing: each stack needs its settings file")
    own = _own_keys(_config_section(stack_file), f"{project.get('name')}:")
    secret_keys = frozenset(key for key, value in own.items() if isinstance(value, dict) and "secure" in value)
    return StackSettings({**values, **own}, secret_keys, stack)


def _declared_defaults(project: Mapping[str, Any], path: Path) -> dict[str, Any]:
    """Each key Pulumi.yaml declares, with its default."""
    declared = project.get("config") or {}
    if not isinstance(declared, dict) or not all(isinstance(spec, dict) for spec in declared.values()):
        raise DriverError(f"{path}: `config` must map each key to its declaration")
    return {key: spec.get("default") for key, spec in declared.items()}


def _config_section(stack_file: Path) -> Mapping[str, Any]:
    section = _mapping(stack_file).get("config") or {}
    if not isinstance(section, dict) or not all(isinstance(key, str) for key in section):
        found = "keys that are not text" if isinstance(section, dict) else f"a {type(section).__name__}"
        raise DriverError(f"{stack_file}: `config` must be a mapping of <project>:<key> to values, not {found}")
    return section


def _own_keys(config_section: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """The keys of this project's namespace, without the prefix."""
    return {key[len(prefix) :]: value for key, value in config_section.items() if key.startswith(prefix)}


# A settings file is a few kilobytes, a few levels deep; anything near these is not one.
SETTINGS_LIMIT_BYTES = 1024 * 1024
SETTINGS_NESTING_LIMIT = 50


def _mapping(path: Path) -> dict[str, Any]:
    """A settings file's top-level mapping: bounded in size, without YAML aliases (no alias bombs), never echoed."""
    try:
        size = path.stat().st_size
        if size > SETTINGS_LIMIT_BYTES:
            raise DriverError(f"{path} is {size} bytes: a settings file is at most {SETTINGS_LIMIT_BYTES}")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise DriverError(f"{path} cannot be read ({error.__class__.__name__})") from None
    try:
        problem = shape_problem(yaml.parse(text, Loader=SAFE_LOADER), SETTINGS_NESTING_LIMIT, aliases=False)
        if problem:
            raise DriverError(f"{path} {problem}")
        document = yaml.load(text, Loader=SAFE_LOADER)  # noqa: S506 (a safe loader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise DriverError(f"{path} is not valid YAML{where}") from None
    except (yaml.YAMLError, RecursionError):
        raise DriverError(f"{path} is not valid YAML") from None
    if not isinstance(document, dict):
        what = "empty" if document is None else f"a {type(document).__name__}"
        raise DriverError(f"{path} is {what}: a settings file is a mapping with a `config:` section")
    return document
