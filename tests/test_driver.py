"""The driver's logic with the Automation API replaced at its boundary (driver.api.Engine)."""

from __future__ import annotations

import datetime
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from driver import Deployment, DriverError
from driver.__main__ import main
from driver.api import OperationResult, Progress
from tests.conftest import ROOT, real_pulumi

ENV = {"PULUMI_CONFIG_PASSPHRASE": "test", "KUBECONFIG": ""}
PULUMI_VERSION = "v" + (ROOT / ".pulumi-version").read_text().strip()


def ready_node(name: str, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": spec, "status": {"conditions": [{"type": "Ready", "status": "True"}]}}


def tool_answers(
    linkerd_version: str = "edge-26.8.3",
    nodes: int = 3,
    pulumi: str = PULUMI_VERSION,
    namespaces: tuple[str, ...] = ("default",),
) -> Callable[[list[str]], str]:
    """What `pulumi version`, `kubectl get nodes|namespaces` and `linkerd version` answer (the pre-flight's questions)."""

    def run(argv: list[str]) -> str:
        if argv[:2] == ["pulumi", "version"]:
            return pulumi + "\n"
        if "nodes" in argv:
            return json.dumps({"items": [ready_node(f"node-{i}") for i in range(nodes)]})
        if "namespaces" in argv:
            return json.dumps({"items": [{"metadata": {"name": name}} for name in namespaces]})
        return linkerd_version + "\n"

    return run


class FakeEngine:
    """Records what it is asked to run; fails the stacks it is told to."""

    def __init__(self, fail: dict[str, str] | None = None) -> None:
        self.calls: list[tuple[str, str, bool]] = []
        # The stacks run with the state written once, at the end.
        self.without_checkpoints: list[str] = []
        self.fail = fail or {}
        # The stacks let go of their protected resources, each with the calls made before it.
        self.unprotected: list[tuple[str, int]] = []

    def run(
        self,
        stack: str,
        operation: str,
        on_step: Callable[[str, bool], None],
        expect_no_changes: bool = False,
        skip_checkpoints: bool = False,
    ) -> tuple[dict[str, int], dict[str, Any]]:
        self.calls.append((stack, operation, expect_no_changes))
        if skip_checkpoints:
            self.without_checkpoints.append(stack)
        on_step(f"create urn:{stack}:a", False)
        on_step(f"create urn:{stack}:a", True)
        on_step(f"create urn:{stack}:b", True)
        if stack in self.fail:
            raise RuntimeError(self.fail[stack])
        return {"create": 2, "same": 3}, {"clusterName": stack}

    def outputs(self, stack: str) -> dict[str, Any]:
        return {"clusterName": stack}

    def unprotect(self, stack: str) -> None:
        self.unprotected.append((stack, len(self.calls)))

    def get_config(self, stack: str, key: str) -> str | None:
        return None

    def set_config(self, stack: str, key: str, value: str) -> None:
        raise AssertionError(f"no verb here sets config ({stack} {key}={value})")


def deployment(engine: FakeEngine, *, kubeconfig: Path, linkerd_version: str = "edge-26.8.3", **kwargs: Any) -> Deployment:
    tools = {"pulumi": "/usr/bin/pulumi", "linkerd": "/usr/bin/linkerd"}
    return Deployment(
        ROOT,
        environ={**ENV, "KUBECONFIG": str(kubeconfig)},
        engine=engine,
        which=kwargs.pop("which", tools.get),
        run_tool=kwargs.pop("run_tool", tool_answers(linkerd_version)),
        find_linkerd=lambda version: None,  # nothing in the tool cache: what `which` says decides
        release_files=kwargs.pop("release_files", lambda stack, settings, fetch: []),
        **kwargs,
    )


@pytest.fixture
def kube(kubeconfig: Path) -> Path:
    """The committed stacks' contexts (kind-target, kind-source) in the test kubeconfig."""
    import yaml

    document = yaml.safe_load(kubeconfig.read_text())
    for entry in document["contexts"]:
        entry["name"] = {"target-ctx": "kind-target", "source-ctx": "kind-source"}[entry["name"]]
    kubeconfig.write_text(yaml.safe_dump(document))
    return kubeconfig


def test_up_runs_target_then_source_and_reports_each(kube: Path) -> None:
    engine = FakeEngine()
    seen: list[Progress] = []
    result = deployment(engine, kubeconfig=kube, on_progress=seen.append).up()
    assert engine.calls == [("target", "up", False), ("source", "up", False)]
    assert result.succeeded and result.skipped == ()
    assert [(s.stack, s.succeeded, dict(s.changes), dict(s.outputs)) for s in result.stacks] == [
        ("target", True, {"create": 2, "same": 3}, {"clusterName": "target"}),
        ("source", True, {"create": 2, "same": 3}, {"clusterName": "source"}),
    ]
    assert [(p.stack, p.done, p.step) for p in seen] == [
        ("target", 0, "create urn:target:a"), ("target", 1, "create urn:target:a"), ("target", 2, "create urn:target:b"),
        ("source", 0, "create urn:source:a"), ("source", 1, "create urn:source:a"), ("source", 2, "create urn:source:b"),
    ]  # fmt: skip
    table = result.table().splitlines()
    assert table[0].split() == ["stack", "result", "create", "update", "replace", "delete", "same", "seconds"]
    assert table[1].split()[:7] == ["target", "ok", "2", "0", "0", "0", "3"]


def test_destroy_runs_source_first(kube: Path) -> None:
    engine = FakeEngine()
    deployment(engine, kubeconfig=kube).destroy(delete_trust_anchor=True)
    assert engine.calls == [("source", "destroy", False), ("target", "destroy", False)]


class MarkerWatcher(FakeEngine):
    """Notes, for each stack it runs, whether the stack's unfinished marker was there while it ran."""

    def __init__(self, markers: Callable[[str], Path], interrupt: BaseException | None = None) -> None:
        super().__init__()
        self.markers = markers
        self.marked_while_running: list[tuple[str, bool]] = []
        self.interrupt = interrupt

    def run(self, stack: str, operation: str, *args: Any, **kwargs: Any) -> tuple[dict[str, int], dict[str, Any]]:
        self.marked_while_running.append((stack, self.markers(stack).exists()))
        if self.interrupt is not None:
            raise self.interrupt
        return super().run(stack, operation, *args, **kwargs)


def test_up_without_checkpoints_marks_each_stack_only_while_it_runs(kube: Path, tmp_path: Path) -> None:
    backend = f"file://{tmp_path}/state"
    engine = MarkerWatcher(deployment(FakeEngine(), kubeconfig=kube, backend_url=backend).unfinished_marker)
    up = deployment(engine, kubeconfig=kube, backend_url=backend)
    assert up.unfinished_marker("target") == tmp_path / "state" / ".aes-linkerd2-unfinished" / "target.json"
    assert up.up(skip_checkpoints=True).succeeded
    assert engine.without_checkpoints == ["target", "source"]
    assert engine.marked_while_running == [("target", True), ("source", True)]
    assert not (tmp_path / "state" / ".aes-linkerd2-unfinished" / "target.json").exists()
    assert not (tmp_path / "state" / ".aes-linkerd2-unfinished" / "source.json").exists()
    # A plain up writes the state after every step, as the engine does by default, and marks nothing.
    assert up.up().succeeded
    assert engine.without_checkpoints == ["target", "source"]
    assert engine.marked_while_running[2:] == [("target", False), ("source", False)]


@pytest.mark.parametrize("value", ["true", "1", "TRUE"])
def test_the_engines_variable_in_the_environment_counts_as_the_flag(kube: Path, tmp_path: Path, value: str) -> None:
    """`PULUMI_SKIP_CHECKPOINTS` reaches the engine through the environment too: the stack is marked all the same."""
    backend = f"file://{tmp_path}"
    markers = deployment(FakeEngine(), kubeconfig=kube, backend_url=backend).unfinished_marker
    engine = MarkerWatcher(markers)
    run = Deployment(
        ROOT,
        backend_url=backend,
        environ={**ENV, "KUBECONFIG": str(kube), "PULUMI_SKIP_CHECKPOINTS": value},
        engine=engine,
        which={"pulumi": "/usr/bin/pulumi", "linkerd": "/usr/bin/linkerd"}.get,
        run_tool=tool_answers(),
        find_linkerd=lambda version: None,
        release_files=lambda stack, settings, fetch: [],
    )
    assert run.up().succeeded and run.destroy(delete_trust_anchor=True).succeeded
    assert engine.marked_while_running == [("target", True), ("source", True), ("source", True), ("target", True)]
    assert run.preview().succeeded  # a preview writes no state: nothing to mark
    assert engine.marked_while_running[4:] == [("target", False), ("source", False)]
    assert engine.without_checkpoints == ["target", "source", "source", "target"]


def test_a_killed_up_without_checkpoints_stops_the_next_up_and_destroy_not_preview(kube: Path, tmp_path: Path) -> None:
    markers = deployment(FakeEngine(), kubeconfig=kube, backend_url=f"file://{tmp_path}").unfinished_marker
    engine = MarkerWatcher(markers, interrupt=KeyboardInterrupt())
    first = deployment(engine, kubeconfig=kube, backend_url=f"file://{tmp_path}")
    with pytest.raises(KeyboardInterrupt):
        first.up(skip_checkpoints=True)
    marker = first.unfinished_marker("target")
    assert json.loads(marker.read_text())["operation"] == "up"
    assert not first.unfinished_marker("source").exists()  # never reached

    after = FakeEngine()
    again = deployment(after, kubeconfig=kube, backend_url=f"file://{tmp_path}")
    attempts: list[Callable[[], OperationResult]] = [again.up, lambda: again.destroy(delete_trust_anchor=True)]
    for attempt in attempts:
        with pytest.raises(DriverError) as refused:
            attempt()
        text = str(refused.value)
        assert "target: last up" in text and "did not end" in text and str(marker) in text
        assert "source: last up" not in text
    assert after.calls == []  # nothing ran
    # preview is how to see what the state lacks: it runs.
    assert again.preview().succeeded and after.calls == [("target", "preview", False), ("source", "preview", False)]
    marker.unlink()  # looked at, as the message asks
    assert again.up().succeeded


def test_a_killed_destroy_without_checkpoints_says_refresh_drops_what_is_gone(kube: Path, tmp_path: Path) -> None:
    markers = deployment(FakeEngine(), kubeconfig=kube, backend_url=f"file://{tmp_path}").unfinished_marker
    engine = MarkerWatcher(markers, interrupt=KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        deployment(engine, kubeconfig=kube, backend_url=f"file://{tmp_path}").destroy(
            delete_trust_anchor=True, skip_checkpoints=True
        )
    assert engine.marked_while_running == [("source", True)]  # the source goes first
    assert engine.without_checkpoints == []  # interrupted before the engine was asked
    after = FakeEngine()
    again = deployment(after, kubeconfig=kube, backend_url=f"file://{tmp_path}")
    with pytest.raises(DriverError) as refused:
        again.up()
    text = " ".join(str(refused.value).split())
    assert "source: last destroy" in text and "`destroy --skip-checkpoints`, started" in text
    assert "may still list what it deleted" in text and "`./aes-linkerd2 refresh --stack source`" in text
    assert after.calls == []
    assert again.refresh().succeeded  # how to mend it: it runs
    markers("source").unlink()
    assert again.destroy(delete_trust_anchor=True, skip_checkpoints=True).succeeded
    assert after.without_checkpoints == ["source", "target"]
    assert not markers("source").exists() and not markers("target").exists()


@pytest.mark.parametrize(
    ("error", "marker_kept"),
    [
        # The CLI exited by itself (a failed step): the engine wrote the state on its way out.
        ("\n code: 255\n stdout: Updating (target)\n stderr: error: update failed", False),
        # Killed by a signal, as the Automation API reports it: whether the state was written is not known.
        ("\n code: -9\n stdout: Updating (target)\n stderr: ", True),
        # Not the CLI's error at all: not known either.
        ("the Automation API could not start", True),
    ],
)
def test_a_failed_up_without_checkpoints_keeps_its_marker_only_when_the_engine_did_not_end(
    kube: Path, tmp_path: Path, error: str, marker_kept: bool
) -> None:
    engine = FakeEngine(fail={"target": error})
    run = deployment(engine, kubeconfig=kube, backend_url=f"file://{tmp_path}")
    result = run.up(skip_checkpoints=True)
    assert not result.succeeded and result.skipped == ("source",)
    assert run.unfinished_marker("target").exists() is marker_kept


def test_cli_skip_checkpoints_says_where_the_marker_is(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], kube: Path, tmp_path: Path
) -> None:
    engine = FakeEngine()
    monkeypatch.setattr(
        "driver.__main__.Deployment",
        lambda *a, **k: deployment(engine, kubeconfig=kube, backend_url=f"file://{tmp_path}", stacks=k.get("stacks")),
    )
    assert main(["up", "--skip-checkpoints", "--stack", "target"]) == 0
    assert engine.without_checkpoints == ["target"]
    assert f"until then a file in {tmp_path / '.aes-linkerd2-unfinished'} marks the stack unfinished" in capsys.readouterr().err
    assert main(["up", "--stack", "target"]) == 0
    assert engine.without_checkpoints == ["target"]
    assert main(["destroy", "--skip-checkpoints", "--stack", "source"]) == 0
    assert engine.without_checkpoints == ["target", "source"]
    assert "each stack's state is written when its destroy ends" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["preview", "--skip-checkpoints"])  # a preview writes no state


