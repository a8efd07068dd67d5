"""One local Kubernetes API server (etcd and kube-apiserver, nothing else), on loopback, for tests.

Two users: `admin` (system:masters) and `preview` (no group: only what RBAC grants it), as contexts
of the same names in the kubeconfig it writes. Skipped, naming the tools, when they are not built.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from support import tools

TOOLS = ("etcd", "kube-apiserver", "kubectl")


@dataclass(frozen=True)
class ApiServer:
    kubectl: str
    kubeconfig: str

    def run(self, context: str, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [self.kubectl, "--kubeconfig", self.kubeconfig, "--context", context, *args],
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        if check:
            assert done.returncode == 0, done.stderr
        return done


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tool(name: str) -> str | None:
    cached = tools.tools_dir() / name
    return str(cached) if os.access(cached, os.X_OK) else shutil.which(name)


@contextmanager
def api_server(folder: Path) -> Iterator[ApiServer]:
    found = {name: _tool(name) for name in TOOLS}
    missing = [name for name, path in found.items() if path is None] + (["openssl"] if not shutil.which("openssl") else [])
    if missing:
        pytest.skip(
            f'LOCAL API SERVER TOOLS NOT FOUND ({", ".join(missing)}): test NOT RUN; `E2E_TOOLS="kube etcd" e2e/build-tools.sh`'
        )
    etcd, apiserver, kubectl = (str(found[name]) for name in TOOLS)
    etcd_port, peer_port, api_port = _free_port(), _free_port(), _free_port()
    subprocess.run(["openssl", "genrsa", "-out", str(folder / "sa.key"), "2048"], check=True, capture_output=True)
    subprocess.run(
        ["openssl", "rsa", "-in", str(folder / "sa.key"), "-pubout", "-out", str(folder / "sa.pub")],
        check=True,
        capture_output=True,
    )
    (folder / "tokens.csv").write_text("admin-token,admin,admin,system:masters\npreview-token,aes-linkerd2-preview,preview\n")
    logs = (folder / "etcd.log").open("w"), (folder / "apiserver.log").open("w")
    processes = [
        subprocess.Popen(
            [etcd, "--data-dir", str(folder / "etcd"), "--listen-client-urls", f"http://127.0.0.1:{etcd_port}",
             "--advertise-client-urls", f"http://127.0.0.1:{etcd_port}", "--listen-peer-urls", f"http://127.0.0.1:{peer_port}"],
            stdout=logs[0], stderr=subprocess.STDOUT,
        ),
        subprocess.Popen(
            [apiserver, "--etcd-servers", f"http://127.0.0.1:{etcd_port}", "--bind-address", "127.0.0.1",
             "--secure-port", str(api_port), "--cert-dir", str(folder / "certs"),
             "--service-account-issuer", "https://kubernetes.default.svc", "--service-account-key-file", str(folder / "sa.pub"),
             "--service-account-signing-key-file", str(folder / "sa.key"), "--token-auth-file", str(folder / "tokens.csv"),
             "--authorization-mode", "RBAC", "--service-cluster-ip-range", "127.0.120.0/24", "--advertise-address", "127.0.0.1"],
            stdout=logs[1], stderr=subprocess.STDOUT,
        ),
    ]  # fmt: skip
    kubeconfig = folder / "kubeconfig"
    server = ApiServer(kubectl=kubectl, kubeconfig=str(kubeconfig))
    try:
        config = ["--kubeconfig", str(kubeconfig), "config"]
        subprocess.run(
            [
                kubectl,
                *config,
                "set-cluster",
                "local",
                "--server",
                f"https://127.0.0.1:{api_port}",
                "--insecure-skip-tls-verify=true",
            ],
            check=True,
            capture_output=True,
        )
        for user in ("admin", "preview"):
            subprocess.run(
                [kubectl, *config, "set-credentials", user, "--token", f"{user}-token"], check=True, capture_output=True
            )
            subprocess.run(
                [kubectl, *config, "set-context", user, "--cluster", "local", "--user", user], check=True, capture_output=True
            )
        subprocess.run([kubectl, *config, "use-context", "admin"], check=True, capture_output=True)
        deadline = time.monotonic() + 120
        while server.run("admin", "get", "--raw", "/readyz", check=False).returncode != 0:
            if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                raise RuntimeError(f"the local API server did not start: {(folder / 'apiserver.log').read_text()[-2000:]}")
            time.sleep(1)
        while server.run("admin", "get", "namespace", "default", check=False).returncode != 0:
            time.sleep(1)
        yield server
    finally:
        for process in reversed(processes):
            process.terminate()
            process.wait(timeout=60)
        for log in logs:
            log.close()
