"""Where a stack's config values come from: the running Pulumi program, or a stack file the driver read."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Protocol

import pulumi

from support import sdk_internals
from support.project import PROJECT, SECRET_SHOWN


class ConfigSource(Protocol):
    """A stack's config values, as `support.config.load` reads them."""

    stack: str

    def get(self, key: str) -> str | None:
        """The value as Pulumi hands it to a program: text, lists and objects as JSON."""
        ...

    def is_secret(self, key: str) -> bool: ...

    def names(self) -> list[str]:
        """The keys of this project's namespace that are set."""
        ...


class RuntimeSource:
    """The config of the running Pulumi program."""

    def __init__(self) -> None:
        self._config = pulumi.Config(PROJECT)
        self.stack = pulumi.get_stack()

    def get(self, key: str) -> str | None:
        return self._config.get(key)

    def is_secret(self, key: str) -> bool:
        return pulumi.runtime.is_config_secret(f"{PROJECT}:{key}")

    def names(self) -> list[str]:
        prefix = f"{PROJECT}:"
        names = sdk_internals.config_names()
        return sorted(name[len(prefix) :] for name in names if isinstance(name, str) and name.startswith(prefix))


class SettingsSource:
    """A stack file's values as the driver reads them (secure values are present, never decrypted)."""

    def __init__(self, values: Mapping[str, Any], secret_keys: frozenset[str], stack: str) -> None:
        self._values, self._secret_keys, self.stack = values, secret_keys, stack

    def get(self, key: str) -> str | None:
        value = self._values.get(key)
        if key in self._secret_keys:
            return SECRET_SHOWN
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, bool):
            return "true" if value else "false"
        return json.dumps(value)

    def is_secret(self, key: str) -> bool:
        return key in self._secret_keys

    def names(self) -> list[str]:
        return sorted(key for key, value in self._values.items() if value not in (None, ""))
