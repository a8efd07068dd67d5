"""A stack's outputs, read through the engine while the program is evaluated, before anything is registered.

`pulumi:pulumi:readStackOutputs` is the engine's builtin behind StackReference; read this way the values
are plain (secrets unwrapped), so the caller marks secret what must stay secret.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pulumi

from support.sdk_internals import READ_STACK_OUTPUTS

# The engine rewrites a running stack's checkpoint as it goes; on the real engine one read met it half
# written ("failed to load checkpoint: EOF", e2e/test_full.py): such a read is tried again, a few times.
HALF_WRITTEN = "failed to load checkpoint"
ATTEMPTS = 4

Invoke = Callable[[str, dict[str, Any]], Any]


def read(name: str, invoke: Invoke = pulumi.runtime.invoke, attempts: int = ATTEMPTS) -> dict[str, Any]:
    """`name`'s outputs as its last update left them; {} before its first."""
    try:
        result = invoke(READ_STACK_OUTPUTS, {"name": name})
    except Exception as error:
        if HALF_WRITTEN not in str(error) or attempts <= 1:
            raise
        time.sleep(0.5)
        return read(name, invoke, attempts - 1)
    return dict((result.value or {}).get("outputs") or {})
