"""Rendered manifests become typed resources, in an order the API server accepts."""

from __future__ import annotations

import pulumi
import pytest

from support import manifests
from tests.harness import run_program

MANIFEST = """
apiVersion: v1
kind: List
items:
- apiVersion: apps/v1
  kind: Deployment
  metadata: {name: injector, namespace: mesh}
  spec: {selector: {matchLabels: {a: b}}, template: {metadata: {labels: {a: b}}, spec: {containers: [{name: c, image: i}]}}}
---
---
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata: {name: injector-webhook}
webhooks: []
---
apiVersion: example.io/v1
kind: Widget
metadata: {name: w, namespace: mesh}
spec: {size: 3}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.io}
spec: {group: example.io}
---
apiVersion: v1
kind: Namespace
metadata: {name: mesh}
"""


def test_parse_flattens_lists_and_skips_empty_documents() -> None:
    keys = [o.key for o in manifests.parse(MANIFEST)]
    assert keys == [
        "Deployment/mesh/injector",
        "MutatingWebhookConfiguration/injector-webhook",
        "Widget/mesh/w",
        "CustomResourceDefinition/widgets.example.io",
        "Namespace/mesh",
    ]


def test_parse_rejects_what_is_not_an_object() -> None:
    with pytest.raises(manifests.ManifestError, match="not a Kubernetes object"):
        manifests.parse("just: text\n")


def test_register_orders_namespaces_and_crds_first_and_webhooks_after_deployments() -> None:
    def program() -> None:
        manifests.register(manifests.parse(MANIFEST), prefix="t", opts=pulumi.ResourceOptions())

    run = run_program(program)
    assert run.error is None, run.error
    by_kind = {r.kind: r for r in run.registrations}
    assert by_kind["Namespace"].dependencies == [] and by_kind["CustomResourceDefinition"].dependencies == []
    assert run.depends(by_kind["Deployment"], on=by_kind["Namespace"])
    assert run.depends(by_kind["Widget"], on=by_kind["CustomResourceDefinition"])
    assert run.depends(by_kind["Widget"], on=by_kind["Namespace"])
    assert run.depends(by_kind["MutatingWebhookConfiguration"], on=by_kind["Deployment"])
    assert not run.depends(by_kind["Deployment"], on=by_kind["CustomResourceDefinition"])
    # Built-in kinds get their typed classes; others are custom resources of their own type.
    assert by_kind["Deployment"].type == "kubernetes:apps/v1:Deployment"
    assert by_kind["Widget"].type == "kubernetes:example.io/v1:Widget"
    assert by_kind["Widget"].inputs["spec"] == {"size": 3}
    assert by_kind["Deployment"].name == "t:mesh/injector" and by_kind["Namespace"].name == "t:mesh"


def test_what_is_in_a_namespace_of_the_manifest_is_deleted_with_it() -> None:
    """`destroy` deletes the namespace, and the API server what is in it: no wait per object before the namespace's."""
    kept = (
        "---\napiVersion: v1\nkind: ConfigMap\n"
        "metadata: {name: kept, namespace: mesh, annotations: {helm.sh/resource-policy: keep}}\n"
        "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: elsewhere, namespace: other}\n"
    )

    def program() -> None:
        manifests.register(manifests.parse(MANIFEST + kept), prefix="t", opts=pulumi.ResourceOptions())

    run = run_program(program)
    assert run.error is None, run.error
    namespace = run.one("Namespace", "mesh")
    deleted_with = {r.name: r.deleted_with for r in run.registrations if r.type != "pulumi:providers:kubernetes"}
    assert deleted_with == {
        "t:mesh": "",
        "t:widgets.example.io": "",
        "t:injector-webhook": "",
        # What owns pods is deleted as itself, its pods before the namespace (no grace period left to wait for).
        "t:mesh/injector": "",
        "t:mesh/w": namespace.urn,
        # What outlives `destroy`, and what is in a namespace the manifest does not make, are deleted as themselves.
        "t:mesh/kept": "",
        "t:other/elsewhere": "",
    }


def test_register_applies_ignore_changes_by_key_and_refuses_duplicates() -> None:
    text = "apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: n}\ndata: {a: YQ==}\n"

    def program() -> None:
        manifests.register(
            manifests.parse(text), prefix="t", opts=pulumi.ResourceOptions(), ignore_changes={"Secret/n/s": ("data",)}
        )

    run = run_program(program)
    assert run.one("Secret").ignore_changes == ["data"]
    assert run.one("Secret").is_secret("data"), "Secret data is secret in state"

    run = run_program(
        lambda: manifests.register(manifests.parse(text + "---\n" + text), prefix="t", opts=pulumi.ResourceOptions())
    )
    assert isinstance(run.error, manifests.ManifestError) and "Secret/n/s appears twice" in str(run.error)


def test_read_location_reads_project_relative_paths() -> None:
    assert "name: aes-linkerd2" in manifests.read_location("Pulumi.yaml")


TOKEN_MANIFEST = """
apiVersion: v1
kind: Secret
type: kubernetes.io/service-account-token
metadata:
  name: mirror-token
  namespace: mesh
  annotations: {kubernetes.io/service-account.name: mirror}
---
apiVersion: v1
kind: Secret
type: kubernetes.io/service-account-token
metadata:
  name: elsewhere-token
  namespace: mesh
  annotations: {kubernetes.io/service-account.name: not-in-this-manifest}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: mirror, namespace: mesh}
"""


def test_service_account_tokens_wait_for_their_account() -> None:
    """The token controller fills a token only for an account that exists: created first, it stays empty."""

    def program() -> None:
        manifests.register(manifests.parse(TOKEN_MANIFEST), prefix="t", opts=pulumi.ResourceOptions())

    run = run_program(program)
    assert run.error is None, run.error
    account = run.one("ServiceAccount", "mirror")
    assert run.depends(run.one("Secret", "mirror-token"), on=account)
    # An account the manifest does not declare is someone else's to create: no dependency, no error.
    assert run.one("Secret", "elsewhere-token").dependencies == []
