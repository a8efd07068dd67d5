"""Free loopback ports for local servers, chosen below the kernel's ephemeral range.

A port the kernel hands out for `bind(0)` is taken from the ephemeral range, which is also where
every outgoing connection gets its local port: between choosing it and the server binding it, the
API server's own connection to etcd can take it (seen in CI: "bind: address already in use"). Ports
below that range are only ever taken by a server that asks for them by number.

Run as a script, prints N free ports, one per line (`python3 tests/ports.py 3`), for the e2e scripts.
"""

from __future__ import annotations

import random
import socket
import sys
from pathlib import Path

LOWEST = 20000
_RANDOM = random.SystemRandom()


def _ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports(count: int) -> list[int]:
    """`count` distinct ports nothing listens on now, outside the ephemeral range."""
    highest = max(_ephemeral_start() - 1, LOWEST + 1000)
    chosen: list[int] = []
    for _ in range(1000):
        port = _RANDOM.randint(LOWEST, highest)
        if port not in chosen and _bindable(port):
            chosen.append(port)
            if len(chosen) == count:
                return chosen
    raise RuntimeError(f"no {count} free loopback ports between {LOWEST} and {highest}")


if __name__ == "__main__":
    print("\n".join(str(port) for port in free_ports(int(sys.argv[1]) if len(sys.argv) > 1 else 1)))
