"""Ambassador Edge Stack's "Linkerd 2 Integration", one stack per cluster.

`target`: the cluster whose Edge Stack is Linkerd's multicluster gateway. It owns the shared trust
anchor and exports what the source needs. `source`: links to the target and verifies the link.
Both run the page's steps on their own cluster (`mesh_cluster`); each role then adds its side
of multicluster. Everything is validated before the first resource: config, the linkerd CLI, the
manifests.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.edge_stack import EdgeStack, EdgeStackArgs
from components.linkerd_control_plane import ControlPlaneIdentity, LinkerdControlPlane, LinkerdControlPlaneArgs
from components.linkerd_identity import (
    AnchorPlan,
    LinkerdIdentity,
    LinkerdIdentityArgs,
    SharedAnchor,
    anchor_plan,
    current_anchors,
)
from components.meshed_namespace import MeshedNamespace, MeshedNamespaceArgs
from components.multicluster_source import MulticlusterSource, MulticlusterSourceArgs
from components.multicluster_target import GATEWAY_POD_ANNOTATIONS, MulticlusterTarget, MulticlusterTargetArgs, export_modes
from components.qotm_demo import QotmDemo, QotmDemoArgs
from components.workload_restart import WorkloadRestart, WorkloadRestartArgs
from support import charts, clock, clusters, config, live_cluster, restarts, retained, stack_checks, stack_outputs, upstream
from support.certificates import anchor_rows, describe
from support.config_model import SourceRole, StackConfig, TargetRole
from support.gc_tuning import tune as tune_garbage_collector
from support.linkerd_cli import LinkerdCli
from support.manifest_input import read_manifest
from support.manifests import read_location
from support.namespaces import check_live as check_namespaces
from support.project import namespace_owner


@dataclass(frozen=True)
class Cluster:
    """This stack's cluster, as read and checked before anything is registered."""

    cfg: StackConfig
    cli: LinkerdCli
    edge_stack_crds: str
    edge_stack_manifest: str
    on_cluster: pulumi.ResourceOptions
    # This stack's outputs as its last update left them: how old each issuer is, which rotation step ran.
    last_outputs: Mapping[str, Any]
    # The target's anchors for this update (a rotation's step), decided from its last outputs.
    anchors: AnchorPlan
    # On the source: the target stack's outputs (trust roots, the anchor's Secret, gateway), read and checked up front.
    target_outputs: Mapping[str, Any]
    # What it creates and retains that the cluster already has outside this stack's state: used as it is.
    already_there: frozenset[str] = frozenset()
    # The anchors in the roots, on the meshed pod templates the program restarts (None: never rotated).
    restart_mark: str | None = None
    # The meshed namespaces' workloads, as live now (read once a rotation has marked anything).
    live_workloads: tuple[restarts.Workload, ...] = ()
    # The mark on Linkerd's own Deployments: only at a rotation's `restart` step (their roots hash rolls them otherwise).
    control_plane_mark: str | None = None


@dataclass(frozen=True)
class Mesh:
    identity: LinkerdIdentity
    linkerd: LinkerdControlPlane
    edge_stack: EdgeStack
    namespaces: dict[str, MeshedNamespace]
    qotm: QotmDemo | None
    restart_mark: str | None = None
    restarted: tuple[restarts.Workload, ...] = ()


def make_identity(cluster: Cluster, namespace: pulumi.Resource | None) -> LinkerdIdentity:
    """The target: the anchors (in its cluster) and its issuer. The source: its issuer, from the target's anchor."""
    cfg, access = cluster.cfg, cluster.cli.cluster
    anchors, shared, target_access = None, None, access
    if isinstance(cfg.role, TargetRole):
        anchors = cluster.anchors
    else:
        outputs = cluster.target_outputs
        target_access = cfg.role.target
        shared = SharedAnchor(
            secret=str(outputs["trustAnchorSecret"]),
            cert_pem=str(outputs["trustAnchorPem"]),
            roots_pem=str(outputs.get("trustRootsPem") or outputs["trustAnchorPem"]),
        )
    return LinkerdIdentity(
        "identity",
        LinkerdIdentityArgs(
            trust_domain=cfg.linkerd.trust_domain,
            cluster=cfg.cluster.name,
            access=access,
            target_access=target_access,
            kubectl=cfg.kubectl,
            scheme=cfg.line.issuer_scheme,
            namespace=namespace,
            # The source's issuer lives shorter than the target's: the two are never due on the same day.
            stagger=0 if cfg.is_target else 1,
            renew_before_days=cfg.linkerd.issuer_renew_before_days,
            previous_issuers=cluster.last_outputs.get("identityIssuers"),
            anchors=anchors,
            shared=shared,
        ),
    )


