"""MeshedNamespace: `linkerd.io/inject: enabled`, on a new namespace or patched onto an existing one."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s
import pytest

from components.meshed_namespace import MeshedNamespace, MeshedNamespaceArgs
from tests.harness import Run, run_program
from tests.schemas import validate_builtin


def build(name: str, exists: bool, preview: bool = False) -> Run:
    def program() -> None:
        provider = k8s.Provider("cluster", context="ctx")
        injector = k8s.apps.v1.Deployment(
            "injector", metadata={"name": "linkerd-proxy-injector"}, opts=pulumi.ResourceOptions(provider=provider)
        )
        MeshedNamespace(
            f"ns-{name}",
            MeshedNamespaceArgs(name=name, exists=exists, owner="aes-linkerd2/target", control_plane=[injector]),
            opts=pulumi.ResourceOptions(providers={"kubernetes": provider}),
        )

    run = run_program(program, preview=preview)
    assert run.error is None, run.error
    return run


@pytest.mark.parametrize("preview", [False, True])
def test_existing_namespace_is_patched_with_the_annotation_only(preview: bool) -> None:
    run = build("default", exists=True, preview=preview)
    patch = run.one("NamespacePatch")
    assert patch.inputs == {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "default", "annotations": {"linkerd.io/inject": "enabled"}},
    }
    assert run.find("Namespace") == []
    assert patch.parent == run.one("MeshedNamespace").urn
    assert run.depends(patch, on=run.one("Deployment", "linkerd-proxy-injector"))
    # Patched, never owned: a later change cannot turn it into a delete.
    assert patch.retain_on_delete is False and patch.protect is False


def test_new_namespace_is_created_marked_retained_and_annotated_by_its_own_patch() -> None:
    run = build("demo", exists=False)
    namespace = run.one("Namespace", "demo")
    assert namespace.name == "ns-demo"
    assert namespace.inputs["metadata"] == {
        "name": "demo",
        "labels": {"app.kubernetes.io/managed-by": "aes-linkerd2"},
        "annotations": {"aes-linkerd2.io/stack": "aes-linkerd2/target"},
    }
    # Users' workloads live here: letting go of the namespace (destroy, unlisting it) leaves it standing.
    assert namespace.retain_on_delete is True
    validate_builtin("v1", "Namespace", {"metadata": namespace.inputs["metadata"]}, "1.34")
    # The annotation is a patch of its own, deleted (not retained) when the program lets go: new pods there
    # are then no longer meshed, while the namespace and its workloads stay.
    patch = run.one("NamespacePatch")
    assert patch.name == "ns-demo-inject"
    assert patch.inputs["metadata"] == {"name": "demo", "annotations": {"linkerd.io/inject": "enabled"}}
    assert patch.retain_on_delete is False and patch.protect is False
    assert run.depends(patch, on=namespace)
    assert run.depends(patch, on=run.one("Deployment", "linkerd-proxy-injector"))
    assert run.depends(namespace, on=run.one("Deployment", "linkerd-proxy-injector"))
    assert {patch.parent, namespace.parent} == {run.one("MeshedNamespace").urn}
