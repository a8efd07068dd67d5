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
from components.linkerd_control_plane import LinkerdControlPlane, LinkerdControlPlaneArgs
from components.linkerd_identity import AnchorPlan, LinkerdIdentity, LinkerdIdentityArgs, anchor_plan
from components.meshed_namespace import MeshedNamespace, MeshedNamespaceArgs
from components.multicluster_source import MulticlusterSource, MulticlusterSourceArgs
from components.multicluster_target import GatewayRef, MulticlusterTarget, MulticlusterTargetArgs
from components.qotm_demo import QotmDemo, QotmDemoArgs
from support import charts, clock, config, stack_outputs, upstream
from support.certificates import anchor_rows, describe
from support.linkerd_cli import ClusterAccess, LinkerdCli
from support.manifests import read_location


@dataclass(frozen=True)
class ClusterIdentity:
    """The trust roots, the anchor that signs the issuers, this cluster's issuer, and the issuers the stack reports."""

    # One anchor, or during a rotation the old and the new one: what every proxy trusts.
    trust_roots_pem: pulumi.Input[str]
    trust_anchor_pem: pulumi.Input[str]
    issuer_cert_pem: pulumi.Input[str]
    issuer_key_pem: pulumi.Input[str]
    # (name, certificate) of every issuer the stack applies or hands on; the anchors are reported from the roots.
    issuers: tuple[tuple[str, pulumi.Input[str]], ...]


@dataclass(frozen=True)
class Cluster:
    """This stack's cluster, as read and checked before anything is registered."""

    cfg: config.StackConfig
    cli: LinkerdCli
    edge_stack_crds: str
    edge_stack_manifest: str
    on_cluster: pulumi.ResourceOptions
    # This stack's outputs as its last update left them: how old each issuer is, which rotation step ran.
    last_outputs: Mapping[str, Any]
    # The target's anchors for this update (a rotation's step), decided from its last outputs.
    anchors: AnchorPlan
    # On the source: the target stack's outputs (trust roots, peer issuer, gateway), read and checked up front.
    target_outputs: Mapping[str, Any]


@dataclass(frozen=True)
class Mesh:
    linkerd: LinkerdControlPlane
    edge_stack: EdgeStack
    namespaces: dict[str, MeshedNamespace]
    qotm: QotmDemo | None


