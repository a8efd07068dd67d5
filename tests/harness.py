"""Runs a Pulumi program under mocks (driver.offline) answering as a cluster, pulumi-command and the
linkerd CLI (tests.fake_linkerd) would."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pulumi.runtime.mocks import MockCallArgs, MockResourceArgs, Mocks

from components import certificates
from driver.offline import Evaluation, Registration, evaluate, unwrap_secrets
from tests.fake_linkerd import FakeLinkerd

__all__ = ["Registration", "Run", "run_program"]


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


class Run(Evaluation):
    """An evaluation with the mocks that answered it."""

    mocks: ClusterMocks

    @classmethod
    def of(cls, evaluation: Evaluation, mocks: ClusterMocks) -> Run:
        run = cls(**vars(evaluation))
        run.mocks = mocks
        return run


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
    values = {**(config or {}), **(secret_config or {})}
    evaluation = evaluate(program, mocks, stack=stack, config=values, secret_keys=list(secret_config or {}), preview=preview)
    return Run.of(evaluation, mocks)
