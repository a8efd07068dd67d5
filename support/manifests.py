"""Rendered Kubernetes manifests as typed Pulumi resources, in an order the API server accepts.

The Linkerd CLI and Edge Stack publish their installs as YAML. Registering each object as its own
typed resource (instead of one opaque blob) lets `pulumi preview` list every object and field, and
lets the rest of the program depend on exactly the objects it needs.
"""

from __future__ import annotations

import copy
import functools
import importlib
import re
import types
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import yaml

from support import stand_ins, upstream
from support.project import PROJECT_ROOT

_BUILTIN_GROUPS = {"", "apps", "batch", "policy", "autoscaling"}
# Objects that others in the same manifest lean on while they are created.
_FOUNDATION_KINDS = {"Namespace", "CustomResourceDefinition"}
# Admission webhooks and aggregated APIs answer through Deployments of the same manifest:
# registering them before those are Ready would block every later pod (failurePolicy: Fail in HA).
SERVED_BY_DEPLOYMENTS = {"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration", "APIService"}
# What owns pods: deleted as itself, so its pods are gone (foreground) before the namespace goes. A namespace still
# holding pods is finished by the namespace controller only after their grace period (30 s by default).
_POD_OWNERS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod", "ReplicationController"}
# The token controller fills a token Secret only for an account that exists, and deletes it otherwise;
# created first, it stays empty (and pulumi-kubernetes before 4.32 panics awaiting it).
SERVICE_ACCOUNT_TOKEN = "kubernetes.io/service-account-token"
SERVICE_ACCOUNT_ANNOTATION = "kubernetes.io/service-account.name"


class ManifestError(pulumi.RunError):
    """A manifest this program cannot apply as it is."""


# Helm's resource policy: an object so marked survives `helm uninstall`.
KEEP_ANNOTATION = "helm.sh/resource-policy"


@dataclass(frozen=True)
class ManifestObject:
    body: dict[str, Any]

    @property
    def api_version(self) -> str:
        return str(self.body["apiVersion"])

    @property
    def kind(self) -> str:
        return str(self.body["kind"])

    @property
    def name(self) -> str:
        return str(self.body["metadata"]["name"])

    @property
    def namespace(self) -> str | None:
        namespace = self.body["metadata"].get("namespace")
        return str(namespace) if namespace else None

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def key(self) -> str:
        """`Kind/namespace/name`, or `Kind/name` for cluster-scoped objects."""
        return "/".join(part for part in (self.kind, self.namespace, self.name) if part)

    @property
    def token_account_key(self) -> str | None:
        """For a service-account-token Secret, the `ServiceAccount/namespace/name` key it belongs to."""
        if self.kind != "Secret" or self.body.get("type") != SERVICE_ACCOUNT_TOKEN:
            return None
        account = (self.body["metadata"].get("annotations") or {}).get(SERVICE_ACCOUNT_ANNOTATION)
        return f"ServiceAccount/{self.namespace}/{account}" if account and self.namespace else None

    @property
    def kept_by_upstream(self) -> bool:
        """Whether upstream's chart keeps it on uninstall (`helm.sh/resource-policy: keep`): others' objects need it."""
        return (self.body["metadata"].get("annotations") or {}).get(KEEP_ANNOTATION) == "keep"

    @property
    def is_builtin(self) -> bool:
        return self.group in _BUILTIN_GROUPS or (self.group.endswith(".k8s.io") and not self.group.startswith("gateway."))


def retained(objects: Iterable[ManifestObject], registered: Mapping[str, pulumi.Resource]) -> list[str]:
    """The keys of the registered objects that outlive `destroy` (upstream keeps them)."""
    return [obj.key for obj in objects if obj.kept_by_upstream and obj.key in registered]


def with_annotations(obj: ManifestObject, annotations: Mapping[str, str]) -> ManifestObject:
    """A copy of `obj` with `annotations` added to its own metadata."""
    body = copy.deepcopy(obj.body)
    body["metadata"]["annotations"] = {**(body["metadata"].get("annotations") or {}), **annotations}
    return ManifestObject(body)


# The workload kinds whose pod template rolls its pods when it changes.
POD_TEMPLATE_KINDS = ("Deployment", "StatefulSet", "DaemonSet")


def with_pod_annotations(obj: ManifestObject, annotations: Mapping[str, str]) -> ManifestObject:
    """A copy of the workload `obj` with `annotations` added to its pod template's metadata."""
    body = copy.deepcopy(obj.body)
    template = body["spec"]["template"].setdefault("metadata", {})
    template["annotations"] = {**(template.get("annotations") or {}), **annotations}
    return ManifestObject(body)


