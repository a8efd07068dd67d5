"""Whether each meshed namespace can be created or patched as configured, read from the live cluster.

pulumi-kubernetes creates with server-side apply: a create over a namespace that already exists takes
it over, and `destroy` (or unlisting it) would then let go of someone else's namespace. The driver's
pre-flight asks this before the engine starts; the program asks it itself under plain `pulumi
preview`/`up` (a CI job with pulumi/actions), where no pre-flight ran.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from support import clusters, upstream
from support.config_model import StackConfig
from support.errors import ConfigError
from support.project import namespace_owner

# Runs a kubectl argv and returns its stdout (raises ConfigError naming `kubectl` when it cannot).
RunKubectl = Callable[[Sequence[str]], str]


def problem(stack: str, name: str, listed: bool, metadata: Mapping[str, Any] | None) -> str | None:
    """Why the program cannot own (or patch) namespace `name` as configured, or None."""
    if listed and metadata is None:
        return "is listed in existingNamespaces but does not exist: remove it from existingNamespaces and the program creates it"
    annotations = (metadata or {}).get("annotations") or {}
    ours = metadata is not None and annotations.get(upstream.OWNER_STACK_ANNOTATION) == namespace_owner(stack)
    if not listed and metadata is not None and not ours:
        return (
            "exists and was not created by this stack: add it to existingNamespaces in "
            f"Pulumi.{stack}.yaml (it is then only annotated, never created or deleted)"
        )
    return None


def problems(cfg: StackConfig, stack: str, live: Mapping[str, Mapping[str, Any]]) -> list[tuple[str, str]]:
    """(namespace, why) for each meshed namespace the program cannot create or patch as configured."""
    found = (
        (name, problem(stack, name, name in cfg.workloads.existing_namespaces, live.get(name)))
        for name in cfg.workloads.meshed_namespaces
    )
    return [(name, why) for name, why in found if why]


def by_name(items: Sequence[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """{name: metadata} of `kubectl get namespaces -o json`'s items."""
    return {str((item.get("metadata") or {}).get("name")): item.get("metadata") or {} for item in items}


def _run_kubectl(argv: Sequence[str]) -> str:
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise ConfigError("kubectl", argv[0], f"cannot list the cluster's namespaces ({type(error).__name__})") from None
    if done.returncode != 0:
        said = (done.stderr.strip().splitlines() or ["no message"])[-1][:200]
        raise ConfigError("kubectl", argv[0], f"cannot list the cluster's namespaces: {said}")
    return done.stdout


def live_namespaces(cfg: StackConfig, run: RunKubectl = _run_kubectl) -> dict[str, Mapping[str, Any]]:
    """{name: metadata} of the cluster's namespaces, read with kubectl."""
    argv = [cfg.kubectl, *cfg.cluster.flags(), "get", "namespaces", "--request-timeout=10s", "-o", "json"]
    try:
        items = json.loads(run(argv)).get("items") or []
    except (ValueError, AttributeError):
        raise ConfigError("kubectl", cfg.kubectl, "`kubectl get namespaces -o json` did not print a list") from None
    return by_name(items)


def check_live(cfg: StackConfig, stack: str, run: RunKubectl = _run_kubectl) -> None:
    """Refuse, before any registration, a meshed namespace the program would take over or patch in vain.

    Skipped where the pre-flight already asked (it reports every stack's problems at once), offline, and
    where no kubeconfig names the context (the provider then says so itself).
    """
    if clusters.checked_by_preflight() or os.environ.get(clusters.OFFLINE_ENV):
        return
    if not clusters.names_context(cfg.cluster.context, cfg.cluster.kubeconfig):
        return
    found = problems(cfg, stack, live_namespaces(cfg, run))
    if found:
        name, why = found[0]
        raise ConfigError("meshedNamespaces", name, why)
