"""What the program reads from the live cluster before it registers anything: namespaces and CRDs.

Two questions need it: whether a meshed namespace is someone else's (support/namespaces.py), and which
objects this stack creates and retains are already there outside its state (support/retained.py).
Read with kubectl, as the provider reaches the cluster (same kubeconfig and context). Not read offline
(`render`), nor where no kubeconfig names the context: the provider then says so itself.

`list_items` is the one reading of a kind's objects, shared with the driver's pre-flight (namespaces,
nodes); each caller says a failure its own way (the program: ConfigError naming `kubectl`; the
pre-flight: a failed check).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from support import clusters, upstream
from support.config_model import ClusterAccess, StackConfig
from support.errors import ConfigError
from support.restarts import KINDS, Workload

# Runs a kubectl argv and returns its stdout (raising the caller's own error when it cannot).
RunKubectl = Callable[[list[str]], str]


class ListError(Exception):
    """kubectl's answer is not a list of objects; each caller maps it to its own error."""


@dataclass(frozen=True)
class LiveCluster:
    # {name: metadata} of every namespace.
    namespaces: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # The name of every CustomResourceDefinition.
    crds: frozenset[str] = frozenset()


def run_kubectl(argv: Sequence[str]) -> str:
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise ConfigError("kubectl", argv[0], f"cannot read the cluster ({type(error).__name__})") from None
    if done.returncode != 0:
        said = (done.stderr.strip().splitlines() or ["no message"])[-1][:200]
        raise ConfigError("kubectl", argv[0], f"cannot read the cluster: {said}")
    return done.stdout


def by_name(items: Sequence[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """{name: metadata} of `kubectl get ... -o json`'s items."""
    return {str((item.get("metadata") or {}).get("name")): item.get("metadata") or {} for item in items}


def list_items(
    run: RunKubectl, kubectl: str, access: ClusterAccess, kind: str, namespace: str | None = None
) -> list[Mapping[str, Any]]:
    """`kubectl get KIND -o json`'s items (in NAMESPACE, if given), read from the live cluster; ListError when it
    printed no list."""
    scope = ["-n", namespace] if namespace else []
    argv = [kubectl, *access.flags(), "get", kind, *scope, "--request-timeout=10s", "-o", "json"]
    try:
        items = json.loads(run(argv)).get("items")
    except (ValueError, AttributeError):
        items = None
    if not isinstance(items, list):
        raise ListError(f"`kubectl get {kind} -o json` did not print a list")
    return items


def _crd_names(cfg: StackConfig, run: RunKubectl) -> frozenset[str]:
    # Names only: Edge Stack's CRDs alone run to megabytes of schema.
    argv = [cfg.kubectl, *cfg.cluster.flags(), "get", "customresourcedefinitions", "--request-timeout=10s", "-o", "name"]
    return frozenset(line.rpartition("/")[2] for line in run(argv).split() if line)


def readable(cfg: StackConfig) -> bool:
    """Whether the program reads the cluster: not offline, and a kubeconfig kubectl finds names the context."""
    return not os.environ.get(clusters.OFFLINE_ENV) and clusters.names_context(cfg.cluster.context, cfg.cluster.kubeconfig)


def read(cfg: StackConfig, run: RunKubectl = run_kubectl) -> LiveCluster | None:
    """The cluster's namespaces and CRDs; None where the program does not read the cluster (`readable`)."""
    if not readable(cfg):
        return None
    try:
        namespaces = list_items(run, cfg.kubectl, cfg.cluster, "namespaces")
    except ListError as error:
        raise ConfigError("kubectl", cfg.kubectl, str(error)) from None
    return LiveCluster(namespaces=by_name(namespaces), crds=_crd_names(cfg, run))


def workloads(cfg: StackConfig, run: RunKubectl = run_kubectl) -> tuple[Workload, ...]:
    """The Deployments, StatefulSets and DaemonSets of the meshed namespaces whose pods are meshed (not opted out with
    `linkerd.io/inject: disabled`); none where the program does not read the cluster."""
    if not readable(cfg):
        return ()
    kinds = ",".join(KINDS).lower()
    found = []
    for namespace in cfg.workloads.meshed_namespaces:
        try:
            items = list_items(run, cfg.kubectl, cfg.cluster, kinds, namespace)
        except ListError as error:
            raise ConfigError("kubectl", cfg.kubectl, str(error)) from None
        found += [workload for workload in (_meshed(item, namespace) for item in items) if workload]
    return tuple(sorted(found))


def _meshed(item: Mapping[str, Any], namespace: str) -> Workload | None:
    """A workload of these kinds whose pods the injector meshes (not opted out), else None."""
    template = ((item.get("spec") or {}).get("template") or {}).get("metadata") or {}
    if item.get("kind") not in KINDS or (template.get("annotations") or {}).get(upstream.INJECT_ANNOTATION) == "disabled":
        return None
    return Workload(str(item["kind"]), namespace, str((item.get("metadata") or {}).get("name")))