def not_awaited_if_service(obj: ManifestObject) -> ManifestObject:
    """A Service counts as ready once created: what serves it is a Deployment, awaited itself. The provider would
    hold a Service until its endpoints have not changed for 10 seconds, a wait that guards nothing here."""
    if obj.kind != "Service":
        return obj
    return with_annotations(obj, {upstream.SKIP_AWAIT_ANNOTATION: "true"})


def injected_at_admission(obj: ManifestObject) -> bool:
    """A workload whose pods Linkerd's injector meshes when they are admitted (`linkerd.io/inject: enabled` on its
    template): their proxies hold the roots of that moment, and only a new pod gets new ones."""
    if obj.kind not in POD_TEMPLATE_KINDS:
        return False
    annotations = ((obj.body.get("spec") or {}).get("template") or {}).get("metadata", {}).get("annotations") or {}
    return annotations.get(upstream.INJECT_ANNOTATION) == upstream.INJECT_ENABLED


class _KubernetesLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """YAML as Kubernetes reads it into string fields: a bare date stays the string it is written as."""


# libyaml when PyYAML has it: Edge Stack's CRD manifests run to thousands of lines.
_KubernetesLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def parse(text: str) -> list[ManifestObject]:
    """Every object of a multi-document YAML stream; `List` kinds are flattened, empty documents skipped."""
    objects: list[ManifestObject] = []
    for document in yaml.load_all(text, Loader=_KubernetesLoader):
        if not document:
            continue
        if not isinstance(document, dict) or "kind" not in document or "apiVersion" not in document:
            raise ManifestError(f"not a Kubernetes object: {str(document)[:120]}")
        if document["kind"].endswith("List") and "items" in document:
            objects.extend(ManifestObject(item) for item in document["items"] or [])
        else:
            objects.append(ManifestObject(document))
    return objects


def read_location(location: str) -> str:
    """The text of the file at a path (relative paths start at the project root).

    URLs never reach here: `manifest_input.read_manifest` reads them from their verified cached copy.
    """
    path = Path(location).expanduser()
    return (path if path.is_absolute() else PROJECT_ROOT / path).read_text(encoding="utf-8")


def _resource_class(obj: ManifestObject) -> type[pulumi.CustomResource] | None:
    """The typed pulumi-kubernetes class of a built-in kind, or None for a custom resource."""
    if not obj.is_builtin:
        return None
    return _typed_class(obj.group, obj.api_version.rpartition("/")[2], obj.kind)


@functools.cache
def _typed_class(group: str, version: str, kind: str) -> type[pulumi.CustomResource] | None:
    module_name = group.partition(".")[0] or "core"
    try:
        module = importlib.import_module(f"pulumi_kubernetes.{module_name}.{version}")
    except ModuleNotFoundError:
        return None
    found = getattr(module, kind, None)
    return found if isinstance(found, type) and issubclass(found, pulumi.CustomResource) else None


