"""`render`, end to end: the real program, offline, into YAML that passes the same checks as the unit tests.

Also through the command line (`./aes-linkerd2 render`, in a process of its own): exit codes, stderr,
the folder it owns, byte-identical output, and a render in a network namespace with only loopback.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from driver import Deployment
from driver.render_folder import MANIFEST, place, plan
from driver.render_stable import GENERATED, Masks, Placeholders, mask_field
from driver.settings import DriverError
from support import certificates
from tests.conftest import FIXTURES, OWN_CRDS, real_linkerd, upstream_file
from tests.schemas import validate_builtin, validate_custom_resource

ROOT = Path(__file__).resolve().parent.parent

CURRENT = {"edgeStackCrds": str(OWN_CRDS), "edgeStackManifest": str(FIXTURES / "edge-stack-3.yaml")}


def page() -> dict[str, str]:
    """The page line's settings: upstream's 1.14.4 release files (the test is skipped, loudly, without)."""
    return {
        "versionLine": "linkerd-2.8",
        "edgeStackProduct": "edge-stack",
        "edgeStackCrds": str(upstream_file("emissary/aes-crds.v1.14.4.yaml")),
        "edgeStackManifest": str(upstream_file("emissary/aes.v1.14.4.yaml")),
    }


LICENCE = "eyJhbGciOi.licence-token-that-must-not-be-written"


def render(tmp_path: Path, settings: dict[str, Any]) -> tuple[dict[str, Any], Path]:
    overrides = {stack: dict(settings) for stack in ("target", "source")}
    summary = Deployment(Path(__file__).resolve().parent.parent).render(tmp_path, overrides)
    return summary, tmp_path


def objects(folder: Path) -> dict[str, dict[str, Any]]:
    return {p.name: yaml.safe_load(p.read_text()) for p in sorted(folder.glob("*.yaml")) if p.name != "steps.yaml"}


def files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def current_settings() -> dict[str, Any]:
    return {
        **CURRENT,
        "linkerdCli": real_linkerd("current"),
        "edgeStackProduct": "edge-stack",
        "edgeStackLicenseKey": {"secure": "AAABAGVuY3J5cHRlZA=="},
    }


@pytest.fixture(scope="module")
def current(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    return render(tmp_path_factory.mktemp("current"), current_settings())


def test_one_folder_per_stack_with_every_object(current: tuple[dict[str, Any], Path]) -> None:
    summary, out = current
    assert set(summary) == {"target", "source"}
    target = objects(out / "target")
    assert summary["target"]["objects"] == len(target)
    for name in (
        "deployment-ambassador-edge-stack.yaml",
        "module-ambassador-ambassador.yaml",
        "servicepatch-ambassador-multicluster-target-gateway-service.yaml",
        "host-ambassador-linkerd-host.yaml",
        "mapping-ambassador-public-health-check.yaml",
        "mapping-default-linkerd2-qotm.yaml",
        "deployment-default-qotm.yaml",
        "service-default-qotm-linkerd2.yaml",
        "namespacepatch-ns-default.yaml",
        "servicepatch-default-multicluster-target-export-default-qotm-linkerd2.yaml",
    ):
        assert name in target, name
    # Edge Stack's pod template is written meshed, as the gateway, with its Deployment: no patch of it.
    assert not [name for name in target if name.startswith("deploymentpatch-")]
    assert target["mapping-default-linkerd2-qotm.yaml"] == {
        "apiVersion": "getambassador.io/v3alpha1",
        "kind": "Mapping",
        "metadata": {"name": "linkerd2-qotm", "namespace": "default"},
        "spec": {"prefix": "/qotm-linkerd2/", "service": "qotm-linkerd2", "hostname": "*"},
    }
    steps = yaml.safe_load((out / "target" / "steps.yaml").read_text())
    assert [s["name"] for s in steps] == ["identity-target-issuer", "identity-trust-anchor"]
    source_steps = yaml.safe_load((out / "source" / "steps.yaml").read_text())
    assert [s["name"] for s in source_steps if s["name"].startswith("identity-")] == ["identity-source-issuer"]


def test_rendered_objects_pass_the_schema_checks(current: tuple[dict[str, Any], Path]) -> None:
    _, out = current
    for stack in ("target", "source"):
        for name, body in objects(out / stack).items():
            content = {k: v for k, v in body.items() if k not in ("apiVersion", "kind")}
            if body["apiVersion"].startswith("getambassador.io/"):
                validate_custom_resource(body["apiVersion"], body["kind"], content)
            elif body["kind"] in ("Deployment", "Service", "Namespace") and "qotm" in name:
                validate_builtin(body["apiVersion"], body["kind"], content, "1.34")


def test_no_secret_is_written_in_plain_text(current: tuple[dict[str, Any], Path]) -> None:
    _, out = current
    everything = "\n".join(p.read_text() for p in out.rglob("*") if p.is_file())
    assert "PRIVATE KEY-----" not in everything
    assert LICENCE not in everything and "AAABAGVuY3J5cHRlZA==" not in everything
    licence = objects(out / "target")["secret-ambassador-ambassador-edge-stack.yaml"]
    assert licence["stringData"] == "[secret]"
    outputs = json.loads((out / "target" / "outputs.json").read_text())
    # No key of any kind in the outputs: the anchor's stays in its Secret, named here.
    assert "peerIssuerKeyPem" not in outputs and "peerIssuerCertPem" not in outputs
    assert outputs["trustAnchorSecret"] == "linkerd-trust-anchor"
    # Certificates the render made itself (`up` makes its own): masked, so renders compare.
    pems = {key: outputs[key] for key in ("trustAnchorPem", "trustRootsPem")}
    assert pems == dict.fromkeys(pems, GENERATED + "\n")
    assert outputs["identityCertificates"][0] == {
        "daysLeft": GENERATED,
        "name": "trust-anchor",
        "notAfter": GENERATED,
        "notBefore": GENERATED,
        "role": "anchor",
        "subject": "CN=root.linkerd.cluster.local",
    }
    roots = objects(out / "source")["configmap-linkerd-linkerd-identity-trust-roots.yaml"]
    assert roots["data"] == {"ca-bundle.crt": GENERATED}
    assert "BEGIN CERTIFICATE" not in everything and "LS0tLS1CRUdJTi" not in everything


def test_two_renders_are_byte_identical_and_hold_no_machine_path(
    current: tuple[dict[str, Any], Path], tmp_path_factory: pytest.TempPathFactory
) -> None:
    summary, out = current
    _, again = render(tmp_path_factory.mktemp("again"), current_settings())
    assert files(out) == files(again)
    # Each folder: its objects, steps.yaml, outputs.json and .rendered; the source's NOT-RENDERED.md (the Link).
    assert len(files(out)) == summary["target"]["objects"] + 3 + summary["source"]["objects"] + 4
    everything = "\n".join(p.read_text() for p in out.rglob("*") if p.is_file())
    for machine in (str(ROOT), sys.executable, tempfile.gettempdir() + "/", str(Path.home())):
        assert machine not in everything, machine
    injector = objects(out / "target")["deployment-linkerd-linkerd-proxy-injector.yaml"]
    annotations = injector["spec"]["template"]["metadata"]["annotations"]
    assert annotations["checksum/config"] == annotations["linkerd.io/trust-root-sha256"] == GENERATED
    first_keys = [
        line for line in (out / "target" / "deployment-default-qotm.yaml").read_text().splitlines() if line[:1].isalpha()
    ]
    assert first_keys == ["apiVersion: apps/v1", "kind: Deployment", "metadata:", "spec:"]


def test_with_the_real_cli_only_the_link_is_left_out(current: tuple[dict[str, Any], Path]) -> None:
    summary, out = current
    assert summary["target"]["notRendered"] == []
    link = (
        "multicluster link-gen --cluster-name target --api-server-address https://target-control-plane:6443 "
        "--gateway-name edge-stack --gateway-namespace ambassador"
    )
    assert summary["source"]["notRendered"] == [f"`<linkerd> --context kind-target {link}` (needs the target cluster)"]
    target = objects(out / "target")
    assert len([n for n in target if "linkerd" in n]) >= 70, "every object of Linkerd's install"
    deployment = target["deployment-ambassador-edge-stack.yaml"]
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert {k: v for k, v in annotations.items() if "linkerd.io/" in k} == {
        "config.linkerd.io/enable-gateway": "true",
        "config.linkerd.io/proxy-require-identity-inbound-ports": "4143",
        "config.linkerd.io/skip-inbound-ports": "80,443",
        "linkerd.io/inject": "enabled",
    }


def test_without_the_cli_what_it_renders_is_listed_not_guessed(tmp_path: Path) -> None:
    settings = {
        **CURRENT,
        "edgeStackManifest": str(FIXTURES / "emissary-3.yaml"),
        "linkerdCli": str(tmp_path / "no-linkerd-here"),
        "edgeStackProduct": "emissary",
        "edgeStackVersion": "3.9.1",
    }
    summary, out = render(tmp_path / "out", settings)
    assert summary["target"]["missingCli"] == summary["source"]["missingCli"] == "edge-26.8.3"
    # Every object Linkerd's CLI renders carries its created-by annotation.
    assert not [n for n, body in objects(out / "target").items() if "linkerd.io/created-by" in json.dumps(body)]
    # No Edge Stack Deployment: one built from a stand-in inject would read as a real, unmeshed one.
    assert not [name for name in objects(out / "target") if name == "deployment-emissary-emissary-ingress.yaml"]
    notes = (out / "target" / "NOT-RENDERED.md").read_text().splitlines()
    assert notes[:3] == [
        "# Not rendered for stack target",
        "",
        "- Deployment emissary/emissary-ingress (resource `edge-stack:emissary/emissary-ingress`): "
        "built from a step that needs the linkerd CLI edge-26.8.3",
    ]
    assert notes[3:] == sorted(notes[3:]) and len(notes) == 7
    assert any("install --crds --ignore-cluster" in line for line in notes)
    assert "--identity-trust-anchors-file <tmp>/ca.crt" in "\n".join(notes)


def test_page_line_renders_v2_objects(tmp_path: Path) -> None:
    summary, out = render(tmp_path, {**page(), "linkerdCli": real_linkerd("linkerd-2.8")})
    target = objects(out / "target")
    assert target["module-ambassador-ambassador.yaml"]["apiVersion"] == "getambassador.io/v2"
    for body in target.values():
        if body["apiVersion"].startswith("getambassador.io/") and body["kind"] in ("Mapping", "Host", "Module"):
            validate_custom_resource(
                body["apiVersion"], body["kind"], {k: v for k, v in body.items() if k in ("metadata", "spec")}
            )
    assert summary["source"]["objects"] > 0
    # 2.8's inject and multicluster install ask the live control plane at `up`: steps, not objects.
    assert [item for item in summary["target"]["notRendered"] if "inject" in item] != []
    steps = {s["name"] for s in yaml.safe_load((out / "target" / "steps.yaml").read_text())}
    assert {"linkerd-multicluster", "edge-stack-linkerd-inject-render"} <= steps


# --- the command line ------------------------------------------------------------------------------

NO_TOOLS = "no-tools"


def cli_settings(stacks: tuple[str, ...] = ("target", "source")) -> list[str]:
    """--set options pointing each stack at local manifests (the official URLs need the network)."""
    # The fixture stands in for Emissary 3.9.1's release manifest (4.1.0, the default, comes from charts).
    files = {"edgeStackCrds": OWN_CRDS, "edgeStackManifest": FIXTURES / "emissary-3.yaml", "edgeStackVersion": "3.9.1"}
    return [f"--set={stack}:{key}={path}" for stack in stacks for key, path in files.items()]


def run_cli(cwd: Path, *args: str, linkerd: bool = True, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    """`./aes-linkerd2 render ARGS` from `cwd`; without `linkerd`, no CLI anywhere it looks."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AES_LINKERD2_LINKERD_")}
    if not linkerd:
        environment["AES_LINKERD2_TOOLS"] = str(cwd / NO_TOOLS)
        path = [d for d in environment.get("PATH", "").split(os.pathsep) if not shutil.which("linkerd", path=d)]
        environment["PATH"] = os.pathsep.join(path)
    command = [*prefix, str(ROOT / "aes-linkerd2"), "render", *args]
    done = subprocess.run(command, cwd=cwd, env=environment, capture_output=True, text=True, timeout=600, check=False)
    # The wrapper's own set-up says what it installs, the first time only.
    done.stderr = "".join(line for line in done.stderr.splitlines(keepends=True) if not line.startswith("setup: "))
    return done


