"""The provider's kubeconfig: a path in the project that reads the same on every machine."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml

from support import clusters


def kubeconfig(path: Path, context: str = "target", *, cluster: bool = True, user: bool = True) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443"}}] if cluster else [],
                "users": [{"name": "u", "user": {"token": "t"}}] if user else [],
                "contexts": [{"name": context, "context": {"cluster": "c", "user": "u"}}],
            }
        )
    )
    return path


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    monkeypatch.setattr(clusters, "PROJECT_ROOT", folder)
    monkeypatch.delenv(clusters.OFFLINE_ENV, raising=False)
    monkeypatch.delenv("KUBECONFIG", raising=False)
    return folder


def test_two_files_for_the_same_context_give_the_provider_the_same_path(project: Path, tmp_path: Path) -> None:
    laptop = kubeconfig(tmp_path / "laptop")
    runner = tmp_path / "runner" / "config"
    runner.parent.mkdir()
    shutil.copy(laptop, runner)
    first = clusters.provider_kubeconfig("target", "target", str(laptop))
    assert first == ".kubeconfig/target" and os.readlink(project / first) == str(laptop)
    second = clusters.provider_kubeconfig("target", "target", str(runner))
    # The same input for the provider; the link follows the file this run was given.
    assert second == first and os.readlink(project / second) == str(runner)
    assert (project / ".kubeconfig").stat().st_mode & 0o777 == 0o700


def test_kubeconfig_from_the_environment_is_linked_too(project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other, holder = kubeconfig(tmp_path / "other", context="elsewhere"), kubeconfig(tmp_path / "holder")
    monkeypatch.setenv("KUBECONFIG", os.pathsep.join([str(other), str(holder)]))
    assert clusters.provider_kubeconfig("source", "target", None) == ".kubeconfig/source"
    assert os.readlink(project / ".kubeconfig" / "source") == str(holder)


def test_a_context_spread_over_files_offline_or_unknown_is_passed_as_given(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The context names a cluster that only another file of $KUBECONFIG defines: no single file to link.
    spread = kubeconfig(tmp_path / "spread", cluster=False)
    assert clusters.provider_kubeconfig("target", "target", str(spread)) == str(spread)
    assert clusters.provider_kubeconfig("target", "nowhere", str(kubeconfig(tmp_path / "k"))) == str(tmp_path / "k")
    monkeypatch.setenv(clusters.OFFLINE_ENV, "1")
    assert clusters.provider_kubeconfig("target", "target", str(tmp_path / "k")) == str(tmp_path / "k")
    assert not (project / ".kubeconfig").exists()


def test_a_project_it_cannot_write_the_link_in_falls_back_to_the_path(project: Path, tmp_path: Path) -> None:
    (project / ".kubeconfig").write_text("not a folder")  # as a read-only checkout would refuse the link
    given = str(kubeconfig(tmp_path / "k"))
    assert clusters.provider_kubeconfig("target", "target", given) == given