def link_probe_port(cluster: Cluster) -> int | None:
    """On the source, the port the Link's probe dials: the target's `probePort` (a target from before the output: None)."""
    port = cluster.target_outputs.get("probePort")  # the target has no target outputs
    return None if port is None else int(port)


def mesh_cluster(cluster: Cluster) -> Mesh:
    """Linkerd (HA) with its identity, Edge Stack meshed with the add_linkerd_headers Module, meshed namespaces, QOTM."""
    cfg, cli, on_cluster = cluster.cfg, cluster.cli, cluster.on_cluster
    gateway, workloads = cfg.gateway, cfg.workloads
    made: list[LinkerdIdentity] = []

    def identity(namespace: pulumi.Resource | None) -> ControlPlaneIdentity:
        made.append(make_identity(cluster, namespace))
        return ControlPlaneIdentity(trust_roots_pem=made[0].trust_roots_pem, issuer=made[0].issuer)

    linkerd = LinkerdControlPlane(
        "linkerd",
        LinkerdControlPlaneArgs(
            cli=cli,
            kubectl=cfg.kubectl,
            line=cfg.line,
            ha=cfg.linkerd.ha,
            trust_domain=cfg.linkerd.trust_domain,
            identity=identity,
            multicluster=True,
            links=(cfg.role.target.name,) if isinstance(cfg.role, SourceRole) and cfg.line.link_controllers_in_install else (),
            link_probe_port=link_probe_port(cluster),
            restart_mark=cluster.restart_mark,
            control_plane_mark=cluster.control_plane_mark,
            remote_access_account=(
                upstream.remote_access_account(cfg.role.link_credentials)
                if isinstance(cfg.role, TargetRole) and cfg.role.link_credentials
                else None
            ),
            already_there=cluster.already_there,
        ),
        opts=on_cluster,
    )
    edge_stack = EdgeStack(
        "edge-stack",
        EdgeStackArgs(
            line=cfg.line,
            product=cfg.edge_stack.product,
            crds_yaml=cluster.edge_stack_crds,
            manifest_yaml=cluster.edge_stack_manifest,
            license_key=cfg.edge_stack.license_key,
            add_linkerd_headers=cfg.edge_stack.add_linkerd_headers,
            cli=cli,
            gateway_port=gateway.port,
            control_plane=linkerd.ready,
            # The target's Edge Stack is Linkerd's gateway from its first pod.
            pod_annotations=GATEWAY_POD_ANNOTATIONS if cfg.is_target else {},
            tls=cfg.edge_stack.tls,
            # The target's gateway renames Edge Stack's HTTP port mc-probe (the page's Service patch).
            service_port_names={gateway.probe_port: upstream.PROBE_PORT_NAME} if cfg.is_target else {},
            retired_namespace=stack_checks.retired_edge_stack_namespace(cfg, cluster.last_outputs),
            restart_mark=cluster.restart_mark,
        ),
        opts=on_cluster,
    )
    namespaces = {
        name: MeshedNamespace(
            f"ns-{name}",
            MeshedNamespaceArgs(
                name=name,
                exists=name in workloads.existing_namespaces,
                reused=f"Namespace/{name}" in cluster.already_there,
                owner=namespace_owner(pulumi.get_stack()),
                control_plane=linkerd.ready,
            ),
            opts=on_cluster,
        )
        for name in workloads.meshed_namespaces
    }
    qotm = None
    if workloads.qotm:
        qotm = QotmDemo(
            "qotm",
            QotmDemoArgs(
                line=cfg.line,
                namespace=namespaces[workloads.qotm_namespace].name,
                depends_on=[namespaces[workloads.qotm_namespace]],
                mapping_after=edge_stack.crds,
                gateway=[edge_stack.deployment],
                smoke_test_url=workloads.smoke_test_url,
                restart_mark=cluster.restart_mark,
            ),
            opts=on_cluster,
        )
    restarted = restart_workloads(cluster, linkerd.ready)
    return Mesh(made[0], linkerd, edge_stack, namespaces, qotm, cluster.restart_mark, restarted)


