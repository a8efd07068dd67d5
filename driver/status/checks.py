"""The checks of `status`: each cluster's objects against what its stack's outputs say should be there.

Each check is one line, `ok`, `FAIL` or `unknown`. Whether the gateway is alive and its latency are
known only to the source's running service mirror, whose probe keeps them as metrics: they come from
`linkerd multicluster gateways` (`read.linkerd_gateways`) and are "unknown", with why, when it cannot
answer. What the service mirror writes (the gateway's probe Service, the mirrored Services with their
Endpoints, the Link's status) is read from the cluster.
"""

from __future__ import annotations

import datetime
import functools
import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from driver import certs
from driver.settings import StackSettings
from driver.status.read import (
    GATEWAYS,
    Gateways,
    Kubectl,
    KubectlError,
    Objects,
    TrustObjects,
    linkerd_gateways,
    read_objects,
    read_trust,
)
from support import clock, trust_gates, upstream
from support.config_model import ExportMode, needs_gateway

OK, FAIL, UNKNOWN = "ok", "FAIL", "unknown"
# A rotation's step that has not taken hold yet: not a failure, the next step waits for it.
WAITING = "waiting"
AREAS = ("control plane", "edge stack", "exports", "link", "certificates", "trust")
# HA runs three replicas of each of these (`linkerd install --ha`).
HA_DEPLOYMENTS = ("linkerd-identity", "linkerd-destination", "linkerd-proxy-injector")
HA_REPLICAS = 3
MIRRORED_LABEL = "mirror.linkerd.io/mirrored-service"
MIRRORED_GATEWAY_LABEL = "mirror.linkerd.io/mirrored-gateway"
CLUSTER_NAME_LABEL = "mirror.linkerd.io/cluster-name"


@dataclass(frozen=True)
class Check:
    stack: str
    area: str
    name: str
    state: str  # ok, FAIL or unknown
    detail: str


@dataclass
class ClusterStatus:
    """One cluster as read: its checks, and what the picture draws."""

    stack: str
    cluster_name: str
    context: str
    checks: list[Check] = field(default_factory=list)
    gateway_ports: list[str] = field(default_factory=list)
    exported: list[str] = field(default_factory=list)
    # "namespace/name" -> its multicluster mode: the target's exports, and the source's mirrors reached pod to pod.
    export_modes: dict[str, str] = field(default_factory=dict)
    mirror_modes: dict[str, str] = field(default_factory=dict)
    # name -> endpoints ("address:port"), of the Services mirrored from the linked cluster.
    mirrored: dict[str, list[str]] = field(default_factory=dict)
    linked_to: str | None = None
    # The target's gateway Service's load-balancer addresses, as read (None: not read).
    gateway_addresses: list[str] | None = None
    # The source's Link: the gateway addresses it dials (None: no Link with a gateway).
    link_gateway_addresses: list[str] | None = None

    def add(self, area: str, name: str, state: str | bool, detail: str) -> None:
        if isinstance(state, bool):
            state = OK if state else FAIL
        self.checks.append(Check(self.stack, area, name, state, detail))

    def area_state(self, area: str) -> str | None:
        states = {c.state for c in self.checks if c.area == area}
        if not states:
            return None
        return FAIL if FAIL in states else WAITING if WAITING in states else OK if OK in states else UNKNOWN


@dataclass
class Report:
    clusters: list[ClusterStatus]

    @property
    def checks(self) -> list[Check]:
        return [check for cluster in self.clusters for check in cluster.checks]

    @property
    def healthy(self) -> bool:
        return all(check.state != FAIL for check in self.checks)

    def data(self) -> dict[str, Any]:
        return {
            "healthy": self.healthy,
            "clusters": [
                {
                    "stack": c.stack,
                    "clusterName": c.cluster_name,
                    "context": c.context,
                    "linkedTo": c.linked_to,
                    "gatewayPorts": c.gateway_ports,
                    "exportedServices": c.exported,
                    "exportedServiceModes": c.export_modes,
                    "mirroredServices": c.mirrored,
                    "checks": [{k: v for k, v in asdict(check).items() if k != "stack"} for check in c.checks],
                }
                for c in self.clusters
            ],
        }


