"""The linkerd CLI as every step runs it: one binary, one kubeconfig, one context per cluster."""

from __future__ import annotations

import asyncio
import re
import shlex
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_command as command

from support import render_cache, sdk_internals, tools
from support.config_model import ClusterAccess


class ToolError(pulumi.RunError):
    """A command-line tool the program needs is missing or failed."""


@dataclass(frozen=True, kw_only=True)
class LinkerdCli:
    binary: str
    cluster: ClusterAccess

    def argv(self, *args: str) -> list[str]:
        return [self.binary, *self.cluster.flags(), *args]

    def command_line(self, *args: str) -> str:
        return shlex.join(self.argv(*args))

    def render(self, *args: str, stdin: str | None = None) -> str:
        """Run an offline rendering command at program time (preview too) and return its stdout.

        Goes through pulumi-command's `local.run` invoke, whose output is not kept in state; whatever
        of it becomes a resource is marked secret there where it must be (Secrets are).
        """
        return self.start(*args, stdin=stdin).stdout()

    def start(self, *args: str, stdin: str | None = None) -> PendingRender:
        """`render`, started now and read later: several renders run at once, and beside the program."""
        return PendingRender(self, args, stdin)

    def client_version(self) -> str:
        """`linkerd version --client --short`; needs no cluster."""
        try:
            return command.local.run(command=shlex.join([self.binary, *tools.LINKERD_VERSION_ARGS])).stdout.strip()
        except Exception as error:
            raise ToolError(
                f"the linkerd CLI `{self.binary}` cannot run ({error}): `{tools.SETUP_COMMAND}` fetches the pinned "
                "release, or set config aes-linkerd2:linkerdCli to its path"
            ) from None

    def require_version(self, pinned: str) -> None:
        found = self.client_version()
        if not re.fullmatch(r"(stable|edge|enterprise)-[0-9][0-9A-Za-z.+-]{0,40}", found):
            # Not a release name at all: the binary is not linkerd, whatever linkerdVersion says.
            raise ToolError(
                f"`{self.binary}` is not a linkerd CLI (`version --client --short` printed {found[:80]!r}): set config "
                f"aes-linkerd2:linkerdCli to the linkerd CLI {pinned}, or `{tools.SETUP_COMMAND}` fetches it"
            )
        if found != pinned:
            raise ToolError(
                f"the linkerd CLI `{self.binary}` is {found!r}, but this stack pins linkerdVersion {pinned!r}: "
                "install that release (its charts are what gets applied) or change linkerdVersion"
            )


class PendingRender:
    """A CLI render under way: pulumi-command's `local.run` invoke, started as a task of the SDK's loop.

    Not its output form: an Output whose invoke failed fails the whole program with the bare invoke
    error when the program ends, in place of the ToolError that `stdout` raises. An offline render
    whose inputs have not changed is read from the render cache instead (support/render_cache.py).
    """

    def __init__(self, cli: LinkerdCli, args: tuple[str, ...], stdin: str | None) -> None:
        self.cli, self.args, self.command_line = cli, args, cli.command_line(*args)
        self._cache_key = render_cache.key(cli.argv(*args), stdin)
        self._kept = render_cache.read(self._cache_key) if self._cache_key else None
        self._task: asyncio.Future[Any] | None = None
        if self._kept is not None:
            return
        # The arguments and options the provider's own `local.run` sends (its pinned version included).
        inputs = {"command": self.command_line, "stdin": stdin, "logging": command.local.Logging.NONE}
        task = asyncio.ensure_future(
            pulumi.runtime.invoke_async("command:local:run", inputs, sdk_internals.command_invoke_options())
        )
        # A render the program never reads (it stopped on another error first) fails quietly.
        task.add_done_callback(lambda done: done.cancelled() or done.exception())
        self._task = task

    def stdout(self) -> str:
        """Wait for the render (pumping the event loop, as the SDK's own blocking invokes do)."""
        if self._kept is not None:
            return self._kept
        task = self._task
        assert task is not None  # started whenever nothing was kept
        try:
            result = sdk_internals.wait_for(task)
        except Exception as error:  # the invoke reports a failed command as a generic error
            raise ToolError(
                f"`{self.command_line}` failed: {error}. Is the linkerd CLI ({self.cli.binary}) installed, "
                "on PATH and of the version this stack pins?"
            ) from None
        self._kept = str(result["stdout"])
        if self._cache_key:
            render_cache.write(self._cache_key, self._kept)
        return self._kept
