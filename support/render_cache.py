"""The linkerd CLI's offline renders (and helm's of a local chart), kept in the project's cache and reused while
nothing that shapes them changed.

A render is reused only when its output is a function of what the key holds: the binary (its real
path, device, inode, size, modification and change times: a new or rewritten binary is another
key), the exact arguments, the standard input and every `LINKERD*` environment variable. So only
renders that read no cluster (`--ignore-cluster`) and no file (no argument names one; the kubeconfig
flag aside, which such a render never opens) are kept, and only when their output holds no key
material: `install`'s does (the webhooks' serving keys it makes up at every run, and the stand-in
issuer's key), so `install` always runs the CLI and nothing of it is written here. helm's renders of a
release's chart (`show chart`, `template`: no cluster) are kept the same way, the chart's content in the key
and `HELM*` variables in place of `LINKERD*` ones.

Entries live in `renders/` of the project's cache, the folder and files readable by their owner alone,
each written whole under a temporary name and then renamed. A partial, corrupt or foreign entry is
ignored (the CLI runs, and its output replaces the entry). `AES_LINKERD2_RENDER_CACHE=off` turns the
cache off; a path puts it there. Deleting the folder clears it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from support import tools
from support.downloads import file_sha256

RENDER_CACHE_ENV = "AES_LINKERD2_RENDER_CACHE"
OFF = "off"
_FORMAT = 1
# No render of Linkerd's comes near this; anything larger is not one of ours.
_MAX_ENTRY_BYTES = 64 * 1024 * 1024
# Entries not written for this long go at the next write (inputs that changed leave old ones behind).
_STALE_SECONDS = 30 * 24 * 3600
_OFFLINE_FLAG = "--ignore-cluster"
_KUBECONFIG_FLAG = "--kubeconfig"
# "PRIVATE KEY" as PEM prints it, and base64-encoded at each of the three alignments (a Secret's data).
_KEY_MARKERS = ("PRIVATE KEY", "UFJJVkFURSBLRVk", "BSSVZBVEUgS0VZ", "QUklWQVRFIEtFW")
_SECRET_KIND = re.compile(r"^kind:\s*[\"']?Secret[\"']?\s*$", re.MULTILINE)
_SECRET_DATA = re.compile(r"^(data|stringData):(?!\s*\{\}\s*$)", re.MULTILINE)


def folder() -> Path | None:
    """Where the entries live; None when the cache is turned off."""
    named = os.environ.get(RENDER_CACHE_ENV, "")
    if named.strip().lower() == OFF:
        return None
    return Path(named).expanduser() if named else tools.cache_root() / "renders"


def holds_key_material(text: str) -> bool:
    """Whether a render's output carries a private key or a Secret with data: such output is never written to disk."""
    if any(marker in text for marker in _KEY_MARKERS):
        return True
    documents = re.split(r"^---", text, flags=re.MULTILINE)
    return any(_SECRET_KIND.search(doc) and _SECRET_DATA.search(doc) for doc in documents)


def _reads_a_file(args: Sequence[str]) -> bool:
    after_kubeconfig = False
    for arg in args:
        if after_kubeconfig:
            after_kubeconfig = False
            continue
        if arg == _KUBECONFIG_FLAG:
            after_kubeconfig = True
        elif os.sep in arg and os.path.exists(arg):
            return True
    return False


def key(argv: Sequence[str], stdin: str | None) -> str | None:
    """The entry's name for this linkerd command, or None when its output may depend on more than the key holds."""
    if folder() is None or _OFFLINE_FLAG not in argv[1:] or _reads_a_file(argv[1:]):
        return None
    return _name(argv, stdin, "LINKERD", [])


def helm_key(argv: Sequence[str], stdin: str | None, chart: Path) -> str | None:
    """The entry's name for a helm command that reads a local chart (`show chart`, `template`) and no cluster: its
    key also holds the chart's content (each file's path and sha256; an archive's own sha256). None when a chart
    directory holds anything but plain files and folders (a link could point anywhere)."""
    if folder() is None:
        return None
    try:
        content = _chart_content(chart)
    except OSError:
        return None
    return None if content is None else _name(argv, stdin, "HELM", content)


def _chart_content(chart: Path) -> list[str] | None:
    if chart.is_file() and not chart.is_symlink():
        return [file_sha256(chart)]
    if not chart.is_dir() or chart.is_symlink():
        return None
    content = []
    for path in sorted(chart.rglob("*")):
        if path.is_symlink() or not (path.is_dir() or path.is_file()):
            return None
        if path.is_file():
            content.append(f"{path.relative_to(chart).as_posix()} {file_sha256(path)}")
    return content


def _name(argv: Sequence[str], stdin: str | None, env_prefix: str, content: list[str]) -> str | None:
    try:
        binary = os.path.realpath(argv[0])
        found = os.stat(binary)
    except OSError:
        return None
    identity = [binary, found.st_dev, found.st_ino, found.st_size, found.st_mtime_ns, found.st_ctime_ns]
    environment = sorted((name, value) for name, value in os.environ.items() if name.upper().startswith(env_prefix))
    material = json.dumps([_FORMAT, identity, list(argv), stdin, environment, content], separators=(",", ":"))
    return hashlib.sha256(material.encode()).hexdigest()


def _entry(name: str) -> Path | None:
    where = folder()
    return None if where is None else where / f"{name}.json"


def read(name: str) -> str | None:
    """The kept output of the render `name`, or None (absent, partial, corrupt, someone else's, or holding a key)."""
    path = _entry(name)
    if path is None:
        return None
    try:
        with open(path, "rb", opener=lambda p, flags: os.open(p, flags | os.O_NOFOLLOW)) as handle:
            found = os.fstat(handle.fileno())
            if found.st_uid != os.getuid() or found.st_size > _MAX_ENTRY_BYTES:
                return None
            entry = json.loads(handle.read())
        stdout = entry["stdout"]
        if not isinstance(stdout, str) or entry.get("sha256") != hashlib.sha256(stdout.encode()).hexdigest():
            return None  # partial or altered
        if entry.get("format") != _FORMAT or entry.get("key") != name or holds_key_material(stdout):
            return None
        return stdout
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None


def _private_folder(where: Path) -> bool:
    """The folder, made if missing, owned by this user and closed to others; False when it cannot be."""
    try:
        where.mkdir(mode=0o700, parents=True, exist_ok=True)
        found = where.lstat()
        if not where.is_dir() or where.is_symlink() or found.st_uid != os.getuid():
            return False
        if found.st_mode & 0o077:
            where.chmod(0o700)
        return True
    except OSError:
        return False


def write(name: str, stdout: str) -> bool:
    """Keep a render's output; never one that holds key material. False when nothing was written."""
    path = _entry(name)
    if path is None or holds_key_material(stdout) or not _private_folder(path.parent):
        return False
    entry = {"format": _FORMAT, "key": name, "sha256": hashlib.sha256(stdout.encode()).hexdigest(), "stdout": stdout}
    try:
        descriptor, scratch = tempfile.mkstemp(dir=path.parent, prefix=".partial-", suffix=".json")  # mode 0600
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                json.dump(entry, handle)
            os.replace(scratch, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(scratch)
    except OSError:
        return False
    _forget_stale(path.parent)
    return True


def _forget_stale(where: Path) -> None:
    cutoff = time.time() - _STALE_SECONDS
    for entry in where.glob("*.json"):
        with contextlib.suppress(OSError):
            if entry.lstat().st_mtime < cutoff:
                entry.unlink()
