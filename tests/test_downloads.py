"""Fetching upstream's files: support/downloads, the lock file, the verified cache and the `setup` verb.

THE REAL NETWORK PATH IS NOT EXERCISED HERE. This machine reaches neither GitHub nor getambassador.io,
so no test fetches a real linkerd CLI or a real release manifest, and nothing here proves that the
official URLs still answer, that GitHub's redirect to its asset host stays on https, or that the real
`.sha256` files keep their layout. What is tested is the mechanics, against a local HTTPS server on
127.0.0.1 (its own certificate authority, trusted by injecting the opener): verified placement, digests
refused, redirects to http refused, the size cap while streaming, the lock file, the CLI's checksum file
and version check, and that a filled cache makes no request. No test dials any other address.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import re
import socket
import ssl
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from driver import setup
from support import charts, helm, manifest_input, tools, upstream
from support.downloads import Downloader, DownloadError, Expected, UnreachableError, https_opener
from support.errors import ConfigError
from support.lockfile import LockError, LockFile
from support.upstream_cache import UpstreamCache, published_checksum

Route = Callable[[BaseHTTPRequestHandler], None]
MANIFEST = b"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: from-the-local-server\n"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _certificate(subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Certificate | None,
                 issuer_key: ec.EllipticCurvePrivateKey | None) -> x509.Certificate:  # fmt: skip
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if issuer is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
    return builder.sign(issuer_key or key, hashes.SHA256())


class Site:
    """A local HTTPS server on 127.0.0.1: routes by path, every request recorded, bytes sent counted."""

    def __init__(self, tmp: Path) -> None:
        ca_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
        ca = _certificate("test CA", ca_key, None, None)
        leaf = _certificate("127.0.0.1", leaf_key, ca, ca_key)
        (tmp / "leaf.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
        (tmp / "leaf.key").write_bytes(
            leaf_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        )
        self.ca_pem = ca.public_bytes(serialization.Encoding.PEM).decode()
        self.routes: dict[str, Route] = {}
        self.requests: list[str] = []
        self.sent = 0
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                site.requests.append(self.path)
                route = site.routes.get(self.path)
                if route is None:
                    self.send_error(404)
                else:
                    route(self)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tmp / "leaf.pem", tmp / "leaf.key")
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.base = f"https://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def downloader(self) -> Downloader:
        """Trusts only this site's CA; no proxy, so nothing leaves 127.0.0.1."""
        return Downloader(https_opener(ssl.create_default_context(cadata=self.ca_pem), proxies={}), timeout=10)

    def serve(self, path: str, body: bytes) -> str:
        def route(handler: BaseHTTPRequestHandler) -> None:
            handler.send_response(200)
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)
            self.sent += len(body)

        self.routes[path] = route
        return self.base + path

    def redirect(self, path: str, location: str) -> str:
        def route(handler: BaseHTTPRequestHandler) -> None:
            handler.send_response(302)
            handler.send_header("Location", location)
            handler.send_header("Content-Length", "0")
            handler.end_headers()

        self.routes[path] = route
        return self.base + path

    def endless(self, path: str, most: int) -> str:
        """A body without a length, written until the client hangs up (or `most` bytes)."""

        def route(handler: BaseHTTPRequestHandler) -> None:
            handler.send_response(200)
            handler.end_headers()
            chunk = b"x" * 65536
            try:
                while self.sent < most:
                    handler.wfile.write(chunk)
                    self.sent += len(chunk)
            except OSError:
                handler.close_connection = True

        self.routes[path] = route
        return self.base + path

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    served = Site(tmp_path)
    yield served
    served.close()