def _ready(deployment: Mapping[str, Any]) -> tuple[int, int]:
    wanted = int((deployment.get("spec") or {}).get("replicas", 1))
    status = deployment.get("status") or {}
    return min(int(status.get("readyReplicas", 0)), int(status.get("updatedReplicas", 0))), wanted


def _endpoints(objects: Objects, namespace: str, name: str) -> list[str]:
    """Ready addresses of a Service's Endpoints, as address:port."""
    found = objects.get("Endpoints", namespace, name) or {}
    result = []
    for subset in found.get("subsets") or []:
        ports = [str(p.get("port")) for p in subset.get("ports") or []] or ["-"]
        result += [f"{a.get('ip')}:{port}" for a in subset.get("addresses") or [] for port in ports]
    return result


def _labels(item: Mapping[str, Any]) -> Mapping[str, str]:
    return item["metadata"].get("labels") or {}


def _annotations(metadata: Mapping[str, Any] | None) -> Mapping[str, str]:
    return (metadata or {}).get("annotations") or {}


# --- control plane ------------------------------------------------------------------------------


def control_plane(cluster: ClusterStatus, objects: Objects, ha: bool) -> None:
    area = "control plane"
    for namespace in (upstream.CONTROL_PLANE_NAMESPACE, upstream.MULTICLUSTER_NAMESPACE):
        deployments = objects.all("Deployment", namespace)
        if objects.get("Namespace", "", namespace) is None:
            cluster.add(area, f"namespace {namespace}", False, "missing")
            continue
        if namespace == upstream.CONTROL_PLANE_NAMESPACE and not deployments:
            cluster.add(area, f"namespace {namespace}", False, "no Deployment")
        for deployment in deployments:
            name = deployment["metadata"]["name"]
            ready, wanted = _ready(deployment)
            healthy, note = _ha_replicas(name, ready >= wanted > 0, wanted, ha)
            cluster.add(area, f"{namespace}/{name}", healthy, f"{ready}/{wanted} ready{note}")
    webhooks(cluster, objects)


def _ha_replicas(name: str, healthy: bool, wanted: int, ha: bool) -> tuple[bool, str]:
    """With `linkerdHa`, identity, destination and the injector need three replicas; the note says which applies."""
    if name not in HA_DEPLOYMENTS:
        return healthy, ""
    if not ha:
        return healthy, " (linkerdHa off)"
    return healthy and wanted >= HA_REPLICAS, ", HA" if wanted >= HA_REPLICAS else f", HA wants {HA_REPLICAS}"


def webhooks(cluster: ClusterStatus, objects: Objects) -> None:
    """Linkerd's webhooks, each served by a Service with ready endpoints."""
    area = "control plane"
    for kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
        for configuration in objects.all(kind):
            name = configuration["metadata"]["name"]
            if not name.startswith("linkerd-"):
                continue
            for hook in configuration.get("webhooks") or []:
                service = (hook.get("clientConfig") or {}).get("service") or {}
                namespace, service_name = service.get("namespace", ""), service.get("name", "")
                served = _endpoints(objects, namespace, service_name)
                policy = hook.get("failurePolicy", "Fail")
                if objects.get("Service", namespace, service_name) is None:
                    cluster.add(area, f"webhook {name}", False, f"Service {namespace}/{service_name} missing")
                else:
                    detail = f"{namespace}/{service_name}: {len(served)} endpoint(s), failurePolicy {policy}"
                    cluster.add(area, f"webhook {name}", bool(served), detail)


# --- edge stack ---------------------------------------------------------------------------------


def edge_stack(cluster: ClusterStatus, objects: Objects, settings: StackSettings, outputs: Mapping[str, Any]) -> None:
    line = settings.line
    product = line.edge_stack.get(str(settings.get("edgeStackProduct") or line.default_product)) or next(
        iter(line.edge_stack.values())
    )
    namespace = str(outputs.get("edgeStackNamespace") or product.namespace)
    _edge_deployment(cluster, objects.get("Deployment", namespace, product.deployment), f"{namespace}/{product.deployment}")
    if settings.get("role") == "target":
        _gateway_service(cluster, objects.get("Service", namespace, product.service), f"{namespace}/{product.service}", outputs)
    for name in outputs.get("meshedNamespaces") or []:
        found = objects.get("Namespace", "", str(name))
        value = _annotations((found or {}).get("metadata")).get(upstream.INJECT_ANNOTATION)
        cluster.add("edge stack", f"namespace {name}", value == upstream.INJECT_ENABLED, f"{upstream.INJECT_ANNOTATION}={value}")


