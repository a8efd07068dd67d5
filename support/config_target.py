"""The target stack's own keys: gatewayHostname, exportedServices (each with its mode), linkCredentials and
trustAnchorRotation. support/config.py reads the keys both roles share and calls `target`.
"""

from __future__ import annotations

import json

from support import config_values as values
from support import upstream
from support.certificates import RotationStep
from support.config_model import ExportedService, ExportMode, Role, TargetRole, Tls, WorkloadSettings
from support.config_values import Reader
from support.errors import ConfigError


def target(
    read: Reader,
    workloads: WorkloadSettings,
    rotation: RotationStep | None,
    cluster_name: str,
    tls: Tls | None,
    *,
    line: upstream.VersionLine,
) -> TargetRole:
    hostname = values.dns_name("gatewayHostname", read.required("gatewayHostname"))
    if tls is not None and tls.hostname == hostname:
        raise ConfigError("tlsHostname", hostname, "equals gatewayHostname: two Hosts (redirect and insecure route) for one name")
    meshed = workloads.meshed_namespaces
    default_exports = [f"{workloads.qotm_namespace}/{upstream.QOTM_SERVICE}"] if workloads.qotm else []
    # An empty list (Pulumi.yaml's default) means the default: the QOTM service when QOTM is on.
    entries = _export_entries(read) or default_exports
    exported = tuple(_export(entry, line) for entry in entries)
    refs = [service.ref for service in exported]
    for ref, service in zip(refs, exported, strict=True):
        if refs.count(ref) > 1:
            raise ConfigError("exportedServices", ref, "is listed twice")
        if service.namespace not in meshed:
            raise ConfigError(
                "exportedServices",
                ref,
                f"is in namespace {service.namespace!r}, not one of meshedNamespaces ({', '.join(meshed)})",
            )
        _check_export(ref, service, workloads, cluster_name)
    return TargetRole(
        gateway_hostname=hostname,
        exported_services=exported,
        trust_anchor_rotation=rotation,
        link_credentials=_link_credentials(read, line),
    )


# Generations far beyond any rotation schedule; the account's name stays short.
_LINK_CREDENTIALS_LIMIT = 99999


def _link_credentials(read: Reader, line: upstream.VersionLine) -> int:
    """`linkCredentials`: which generation of remote-access account the Link's token comes from."""
    generation = read.integer("linkCredentials", 0)
    if not 0 <= generation <= _LINK_CREDENTIALS_LIMIT:
        raise ConfigError(
            "linkCredentials", generation, f"must be between 0 (upstream's default account) and {_LINK_CREDENTIALS_LIMIT}"
        )
    if generation and not line.link_controllers_in_install:
        raise ConfigError(
            "linkCredentials",
            generation,
            f"version line {line.name} links with upstream's default account only; rotating it needs the current line",
        )
    return generation


_EXPORT_SHAPE = "<namespace>/<service>, or a one-entry mapping <namespace>/<service>: <mode>"
_MODES = tuple(mode.value for mode in ExportMode)


def _export_entries(read: Reader) -> list[object]:
    """exportedServices as listed: each a string, or a mapping of one service to its mode."""
    raw = read.text("exportedServices")
    if raw is None:
        return []
    # The Pulumi CLI passes arrays as JSON; JSON has no aliases to expand.
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        value = None
    if not isinstance(value, list):
        raise ConfigError("exportedServices", raw, f"must be a list; each entry {_EXPORT_SHAPE}")
    return value


def _export(entry: object, line: upstream.VersionLine) -> ExportedService:
    """One entry of exportedServices: the service, and how the source reaches it (gateway unless said)."""
    if isinstance(entry, str):
        return ExportedService(*_service_ref("exportedServices", entry))
    if not isinstance(entry, dict) or len(entry) != 1:
        raise ConfigError("exportedServices", entry, f"each entry must be {_EXPORT_SHAPE}")
    [(ref, mode)] = entry.items()
    if not isinstance(mode, str) or mode not in _MODES:
        raise ConfigError("exportedServices", entry, f"mode must be one of {', '.join(_MODES)}")
    if mode != ExportMode.GATEWAY and not line.link_modes:
        raise ConfigError(
            "exportedServices",
            entry,
            f"version line {line.name} (Linkerd {line.linkerd_versions[0]}) has only the gateway mode; "
            f"{mode} needs the current line",
        )
    return ExportedService(*_service_ref("exportedServices", ref), ExportMode(mode))


def _check_export(ref: str, service: ExportedService, workloads: WorkloadSettings, cluster_name: str) -> None:
    namespace, name = service.namespace, service.name
    if (namespace, name) == ("default", "kubernetes"):
        raise ConfigError("exportedServices", ref, "is the API server's own Service: exporting it would mirror the API server")
    if name == upstream.QOTM_SERVICE and not workloads.qotm and namespace == workloads.qotm_namespace:
        raise ConfigError("exportedServices", ref, "is QOTM's Service, and qotm is false: nothing would create it")
    # The service mirror names a federated service's one Service <service>-federated, the others <service>-<cluster>.
    federated = service.mode is ExportMode.FEDERATED
    mirror = upstream.FEDERATED_SERVICE.format(service="<service>") if federated else f"<service>-{cluster_name}"
    if len(mirror.replace("<service>", name)) > values.DNS_LABEL_LIMIT:
        raise ConfigError(
            "exportedServices", ref, f"its mirror {mirror} would be longer than a Service name's {values.DNS_LABEL_LIMIT}"
        )


def _service_ref(key: str, value: str) -> tuple[str, str]:
    namespace, _, name = value.partition("/")
    if not name:
        raise ConfigError(key, value, "each entry must be <namespace>/<service>")
    return values.label(key, namespace), values.label(key, name)


TRUST_ANCHOR_ROTATION = "trustAnchorRotation"


def trust_anchor_rotation(role: Role, read: Reader) -> RotationStep | None:
    """`trustAnchorRotation`: the step of a trust anchor rotation this update does, if any (the target's)."""
    raw = read.text(TRUST_ANCHOR_ROTATION)
    if raw is None:
        return None
    if role is not Role.TARGET:
        raise ConfigError(
            TRUST_ANCHOR_ROTATION, raw, "is read by the target stack only (it owns the anchor); the source follows its step"
        )
    steps = [step.value for step in RotationStep]
    if raw not in steps:
        raise ConfigError(TRUST_ANCHOR_ROTATION, raw, f"must be one of {', '.join(steps)} (one `up` each, in this order)")
    return RotationStep(raw)
