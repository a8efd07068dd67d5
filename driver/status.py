"""`status`: both clusters at a glance, read live through each stack's outputs.

The clusters are read with kubectl, not the `kubernetes` Python client: the program already needs
kubectl (`kubectl` config key), it reads the stacks' kubeconfig and context exactly as the
providers do (exec plugins, tokens, insecure test servers), and it adds no dependency. Each
cluster costs two `kubectl get` calls. Secrets are never read.

Whether the gateway is alive and its latency are known only to the source's running service mirror,
whose probe keeps them as metrics: `status` asks the pinned linkerd CLI (`linkerd multicluster
gateways -o json`, which scrapes them) and says "unknown", with why, when it cannot answer (no
service mirror running, no CLI). The mirror objects it writes (the gateway's probe Service, the
mirrored Services with their Endpoints, the Link's status) are read from the cluster.
"""

from __future__ import annotations

import contextlib
import functools
import json
import subprocess
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from html import escape
from typing import Any

from rich.table import Table
from rich.text import Text

from driver import certs
from driver.settings import StackSettings
from support import tools, upstream
from support.config_model import ClusterAccess

OK, FAIL, UNKNOWN = "ok", "FAIL", "unknown"
AREAS = ("control plane", "edge stack", "exports", "link", "certificates")
# HA runs three replicas of each of these (`linkerd install --ha`).
HA_DEPLOYMENTS = ("linkerd-identity", "linkerd-destination", "linkerd-proxy-injector")
HA_REPLICAS = 3
MIRRORED_LABEL = "mirror.linkerd.io/mirrored-service"
MIRRORED_GATEWAY_LABEL = "mirror.linkerd.io/mirrored-gateway"
CLUSTER_NAME_LABEL = "mirror.linkerd.io/cluster-name"
# One call for what every check reads; the Link CRD may be missing, so Links come in a second.
KINDS = "deployments,services,endpoints,namespaces,mutatingwebhookconfigurations,validatingwebhookconfigurations"
LINKS = "links.multicluster.linkerd.io"
GATEWAYS = "`linkerd multicluster gateways`"

# kubectl ARGS -> stdout; raises KubectlError.
Kubectl = Callable[[list[str]], str]
# (source settings, context, link name) -> what `linkerd multicluster gateways -o json` lists; raises KubectlError.
Gateways = Callable[[StackSettings, str, str], list[dict[str, Any]]]


class KubectlError(Exception):
    pass


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
    # name -> endpoints ("address:port"), of the Services mirrored from the linked cluster.
    mirrored: dict[str, list[str]] = field(default_factory=dict)
    linked_to: str | None = None

    def add(self, area: str, name: str, state: str | bool, detail: str) -> None:
        if isinstance(state, bool):
            state = OK if state else FAIL
        self.checks.append(Check(self.stack, area, name, state, detail))

    def area_state(self, area: str) -> str | None:
        states = {c.state for c in self.checks if c.area == area}
        if not states:
            return None
        return FAIL if FAIL in states else OK if OK in states else UNKNOWN


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
                    "mirroredServices": c.mirrored,
                    "checks": [{k: v for k, v in asdict(check).items() if k != "stack"} for check in c.checks],
                }
                for c in self.clusters
            ],
        }


class Objects:
    """One cluster's objects of a few kinds, by kind, namespace and name."""

    def __init__(self, items: Iterable[Mapping[str, Any]]) -> None:
        self.by_key: dict[tuple[str, str, str], Mapping[str, Any]] = {}
        for item in items:
            meta = item.get("metadata") or {}
            self.by_key[(str(item.get("kind")), str(meta.get("namespace") or ""), str(meta.get("name")))] = item

    def get(self, kind: str, namespace: str, name: str) -> Mapping[str, Any] | None:
        return self.by_key.get((kind, namespace, name))

    def all(self, kind: str, namespace: str | None = None) -> list[Mapping[str, Any]]:
        return [item for (k, ns, _), item in sorted(self.by_key.items()) if k == kind and (namespace is None or ns == namespace)]


