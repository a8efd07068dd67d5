"""Where the external tools are: the linkerd CLI of each release, the Pulumi CLI and its plugins.

Looked up, in order, in the environment (`AES_LINKERD2_LINKERD_<VERSION>` for one CLI), the tool
cache (`AES_LINKERD2_TOOLS`, default ~/.cache/linkerd-aes-e2e/bin, where e2e/build-tools.sh and the
contributor's page put them, each named with its version) and PATH, where a `linkerd` counts only
when it is the release asked for.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

TOOLS_ENV = "AES_LINKERD2_TOOLS"
DEFAULT_TOOLS = Path("~/.cache/linkerd-aes-e2e/bin")


def tools_dir() -> Path:
    return Path(os.environ.get(TOOLS_ENV) or DEFAULT_TOOLS).expanduser()


def linkerd_env(version: str) -> str:
    """The environment variable that names the CLI of `version`, e.g. AES_LINKERD2_LINKERD_EDGE_26_8_3."""
    return "AES_LINKERD2_LINKERD_" + re.sub(r"[^A-Z0-9]", "_", version.upper())


# How every caller asks a linkerd CLI its release (no cluster needed).
LINKERD_VERSION_ARGS = ("version", "--client", "--short")


def linkerd_client_version(binary: str) -> str | None:
    """What `linkerd version --client --short` says, or None when it cannot run."""
    try:
        done = subprocess.run([binary, *LINKERD_VERSION_ARGS], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def find_linkerd(version: str) -> str | None:
    """The path of the linkerd CLI of exactly `version`, or None."""
    named = os.environ.get(linkerd_env(version))
    candidates = [named] if named else [str(tools_dir() / f"linkerd-{version}"), shutil.which("linkerd")]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK) and linkerd_client_version(candidate) == version:
            return candidate
    return None


def where_to_look(version: str) -> str:
    return f"${linkerd_env(version)}, {tools_dir() / f'linkerd-{version}'} or a `linkerd` of that release on PATH"