def _edge_deployment(cluster: ClusterStatus, deployment: Mapping[str, Any] | None, shown_as: str) -> None:
    """Edge Stack's Deployment ready, and meshed by its pod template's annotations."""
    if deployment is None:
        cluster.add("edge stack", shown_as, False, "Deployment missing")
        return
    ready, wanted = _ready(deployment)
    cluster.add("edge stack", shown_as, ready >= wanted > 0, f"{ready}/{wanted} ready")
    notes = _annotations((deployment["spec"].get("template") or {}).get("metadata"))
    linkerd = {k: v for k, v in sorted(notes.items()) if k.startswith(("linkerd.io/", "config.linkerd.io/"))}
    meshed = notes.get(upstream.INJECT_ANNOTATION) == upstream.INJECT_ENABLED
    shown = ", ".join(f"{k}={v}" for k, v in linkerd.items()) or "no Linkerd annotations"
    cluster.add("edge stack", "meshed", meshed, shown)


def _gateway_service(
    cluster: ClusterStatus, service: Mapping[str, Any] | None, shown_as: str, outputs: Mapping[str, Any]
) -> None:
    """On the target, Edge Stack's Service as Linkerd's gateway: its ports and `mirror.linkerd.io/*` annotations."""
    if service is None:
        cluster.add("edge stack", "gateway Service", False, f"{shown_as} missing")
        return
    ports = service["spec"].get("ports") or []
    cluster.gateway_ports = [f"{p.get('name', '')} {p['port']}->{p.get('targetPort', p['port'])}" for p in ports]
    missing = sorted({upstream.GATEWAY_PORT_NAME, upstream.PROBE_PORT_NAME} - {p.get("name") for p in ports})
    said = f"; missing {', '.join(missing)}" if missing else ""
    cluster.add("edge stack", "gateway ports", not missing, ", ".join(cluster.gateway_ports) + said)
    cluster.gateway_addresses = load_balancer_addresses(service)
    _gateway_annotations(cluster, service, outputs.get("gatewayIdentity"))


def load_balancer_addresses(service: Mapping[str, Any]) -> list[str]:
    """The IPs (or host names) a cloud's controller gave the Service's load balancer."""
    ingress = ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    return [str(entry.get("ip") or entry.get("hostname")) for entry in ingress if entry.get("ip") or entry.get("hostname")]


def _gateway_annotations(cluster: ClusterStatus, service: Mapping[str, Any], identity: Any) -> None:
    """What the service mirror reads off the gateway Service: gateway, probe path and (when known) identity."""
    notes = {k: v for k, v in _annotations(service["metadata"]).items() if k.startswith("mirror.linkerd.io/")}
    right = notes.get(upstream.MULTICLUSTER_GATEWAY_ANNOTATION) == "true" and upstream.PROBE_PATH_ANNOTATION in notes
    if identity:
        right = right and notes.get(upstream.GATEWAY_IDENTITY_ANNOTATION) == identity
    shown = ", ".join(f"{k}={v}" for k, v in sorted(notes.items())) or "none"
    cluster.add("edge stack", "gateway annotations", right, shown)


# --- exports and the link -----------------------------------------------------------------------


def export_modes(target_outputs: Mapping[str, Any]) -> dict[str, str]:
    """The target's exports ("namespace/name") and the mode of each; a target from before modes: the gateway."""
    listed = target_outputs.get("exportedServiceModes")
    modes = listed if isinstance(listed, Mapping) else {}
    return {str(ref): str(modes.get(str(ref), ExportMode.GATEWAY)) for ref in target_outputs.get("exportedServices") or []}