def kubectl_runner(binary: str, context: str, kubeconfig: str | None, timeout: float = 30) -> Kubectl:
    prefix = [binary, *ClusterAccess(context=context, kubeconfig=kubeconfig).flags(), "--request-timeout", "15s"]

    def run(args: list[str]) -> str:
        try:
            done = subprocess.run([*prefix, *args], capture_output=True, text=True, timeout=timeout, check=False)
        except (OSError, subprocess.SubprocessError) as error:
            raise KubectlError(f"`{binary}` could not run: {error}") from None
        if done.returncode != 0:
            lines = [line for line in done.stderr.strip().splitlines() if not line.startswith("Warning:")]
            raise KubectlError(lines[-1][:300] if lines else f"kubectl exited {done.returncode}")
        return done.stdout

    return run


def linkerd_gateways(settings: StackSettings, context: str, link_name: str) -> list[dict[str, Any]]:
    """The service mirror's view of the gateway, through the pinned linkerd CLI (it scrapes the mirror's metrics)."""
    pinned = settings.linkerd_version
    binary = settings.get("linkerdCli") or tools.find_linkerd(pinned)
    if not binary:
        raise KubectlError(f"no linkerd CLI {pinned} here ({tools.where_to_look(pinned)})")
    kubeconfig = settings.get("kubeconfig")
    # After the subcommand: the extension's own flags, not the root's (which it would ignore).
    access = ClusterAccess(context=context, kubeconfig=str(kubeconfig) if kubeconfig else None)
    command = [str(binary), "multicluster", "gateways", *access.flags()]
    command += [
        "--cluster-name",
        link_name,
        "-o",
        "json",
        "--wait",
        "10s",
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=40, check=False)
    except (OSError, subprocess.SubprocessError) as error:
        raise KubectlError(f"{GATEWAYS} could not run: {error}") from None
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        said = next((line for line in lines if line.startswith("Error:")), lines[0] if lines else str(done.returncode))
        raise KubectlError(f"{GATEWAYS} failed: {said[:200]}")
    try:
        listed = json.loads(done.stdout or "[]")
    except ValueError:
        raise KubectlError(f"{GATEWAYS} printed no JSON") from None
    return [entry for entry in listed or [] if isinstance(entry, dict)]


def read_objects(kubectl: Kubectl) -> Objects:
    """Everything the checks read, in two calls; a missing Link CRD means no Links."""
    items = list(json.loads(kubectl(["get", KINDS, "--all-namespaces", "-o", "json"]))["items"])
    with contextlib.suppress(KubectlError):
        items += json.loads(kubectl(["get", LINKS, "--all-namespaces", "-o", "json"]))["items"]
    return Objects(items)


# --- the checks ---------------------------------------------------------------------------------


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
            healthy = ready >= wanted > 0
            note = ""
            if name in HA_DEPLOYMENTS:
                if ha:
                    healthy = healthy and wanted >= HA_REPLICAS
                    note = ", HA" if wanted >= HA_REPLICAS else f", HA wants {HA_REPLICAS}"
                else:
                    note = " (linkerdHa off)"
            cluster.add(area, f"{namespace}/{name}", healthy, f"{ready}/{wanted} ready{note}")
    webhooks(cluster, objects)


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


