"""Runs a Pulumi program under mocks (driver.offline) answering as a cluster and pulumi-command would,
with the real linkerd CLI answering every command it can answer without a cluster."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from driver.offline import Evaluation, ProgramMocks, Registration, evaluate, needs_a_cluster
from tests.fake_linkerd import FakeLinkerd

__all__ = ["Registration", "Run", "run_program"]


class ClusterMocks(ProgramMocks):
    """The program's mocks, with `fake` answering what no real tool can in a unit test.

    That is the Link (it needs the target cluster), or, when the fake answers all, failures and
    versions on demand. No test asserts on what gets applied from the fake's output.
    """

    def __init__(self, fake: FakeLinkerd | None, preview: bool, stack_references: dict[str, dict[str, Any]]) -> None:
        super().__init__(stack_references, preview=preview)
        self.fake = fake

    def stand_in(self, command: str, stdin: str | None) -> str | None:
        if self.fake is not None and (self.fake.answers_all or needs_a_cluster(command)):
            return self.fake.run(command, stdin)
        return None


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
    """Run `program` under mocks; a failing program's error is kept in `Run.error`, not raised (a skip is)."""
    mocks = ClusterMocks(linkerd, preview, stack_references or {})
    values = {**(config or {}), **(secret_config or {})}
    evaluation = evaluate(program, mocks, stack=stack, config=values, secret_keys=list(secret_config or {}), preview=preview)
    if isinstance(evaluation.error, pytest.skip.Exception):
        # A real tool the program needed is missing (conftest.real_linkerd): the test is skipped, not failed.
        raise evaluation.error
    return Run.of(evaluation, mocks)