def exports(cluster: ClusterStatus, objects: Objects, settings: StackSettings, outputs: Mapping[str, Any]) -> None:
    for entry, mode in export_modes(outputs).items():
        namespace, _, name = entry.partition("/")
        service = objects.get("Service", namespace, name)
        if service is None:
            cluster.add("exports", entry, False, "Service missing")
            continue
        cluster.exported.append(entry)
        cluster.export_modes[entry] = mode
        if mode not in upstream.EXPORT_LABELS:
            cluster.add("exports", entry, False, f"mode {mode!r} is none of {', '.join(upstream.EXPORT_LABELS)}")
            continue
        exported, how = _export_mark(settings.line, mode, service["metadata"])
        served = len(_endpoints(objects, namespace, name))
        cluster.add("exports", entry, exported, f"mode {mode}: {how} {'set' if exported else 'MISSING'}, {served} endpoint(s)")


def _export_mark(line: upstream.VersionLine, mode: str, meta: Mapping[str, Any]) -> tuple[bool, str]:
    """Whether the Service carries what exports it in its mode (a label, or 2.8's annotation), and what that is."""
    if not line.export_by_label:
        annotation = upstream.EXPORT_GATEWAY_NAME_ANNOTATION
        return annotation in (meta.get("annotations") or {}), f"annotation {annotation}"
    label, value = upstream.EXPORT_LABELS[mode]
    return (meta.get("labels") or {}).get(label) == value, f"label {label}={value}"


def gateway_probe(cluster: ClusterStatus, link_name: str, probe: Callable[[], list[dict[str, Any]]]) -> None:
    """Alive and latency, as the service mirror's probe measured them; unknown when nothing can say."""
    name = "gateway alive, latency"
    try:
        found = [entry for entry in probe() if entry.get("clusterName") == link_name]
    except KubectlError as error:
        cluster.add("link", name, UNKNOWN, f"unknown: {error}")
        return
    if not found:
        cluster.add("link", name, UNKNOWN, f"unknown: {GATEWAYS} lists no probe (is the service mirror running?)")
        return
    entry = found[0]
    detail = f"latency {entry.get('latency')} ms, {entry.get('numberOfServices')} service(s) ({GATEWAYS})"
    cluster.add("link", name, entry.get("alive") is True, ("alive, " if entry.get("alive") else "NOT alive, ") + detail)


def link(
    cluster: ClusterStatus,
    objects: Objects,
    link_name: str,
    modes: Mapping[str, str],
    ask_gateways: Callable[[], list[dict[str, Any]]],
) -> None:
    """The Link, the gateway's probe mirror (when it has a gateway) and the mirrored Services, as the service mirror
    leaves them; `modes`: the target's exports and the mode of each."""
    cluster.linked_to = link_name
    found = objects.get("Link", upstream.MULTICLUSTER_NAMESPACE, link_name)
    if found is None:
        cluster.add("link", f"Link {link_name}", False, f"missing in {upstream.MULTICLUSTER_NAMESPACE}")
        return
    services = [s for s in objects.all("Service") if _labels(s).get(CLUSTER_NAME_LABEL) == link_name]
    if _link_spec(cluster, found, link_name, modes):
        _gateway_mirrors(cluster, objects, [s for s in services if MIRRORED_GATEWAY_LABEL in _labels(s)])
        gateway_probe(cluster, link_name, ask_gateways)
    _mirrors(cluster, objects, found, link_name, modes=modes, mirrored=_mirrored_services(services))


def _mirrors(
    cluster: ClusterStatus,
    objects: Objects,
    found: Mapping[str, Any],
    link_name: str,
    *,
    modes: Mapping[str, str],
    mirrored: set[str],
) -> None:
    """Each export's mirror where the service mirror puts it, and each other mirror of this link."""
    expected = {_mirror_name(entry, mode, link_name): (entry, mode) for entry, mode in modes.items()}
    conditions = {
        ExportMode.GATEWAY.value: _mirrored_conditions(found, "mirrorServices"),
        ExportMode.REMOTE_DISCOVERY.value: _mirrored_conditions(found, "mirrorServices"),
        ExportMode.FEDERATED.value: _mirrored_conditions(found, "federatedServices"),
    }
    for local in sorted(set(expected) | mirrored):
        remote, mode = expected.get(local, (None, ExportMode.GATEWAY.value))
        is_mirrored = local in mirrored or (mode == ExportMode.FEDERATED and _is_mirror(objects, local))
        condition = conditions.get(mode, {}).get(remote or "")
        _mirror(cluster, objects, local, remote=remote, mode=mode, is_mirrored=is_mirrored, condition=condition)


