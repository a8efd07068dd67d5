"""The program's idea of now: the real clock, or the one a test or a rehearsal sets.

`AES_LINKERD2_NOW` (ISO 8601, e.g. 2027-10-01T00:00:00Z) moves the clock that decides how many days
a certificate has left and whether an issuer is due, and the trust gates' "now" in `status` and `certs`
(so a rehearsal sees them as it would on that day); nothing else reads it.
"""

from __future__ import annotations

import datetime
import os

CLOCK_ENV = "AES_LINKERD2_NOW"


def now() -> datetime.datetime:
    raw = os.environ.get(CLOCK_ENV)
    if not raw:
        return datetime.datetime.now(datetime.UTC)
    try:
        return parse_time(raw)
    except ValueError:
        raise ValueError(f"${CLOCK_ENV} = {raw[:40]!r} is not an ISO 8601 time such as 2027-10-01T00:00:00Z") from None


def parse_time(raw: str) -> datetime.datetime:
    """An ISO 8601 time as the outputs and $AES_LINKERD2_NOW write it (`Z` for UTC; no zone means UTC)."""
    moment = datetime.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)
