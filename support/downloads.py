"""Files fetched over https into place, verified before they land.

https only, and a redirect to anything but https is refused; the body is streamed to a temporary file
beside the destination with the size cap applied while reading; its sha256 is checked before the file is
renamed into place (atomically: a reader sees the old file or the whole new one, never a part). Every
failure is one DownloadError whose text is one line naming the URL and what went wrong.

The opener (and with it the trust store and the proxies) is injectable: the tests trust their own
certificate authority and dial only 127.0.0.1.
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import os
import socket
import ssl
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

CHUNK_BYTES = 64 * 1024
TIMEOUT_SECONDS = 60.0
USER_AGENT = "aes-linkerd2-setup"
# What a network that reaches nothing answers: no name resolution, nothing listening, no route.
_UNREACHABLE_ERRNOS = {errno.ECONNREFUSED, errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN, errno.EADDRNOTAVAIL}


class DownloadError(Exception):
    """A fetch that did not end with verified bytes in place; its text is one line."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason


def host(url: str) -> str:
    """The host a URL (https:// or oci://) reaches: what `setup` groups items by, and an unreachable one names."""
    return urllib.parse.urlsplit(url).hostname or url


class UnreachableError(DownloadError):
    """The network does not reach the URL's host (no name resolution, connection refused, no route)."""

    def __init__(self, url: str) -> None:
        self.host = host(url)
        super().__init__(url, f"the network does not reach {self.host}")


@dataclass(frozen=True)
class Expected:
    """The sha256 a file must have, and who says so (named when it does not match)."""

    sha256: str
    source: str


class _HttpsOnlyRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(  # noqa: PLR0917 (urllib's signature)
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: http.client.HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        if urllib.parse.urlsplit(newurl).scheme != "https":
            raise DownloadError(req.full_url, f"redirected to {newurl[:200]!r}, which is not https: refused")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def https_opener(
    context: ssl.SSLContext | None = None, proxies: Mapping[str, str] | None = None
) -> urllib.request.OpenerDirector:
    """An opener that speaks https with `context` (default: the system's trust store) and keeps redirects on https.

    `proxies` None takes the environment's (https_proxy, no_proxy), as curl would.
    """
    return urllib.request.build_opener(
        urllib.request.ProxyHandler(None if proxies is None else dict(proxies)),
        urllib.request.HTTPSHandler(context=context or ssl.create_default_context()),
        _HttpsOnlyRedirects(),
    )


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def _require_https(url: str) -> None:
    if urllib.parse.urlsplit(url).scheme != "https":
        raise DownloadError(url, "only https URLs are fetched")


def _failure(url: str, error: BaseException) -> DownloadError:
    """The one-line reason for a failed transfer."""
    reason = error.reason if isinstance(error, urllib.error.URLError) else error
    if isinstance(error, urllib.error.HTTPError):
        return DownloadError(url, f"the server answered HTTP {error.code} {error.reason}")
    if isinstance(reason, socket.gaierror) or (isinstance(reason, OSError) and reason.errno in _UNREACHABLE_ERRNOS):
        return UnreachableError(url)
    if isinstance(reason, TimeoutError | socket.timeout):
        return DownloadError(url, f"no answer within {TIMEOUT_SECONDS:.0f} seconds")
    if isinstance(reason, ssl.SSLError):
        return DownloadError(url, f"TLS failed ({getattr(reason, 'verify_message', None) or reason.reason or reason})")
    return DownloadError(url, f"the transfer failed ({reason})")


@dataclass(frozen=True)
class Downloader:
    """Fetches https URLs through one opener; `fetch` places verified files, `read` returns small bodies."""

    opener: urllib.request.OpenerDirector = field(default_factory=https_opener)
    timeout: float = TIMEOUT_SECONDS

    def _stream(self, url: str, limit: int, write: Callable[[bytes], object]) -> str:
        """Write the body at `url` through `write`, at most `limit` bytes read; its sha256."""
        _require_https(url)
        digest, total = hashlib.sha256(), 0
        too_large = DownloadError(url, f"is larger than {limit} bytes: refused while reading")
        try:
            request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})  # noqa: S310 (https checked above)
            with self.opener.open(request, timeout=self.timeout) as answer:
                announced = answer.headers.get("Content-Length", "")
                if announced.isdigit() and int(announced) > limit:
                    raise too_large
                # Never ask for more than one byte past the cap.
                while chunk := answer.read(min(CHUNK_BYTES, limit + 1 - total)):
                    total += len(chunk)
                    if total > limit:
                        raise too_large
                    digest.update(chunk)
                    write(chunk)
        except DownloadError:
            raise
        except (OSError, http.client.HTTPException, ValueError) as error:
            raise _failure(url, error) from None
        return digest.hexdigest()

    def read(self, url: str, limit: int) -> bytes:
        """The body at `url`, for small files (checksum files): at most `limit` bytes."""
        body = bytearray()
        self._stream(url, limit, body.extend)
        return bytes(body)

    def fetch(
        self,
        url: str,
        destination: Path,
        *,
        limit: int,
        expected: Expected | None = None,
        accept: Callable[[Path], None] | None = None,
    ) -> str:
        """Fetch `url` into `destination`; its sha256.

        With `expected`, a different digest is refused; `accept` may refuse the complete file too (it
        raises DownloadError). Either way nothing is left behind: the destination keeps what it had.
        """
        _require_https(url)
        destination.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(dir=destination.parent, prefix=f".{destination.name}.", suffix=".part")
        partial = Path(name)
        try:
            with os.fdopen(handle, "wb") as sink:
                digest = self._stream(url, limit, sink.write)
                sink.flush()
                os.fsync(sink.fileno())
            if expected is not None and digest != expected.sha256.lower():
                raise DownloadError(url, f"its sha256 is {digest}, but {expected.source} says {expected.sha256}: refused")
            if accept is not None:
                accept(partial)
            partial.replace(destination)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return digest