def _mirror_name(remote: str, mode: str, link_name: str) -> str:
    """Where the service mirror puts an export on the source: `<name>-<link>`, or one `<name>-federated` for all links."""
    namespace, _, name = remote.partition("/")
    local = upstream.FEDERATED_SERVICE.format(service=name) if mode == ExportMode.FEDERATED else f"{name}-{link_name}"
    return f"{namespace}/{local}"


def _is_mirror(objects: Objects, local: str) -> bool:
    namespace, _, name = local.partition("/")
    found = objects.get("Service", namespace, name)
    return found is not None and _labels(found).get(MIRRORED_LABEL) == "true"


def _link_spec(cluster: ClusterStatus, found: Mapping[str, Any], link_name: str, modes: Mapping[str, str]) -> bool:
    """The Link names the gateway's address and port (its identity and probe are shown), or has no gateway when every
    export is pod to pod; returns whether it has one."""
    spec = found.get("spec") or {}
    if not spec.get("gatewayAddress"):
        _gateway_less_link(cluster, spec, link_name, modes)
        return False
    probe = spec.get("probeSpec") or {}
    cluster.link_gateway_addresses = [a.strip() for a in str(spec["gatewayAddress"]).split(",") if a.strip()]
    cluster.add(
        "link",
        f"Link {link_name}",
        bool(spec.get("gatewayAddress") and spec.get("gatewayPort")),
        f"gateway {spec.get('gatewayAddress')}:{spec.get('gatewayPort')} as {spec.get('gatewayIdentity')}, "
        f"probe :{probe.get('port')}{probe.get('path')} every {probe.get('period')}",
    )
    return True


def _gateway_less_link(cluster: ClusterStatus, spec: Mapping[str, Any], link_name: str, modes: Mapping[str, str]) -> None:
    """`linkerd multicluster link-gen --gateway=false`: no address, identity, probe or gateway selector."""
    through = sorted(entry for entry, mode in modes.items() if mode == ExportMode.GATEWAY)
    selectors = ", ".join(
        f"{mode} by {_selector(spec.get(key))}"
        for mode, key in (("remote-discovery", "remoteDiscoverySelector"), ("federated", "federatedServiceSelector"))
    )
    if needs_gateway(modes.values()):
        detail = f"no gateway, yet {', '.join(through) or 'nothing exported'} goes through one: `up` the source again"
        cluster.add("link", f"Link {link_name}", False, detail)
    else:
        cluster.add("link", f"Link {link_name}", True, f"no gateway (every export pod to pod): {selectors}")


def _selector(selector: Any) -> str:
    labels = (selector or {}).get("matchLabels") if isinstance(selector, Mapping) else None
    return ",".join(f"{k}={v}" for k, v in sorted((labels or {}).items())) or "nothing"


def _gateway_mirrors(cluster: ClusterStatus, objects: Objects, gateway_mirrors: list[Mapping[str, Any]]) -> None:
    """The gateway's probe Service, as the service mirror mirrors it, with its endpoints."""
    if not gateway_mirrors:
        cluster.add("link", "gateway mirror", False, "no probe Service mirrored: the service mirror has not run")
    for mirror in gateway_mirrors:
        meta = mirror["metadata"]
        served = _endpoints(objects, meta["namespace"], meta["name"])
        shown = f"{meta['namespace']}/{meta['name']} -> {', '.join(served) or 'no endpoints'}"
        cluster.add("link", "gateway mirror", bool(served), shown)


def _mirrored_services(services: list[Mapping[str, Any]]) -> set[str]:
    """The Services the service mirror made for the linked cluster's exports ("namespace/name"), not the gateway's."""
    return {
        f"{s['metadata']['namespace']}/{s['metadata']['name']}"
        for s in services
        if _labels(s).get(MIRRORED_LABEL) == "true" and MIRRORED_GATEWAY_LABEL not in _labels(s)
    }


def _mirrored_conditions(found: Mapping[str, Any], part: str) -> dict[str, Mapping[str, Any]]:
    """The Link's status (`mirrorServices` or `federatedServices`): each remote Service ("namespace/name") and its
    `Mirrored` condition."""
    conditions = {}
    for entry in (found.get("status") or {}).get(part) or []:
        remote = entry.get("remoteRef") or {}
        for condition in entry.get("conditions") or []:
            if condition.get("type") == "Mirrored":
                conditions[f"{remote.get('namespace')}/{remote.get('name')}"] = condition
    return conditions


