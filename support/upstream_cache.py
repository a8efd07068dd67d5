"""Upstream's files in the project's cache, verified: release manifests in reference/, the linkerd CLIs in bin/.

A cached manifest counts only when its bytes have the sha256 the version table (support/upstream.py) or
the lock file (aes-linkerd2.lock) gives; otherwise it is fetched again, verified. A file with no digest
in either is fetched and its digest recorded in the lock file. A linkerd CLI is fetched only when
`tools.find_linkerd` finds none of that release; it must match its release's own `.sha256` file and
the lock file, and say its release when asked. Nothing here dials the network for a file that is there
and verified.
"""

from __future__ import annotations

import hashlib
import os
import re
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from support import tools, upstream
from support.downloads import Downloader, DownloadError, Expected, file_sha256
from support.lockfile import LOCK_NAME, LockFile
from support.project import PROJECT_ROOT

# Manifests larger than this are refused (Edge Stack's CRDs are 0.4 MiB); the CLI is about 60 MiB.
MANIFEST_LIMIT_BYTES = 16 * 1024 * 1024
CLI_LIMIT_BYTES = 512 * 1024 * 1024
CHECKSUM_LIMIT_BYTES = 4096
# Where https URLs outside the catalogue land, under reference/.
OTHER_URLS = "urls"
VERSION_TABLE = "the version table (support/upstream.py)"

State = Literal["have", "fetched", "missing"]


@dataclass(frozen=True)
class Cached:
    """One item and where it stands: there and verified, just fetched, or missing (with why)."""

    title: str
    state: State
    path: Path
    note: str = ""


def published_checksum(body: bytes, asset_url: str) -> str:
    """The digest in a release's `.sha256` file: `<hex>  <name>` (name optional, `*` for binary mode) or the hex alone."""
    text = body.decode("ascii", errors="replace").strip()
    match = re.fullmatch(r"([0-9a-fA-F]{64})(?:\s+\*?(\S+))?", text)
    if match is None:
        raise DownloadError(f"{asset_url}.sha256", "is not a sha256 checksum file")
    name = match[2]
    if name is not None and name != asset_url.rsplit("/", 1)[1]:
        raise DownloadError(f"{asset_url}.sha256", f"names {name[:100]!r}, not the asset: refused")
    return match[1].lower()


def _cache_name(url: str) -> str:
    """A cache file name for a URL outside the catalogue: unique, and readable."""
    base = re.sub(r"[^A-Za-z0-9._-]", "_", Path(urllib.parse.urlsplit(url).path).name)[:80] or "index"
    return f"{OTHER_URLS}/{hashlib.sha256(url.encode()).hexdigest()[:16]}-{base}"


def _runs_as(version: str, url: str) -> Callable[[Path], None]:
    """The check a fetched CLI passes before it is moved into place: it says it is `version`."""

    def check(path: Path) -> None:
        os.chmod(path, 0o755)  # noqa: S103 (a program everyone may run, as installed tools are)
        said = tools.linkerd_client_version(str(path))
        if said != version:
            raise DownloadError(url, f"the fetched CLI says it is {said or 'nothing'}, not {version}: removed and refused")

    return check


@dataclass(frozen=True)
class UpstreamCache:
    downloader: Downloader = field(default_factory=Downloader)
    lock: LockFile = field(default_factory=lambda: LockFile(PROJECT_ROOT / LOCK_NAME))
    reference: Path = field(default_factory=tools.reference_dir)
    bin: Path = field(default_factory=tools.tools_dir)

    def _expected(self, url: str, sha256: str | None) -> Expected | None:
        if sha256 is not None:
            return Expected(sha256, VERSION_TABLE)
        recorded = self.lock.digest(url)
        return Expected(recorded, str(self.lock.path)) if recorded is not None else None

    def _file(self, title: str, url: str, path: Path, sha256: str | None, fetch: bool) -> Cached:
        expected = self._expected(url, sha256)
        if path.is_file():
            if expected is not None and file_sha256(path) == expected.sha256:
                return Cached(title, "have", path)
            note = "no digest recorded yet" if expected is None else f"its sha256 is not the one {expected.source} gives"
        else:
            note = "not in the cache"
        if not fetch:
            return Cached(title, "missing", path, note)
        digest = self.downloader.fetch(url, path, limit=MANIFEST_LIMIT_BYTES, expected=expected)
        if expected is None:
            self.lock.record(url, digest)
        return Cached(title, "fetched", path)

    def manifest(self, file: upstream.ReleaseFile, *, fetch: bool = True) -> Cached:
        """A release manifest of the catalogue in reference/<cache name>."""
        return self._file(file.title, file.url, self.reference / file.cache_name, file.sha256, fetch)

    def url(self, url: str, *, fetch: bool = True) -> Cached:
        """Any https URL: the catalogue's file, or one cached under reference/urls/ and pinned by the lock file."""
        file = upstream.release_manifest(url)
        if file is not None:
            return self.manifest(file, fetch=fetch)
        return self._file(url, url, self.reference / _cache_name(url), None, fetch)

    def local_copy(self, url: str) -> Path:
        """The verified local copy of an https URL, fetched first when missing."""
        return self.url(url).path

    def linkerd(self, version: str, *, fetch: bool = True) -> Cached:
        """The linkerd CLI of `version`: found where the program looks, or fetched into bin/linkerd-<version>."""
        title = f"linkerd CLI {version}"
        found = tools.find_linkerd(version)
        if found is not None:
            return Cached(title, "have", Path(found))
        target = self.bin / f"linkerd-{version}"
        if not fetch:
            return Cached(title, "missing", target, f"not found ({tools.where_to_look(version)})")
        asset = upstream.linkerd_cli(version)
        published = published_checksum(self.downloader.read(asset.checksum_url, CHECKSUM_LIMIT_BYTES), asset.url)
        self.lock.check(asset.url, published)
        digest = self.downloader.fetch(
            asset.url,
            target,
            limit=CLI_LIMIT_BYTES,
            expected=Expected(published, asset.checksum_url),
            accept=_runs_as(version, asset.url),
        )
        self.lock.record(asset.url, digest)
        return Cached(title, "fetched", target)