def test_without_the_cli_it_exits_3_saying_so_per_stack_and_renders_only_the_stack_asked_for(tmp_path: Path) -> None:
    (tmp_path / NO_TOOLS).mkdir()
    done = run_cli(tmp_path, "--stack", "source", "--out", "out", *cli_settings(), linkerd=False)
    assert done.returncode == 3, done.stderr
    folder = tmp_path / "out" / "source"
    assert done.stderr.splitlines() == [
        f"source: rendered INCOMPLETELY: the linkerd CLI edge-26.8.3 was not found, so Linkerd's objects and Edge "
        f"Stack's inject patch are left out (listed in {folder}/NOT-RENDERED.md); `./aes-linkerd2 setup` gets it"
    ]
    # --out is from the caller's directory; the target's outputs came from a scratch folder.
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["source"]
    assert not (ROOT / "out").exists()
    written = (folder / MANIFEST).read_text().splitlines()
    assert written == sorted(p.name for p in folder.iterdir() if p.name != MANIFEST)
    assert "NOT-RENDERED.md" in written and not [n for n in written if "inject" in n or "linkerd" in n]
    assert done.stdout.startswith(f"source: {len(written) - 3} objects in {folder} (")


def test_it_never_deletes_or_overwrites_a_file_it_did_not_write(tmp_path: Path) -> None:
    (tmp_path / NO_TOOLS).mkdir()
    folder = tmp_path / "out" / "target"
    folder.mkdir(parents=True)
    (folder / "mine.txt").write_text("the user's own")
    first = run_cli(tmp_path, "--stack", "target", "--out", "out", *cli_settings(("target",)), linkerd=False)
    assert first.returncode == 3, first.stderr  # a folder with other names only: written beside them
    assert (folder / "mine.txt").read_text() == "the user's own"
    # A stale file render wrote last time goes; one it did not write stays, even when listed elsewhere.
    (folder / "configmap-gone.yaml").write_text("stale")
    before = files(folder)
    (folder / MANIFEST).write_text((folder / MANIFEST).read_text() + "configmap-gone.yaml\n")
    again = run_cli(tmp_path, "--stack", "target", "--out", "out", *cli_settings(("target",)), linkerd=False)
    assert again.returncode == 3, again.stderr
    assert files(folder) == {k: v for k, v in before.items() if k != "configmap-gone.yaml"}
    # Without the list, a file of a name it would write is someone else's: refused, nothing touched.
    other = tmp_path / "other" / "target"
    other.mkdir(parents=True)
    (other / "steps.yaml").write_text("mine")
    refused = run_cli(tmp_path, "--stack", "target", "--out", "other", *cli_settings(("target",)), linkerd=False)
    assert refused.returncode == 2
    assert refused.stderr == (
        f"error: {other} already holds steps.yaml, and it has no .rendered list of what render wrote: "
        "refusing to overwrite files render did not write (choose another --out, or move them)\n"
    )
    assert [p.name for p in other.iterdir()] == ["steps.yaml"] and (other / "steps.yaml").read_text() == "mine"


