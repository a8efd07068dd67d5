"""What the driver knows before anything runs: the stacks' settings files, and its own error."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from support import upstream

# The stacks, in the order `up` runs them (the target owns what the source reads).
STACKS = ("target", "source")


class DriverError(Exception):
    """Stops the driver before (or instead of) running a stack; `exit_code` 2 means nothing ran."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class StackSettings:
    """What the driver reads from Pulumi.yaml and Pulumi.<stack>.yaml before anything runs."""

    values: Mapping[str, Any]
    # Keys whose value the stack file holds encrypted (`secure:`): set, but never read here.
    secret_keys: frozenset[str] = frozenset()

    def get(self, key: str) -> Any:
        value = self.values.get(key)
        return None if value in ("", None) else value

    @property
    def line(self) -> upstream.VersionLine:
        return upstream.VERSION_LINES.get(str(self.get("versionLine") or upstream.DEFAULT_LINE), upstream.CURRENT)

    @property
    def linkerd_version(self) -> str:
        """The linkerd release the stack pins: its `linkerdVersion`, else its line's."""
        return str(self.get("linkerdVersion") or self.line.linkerd_versions[0])


def read_settings(project_dir: Path, stack: str) -> StackSettings:
    project = _mapping(project_dir / "Pulumi.yaml")
    declared = project.get("config") or {}
    if not isinstance(declared, dict) or not all(isinstance(spec, dict) for spec in declared.values()):
        raise DriverError(f"{project_dir / 'Pulumi.yaml'}: `config` must map each key to its declaration")
    values: dict[str, Any] = {key: spec.get("default") for key, spec in declared.items()}
    stack_file = project_dir / f"Pulumi.{stack}.yaml"
    if not stack_file.is_file():
        raise DriverError(f"{stack_file} is missing: each stack needs its settings file")
    prefix = f"{project.get('name')}:"
    config = _mapping(stack_file).get("config") or {}
    if not isinstance(config, dict) or not all(isinstance(key, str) for key in config):
        found = "keys that are not text" if isinstance(config, dict) else f"a {type(config).__name__}"
        raise DriverError(f"{stack_file}: `config` must be a mapping of <project>:<key> to values, not {found}")
    secret_keys = set()
    for key, value in config.items():
        if key.startswith(prefix):
            values[key[len(prefix) :]] = value
            if isinstance(value, dict) and "secure" in value:
                secret_keys.add(key[len(prefix) :])
    return StackSettings(values, frozenset(secret_keys))


# A settings file is a few kilobytes, a few levels deep; anything near these is not one.
SETTINGS_LIMIT_BYTES = 1024 * 1024
SETTINGS_NESTING_LIMIT = 50


def _check_events(path: Path, events: Iterator[yaml.Event]) -> None:
    """Refuse aliases and deep nesting from the parser's events, before libyaml composes (and overflows) anything."""
    depth = 0
    for event in events:
        if isinstance(event, yaml.AliasEvent):
            raise DriverError(f"{path} uses YAML aliases (*name): write each value out")
        if isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
            depth += 1
            if depth > SETTINGS_NESTING_LIMIT:
                raise DriverError(f"{path} nests deeper than {SETTINGS_NESTING_LIMIT} levels")
        elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
            depth -= 1


def _mapping(path: Path) -> dict[str, Any]:
    """A settings file's top-level mapping: bounded in size, without YAML aliases (no alias bombs), never echoed."""
    try:
        size = path.stat().st_size
        if size > SETTINGS_LIMIT_BYTES:
            raise DriverError(f"{path} is {size} bytes: a settings file is at most {SETTINGS_LIMIT_BYTES}")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise DriverError(f"{path} cannot be read ({error.__class__.__name__})") from None
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        _check_events(path, yaml.parse(text, Loader=loader))
        document = yaml.load(text, Loader=loader)  # noqa: S506 (a safe loader)
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