def mesh_cluster(cluster: Cluster, identity: ClusterIdentity) -> Mesh:
    """Linkerd (HA), Edge Stack meshed with the add_linkerd_headers Module, meshed namespaces, QOTM."""
    cfg, cli, on_cluster = cluster.cfg, cluster.cli, cluster.on_cluster
    gateway, workloads = cfg.gateway, cfg.workloads
    linkerd = LinkerdControlPlane(
        "linkerd",
        LinkerdControlPlaneArgs(
            cli=cli,
            kubectl=cfg.kubectl,
            line=cfg.line,
            ha=cfg.linkerd.ha,
            trust_domain=cfg.linkerd.trust_domain,
            trust_anchor_pem=identity.trust_roots_pem,
            issuer_cert_pem=identity.issuer_cert_pem,
            issuer_key_pem=identity.issuer_key_pem,
            multicluster=True,
            links=(cfg.role.target.name,)
            if isinstance(cfg.role, config.SourceRole) and cfg.line.link_controllers_in_install
            else (),
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
            tls=cfg.edge_stack.tls,
            # The target's gateway renames Edge Stack's HTTP port mc-probe (the page's Service patch).
            service_port_names={gateway.probe_port: upstream.PROBE_PORT_NAME} if cfg.is_target else {},
        ),
        opts=on_cluster,
    )
    namespaces = {
        name: MeshedNamespace(
            f"ns-{name}",
            MeshedNamespaceArgs(
                name=name,
                exists=name in workloads.existing_namespaces,
                owner=config.namespace_owner(pulumi.get_stack()),
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
                depends_on=[namespaces[workloads.qotm_namespace], *edge_stack.crds, edge_stack.mesh],
                smoke_test_url=workloads.smoke_test_url,
            ),
            opts=on_cluster,
        )
    return Mesh(linkerd=linkerd, edge_stack=edge_stack, namespaces=namespaces, qotm=qotm)


def export_cluster(cfg: config.StackConfig, identity: ClusterIdentity) -> None:
    pulumi.export("clusterName", cfg.cluster.name)
    pulumi.export("context", cfg.cluster.context)
    pulumi.export("versionLine", cfg.line.name)
    pulumi.export("linkerdVersion", cfg.linkerd.version)
    pulumi.export("edgeStack", f"{cfg.edge_stack.product.name} {cfg.edge_stack.version}")
    pulumi.export("edgeStackNamespace", cfg.edge_stack.product.namespace)
    pulumi.export("meshedNamespaces", list(cfg.workloads.meshed_namespaces))
    pulumi.export("trustAnchorPem", identity.trust_anchor_pem)
    pulumi.export("trustRootsPem", identity.trust_roots_pem)
    now = clock.now()
    names = [name for name, _ in identity.issuers]

    def rows(roots: str, anchor: str, *issuers: str) -> list[dict[str, object]]:
        return [describe(name, "anchor", pem, now) for name, pem in anchor_rows(roots, anchor)] + [
            describe(name, "issuer", pem, now) for name, pem in zip(names, issuers, strict=True)
        ]

    pulumi.export(
        "identityCertificates",
        pulumi.Output.all(identity.trust_roots_pem, identity.trust_anchor_pem, *(pem for _, pem in identity.issuers)).apply(
            lambda values: rows(*values)
        ),
    )


def target_stack(cluster: Cluster, role: config.TargetRole) -> None:
    """The gateway side: the shared anchor and both issuers, the page on this cluster, then the gateway."""
    cfg, ports = cluster.cfg, cluster.cfg.gateway
    certificates = LinkerdIdentity(
        "identity",
        LinkerdIdentityArgs(
            trust_domain=cfg.linkerd.trust_domain,
            clusters=(cfg.cluster.name, config.PEER),
            previous_issuers=cluster.last_outputs.get("identityIssuers"),
            renew_before_days=cfg.linkerd.issuer_renew_before_days,
            anchors=cluster.anchors,
        ),
    )
    own, peer = certificates.issuers[cfg.cluster.name], certificates.issuers[config.PEER]
    identity = ClusterIdentity(
        trust_roots_pem=certificates.trust_roots_pem,
        trust_anchor_pem=certificates.trust_anchor_pem,
        issuer_cert_pem=own.cert_pem,
        issuer_key_pem=own.key_pem,
        issuers=((f"{cfg.cluster.name}-issuer", own.cert_pem), ("peer-issuer", peer.cert_pem)),
    )
    mesh = mesh_cluster(cluster, identity)
    gateway = GatewayRef(
        namespace=cfg.edge_stack.product.namespace,
        deployment=cfg.edge_stack.product.deployment,
        service=cfg.edge_stack.product.service,
        service_account=cfg.edge_stack.product.service_account,
        service_ports=mesh.edge_stack.service_ports,
    )
    multicluster = MulticlusterTarget(
        "multicluster-target",
        MulticlusterTargetArgs(
            line=cfg.line,
            gateway=gateway,
            hostname=role.gateway_hostname,
            gateway_port=ports.port,
            probe_port=ports.probe_port,
            probe_target_port=ports.probe_target_port,
            probe_path=ports.probe_path,
            probe_period_seconds=ports.probe_period_seconds,
            trust_domain=cfg.linkerd.trust_domain,
            exported_services=role.exported_services,
            depends_on=[mesh.edge_stack.mesh, *mesh.linkerd.multicluster_ready],
            exports_after=[mesh.qotm.service] if mesh.qotm else [],
            service_resource=mesh.edge_stack.service,
        ),
        opts=cluster.on_cluster,
    )
    export_cluster(cfg, identity)
    pulumi.export("peerIssuerCertPem", peer.cert_pem)
    pulumi.export("peerIssuerKeyPem", peer.key_pem)
    pulumi.export("identityIssuers", certificates.issuer_state)
    pulumi.export("identityAnchors", certificates.anchor_state)
    pulumi.export("gatewayName", gateway.deployment)
    pulumi.export("gatewayNamespace", gateway.namespace)
    pulumi.export("gatewayIdentity", multicluster.gateway_identity)
    pulumi.export("exportedServices", [f"{ns}/{name}" for ns, name in role.exported_services])


def source_stack(cluster: Cluster, role: config.SourceRole) -> None:
    """The linking side: the target's trust roots and the issuer it signed for it, the page, then the Link and checks.

    During a rotation it follows the target's step: the target's outputs carry that step's roots and issuer.
    """
    cfg = cluster.cfg
    target = cluster.target_outputs
    issuer_cert_pem = str(target["peerIssuerCertPem"])
    anchor_pem = str(target["trustAnchorPem"])
    identity = ClusterIdentity(
        # A target from before rotations exported only its one anchor.
        trust_roots_pem=str(target.get("trustRootsPem") or anchor_pem),
        trust_anchor_pem=anchor_pem,
        issuer_cert_pem=issuer_cert_pem,
        # Read in plain (the engine's invoke unwraps secrets): secret again before anything sees it.
        issuer_key_pem=pulumi.Output.secret(str(target["peerIssuerKeyPem"])),
        issuers=((f"{cfg.cluster.name}-issuer", issuer_cert_pem),),
    )
    mesh = mesh_cluster(cluster, identity)
    target_cli = LinkerdCli(
        binary=cfg.linkerd.cli, cluster=ClusterAccess(context=role.target.context, kubeconfig=role.target.kubeconfig)
    )
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
            api_server_address=role.target_api_server_address,
            control_plane=mesh.linkerd.multicluster_ready,
            verify=role.verify,
            verify_after=[
                mesh.edge_stack.mesh,
                *(ns.namespace for ns in mesh.namespaces.values()),
                *([mesh.qotm] if mesh.qotm else []),
            ],
            verify_inputs=[cfg.linkerd.version, cfg.edge_stack.version, identity.trust_roots_pem, issuer_cert_pem],
        ),
        opts=cluster.on_cluster,
    )
    export_cluster(cfg, identity)
    pulumi.export("linkedCluster", role.target.name)


