"""Refusing hostile YAML from the parser's events, before libyaml composes (and expands or overflows) anything."""

from __future__ import annotations

from collections.abc import Iterable

import yaml

# The C loader where pyyaml has it (several times faster), else the pure-Python one; both are safe loaders.
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def nesting_depth_change(event: yaml.Event) -> int:
    """+1 where a mapping or sequence opens, -1 where one closes, else 0."""
    if isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
        return 1
    if isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
        return -1
    return 0


def uses_aliases(event: yaml.Event) -> bool:
    """An alias (*name) or an anchor (&name): what an alias bomb is made of."""
    return isinstance(event, yaml.AliasEvent) or bool(getattr(event, "anchor", None))


def shape_problem(events: Iterable[yaml.Event], nesting_limit: int, *, aliases: bool) -> str | None:
    """What is wrong with a document's shape (aliases where `aliases` is False, nesting over the limit), or None."""
    depth = 0
    for event in events:
        if not aliases and isinstance(event, yaml.AliasEvent):
            return "uses YAML aliases (*name): write each value out"
        depth += nesting_depth_change(event)
        if depth > nesting_limit:
            return f"nests deeper than {nesting_limit} levels"
    return None
