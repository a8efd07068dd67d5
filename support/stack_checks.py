"""Checks of a stack's config against what lies outside it, before the first registration.

The target stack's outputs (read by the source), this stack's own last outputs (the trust domain its
anchor was made for, the Edge Stack product it ran), and the Edge Stack manifest's shape.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import pulumi

from support import upstream
from support.certificates import common_name
from support.config_model import EdgeStackSettings, ExportMode, SourceRole, StackConfig, needs_gateway
from support.errors import ConfigError
from support.manifests import parse as parse_manifest


# What the source reads from the target stack's outputs.
def retired_edge_stack_namespace(cfg: StackConfig, last_outputs: Mapping[str, Any]) -> str | None:
    """The namespace of the Edge Stack product this stack ran until now, when `edgeStackProduct` switched away from it.

    The engine would delete that namespace with the old product, and with it whatever users put there:
    the program keeps it declared once more, retained on delete (components/edge_stack.py).
    """
    previous = last_outputs.get("edgeStackNamespace")
    if not isinstance(previous, str) or not previous or previous == cfg.edge_stack.product.namespace:
        return None
    return previous


TARGET_OUTPUTS = (
    "versionLine",
    "clusterName",
    "context",
    "trustAnchorPem",
    "trustAnchorSecret",
    "gatewayName",
    "gatewayNamespace",
)


def check_target_outputs(cfg: StackConfig, source: SourceRole, outputs: Mapping[str, Any]) -> Mapping[str, Any]:
    """The target stack's outputs, refused before any registration when missing or built for something else."""
    missing = [key for key in TARGET_OUTPUTS if outputs.get(key) in (None, "")]
    if missing:
        why = "has no outputs: `up` the target stack first" if not outputs else f"lacks {', '.join(missing)}"
        raise ConfigError("targetStack", source.target_stack, f"the target stack {why}")
    line, cluster_name, context = outputs["versionLine"], outputs["clusterName"], outputs["context"]
    if line != cfg.line.name:
        raise ConfigError("versionLine", cfg.line.name, f"the target stack {source.target_stack} uses version line {line!r}")
    if cluster_name != source.target.name:
        raise ConfigError("targetClusterName", source.target.name, f"the target stack's clusterName is {cluster_name!r}")
    if context == cfg.cluster.context:
        raise ConfigError("context", cfg.cluster.context, f"the target stack {source.target_stack} uses the same context")
    _check_modes(cfg, source, export_modes(source, outputs))
    link_service_account(source, outputs)  # it reaches link-gen's command line
    link_credentials_generation(source, outputs)  # it reaches the destination controller's pod template
    _check_probe_port(source, outputs.get("probePort"))
    return outputs


def _check_probe_port(source: SourceRole, port: Any) -> None:
    """The target's `probePort` reaches the multicluster install's command line: a port, or absent (an older target)."""
    if port is None:
        return
    if not (type(port) in (int, float) and port == int(port) and 0 < port < 65536):
        raise ConfigError("targetStack", source.target_stack, f"the target stack's probePort {port!r} is not a port")


def _check_modes(cfg: StackConfig, source: SourceRole, modes: Mapping[str, ExportMode]) -> None:
    """What the target's exports need of the source: a flat network for any pod-to-pod one."""
    pod_to_pod = [f"{ref} ({mode})" for ref, mode in modes.items() if mode.needs_flat_network]
    if pod_to_pod and not source.flat_network:
        raise ConfigError(
            "flatNetwork",
            False,
            f"the target stack exports {', '.join(pod_to_pod)}: pod to pod, which needs the source's pods to reach the "
            "target's pods directly; set flatNetwork true on this stack once they do, or export them in mode gateway",
        )
    _warn_unmeshed_callers(cfg, modes)


def _warn_unmeshed_callers(cfg: StackConfig, modes: Mapping[str, ExportMode]) -> None:
    """A pod-to-pod mirror has no Endpoints: only meshed callers reach it. Said where the mirror lands unmeshed.

    A warning, not a refusal: callers in another, meshed, namespace reach it just as well.
    """
    meshed = set(cfg.workloads.meshed_namespaces)
    for ref, mode in modes.items():
        namespace = ref.partition("/")[0]
        if mode.needs_flat_network and namespace not in meshed:
            pulumi.log.warn(
                f"{ref} is exported {mode}: its mirror in namespace {namespace} has no Endpoints, so only meshed pods "
                f"reach it, and {namespace} is not one of this stack's meshedNamespaces"
            )


