"""What the offline evaluation needs from the Pulumi SDK beyond its public API, built on support/sdk_internals.py.

The private names themselves live in support/sdk_internals.py (the program uses some of them too), each
with a canary in tests/test_sdk.py.
"""

from __future__ import annotations

from typing import Any

from support.sdk_internals import SECRET_SIG, SECRET_SIG_KEY, run_to_completion

__all__ = ["is_secret_value", "run_to_completion"]


def is_secret_value(value: Any) -> bool:
    """Whether `value` is a secret in the wire format a monitor receives."""
    return isinstance(value, dict) and value.get(SECRET_SIG_KEY) == SECRET_SIG
