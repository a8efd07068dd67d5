"""The private Pulumi SDK names support/sdk_internals.py leans on are where it expects them.

When an SDK upgrade moves them, these tests fail first and say where to look, naming the SDK's
version, instead of every mock-evaluated test failing with an AttributeError deep inside the offline
monitor. Every private name the project uses is listed here; test_nothing_else_reaches_into_the_sdk
keeps it that way. The engine's `readStackOutputs` token (support/stack_outputs.py) is no SDK name: the
real engine answers it in e2e/test_full.py, where the source reads the target's outputs through it.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import re
from pathlib import Path

import pulumi
import pytest

from driver import sdk
from support import sdk_internals

# (module, name, what leans on it)
PRIVATE_NAMES = [
    ("pulumi.runtime.rpc", "_special_sig_key", "driver/sdk.py: a secret in the monitor's wire format"),
    ("pulumi.runtime.rpc", "_special_secret_sig", "driver/sdk.py: a secret in the monitor's wire format"),
    ("pulumi.runtime.rpc", "deserialize_properties", "driver/offline.py: a registration's inputs, secrets wrapped"),
    ("pulumi.runtime.sync_await", "_sync_await", "support/linkerd_cli.py and the offline evaluation: waiting in the SDK's loop"),
    ("pulumi.runtime.stack", "run_pulumi_func", "driver/offline.py: a program run to completion"),
    ("pulumi.runtime.config", "CONFIG", "support/config_sources.py: the keys set (typo detection)"),
    ("pulumi.runtime.config", "get_config_env", "support/config_sources.py: the keys set (typo detection)"),
    ("pulumi.runtime.settings", "ROOT", "driver/offline.py: one evaluation after another in one process"),
    ("pulumi.runtime.mocks", "MockMonitor", "driver/offline.py: the recording monitor"),
    ("pulumi.runtime.proto.resource_pb2", "RESOURCE_MONITOR_FEATURE_INVOKE_DEPENDS_ON", "driver/offline.py: invokes in preview"),
    ("pulumi_command._utilities", "get_invoke_opts_defaults", "support/linkerd_cli.py: the provider's own invoke options"),
]
SDK = f"pulumi {importlib.metadata.version('pulumi')}, pulumi-command {importlib.metadata.version('pulumi-command')}"
ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(("module", "name", "user"), PRIVATE_NAMES)
def test_private_sdk_name_is_still_there(module: str, name: str, user: str) -> None:
    found = getattr(importlib.import_module(module), name, None)
    assert found is not None, f"{SDK}: {module}.{name} is gone; support/sdk_internals.py must follow the SDK ({user})"


def test_the_runtime_config_holds_the_keys_set() -> None:
    """config_names() sees a key set through the SDK's own public setter."""
    pulumi.runtime.set_all_config({"sdk-check:key": "v"}, [])
    assert "sdk-check:key" in sdk_internals.config_names(), f"{SDK}: pulumi.runtime.config.CONFIG no longer holds the config"


def test_nothing_else_reaches_into_the_sdk() -> None:
    """Product code names the SDK's private modules only in support/sdk_internals.py."""
    private = re.compile(r"pulumi\.runtime\.(rpc|sync_await|stack|config|settings|mocks|proto)\b|_utilities|\b_sync_await\b")
    users = [
        str(path.relative_to(ROOT))
        for folder in ("support", "driver", "components")
        for path in sorted((ROOT / folder).glob("*.py"))
        if path.name != "sdk_internals.py" and private.search(path.read_text(encoding="utf-8"))
    ]
    users += ["__main__.py"] if private.search((ROOT / "__main__.py").read_text(encoding="utf-8")) else []
    assert users == []


class NoResources(pulumi.runtime.Mocks):
    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, object]]:
        return "id", {}

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, object], list[tuple[str, str]]]:
        return {}, []


def test_a_secret_is_recognised_in_the_monitors_wire_format() -> None:
    """What the SDK sends the monitor for a secret input, through the SDK's own serializer."""
    import asyncio

    from pulumi.runtime import rpc

    # The mock monitor, like the engine's, accepts secrets; without a monitor the SDK sends them plain.
    pulumi.runtime.set_mocks(NoResources(), project="sdk-check", stack="sdk-check")

    async def serialized(secret: bool) -> object:
        value = pulumi.Output.secret("s3cr3t") if secret else pulumi.Output.from_input("s3cr3t")
        return await rpc.serialize_property(value, [], None, keep_output_values=False)

    # A loop of its own: `asyncio.run` would leave the thread with no current loop for the next test.
    loop = asyncio.new_event_loop()
    try:
        wire = loop.run_until_complete(serialized(secret=True))
        assert sdk.is_secret_value(wire) and wire["value"] == "s3cr3t"  # type: ignore[index]
        assert loop.run_until_complete(serialized(secret=False)) == "s3cr3t"
    finally:
        loop.close()


def test_run_to_completion_awaits_the_whole_program() -> None:
    # Fresh settings, as driver/offline.py starts every program: outputs an earlier test left on a closed
    # event loop (the wire-format test's) would otherwise be awaited for ever.
    sdk_internals.reset_root_resource()
    pulumi.runtime.set_mocks(NoResources(), project="sdk-check", stack="sdk-check")
    seen: list[str] = []

    async def program() -> None:
        seen.append("ran")

    sdk.run_to_completion(program)
    assert seen == ["ran"]
