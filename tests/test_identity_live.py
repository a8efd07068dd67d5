"""The identity on a real API server: the render against the real CLI's external issuer, the certificate
Commands with the real kubectl, and what the PR preview's identity may read.

Each test starts its own etcd and kube-apiserver on loopback (tests/api_server.py); skipped, naming
the tools, when they are not built.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from components.linkerd_control_plane import external_issuer
from support import certificates, manifests, upstream
from tests.api_server import ApiServer, api_server
from tests.conftest import ROOT, real_linkerd

LINE = upstream.CURRENT


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ApiServer]:
    with api_server(tmp_path) as running:
        yield running


def _linkerd(binary: str, *args: str, server: ApiServer | None = None) -> str:
    cluster = ["--kubeconfig", server.kubeconfig, "--context", "admin"] if server else []
    done = subprocess.run([binary, *cluster, *args], capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _without(body: dict[str, Any], paths: tuple[str, ...]) -> dict[str, Any]:
    """`body` without the fields the CLI fills with fresh random material at every render (the line's generated_fields)."""
    body = json.loads(json.dumps(body))
    for path in paths:
        if path == "data":
            body.pop("data", None)
        elif path == "webhooks[*].clientConfig.caBundle":
            for hook in body.get("webhooks", []):
                hook["clientConfig"].pop("caBundle", None)
        elif path == "spec.caBundle":
            body["spec"].pop("caBundle", None)
        else:
            match = re.fullmatch(r'spec\.template\.metadata\.annotations\["(.+)"\]', path)
            assert match, path
            body["spec"]["template"]["metadata"]["annotations"].pop(match.group(1), None)
    return body


def test_the_transformed_render_is_what_install_identity_external_issuer_renders(server: ApiServer, tmp_path: Path) -> None:
    """The real CLI as oracle: `install --identity-external-issuer` against a live API server holding the issuer
    Secret, object by object against the program's offline render turned into an external issuer's."""
    binary = real_linkerd(LINE)
    anchor, issuer = certificates.placeholder_identity("cluster.local")
    files = {"ca.crt": anchor.cert_pem, "issuer.crt": issuer.cert_pem, "issuer.key": issuer.key_pem}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    # What the live install reads: its CRDs, an EndpointSlice (it checks the API has them), the issuer Secret.
    crds = _linkerd(binary, "install", "--crds", "--ignore-cluster", *LINE.crds_args)
    server.run("admin", "apply", "--server-side", "-f", "-", stdin=crds)
    server.run("admin", "create", "namespace", "linkerd")
    slice_ = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4", "endpoints": []}
    server.run("admin", "create", "-f", "-", stdin=json.dumps({**slice_, "metadata": {"name": "probe", "namespace": "default"}}))
    secret = certificates.issuer_secret(issuer, anchor.cert_pem, certificates.SCHEME_EXTERNAL)
    server.run("admin", "create", "-f", "-", stdin=json.dumps(secret))
    common = ["--ha", "--identity-trust-domain", "cluster.local", "--identity-trust-anchors-file", str(tmp_path / "ca.crt")]
    oracle_text = _linkerd(binary, "install", "--identity-external-issuer", *common, *LINE.install_args, server=server)
    offline_text = _linkerd(
        binary,
        "install",
        "--ignore-cluster",
        *common,
        "--identity-issuer-certificate-file",
        str(tmp_path / "issuer.crt"),
        "--identity-issuer-key-file",
        str(tmp_path / "issuer.key"),
        *LINE.install_args,
    )
    # The one value the live CLI reads from the server: its port, in the proxies' skip lists.
    port = server.run("admin", "config", "view", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}").stdout
    oracle_text = oracle_text.replace(f"443,{port.rsplit(':', 1)[1]}", "443,6443")

    def keyed(objects: list[manifests.ManifestObject]) -> dict[str, dict[str, Any]]:
        kept = [o for o in objects if o.key not in LINE.dropped_objects]
        return {o.key: _without(o.body, LINE.generated_fields.get(o.key, ())) for o in kept}

    oracle = keyed(manifests.parse(oracle_text))
    program = keyed(external_issuer(manifests.parse(offline_text), certificates.SCHEME_EXTERNAL))
    assert sorted(program) == sorted(oracle)
    assert f"Secret/linkerd/{certificates.ISSUER_SECRET}" not in program
    for key, body in oracle.items():
        assert program[key] == body, (key, _differences(program[key], body))
    # What differs from the offline render is only what the external issuer changes.
    offline = keyed(manifests.parse(offline_text))
    changed = sorted(key for key in program if program[key] != offline[key])
    assert changed == ["ConfigMap/linkerd/linkerd-config", "Deployment/linkerd/linkerd-identity"]


def _certificates(server: ApiServer, *args: str) -> subprocess.CompletedProcess[str]:
    """A certificate Command's line as the program registers it, run with the real kubectl."""
    cluster = ["--kubectl", server.kubectl, "--kubeconfig", server.kubeconfig, "--context", "admin"]
    return subprocess.run(
        [sys.executable, "-m", "support.certificates", *args[:3], *cluster, *args[3:]],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        timeout=120,
    )


def test_the_certificate_commands_keep_the_keys_in_the_cluster(server: ApiServer) -> None:
    server.run("admin", "create", "namespace", "linkerd")
    anchor_args = ("anchor", "--secret", "linkerd-trust-anchor", "--common-name", "root.linkerd.cluster.local")
    made = _certificates(server, *anchor_args, "--valid-hours", "24")
    assert made.returncode == 0, made.stderr
    assert made.stdout.startswith("-----BEGIN CERTIFICATE-----") and "PRIVATE KEY" not in made.stdout + made.stderr
    live = json.loads(server.run("admin", "get", "secret", "-n", "linkerd", "linkerd-trust-anchor", "-o", "json").stdout)
    assert live["type"] == "kubernetes.io/tls" and live["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "aes-linkerd2"}
    assert base64.b64decode(live["data"]["tls.crt"]).decode() == made.stdout
    # Run again (state lost): the same anchor, from its Secret.
    assert _certificates(server, *anchor_args, "--valid-hours", "24").stdout == made.stdout
    issuer_args = ("issuer", "--secret", "linkerd-trust-anchor", "--anchor-kubeconfig", server.kubeconfig)
    for _ in range(2):  # a renewal overwrites the Secret it wrote
        issued = _certificates(
            server,
            *issuer_args,
            "--anchor-context",
            "admin",
            "--common-name",
            "identity.linkerd.cluster.local",
            "--valid-hours",
            "2",
        )
        assert issued.returncode == 0, issued.stderr
        assert "PRIVATE KEY" not in issued.stdout + issued.stderr
    secret = json.loads(server.run("admin", "get", "secret", "-n", "linkerd", "linkerd-identity-issuer", "-o", "json").stdout)
    assert secret["type"] == "kubernetes.io/tls" and sorted(secret["data"]) == ["ca.crt", "tls.crt", "tls.key"]
    # Written server-side: no last-applied annotation holding a second copy of the key.
    assert "kubectl.kubernetes.io/last-applied-configuration" not in (secret["metadata"].get("annotations") or {})
    cert = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["tls.crt"]))
    assert cert == x509.load_pem_x509_certificate(issued.stdout.encode())
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(made.stdout.encode()))
    key = serialization.load_pem_private_key(base64.b64decode(secret["data"]["tls.key"]), password=None)
    assert key.public_key().public_numbers() == cert.public_key().public_numbers()  # type: ignore[union-attr]
    deleted = _certificates(server, "delete-anchor", "--secret", "linkerd-trust-anchor")
    assert deleted.returncode == 0, deleted.stderr
    assert server.run("admin", "get", "secret", "-n", "linkerd", "linkerd-trust-anchor", check=False).returncode != 0


