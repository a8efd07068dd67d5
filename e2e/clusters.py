"""The live clusters of the e2e pytest tiers, and how a test drives the program and reads the clusters back.

`LiveCluster.start` runs e2e/clusters.sh (e2e/tier.sh's functions: the API server with kwok nodes on
loopback, the webhook watcher, a copy of the project, the real engine's environment; for the `mirror` tier, two
clusters, `target` and `source`, and the service mirror's watcher, e2e/mirror.sh; for the `full` tier, two
clusters with every real webhook server that is built) and stops it by its process group when the tier ends.
Tests then drive `./aes-linkerd2` in the copy, as a user does, and read what is on the cluster with kubectl,
never from what Pulumi reports.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

E2E = Path(__file__).resolve().parent
LAUNCHER = E2E / "clusters.sh"
CONTEXT = "target"
# Cold start of etcd, the API server, the controllers and kwok on a loaded 2-core machine.
START_SECONDS = 300


def _mode(tier: str) -> list[str]:
    """e2e/clusters.sh's option for TIER (safety, mirror, full or trust)."""
    return [] if tier == "safety" else [f"--{tier}"]


def missing_tools(tier: str) -> list[str]:
    """The tools e2e/tier.sh's find_tools (and, for the mirror tier, e2e/mirror.sh's mirror_check; for the trust
    tier, e2e/identity.sh's identity_check) looks for that are not in the cache (their list, not a copy)."""
    done = subprocess.run([str(LAUNCHER), *_mode(tier), "--check"], capture_output=True, text=True, check=False, timeout=60)
    if done.returncode != 0:
        return [f"{LAUNCHER} --check failed: {done.stderr.strip()}"]
    return done.stdout.splitlines()


@dataclass(frozen=True)
class Run:
    """One command's result, with its words for the failure message."""

    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def output(self) -> str:
        """stdout, then stderr (the driver's progress and messages are on stderr)."""
        return f"{self.stdout}\n{self.stderr}"

    def said(self) -> str:
        return f"$ {' '.join(self.argv)}  (exit {self.returncode}, {self.seconds:.0f}s)\n{self.stdout}\n{self.stderr}"


