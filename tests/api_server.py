"""One local Kubernetes API server (etcd and kube-apiserver, nothing else), on loopback, for tests.

Two users: `admin` (system:masters) and `preview` (no group: only what RBAC grants it), as contexts
of the same names in the kubeconfig it writes. Skipped, naming the tools, when they are not built.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from support import tools
from tests.ports import free_ports

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


def _tool(name: str) -> str | None:
    cached = tools.tools_dir() / name
    return str(cached) if os.access(cached, os.X_OK) else shutil.which(name)


def _start(etcd: str, apiserver: str, folder: Path, attempt: int) -> tuple[list[subprocess.Popen[bytes]], int]:
    """etcd and kube-apiserver on fresh ports; the API server's port is returned."""
    etcd_port, peer_port, api_port = free_ports(3)
    data = folder / f"etcd-{attempt}"
    logs = (folder / "etcd.log").open("w"), (folder / "apiserver.log").open("w")
    etcd_args = [
        f"--data-dir={data}",
        f"--listen-client-urls=http://127.0.0.1:{etcd_port}",
        f"--advertise-client-urls=http://127.0.0.1:{etcd_port}",
        f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
    ]
    apiserver_args = [
        f"--etcd-servers=http://127.0.0.1:{etcd_port}",
        "--bind-address=127.0.0.1",
        f"--secure-port={api_port}",
        f"--cert-dir={folder / 'certs'}",
        "--service-account-issuer=https://kubernetes.default.svc",
        f"--service-account-key-file={folder / 'sa.pub'}",
        f"--service-account-signing-key-file={folder / 'sa.key'}",
        f"--token-auth-file={folder / 'tokens.csv'}",
        "--authorization-mode=RBAC",
        "--service-cluster-ip-range=127.0.120.0/24",
        "--advertise-address=127.0.0.1",
    ]
    with logs[0], logs[1]:
        processes = [
            subprocess.Popen([etcd, *etcd_args], stdout=logs[0], stderr=subprocess.STDOUT),
            subprocess.Popen([apiserver, *apiserver_args], stdout=logs[1], stderr=subprocess.STDOUT),
        ]
    return processes, api_port


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in reversed(processes):
        process.terminate()
        process.wait(timeout=60)


def _write_kubeconfig(kubectl: str, kubeconfig: Path, api_port: int) -> None:
    config = [kubectl, "--kubeconfig", str(kubeconfig), "config"]
    server = f"https://127.0.0.1:{api_port}"
    subprocess.run(
        [*config, "set-cluster", "local", "--server", server, "--insecure-skip-tls-verify=true"], check=True, capture_output=True
    )
    for user in ("admin", "preview"):
        subprocess.run([*config, "set-credentials", user, "--token", f"{user}-token"], check=True, capture_output=True)
        subprocess.run([*config, "set-context", user, "--cluster", "local", "--user", user], check=True, capture_output=True)
    subprocess.run([*config, "use-context", "admin"], check=True, capture_output=True)


def _bind_lost(folder: Path) -> bool:
    logs = [folder / "etcd.log", folder / "apiserver.log"]
    return any("address already in use" in log.read_text() for log in logs if log.exists())


@contextmanager
def api_server(folder: Path) -> Iterator[ApiServer]:
    found = {name: _tool(name) for name in TOOLS}
    missing = [name for name, path in found.items() if path is None] + (["openssl"] if not shutil.which("openssl") else [])
    if missing:
        pytest.skip(
            f'LOCAL API SERVER TOOLS NOT FOUND ({", ".join(missing)}): test NOT RUN; `E2E_TOOLS="kube etcd" e2e/build-tools.sh`'
        )
    etcd, apiserver, kubectl = (str(found[name]) for name in TOOLS)
    subprocess.run(["openssl", "genrsa", "-out", str(folder / "sa.key"), "2048"], check=True, capture_output=True)
    subprocess.run(
        ["openssl", "rsa", "-in", str(folder / "sa.key"), "-pubout", "-out", str(folder / "sa.pub")],
        check=True,
        capture_output=True,
    )
    (folder / "tokens.csv").write_text("admin-token,admin,admin,system:masters\npreview-token,aes-linkerd2-preview,preview\n")
    kubeconfig = folder / "kubeconfig"
    server = ApiServer(kubectl=kubectl, kubeconfig=str(kubeconfig))
    processes: list[subprocess.Popen[bytes]] = []
    try:
        # Another process can still take a port between our choice and the bind: then start again.
        for attempt in range(3):
            processes, api_port = _start(etcd, apiserver, folder, attempt)
            _write_kubeconfig(kubectl, kubeconfig, api_port)
            deadline = time.monotonic() + 120
            while server.run("admin", "get", "--raw", "/readyz", check=False).returncode != 0:
                if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                    break
                time.sleep(1)
            else:
                break
            _stop(processes)
            processes = []
            if not _bind_lost(folder):
                break
        if not processes:
            raise RuntimeError(f"the local API server did not start: {(folder / 'apiserver.log').read_text()[-2000:]}")
        while server.run("admin", "get", "namespace", "default", check=False).returncode != 0:
            time.sleep(1)
        yield server
    finally:
        _stop(processes)