def test_it_renders_with_no_network_at_all(tmp_path: Path) -> None:
    """Under `unshare -rn`: a network namespace with only loopback. Same bytes as a render with the network."""
    real_linkerd("current")
    probe = (
        subprocess.run(["unshare", "-rn", "true"], capture_output=True, text=True, check=False)
        if shutil.which("unshare")
        else None
    )
    if probe is None or probe.returncode != 0:
        message = f"unshare -rn NOT PERMITTED here ({probe.stderr.strip() if probe else 'no unshare'}): offline render NOT TESTED"
        pytest.skip(message)
    offline = run_cli(tmp_path, "--out", "offline", *cli_settings(), prefix=("unshare", "-rn"))
    assert offline.returncode == 0, offline.stderr
    online = run_cli(tmp_path, "--out", "online", *cli_settings())
    assert online.returncode == 0, online.stderr
    assert files(tmp_path / "offline") == files(tmp_path / "online")
    assert len([n for n in files(tmp_path / "offline") if n.startswith("target/") and "linkerd" in n]) >= 70


def test_a_manifest_url_out_of_reach_is_one_error_naming_the_stack_and_key(tmp_path: Path) -> None:
    (tmp_path / NO_TOOLS).mkdir()
    url = "https://127.0.0.1:9/emissary-crds.yaml"  # the discard port: nothing listens
    settings = [*cli_settings(("target",)), f"--set=target:edgeStackCrds={url}"]
    done = run_cli(tmp_path, "--stack", "target", "--out", "out", *settings, linkerd=False)
    assert done.returncode == 1
    [line] = done.stderr.splitlines()
    assert line.startswith(f"error: stack target: config aes-linkerd2:edgeStackCrds = '{url}': cannot be ")
    assert not (tmp_path / "out").exists()


