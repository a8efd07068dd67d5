"""The private Pulumi SDK names driver/sdk.py leans on are where it expects them.

When an SDK upgrade moves them, these tests fail first and say where to look, instead of every
mock-evaluated test failing with an AttributeError deep inside the offline monitor.
"""

from __future__ import annotations

import importlib
import importlib.metadata

import pulumi
import pytest

from driver import sdk

PRIVATE_NAMES = [
    ("pulumi.runtime.rpc", "_special_sig_key"),
    ("pulumi.runtime.rpc", "_special_secret_sig"),
    ("pulumi.runtime.sync_await", "_sync_await"),
    ("pulumi.runtime.stack", "run_pulumi_func"),
    # support/linkerd_cli.py: a render started now and read later, with the provider's own invoke options
    ("pulumi_command._utilities", "get_invoke_opts_defaults"),
]


@pytest.mark.parametrize(("module", "name"), PRIVATE_NAMES)
def test_private_sdk_name_is_still_there(module: str, name: str) -> None:
    found = getattr(importlib.import_module(module), name, None)
    assert found is not None, (
        f"pulumi {importlib.metadata.version('pulumi')} no longer has {module}.{name}: driver/sdk.py must follow the SDK "
        "(the offline evaluation behind `render` and every mock test depends on it)"
    )


def test_a_secret_is_recognised_in_the_monitors_wire_format() -> None:
    """What the SDK sends the monitor for a secret input, through the SDK's own serializer."""
    import asyncio

    from pulumi.runtime import rpc

    class NoResources(pulumi.runtime.Mocks):
        def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, object]]:
            return "id", {}

        def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, object], list[tuple[str, str]]]:
            return {}, []

    # The mock monitor, like the engine's, accepts secrets; without a monitor the SDK sends them plain.
    pulumi.runtime.set_mocks(NoResources(), project="sdk-check", stack="sdk-check")

    async def serialized(secret: bool) -> object:
        value = pulumi.Output.secret("s3cr3t") if secret else pulumi.Output.from_input("s3cr3t")
        return await rpc.serialize_property(value, [], None, keep_output_values=False)

    wire = asyncio.run(serialized(secret=True))
    assert sdk.is_secret_value(wire) and wire["value"] == "s3cr3t"  # type: ignore[index]
    assert asyncio.run(serialized(secret=False)) == "s3cr3t"


def test_run_to_completion_awaits_the_whole_program() -> None:
    seen: list[str] = []

    async def program() -> None:
        seen.append("ran")

    sdk.run_to_completion(program)
    assert seen == ["ran"]
