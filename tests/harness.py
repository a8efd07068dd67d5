"""Runs a Pulumi program under mocks and records every registration the engine would see.

Pulumi's MockMonitor keeps only a resource's state; the tests also assert parents, providers,
dependencies, ignore_changes, deleted_with and which properties travel as secrets, so this
monitor keeps the whole request.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pulumi
from google.protobuf import json_format
from pulumi.runtime import rpc, settings
from pulumi.runtime.mocks import MockCallArgs, MockMonitor, MockResourceArgs, Mocks
from pulumi.runtime.proto import resource_pb2
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from components import certificates
from tests.fake_linkerd import FakeLinkerd

PROJECT = "aes-linkerd2"


@dataclass
class Registration:
    type: str
    name: str
    urn: str
    inputs: dict[str, Any]
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
        return _contains_secret(value)

    @property
    def kind(self) -> str:
        return self.type.rsplit(":", 1)[-1]

    @property
    def object_name(self) -> str | None:
        return (self.inputs.get("metadata") or {}).get("name")

    @property
    def namespace(self) -> str | None:
        return (self.inputs.get("metadata") or {}).get("namespace")


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


def _contains_secret(value: Any) -> bool:
    if _is_secret_value(value):
        return True
    if isinstance(value, dict):
        return any(_contains_secret(v) for v in value.values())
    if isinstance(value, list):
        return any(_contains_secret(v) for v in value)
    return False


class RecordingMonitor(MockMonitor):
    def __init__(self, mocks: Mocks) -> None:
        super().__init__(mocks)
        self.registrations: list[Registration] = []

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            self.registrations.append(
                Registration(
                    type=request.type,
                    name=request.name,
                    urn=response.urn,
                    inputs=unwrap_secrets(rpc.deserialize_properties(request.object)),
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

    def GetDeploymentInfo(self, request: Any) -> Any:
        # The engine holds back an invoke only while a resource it depends on awaits creation.
        # The program's invokes depend at most on stack references, which are read, not created:
        # answering them in preview too is what the engine does (the SDK's own fallback gate,
        # used without this feature, would leave them unknown).
        info = super().GetDeploymentInfo(request)
        info.supportedFeatures.append(resource_pb2.RESOURCE_MONITOR_FEATURE_INVOKE_DEPENDS_ON)
        return info


class ClusterMocks(Mocks):
    """Answers the engine as a cluster, the command provider and the linkerd CLI would."""

    def __init__(self, linkerd: FakeLinkerd, preview: bool, stack_references: dict[str, dict[str, Any]]) -> None:
        self.linkerd = linkerd
        self.preview = preview
        self.stack_references = stack_references
        self.commands_run: list[str] = []

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        outputs = dict(args.inputs)
        if args.typ == "pulumi:pulumi:StackReference":
            return args.name, {"name": args.name, "outputs": self.stack_references[args.inputs["name"]]}
        if args.typ == "command:local:Command" and not self.preview:
            outputs["stdout"] = self._command_stdout(args.inputs)
        if args.typ.startswith("kubernetes:") and not self.preview:
            metadata = dict(outputs.get("metadata") or {})
            metadata.setdefault("uid", f"uid-{args.name}")
            metadata.setdefault("generation", 1)
            outputs["metadata"] = metadata
        return f"{args.name}-id", outputs

    def _command_stdout(self, inputs: dict[str, Any]) -> str:
        line = unwrap_secrets(inputs.get("create", ""))
        self.commands_run.append(line)
        if "components.certificates" not in line:
            return ""
        words = line.split()
        common_name = words[words.index("--common-name") + 1]
        if " anchor " in f" {line} ":
            return certificates.new_trust_anchor(common_name, 24).to_json()
        environment = unwrap_secrets(inputs.get("environment") or {})
        anchor = certificates.KeyPair(
            cert_pem=environment[certificates.ANCHOR_CERT_ENV], key_pem=environment[certificates.ANCHOR_KEY_ENV]
        )
        return certificates.new_issuer(anchor, common_name, 12).to_json()

    def call(self, args: MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        if args.token == "command:local:run":
            # A failed command comes back as the engine reports it: a failed invoke.
            try:
                stdout = self.linkerd.run(args.args["command"], args.args.get("stdin"))
            except RuntimeError as error:
                return {}, [("command", str(error))]
            return {"stdout": stdout, "stderr": "", "command": args.args["command"]}, []
        raise NotImplementedError(args.token)


@dataclass
class Run:
    registrations: list[Registration]
    outputs: dict[str, Any]
    mocks: ClusterMocks
    monitor: RecordingMonitor
    error: BaseException | None = None
    secret_outputs: set[str] = field(default_factory=set)

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

    def by_urn(self, urn: str) -> Registration:
        return next(r for r in self.registrations if r.urn == urn)

    def children_of(self, parent: Registration) -> Iterator[Registration]:
        return (r for r in self.registrations if r.parent == parent.urn)

    def depends(self, resource: Registration, on: Registration) -> bool:
        return on.urn in resource.dependencies


def run_program(
    program: Callable[[], Any],
    *,
    stack: str = "target",
    config: dict[str, Any] | None = None,
    secret_config: dict[str, str] | None = None,
    preview: bool = False,
    linkerd: FakeLinkerd | None = None,
    stack_references: dict[str, dict[str, Any]] | None = None,
) -> Run:
    """Run `program` under mocks; a failing program's error is kept in `Run.error`, not raised."""
    mocks = ClusterMocks(linkerd or FakeLinkerd(), preview, stack_references or {})
    monitor = RecordingMonitor(mocks)
    settings.ROOT.set(None)
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=preview, monitor=monitor)
    values = {f"{PROJECT}:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in (config or {}).items()}
    values.update({f"{PROJECT}:{k}": v for k, v in (secret_config or {}).items()})
    pulumi.runtime.set_all_config(values, [f"{PROJECT}:{k}" for k in secret_config or {}])
    error: BaseException | None = None
    exported: dict[str, Any] = {}
    secret: set[str] = set()

    async def program_and_exports() -> None:
        program()
        # pulumi.export() collects on the root stack; under mocks nothing registers them.
        stack = settings.get_root_resource()
        for key, value in (getattr(stack, "outputs", None) or {}).items():
            output = pulumi.Output.from_input(value)
            if await output.is_known():
                exported[key] = await output.future()
            if await output.is_secret():
                secret.add(key)

    try:
        _sync_await(run_pulumi_func(program_and_exports))
    except BaseException as caught:
        error = caught
    run = Run(registrations=monitor.registrations, outputs=exported, mocks=mocks, monitor=monitor, error=error)
    run.secret_outputs = secret
    return run
