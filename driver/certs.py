"""`certs`: both stacks' identity certificates from their outputs, with what is due marked, each one's headroom (days
before it is due), and the trust rotation's gates as `status` reads them live (driver/status/checks.trust)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from support import clock, upstream

# `linkerd check` warns when a certificate has fewer days left than this; issuers renew before it would.
WARN_DAYS = upstream.ISSUER_RENEW_BEFORE_DAYS


def rows(outputs: Mapping[str, Mapping[str, Any]], warn_days: int = WARN_DAYS) -> list[dict[str, Any]]:
    """One row per certificate a stack applies or hands on, `daysLeft` counted now, `due` under `warn_days`.

    The outputs carry the days left at the last update; what matters is how many are left today.
    """
    now = clock.now()
    found = []
    for stack, values in outputs.items():
        for row in values.get("identityCertificates") or []:
            not_after = clock.parse_time(str(row["notAfter"]))
            days_left = (not_after - now).days
            due = {"daysLeft": days_left, "due": days_left < warn_days, "headroomDays": days_left - warn_days}
            found.append({"stack": stack, **row, **due})
    return found


def headroom(found: list[dict[str, Any]], stack: str) -> str:
    """A stack's anchors and issuer with the days each has before it is due (the rows' own numbers)."""
    parts = [f"{r['name']} {r['headroomDays']}" for r in found if r["stack"] == stack]
    return "days before due: " + (", ".join(parts) or "none reported")


def trust_text(found: list[dict[str, Any]], lines: list[tuple[str, str, str, str]]) -> str:
    """Below the table: each stack's headroom, then the rotation's gates as read live ((stack, name, state, detail))."""
    stacks = list(dict.fromkeys([*(r["stack"] for r in found), *(line[0] for line in lines)]))
    out = []
    for stack in stacks:
        out.append(f"{stack}: {headroom(found, stack)}")
        out += [f"{stack}: {name}: {state}: {detail}" for line_stack, name, state, detail in lines if line_stack == stack]
    return "\n".join(out)


def table(found: list[dict[str, Any]], warn_days: int = WARN_DAYS) -> str:
    header = ("stack", "name", "role", "subject", "not after", "days left", "")
    lines = [
        (r["stack"], r["name"], r["role"], r["subject"], r["notAfter"], str(r["daysLeft"]), "DUE" if r["due"] else "ok")
        for r in found
    ]
    widths = [max(len(line[i]) for line in [header, *lines]) for i in range(len(header))]
    text = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip() for line in [header, *lines]]
    due = sum(r["due"] for r in found)
    text.append(
        f"{due} certificate(s) with fewer than {warn_days} days left: run `./aes-linkerd2 up` (issuers renew themselves)"
        if due
        else f"every certificate has {warn_days} days or more left"
    )
    return "\n".join(text)