def test_first_failing_stack_stops_the_run_and_says_what_was_applied(kube: Path) -> None:
    engine = FakeEngine(fail={"target": "kubernetes:apps/v1:Deployment linkerd-identity: timed out"})
    result = deployment(engine, kubeconfig=kube).up()
    assert engine.calls == [("target", "up", False)]
    assert not result.succeeded and result.skipped == ("source",)
    assert result.stacks[0].error == "kubernetes:apps/v1:Deployment linkerd-identity: timed out"
    assert "source   skipped" in result.table()


def test_preview_can_require_no_changes(kube: Path) -> None:
    engine = FakeEngine()
    deployment(engine, kubeconfig=kube).preview(expect_no_changes=True)
    assert engine.calls == [("target", "preview", True), ("source", "preview", True)]


@pytest.mark.parametrize(
    ("tools", "version", "problem"),
    [
        (
            {"linkerd": "/l"},
            "edge-26.8.3",
            f"  - Pulumi CLI: `pulumi` is not on PATH: install {PULUMI_VERSION} (https://www.pulumi.com/docs/install/)",
        ),
        (
            {"pulumi": "/p"},
            "edge-26.8.3",
            "  - target, source: linkerd CLI edge-26.8.3: not found (looked for $AES_LINKERD2_LINKERD_EDGE_26_8_3, ",
        ),
        (
            {"pulumi": "/p", "linkerd": "/l"},
            "edge-25.4.4",
            "  - target, source: linkerd CLI edge-26.8.3: the `linkerd` on PATH `linkerd` is 'edge-25.4.4', not 'edge-26.8.3': "
            "`./aes-linkerd2 setup` fetches edge-26.8.3",
        ),
    ],
)
def test_missing_or_wrong_tools_stop_before_anything_runs(kube: Path, tools: dict[str, str], version: str, problem: str) -> None:
    engine = FakeEngine()
    with pytest.raises(DriverError) as raised:
        deployment(engine, kubeconfig=kube, which=tools.get, linkerd_version=version).up()
    lines = str(raised.value).splitlines()
    assert lines[0].endswith("found before up; nothing was applied:")
    assert any(line.startswith(problem) for line in lines), lines
    assert raised.value.exit_code == 2 and engine.calls == []


