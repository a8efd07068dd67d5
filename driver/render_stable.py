"""What `render` writes, made comparable: identical inputs give identical bytes, on any machine.

- Keys are sorted (a mapping's order means nothing to Kubernetes; the wire format's order changes
  from run to run), with `apiVersion`, `kind` and `metadata` first as kubectl prints them. Lists
  keep their order: it is meaningful.
- Certificates are masked as `[generated]`, not made deterministic. The render makes fresh
  identity certificates (as `up` makes its own, once) and the linkerd CLI fresh webhook
  certificates at every run; a deterministic stand-in would need a fixed key and a fixed clock
  (so a certificate whose dates mean nothing) and could not reach inside the CLI at all. Masked
  are: every PEM in any shape the program writes one (as written, JSON-escaped, in a block
  scalar, base64-encoded), the hashes of the certificates (`linkerd.io/trust-root-sha256`) and
  their dates (`notBefore`/`notAfter`, the issuer-expiry annotation), and each field the program
  itself declares regenerated at every render (its `ignore_changes`: webhook certificates and
  `checksum/config`). Secrets stay `[secret]`.
- Machine paths in the CLI steps and notes become placeholders: the project directory
  `<project>`, its Python interpreter `<python>`, the linkerd CLI `<linkerd>`, anything under
  the temporary directory `<tmp>/<file name>`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import sys
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from cryptography import x509

from support.stand_ins import strings_in

GENERATED = "[generated]"
FIRST_KEYS = ("apiVersion", "kind", "metadata")
_PEM = re.compile(r"-----BEGIN (?P<label>[A-Z0-9 ]+)-----.*?-----END (?P=label)-----", re.DOTALL)
# What may sit between the lines of a PEM: whitespace and JSON's escaped line breaks.
_LINE_NOISE = re.compile(r"\s+|\\[rn]")
_BASE64 = re.compile(r"^[A-Za-z0-9+/\s]{24,}={0,2}\s*$")
_TIME = "%Y-%m-%dT%H:%M:%SZ"
# One step of an ignore_changes path: `.name`, `[*]` or `["key"]`.
_PATH_STEP = re.compile(r'\.?(?P<name>[A-Za-z0-9_-]+)|\[(?P<all>\*)\]|\["(?P<key>[^"]+)"\]')


def sorted_keys(value: Any) -> Any:
    """`value` with every mapping's keys sorted, recursively."""
    if isinstance(value, dict):
        return {key: sorted_keys(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [sorted_keys(item) for item in value]
    return value


def kubectl_order(body: dict[str, Any]) -> dict[str, Any]:
    """A Kubernetes object with sorted keys, apiVersion, kind and metadata first."""
    ordered: dict[str, Any] = sorted_keys(body)
    return {key: ordered[key] for key in FIRST_KEYS if key in ordered} | ordered


def _decoded(text: str) -> str | None:
    if not _BASE64.match(text):
        return None
    try:
        return base64.b64decode(_LINE_NOISE.sub("", text)).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None


def _lines(pem: str) -> list[str]:
    """The lines of a PEM as found (JSON-escaped or indented), as written."""
    return [line.strip() for line in re.split(r"\r?\n|(?:\\r)?\\n", pem) if line.strip()]


def _digests(pems: Sequence[str]) -> set[str]:
    """The hashes a manifest may carry of these PEMs (Linkerd annotates pods with the trust roots')."""
    text = "\n".join(line for pem in pems for line in _lines(pem))
    return {hashlib.sha256(form.encode()).hexdigest() for form in (text, text + "\n")}


def _dates(pem: str) -> set[str]:
    try:
        cert = x509.load_pem_x509_certificate("\n".join(_lines(pem)).encode() + b"\n")
    except ValueError:
        return set()
    return {cert.not_valid_before_utc.strftime(_TIME), cert.not_valid_after_utc.strftime(_TIME)}


class Masks:
    """What betrays a generated certificate, learnt from everything one stack's render holds."""

    def __init__(self, values: Iterable[Any]) -> None:
        self.traces: set[str] = set()
        for text in (t for value in values for t in strings_in(value)):
            decoded = _decoded(text)
            pems = [m.group(0) for m in _PEM.finditer(decoded if decoded is not None else text)]
            if not pems:
                continue
            self.traces |= _digests(pems)
            for pem in pems:
                self.traces |= _digests([pem]) | _dates(pem)

    def text(self, text: str) -> str:
        decoded = _decoded(text)
        if decoded is not None and _PEM.search(decoded):
            return GENERATED
        text = _PEM.sub(GENERATED, text)
        for trace in self.traces:
            text = text.replace(trace, GENERATED)
        return text


def map_strings(value: Any, change: Callable[[str], str]) -> Any:
    """`value` with `change` applied to every string in it, recursively."""
    if isinstance(value, dict):
        return {key: map_strings(item, change) for key, item in value.items()}
    if isinstance(value, list):
        return [map_strings(item, change) for item in value]
    return change(value) if isinstance(value, str) else value


def mask_field(body: Any, path: str) -> Any:
    """`body` with the field at an ignore_changes `path` (`a.b[*].c`, `x["y/z"]`) set to GENERATED."""
    steps = [m.group("name") or m.group("key") or "*" for m in _PATH_STEP.finditer(path)]
    return _mask_steps(body, steps)


def _mask_steps(value: Any, steps: list[str]) -> Any:
    if not steps:
        return GENERATED
    head, rest = steps[0], steps[1:]
    if isinstance(value, list) and head == "*":
        return [_mask_steps(item, rest) for item in value]
    if isinstance(value, dict) and head in value:
        return {**value, head: _mask_steps(value[head], rest)}
    return value


class Placeholders:
    """Machine paths in command lines, replaced by names that read the same on every machine."""

    def __init__(self, project_dir: Path, linkerd: str | None) -> None:
        pairs = [(sys.executable, "<python>"), (str(project_dir / "venv" / "bin" / "python"), "<python>")]
        if linkerd and "/" in linkerd:
            pairs.append((linkerd, "<linkerd>"))
        pairs.append((str(project_dir), "<project>"))
        self.pairs = pairs
        self.temporary = re.compile(re.escape(tempfile.gettempdir().rstrip("/")) + r"/(?:[^\s'\"`]*/)?(?=[^/\s'\"`]+)")

    def text(self, text: str) -> str:
        for path, name in self.pairs:
            text = text.replace(path, name)
        return self.temporary.sub("<tmp>/", text)
