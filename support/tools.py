"""Where the external tools are: the linkerd CLI of each release, the Pulumi CLI and its plugins.

Looked up, in order, in the environment (`AES_LINKERD2_LINKERD_<VERSION>` for one CLI), the tool
cache (`bin/` of the project's cache, where `./aes-linkerd2 setup`, e2e/build-tools.sh and the
contributor's page put them, each named with its version) and PATH, where a `linkerd` counts only
when it is the release asked for.

The project's cache is one folder for everything fetched or built outside the repository:
`$AES_LINKERD2_CACHE`, else `$XDG_CACHE_HOME/aes-linkerd2`, else `~/.cache/aes-linkerd2`; its `bin/`
holds the tools (`$AES_LINKERD2_TOOLS` overrides), its `reference/` upstream's release files.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

CACHE_ENV = "AES_LINKERD2_CACHE"
TOOLS_ENV = "AES_LINKERD2_TOOLS"
# What fetches the pinned tools and upstream's release files into the cache, verified.
SETUP_COMMAND = "./aes-linkerd2 setup"


def cache_root() -> Path:
    """The project's cache: the tools in bin/, upstream's release files in reference/."""
    named = os.environ.get(CACHE_ENV)
    if named:
        return Path(named).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "aes-linkerd2"


def tools_dir() -> Path:
    named = os.environ.get(TOOLS_ENV)
    return Path(named).expanduser() if named else cache_root() / "bin"


def reference_dir() -> Path:
    return cache_root() / "reference"


def linkerd_env(version: str) -> str:
    """The environment variable that names the CLI of `version`, e.g. AES_LINKERD2_LINKERD_EDGE_26_8_3."""
    return "AES_LINKERD2_LINKERD_" + re.sub(r"[^A-Z0-9]", "_", version.upper())


# How every caller asks a linkerd CLI its release (no cluster needed).
LINKERD_VERSION_ARGS = ("version", "--client", "--short")


def reported_version(binary: str, args: Sequence[str]) -> str | None:
    """What a tool prints when asked its version with `args`, or None when it cannot run."""
    try:
        done = subprocess.run([binary, *args], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def linkerd_client_version(binary: str) -> str | None:
    """What `linkerd version --client --short` says, or None when it cannot run."""
    return reported_version(binary, LINKERD_VERSION_ARGS)


def find_linkerd(version: str) -> str | None:
    """The path of the linkerd CLI of exactly `version`, or None."""
    named = os.environ.get(linkerd_env(version))
    candidates = [named] if named else [str(tools_dir() / f"linkerd-{version}"), shutil.which("linkerd")]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK) and linkerd_client_version(candidate) == version:
            return candidate
    return None


def linkerd_cli(configured: str | None, version: str, find: Callable[[str], str | None] = find_linkerd) -> str:
    """The linkerd CLI a stack runs: its `linkerdCli`, else the one of its release found here, else `linkerd` (PATH)."""
    return configured or find(version) or "linkerd"


def where_to_look(version: str) -> str:
    return (
        f"${linkerd_env(version)}, {tools_dir() / f'linkerd-{version}'} or a `linkerd` of that release on PATH; "
        f"run {SETUP_COMMAND} to fetch it"
    )
