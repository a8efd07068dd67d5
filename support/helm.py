"""The helm CLI, a tool like the linkerd CLI: found by config (`helm`), in the tool cache, or on PATH.

Only `helm template`, `helm show chart` and `helm pull` run: nothing here talks to a cluster. The pinned
release is fetched by `./aes-linkerd2 setup` from get.helm.sh, checked against the release's own
`.sha256sum` file and aes-linkerd2.lock, like the linkerd CLI.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from support import tools
from support.downloads import Downloader, DownloadError, Expected
from support.lockfile import LockFile
from support.upstream_cache import published_checksum

HELM_VERSION = "4.3.2"
HELM_RELEASES = "https://get.helm.sh"
# A helm built without the release's ldflags (`go install helm.sh/helm/v4/cmd/helm@v4.3.2`) knows only
# its minor version: it says `v4.3`. Either answer is the pinned release line.
ACCEPTED_VERSIONS = (f"v{HELM_VERSION}", "v" + ".".join(HELM_VERSION.split(".")[:2]))
VERSION_ARGS = ("version", "--template", "{{.Version}}")
TIMEOUT_SECONDS = 120
# The release archive is about 20 MiB; the binary inside about 70 MiB.
ARCHIVE_LIMIT_BYTES = 256 * 1024 * 1024
CHECKSUM_LIMIT_BYTES = 4096


class HelmError(Exception):
    """helm could not run, or failed; its text is one line (helm's own message, shortened)."""


@dataclass(frozen=True, kw_only=True)
class HelmAsset:
    """The release archive for one OS and architecture, and the release's own checksum file of it."""

    url: str
    member: str  # the binary inside the archive

    @property
    def checksum_url(self) -> str:
        return f"{self.url}.sha256sum"


def helm_asset(system: str | None = None, machine: str | None = None) -> HelmAsset:
    """The archive as helm's install script names it (get.helm.sh/helm-v<version>-<os>-<arch>.tar.gz)."""
    system = (system or platform.system()).lower()
    machine = (machine or platform.machine()).lower()
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)
    return HelmAsset(url=f"{HELM_RELEASES}/helm-v{HELM_VERSION}-{system}-{arch}.tar.gz", member=f"{system}-{arch}/helm")


def cached_path() -> Path:
    return tools.tools_dir() / f"helm-{HELM_VERSION}"


def where_to_look() -> str:
    return f"config aes-linkerd2:helm, {cached_path()} or a `helm` v{HELM_VERSION} on PATH; {tools.SETUP_COMMAND} fetches it"


def client_version(binary: str) -> str | None:
    """What `helm version --template {{.Version}}` says, or None when it cannot run."""
    return tools.reported_version(binary, VERSION_ARGS)


def find_helm() -> str | None:
    """The helm of the pinned release in the tool cache or on PATH, or None."""
    for candidate in (str(cached_path()), shutil.which("helm")):
        if candidate and os.access(candidate, os.X_OK) and client_version(candidate) in ACCEPTED_VERSIONS:
            return candidate
    return None


def run(binary: str, *args: str, stdin: str | None = None) -> str:
    """helm's stdout; HelmError with the end of its stderr when it fails."""
    try:
        done = subprocess.run([binary, *args], input=stdin, capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False)
    except (OSError, subprocess.SubprocessError) as error:
        raise HelmError(f"`helm {args[0]}` could not run ({error.__class__.__name__}: {error})") from None
    if done.returncode != 0:
        said = " ".join(done.stderr.split())[-300:] or f"exit {done.returncode}"
        raise HelmError(f"`helm {args[0]}` failed: {said}")
    return done.stdout


def fetch(target: Path, downloader: Downloader, lock: LockFile) -> str:
    """Fetch the pinned release's archive, verified, and place its helm binary at `target`; the archive's sha256."""
    asset = helm_asset()
    published = published_checksum(downloader.read(asset.checksum_url, CHECKSUM_LIMIT_BYTES), asset.url)
    lock.check(asset.url, published)
    with tempfile.TemporaryDirectory(prefix=".helm-", dir=target.parent) as scratch:
        archive = Path(scratch) / "helm.tar.gz"
        digest = downloader.fetch(asset.url, archive, limit=ARCHIVE_LIMIT_BYTES, expected=Expected(published, asset.checksum_url))
        binary = Path(scratch) / "helm"
        with tarfile.open(archive) as bundle:
            member = bundle.getmember(asset.member) if asset.member in bundle.getnames() else None
            source = bundle.extractfile(member) if member is not None and member.isfile() else None
            if source is None:
                raise DownloadError(asset.url, f"holds no {asset.member}: refused")
            binary.write_bytes(source.read())
        os.chmod(binary, 0o755)  # noqa: S103 (a program everyone may run, as installed tools are)
        said = client_version(str(binary))
        if said not in ACCEPTED_VERSIONS:
            raise DownloadError(asset.url, f"its helm says it is {said or 'nothing'}, not v{HELM_VERSION}: refused")
        binary.replace(target)
    lock.record(asset.url, digest)
    return digest