def own_workloads(cfg: StackConfig) -> list[str]:
    """The workloads whose pod templates the program owns: they carry the mark themselves."""
    product, workloads = cfg.edge_stack.product, cfg.workloads
    own = [f"Deployment/{product.namespace}/{product.deployment}"]
    return own + ([f"Deployment/{workloads.qotm_namespace}/{upstream.QOTM_NAME}"] if workloads.qotm else [])


def restart_workloads(cluster: Cluster, control_plane: list[pulumi.Resource]) -> tuple[restarts.Workload, ...]:
    """During a trust rotation, the meshed namespaces' other workloads, restarted by a patch of the mark alone."""
    mark = cluster.restart_mark
    chosen = restarts.to_restart(
        cluster.live_workloads, mark, own_workloads(cluster.cfg), cluster.last_outputs.get(restarts.OUTPUT)
    )
    if mark is not None and chosen:
        WorkloadRestart(
            "restart",
            WorkloadRestartArgs(workloads=chosen, mark=mark, control_plane=control_plane),
            opts=cluster.on_cluster,
        )
    return chosen


def export_cluster(cfg: StackConfig, mesh: Mesh) -> None:
    identity = mesh.identity
    pulumi.export("clusterName", cfg.cluster.name)
    pulumi.export("context", cfg.cluster.context)
    pulumi.export("versionLine", cfg.line.name)
    pulumi.export("linkerdVersion", cfg.linkerd.version)
    pulumi.export("edgeStack", f"{cfg.edge_stack.product.name} {cfg.edge_stack.version}")
    pulumi.export("edgeStackNamespace", cfg.edge_stack.product.namespace)
    pulumi.export("meshedNamespaces", list(cfg.workloads.meshed_namespaces))
    pulumi.export("trustAnchorPem", identity.trust_anchor_pem)
    pulumi.export("trustRootsPem", identity.trust_roots_pem)
    pulumi.export("identityIssuers", identity.issuer_state)
    if mesh.restart_mark is not None:
        pulumi.export(restarts.OUTPUT, restarts.output(mesh.restart_mark, mesh.restarted))
    # What this stack holds that outlives it: the next update tells its own from what is already there.
    pulumi.export(
        retained.OUTPUT,
        retained.keys(mesh.linkerd.retained, (f"Namespace/{name}" for name, ns in mesh.namespaces.items() if ns.created)),
    )
    now = clock.now()
    issuer_name = f"{cfg.cluster.name}-issuer"

    def rows(roots: str, anchor: str, issuer: str) -> list[dict[str, object]]:
        return [describe(name, "anchor", pem, now) for name, pem in anchor_rows(roots, anchor)] + [
            describe(issuer_name, "issuer", issuer, now)
        ]

    pulumi.export(
        "identityCertificates",
        pulumi.Output.all(identity.trust_roots_pem, identity.trust_anchor_pem, identity.issuer_cert_pem).apply(
            lambda values: rows(*values)
        ),
    )