@pytest.fixture
def cache_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The project's cache in a temporary folder, and no linkerd CLI anywhere the program looks."""
    monkeypatch.setenv(tools.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv(tools.TOOLS_ENV, raising=False)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    for version in upstream.linkerd_versions():
        monkeypatch.delenv(tools.linkerd_env(version), raising=False)
    return tmp_path / "cache"


def leftovers(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir() if path.name.endswith(".part"))


def test_a_good_download_is_verified_and_placed(site: Site, tmp_path: Path) -> None:
    url = site.serve("/aes.yaml", MANIFEST)
    target = tmp_path / "out" / "aes.yaml"
    digest = site.downloader().fetch(url, target, limit=1024, expected=Expected(sha256(MANIFEST), "the test"))
    assert digest == sha256(MANIFEST) and target.read_bytes() == MANIFEST
    assert leftovers(target.parent) == []


def test_a_wrong_digest_is_refused_and_nothing_is_left_in_place(site: Site, tmp_path: Path) -> None:
    url = site.serve("/aes.yaml", MANIFEST)
    target = tmp_path / "aes.yaml"
    target.write_bytes(b"what was there")
    with pytest.raises(DownloadError) as raised:
        site.downloader().fetch(url, target, limit=1024, expected=Expected("0" * 64, "the version table"))
    assert str(raised.value) == f"{url}: its sha256 is {sha256(MANIFEST)}, but the version table says {'0' * 64}: refused"
    assert target.read_bytes() == b"what was there" and leftovers(tmp_path) == []


def test_a_redirect_to_http_is_refused_and_one_to_https_followed(site: Site, tmp_path: Path) -> None:
    to_http = site.redirect("/moved", f"http://127.0.0.1:{site.server.server_address[1]}/aes.yaml")
    with pytest.raises(DownloadError, match=r"redirected to 'http://127\.0\.0\.1:\d+/aes\.yaml', which is not https: refused"):
        site.downloader().fetch(to_http, tmp_path / "a.yaml", limit=1024)
    assert site.requests == ["/moved"] and not (tmp_path / "a.yaml").exists()
    site.serve("/aes.yaml", MANIFEST)
    to_https = site.redirect("/moved-safely", site.base + "/aes.yaml")
    site.downloader().fetch(to_https, tmp_path / "a.yaml", limit=1024)
    assert (tmp_path / "a.yaml").read_bytes() == MANIFEST


def test_only_https_urls_are_fetched(site: Site, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="only https URLs are fetched"):
        site.downloader().fetch("http://127.0.0.1:9/x", tmp_path / "x", limit=10)
    assert site.requests == []


def test_a_body_over_the_cap_stops_while_streaming(site: Site, tmp_path: Path) -> None:
    cap, most = 1024 * 1024, 256 * 1024 * 1024
    url = site.endless("/huge", most)
    with pytest.raises(DownloadError, match=f"is larger than {cap} bytes: refused while reading"):
        site.downloader().fetch(url, tmp_path / "huge", limit=cap)
    site.close()  # waits for the handler: it stopped when the client hung up
    # What the server got out is the cap plus what the sockets' buffers took, nowhere near the body.
    assert site.sent < 32 * 1024 * 1024, site.sent
    assert not (tmp_path / "huge").exists() and leftovers(tmp_path) == []


def test_an_announced_length_over_the_cap_is_refused_before_reading(site: Site, tmp_path: Path) -> None:
    url = site.serve("/big", b"y" * 5000)
    with pytest.raises(DownloadError, match="is larger than 4096 bytes"):
        site.downloader().read(url, 4096)


def test_errors_are_one_line_naming_the_url(site: Site, tmp_path: Path) -> None:
    with pytest.raises(DownloadError) as raised:
        site.downloader().fetch(site.base + "/absent", tmp_path / "x", limit=10)
    assert str(raised.value) == f"{site.base}/absent: the server answered HTTP 404 Not Found"
    # A certificate nobody here trusts.
    (tmp_path / "other").mkdir()
    other = Site(tmp_path / "other")
    other.close()
    untrusting = Downloader(https_opener(ssl.create_default_context(cadata=other.ca_pem), proxies={}), timeout=10)
    with pytest.raises(DownloadError, match=r"TLS failed \(certificate "):
        untrusting.fetch(site.serve("/a", MANIFEST), tmp_path / "x", limit=1024)
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    with pytest.raises(UnreachableError) as unreachable:
        site.downloader().fetch(f"https://127.0.0.1:{port}/x", tmp_path / "x", limit=10)
    assert str(unreachable.value) == f"https://127.0.0.1:{port}/x: the network does not reach 127.0.0.1"


def test_the_lock_file_records_the_first_fetch_and_refuses_a_changed_file(site: Site, cache_env: Path, tmp_path: Path) -> None:
    lock = LockFile(tmp_path / "aes-linkerd2.lock")
    cache = UpstreamCache(site.downloader(), lock)
    url = site.serve("/mirror/aes.yaml", MANIFEST)
    copy = cache.local_copy(url)
    assert copy.read_bytes() == MANIFEST and copy.is_relative_to(tools.reference_dir() / "urls")
    assert lock.entries() == {url: sha256(MANIFEST)}
    assert f"{sha256(MANIFEST)}  {url}\n" in lock.path.read_text()
    # The publisher changes the file; the cached copy is gone: the new bytes are refused, naming both digests and the lock.
    changed = MANIFEST.replace(b"from-the-local-server", b"changed")
    site.serve("/mirror/aes.yaml", changed)
    copy.unlink()
    with pytest.raises(DownloadError) as raised:
        cache.local_copy(url)
    assert str(raised.value) == f"{url}: its sha256 is {sha256(changed)}, but {lock.path} says {sha256(MANIFEST)}: refused"
    assert not copy.exists() and lock.entries() == {url: sha256(MANIFEST)}
    with pytest.raises(LockError, match=f"its sha256 is {sha256(changed)}, but {lock.path} records {sha256(MANIFEST)}"):
        lock.record(url, sha256(changed))


def test_a_malformed_lock_file_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "aes-linkerd2.lock").write_text("# comment\nnot a digest  https://x\n")
    with pytest.raises(LockError, match=r"aes-linkerd2\.lock line 2 is not `<sha256>  <https URL or oci:// reference>`"):
        LockFile(tmp_path / "aes-linkerd2.lock").entries()


