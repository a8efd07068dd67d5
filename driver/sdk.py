"""The Pulumi SDK internals the offline evaluation leans on, in one place.

The SDK has no public API for running a program under mocks to completion outside pytest's event
loop, nor for recognising a secret in the wire format a monitor receives. These names are private
and may move in any release: tests/test_sdk.py fails loudly, naming this module, when an upgrade
moves them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pulumi.runtime import rpc
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

# How a secret travels to the monitor: {SECRET_SIG_KEY: SECRET_SIG, "value": ...}.
SECRET_SIG_KEY: str = rpc._special_sig_key
SECRET_SIG: str = rpc._special_secret_sig


def is_secret_value(value: Any) -> bool:
    return isinstance(value, dict) and value.get(SECRET_SIG_KEY) == SECRET_SIG


def run_to_completion(program: Callable[[], Awaitable[None]]) -> None:
    """Run `program` as the SDK runs a stack's, waiting for every output and registration."""
    _sync_await(run_pulumi_func(program))
