"""Evaluating the program without an engine: Pulumi's mocks, with every registration recorded whole.

Pulumi's MockMonitor keeps only a resource's state; `render` needs each object's inputs and which of
them are secret, and the tests also assert parents, providers, dependencies, ignore_changes and
deleted_with, so this monitor keeps the whole request.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from google.protobuf import json_format
from pulumi.runtime import MockCallArgs, MockResourceArgs, Mocks

from driver.sdk import is_secret_value, run_to_completion
from support import certificates, sdk_internals
from support.project import PROJECT, RUNS_OFFLINE_ENV

# The clusters' `linkerd` namespaces as the certificate Commands see them offline: one private folder
# per process, one sub-folder per kube context (a target evaluated first leaves its anchor for the source).
# `render` shares one between its processes (the target's, then the source's) through OFFLINE_CLUSTERS_ENV.
OFFLINE_CLUSTERS_ENV = "AES_LINKERD2_OFFLINE_CLUSTERS"
_OFFLINE_CLUSTERS = tempfile.TemporaryDirectory(prefix="aes-linkerd2-offline-")


def _offline_root() -> Path:
    return Path(os.environ.get(OFFLINE_CLUSTERS_ENV) or _OFFLINE_CLUSTERS.name)


def offline_cluster(context: str) -> certificates.FolderStore:
    return certificates.FolderStore(_offline_root() / context)


def forget_offline_clusters() -> None:
    root = _offline_root()
    for entry in os.listdir(root) if root.is_dir() else []:
        shutil.rmtree(root / entry)


class _OfflineClusters(dict[str, certificates.SecretStore]):
    def __missing__(self, context: str) -> certificates.SecretStore:
        return offline_cluster(context)


def unwrap_secrets(value: Any) -> Any:
    """The plain value of an input, secret or not."""
    if is_secret_value(value):
        return unwrap_secrets(value["value"])
    if isinstance(value, dict):
        return {k: unwrap_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap_secrets(v) for v in value]
    return value


def mask_secrets(value: Any, mask: str) -> Any:
    """The value with every secret part replaced by `mask`."""
    if is_secret_value(value):
        return mask
    if isinstance(value, dict):
        return {k: mask_secrets(v, mask) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_secrets(v, mask) for v in value]
    return value


def contains_secret(value: Any) -> bool:
    if is_secret_value(value):
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
    retain_on_delete: bool = False
    protect: bool = False

    def is_secret(self, *path: str) -> bool:
        """Whether the input at `path` (or some value inside it) travels to the engine as a secret."""
        value: Any = self.raw
        for key in path:
            if is_secret_value(value):
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


CLUSTER_FLAGS = ("--kubeconfig", "--context")
# CLI steps whose answer comes from a live cluster; nothing offline can give it.
NEEDS_A_CLUSTER = (("multicluster", "link"), ("multicluster", "link-gen"))


def cli_args(command: str) -> list[str]:
    """A CLI command's arguments without the binary and the cluster-selecting flags."""
    words, kept = shlex.split(command)[1:], []
    while words:
        word = words.pop(0)
        if word in CLUSTER_FLAGS:
            del words[:1]
        else:
            kept.append(word)
    return kept


def needs_a_cluster(command: str) -> bool:
    args = cli_args(command)
    return any(args[: len(step)] == list(step) for step in NEEDS_A_CLUSTER)


def run_like_the_command_provider(
    command: str, stdin: str | None = None, environment: dict[str, str] | None = None, cwd: str | None = None
) -> str:
    """What pulumi-command 1.2.1 does: `/bin/sh -c`, its whole environment, one trailing newline trimmed.

    A failure raises RuntimeError with the exit status and the combined output, as the provider reports it.
    """
    done = subprocess.run(
        ["/bin/sh", "-c", command],
        input=stdin,
        capture_output=True,
        text=True,
        env={**os.environ, **(environment or {})},
        cwd=cwd,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"exit status {done.returncode}: {done.stdout}{done.stderr}".strip())
    return done.stdout.removesuffix("\n")