def _mirror(
    cluster: ClusterStatus,
    objects: Objects,
    local: str,
    *,
    remote: str | None,
    mode: str,
    is_mirrored: bool,
    condition: Mapping[str, Any] | None,
) -> None:
    """One mirrored Service (`<name>-<link>`, or `<name>-federated`): there, mirrored by the Link's status, and through
    the gateway with Endpoints (pod to pod it has none: meshed clients resolve the target's pods themselves)."""
    namespace, _, name = local.partition("/")
    served = _endpoints(objects, namespace, name)
    said = f"; Link status Mirrored={condition.get('status')} {condition.get('reason') or ''}".rstrip() if condition else ""
    if not is_mirrored:
        cluster.add("link", f"mirror {local}", False, f"not mirrored (exported as {remote}){said}")
        return
    cluster.mirrored[local] = served
    settled = condition is None or condition.get("status") == "True"
    if mode == ExportMode.GATEWAY:
        cluster.add("link", f"mirror {local}", bool(served) and settled, f"endpoints {', '.join(served) or 'none'}{said}")
        return
    cluster.mirror_modes[local] = mode
    cluster.add("link", f"mirror {local}", settled, f"{mode}: pod to pod, no Endpoints of its own{said}")


# --- the Link's credentials: which remote-access account, how old, and whether the source has caught up --------


def link_account(outputs: Mapping[str, Any]) -> str | None:
    """The remote-access account a stack's last `up` linked with (None: a stack from before rotation)."""
    account = outputs.get("linkServiceAccount")
    return str(account) if account else None


def target_credentials(cluster: ClusterStatus, objects: Objects, outputs: Mapping[str, Any]) -> None:
    """The account the target exports, live, with its generation and age (the account's; its token Secret is
    never read, and is made with it)."""
    account = link_account(outputs)
    if account is None:
        return
    generation = outputs.get("linkCredentials", 0)
    found = objects.get("ServiceAccount", upstream.MULTICLUSTER_NAMESPACE, account)
    if found is None:
        cluster.add("exports", "link credentials", False, f"generation {generation}: account {account} missing: `up` the target")
        return
    made = str((found.get("metadata") or {}).get("creationTimestamp") or "")
    cluster.add("exports", "link credentials", True, f"generation {generation}: account {account}, {_age(made)}")


def _age(made: str) -> str:
    try:
        days = (clock.now() - clock.parse_time(made)).total_seconds() / 86400
    except ValueError:
        return "age unknown"
    return f"made {made} ({days:.0f} days ago)" if days >= 1 else f"made {made} (today)"


def source_credentials(cluster: ClusterStatus, outputs: Mapping[str, Any], target: Mapping[str, Any]) -> None:
    """Whether the source's Link carries the token of the account the target exports now."""
    wanted = link_account(target)
    if wanted is None:
        return
    # A source from before rotation linked with upstream's default account, the only one there was.
    linked = link_account(outputs) or upstream.REMOTE_ACCESS_ACCOUNT
    generation = target.get("linkCredentials", 0)
    if linked == wanted:
        cluster.add("link", "link credentials", True, f"from account {wanted} (generation {generation}, the target's)")
        return
    cluster.add(
        "link",
        "link credentials",
        False,
        f"made from {linked}; the target exports {wanted} (generation {generation}): the old token is revoked, `up` the source",
    )


def certificates(clusters: Mapping[str, ClusterStatus], outputs: Mapping[str, Mapping[str, Any]], warn_days: int) -> None:
    for row in certs.rows(outputs, warn_days):
        detail = f"{row['daysLeft']} days left (not after {row['notAfter']}){', DUE' if row['due'] else ''}"
        clusters[row["stack"]].add("certificates", f"{row['name']} ({row['role']})", not row["due"], detail)


# --- every check of every stack ----------------------------------------------------------------