def edge_stack(cluster: ClusterStatus, objects: Objects, settings: StackSettings, outputs: Mapping[str, Any]) -> None:
    area = "edge stack"
    line = settings.line
    product = line.edge_stack.get(str(settings.get("edgeStackProduct") or line.default_product)) or next(
        iter(line.edge_stack.values())
    )
    namespace = str(outputs.get("edgeStackNamespace") or product.namespace)
    deployment = objects.get("Deployment", namespace, product.deployment)
    if deployment is None:
        cluster.add(area, f"{namespace}/{product.deployment}", False, "Deployment missing")
    else:
        ready, wanted = _ready(deployment)
        cluster.add(area, f"{namespace}/{product.deployment}", ready >= wanted > 0, f"{ready}/{wanted} ready")
        notes = ((deployment["spec"].get("template") or {}).get("metadata") or {}).get("annotations") or {}
        linkerd = {k: v for k, v in sorted(notes.items()) if k.startswith(("linkerd.io/", "config.linkerd.io/"))}
        meshed = notes.get(upstream.INJECT_ANNOTATION) == upstream.INJECT_ENABLED
        shown = ", ".join(f"{k}={v}" for k, v in linkerd.items()) or "no Linkerd annotations"
        cluster.add(area, "meshed", meshed, shown)
    if settings.get("role") == "target":
        service = objects.get("Service", namespace, product.service)
        if service is None:
            cluster.add(area, "gateway Service", False, f"{namespace}/{product.service} missing")
        else:
            ports = service["spec"].get("ports") or []
            cluster.gateway_ports = [f"{p.get('name', '')} {p['port']}->{p.get('targetPort', p['port'])}" for p in ports]
            names = {p.get("name") for p in ports}
            needed = {upstream.GATEWAY_PORT_NAME, upstream.PROBE_PORT_NAME}
            missing = sorted(needed - names)
            cluster.add(
                area,
                "gateway ports",
                not missing,
                ", ".join(cluster.gateway_ports) + (f"; missing {', '.join(missing)}" if missing else ""),
            )
            notes = {
                k: v for k, v in (service["metadata"].get("annotations") or {}).items() if k.startswith("mirror.linkerd.io/")
            }
            identity = outputs.get("gatewayIdentity")
            right = notes.get(upstream.MULTICLUSTER_GATEWAY_ANNOTATION) == "true" and upstream.PROBE_PATH_ANNOTATION in notes
            if identity:
                right = right and notes.get(upstream.GATEWAY_IDENTITY_ANNOTATION) == identity
            cluster.add(area, "gateway annotations", right, ", ".join(f"{k}={v}" for k, v in sorted(notes.items())) or "none")
    for name in outputs.get("meshedNamespaces") or []:
        found = objects.get("Namespace", "", str(name))
        notes = ((found or {}).get("metadata") or {}).get("annotations") or {}
        value = notes.get(upstream.INJECT_ANNOTATION)
        cluster.add(area, f"namespace {name}", value == upstream.INJECT_ENABLED, f"{upstream.INJECT_ANNOTATION}={value}")