class LiveCluster:
    def __init__(self, process: subprocess.Popen[bytes], env: dict[str, str], log: Path) -> None:
        self.process, self.log = process, log
        self.env = {**os.environ, **env}
        self.project = Path(env["PROJECT"])
        self.work = Path(env["WORK"])
        self.kubectl_binary = env["KUBECTL"]
        self.linkerd = env["LINKERD"]
        self.apiext_served = bool(env["APIEXT"])
        # The full tier's real webhook servers (e2e/webhooks.sh; empty: not built, so not served), and what follows.
        self.injector, self.sp_validator, self.policy = (
            env.get("INJECTOR", ""),
            env.get("SP_VALIDATOR", ""),
            env.get("POLICY", ""),
        )
        self.linkerd_ha = env.get("LINKERD_HA") == "true"
        self.emissary_version = env.get("EMISSARY_VERSION", "")
        # The mirror tier's: the controller binary that runs `service-mirror`, and its admin port on 127.0.0.1.
        self.mirror_binary = env.get("MIRROR", "")
        self.mirror_port = int(env.get("MIRROR_PORT") or 0)
        # The trust tier's: the controller binary that runs `identity` (and the proxy injector).
        self.identity_binary = env.get("IDENTITY", "")

    @classmethod
    def start(cls, scratch: Path, tier: str) -> LiveCluster:
        ready, log = scratch / "ready.env", scratch / "clusters.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [str(LAUNCHER), *_mode(tier), str(ready)],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=E2E.parent,
            )
        deadline = time.monotonic() + START_SECONDS
        while not ready.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                _stop(process)
                raise RuntimeError(f"e2e/clusters.sh did not start the cluster:\n{log.read_text()[-4000:]}")
            time.sleep(1)
        env = dict(line.split("=", 1) for line in ready.read_text().splitlines() if "=" in line)
        return cls(process, env, log)

    def stop(self) -> None:
        _stop(self.process)

    # --- the program, as a user runs it ---------------------------------------------------------
    def driver(self, *words: str, timeout: float = 600, env: dict[str, str] | None = None) -> Run:
        """`./aes-linkerd2 WORDS...` in the project's copy (both stacks unless WORDS name one), ENV added."""
        return self.run(["./aes-linkerd2", *words], cwd=self.project, timeout=timeout, env=env)

    def driver_in_background(self, log: Path, *words: str) -> subprocess.Popen[bytes]:
        """`./aes-linkerd2 WORDS...` started in the project's copy, its output to LOG, in its own process group
        (`interrupt` sends it SIGTERM, as a killed CI job would)."""
        with log.open("wb") as out:
            return subprocess.Popen(
                ["./aes-linkerd2", *words],
                cwd=self.project,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def performance(self, up_seconds: str, preview_seconds: str) -> Run:
        """e2e/clusters.sh --performance: the target's objects with kubectl on fresh API servers against `up` and the
        no-change preview (tier.sh's PERFORMANCE line, on stderr); its clusters are stopped when it returns."""
        return self.run([str(LAUNCHER), "--performance", up_seconds, preview_seconds], cwd=E2E.parent, timeout=1800)

    def stack_config(self, stack: str = "target") -> dict[str, Any]:
        document: dict[str, Any] = yaml.safe_load((self.project / f"Pulumi.{stack}.yaml").read_text())
        return document

    def set_config(self, stack: str = "target", **values: Any) -> None:
        """Set (None: remove) `aes-linkerd2:KEY` values in the copy's stack file, as a user edits it."""
        path = self.project / f"Pulumi.{stack}.yaml"
        document = self.stack_config(stack)
        for key, value in values.items():
            document["config"].pop(f"aes-linkerd2:{key}", None)
            if value is not None:
                document["config"][f"aes-linkerd2:{key}"] = value
        path.write_text(yaml.safe_dump(document, sort_keys=False))

    # --- the cluster, read back with kubectl ------------------------------------------------------
    def kubectl(self, *args: str, stdin: str | None = None, check: bool = True, context: str = CONTEXT) -> Run:
        run = self.run([self.kubectl_binary, "--context", context, *args], stdin=stdin, timeout=120)
        if check and run.returncode != 0:
            raise AssertionError(run.said())
        return run

    def get(self, *args: str, context: str = CONTEXT) -> Any:
        """`kubectl get ARGS -o json` on cluster CONTEXT, parsed; None when the object is not there."""
        run = self.kubectl("get", *args, "-o", "json", check=False, context=context)
        if run.returncode != 0:
            if "NotFound" in run.stderr:
                return None
            raise AssertionError(run.said())
        return json.loads(run.stdout)

    def apply(self, *objects: dict[str, Any], context: str = CONTEXT) -> None:
        """Objects of someone else's: created with kubectl (its own field manager), not by the program."""
        self.kubectl("create", "-f", "-", stdin=yaml.safe_dump_all(objects), context=context)

    def run(
        self,
        argv: list[str],
        *,
        cwd: Path | None = None,
        stdin: str | None = None,
        timeout: float,
        env: dict[str, str] | None = None,
    ) -> Run:
        began = time.monotonic()
        done = subprocess.run(
            argv,
            cwd=cwd,
            env={**self.env, **(env or {})},
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )
        return Run(argv, done.returncode, done.stdout, done.stderr, time.monotonic() - began)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the launcher (its EXIT trap stops what it started); its whole group only if it hangs."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


def wait_for_line(log: Path, process: subprocess.Popen[bytes], needle: str, timeout: float) -> str:
    """LOG's text once it holds NEEDLE; an AssertionError when the process ends first or TIMEOUT passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        if needle in text:
            return text
        if process.poll() is not None:
            raise AssertionError(f"{process.args!r} ended (exit {process.returncode}) before {needle!r}:\n{text}")
        time.sleep(2)
    raise AssertionError(f"no {needle!r} within {timeout:.0f}s:\n{log.read_text(errors='replace')}")


def interrupt(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to a background driver's whole group (the driver and the Pulumi CLI it runs), waited for."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)


def wait_for(what: str, probe: Callable[[], Any], timeout: float = 120) -> Any:
    """PROBE's first truthy answer, polled each second; fails naming WHAT and the last answer."""
    deadline, found = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(1)
    raise AssertionError(f"{what}: not within {timeout:.0f}s; last seen: {found!r}")