def export_modes(source: SourceRole, outputs: Mapping[str, Any]) -> dict[str, ExportMode]:
    """The target's exports and the mode of each; a target from before modes exported all through its gateway."""
    listed = outputs.get("exportedServiceModes")
    if not isinstance(listed, Mapping):
        return {str(ref): ExportMode.GATEWAY for ref in outputs.get("exportedServices") or []}
    known = [mode.value for mode in ExportMode]
    for ref, mode in listed.items():
        if mode not in known:
            raise ConfigError(
                "targetStack", source.target_stack, f"the target stack exports {ref} in mode {mode!r}, not one of {known}"
            )
    return {str(ref): ExportMode(mode) for ref, mode in listed.items()}


def link_through_gateway(source: SourceRole, outputs: Mapping[str, Any]) -> bool:
    """Whether the Link goes through the target's gateway (config_model.needs_gateway: unless every export is pod to pod)."""
    return needs_gateway(export_modes(source, outputs).values())


def link_has_pod_to_pod(source: SourceRole, outputs: Mapping[str, Any]) -> bool:
    """Whether any export is reached pod to pod: the source's destination controller then reads the Link's credentials."""
    return any(mode.needs_flat_network for mode in export_modes(source, outputs).values())


# A Kubernetes object name (DNS-1123 subdomain): what reaches link-gen's command line from the target's outputs.
_ACCOUNT_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")


def link_service_account(source: SourceRole, outputs: Mapping[str, Any]) -> str:
    """The target's remote-access account the Link's token comes from; a target from before rotation: upstream's default."""
    account = outputs.get("linkServiceAccount") or upstream.REMOTE_ACCESS_ACCOUNT
    if not isinstance(account, str) or not _ACCOUNT_NAME.fullmatch(account):
        raise ConfigError(
            "targetStack", source.target_stack, f"the target stack's linkServiceAccount {account!r} is not an account name"
        )
    return account


def link_credentials_generation(source: SourceRole, outputs: Mapping[str, Any]) -> int:
    """The target's `linkCredentials` generation, the account's number; a target from before rotation: 0."""
    generation = outputs.get("linkCredentials", 0)
    if not (type(generation) in (int, float) and generation == int(generation) and generation >= 0):
        raise ConfigError(
            "targetStack", source.target_stack, f"the target stack's linkCredentials {generation!r} is not a generation"
        )
    return int(generation)


def check_link_credentials_forward(generation: int, last: object) -> None:
    """Rotation goes forward only: each generation is a new account and token, and its number says which is live.

    Going back would work (a recreated account gets a new token), but a lower number would say nothing of
    which token is older; to rotate again, raise it.
    """
    if isinstance(last, int | float) and not isinstance(last, bool) and generation < last:
        last = int(last)
        raise ConfigError(
            "linkCredentials",
            generation,
            f"the target's Link credentials are at generation {last}: rotation goes forward only; set {last + 1} to rotate",
        )


def check_trust_domain_kept(trust_domain: str, anchor_pem: object) -> None:
    """The anchor names its trust domain: a new one would replace the anchor of both clusters at once.

    Every proxy of both meshes would lose the trust of the other side until it restarted; the anchor
    is protected, so the engine would refuse mid-`up` anyway. Said here, before anything is planned.
    """
    if not isinstance(anchor_pem, str) or not anchor_pem.strip():
        return
    made_for = common_name(anchor_pem)
    wanted = upstream.trust_anchor_common_name(trust_domain)
    if made_for != wanted:
        old = made_for.removeprefix(upstream.trust_anchor_common_name(""))
        raise ConfigError(
            "trustDomain",
            trust_domain,
            f"the stack's trust anchor was made for trust domain {old!r}: a new domain needs a new anchor on both "
            "clusters at once (every proxy restarted); destroy both stacks (`./aes-linkerd2 destroy "
            "--delete-trust-anchor`) and `up` again, or set trustDomain back",
        )


def check_edge_stack_manifest(edge_stack: EdgeStackSettings, text: str) -> None:
    """The manifest holds the Deployment and the Service the program meshes and patches, as the product names them."""
    product = edge_stack.product
    found = {(o.kind, o.namespace, o.name): o.body for o in parse_manifest(text)}
    for kind, name in (("Deployment", product.deployment), ("Service", product.service)):
        body = found.get((kind, product.namespace, name))
        if body is None:
            raise ConfigError(
                "edgeStackManifest",
                edge_stack.manifest,
                f"holds no {kind} {product.namespace}/{name}: it is not {product.name} {edge_stack.version}'s manifest",
            )
        spec = body.get("spec")
        shape_ok = isinstance(spec, dict) and (
            isinstance(spec.get("template"), dict) if kind == "Deployment" else isinstance(spec.get("ports"), list)
        )
        if not shape_ok:
            part = "spec.template" if kind == "Deployment" else "spec.ports"
            raise ConfigError("edgeStackManifest", edge_stack.manifest, f"its {kind} {product.namespace}/{name} has no {part}")
