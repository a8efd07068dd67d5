"""The pull-request workflow: linted with actionlint, previews both stacks, `up` only behind protection."""

from __future__ import annotations

import re
import shutil
import subprocess

import yaml

from tests.conftest import ROOT

WORKFLOW = ROOT / ".github" / "workflows" / "pulumi.yml"
PULUMI_ACTION = "pulumi/actions@8582a9e8cc630786854029b4e09281acd6794b58"  # v6.6.1


def test_workflow_lints_clean() -> None:
    actionlint = shutil.which("actionlint", path=str(ROOT / "venv" / "bin")) or shutil.which("actionlint")
    assert actionlint, "actionlint is missing: scripts/setup --dev builds it (needs Go)"
    result = subprocess.run([actionlint, "-no-color", str(WORKFLOW)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_finds_a_broken_workflow() -> None:
    """The lint can fail: a job needing one that does not exist is reported."""
    broken = WORKFLOW.read_text().replace("needs: test", "needs: tests", 1)
    actionlint = shutil.which("actionlint", path=str(ROOT / "venv" / "bin")) or "actionlint"
    result = subprocess.run([actionlint, "-no-color", "-"], input=broken, capture_output=True, text=True, check=False)
    assert result.returncode == 1
    assert 'job "preview" needs job "tests" which does not exist in this workflow' in result.stdout


def test_pull_requests_preview_both_stacks_and_comment_the_diff() -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    preview = workflow["jobs"]["preview"]
    assert preview["if"] == (
        "github.event_name == 'pull_request' && github.event.pull_request.head.repo.full_name == github.repository"
    )
    assert preview["strategy"]["matrix"]["stack"] == ["target", "source"]
    step = next(s for s in preview["steps"] if str(s.get("uses", "")).startswith("pulumi/actions@"))
    assert step["with"] == {
        "command": "preview",
        "stack-name": "${{ matrix.stack }}",
        "pulumi-version-file": ".pulumi-version",
        "comment-on-pr": True,
        "diff": True,
        "github-token": "${{ secrets.GITHUB_TOKEN }}",
    }
    assert preview["permissions"]["pull-requests"] == "write"


def test_main_runs_up_behind_a_protected_environment_with_the_pinned_cli() -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    up = workflow["jobs"]["up"]
    assert up["environment"] == "production"
    assert up["if"] == "github.event_name == 'push' && github.ref == 'refs/heads/main'"
    assert {"uses": PULUMI_ACTION, "name": "Install the Pulumi CLI (version from .pulumi-version)",
            "with": {"pulumi-version-file": ".pulumi-version"}} in up["steps"]  # fmt: skip
    assert up["steps"][-1]["run"] == "./aes-linkerd2 up"
    version = (ROOT / ".pulumi-version").read_text().strip()
    assert version.count(".") == 2 and all(part.isdigit() for part in version.split("."))


def secrets_used(job: dict[str, object]) -> set[str]:
    """The names of the secrets a job can read, wherever in the job they are referenced."""
    import re

    return set(re.findall(r"secrets\.([A-Z0-9_]+)", yaml.safe_dump(job)))


def test_previews_get_their_own_scoped_secrets_behind_reviewers_and_never_for_forks() -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    jobs = workflow["jobs"]
    # Nothing secret at the workflow level: each job says what it gets.
    assert "secrets." not in yaml.safe_dump(workflow.get("env", {}))
    assert secrets_used(jobs["test"]) == set()
    preview, up = jobs["preview"], jobs["up"]
    assert preview["environment"] == "preview" and up["environment"] == "production"
    assert "github.event.pull_request.head.repo.full_name == github.repository" in preview["if"]
    assert secrets_used(preview) == {
        "PREVIEW_PULUMI_BACKEND_URL",
        "PULUMI_CONFIG_PASSPHRASE",
        "PREVIEW_KUBECONFIG_B64",
        "GITHUB_TOKEN",
    }
    assert secrets_used(up) == {"PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE", "KUBECONFIG_B64"}
    # The workflow says what each secret grants.
    header = WORKFLOW.read_text().split("\nname:", 1)[0]
    for secret in (secrets_used(preview) | secrets_used(up)) - {"GITHUB_TOKEN"}:
        assert f"#     {secret} " in header, f"the workflow's header does not say what {secret} grants"
    for job in jobs.values():
        checkout = next(s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/checkout@"))
        assert checkout["with"]["persist-credentials"] is False


def test_every_action_is_pinned_by_commit_with_its_tag_named() -> None:
    """A tag can be moved to other code; a commit cannot. The comment says which release it is."""
    import re

    for workflow in (ROOT / ".github" / "workflows").glob("*.yml"):
        uses = re.findall(r"uses: (\S+)(.*)", workflow.read_text())
        assert uses, workflow
        for action, comment in uses:
            assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", action), (workflow.name, action)
            assert re.fullmatch(r" # v\d+\.\d+\.\d+", comment), (workflow.name, action, comment)


def test_the_kind_job_runs_the_readmes_quick_start_word_for_word() -> None:
    """The README's kind quick start is what the kind job runs, in order, with nothing edited in between."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quick start on kind", 1)[1]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    commands = [line for line in block.splitlines() if line and not line.startswith("export ")]
    assert commands == ["scripts/kind-clusters", "./aes-linkerd2 up", "./aes-linkerd2 status"]
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "e2e-kind.yml").read_text())
    runs = [step.get("run", "") for step in workflow["jobs"]["kind"]["steps"]]
    start = runs.index(commands[0])
    assert runs[start : start + len(commands)] == commands
    # The exported variable is the job's environment, and no step before edits a stack file.
    assert "PULUMI_CONFIG_PASSPHRASE" in workflow["env"]
    assert not any("Pulumi." in run for run in runs[: start + len(commands)])


def test_the_kind_workflow_lints_clean() -> None:
    actionlint = shutil.which("actionlint", path=str(ROOT / "venv" / "bin")) or shutil.which("actionlint")
    assert actionlint, "actionlint is missing: scripts/setup --dev builds it (needs Go)"
    kind = ROOT / ".github" / "workflows" / "e2e-kind.yml"
    result = subprocess.run([actionlint, "-no-color", str(kind)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_each_secret_reaches_only_the_steps_that_need_it() -> None:
    """No job-level env: the set-up steps (which run the pull request's own set-up code) never see the state."""
    jobs = yaml.safe_load(WORKFLOW.read_text())["jobs"]
    for name in ("preview", "up"):
        assert "env" not in jobs[name], name
    where = {
        name: {secret: [step.get("name", step.get("uses")) for step in job["steps"] if secret in secrets_used(step)]
               for secret in secrets_used(job)}
        for name, job in jobs.items()
    }  # fmt: skip
    assert where["preview"] == {
        "PREVIEW_PULUMI_BACKEND_URL": ["Preview ${{ matrix.stack }}"],
        "PULUMI_CONFIG_PASSPHRASE": ["Preview ${{ matrix.stack }}"],
        "PREVIEW_KUBECONFIG_B64": ["Set up the project and the tools"],
        "GITHUB_TOKEN": ["Preview ${{ matrix.stack }}"],
    }
    assert where["up"] == {
        "PULUMI_BACKEND_URL": ["Up, target then source"],
        "PULUMI_CONFIG_PASSPHRASE": ["Up, target then source"],
        "KUBECONFIG_B64": ["Set up the project and the tools"],
    }


# --- dependencies: installed from the hash-pinned locks only -------------------------------------------

# Each lock and the ranges it is compiled from (pip-compile --generate-hashes; CONTRIBUTING.md, "Dependencies").
LOCKS = {"requirements.lock": "requirements.txt", "requirements-dev.lock": "requirements-dev.txt"}
PIP_INSTALL = re.compile(r"\bpip3?\s+install\b|\buv\s+pip\s+install\b|\bpip-sync\b")
LOCK_ENTRY = re.compile(r"^([A-Za-z0-9._-]+)==(\S+)((?:[ \t]*\\\n[ \t]+--hash=sha256:[0-9a-f]{64})+)", re.MULTILINE)


def shell_run_by_ci() -> dict[str, str]:
    """Every shell text CI and the workflows run: each workflow step's `run`, and the project's own scripts."""
    found = {}
    for workflow in sorted((ROOT / ".github" / "workflows").glob("*.yml")):
        for job_name, job in yaml.safe_load(workflow.read_text())["jobs"].items():
            for index, step in enumerate(job["steps"]):
                if "run" in step:
                    found[f"{workflow.name}: {job_name}, step {index + 1}"] = step["run"]
    scripts = [ROOT / ".ci" / "run", ROOT / "aes-linkerd2", *(ROOT / "e2e").glob("*.sh")]
    scripts += [path for path in (ROOT / "scripts").iterdir() if path.suffix != ".py"]
    found.update({str(path.relative_to(ROOT)): path.read_text() for path in scripts if path.is_file()})
    return found


def pip_installs(shell: str) -> list[str]:
    """Each command line (continuations joined) that installs Python packages."""
    return [line for line in shell.replace("\\\n", " ").splitlines() if PIP_INSTALL.search(line)]


def read_lock(name: str) -> dict[str, tuple[str, list[str]]]:
    """name (normalised) -> (pinned version, its sha256 hashes)."""
    text = (ROOT / name).read_text()
    return {
        canonical(entry[1]): (entry[2], re.findall(r"sha256:([0-9a-f]{64})", entry[3])) for entry in LOCK_ENTRY.finditer(text)
    }


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_pip_install_in_ci_and_the_workflows_requires_hashes_from_a_lock() -> None:
    seen = []
    for where, shell in shell_run_by_ci().items():
        for command in pip_installs(shell):
            seen.append(where)
            assert "--require-hashes" in command.split(), (where, command)
            sources = re.findall(r"(?:^|\s)(?:-r|--requirement|-c|--constraint)\s+(\S+)", command)
            named = [source.strip("\"'") for source in sources]
            assert len(named) == 1 and "-c" not in command.split(), (where, command)
            if named[0].startswith("$"):
                # A variable (scripts/setup's "$lock"): every value the script gives it is a lock.
                variable = named[0].strip("${}")
                values = re.findall(rf"(?:^|[\s;&]){variable}=(\S+)", shell, flags=re.MULTILINE)
                assert values and set(values) <= set(LOCKS), (where, variable, values)
            else:
                assert named[0] in LOCKS, (where, command)
    # CI's one install: scripts/setup, which every job reaches through scripts/test or ./aes-linkerd2.
    assert seen == ["scripts/setup"]


def test_every_workflow_job_sets_up_the_venv_before_anything_runs_python() -> None:
    """Pulumi's language host would make venv/ itself from requirements.txt (ranges, no hashes) if it were
    missing: every job runs the project's set-up (the lock) before a Pulumi step or the venv's Python."""
    set_up = ("./aes-linkerd2", "scripts/test", "scripts/setup")
    for workflow in sorted((ROOT / ".github" / "workflows").glob("*.yml")):
        for job_name, job in yaml.safe_load(workflow.read_text())["jobs"].items():
            ready = False
            for step in job["steps"]:
                run = step.get("run", "")
                pulumi_run = str(step.get("uses", "")).startswith("pulumi/actions@") and "command" in step.get("with", {})
                if pulumi_run or ("venv/bin/" in run and not ready):
                    assert ready, (workflow.name, job_name, step.get("name"))
                ready = ready or any(command in run for command in set_up)
            runs_python = any("scripts/test" in s.get("run", "") or "./aes-linkerd2" in s.get("run", "") for s in job["steps"])
            assert ready == runs_python, (workflow.name, job_name)


def test_the_locks_pin_every_requirement_with_hashes_for_the_workflows_python() -> None:
    from packaging.requirements import Requirement

    for lock, ranges in LOCKS.items():
        pinned = read_lock(lock)
        entries = [line for line in (ROOT / lock).read_text().splitlines() if re.match(r"[A-Za-z0-9]", line)]
        assert len(entries) == len(pinned) > 0, lock  # every entry carries a hash
        for line in (ROOT / "requirements.txt").read_text().splitlines() + (ROOT / ranges).read_text().splitlines():
            if not line.strip() or line.startswith(("#", "-r ")):
                continue
            wanted = Requirement(line)
            version, hashes = pinned[canonical(wanted.name)]
            assert wanted.specifier.contains(version, prereleases=True), (lock, wanted, version)
            assert hashes and all(len(h) == 64 for h in hashes), (lock, wanted.name)
    # The program's lock is the dev lock's subset, byte for byte: users and CI install the same files.
    runtime, dev = read_lock("requirements.lock"), read_lock("requirements-dev.lock")
    assert {name: dev[name] for name in runtime} == runtime
    # Compiled for the one Python the workflows set up.
    workflows = "".join(path.read_text() for path in (ROOT / ".github" / "workflows").glob("*.yml"))
    (python,) = set(re.findall(r'python-version: "([\d.]+)"', workflows))
    for lock in LOCKS:
        assert f"# This file is autogenerated by pip-compile with Python {python}\n" in (ROOT / lock).read_text()


def test_the_venv_the_tests_run_in_is_the_lock() -> None:
    """scripts/test sets up venv/ from requirements-dev.lock: what is installed is exactly what the lock pins."""
    from importlib import metadata

    for name, (version, _) in read_lock("requirements-dev.lock").items():
        assert metadata.version(name) == version, name
