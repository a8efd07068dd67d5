"""aes-linkerd2.lock: the sha256 of each fetched file that has no digest in the version table.

Like Terraform's dependency lock file: a file's digest is recorded at its first verified fetch, the user
commits the lock file, and every later fetch must match it. One line per file, `<sha256>  <url>`
(sha256sum's layout), sorted by URL; lines starting with `#` are comments.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

LOCK_NAME = "aes-linkerd2.lock"
HEADER = """\
# aes-linkerd2.lock: the sha256 of each file the project fetched that has no digest in support/upstream.py,
# recorded at its first verified fetch (./aes-linkerd2 setup, or a preview that needed it). Commit it:
# every later fetch must match. A file its publisher changed stops the run; to take a new file on purpose,
# delete its line and fetch again.
"""
# https URLs (release files, CLIs) and oci://<reference>:<version> (pulled Helm charts, support/charts.py).
_LINE = re.compile(r"^([0-9a-f]{64})  ((?:https|oci)://\S+)$")


class LockError(Exception):
    """The lock file cannot be read, or a file's digest differs from the recorded one; one line."""


@dataclass(frozen=True)
class LockFile:
    path: Path

    def entries(self) -> dict[str, str]:
        """Each recorded URL and its sha256."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except (OSError, UnicodeDecodeError) as error:
            raise LockError(f"{self.path} cannot be read ({error.__class__.__name__})") from None
        entries: dict[str, str] = {}
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip() or line.startswith("#"):
                continue
            match = _LINE.match(line)
            if match is None:
                raise LockError(f"{self.path} line {number} is not `<sha256>  <https URL or oci:// reference>`")
            entries[match[2]] = match[1]
        return entries

    def digest(self, url: str) -> str | None:
        return self.entries().get(url)

    def check(self, url: str, sha256: str) -> None:
        """Refuse `sha256` for `url` when the lock file records another digest."""
        recorded = self.digest(url)
        if recorded is not None and recorded != sha256:
            raise LockError(
                f"{url}: its sha256 is {sha256}, but {self.path} records {recorded}: the published file changed; "
                "refused (delete its line to take the new file on purpose)"
            )

    def record(self, url: str, sha256: str) -> None:
        """Record `url`'s digest (checked against what is recorded), written atomically."""
        entries = self.entries()
        self.check(url, sha256)
        if entries.get(url) == sha256:
            return
        entries[url] = sha256
        body = HEADER + "".join(f"{digest}  {address}\n" for address, digest in sorted(entries.items()))
        handle, name = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".part")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as sink:
                sink.write(body)
            os.chmod(name, 0o644)
            os.replace(name, self.path)
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise
