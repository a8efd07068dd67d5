"""The project's name, its folder, and how a secret value is shown: facts every part reads from here."""

from __future__ import annotations

from pathlib import Path

PROJECT = "aes-linkerd2"
# The Pulumi project's folder (where Pulumi.yaml is): relative manifest paths and the certificate maker start there.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
PROJECT_FILE = PROJECT_ROOT / "Pulumi.yaml"
# What an error, a render or a summary shows in place of a secret value.
SECRET_SHOWN = "[secret]"
# In a Command's environment: the Command is the program's own (no cluster, no network), so the offline
# evaluation (`render`, the tests' mocks) runs it for real, as `up` would. Every other Command is not run there.
RUNS_OFFLINE_ENV = "AES_LINKERD2_RUNS_OFFLINE"


def namespace_owner(stack: str) -> str:
    """What the program writes on a namespace it creates, and what the pre-flight looks for: `<project>/<stack>`."""
    return f"{PROJECT}/{stack}"