# --- the parts --------------------------------------------------------------------------------------


def test_masks_find_a_certificate_in_every_shape_the_program_writes_it() -> None:
    anchor = certificates.new_trust_anchor("root.linkerd.cluster.local", 24).cert_pem
    escaped = json.dumps(anchor)[1:-1]
    indented = "identityTrustAnchorsPEM: |\n" + "".join(f"  {line}\n" for line in anchor.splitlines())
    digest = hashlib.sha256(anchor.strip().encode()).hexdigest()
    masks = Masks([{"data": {"ca.crt": anchor}}])
    assert masks.text(anchor) == GENERATED + "\n"
    assert masks.text(f'{{"roots": "{escaped}"}}') == f'{{"roots": "{GENERATED}\\n"}}'
    assert masks.text(indented) == f"identityTrustAnchorsPEM: |\n  {GENERATED}\n"
    assert masks.text(base64.b64encode(anchor.encode()).decode()) == GENERATED
    assert masks.text(digest) == GENERATED
    assert masks.text(certificates.expiry(anchor)) == GENERATED
    assert masks.text("linkerd.io/inject: enabled") == "linkerd.io/inject: enabled"


def test_mask_field_follows_ignore_changes_paths() -> None:
    body = {
        "spec": {"template": {"metadata": {"annotations": {"checksum/config": "abc", "keep": "x"}}}},
        "webhooks": [{"clientConfig": {"caBundle": "Y2E=", "url": "u"}}, {"clientConfig": {}}],
    }
    masked = mask_field(
        mask_field(body, 'spec.template.metadata.annotations["checksum/config"]'), "webhooks[*].clientConfig.caBundle"
    )
    assert masked == {
        "spec": {"template": {"metadata": {"annotations": {"checksum/config": GENERATED, "keep": "x"}}}},
        "webhooks": [{"clientConfig": {"caBundle": GENERATED, "url": "u"}}, {"clientConfig": {}}],
    }