def target_stack(cluster: Cluster, role: TargetRole) -> None:
    """The gateway side: the shared anchor and its own issuer, the page on this cluster, then the gateway."""
    cfg = cluster.cfg
    mesh = mesh_cluster(cluster)
    product = cfg.edge_stack.product
    multicluster = MulticlusterTarget(
        "multicluster-target",
        MulticlusterTargetArgs(
            line=cfg.line,
            product=product,
            service_ports=mesh.edge_stack.service_ports,
            hostname=role.gateway_hostname,
            ports=cfg.gateway,
            trust_domain=cfg.linkerd.trust_domain,
            exported_services=role.exported_services,
            service_resource=mesh.edge_stack.service,
            custom_after=mesh.edge_stack.crds,
            exports_after=[mesh.qotm.service] if mesh.qotm else [],
        ),
        opts=cluster.on_cluster,
    )
    export_cluster(cfg, mesh)
    # What the source's issuer is signed with: the anchor's Secret by name (its key never leaves the cluster).
    pulumi.export("trustAnchorSecret", mesh.identity.anchor_secret)
    pulumi.export("identityAnchors", mesh.identity.anchor_state)
    pulumi.export("gatewayName", product.deployment)
    pulumi.export("gatewayNamespace", product.namespace)
    pulumi.export("gatewayIdentity", multicluster.gateway_identity)
    # The source's probe Service for the Link listens on this port: the Link's probe dials it.
    pulumi.export("probePort", cfg.gateway.probe_port)
    pulumi.export("exportedServices", [service.ref for service in role.exported_services])
    pulumi.export("exportedServiceModes", export_modes(role.exported_services))
    # The account whose token the source's Link carries, and its generation (`status` shows its age).
    pulumi.export("linkServiceAccount", upstream.remote_access_account(role.link_credentials))
    pulumi.export("linkCredentials", role.link_credentials)


def source_stack(cluster: Cluster, role: SourceRole) -> None:
    """The linking side: the target's trust roots and its own issuer signed by the target's anchor, the page,
    then the Link and checks.

    During a rotation it follows the target's step: the target's outputs carry that step's roots and signing anchor.
    """
    cfg = cluster.cfg
    target = cluster.target_outputs
    # The target's account whose token the Link carries: `status` compares it with the target's current one.
    account = stack_checks.link_service_account(role, target)
    mesh = mesh_cluster(cluster)
    target_cli = LinkerdCli(binary=cfg.linkerd.cli, cluster=role.target)
    MulticlusterSource(
        "multicluster-source",
        MulticlusterSourceArgs(
            line=cfg.line,
            cli=cluster.cli,
            target_cli=target_cli,
            target_cluster_name=role.target.name,
            gateway_name=str(target["gatewayName"]),
            gateway_namespace=str(target["gatewayNamespace"]),
            gateway_addresses=role.gateway_addresses,
            gateway=stack_checks.link_through_gateway(role, target),
            service_account=account,
            credentials_generation=stack_checks.link_credentials_generation(role, target),
            # Pod-to-pod exports are looked up by the destination controller with the Link's credentials.
            destination=mesh.linkerd.destination if stack_checks.link_has_pod_to_pod(role, target) else None,
            kubectl=cfg.kubectl,
            api_server_address=role.target_api_server_address,
            control_plane=mesh.linkerd.multicluster_ready,
            verify=role.verify,
            verify_after=[
                mesh.edge_stack.deployment,
                *(ns.meshed for ns in mesh.namespaces.values()),
                *([mesh.qotm] if mesh.qotm else []),
            ],
            verify_inputs=[
                cfg.linkerd.version,
                cfg.edge_stack.version,
                mesh.identity.trust_roots_pem,
                mesh.identity.issuer_cert_pem,
            ],
        ),
        opts=cluster.on_cluster,
    )
    export_cluster(cfg, mesh)
    pulumi.export("linkedCluster", role.target.name)
    pulumi.export("linkServiceAccount", account)


def followed_anchors(cfg: StackConfig, anchors: AnchorPlan, target: Mapping[str, Any]) -> AnchorPlan:
    """The rotation this stack's restarts follow: the target's own plan; the source, the target's last update."""
    return anchors if isinstance(cfg.role, TargetRole) else current_anchors(target.get("identityAnchors"))