def collect(
    outputs: Mapping[str, Mapping[str, Any]],
    settings: Mapping[str, StackSettings],
    kubectl_for: Callable[[str, str, str | None], Kubectl],
    warn_days: int = certs.WARN_DAYS,
    gateways: Gateways = linkerd_gateways,
) -> Report:
    """Every check of every stack in `outputs`; `kubectl_for(binary, context, kubeconfig)` reads a cluster."""
    exported = export_modes(outputs.get("target") or {})
    clusters = {
        stack: _cluster(stack, values, settings[stack], kubectl_for, exported=exported, gateways=gateways)
        for stack, values in outputs.items()
    }
    if "source" in clusters and outputs.get("source"):
        source_credentials(clusters["source"], outputs["source"], outputs.get("target") or {})
    certificates(clusters, outputs, warn_days)
    gateway_address(clusters)
    trust(clusters, outputs, settings, kubectl_for)
    return Report(list(clusters.values()))


def gateway_address(clusters: Mapping[str, ClusterStatus]) -> None:
    """The address the source's Link dials against the target's live gateway Service.

    A load balancer's address can change; the Link keeps the one `link-gen` read at the source's last
    `up` (linkerd2#10635). Compared only where the Service has load-balancer addresses: without, the
    Link's come from `gatewayAddresses` and there is nothing live to follow.
    """
    target, source = clusters.get("target"), clusters.get("source")
    if target is None or source is None or not target.gateway_addresses or source.link_gateway_addresses is None:
        return
    linked, live = sorted(source.link_gateway_addresses), sorted(target.gateway_addresses)
    if linked == live:
        source.add("link", "gateway address", True, f"{', '.join(linked)}, the target's gateway Service's")
        return
    source.add(
        "link",
        "gateway address",
        False,
        f"the Link dials {', '.join(linked)}; the target's gateway Service is at {', '.join(live)} now: "
        "`up` the source to follow it",
    )


def _cluster(
    stack: str,
    values: Mapping[str, Any],
    settings: StackSettings,
    kubectl_for: Callable[[str, str, str | None], Kubectl],
    *,
    exported: Mapping[str, str],
    gateways: Gateways,
) -> ClusterStatus:
    """One stack's cluster read and checked; what cannot be read is one failed line."""
    context = str(values.get("context") or settings.get("context") or "")
    cluster = ClusterStatus(stack, str(values.get("clusterName") or stack), context)
    if not values:
        cluster.add("control plane", "stack outputs", False, f"stack {stack} has no outputs: run `./aes-linkerd2 up`")
        return cluster
    objects = _read(cluster, kubectl_for(str(settings.get("kubectl") or "kubectl"), context, settings.get("kubeconfig")))
    if objects is None:
        return cluster
    ha = settings.get("linkerdHa")
    control_plane(cluster, objects, ha is not False and str(ha).lower() != "false")
    edge_stack(cluster, objects, settings, values)
    if settings.get("role") == "target":
        exports(cluster, objects, settings, values)
        target_credentials(cluster, objects, values)
    elif values.get("linkedCluster"):
        name = str(values["linkedCluster"])
        link(cluster, objects, name, exported, functools.partial(gateways, settings, context, name))
    return cluster


def _read(cluster: ClusterStatus, kubectl: Kubectl) -> Objects | None:
    """The cluster's objects, or None with one failed line naming the API server's error."""
    try:
        return read_objects(kubectl)
    except KubectlError as error:
        cluster.add("control plane", "API server", False, f"context {cluster.context}: {error}")
    except (ValueError, KeyError) as error:
        cluster.add("control plane", "API server", False, f"context {cluster.context}: unreadable answer ({error})")
    return None


# --- trust: the rotation's gates (support/trust_gates) ----------------------------------------------

GATE_STATES = {
    trust_gates.Verdict.PASS: OK,
    trust_gates.Verdict.WAIT: WAITING,
    trust_gates.Verdict.FAIL: FAIL,
    trust_gates.Verdict.UNKNOWN: UNKNOWN,
}
# Where each phase stands, and what the next step waits for.
PHASES = {
    "stable": "stable: one trust anchor",
    "bundle": "bundle: the new anchor joined the roots; `issuers` waits until every meshed pod on both clusters holds them",
    "issuers": "issuers: the new anchor signs the issuers; `restart` waits until both identity controllers loaded them",
    "restart": "restart: the meshed workloads restarted for new-chain certificates; `drop-old` waits until every proxy "
    "certificate is from a new issuer",
}
# The phases in which the new anchor signs the issuers while the roots still carry the old one.
NEW_ISSUERS = ("issuers", "restart")


