"""Every Pulumi SDK name the project uses that the SDK does not publish, in one place.

These names are private (or engine-internal tokens) and may move in any release; tests/test_sdk.py
has a canary for each, failing with the SDK's version and this module's name when an upgrade moves
one. Nothing else in the project reaches into the SDK's private modules.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import pulumi.runtime
import pulumi_command._utilities as command_utilities
from pulumi.runtime import config as runtime_config
from pulumi.runtime import rpc
from pulumi.runtime import settings as runtime_settings
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.proto import resource_pb2
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

# The engine's builtin behind StackReference: a stack's last outputs, plain (secrets unwrapped).
READ_STACK_OUTPUTS = "pulumi:pulumi:readStackOutputs"
# How a secret travels to the monitor: {SECRET_SIG_KEY: SECRET_SIG, "value": ...}.
SECRET_SIG_KEY: str = rpc._special_sig_key
SECRET_SIG: str = rpc._special_secret_sig
# The monitor feature that lets an invoke run in preview while it depends only on what is read.
INVOKE_DEPENDS_ON = resource_pb2.RESOURCE_MONITOR_FEATURE_INVOKE_DEPENDS_ON

__all__ = [
    "INVOKE_DEPENDS_ON",
    "READ_STACK_OUTPUTS",
    "SECRET_SIG",
    "SECRET_SIG_KEY",
    "MockMonitor",
    "command_invoke_options",
    "config_names",
    "deserialize_properties",
    "reset_root_resource",
    "run_to_completion",
    "wait_for",
]


def wait_for(awaitable: Awaitable[Any]) -> Any:
    """Wait for `awaitable` by pumping the SDK's event loop, as the SDK's own blocking invokes do."""
    return _sync_await(awaitable)


def run_to_completion(program: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run `program` as the SDK runs a stack's, waiting for every output and registration."""
    _sync_await(run_pulumi_func(program))


def config_names() -> set[str]:
    """Every `<namespace>:<key>` of config set for this run, as the runtime holds them (file and environment)."""
    return {*runtime_config.CONFIG.get(), *runtime_config.get_config_env()}


def command_invoke_options() -> pulumi.InvokeOptions:
    """The invoke options pulumi-command's own `local.run` sends (its pinned plugin version included)."""
    return command_utilities.get_invoke_opts_defaults()


def deserialize_properties(struct: Any) -> Any:
    """A registration's properties as the SDK reads them back, secrets still wrapped."""
    return rpc.deserialize_properties(struct)


def reset_root_resource() -> None:
    """Forget the last evaluation's root stack resource, so a new evaluation in this process registers its own."""
    runtime_settings.ROOT.set(None)