def test_every_problem_is_listed_at_once(kube: Path, tmp_path: Path) -> None:
    """A new user's first run: no Pulumi CLI, no passphrase, a typo in a key, one node with linkerdHa, no linkerd CLI."""
    project = tmp_path / "project"
    project.mkdir()
    for name in ("Pulumi.yaml", "Pulumi.source.yaml", ".pulumi-version"):
        (project / name).write_text((ROOT / name).read_text())
    target = (ROOT / "Pulumi.target.yaml").read_text().replace("aes-linkerd2:meshedNamespaces:", "aes-linkerd2:meshedNamespace:")
    (project / "Pulumi.target.yaml").write_text(target)
    engine = FakeEngine()
    with pytest.raises(DriverError) as raised:
        Deployment(
            project,
            environ={"KUBECONFIG": str(kube)},
            engine=engine,
            which={"kubectl": "/k"}.get,
            run_tool=tool_answers(nodes=1),
            find_linkerd=lambda version: None,
            release_files=lambda stack, settings, fetch: [],
        ).up()
    assert str(raised.value).splitlines() == [
        "6 problems found before up; nothing was applied:",
        f"  - Pulumi CLI: `pulumi` is not on PATH: install {PULUMI_VERSION} (https://www.pulumi.com/docs/install/)",
        "  - PULUMI_CONFIG_PASSPHRASE: not set: the local backend encrypts the stacks' secrets with it "
        "(export PULUMI_CONFIG_PASSPHRASE=... or PULUMI_CONFIG_PASSPHRASE_FILE=...)",
        "  - Pulumi.target.yaml config: config aes-linkerd2:meshedNamespace = '[\"default\"]': is not a key of aes-linkerd2; "
        "did you mean meshedNamespaces?",
        "  - target: linkerdHa on kind-target: config aes-linkerd2:linkerdHa = true needs 3 schedulable nodes (required "
        "anti-affinity); the cluster has 1 of 1 nodes schedulable: add nodes (scripts/kind-clusters makes 4 each) or "
        "`pulumi config set linkerdHa false --stack target`",
        # The same problem in both stacks: one line naming both.
        "  - target, source: linkerd CLI edge-26.8.3: not found (looked for " + tools_where("edge-26.8.3") + ")",
        "  - source: linkerdHa on kind-source: config aes-linkerd2:linkerdHa = true needs 3 schedulable nodes (required "
        "anti-affinity); the cluster has 1 of 1 nodes schedulable: add nodes (scripts/kind-clusters makes 4 each) or "
        "`pulumi config set linkerdHa false --stack source`",
    ]
    assert raised.value.exit_code == 2 and engine.calls == []