def exports(cluster: ClusterStatus, objects: Objects, settings: StackSettings, outputs: Mapping[str, Any]) -> None:
    for entry in outputs.get("exportedServices") or []:
        namespace, _, name = str(entry).partition("/")
        service = objects.get("Service", namespace, name)
        if service is None:
            cluster.add("exports", entry, False, "Service missing")
            continue
        meta = service["metadata"]
        if settings.line.export_by_label:
            exported = (meta.get("labels") or {}).get(upstream.EXPORTED_LABEL) == "true"
            how = f"label {upstream.EXPORTED_LABEL}"
        else:
            exported = upstream.EXPORT_GATEWAY_NAME_ANNOTATION in (meta.get("annotations") or {})
            how = f"annotation {upstream.EXPORT_GATEWAY_NAME_ANNOTATION}"
        cluster.exported.append(str(entry))
        detail = f"{how} {'set' if exported else 'MISSING'}, {len(_endpoints(objects, namespace, name))} endpoint(s)"
        cluster.add("exports", entry, exported, detail)


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
    exported: Iterable[str],
    ask_gateways: Callable[[], list[dict[str, Any]]],
) -> None:
    """The Link, the gateway's probe mirror and the mirrored Services, as the service mirror leaves them."""
    area = "link"
    cluster.linked_to = link_name
    found = objects.get("Link", upstream.MULTICLUSTER_NAMESPACE, link_name)
    if found is None:
        cluster.add(area, f"Link {link_name}", False, f"missing in {upstream.MULTICLUSTER_NAMESPACE}")
        return
    spec = found.get("spec") or {}
    probe = spec.get("probeSpec") or {}
    cluster.add(
        area,
        f"Link {link_name}",
        bool(spec.get("gatewayAddress") and spec.get("gatewayPort")),
        f"gateway {spec.get('gatewayAddress')}:{spec.get('gatewayPort')} as {spec.get('gatewayIdentity')}, "
        f"probe :{probe.get('port')}{probe.get('path')} every {probe.get('period')}",
    )
    services = objects.all("Service")
    gateway_mirrors = [
        s
        for s in services
        if (s["metadata"].get("labels") or {}).get(CLUSTER_NAME_LABEL) == link_name
        and MIRRORED_GATEWAY_LABEL in (s["metadata"].get("labels") or {})
    ]
    if not gateway_mirrors:
        cluster.add(area, "gateway mirror", False, "no probe Service mirrored: the service mirror has not run")
    for mirror in gateway_mirrors:
        meta = mirror["metadata"]
        served = _endpoints(objects, meta["namespace"], meta["name"])
        cluster.add(
            area, "gateway mirror", bool(served), f"{meta['namespace']}/{meta['name']} -> {', '.join(served) or 'no endpoints'}"
        )
    gateway_probe(cluster, link_name, ask_gateways)
    conditions = {}
    for entry in (found.get("status") or {}).get("mirrorServices") or []:
        remote = entry.get("remoteRef") or {}
        for condition in entry.get("conditions") or []:
            if condition.get("type") == "Mirrored":
                conditions[f"{remote.get('namespace')}/{remote.get('name')}"] = condition
    mirrored = {
        f"{s['metadata']['namespace']}/{s['metadata']['name']}": s
        for s in services
        if (s["metadata"].get("labels") or {}).get(CLUSTER_NAME_LABEL) == link_name
        and (s["metadata"].get("labels") or {}).get(MIRRORED_LABEL) == "true"
        and MIRRORED_GATEWAY_LABEL not in (s["metadata"].get("labels") or {})
    }
    expected = {f"{entry}-{link_name}": str(entry) for entry in exported}
    for local in sorted(set(expected) | set(mirrored)):
        namespace, _, name = local.partition("/")
        served = _endpoints(objects, namespace, name)
        condition = conditions.get(expected.get(local, ""))
        said = f"; Link status Mirrored={condition.get('status')} {condition.get('reason') or ''}".rstrip() if condition else ""
        if local not in mirrored:
            cluster.add(area, f"mirror {local}", False, f"not mirrored (exported as {expected[local]}){said}")
            continue
        cluster.mirrored[local] = served
        healthy = bool(served) and (condition is None or condition.get("status") == "True")
        cluster.add(area, f"mirror {local}", healthy, f"endpoints {', '.join(served) or 'none'}{said}")


def certificates(clusters: Mapping[str, ClusterStatus], outputs: Mapping[str, Mapping[str, Any]], warn_days: int) -> None:
    for row in certs.rows(outputs, warn_days):
        detail = f"{row['daysLeft']} days left (not after {row['notAfter']}){', DUE' if row['due'] else ''}"
        clusters[row["stack"]].add("certificates", f"{row['name']} ({row['role']})", not row["due"], detail)


def collect(
    outputs: Mapping[str, Mapping[str, Any]],
    settings: Mapping[str, StackSettings],
    kubectl_for: Callable[[str, str, str | None], Kubectl],
    warn_days: int = certs.WARN_DAYS,
    gateways: Gateways = linkerd_gateways,
) -> Report:
    """Every check of every stack in `outputs`; `kubectl_for(binary, context, kubeconfig)` reads a cluster."""
    clusters: dict[str, ClusterStatus] = {}
    exported = [str(e) for e in (outputs.get("target") or {}).get("exportedServices") or []]
    for stack, values in outputs.items():
        stack_settings = settings[stack]
        context = str(values.get("context") or stack_settings.get("context") or "")
        cluster = ClusterStatus(stack, str(values.get("clusterName") or stack), context)
        clusters[stack] = cluster
        if not values:
            cluster.add("control plane", "stack outputs", False, f"stack {stack} has no outputs: run `./aes-linkerd2 up`")
            continue
        kubectl = kubectl_for(str(stack_settings.get("kubectl") or "kubectl"), context, stack_settings.get("kubeconfig"))
        try:
            objects = read_objects(kubectl)
        except KubectlError as error:
            cluster.add("control plane", "API server", False, f"context {context}: {error}")
            continue
        except (ValueError, KeyError) as error:
            cluster.add("control plane", "API server", False, f"context {context}: unreadable answer ({error})")
            continue
        ha = stack_settings.get("linkerdHa")
        control_plane(cluster, objects, ha is not False and str(ha).lower() != "false")
        edge_stack(cluster, objects, stack_settings, values)
        if stack_settings.get("role") == "target":
            exports(cluster, objects, stack_settings, values)
        elif values.get("linkedCluster"):
            name = str(values["linkedCluster"])
            link(cluster, objects, name, exported, functools.partial(gateways, stack_settings, context, name))
    certificates(clusters, outputs, warn_days)
    return Report(list(clusters.values()))