class ProgramMocks(Mocks):
    """Answers the engine as a cluster and pulumi-command would, without either.

    Commands run for real: the linkerd CLI's offline renders and the certificate maker (so what the
    program registers is what the real tools print). `stand_in` answers what nothing real can here;
    subclasses say what. Every command is recorded.
    """

    def __init__(self, stack_references: Mapping[str, Mapping[str, Any]], *, preview: bool = False) -> None:
        self.stack_references = stack_references
        self.preview = preview
        self.commands: list[str] = []
        self.calls: list[list[str]] = []
        self.stdins: list[str | None] = []
        self.commands_run: list[str] = []
        # What each Command printed, by resource name (the certificates it made, for instance).
        self.command_stdouts: dict[str, str] = {}
        self.not_rendered: list[str] = []

    def stand_in(self, command: str, stdin: str | None) -> str | None:
        """The answer to a CLI command that cannot run for real here, or None to run it."""
        return None

    def inject_stand_in(self, stdin: str, reason: str) -> str:
        """What stands in for `linkerd inject` where it cannot run: here, the Deployment as given."""
        return stdin

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        outputs = dict(args.inputs)
        if args.typ == "command:local:Command" and not self.preview:
            outputs["stdout"] = self.command_stdouts[args.name] = self._command_stdout(args.inputs)
        if args.typ.startswith("kubernetes:") and not self.preview:
            metadata = dict(outputs.get("metadata") or {})
            metadata.setdefault("uid", f"uid-{args.name}")
            metadata.setdefault("generation", 1)
            outputs["metadata"] = metadata
        return f"{args.name}-id", outputs

    def _command_stdout(self, inputs: dict[str, Any]) -> str:
        line = str(unwrap_secrets(inputs.get("create", "")))
        self.commands_run.append(line)
        environment = unwrap_secrets(inputs.get("environment") or {})
        if RUNS_OFFLINE_ENV in environment:
            # The program's own certificate maker, on folders standing in for the clusters' Secrets.
            argv = shlex.split(line)
            try:
                return certificates.run(argv[argv.index("support.certificates") + 1 :], stores=_OfflineClusters())
            except certificates.CertificateError as error:
                raise RuntimeError(f"`{line}` failed: certificates: {error}") from None
        if cli_args(line)[:1] == ["inject"]:
            # 2.8's inject answers only against a live control plane.
            reason = "asks the live control plane at `pulumi up`"
            self.not_rendered.append(f"`{line}` ({reason})")
            return self.inject_stand_in(str(unwrap_secrets(inputs.get("stdin") or "")), reason)
        return ""

    def call(self, args: MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        if args.token == sdk_internals.READ_STACK_OUTPUTS:  # the engine's builtin: a stack's last outputs
            name = str(args.args["name"])
            return {"name": name, "outputs": dict(self.stack_references.get(name) or {})}, []
        if args.token != "command:local:run":
            return {}, [("token", f"cannot answer {args.token} offline")]
        command, stdin = str(args.args["command"]), args.args.get("stdin")
        self.commands.append(command)
        self.calls.append(cli_args(command))
        self.stdins.append(stdin)
        # A failed command comes back as the engine reports it: a failed invoke.
        try:
            answer = self.stand_in(command, stdin)
            stdout = answer if answer is not None else run_like_the_command_provider(command, stdin)
        except RuntimeError as error:
            return {}, [("command", str(error))]
        return {"stdout": stdout, "stderr": "", "command": command}, []


class RecordingMonitor(sdk_internals.MockMonitor):
    def __init__(self, mocks: Mocks) -> None:
        super().__init__(mocks)
        self.registrations: list[Registration] = []

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (the gRPC method's name)
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.type != "pulumi:pulumi:Stack":
            wrapped = sdk_internals.deserialize_properties(request.object)
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
                    retain_on_delete=request.retainOnDelete,
                    protect=request.protect,
                )
            )
        return response

    def GetDeploymentInfo(self, request: Any) -> Any:  # noqa: N802
        # The engine holds back an invoke only while a resource it depends on awaits creation.
        # The program's invokes depend at most on stack references, which are read, not created:
        # answering them in preview too is what the engine does (the SDK's own fallback gate,
        # used without this feature, would leave them unknown).
        info = super().GetDeploymentInfo(request)  # type: ignore[no-untyped-call]
        info.supportedFeatures.append(sdk_internals.INVOKE_DEPENDS_ON)
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
        """Whether the engine creates `on` before `resource`: a dependency, direct or through others."""
        by_urn = {r.urn: r for r in self.registrations}
        seen: set[str] = set()
        waiting = list(resource.dependencies)
        while waiting:
            urn = waiting.pop()
            if urn == on.urn:
                return True
            if urn not in seen and urn in by_urn:
                seen.add(urn)
                waiting.extend(by_urn[urn].dependencies)
        return False


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
    sdk_internals.reset_root_resource()
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=preview, monitor=monitor, organization="organization")
    values = {f"{PROJECT}:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}
    pulumi.runtime.set_all_config(values, [f"{PROJECT}:{k}" for k in secret_keys or []])
    result = Evaluation(registrations=monitor.registrations, outputs={})

    async def program_and_exports() -> None:
        program()
        # pulumi.export() collects on the root stack; under mocks nothing registers them.
        root = pulumi.runtime.get_root_resource()
        for key, value in (getattr(root, "outputs", None) or {}).items():
            output = pulumi.Output.from_input(value)
            if await output.is_known():
                result.outputs[key] = await output.future()
            if await output.is_secret():
                result.secret_outputs.add(key)

    try:
        run_to_completion(program_and_exports)
    except BaseException as caught:
        result.error = caught
    return result