def _snake(key: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", key).lower()


def _register_one(
    obj: ManifestObject, resource_name: str, body: dict[str, Any], opts: pulumi.ResourceOptions
) -> pulumi.CustomResource:
    fields = {key: value for key, value in body.items() if key not in ("apiVersion", "kind", "status")}
    resource_class = _resource_class(obj)
    if resource_class is not None:
        return resource_class(resource_name, opts=opts, **{_snake(key): value for key, value in fields.items()})
    unexpected = set(fields) - {"metadata", "spec"}
    if unexpected:
        raise ManifestError(f"{obj.key}: custom resource with top-level fields {sorted(unexpected)} is not supported")
    return k8s.apiextensions.CustomResource(
        resource_name,
        api_version=obj.api_version,
        kind=obj.kind,
        metadata=fields.get("metadata"),
        spec=fields.get("spec"),
        opts=opts,
    )


def _waits_for(
    obj: ManifestObject, known: Mapping[str, pulumi.Resource], waited_for: Mapping[str, list[pulumi.Resource]]
) -> list[pulumi.Resource]:
    """What `obj` is created after: its namespace, the CRDs (a custom resource), the Deployments (a webhook), its account."""
    namespace = known.get(f"Namespace/{obj.namespace}") if obj.namespace else None
    account = known.get(obj.token_account_key) if obj.token_account_key else None
    return [
        *([namespace] if namespace is not None else []),
        *([] if obj.is_builtin else waited_for["CustomResourceDefinition"]),
        *(waited_for["Deployment"] if obj.kind in SERVED_BY_DEPLOYMENTS else []),
        *([account] if account is not None else []),
    ]


# No replacements, no fields ignored, nothing registered before, nothing more to wait for.
_NONE: Mapping[str, Any] = types.MappingProxyType({})


def _in_order(objects: Iterable[ManifestObject], already_there: frozenset[str]) -> list[ManifestObject]:
    """Namespaces and CRDs first, then the rest, tokens after their accounts, webhooks last; without what is already there."""
    return sorted(
        (obj for obj in objects if not (obj.kept_by_upstream and obj.key in already_there)),
        key=lambda o: (o.kind not in _FOUNDATION_KINDS, o.token_account_key is not None, o.kind in SERVED_BY_DEPLOYMENTS),
    )


def _options_for(
    obj: ManifestObject,
    opts: pulumi.ResourceOptions,
    after: list[pulumi.Resource],
    ignored: Sequence[str],
    namespace: pulumi.Resource | None,
) -> pulumi.ResourceOptions:
    return pulumi.ResourceOptions.merge(
        opts,
        pulumi.ResourceOptions(
            depends_on=after,
            ignore_changes=list(ignored),
            # What upstream keeps on uninstall (shared CRDs such as Gateway API's) outlives `destroy`.
            retain_on_delete=True if obj.kept_by_upstream else None,
            # When the manifest's namespace goes, the API server deletes what is in it: `destroy` deletes the
            # namespace once, rather than each object and then the namespace, one wait after another; only what
            # owns pods goes first, all at once (_POD_OWNERS).
            deleted_with=namespace,
        ),
    )


def _resource_name(prefix: str, obj: ManifestObject) -> str:
    return f"{prefix}:{obj.namespace}/{obj.name}" if obj.namespace else f"{prefix}:{obj.name}"


def register(
    objects: Iterable[ManifestObject],
    *,
    prefix: str,
    opts: pulumi.ResourceOptions,
    replacements: Mapping[str, pulumi.Input[str]] = _NONE,
    ignore_changes: Mapping[str, Sequence[str]] = _NONE,
    before: Mapping[str, pulumi.CustomResource] = _NONE,
    depends: Mapping[str, Sequence[pulumi.Resource]] = _NONE,
    already_there: frozenset[str] = frozenset(),
) -> dict[str, pulumi.CustomResource]:
    """Register every object, keyed by `ManifestObject.key`, but what upstream keeps that is `already_there`.

    Namespaces and CRDs come first; namespaced objects wait for their namespace (and are deleted with it), custom resources
    for the CRDs, service-account tokens for their account, webhooks and API services for the
    Deployments that serve them. `before`: objects of the same manifest registered before (their
    namespace, say), which these wait for as if registered here; `depends`: more to wait for, by key;
    `already_there`: keys live in the cluster outside this stack's state (support/retained.py).
    """
    registered: dict[str, pulumi.CustomResource] = {}
    known = dict(before)  # what an object may wait for by key: registered before, or here
    kept: set[str] = set()  # what outlives `destroy`
    # What custom resources and webhooks wait for, kept as they are registered (in that order).
    waited_for: dict[str, list[pulumi.Resource]] = {kind: [] for kind in ("CustomResourceDefinition", "Deployment")}
    for obj in _in_order(objects, already_there):
        key = obj.key
        if key in registered:
            raise ManifestError(f"{prefix}: {key} appears twice in the manifest")
        after = _waits_for(obj, known, waited_for) + list(depends.get(key, ()))
        body = stand_ins.substitute(obj.body, replacements)
        # Deleted with its namespace, unless either outlives `destroy` or it owns pods.
        with_namespace = obj.namespace and not obj.kept_by_upstream and obj.kind not in _POD_OWNERS
        deleted_with = f"Namespace/{obj.namespace}" if with_namespace else ""
        namespace = known.get(deleted_with) if deleted_with not in kept else None
        resource_opts = _options_for(obj, opts, after, ignore_changes.get(key, ()), namespace)
        registered[key] = known[key] = _register_one(obj, _resource_name(prefix, obj), body, resource_opts)
        if obj.kept_by_upstream:
            kept.add(key)
        if obj.kind in waited_for:
            waited_for[obj.kind].append(registered[key])
    return registered
