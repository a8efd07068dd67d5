"""Reading a stack's outputs through the engine: a half-written checkpoint is read again, anything else is not."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from support import stack_outputs


@dataclass
class Answer:
    value: dict[str, Any]


class Engine:
    """Fails the first `failures` reads with `error`, then answers."""

    def __init__(self, failures: int, error: str) -> None:
        self.failures, self.error, self.asked = failures, error, 0

    def __call__(self, token: str, args: dict[str, Any]) -> Answer:
        assert token == "pulumi:pulumi:readStackOutputs" and args == {"name": "organization/aes-linkerd2/target"}
        self.asked += 1
        if self.asked <= self.failures:
            raise Exception(f"invoke of {token} failed: {self.error}")
        return Answer({"name": args["name"], "outputs": {"clusterName": "target"}})


def test_a_half_written_checkpoint_is_read_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("support.stack_outputs.time.sleep", lambda seconds: None)
    engine = Engine(failures=2, error="failed to load checkpoint: EOF")
    assert stack_outputs.read("organization/aes-linkerd2/target", engine) == {"clusterName": "target"}
    assert engine.asked == 3


def test_it_gives_up_after_a_few_reads_and_other_errors_are_not_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("support.stack_outputs.time.sleep", lambda seconds: None)
    engine = Engine(failures=9, error="failed to load checkpoint: EOF")
    with pytest.raises(Exception, match="failed to load checkpoint: EOF"):
        stack_outputs.read("organization/aes-linkerd2/target", engine)
    assert engine.asked == stack_outputs.ATTEMPTS
    engine = Engine(failures=1, error="no stack named 'target' found")
    with pytest.raises(Exception, match="no stack named"):
        stack_outputs.read("organization/aes-linkerd2/target", engine)
    assert engine.asked == 1


def test_a_stack_before_its_first_update_has_no_outputs() -> None:
    assert stack_outputs.read("organization/aes-linkerd2/target", lambda token, args: Answer({})) == {}
