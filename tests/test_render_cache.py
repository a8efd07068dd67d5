"""The render cache (support/render_cache.py) with the real linkerd CLI: a hit is the CLI's own output, byte for
byte; any changed input misses; a render that carries a key is never written; a damaged entry is ignored."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from driver.offline import run_like_the_command_provider
from support import certificates, charts, helm, render_cache, upstream
from support.config_model import ClusterAccess
from support.linkerd_cli import LinkerdCli
from tests.conftest import emissary_charts, real_helm, real_linkerd, run_stack, target_config
from tests.harness import Registration, Run

CRDS = ("install", "--crds", "--ignore-cluster", "--set", "installGatewayAPI=true")
MULTICLUSTER = ("multicluster", "install", "--ignore-cluster", "--gateway=false")


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "renders"
    monkeypatch.setenv(render_cache.RENDER_CACHE_ENV, str(folder))
    return folder


def _argv(binary: str, *args: str) -> list[str]:
    return [binary, "--context", "target-ctx", *args]


def _entries(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.json"))


def _object_key(registration: Registration) -> str:
    metadata = registration.inputs.get("metadata") or {}
    parts = [registration.inputs.get("kind"), metadata.get("namespace"), metadata.get("name")]
    return "/".join(str(part) for part in parts if part)


def _registered(run: Run) -> dict[str, tuple[object, ...]]:
    """Each registration, but those holding what the CLI makes up anew at every `install` (webhook certificates,
    and what hashes them: upstream.CURRENT.generated_fields), which no two renders share, cached or not."""
    return {
        r.urn: (r.inputs, sorted(r.dependencies), r.parent, r.provider, r.ignore_changes, r.deleted_with, r.retain_on_delete)
        for r in run.registrations
        if _object_key(r) not in upstream.CURRENT.generated_fields
    }


def _linkerd_runs(commands: list[str], binary: str) -> list[str]:
    """The linkerd CLI's renders the mocks ran (its version check aside)."""
    return [c.removeprefix(f"{binary} --kubeconfig ") for c in commands if c.startswith(binary) and " version " not in c]


def test_a_second_evaluation_reads_the_offline_renders_and_registers_the_same_objects(cache: Path) -> None:
    binary = real_linkerd()
    first = run_stack("target", target_config())
    assert first.error is None, first.error
    ran = _linkerd_runs(first.mocks.commands, binary)
    assert len(ran) == 4 and sum(" install " in c for c in ran) == 3 and sum(" inject " in c for c in ran) == 1
    # install --crds, multicluster install, inject; not `install` (its render holds keys)
    kept = _entries(cache)
    assert len(kept) == 3
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(entry.stat().st_mode) == 0o600 for entry in kept)

    second = run_stack("target", target_config())
    assert second.error is None, second.error
    [again] = _linkerd_runs(second.mocks.commands, binary)
    assert " install --ignore-cluster " in again and "--crds" not in again
    assert _registered(second) == _registered(first)
    # The same objects, none missing (they register in whatever order the SDK's loop gets to them).
    assert sorted(r.urn for r in second.registrations) == sorted(r.urn for r in first.registrations)


@pytest.mark.parametrize("args", [CRDS, MULTICLUSTER], ids=["install --crds", "multicluster install"])
def test_a_hit_is_byte_for_byte_what_the_real_cli_prints(cache: Path, args: tuple[str, ...]) -> None:
    binary = real_linkerd()
    argv = _argv(binary, *args)
    fresh = run_like_the_command_provider(LinkerdCli(binary=binary, cluster=_access()).command_line(*args))
    name = render_cache.key(argv, None)
    assert name is not None and render_cache.read(name) is None
    assert render_cache.write(name, fresh)
    # The CLI again, now: the kept output is exactly what it prints (these renders make nothing up).
    assert render_cache.read(name) == run_like_the_command_provider(
        LinkerdCli(binary=binary, cluster=_access()).command_line(*args)
    )


def test_an_inject_hit_is_what_the_real_cli_prints_for_that_input(cache: Path) -> None:
    binary = real_linkerd()
    deployment = (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: edge\n  namespace: ambassador\n"
        "spec:\n  template:\n    metadata:\n      labels:\n        app: edge\n"
        "    spec:\n      containers:\n      - name: edge\n        image: edge:1\n"
    )
    args = ("inject", "--ignore-cluster", "--skip-inbound-ports", "80,443", "-")
    line = LinkerdCli(binary=binary, cluster=_access()).command_line(*args)
    name = render_cache.key(_argv(binary, *args), deployment)
    assert name is not None
    assert render_cache.write(name, run_like_the_command_provider(line, deployment))
    assert render_cache.read(name) == run_like_the_command_provider(line, deployment)
    # Another input, another entry: nothing kept for it.
    other = render_cache.key(_argv(binary, *args), deployment.replace("edge", "other"))
    assert other is not None and other != name and render_cache.read(other) is None


