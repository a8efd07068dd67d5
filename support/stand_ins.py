"""The public stand-in trust anchor in rendered text: replaced by the real roots, refused wherever it survives.

The linkerd CLI renders offline with a fixed public stand-in anchor, because the real roots are only
known once the anchor's Command has run. (No issuer is substituted: the issuer Secret is not part of
what is applied, see `external_issuer`.) Releases put the anchor in several shapes: as written,
JSON-escaped, as YAML block scalars indented to any depth inside a string (`linkerd-config`'s
`values`), base64-encoded, and hashed (`linkerd.io/trust-root-sha256`). `replace` handles each shape
as a pure function of the text; `leftovers` runs it with a decoy and reports any object in which a
trace of the stand-in is still found, so a shape nobody taught it stops the program instead of
reaching a cluster.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pulumi

_PEM_ARMOUR = re.compile(r"^-----(BEGIN|END) [A-Z0-9 ]+-----$")
# Between two lines of a PEM: a newline (or its JSON escape) and the indentation of the block.
_LINE_BREAK = r"(?P<sep>(?:\r?\n|(?:\\r)?\\n)[ \t]*)"
_BASE64_TEXT = re.compile(r"^[A-Za-z0-9+/]{24,}={0,2}$")
# What may sit between the lines of a PEM: whitespace and JSON's escaped line breaks.
_LINE_NOISE = re.compile(r"\s+|\\[rn]")


def _lines(pem: str) -> list[str]:
    return [line.strip() for line in pem.strip().splitlines() if line.strip()]


@functools.cache
def _line_pattern(pem: str) -> re.Pattern[str]:
    """The PEM with any line separator, the same between every pair of lines."""
    first, *rest = _lines(pem)
    return re.compile(re.escape(first) + _LINE_BREAK + "(?P=sep)".join(re.escape(line) for line in rest))


@functools.cache
def _digests(pem: str) -> tuple[str, ...]:
    """The hashes a manifest may carry of a PEM (Linkerd annotates pods with the trust root's)."""
    text = "\n".join(_lines(pem))
    return tuple(hashlib.sha256(form.encode()).hexdigest() for form in (text, text + "\n"))


@functools.cache
def fingerprints(pem: str) -> tuple[str, ...]:
    """Substrings that betray a PEM in any text that holds it, once line breaks are taken out.

    The end of its base64 body is unique to it (a certificate ends in its signature, a key in its
    public point); its other lines can be shared structure (the same extensions) with any CA.
    """
    body = "".join(line for line in _lines(pem) if not _PEM_ARMOUR.match(line)).rstrip("=")
    return (body[-40:], *_digests(pem))


def _compact(text: str) -> str:
    return _LINE_NOISE.sub("", text)


def _decoded(text: str) -> str | None:
    """`text` base64-decoded, when it is base64 of UTF-8 text."""
    compact = _compact(text)
    if not _BASE64_TEXT.match(compact):
        return None
    try:
        return base64.b64decode(compact).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None


def mentions(text: str, pems: Iterable[str]) -> bool:
    """Whether `text`, or the text it base64-encodes (at any depth), carries a trace of one of `pems`."""
    prints = [fp for pem in pems for fp in fingerprints(pem)]
    while True:
        compact = _compact(text)
        if any(fp in compact for fp in prints):
            return True
        decoded = _decoded(text)
        if decoded is None:
            return False
        text = decoded


def _rejoin(lines: list[str], match: re.Match[str]) -> str:
    """`lines` joined the way the matched text joined its own (newline or escape, and indentation)."""
    return match.group("sep").join(lines)


def replace(text: str, pairs: Sequence[tuple[str, str]]) -> str:
    """`text` with every (stand-in, real) pair's stand-in replaced in each shape it knows."""
    decoded = _decoded(text)
    if decoded is not None and mentions(decoded, [stand_in for stand_in, _ in pairs]):
        trailing = text[len(text.rstrip()) :]
        return base64.b64encode(replace(decoded, pairs).encode()).decode() + trailing
    for stand_in, real in pairs:
        text = _line_pattern(stand_in).sub(functools.partial(_rejoin, _lines(real)), text)
        for stand_in_digest, real_digest in zip(_digests(stand_in), _digests(real), strict=True):
            text = text.replace(stand_in_digest, real_digest)
    return text


def _cannot_mention(text: str, prints: Sequence[str], shortest: float) -> bool:
    """Whether `text` surely carries none of `prints`: what `mentions` checks first, done once for all PEMs.

    No fingerprint in its compact form, and no base64 to decode: `mentions` would answer False
    for each PEM (a text shorter than every fingerprint and than any base64 it decodes is neither).
    """
    if len(text) < shortest:
        return True
    compact = _compact(text)
    return not any(fp in compact for fp in prints) and not _BASE64_TEXT.match(compact)


def substitute(value: Any, replacements: Mapping[str, pulumi.Input[str]]) -> Any:
    """`value` (a manifest object or part of one) with the stand-ins replaced by their real values.

    A string that holds a stand-in becomes an output of the real values, secret when they are.
    """
    prints = [fp for stand_in in replacements for fp in fingerprints(stand_in)]
    # The shortest text that can hold a fingerprint, or base64 (24 characters at least) to decode;
    # without stand-ins, none can.
    shortest = min([24, *(len(fp) for fp in prints)]) if prints else math.inf
    return _substitute(value, replacements, prints, shortest)


def _substitute(value: Any, replacements: Mapping[str, pulumi.Input[str]], prints: Sequence[str], shortest: float) -> Any:
    if isinstance(value, dict):
        return {key: _substitute(item, replacements, prints, shortest) for key, item in value.items()}
    if isinstance(value, list):
        return [_substitute(item, replacements, prints, shortest) for item in value]
    if not isinstance(value, str) or _cannot_mention(value, prints, shortest):
        return value
    return _substitute_text(value, replacements)


def _substitute_text(text: str, replacements: Mapping[str, pulumi.Input[str]]) -> pulumi.Input[str]:
    """`text` as it is when it holds no stand-in, else an output of it with the stand-ins it holds replaced."""
    found = [(stand_in, real) for stand_in, real in replacements.items() if mentions(text, [stand_in])]
    if not found:
        return text
    stand_ins = [stand_in for stand_in, _ in found]
    return pulumi.Output.all(*(real for _, real in found)).apply(
        lambda reals: replace(text, list(zip(stand_ins, reals, strict=True)))
    )


def strings_in(value: Any) -> Iterable[str]:
    """Every string inside a decoded document, depth first."""
    if isinstance(value, dict):
        for item in value.values():
            yield from strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)
    elif isinstance(value, str):
        yield value


def leftovers(bodies: Mapping[str, Any], decoys: Mapping[str, str]) -> list[str]:
    """Keys of the bodies in which a stand-in survives `replace` with `decoys` as the real values."""
    pairs = list(decoys.items())
    stand_ins = list(decoys)
    return [
        key
        for key, body in bodies.items()
        if any(mentions(replace(text, pairs), stand_ins) for text in strings_in(body) if mentions(text, stand_ins))
    ]