def rotation_phase(target_outputs: Mapping[str, Any] | None) -> tuple[str, int] | None:
    """The target's `identityAnchors` (phase, newest generation); None for a target from before rotations."""
    anchors = (target_outputs or {}).get("identityAnchors")
    if not isinstance(anchors, Mapping):
        return None
    return str(anchors.get("phase") or "stable"), int(anchors.get("generation") or 0)


def trust(
    clusters: Mapping[str, ClusterStatus],
    outputs: Mapping[str, Mapping[str, Any]],
    settings: Mapping[str, StackSettings],
    kubectl_for: Callable[[str, str, str | None], Kubectl],
) -> None:
    """The rotation's phase (target), and on each cluster read live: the pods still holding other roots (while a
    rotation is under way, or when some do), whether the identity controller loaded the applied issuer, and during
    `issuers` and `restart` whether `drop-old` may go. Only for stacks whose outputs say the program made their issuer."""
    phase = rotation_phase(outputs.get("target"))
    for stack, cluster in clusters.items():
        values = outputs.get(stack) or {}
        if not values.get("identityIssuers") or any(c.name in ("API server", "stack outputs") for c in cluster.checks):
            continue
        if stack == "target" and phase is not None:
            cluster.add("trust", "rotation", OK, f"{PHASES.get(phase[0], phase[0])} (newest anchor: generation {phase[1]})")
        access = settings[stack]
        kubectl = kubectl_for(str(access.get("kubectl") or "kubectl"), cluster.context, access.get("kubeconfig"))
        trust_lines(cluster, read_trust(kubectl), phase[0] if phase else "stable", kubectl)


def trust_lines(cluster: ClusterStatus, found: TrustObjects, phase: str, kubectl: Kubectl) -> None:
    """Gates (a), (b) and, during `issuers` and `restart`, (c) for one cluster, as lines; what could not be read is unknown."""
    now = clock.now()
    _roots_line(cluster, found, phase)
    if found.issuer is None and "issuer" in found.errors:
        cluster.add("trust", "issuer loaded", UNKNOWN, f"unknown: {found.errors['issuer']}")
        return
    loaded = trust_gates.issuer_loaded(found.issuer, found.events or [], found.pods or [], now)
    cluster.add("trust", "issuer loaded", GATE_STATES[loaded.verdict], loaded.detail)
    if phase in NEW_ISSUERS:
        lifetime, said = certificate_lifetime(kubectl)
        gate = trust_gates.drop_old_allowed(found.pods or [], loaded, lifetime, now)
        cluster.add("trust", "drop-old", GATE_STATES[gate.verdict], f"{gate.detail}; certificate lifetime {said}")


def _roots_line(cluster: ClusterStatus, found: TrustObjects, phase: str) -> None:
    """Gate (a): shown while a rotation is under way, or while some pod holds other roots."""
    if found.pods is None:
        cluster.add("trust", "meshed pods", UNKNOWN, f"unknown: {found.errors.get('pods')}")
        return
    held = trust_gates.restarted(found.pods, found.roots)
    if phase == "stable" and held.verdict is trust_gates.Verdict.PASS:
        return
    state = GATE_STATES[held.verdict]
    # During `issuers` the anchor in the roots those pods hold no longer signs the issuers: they fail now.
    state = FAIL if state == WAITING and phase in NEW_ISSUERS else state
    cluster.add(
        "trust", "roots held", state, held.detail if found.roots is not None else f"{held.detail} ({found.errors.get('roots')})"
    )


def certificate_lifetime(kubectl: Kubectl) -> tuple[datetime.timedelta, str]:
    """A proxy certificate's lifetime, from the identity Deployment's flags (its defaults when unreadable)."""
    try:
        identity = json.loads(
            kubectl(["get", "deployment", trust_gates.IDENTITY_DEPLOYMENT, "-n", trust_gates.NAMESPACE, "-o", "json"])
        )
    except (KubectlError, ValueError):
        identity = None
    return trust_gates.certificate_lifetime(identity)