# --- showing it ---------------------------------------------------------------------------------


def lines(report: Report) -> list[tuple[str, str, str, str, str]]:
    """(cluster, area, what, state, detail) rows, in the order of AREAS."""
    rows = []
    for cluster in report.clusters:
        for area in AREAS:
            rows += [(cluster.stack, area, c.name, c.state, c.detail) for c in cluster.checks if c.area == area]
    return rows


def summary(report: Report) -> str:
    failed = [c for c in report.checks if c.state == FAIL]
    unknown = sum(c.state == UNKNOWN for c in report.checks)
    head = "healthy" if not failed else f"NOT HEALTHY: {len(failed)} check(s) failed"
    return f"{head} ({len(report.checks)} checks, {unknown} unknown: nothing real can answer them without running proxies)"


COLOURS = {OK: "#2e7d32", FAIL: "#c62828", UNKNOWN: "#9e9e9e", None: "#9e9e9e"}
FILLS = {OK: "#e8f5e9", FAIL: "#ffebee", UNKNOWN: "#f5f5f5", None: "#f5f5f5"}


def _control_plane_lines(cluster: ClusterStatus) -> list[str]:
    checks = [c for c in cluster.checks if c.area == "control plane"]
    hooks = [c for c in checks if c.name.startswith("webhook ")]
    others = [c for c in checks if c not in hooks]
    lines = [f"{sum(c.state == OK for c in others)} of {len(others)} Deployments ready"]
    if hooks:
        lines.append(f"{sum(c.state == OK for c in hooks)} of {len(hooks)} webhooks with endpoints")
    return lines


def _link_lines(cluster: ClusterStatus) -> list[str]:
    checks = {c.name: c for c in cluster.checks if c.area == "link"}
    link = checks.get(f"Link {cluster.linked_to}")
    lines = [f"Link {cluster.linked_to}: " + (link.detail.split(" as ")[0] if link and link.state == OK else "missing")]
    for name in ("gateway mirror", "gateway alive, latency"):
        if name in checks:
            lines.append(f"{name}: {checks[name].state}")
    mirrors = [f"{name} <- {', '.join(eps) or 'no endpoints'}" for name, eps in cluster.mirrored.items()]
    return lines + (mirrors or ["no mirrored services"])