def _access() -> ClusterAccess:
    return ClusterAccess(context="target-ctx")


def test_any_changed_input_is_another_key(cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    binary = real_linkerd()
    base = render_cache.key(_argv(binary, *CRDS), None)
    assert base is not None and base == render_cache.key(_argv(binary, *CRDS), None)
    assert render_cache.key(_argv(binary, *CRDS[:-1], "installGatewayAPI=false"), None) != base
    assert render_cache.key(_argv(binary, *CRDS), "") != base
    assert render_cache.key([binary, "--context", "other", *CRDS], None) != base
    monkeypatch.setenv("LINKERD_DOCKER_REGISTRY", "registry.example.com")
    assert render_cache.key(_argv(binary, *CRDS), None) != base
    monkeypatch.delenv("LINKERD_DOCKER_REGISTRY")
    # Another binary at the same path (a copy, then the copy rewritten) is another key.
    copy = tmp_path / "linkerd"
    shutil.copy2(binary, copy)
    first_copy = render_cache.key(_argv(str(copy), *CRDS), None)
    assert first_copy not in (None, base)
    copy.write_bytes(copy.read_bytes())
    assert render_cache.key(_argv(str(copy), *CRDS), None) not in (None, first_copy)


def test_renders_that_may_read_more_than_the_key_are_never_kept(cache: Path, tmp_path: Path) -> None:
    binary = real_linkerd()
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n", encoding="utf-8")
    # Without --ignore-cluster the CLI reads the cluster (link-gen, the page line's inject).
    assert render_cache.key(_argv(binary, "multicluster", "link-gen", "--cluster-name", "target"), None) is None
    # An argument naming a file: its content is not in the key. The kubeconfig alone is never read offline.
    assert render_cache.key(_argv(binary, *CRDS, "--values", str(kubeconfig)), None) is None
    assert render_cache.key([binary, "--kubeconfig", str(kubeconfig), "--context", "c", *CRDS], None) is not None
    assert render_cache.key([str(tmp_path / "missing-linkerd"), *CRDS], None) is None


def test_the_install_render_holds_keys_and_is_never_written(cache: Path, tmp_path: Path) -> None:
    binary = real_linkerd()
    anchor, issuer = certificates.placeholder_identity("cluster.local")
    files = {"ca.crt": anchor.cert_pem, "issuer.crt": issuer.cert_pem, "issuer.key": issuer.key_pem}
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    rendered = subprocess.run(
        [
            binary,
            "install",
            "--ignore-cluster",
            "--identity-trust-anchors-file",
            str(tmp_path / "ca.crt"),
            "--identity-issuer-certificate-file",
            str(tmp_path / "issuer.crt"),
            "--identity-issuer-key-file",
            str(tmp_path / "issuer.key"),
            "--disable-heartbeat",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert render_cache.holds_key_material(rendered)
    assert not render_cache.write("0" * 64, rendered)
    assert _entries(cache) == []
    # The offline renders the cache keeps hold none.
    crds = run_like_the_command_provider(LinkerdCli(binary=binary, cluster=_access()).command_line(*CRDS))
    assert not render_cache.holds_key_material(crds)


@pytest.mark.parametrize(
    "text",
    [
        "-----BEGIN EC PRIVATE KEY-----\nabc\n-----END EC PRIVATE KEY-----\n",
        "kind: Secret\napiVersion: v1\nstringData:\n  token: hunter2\n",
        "apiVersion: v1\nkind: Secret\ndata:\n  password: aHVudGVyMg==\n",
        "---\nkind: ConfigMap\n---\nkind: Secret\ndata:\n  a: Yg==\n",
    ],
    ids=["pem key", "stringData", "data", "second document"],
)
def test_output_with_a_secret_is_refused(cache: Path, text: str) -> None:
    assert render_cache.holds_key_material(text)
    assert not render_cache.write("1" * 64, text)
    assert _entries(cache) == []


def test_a_secret_without_data_is_kept() -> None:
    token = "kind: Secret\ntype: kubernetes.io/service-account-token\nmetadata:\n  name: t\n---\nkind: ConfigMap\ndata:\n  a: b\n"
    assert not render_cache.holds_key_material(token)


def test_damaged_entries_are_ignored_and_replaced(cache: Path) -> None:
    binary = real_linkerd()
    name = render_cache.key(_argv(binary, *CRDS), None)
    assert name is not None
    output = run_like_the_command_provider(LinkerdCli(binary=binary, cluster=_access()).command_line(*CRDS))
    assert render_cache.write(name, output)
    entry = cache / f"{name}.json"
    whole = entry.read_bytes()

    entry.write_bytes(whole[: len(whole) // 2])  # partial
    assert render_cache.read(name) is None
    entry.write_bytes(b"\x00\xff not json")
    assert render_cache.read(name) is None
    altered = json.loads(whole)
    altered["stdout"] = altered["stdout"].replace("linkerd", "l1nkerd", 1)  # its checksum no longer matches
    entry.write_text(json.dumps(altered), encoding="utf-8")
    assert render_cache.read(name) is None
    moved = json.loads(whole) | {"key": "2" * 64}  # another entry's content under this name
    entry.write_text(json.dumps(moved), encoding="utf-8")
    assert render_cache.read(name) is None
    entry.unlink()
    (cache / "elsewhere.json").write_bytes(whole)
    entry.symlink_to(cache / "elsewhere.json")  # never followed
    assert render_cache.read(name) is None
    entry.unlink()

    # The next evaluation runs the CLI and writes a whole entry again.
    assert render_cache.write(name, output)
    assert render_cache.read(name) == output
    assert not [p for p in os.listdir(cache) if p.startswith(".partial-")]


def test_off_keeps_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    binary = real_linkerd()
    monkeypatch.setenv(render_cache.RENDER_CACHE_ENV, "off")
    assert render_cache.folder() is None
    assert render_cache.key(_argv(binary, *CRDS), None) is None
    assert not render_cache.write("3" * 64, "kind: ConfigMap\n")


def test_a_release_from_charts_is_rendered_by_helm_once(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    binary = real_helm()
    crds, app = emissary_charts()
    product = upstream.CURRENT.edge_stack["emissary"]
    runs: list[tuple[str, ...]] = []
    real_run = helm.run

    def counted(tool: str, *args: str, stdin: str | None = None) -> str:
        runs.append(args[:2])
        return real_run(tool, *args, stdin=stdin)

    monkeypatch.setattr(helm, "run", counted)

    def render() -> tuple[str, str]:
        return charts.render_release(
            product, "4.1.0", crds=str(crds), manifest=str(app), helm_binary=binary, add_linkerd_headers=True
        )

    first = render()
    assert sorted(runs) == sorted(
        [("show", "chart"), ("show", "chart"), ("template", "emissary-crds"), ("template", "emissary-ingress")]
    )
    assert len(_entries(cache)) == 4
    runs.clear()
    assert render() == first
    assert runs == []  # every helm run read from the cache
    # A hit is what helm prints now, byte for byte.
    values = yaml.safe_dump(charts.app_values(True))
    args = ("template", "emissary-ingress", str(app), "--namespace", "emissary", "--skip-tests", "--values", "-")
    name = render_cache.helm_key([binary, *args], values, app)
    assert name is not None and render_cache.read(name) == real_run(binary, *args, stdin=values) == first[1]


def test_a_changed_chart_or_values_is_another_helm_key(cache: Path, tmp_path: Path) -> None:
    binary = real_helm()
    _, app = emissary_charts()
    chart = tmp_path / "emissary-ingress"
    shutil.copytree(app, chart, symlinks=True)
    args = [binary, "template", "emissary-ingress", str(chart), "--values", "-"]
    base = render_cache.helm_key(args, "a: 1\n", chart)
    assert base is not None and base == render_cache.helm_key(args, "a: 1\n", chart)
    assert render_cache.helm_key(args, "a: 2\n", chart) != base
    template = next(p for p in sorted((chart / "templates").iterdir()) if p.suffix == ".yaml")
    template.write_text(template.read_text(encoding="utf-8") + "\n# changed\n", encoding="utf-8")
    changed = render_cache.helm_key(args, "a: 1\n", chart)
    assert changed not in (None, base)
    (chart / "templates" / "link.yaml").symlink_to("/etc/hostname")  # a link could read anything: never kept
    assert render_cache.helm_key(args, "a: 1\n", chart) is None
