"""The error every check of the program's input raises: it names the config key and shows the value."""

from __future__ import annotations

import pulumi

from support.project import PROJECT

# The longest value an error shows, so a huge or hostile value cannot flood the output.
SHOWN_VALUE_LIMIT = 200


def shown(value: object) -> str:
    """A value as an error shows it: repr (control characters escaped), at most SHOWN_VALUE_LIMIT characters."""
    text = repr(value)
    if len(text) <= SHOWN_VALUE_LIMIT:
        return text
    return f"{text[: SHOWN_VALUE_LIMIT - 40]}... ({len(text)} characters)"


class ConfigError(pulumi.RunError):
    """A configuration value that cannot work; raised before the first resource is registered."""

    def __init__(self, key: str, value: object, reason: str) -> None:
        super().__init__(f"config {PROJECT}:{key} = {shown(value)}: {reason}")
        self.key = key
        self.value = value
