"""`certs`: both stacks' identity certificates from their outputs, with what is due marked."""

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
            found.append({"stack": stack, **row, "daysLeft": days_left, "due": days_left < warn_days})
    return found


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
