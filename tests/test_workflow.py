"""The pull-request workflow: linted with actionlint, previews both stacks, `up` only behind protection."""

from __future__ import annotations

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
