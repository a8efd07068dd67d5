"""Evaluating the program without an engine: Pulumi's mocks, with every registration recorded whole.

Pulumi's MockMonitor keeps only a resource's state; `render` needs each object's inputs and which of
them are secret, and the tests also assert parents, providers, dependencies, ignore_changes and
deleted_with, so this monitor keeps the whole request.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pulumi
from google.protobuf import json_format
from pulumi.runtime import rpc, settings
from pulumi.runtime.mocks import MockMonitor, Mocks
from pulumi.runtime.proto import resource_pb2
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

PROJECT = "aes-linkerd2"


def _is_secret_value(value: Any) -> bool:
    return isinstance(value, dict) and value.get(rpc._special_sig_key) == rpc._special_secret_sig


def unwrap_secrets(value: Any) -> Any:
    """The plain value of an input, secret or not."""
    if _is_secret_value(value):
        return unwrap_secrets(value["value"])
    if isinstance(value, dict):
        return {k: unwrap_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap_secrets(v) for v in value]
    return value


def mask_secrets(value: Any, mask: str) -> Any:
    """The value with every secret part replaced by `mask`."""
    if _is_secret_value(value):
        return mask
    if isinstance(value, dict):
        return {k: mask_secrets(v, mask) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_secrets(v, mask) for v in value]
    return value


def contains_secret(value: Any) -> bool:
    if _is_secret_value(value):
        return True
    if isinstance(value, dict):
        return any(contains_secret(v) for v in value.values())
    if isinstance(value, list):
        return any(contains_secret(v) for v in value)
    return False


@dataclass
class Registration:
    type: str
    name: str
    urn: str
    inputs: dict[str, Any]
    # The inputs with secrets still wrapped (for masking), and as they travel on the wire.
    wrapped: dict[str, Any]
    raw: dict[str, Any]
    parent: str
    provider: str
    dependencies: list[str]
    ignore_changes: list[str]
    additional_secret_outputs: list[str]
    deleted_with: str

    def is_secret(self, *path: str) -> bool:
        """Whether the input at `path` (or some value inside it) travels to the engine as a secret."""
        value: Any = self.raw
        for key in path:
            if _is_secret_value(value):
                return True
            value = value[key]
        return contains_secret(value)

    @property
    def kind(self) -> str:
        return self.type.rsplit(":", 1)[-1]

    @property
    def object_name(self) -> str | None:
        name = (self.inputs.get("metadata") or {}).get("name")
        return str(name) if name is not None else None

    @property
    def namespace(self) -> str | None:
        namespace = (self.inputs.get("metadata") or {}).get("namespace")
        return str(namespace) if namespace is not None else None


class RecordingMonitor(MockMonitor):
    def __init__(self, mocks: Mocks) -> None:
        super().__init__(mocks)
        self.registrations: list[Registration] = []

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (the gRPC method's name)
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.type != "pulumi:pulumi:Stack":
            wrapped = rpc.deserialize_properties(request.object)
            self.registrations.append(
                Registration(
                    type=request.type,
                    name=request.name,
                    urn=response.urn,
                    inputs=unwrap_secrets(wrapped),
                    wrapped=wrapped,
                    raw=json_format.MessageToDict(request.object),
                    parent=request.parent,
                    provider=request.provider,
                    dependencies=list(request.dependencies),
                    ignore_changes=list(request.ignoreChanges),
                    additional_secret_outputs=list(request.additionalSecretOutputs),
                    deleted_with=request.deletedWith,
                )
            )
        return response

    def GetDeploymentInfo(self, request: Any) -> Any:  # noqa: N802
        # The engine holds back an invoke only while a resource it depends on awaits creation.
        # The program's invokes depend at most on stack references, which are read, not created:
        # answering them in preview too is what the engine does (the SDK's own fallback gate,
        # used without this feature, would leave them unknown).
        info = super().GetDeploymentInfo(request)  # type: ignore[no-untyped-call]
        info.supportedFeatures.append(resource_pb2.RESOURCE_MONITOR_FEATURE_INVOKE_DEPENDS_ON)
        return info


@dataclass
class Evaluation:
    registrations: list[Registration]
    outputs: dict[str, Any]
    secret_outputs: set[str] = field(default_factory=set)
    error: BaseException | None = None

    def find(self, kind: str, name: str | None = None, namespace: str | None = None) -> list[Registration]:
        return [
            r
            for r in self.registrations
            if r.kind == kind
            and (name is None or name in (r.object_name, r.name))
            and (namespace is None or r.namespace == namespace)
        ]

    def one(self, kind: str, name: str | None = None, namespace: str | None = None) -> Registration:
        found = self.find(kind, name, namespace)
        assert len(found) == 1, f"expected one {kind} {namespace}/{name}, found {[r.name for r in found]}"
        return found[0]

    def children_of(self, parent: Registration) -> Iterator[Registration]:
        return (r for r in self.registrations if r.parent == parent.urn)

    def depends(self, resource: Registration, on: Registration) -> bool:
        return on.urn in resource.dependencies


def evaluate(
    program: Callable[[], Any],
    mocks: Mocks,
    *,
    stack: str,
    config: dict[str, Any],
    secret_keys: list[str] | None = None,
    preview: bool = False,
) -> Evaluation:
    """Run `program` under `mocks`; its error is kept in `Evaluation.error`, not raised.

    Pulumi's runtime settings are process-wide: evaluate one program at a time per process.
    """
    monitor = RecordingMonitor(mocks)
    settings.ROOT.set(None)
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=preview, monitor=monitor)
    values = {f"{PROJECT}:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}
    pulumi.runtime.set_all_config(values, [f"{PROJECT}:{k}" for k in secret_keys or []])
    result = Evaluation(registrations=monitor.registrations, outputs={})

    async def program_and_exports() -> None:
        program()
        # pulumi.export() collects on the root stack; under mocks nothing registers them.
        root = settings.get_root_resource()
        for key, value in (getattr(root, "outputs", None) or {}).items():
            output = pulumi.Output.from_input(value)
            if await output.is_known():
                result.outputs[key] = await output.future()
            if await output.is_secret():
                result.secret_outputs.add(key)

    try:
        _sync_await(run_pulumi_func(program_and_exports))
    except BaseException as caught:
        result.error = caught
    return result