def fake_cli(version: str) -> bytes:
    return f"#!/bin/sh\necho {version}\n".encode()


def serve_cli(site: Site, monkeypatch: pytest.MonkeyPatch, version: str, body: bytes, checksum: str) -> upstream.LinkerdCliAsset:
    monkeypatch.setattr(upstream, "LINKERD_RELEASES", site.base + "/releases")
    asset = upstream.linkerd_cli(version)
    path = asset.url.removeprefix(site.base)
    site.serve(path, body)
    site.serve(path + ".sha256", checksum.encode())
    return asset


def test_the_cli_is_checked_against_its_release_checksum_file(
    site: Site, cache_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    version, body = "edge-26.8.3", fake_cli("edge-26.8.3")
    asset = serve_cli(site, monkeypatch, version, body, f"{sha256(body)}  {asset_name(version)}\n")
    lock = LockFile(tmp_path / "aes-linkerd2.lock")
    cached = UpstreamCache(site.downloader(), lock).linkerd(version)
    assert cached.state == "fetched" and cached.path == tools.tools_dir() / f"linkerd-{version}"
    assert cached.path.stat().st_mode & 0o777 == 0o755 and tools.find_linkerd(version) == str(cached.path)
    assert lock.entries() == {asset.url: sha256(body)}
    assert site.requests == [asset.checksum_url.removeprefix(site.base), asset.url.removeprefix(site.base)]


def asset_name(version: str) -> str:
    return upstream.linkerd_cli(version).url.rsplit("/", 1)[1]


def test_a_cli_that_differs_from_its_checksum_file_is_refused(
    site: Site, cache_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    version = "edge-26.8.3"
    asset = serve_cli(site, monkeypatch, version, fake_cli(version), "a" * 64)  # the bare-hex layout
    lock = LockFile(tmp_path / "aes-linkerd2.lock")
    with pytest.raises(DownloadError, match=f"but {asset.checksum_url} says {'a' * 64}: refused"):
        UpstreamCache(site.downloader(), lock).linkerd(version)
    assert not (tools.tools_dir() / f"linkerd-{version}").exists() and lock.entries() == {}


def test_a_cli_whose_checksum_file_disagrees_with_the_lock_is_refused_before_it_is_fetched(
    site: Site, cache_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    version, body = "stable-2.8.1", fake_cli("stable-2.8.1")
    asset = serve_cli(site, monkeypatch, version, body, sha256(body))
    lock = LockFile(tmp_path / "aes-linkerd2.lock")
    lock.record(asset.url, "b" * 64)
    with pytest.raises(LockError, match=f"its sha256 is {sha256(body)}, but {lock.path} records {'b' * 64}"):
        UpstreamCache(site.downloader(), lock).linkerd(version)
    assert site.requests == [asset.checksum_url.removeprefix(site.base)]


def test_a_cli_that_is_not_its_release_is_removed_and_refused(
    site: Site, cache_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    version, body = "edge-26.8.3", fake_cli("edge-25.1.1")
    serve_cli(site, monkeypatch, version, body, sha256(body))
    with pytest.raises(DownloadError, match=r"the fetched CLI says it is edge-25\.1\.1, not edge-26\.8\.3: removed and refused"):
        UpstreamCache(site.downloader(), LockFile(tmp_path / "lock")).linkerd(version)
    assert list(tools.tools_dir().iterdir()) == []


def test_checksum_files_in_both_layouts_and_no_other() -> None:
    url = "https://example.invalid/d/linkerd2-cli-edge-26.8.3-linux-amd64"
    assert published_checksum(b"AB" * 32 + b"\n", url) == "ab" * 32
    assert published_checksum(b"ab" * 32 + b"  linkerd2-cli-edge-26.8.3-linux-amd64\n", url) == "ab" * 32
    with pytest.raises(DownloadError, match=r"names 'linkerd2-cli-edge-26\.8\.3-darwin', not the asset"):
        published_checksum(b"ab" * 32 + b"  linkerd2-cli-edge-26.8.3-darwin", url)
    with pytest.raises(DownloadError, match="is not a sha256 checksum file"):
        published_checksum(b"<html>not found</html>", url)


@pytest.mark.parametrize(
    ("version", "system", "machine", "name"),
    [
        ("edge-26.8.3", "Linux", "x86_64", "linkerd2-cli-edge-26.8.3-linux-amd64"),
        ("edge-26.8.3", "Linux", "aarch64", "linkerd2-cli-edge-26.8.3-linux-arm64"),
        ("edge-26.8.3", "Linux", "armv7l", "linkerd2-cli-edge-26.8.3-linux-arm"),
        ("edge-26.8.3", "Darwin", "x86_64", "linkerd2-cli-edge-26.8.3-darwin"),
        ("edge-26.8.3", "Darwin", "arm64", "linkerd2-cli-edge-26.8.3-darwin-arm64"),
        ("edge-26.8.3", "Windows", "AMD64", "linkerd2-cli-edge-26.8.3-windows.exe"),
        ("stable-2.8.1", "Linux", "x86_64", "linkerd2-cli-stable-2.8.1-linux"),
    ],
)
def test_the_cli_asset_is_named_as_the_release_publishes_it(version: str, system: str, machine: str, name: str) -> None:
    asset = upstream.linkerd_cli(version, system, machine)
    assert asset.url == f"https://github.com/linkerd/linkerd2/releases/download/{version}/{name}"
    assert asset.checksum_url == asset.url + ".sha256"


def test_the_catalogue_lists_every_release_manifest_with_the_known_digests() -> None:
    files = {file.cache_name: file for file in upstream.release_manifests()}
    assert sorted(files) == [
        "edge-stack/aes-crds.v3.12.12.yaml",
        "edge-stack/aes.v3.12.12.yaml",
        "emissary/aes-crds.v1.14.4.yaml",
        "emissary/aes.v1.14.4.yaml",
        "emissary/emissary-crds.v3.9.1.yaml",
        "emissary/emissary-emissaryns.v3.9.1.yaml",
    ]
    assert files["emissary/aes-crds.v1.14.4.yaml"].url == "https://app.getambassador.io/yaml/ambassador-docs/1.14.4/aes-crds.yaml"
    assert files["emissary/aes-crds.v1.14.4.yaml"].sha256 == "a5f6f631494f4c086d63a8f7f840e883d7941d4ebd0717d27aac7ca33d089c15"
    # No digest is known here for Edge Stack 3.12.12: the lock file pins it at its first fetch.
    assert files["edge-stack/aes.v3.12.12.yaml"].sha256 is None
    assert all(upstream.release_manifest(file.url) == file for file in files.values())


def local_catalogue(site: Site, monkeypatch: pytest.MonkeyPatch) -> list[upstream.ReleaseFile]:
    """The catalogue's manifests, served by the local site (one with a digest the version table knows)."""
    known, locked = site.serve("/known.yaml", MANIFEST), site.serve("/locked.yaml", MANIFEST)
    files = [
        upstream.ReleaseFile(title="known", url=known, cache_name="x/known.yaml", sha256=sha256(MANIFEST)),
        upstream.ReleaseFile(title="locked", url=locked, cache_name="x/locked.yaml", sha256=None),
    ]
    monkeypatch.setattr(upstream, "release_manifests", lambda: tuple(files))
    # Releases from charts (helm, ghcr.io) have their own tests below.
    monkeypatch.setattr(charts, "every_chart_release", list)
    for version in upstream.linkerd_versions():
        serve_cli(site, monkeypatch, version, fake_cli(version), sha256(fake_cli(version)))
    return files


def test_setup_all_fetches_everything_then_makes_no_request(
    site: Site, cache_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    local_catalogue(site, monkeypatch)
    project = tmp_path / "project"
    project.mkdir()
    assert setup.main(["--all", "--project-dir", str(project)], site.downloader()) == 0
    first = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in first] == ["fetched"] * 4 + ["setup:"]
    assert first[-1] == "setup: all 4 there"
    assert len((project / "aes-linkerd2.lock").read_text().splitlines()) == 4 + 3  # the header, the CLIs and `locked`
    requests = len(site.requests)
    assert setup.main(["--all", "--project-dir", str(project)], site.downloader()) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()] == ["have"] * 4 + ["setup:"]
    assert len(site.requests) == requests  # a filled cache: not one request
    assert setup.main(["--all", "--check", "--project-dir", str(project)], site.downloader()) == 0


def test_setup_check_only_reports(
    site: Site, cache_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    local_catalogue(site, monkeypatch)
    assert setup.main(["--all", "--check", "--project-dir", str(tmp_path)], site.downloader()) == 1
    out = capsys.readouterr().out
    assert out.count("missing  ") == 4 and out.endswith("setup: 4 of 4 missing: ./aes-linkerd2 setup fetches them\n")
    assert site.requests == []


class NoNetwork(urllib.request.BaseHandler):
    """A network that resolves no name: what this machine answers for github.com, without asking anyone."""

    handler_order = 0
    calls = 0

    def https_open(self, request: urllib.request.Request) -> None:
        NoNetwork.calls += 1
        raise urllib.error.URLError(socket.gaierror(socket.EAI_NONAME, "Name or service not known"))


def test_setup_without_a_network_says_so_in_one_line(cache_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    NoNetwork.calls = 0
    offline = Downloader(urllib.request.build_opener(NoNetwork()), timeout=1)
    # One file is cached, pinned by the lock file: it counts, though its host is not reached.
    cached = next(file for file in upstream.release_manifests() if file.cache_name == "edge-stack/aes.v3.12.12.yaml")
    (tools.reference_dir() / "edge-stack").mkdir(parents=True)
    (tools.reference_dir() / cached.cache_name).write_bytes(MANIFEST)
    LockFile(tmp_path / "aes-linkerd2.lock").record(cached.url, sha256(MANIFEST))
    assert setup.main(["--all", "--project-dir", str(tmp_path)], offline) == 1
    out = capsys.readouterr().out.splitlines()
    no_helm = f"helm is needed to pull it, and none was found ({helm.where_to_look()})"
    assert out == [
        f"have     edge-stack 3.12.12 manifest  {tools.reference_dir() / cached.cache_name}",
        f"FAILED   emissary 4.1.0 chart emissary-crds-chart: oci://ghcr.io/emissary-ingress/emissary-crds-chart:4.1.0: {no_helm}",
        f"FAILED   emissary 4.1.0 chart emissary-ingress: oci://ghcr.io/emissary-ingress/emissary-ingress:4.1.0: {no_helm}",
        "FAILED   the network does not reach github.com or app.getambassador.io or get.helm.sh: 8 not fetched (linkerd CLI "
        "stable-2.8.1, linkerd CLI edge-26.8.3, edge-stack 1.14.4 CRDs, edge-stack 1.14.4 manifest, edge-stack 3.12.12 CRDs, "
        "emissary 3.9.1 CRDs, emissary 3.9.1 manifest, helm v4.3.2)",
        "setup: 10 of 11 missing",
    ]
    assert NoNetwork.calls == 3  # one try per host, then no more


def test_setup_of_the_committed_stacks_needs_their_cli_and_manifests(cache_env: Path) -> None:
    items = setup.needed(UpstreamCache(), Path(__file__).resolve().parent.parent, ["target", "source"], everything=False)
    # Emissary 4.1.0, the current line's default: helm and its two charts.
    assert [item.title for item in items] == [
        "linkerd CLI edge-26.8.3",
        "helm v4.3.2",
        "emissary 4.1.0 chart emissary-crds-chart",
        "emissary 4.1.0 chart emissary-ingress",
    ]
    assert {item.host for item in items[1:]} == {"get.helm.sh", "ghcr.io"}


def test_the_program_reads_an_https_manifest_from_its_verified_cache(site: Site, cache_env: Path, tmp_path: Path) -> None:
    cache = UpstreamCache(site.downloader(), LockFile(tmp_path / "lock"))
    url = site.serve("/aes.yaml", MANIFEST)
    read = lambda path: Path(path).read_text()  # noqa: E731
    assert manifest_input.read_manifest("edgeStackManifest", url, read, cache) == MANIFEST.decode()
    assert manifest_input.read_manifest("edgeStackManifest", url, read, cache) == MANIFEST.decode()
    assert site.requests == ["/aes.yaml"]  # the second read is the cached copy's
    # The manifest's own checks still run on the fetched file.
    bomb = site.serve("/bomb.yaml", b"a: &x [1]\nb: *x\n")
    with pytest.raises(ConfigError, match="uses YAML anchors or aliases"):
        manifest_input.read_manifest("edgeStackCrds", bomb, read, cache)


def test_the_program_refuses_plain_http_and_names_the_key(site: Site, cache_env: Path, tmp_path: Path) -> None:
    cache = UpstreamCache(site.downloader(), LockFile(tmp_path / "lock"))
    with pytest.raises(ConfigError) as raised:
        manifest_input.read_manifest("edgeStackCrds", "http://127.0.0.1:9/crds.yaml", str, cache)
    assert str(raised.value) == (
        "config aes-linkerd2:edgeStackCrds = 'http://127.0.0.1:9/crds.yaml': "
        "plain http is refused: name the https URL (or a local copy)"
    )
    with pytest.raises(
        ConfigError, match=r"edgeStackManifest = .*: cannot be fetched \(.*HTTP 404 Not Found\); run ./aes-linkerd2 setup"
    ):
        manifest_input.read_manifest("edgeStackManifest", site.base + "/absent.yaml", str, cache)
    assert site.requests == ["/absent.yaml"]


def helm_archive(said: str, member: str = "linux-amd64/helm") -> bytes:
    """A release-shaped archive whose `helm` answers `version` with `said` (get.helm.sh is out of reach here)."""
    import io
    import tarfile

    script = f"#!/bin/sh\necho {said}\n".encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as bundle:
        info = tarfile.TarInfo(member)
        info.size, info.mode = len(script), 0o755
        bundle.addfile(info, io.BytesIO(script))
    return buffer.getvalue()


def serve_helm(site: Site, monkeypatch: pytest.MonkeyPatch, body: bytes, checksum: str) -> str:
    monkeypatch.setattr(helm, "HELM_RELEASES", site.base + "/helm")
    asset = helm.helm_asset("Linux", "x86_64")
    monkeypatch.setattr(helm, "helm_asset", lambda: asset)
    site.serve(asset.url.removeprefix(site.base), body)
    site.serve(asset.url.removeprefix(site.base) + ".sha256sum", f"{checksum}  {asset.url.rsplit('/', 1)[1]}\n".encode())
    return asset.url


def test_helm_is_fetched_from_its_release_archive_checked_against_its_sha256sum_and_the_lock(
    site: Site, cache_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert helm.helm_asset("Linux", "x86_64").url == "https://get.helm.sh/helm-v4.3.2-linux-amd64.tar.gz"
    assert helm.helm_asset("Linux", "x86_64").checksum_url.endswith(".tar.gz.sha256sum")
    body = helm_archive("v4.3.2")
    url = serve_helm(site, monkeypatch, body, sha256(body))
    cache = UpstreamCache(site.downloader(), LockFile(tmp_path / "aes-linkerd2.lock"))
    fetched = charts.helm_cached(None, cache, fetch=True)
    assert fetched.state == "fetched" and fetched.path == cache.bin / "helm-4.3.2"
    assert helm.client_version(str(fetched.path)) == "v4.3.2" and helm.find_helm() == str(fetched.path)
    assert LockFile(tmp_path / "aes-linkerd2.lock").digest(url) == sha256(body)
    assert charts.helm_cached(None, cache, fetch=True).state == "have"


@pytest.mark.parametrize(
    ("body", "published", "reason"),
    [
        (helm_archive("v4.3.2"), "0" * 64, "its sha256 is"),  # not what the release's .sha256sum says
        (helm_archive("v3.19.0"), None, "its helm says it is v3.19.0, not v4.3.2: refused"),
        (helm_archive("v4.3.2", "linux-amd64/README.md"), None, "holds no linux-amd64/helm: refused"),
    ],
)
def test_a_helm_archive_that_is_not_the_release_is_refused_and_leaves_nothing(
    site: Site,
    cache_env: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    body: bytes,
    published: str | None,
    reason: str,
) -> None:
    serve_helm(site, monkeypatch, body, published or sha256(body))
    cache = UpstreamCache(site.downloader(), LockFile(tmp_path / "aes-linkerd2.lock"))
    with pytest.raises(DownloadError, match=re.escape(reason)):
        charts.helm_cached(None, cache, fetch=True)
    assert not (cache.bin / "helm-4.3.2").exists() and sorted(p.name for p in cache.bin.iterdir()) == []
    assert not (tmp_path / "aes-linkerd2.lock").exists()