def tools_where(version: str) -> str:
    from support import tools

    return tools.where_to_look(version)


@pytest.mark.parametrize(
    ("node", "counts"),
    [
        (ready_node("n"), True),
        (ready_node("n", unschedulable=True), False),
        (ready_node("n", taints=[{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]), False),
        (ready_node("n", taints=[{"key": "x", "effect": "PreferNoSchedule"}]), True),
        ({"metadata": {"name": "n"}, "spec": {}, "status": {"conditions": [{"type": "Ready", "status": "False"}]}}, False),
    ],
)
def test_ha_counts_only_nodes_a_pod_can_land_on(node: dict[str, Any], counts: bool) -> None:
    from driver import preflight
    from driver.settings import StackSettings

    nodes = [ready_node("a"), ready_node("b"), node]
    found = preflight.ha_nodes("target", StackSettings({}), "ctx", None, lambda argv: json.dumps({"items": nodes}))
    assert found is not None and found.ok is counts
    assert preflight.ha_nodes("target", StackSettings({"linkerdHa": False}), "ctx", None, lambda argv: "") is None


def test_an_old_pulumi_cli_is_named_with_the_version_wanted(kube: Path) -> None:
    engine = FakeEngine()
    with pytest.raises(DriverError) as raised:
        deployment(engine, kubeconfig=kube, run_tool=tool_answers(pulumi="v3.100.0")).up()
    assert f"  - Pulumi CLI: is v3.100.0, older than {PULUMI_VERSION} (.pulumi-version)" in str(raised.value)


def test_missing_passphrase_is_named_before_anything_runs(kube: Path) -> None:
    engine = FakeEngine()
    with pytest.raises(DriverError, match="PULUMI_CONFIG_PASSPHRASE: not set"):
        Deployment(ROOT, environ={"KUBECONFIG": str(kube)}, engine=engine, which=lambda tool: "/bin/" + tool).up()
    assert engine.calls == []
    # Another backend keeps its own secrets provider.
    Deployment(ROOT, backend_url="s3://bucket", environ={"KUBECONFIG": str(kube)}, engine=engine, which=lambda t: "/b/" + t,
               run_tool=tool_answers(), find_linkerd=lambda version: None,
               release_files=lambda stack, settings, fetch: []).up()  # fmt: skip
    assert len(engine.calls) == 2


def test_unknown_context_and_unreachable_cluster(kubeconfig: Path, kube: Path) -> None:
    import yaml

    document = yaml.safe_load(kube.read_text())
    document["contexts"] = [c for c in document["contexts"] if c["name"] != "kind-source"]
    kube.write_text(yaml.safe_dump(document))
    engine = FakeEngine()
    with pytest.raises(
        DriverError,
        match=r"- source: context kind-source: config aes-linkerd2:context = 'kind-source': is not a context of the kubeco",
    ):
        deployment(engine, kubeconfig=kube).up()
    document = yaml.safe_load(kube.read_text())
    document["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:9"
    kube.write_text(yaml.safe_dump(document))
    with pytest.raises(
        DriverError,
        match=r"- target: context kind-target: config aes-linkerd2:context = .kind-target.: its API server https://127.0.0.1:9 ",
    ):
        deployment(engine, kubeconfig=kube).up()
    assert engine.calls == []


def test_state_defaults_to_a_local_backend_in_the_project_and_env_overrides(kube: Path) -> None:
    assert deployment(FakeEngine(), kubeconfig=kube).backend_url == f"file://{ROOT / '.state'}"
    assert ".state/" in (ROOT / ".gitignore").read_text().splitlines()
    other = Deployment(ROOT, environ={"PULUMI_BACKEND_URL": "s3://other"})
    assert other.backend_url == "s3://other"


def test_two_deployments_in_one_process_keep_their_own_settings(kube: Path, tmp_path: Path) -> None:
    first, second = FakeEngine(), FakeEngine(fail={"source": "boom"})
    a = deployment(first, kubeconfig=kube, backend_url=f"file://{tmp_path}/a")
    b = deployment(second, kubeconfig=kube, backend_url=f"file://{tmp_path}/b", stacks=["target"])
    assert b.up().succeeded and a.up().succeeded
    assert (a.backend_url, b.backend_url) == (f"file://{tmp_path}/a", f"file://{tmp_path}/b")
    assert second.calls == [("target", "up", False)]
    assert a._engine_environment()["PULUMI_BACKEND_URL"] != b._engine_environment()["PULUMI_BACKEND_URL"]


def test_the_engine_runs_with_a_slower_go_gc_and_no_blob_sidecars(tmp_path: Path) -> None:
    def environment(backend_url: str, **environ: str) -> dict[str, str]:
        return Deployment(ROOT, backend_url=backend_url, environ=environ)._engine_environment()

    tuned = environment(f"file://{tmp_path}/state")
    assert (tuned["PULUMI_BACKEND_URL"], tuned["GOGC"]) == (f"file://{tmp_path}/state?metadata=skip", "400")
    assert (tmp_path / "state").is_dir()
    # The user's own GOGC, and a URL that names `metadata` itself, are theirs.
    kept = environment(f"file://{tmp_path}/kept?metadata=", GOGC="150")
    assert (kept["PULUMI_BACKEND_URL"], kept["GOGC"]) == (f"file://{tmp_path}/kept?metadata=", "150")
    assert (tmp_path / "kept").is_dir() and not (tmp_path / "kept?metadata=").exists()
    other = f"file://{tmp_path}/other?no_tmp_dir=false"
    assert environment(other)["PULUMI_BACKEND_URL"] == f"{other}&metadata=skip"
    marker = Deployment(ROOT, backend_url=other, environ={}).unfinished_marker("target")
    assert marker == tmp_path / "other" / ".aes-linkerd2-unfinished" / "target.json"
    assert environment("s3://bucket/state")["PULUMI_BACKEND_URL"] == "s3://bucket/state"


def test_the_real_pulumi_cli_writes_no_blob_sidecar_and_reads_the_same_state(tmp_path: Path) -> None:
    """The URL's `metadata=skip` reaches gocloud's fileblob through the real CLI, and the plain URL finds the same stack."""
    import subprocess

    from driver.automation import without_blob_sidecars

    pulumi = real_pulumi()
    project = tmp_path / "project"
    project.mkdir()
    (project / "Pulumi.yaml").write_text("name: aes-linkerd2\nruntime: python\n")
    (tmp_path / "state").mkdir()  # the driver makes it, as the CLI needs
    plain = f"file://{tmp_path}/state"
    base = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "PULUMI_HOME": str(tmp_path / "home")}
    base |= {"PULUMI_CONFIG_PASSPHRASE": "test", "PULUMI_SKIP_UPDATE_CHECK": "true"}

    def cli(backend: str, *args: str) -> str:
        done = subprocess.run(
            [pulumi, *args, "--non-interactive"],
            cwd=project,
            env={**base, "PULUMI_BACKEND_URL": backend},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    cli(without_blob_sidecars(plain), "stack", "init", "target")
    written = sorted(p.relative_to(tmp_path / "state").as_posix() for p in (tmp_path / "state").rglob("*") if p.is_file())
    assert ".pulumi/stacks/aes-linkerd2/target.json" in written
    assert [name for name in written if name.endswith(".attrs")] == []
    assert [stack["name"] for stack in json.loads(cli(plain, "stack", "ls", "--json"))] == ["target"]
    exported = json.loads(cli(plain, "stack", "export", "--stack", "target"))
    assert exported["version"] == 3 and exported["deployment"]["manifest"]["version"]


def test_unknown_stack_is_refused() -> None:
    with pytest.raises(DriverError, match="unknown stack 'middle'"):
        Deployment(ROOT, stacks=["middle"])


def test_cli_help_explains_every_verb(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    for verb in ("up", "preview", "refresh", "destroy", "outputs", "render"):
        assert f"    {verb} " in text
    flat = " ".join(text.split())
    assert "PULUMI_CONFIG_PASSPHRASE" in flat and "Exit codes: 0 done, 1 a stack failed, 2 nothing ran" in flat


def test_cli_exit_codes(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], kube: Path) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    assert main(["up"]) == 2
    assert "  - Pulumi CLI: `pulumi` is not on PATH" in capsys.readouterr().err
    engine = FakeEngine(fail={"source": "link failed"})
    monkeypatch.setattr(
        "driver.__main__.Deployment",
        lambda *a, **k: deployment(engine, kubeconfig=kube, **{"stacks": k.get("stacks"), "on_progress": k.get("on_progress")}),
    )
    assert main(["up", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["succeeded"] is False and [s["stack"] for s in report["stacks"]] == ["target", "source"]
    assert report["stacks"][1]["error"] == "link failed"
    engine.fail.clear()
    assert main(["up"]) == 0
    captured = capsys.readouterr()
    assert "target   ok" in captured.out and "[target] up: 2 done" in captured.err


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("kubernetesVersion=1.40", "1.40"),
        ("gatewayPort=4143", "4143"),
        ("clusterName=null", "null"),
        ("linkerdHa=false", False),
        ('meshedNamespaces=["default", "demo"]', ["default", "demo"]),
        ("smokeTestUrl=http://x';touch${IFS}PWNED;'", "http://x';touch${IFS}PWNED;'"),
    ],
)
def test_set_keeps_values_as_text_unless_clearly_json(value: str, parsed: Any) -> None:
    from driver.__main__ import overrides

    key, _, _ = value.partition("=")
    assert overrides([f"target:{value}"]) == {"target": {key: parsed}}


def test_set_with_broken_json_is_one_clear_error() -> None:
    from driver.__main__ import overrides

    with pytest.raises(DriverError, match=r"--set 'target:meshedNamespaces=\[default': the value starts like JSON"):
        overrides(["target:meshedNamespaces=[default"])


def test_json_is_printed_even_when_nothing_ran(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    assert main(["up", "--json"]) == 2
    report = json.loads(capsys.readouterr().out)
    assert report["succeeded"] is False and report["exitCode"] == 2 and report["operation"] == "up"
    assert "  - Pulumi CLI: `pulumi` is not on PATH" in report["error"]


def test_outputs_turns_an_engine_error_into_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], kube: Path
) -> None:
    class Broken(FakeEngine):
        def outputs(self, stack: str) -> dict[str, Any]:
            raise RuntimeError("code: 255\n stdout: \n stderr: error: no stack named 'target' found\n")

    monkeypatch.setattr("driver.__main__.Deployment", lambda *a, **k: deployment(Broken(), kubeconfig=kube))
    assert main(["outputs"]) == 2
    captured = capsys.readouterr()
    assert captured.err == "error: outputs: stderr: error: no stack named 'target' found\n"
    assert "Traceback" not in captured.err and captured.out == ""


def test_certs_lists_both_stacks_and_fails_when_one_is_due(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], kube: Path
) -> None:
    """From the stacks' own `identityCertificates` outputs (what a real `up` exported: see e2e/test_full.py)."""

    monkeypatch.setenv("AES_LINKERD2_NOW", "2030-01-01T00:00:00Z")

    def row(name: str, role: str, days: int) -> dict[str, Any]:
        # Days left are counted on the clock, not taken from the output (which says them at the last update).
        not_after = datetime.datetime(2030, 1, 1, 12, tzinfo=datetime.UTC) + datetime.timedelta(days=days)
        return {
            "name": name,
            "role": role,
            "subject": f"CN={name}",
            "notAfter": f"{not_after:%Y-%m-%dT%H:%M:%SZ}",
            "daysLeft": 999,
        }

    class Certified(FakeEngine):
        days = 364

        def outputs(self, stack: str) -> dict[str, Any]:
            issuer = row(f"{stack}-issuer", "issuer", self.days if stack == "source" else 300)
            return {"identityCertificates": [row("trust-anchor", "anchor", 3600), issuer]}

    engine = Certified()
    monkeypatch.setattr("driver.__main__.Deployment", lambda *a, **k: deployment(engine, kubeconfig=kube))
    assert main(["certs"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["stack", "name", "role", "subject", "not", "after", "days", "left"]
    assert [line.split()[:3] + line.split()[-2:] for line in table[1:5]] == [
        ["target", "trust-anchor", "anchor", "3600", "ok"],
        ["target", "target-issuer", "issuer", "300", "ok"],
        ["source", "trust-anchor", "anchor", "3600", "ok"],
        ["source", "source-issuer", "issuer", "364", "ok"],
    ]
    engine.days = 12
    assert main(["certs", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["warnDays"] == 60
    assert [(r["stack"], r["name"], r["due"]) for r in report["certificates"] if r["due"]] == [("source", "source-issuer", True)]
    assert main(["certs", "--warn-days", "10"]) == 0


def test_the_programs_warnings_show_in_the_progress() -> None:
    from pulumi.automation import events

    from driver.automation import _step

    warning = events.DiagnosticEvent(message="the peer issuer expires 2027-08-28T00:00:00Z\n", color="never", severity="warning")
    assert _step(events.EngineEvent(sequence=1, timestamp=0, diagnostic_event=warning)) == (
        "warning: the peer issuer expires 2027-08-28T00:00:00Z",
        False,
    )
    info = events.DiagnosticEvent(message="hello", color="never", severity="info")
    assert _step(events.EngineEvent(sequence=2, timestamp=0, diagnostic_event=info)) is None


def test_a_step_names_the_kind_so_objects_of_one_name_are_told_apart() -> None:
    from pulumi.automation import events

    from driver.automation import _step

    urn = "urn:pulumi:target::aes-linkerd2::aes-linkerd2:index:LinkerdControlPlane${kind}::linkerd:linkerd/linkerd-identity"

    def metadata(kind: str) -> events.StepEventMetadata:
        return events.StepEventMetadata(
            op=events.OpType.CREATE, urn=urn.format(kind=kind), type=kind, provider="", old=None, new=None
        )

    deployment, service = "kubernetes:apps/v1:Deployment", "kubernetes:core/v1:Service"
    started = events.ResourcePreEvent(metadata=metadata(deployment))
    finished = events.ResOutputsEvent(metadata=metadata(service))
    assert _step(events.EngineEvent(sequence=1, timestamp=0, resource_pre_event=started)) == (
        "create Deployment linkerd:linkerd/linkerd-identity",
        False,
    )
    assert _step(events.EngineEvent(sequence=2, timestamp=0, res_outputs_event=finished)) == (
        "create Service linkerd:linkerd/linkerd-identity",
        True,
    )


def test_destroying_the_target_alone_is_refused_while_the_source_links_to_it(kube: Path) -> None:
    engine = FakeEngine()  # its source stack reports outputs: it exists and links
    engine.outputs = lambda stack: {"linkedCluster": "target"} if stack == "source" else {}  # type: ignore[method-assign]
    with pytest.raises(DriverError, match="the source stack still links to cluster 'target': destroy it first"):
        deployment(engine, kubeconfig=kube, stacks=["target"]).destroy(delete_trust_anchor=True)
    assert engine.calls == []
    assert deployment(engine, kubeconfig=kube, stacks=["target"]).destroy(force=True, delete_trust_anchor=True).succeeded
    assert engine.calls == [("target", "destroy", False)]
    engine.calls.clear()
    engine.outputs = lambda stack: {}  # type: ignore[method-assign]
    assert deployment(engine, kubeconfig=kube, stacks=["target"]).destroy(delete_trust_anchor=True).succeeded
    # Both stacks: the source first, so nothing is refused.
    engine.outputs = lambda stack: {"linkedCluster": "target"}  # type: ignore[method-assign]
    assert [s.stack for s in deployment(engine, kubeconfig=kube).destroy(delete_trust_anchor=True).stacks] == ["source", "target"]


def test_up_fetches_what_the_stacks_need_first_and_check_only_looks(kube: Path) -> None:
    from driver.preflight import Finding

    asked: list[tuple[str, bool]] = []

    def release_files(stack: str, settings: Any, fetch: bool) -> list[Finding]:
        asked.append((stack, fetch))
        there = fetch or stack == "source"
        return [Finding(f"{stack}: Emissary 3.9.1 CRDs", there, "fetched" if there else "not in the cache")]

    engine = FakeEngine()
    findings = deployment(engine, kubeconfig=kube, release_files=release_files).check()
    assert asked == [("target", False), ("source", False)]
    assert [f.line() for f in findings if not f.ok] == ["FAIL  target: Emissary 3.9.1 CRDs: not in the cache"]
    asked.clear()
    assert deployment(engine, kubeconfig=kube, release_files=release_files).up().succeeded
    assert asked == [("target", True), ("source", True)]
    assert engine.calls == [("target", "up", False), ("source", "up", False)]


@pytest.mark.parametrize(
    ("meshed", "existing", "live", "problem"),
    [
        (["default", "shop"], ["default"], {"default": {}, "shop": {}},
         "target: meshedNamespaces on kind-target: shop: exists and was not created by this stack: add it to "
         "existingNamespaces in Pulumi.target.yaml (it is then only annotated, never created or deleted)"),
        (["default", "shop"], ["default", "shop"], {"default": {}},
         "target: meshedNamespaces on kind-target: shop: is listed in existingNamespaces but does not exist: "
         "remove it from existingNamespaces and the program creates it"),
        (["default", "shop"], ["default"], {"default": {}, "shop": {"aes-linkerd2.io/stack": "aes-linkerd2/source"}},
         "target: meshedNamespaces on kind-target: shop: exists and was not created by this stack: add it to "
         "existingNamespaces in Pulumi.target.yaml (it is then only annotated, never created or deleted)"),
        (["default", "shop"], ["default"], {"default": {}, "shop": {"aes-linkerd2.io/stack": "aes-linkerd2/target"}}, None),
        (["default", "shop"], ["default"], {"default": {}}, None),
    ],
)  # fmt: skip
def test_a_namespace_is_never_taken_over_nor_patched_when_missing(
    meshed: list[str], existing: list[str], live: dict[str, dict[str, str]], problem: str | None
) -> None:
    from driver import preflight
    from driver.settings import StackSettings
    from support import config, config_sources

    values = {"role": "target", "context": "kind-target", "gatewayHostname": "gw.example.com", "edgeStackProduct": "emissary",
              "meshedNamespaces": meshed, "existingNamespaces": existing}  # fmt: skip
    settings = StackSettings(values)
    cfg = config.load(config_sources.SettingsSource(settings.values, settings.secret_keys, "target"))
    items = [{"metadata": {"name": name, "annotations": annotations}} for name, annotations in live.items()]
    asked: list[list[str]] = []

    def kubectl(argv: list[str]) -> str:
        asked.append(argv)
        return json.dumps({"items": items})

    found = preflight.namespaces("target", cfg, kubectl)
    assert asked == [["kubectl", "--context", "kind-target", "get", "namespaces", "--request-timeout=10s", "-o", "json"]]
    failed = [f"{f.subject}: {f.message}" for f in found if not f.ok]
    assert failed == ([problem] if problem else [])


def test_the_trust_anchor_goes_only_when_asked_for_by_name(kube: Path) -> None:
    """Protected in state: a destroy that reaches the target is refused unless told to delete the anchor."""
    engine = FakeEngine()
    with pytest.raises(DriverError) as raised:
        deployment(engine, kubeconfig=kube).destroy()
    assert str(raised.value) == (
        "destroying the target deletes the trust anchor both meshes trust (protected in its state): pass "
        "--delete-trust-anchor to delete it with the rest, or --stack source to destroy the source alone"
    )
    assert engine.calls == [] and engine.unprotected == []
    # The source alone needs no such word, and lets go of nothing.
    assert deployment(engine, kubeconfig=kube, stacks=["source"]).destroy().succeeded
    assert engine.calls == [("source", "destroy", False)] and engine.unprotected == []
    engine.calls.clear()
    assert deployment(engine, kubeconfig=kube).destroy(delete_trust_anchor=True).succeeded
    # Let go of right before the target's destroy, after the source's.
    assert engine.calls == [("source", "destroy", False), ("target", "destroy", False)]
    assert engine.unprotected == [("target", 1)]


def test_the_engine_skips_checkpoints_only_when_asked(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from pulumi import automation as auto

    from driver.automation import AutomationEngine

    environments: list[Mapping[str, str] | None] = []

    def select(stack_name: str, work_dir: str, opts: auto.LocalWorkspaceOptions) -> str:
        environments.append(opts.env_vars)
        return stack_name

    monkeypatch.setattr(auto, "create_or_select_stack", select)
    engine = AutomationEngine(tmp_path, {"PULUMI_BACKEND_URL": "file:///state"})
    engine._stack("target")
    engine._stack("target", skip_checkpoints=True)
    assert environments == [
        {"PULUMI_BACKEND_URL": "file:///state"},
        {"PULUMI_BACKEND_URL": "file:///state", "PULUMI_SKIP_CHECKPOINTS": "true"},
    ]
    assert engine.environment == {"PULUMI_BACKEND_URL": "file:///state"}  # the next stack's run is its own
