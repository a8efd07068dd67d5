"""The local API server's ports: outside the ephemeral range, and a lost bind starts it again."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests import api_server as api_server_module
from tests import ports


def test_free_ports_are_distinct_bindable_and_below_the_ephemeral_range() -> None:
    chosen = ports.free_ports(5)
    assert len(set(chosen)) == 5
    assert all(ports.LOWEST <= port < ports._ephemeral_start() for port in chosen)
    for port in chosen:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


def test_a_port_taken_before_the_bind_starts_the_api_server_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        taken_port = taken.getsockname()[1]
        calls: list[list[int]] = []

        def first_api_port_taken(count: int) -> list[int]:
            fresh = ports.free_ports(count)
            calls.append(fresh if calls else [*fresh[:2], taken_port])
            return calls[-1]

        monkeypatch.setattr(api_server_module, "free_ports", first_api_port_taken)
        with api_server_module.api_server(tmp_path) as server:
            assert len(calls) == 2
            assert f"127.0.0.1:{calls[1][2]}" in Path(server.kubeconfig).read_text()
            assert server.run("admin", "get", "namespace", "default").returncode == 0
