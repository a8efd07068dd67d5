"""Whether each meshed namespace can be created or patched as configured, read from the live cluster.

A namespace someone else made is theirs: creating it again would fail (pulumi-kubernetes 4.29 on) or,
with older providers, take it over, and `destroy` (or unlisting it) would then let go of it. The
driver's pre-flight asks this before the engine starts; the program asks it itself under plain `pulumi
preview`/`up` (a CI job with pulumi/actions), where no pre-flight ran.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from support import clusters, upstream
from support.config_model import StackConfig
from support.errors import ConfigError
from support.live_cluster import LiveCluster
from support.project import namespace_owner


def problem(stack: str, name: str, listed: bool, metadata: Mapping[str, Any] | None) -> str | None:
    """Why the program cannot own (or patch) namespace `name` as configured, or None."""
    if listed and metadata is None:
        return "is listed in existingNamespaces but does not exist: remove it from existingNamespaces and the program creates it"
    if not listed and metadata is not None and not made_by(stack, metadata):
        return (
            "exists and was not created by this stack: add it to existingNamespaces in "
            f"Pulumi.{stack}.yaml (it is then only annotated, never created or deleted)"
        )
    return None


def made_by(stack: str, metadata: Mapping[str, Any]) -> bool:
    """Whether the namespace carries `stack`'s mark: the program made it for that stack."""
    return (metadata.get("annotations") or {}).get(upstream.OWNER_STACK_ANNOTATION) == namespace_owner(stack)


def problems(cfg: StackConfig, stack: str, live: Mapping[str, Mapping[str, Any]]) -> list[tuple[str, str]]:
    """(namespace, why) for each meshed namespace the program cannot create or patch as configured."""
    found = (
        (name, problem(stack, name, name in cfg.workloads.existing_namespaces, live.get(name)))
        for name in cfg.workloads.meshed_namespaces
    )
    return [(name, why) for name, why in found if why]


def check_live(cfg: StackConfig, stack: str, live: LiveCluster | None) -> None:
    """Refuse, before any registration, a meshed namespace the program would take over or patch in vain.

    Skipped where the pre-flight already asked (it reports every stack's problems at once) and where the
    program does not read the cluster (`live_cluster.read` gave None).
    """
    if live is None or clusters.checked_by_preflight():
        return
    found = problems(cfg, stack, live.namespaces)
    if found:
        name, why = found[0]
        raise ConfigError("meshedNamespaces", name, why)