def test_placeholders_name_the_project_the_interpreter_the_cli_and_temporary_files() -> None:
    project = Path("/srv/project")
    paths = Placeholders(project, "/home/me/.cache/aes-linkerd2/bin/linkerd-edge-26.8.3")
    tmp = tempfile.gettempdir()
    line = (
        f"{sys.executable} -m x /srv/project/Pulumi.yaml; /home/me/.cache/aes-linkerd2/bin/linkerd-edge-26.8.3 install "
        f"--file {tmp}/aes-linkerd2-x1y2/ca.crt --kubeconfig '{tmp}/a/b/kubeconfig'"
    )
    assert (
        paths.text(line)
        == "<python> -m x <project>/Pulumi.yaml; <linkerd> install --file <tmp>/ca.crt --kubeconfig '<tmp>/kubeconfig'"
    )


def test_a_folder_is_checked_whole_before_anything_is_written(tmp_path: Path) -> None:
    scratch, folder = tmp_path / "scratch", tmp_path / "out"
    scratch.mkdir()
    (scratch / "a.yaml").write_text("new a")
    folder.mkdir()
    (folder / MANIFEST).write_text("../escape\n")
    with pytest.raises(DriverError, match="is not a list render wrote"):
        plan(scratch, folder)
    (folder / MANIFEST).write_text("a.yaml\nold.yaml\n")
    (folder / "a.yaml").write_text("old a")
    (folder / "old.yaml").write_text("old")
    (folder / "kept.yaml").write_text("kept")
    place([plan(scratch, folder)])
    assert files(folder) == {MANIFEST: b"a.yaml\n", "a.yaml": b"new a", "kept.yaml": b"kept"}