def svg(report: Report) -> str:
    """Both clusters side by side: control plane, Edge Stack (the gateway), exports and mirrors, the link."""
    width, box_w, margin = 960, 400, 30
    parts: list[str] = []
    bottoms = []

    def box(where: tuple[float, float, float, float], state: str | None, title: str, body: list[str]) -> None:
        x, y, w, h = where
        colours = f'fill="{FILLS[state]}" stroke="{COLOURS[state]}" stroke-width="2"'
        parts.append(f'<rect x="{x}" y="{y}" width="{w}" height="{h}" rx="8" {colours}/>')
        parts.append(f'<text x="{x + 10}" y="{y + 20}" font-weight="bold">{escape(title)}</text>')
        for index, text in enumerate(body):
            parts.append(f'<text x="{x + 10}" y="{y + 38 + 16 * index}" font-size="12">{escape(text[:56])}</text>')

    anchors: dict[str, tuple[float, float]] = {}
    for index, cluster in enumerate(report.clusters):
        x = margin + index * (box_w + width - 2 * margin - 2 * box_w)
        y = 60
        inner = []
        inner.append(("control plane", _control_plane_lines(cluster)))
        edge = [c for c in cluster.checks if c.area == "edge stack"]
        meshed = next((c for c in edge if c.name == "meshed"), None)
        edge_body = ["meshed" if meshed and meshed.state == OK else "NOT meshed"]
        edge_body += [f"port {p}" for p in cluster.gateway_ports]
        inner.append(("edge stack", edge_body))
        if cluster.stack == "target" or cluster.exported:
            inner.append(("exports", [f"exported {name}" for name in cluster.exported] or ["nothing exported"]))
        if cluster.linked_to:
            inner.append(("link", _link_lines(cluster)))
        days = [c.detail.split(" days")[0] for c in cluster.checks if c.area == "certificates"]
        inner.append(("certificates", [f"fewest days left: {min(int(d) for d in days)}" if days else "none reported"]))
        heights = [30 + 16 * len(body) for _, body in inner]
        total = 40 + sum(heights) + 10 * len(inner)
        state = FAIL if any(c.state == FAIL for c in cluster.checks) else OK
        box((x, y, box_w, total), state, f"{cluster.stack}: cluster {cluster.cluster_name} (context {cluster.context})", [])
        top = y + 34
        titles = {
            "control plane": "Linkerd control plane",
            "edge stack": "Edge Stack" + (" = gateway" if cluster.gateway_ports else ""),
            "exports": "exported services",
            "link": "link and mirrored services",
            "certificates": "identity certificates",
        }
        for (area, body), height in zip(inner, heights, strict=True):
            box((x + 10, top, box_w - 20, height), cluster.area_state(area), titles[area], body)
            anchors[f"{cluster.stack}:{area}"] = (x, top + height / 2)
            anchors[f"{cluster.stack}:{area}:right"] = (x + box_w, top + height / 2)
            top += height + 10
        bottoms.append(y + total)
    for cluster in report.clusters:
        if cluster.linked_to and "target:edge stack:right" in anchors and f"{cluster.stack}:link" in anchors:
            (x1, y1), (x2, y2) = anchors[f"{cluster.stack}:link"], anchors["target:edge stack:right"]
            link_state = cluster.area_state("link")
            parts.append(
                f'<line x1="{x1}" y1="{y1}" x2="{x2 + 2}" y2="{y2}" stroke="{COLOURS[link_state]}" stroke-width="3" '
                'marker-end="url(#arrow)"/>'
            )
            parts.append(
                f'<text x="{(x1 + x2) / 2}" y="{(y1 + y2) / 2 - 8}" font-size="11" text-anchor="middle">'
                f"link {escape(cluster.linked_to)}: {link_state}</text>"
            )
    height = max(bottoms, default=100) + 50
    legend = (
        f'<text x="{margin}" y="{height - 20}" font-size="12">{escape(summary(report))}; '
        f"green ok, red failing, grey unknown</text>"
    )
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        'font-family="sans-serif" font-size="14">'
        '<defs><marker id="arrow" markerWidth="10" markerHeight="10" refX="8" refY="3" orient="auto">'
        '<path d="M0,0 L8,3 L0,6 z" fill="#555"/></marker></defs>'
        f'<rect width="{width}" height="{height}" fill="white"/>'
        f'<text x="{margin}" y="32" font-size="18" font-weight="bold">aes-linkerd2 status</text>'
    )
    return "\n".join([head, *parts, legend, "</svg>", ""])


def text(report: Report) -> str:
    """Aligned plain lines: one per check, then the verdict."""
    header = ("cluster", "area", "check", "state", "detail")
    rows = lines(report)
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(4)]
    out = [
        "  ".join([*(cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True)), row[4]]).rstrip()
        for row in [header, *rows]
    ]
    return "\n".join([*out, summary(report)])


def table(report: Report) -> Table:
    """The same as a rich Table, coloured by state, for a terminal."""
    styles = {OK: "green", FAIL: "bold red", UNKNOWN: "dim"}
    shown = Table(title="aes-linkerd2 status", caption=Text(summary(report)), expand=False)
    for column in ("cluster", "area", "check", "state", "detail"):
        shown.add_column(column, overflow="fold")
    previous = None
    for cluster, area, name, state, detail in lines(report):
        cells = (cluster if cluster != previous else "", area, name)
        shown.add_row(*(Text(cell) for cell in cells), Text(state, style=styles[state]), Text(detail))
        previous = cluster
    return shown
