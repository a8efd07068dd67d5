"""e2e/timings.py reads the driver's progress lines: a Service and a Deployment of one name are two steps, so the
critical path and a Deployment's await are its own, not the earlier Service's (the figures of issue 22)."""

from __future__ import annotations

from driver.api import Progress
from driver.progress import plain_line
from tests.conftest import e2e_module

STACK = "urn:pulumi:target::aes-linkerd2::"
PARENT = "aes-linkerd2:index:LinkerdControlPlane$"
timings = e2e_module("timings")


def progress_log(*steps: tuple[float, str, bool]) -> str:
    """The driver's own plain lines for STEPS (seconds, step, finished), as e2e/tier.sh's driver keeps them."""
    lines, done = [], 0
    for seconds, step, finished in steps:
        done += finished
        lines.append(plain_line(Progress("target", "up", done, seconds, step)))
    return "\n".join([*lines, "target   ok  3  0  0  0  0  30.0"])


LOG = progress_log(
    (2, "create Command identity-trust-anchor", False),
    (4, "create Service linkerd:linkerd/linkerd-identity", False),
    (5, "create Service linkerd:linkerd/linkerd-identity", True),
    (6, "create Command identity-trust-anchor", True),
    (20, "create Deployment linkerd:linkerd/linkerd-identity", False),
    (28, "create Deployment linkerd:linkerd/linkerd-identity", True),
)


def resource(kind: str, name: str, *needs: str) -> dict[str, object]:
    return {"urn": f"{STACK}{PARENT}{kind}::{name}", "type": kind, "dependencies": [f"{STACK}{PARENT}{n}" for n in needs]}


def test_a_service_and_a_deployment_of_one_name_are_two_steps() -> None:
    start, end = timings.steps("target", LOG)
    assert start == {
        "Command identity-trust-anchor": 2,
        "Service linkerd:linkerd/linkerd-identity": 4,
        "Deployment linkerd:linkerd/linkerd-identity": 20,
    }
    assert end == {
        "Service linkerd:linkerd/linkerd-identity": 5,
        "Command identity-trust-anchor": 6,
        "Deployment linkerd:linkerd/linkerd-identity": 28,
    }


def test_the_critical_path_follows_the_deployments_own_dependency() -> None:
    deployment = "kubernetes:apps/v1:Deployment"
    state = {
        "deployment": {
            "resources": [
                resource("command:local:Command", "identity-trust-anchor"),
                resource("kubernetes:core/v1:Service", "linkerd:linkerd/linkerd-identity"),
                resource(deployment, "linkerd:linkerd/linkerd-identity", "command:local:Command::identity-trust-anchor"),
            ]
        }
    }
    assert timings.critical_path("target", LOG, state) == [
        "    2 steps, the last done at 28s:",
        "       2 ->    6  (  4s)  Command identity-trust-anchor",
        "      20 ->   28  (  8s)  Deployment linkerd:linkerd/linkerd-identity",
    ]


def test_a_deployments_await_is_its_own_step_not_the_services() -> None:
    listed = {
        "items": [
            {
                "metadata": {"namespace": "linkerd", "name": "linkerd-identity", "creationTimestamp": "2026-12-07T10:00:20Z"},
                "status": {
                    "conditions": [
                        {"type": "Available", "lastTransitionTime": "2026-12-07T10:00:23Z"},
                        {"type": "Progressing", "lastUpdateTime": "2026-12-07T10:00:26Z"},
                    ]
                },
            }
        ]
    }
    assert timings.deployments("target", LOG, listed) == [
        "    linkerd/linkerd-identity: Available after 3s, last rollout done after 6s; up awaited 8s"
    ]
