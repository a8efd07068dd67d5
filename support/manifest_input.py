"""Edge Stack's manifests as the config names them: read (a URL from its verified cached copy), bounded, checked."""

from __future__ import annotations

import re
import stat
from collections.abc import Callable
from pathlib import Path

import yaml

from support.downloads import DownloadError
from support.errors import ConfigError
from support.lockfile import LockError
from support.project import PROJECT_ROOT
from support.tools import SETUP_COMMAND
from support.upstream_cache import MANIFEST_LIMIT_BYTES, UpstreamCache
from support.yaml_events import SAFE_LOADER, nesting_depth_change, uses_aliases

# Deeper YAML is refused before it is composed; Edge Stack's CRD manifests nest 25 deep.
MANIFEST_NESTING_LIMIT = 100


def read_manifest(key: str, location: str, read: Callable[[str], str], cache: UpstreamCache | None = None) -> str:
    """The manifest at `location`, checked to be a bounded, alias-free Kubernetes manifest; or an error naming the key.

    An https URL is read from its verified copy in the project's cache (`cache`), fetched there first
    when missing; plain http is refused. The checks run on the parser's events, before anything is
    composed, so an alias bomb or a pathological nesting is refused in milliseconds; no error shows the
    file's content.
    """
    path = _local_path(key, location, cache)
    try:
        status = path.stat()
    except OSError as error:
        raise ConfigError(
            key, location, f"cannot be read ({error.strerror}); point it at a reachable URL or a local copy"
        ) from None
    if not stat.S_ISREG(status.st_mode):
        raise ConfigError(key, location, "is not a regular file")
    if status.st_size > MANIFEST_LIMIT_BYTES:
        raise ConfigError(key, location, f"is {status.st_size} bytes, more than a manifest's {MANIFEST_LIMIT_BYTES}")
    try:
        text = read(str(path))
    except (OSError, ValueError) as error:
        raise ConfigError(key, location, f"cannot be read ({error}); point it at a reachable URL or a local copy") from None
    if len(text) > MANIFEST_LIMIT_BYTES:
        raise ConfigError(key, location, f"is {len(text)} characters, more than a manifest's {MANIFEST_LIMIT_BYTES}")
    problem = manifest_problem(text)
    if problem is not None:
        raise ConfigError(key, location, f"is not a Kubernetes manifest: {problem}")
    return text


def _local_path(key: str, location: str, cache: UpstreamCache | None) -> Path:
    """Where the manifest named by `location` is on this machine: a path (relative to the project), or a URL's cached copy."""
    if re.match(r"^http://", location, re.IGNORECASE):
        raise ConfigError(key, location, "plain http is refused: name the https URL (or a local copy)")
    if re.match(r"^https://", location, re.IGNORECASE):
        try:
            return (cache or UpstreamCache()).local_copy(location)
        except (DownloadError, LockError) as error:
            raise ConfigError(
                key, location, f"cannot be fetched ({error}); run {SETUP_COMMAND} where the network reaches it, or name a copy"
            ) from None
    path = Path(location).expanduser()
    return path if path.is_absolute() else PROJECT_ROOT / path  # relative paths are the project's


def manifest_problem(text: str) -> str | None:
    """Why `text` is not a manifest this program parses (aliases, nesting, objects without apiVersion and kind), or None.

    Upstream's manifests use no YAML aliases; refusing them closes the door on alias bombs.
    """
    scan = _ManifestScan()
    try:
        for event in yaml.parse(text, Loader=SAFE_LOADER):
            problem = scan.feed(event)
            if problem is not None:
                return f"document {scan.document} {problem}"
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        return "it is not valid YAML" + (f" at line {mark.line + 1}, column {mark.column + 1}" if mark else "")
    except yaml.YAMLError:
        return "it is not valid YAML"
    return None if scan.objects else "it holds no Kubernetes object"


class _ManifestScan:
    """Follows a YAML event stream: the document's number, the nesting depth, the top-level keys."""

    NOT_AN_OBJECT = "is not an object with apiVersion and kind"

    def __init__(self) -> None:
        self.document, self.depth, self.keys, self.expect_key = 0, 0, set[str](), False
        self.objects = 0

    def feed(self, event: yaml.Event) -> str | None:
        if uses_aliases(event):
            return "uses YAML anchors or aliases" + (f" (line {event.start_mark.line + 1})" if event.start_mark else "")
        if isinstance(event, yaml.DocumentStartEvent):
            self.document, self.keys, self.expect_key = self.document + 1, set(), False
            return None
        if isinstance(event, yaml.DocumentEndEvent):
            return self._document_end()
        if isinstance(event, yaml.ScalarEvent):
            return self._scalar(event)
        return self._nesting(event)

    def _document_end(self) -> str | None:
        if not self.keys:
            return None
        if not {"apiVersion", "kind"} <= self.keys:
            return self.NOT_AN_OBJECT
        self.objects += 1
        return None

    def _nesting(self, event: yaml.Event) -> str | None:
        change = nesting_depth_change(event)
        if change > 0 and self.depth == 0 and isinstance(event, yaml.SequenceStartEvent):
            return self.NOT_AN_OBJECT
        self.depth += change
        if change:
            # Opening: the first event inside the top-level mapping is a key; closing a nested value: a key comes next.
            self.expect_key = self.depth == 1
        if self.depth > MANIFEST_NESTING_LIMIT:
            return f"nests deeper than {MANIFEST_NESTING_LIMIT} levels"
        return None

    def _scalar(self, event: yaml.ScalarEvent) -> str | None:
        if self.depth == 0 and event.value.strip():
            return self.NOT_AN_OBJECT
        if self.depth == 1 and self.expect_key:
            self.keys.add(event.value)
        self.expect_key = self.depth == 1 and not self.expect_key
        return None