def restart_inputs(
    cfg: StackConfig, anchors: AnchorPlan, target: Mapping[str, Any]
) -> tuple[str | None, tuple[restarts.Workload, ...]]:
    """The rotation's mark and, once there is one, the meshed namespaces' live workloads."""
    mark = followed_anchors(cfg, anchors, target).restart_mark
    return mark, (live_cluster.workloads(cfg) if mark is not None else ())


def main() -> None:
    tune_garbage_collector()
    cfg = config.load()
    clusters.check_stack(cfg)
    live = live_cluster.read(cfg)
    # Under plain `pulumi preview`/`up` no pre-flight ran: a namespace that is someone else's is refused here.
    check_namespaces(cfg, pulumi.get_stack(), live)
    last = stack_outputs.read(f"{pulumi.get_organization()}/{pulumi.get_project()}/{pulumi.get_stack()}")
    already_there = retained.already_there(live, pulumi.get_stack(), retained.held(last))
    if already_there:
        used = ", ".join(sorted(already_there))
        pulumi.log.info(f"already in the cluster, used as they are (never deleted by this stack): {used}")
    # The source's view of the target, checked before the first registration like everything else.
    target = (
        stack_checks.check_target_outputs(cfg, cfg.role, stack_outputs.read(cfg.role.target_stack))
        if isinstance(cfg.role, SourceRole)
        else {}
    )
    # A rotation step that skips one, or goes back, is refused here, before the first registration.
    if isinstance(cfg.role, TargetRole):
        stack_checks.check_trust_domain_kept(cfg.linkerd.trust_domain, last.get("trustAnchorPem"))
        stack_checks.check_link_credentials_forward(cfg.role.link_credentials, last.get("linkCredentials"))
    anchors = (
        anchor_plan(last.get("identityAnchors"), cfg.role.trust_anchor_rotation)
        if isinstance(cfg.role, TargetRole)
        else AnchorPlan()
    )
    mark, workloads = restart_inputs(cfg, anchors, target)
    cli = LinkerdCli(binary=cfg.linkerd.cli, cluster=cfg.cluster)
    edge = cfg.edge_stack
    if edge.version in edge.product.charts:
        # Emissary 4 publishes charts only: rendered by helm, then the same pipeline as release YAML.
        crds, manifest = charts.render_release(
            edge.product,
            edge.version,
            crds=edge.crds,
            manifest=edge.manifest,
            helm_binary=edge.helm,
            add_linkerd_headers=edge.add_linkerd_headers,
        )
    else:
        crds = read_manifest("edgeStackCrds", edge.crds, read_location)
        manifest = read_manifest("edgeStackManifest", edge.manifest, read_location)
    stack_checks.check_edge_stack_manifest(edge, manifest)
    if not clusters.checked_by_preflight():
        cli.require_version(cfg.linkerd.version)
    # A fixed name: renaming the provider would replace every object it manages. Its identity is the
    # cluster's name, not the kubeconfig's path: the same cluster reached through another kubeconfig
    # (a CI runner, a colleague's laptop) is an update of the provider, never a replacement of everything.
    provider = k8s.Provider(
        "cluster",
        # A path that reads the same on every machine: another kubeconfig file for the same context changes nothing.
        kubeconfig=clusters.provider_kubeconfig(pulumi.get_stack(), cfg.cluster.context, cfg.cluster.kubeconfig),
        context=cfg.cluster.context,
        cluster_identifier=cfg.cluster.name,
        # A ConfigMap whose data changes (Linkerd's trust roots and linkerd-config at a rotation's bundle and drop-old)
        # is updated in place, as kubectl would; the provider's default replaces it, deleting it first (it is named).
        enable_config_map_mutable=True,
    )
    on_cluster = pulumi.ResourceOptions(providers={"kubernetes": provider})
    cluster = Cluster(
        cfg,
        cli,
        crds,
        manifest,
        on_cluster,
        last,
        anchors,
        target,
        already_there,
        mark,
        workloads,
        control_plane_mark=followed_anchors(cfg, anchors, target).control_plane_mark,
    )
    match cfg.role:
        case TargetRole():
            target_stack(cluster, cfg.role)
        case SourceRole():
            source_stack(cluster, cfg.role)


main()
