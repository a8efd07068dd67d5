"""A version line that cannot install on the cluster's Kubernetes is refused before anything is applied.

The API server's /version is served here by a loopback HTTPS responder, so a test can choose what
it says (a real 1.34 API server refuses the page line in e2e/page-line.sh). Nothing leaves loopback.
"""

from __future__ import annotations

import base64
import datetime
import http.server
import ipaddress
import json
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from support import clusters, errors, upstream
from tests.conftest import SOURCE_CONTEXT, TARGET_CONTEXT, run_stack, target_config


def _serving_certificate(folder: Path) -> tuple[Path, Path, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    (folder / "server.crt").write_bytes(cert_pem)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    (folder / "server.key").write_bytes(key_pem)
    return folder / "server.crt", folder / "server.key", base64.b64encode(cert_pem).decode()


class VersionServer:
    """An HTTPS /version on 127.0.0.1 that says what the test sets."""

    def __init__(self, folder: Path) -> None:
        self.reply: dict[str, str] = {"major": "1", "minor": "34", "gitVersion": "v1.34.3"}
        cert, key, self.ca_data = _serving_certificate(folder)
        reply = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = json.dumps(reply.reply).encode() if self.path == "/version" else b"{}"
                self.send_response(200 if self.path == "/version" else 404)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(cert, key)
        self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def kubeconfig(self, path: Path) -> Path:
        contexts = [TARGET_CONTEXT, SOURCE_CONTEXT]
        cluster = {"server": f"https://127.0.0.1:{self.port}", "certificate-authority-data": self.ca_data}
        path.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": c, "cluster": cluster} for c in contexts],
                    "users": [{"name": c, "user": {}} for c in contexts],
                    "contexts": [{"name": c, "context": {"cluster": c, "user": c}} for c in contexts],
                }
            )
        )
        return path


@pytest.fixture
def api_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[VersionServer]:
    server = VersionServer(tmp_path)
    monkeypatch.setenv("KUBECONFIG", str(server.kubeconfig(tmp_path / "versioned-kubeconfig")))
    yield server
    server.server.shutdown()


def test_the_servers_version_is_read_through_the_kubeconfigs_trust(api_server: VersionServer) -> None:
    cluster = {"server": f"https://127.0.0.1:{api_server.port}", "certificate-authority-data": api_server.ca_data}
    assert clusters.server_version(cluster) == (1, 34)
    api_server.reply = {"major": "1", "minor": "29+", "gitVersion": "v1.29.4-eks-036c24b"}
    assert clusters.server_version(cluster) == (1, 29)
    # A server the kubeconfig does not trust is not read: the version stays unknown.
    assert clusters.server_version({"server": cluster["server"]}) is None
    assert clusters.server_version({**cluster, "server": "http://127.0.0.1:1"}) is None


def test_page_line_on_a_current_cluster_is_refused_before_any_resource(api_server: VersionServer) -> None:
    run = run_stack("target", target_config("linkerd-2.8"))
    assert isinstance(run.error, errors.ConfigError) and run.error.key == "versionLine"
    assert str(run.error) == (
        f"config aes-linkerd2:versionLine = 'linkerd-2.8': the API server of context {TARGET_CONTEXT!r} runs Kubernetes 1.34, "
        "and this line needs Kubernetes 1.21 or older (its CRDs and APIs are gone there)"
    )
    assert run.registrations == []


def test_page_line_on_a_cluster_of_its_time_goes_ahead(api_server: VersionServer) -> None:
    api_server.reply = {"major": "1", "minor": "21", "gitVersion": "v1.21.14"}
    cfg_line = upstream.VERSION_LINES["linkerd-2.8"]
    assert cfg_line.supports_kubernetes((1, 21))
    clusters.check_line_fits(cfg_line, (1, 21), TARGET_CONTEXT)  # no error
    cluster = {"server": f"https://127.0.0.1:{api_server.port}", "certificate-authority-data": api_server.ca_data}
    assert clusters.server_version(cluster) == (1, 21)


def test_the_driver_refuses_it_before_the_engine_starts(api_server: VersionServer, tmp_path: Path) -> None:
    import shutil

    from driver import Deployment, DriverError
    from tests.conftest import ROOT
    from tests.test_driver import ENV, FakeEngine, tool_answers

    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(ROOT / "Pulumi.yaml", project / "Pulumi.yaml")
    shutil.copy(ROOT / ".pulumi-version", project / ".pulumi-version")
    settings = yaml.safe_load((ROOT / "Pulumi.target.yaml").read_text())
    settings["config"]["aes-linkerd2:versionLine"] = "linkerd-2.8"
    del settings["config"]["aes-linkerd2:edgeStackProduct"]  # the page's line has Edge Stack alone
    settings["config"]["aes-linkerd2:context"] = TARGET_CONTEXT
    (project / "Pulumi.target.yaml").write_text(yaml.safe_dump(settings))
    engine = FakeEngine()
    driver = Deployment(
        project,
        stacks=["target"],
        environ={**ENV, "KUBECONFIG": str(api_server.kubeconfig(tmp_path / "kube"))},
        engine=engine,
        which=lambda tool: "/usr/bin/" + tool,
        run_tool=tool_answers("stable-2.8.1"),
        find_linkerd=lambda version: None,
        release_files=lambda stack, settings, fetch: [],
    )
    with pytest.raises(DriverError) as raised:
        driver.preview()
    assert str(raised.value).splitlines() == [
        "1 problem found before preview; nothing was applied:",
        f"  - target: context {TARGET_CONTEXT}: config aes-linkerd2:versionLine = 'linkerd-2.8': the API server of context "
        f"{TARGET_CONTEXT!r} runs Kubernetes 1.34, and this line needs Kubernetes 1.21 or older (its CRDs and APIs are gone "
        "there)",
    ]
    assert raised.value.exit_code == 2 and engine.calls == []