def test_the_preview_identity_reads_everything_but_the_keys(server: ApiServer) -> None:
    for namespace in ("linkerd", "linkerd-multicluster"):
        server.run("admin", "create", "namespace", namespace)
    server.run("admin", "apply", "-f", str(ROOT / "deploy" / "preview-rbac.yaml"))
    rbac = list(yaml.safe_load_all((ROOT / "deploy" / "preview-rbac.yaml").read_text()))
    assert {doc["kind"] for doc in rbac} == {"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}

    def can(*args: str) -> str:
        done = server.run("preview", "auth", "can-i", *args, check=False)
        return done.stdout.strip()

    # The keys: the anchors' and the issuer's Secrets in linkerd, and every other Secret but the link's.
    assert can("get", "secrets", "-n", "linkerd") == "no"
    assert can("get", "secret/linkerd-trust-anchor", "-n", "linkerd") == "no"
    assert can("list", "secrets", "-n", "linkerd") == "no"
    assert can("list", "secrets", "--all-namespaces") == "no"
    assert can("get", "secrets", "-n", "ambassador") == "no"
    # What the diff reads, and link-gen's token in linkerd-multicluster.
    for args in (
        ("get", "configmaps", "-n", "linkerd"),
        ("list", "deployments.apps", "-n", "linkerd"),
        ("get", "customresourcedefinitions.apiextensions.k8s.io"),
        ("get", "poddisruptionbudgets.policy", "-n", "linkerd"),
        ("list", "validatingwebhookconfigurations.admissionregistration.k8s.io"),
        ("get", "secrets", "-n", "linkerd-multicluster"),
    ):
        assert can(*args) == "yes", args
    # Nothing written.
    for args in (("create", "secrets", "-n", "linkerd"), ("patch", "configmaps", "-n", "linkerd"), ("delete", "namespaces")):
        assert can(*args) == "no", args


def _differences(mine: Any, theirs: Any, path: str = "") -> list[str]:
    if isinstance(mine, dict) and isinstance(theirs, dict):
        return [d for k in sorted(mine.keys() | theirs.keys()) for d in _differences(mine.get(k), theirs.get(k), f"{path}.{k}")]
    if isinstance(mine, list) and isinstance(theirs, list) and len(mine) == len(theirs):
        return [d for i, (a, b) in enumerate(zip(mine, theirs, strict=True)) for d in _differences(a, b, f"{path}[{i}]")]
    return [] if mine == theirs else [f"{path}: {str(mine)[:200]!r} != {str(theirs)[:200]!r}"]