def main() -> None:
    cfg = config.load()
    last = stack_outputs.read(f"{pulumi.get_organization()}/{pulumi.get_project()}/{pulumi.get_stack()}")
    # The source's view of the target, checked before the first registration like everything else.
    target = (
        config.check_target_outputs(cfg, cfg.role, stack_outputs.read(cfg.role.target_stack))
        if isinstance(cfg.role, config.SourceRole)
        else {}
    )
    # A rotation step that skips one, or goes back, is refused here, before the first registration.
    if isinstance(cfg.role, config.TargetRole):
        config.check_trust_domain_kept(cfg.linkerd.trust_domain, last.get("trustAnchorPem"))
    anchors = (
        anchor_plan(last.get("identityAnchors"), cfg.role.trust_anchor_rotation)
        if isinstance(cfg.role, config.TargetRole)
        else AnchorPlan()
    )
    access = ClusterAccess(context=cfg.cluster.context, kubeconfig=cfg.cluster.kubeconfig)
    cli = LinkerdCli(binary=cfg.linkerd.cli, cluster=access)
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
        crds = config.read_manifest("edgeStackCrds", edge.crds, read_location)
        manifest = config.read_manifest("edgeStackManifest", edge.manifest, read_location)
    config.check_edge_stack_manifest(cfg.edge_stack, manifest)
    cli.require_version(cfg.linkerd.version)
    # A fixed name: renaming the provider would replace every object it manages. Its identity is the
    # cluster's name, not the kubeconfig's path: the same cluster reached through another kubeconfig
    # (a CI runner, a colleague's laptop) is an update of the provider, never a replacement of everything.
    provider = k8s.Provider(
        "cluster", kubeconfig=cfg.cluster.kubeconfig, context=cfg.cluster.context, cluster_identifier=cfg.cluster.name
    )
    on_cluster = pulumi.ResourceOptions(providers={"kubernetes": provider})
    cluster = Cluster(cfg, cli, crds, manifest, on_cluster, last_outputs=last, anchors=anchors, target_outputs=target)
    match cfg.role:
        case config.TargetRole():
            target_stack(cluster, cfg.role)
        case config.SourceRole():
            source_stack(cluster, cfg.role)


main()
