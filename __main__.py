"""Ambassador Edge Stack's "Linkerd 2 Integration", one stack per cluster.

`target`: the cluster whose Edge Stack is Linkerd's multicluster gateway. It owns the shared trust
anchor and exports what the source needs. `source`: links to the target and verifies the link.
"""

import pulumi
import pulumi_kubernetes as k8s

from components import config, upstream
from components.certificates import describe
from components.edge_stack import EdgeStack, EdgeStackArgs
from components.linkerd_cli import ClusterAccess, LinkerdCli
from components.linkerd_control_plane import LinkerdControlPlane, LinkerdControlPlaneArgs
from components.linkerd_identity import LinkerdIdentity, LinkerdIdentityArgs
from components.manifests import read_location
from components.meshed_namespace import MeshedNamespace, MeshedNamespaceArgs
from components.multicluster_source import MulticlusterSource, MulticlusterSourceArgs
from components.multicluster_target import GatewayRef, MulticlusterTarget, MulticlusterTargetArgs
from components.qotm_demo import QotmDemo, QotmDemoArgs
from support import clock

# Everything is validated before the first resource: config, the linkerd CLI, the manifests.
cfg = config.load()
cluster = ClusterAccess(context=cfg.context, kubeconfig=cfg.kubeconfig)
cli = LinkerdCli(binary=cfg.linkerd_cli, cluster=cluster)
cli.require_version(cfg.linkerd_version)
edge_stack_crds = config.read_manifest("edgeStackCrds", cfg.edge_stack_crds, read_location)
edge_stack_manifest = config.read_manifest("edgeStackManifest", cfg.edge_stack_manifest, read_location)

# A fixed name: renaming the provider would replace every object it manages.
provider = k8s.Provider("cluster", kubeconfig=cfg.kubeconfig, context=cfg.context)
on_cluster = pulumi.ResourceOptions(providers={"kubernetes": provider})

# One trust anchor for both clusters: made on the target, which also signs the source's issuer.
if cfg.is_target:
    # This stack's own last outputs say how old each issuer is (renewal is decided from them).
    itself = pulumi.StackReference(f"{pulumi.get_organization()}/{pulumi.get_project()}/{pulumi.get_stack()}")
    identity = LinkerdIdentity(
        "identity",
        LinkerdIdentityArgs(
            trust_domain=cfg.trust_domain,
            clusters=(cfg.cluster_name, config.PEER),
            previous_issuers=itself.get_output("identityIssuers"),
            renew_before_days=cfg.issuer_renew_before_days,
        ),
    )
    trust_anchor_pem = identity.trust_anchor_pem
    issuer = identity.issuers[cfg.cluster_name]
    issuer_cert_pem, issuer_key_pem = issuer.cert_pem, issuer.key_pem
else:
    target = pulumi.StackReference(cfg.target_stack)
    trust_anchor_pem = target.require_output("trustAnchorPem")
    issuer_cert_pem = target.require_output("peerIssuerCertPem")
    issuer_key_pem = pulumi.Output.secret(target.require_output("peerIssuerKeyPem"))

linkerd = LinkerdControlPlane(
    "linkerd",
    LinkerdControlPlaneArgs(
        cli=cli,
        kubectl=cfg.kubectl,
        line=cfg.line,
        ha=cfg.linkerd_ha,
        trust_domain=cfg.trust_domain,
        trust_anchor_pem=trust_anchor_pem,
        issuer_cert_pem=issuer_cert_pem,
        issuer_key_pem=issuer_key_pem,
        multicluster=True,
        links=(cfg.target_cluster_name,) if not cfg.is_target and cfg.line.link_controllers_in_install else (),
    ),
    opts=on_cluster,
)

edge_stack = EdgeStack(
    "edge-stack",
    EdgeStackArgs(
        line=cfg.line,
        product=cfg.edge_stack,
        crds_yaml=edge_stack_crds,
        manifest_yaml=edge_stack_manifest,
        license_key=cfg.edge_stack_license_key,
        add_linkerd_headers=cfg.add_linkerd_headers,
        cli=cli,
        gateway_port=cfg.gateway_port,
        control_plane=linkerd.ready,
        tls=cfg.tls,
        # The target's gateway renames Edge Stack's HTTP port mc-probe (the page's Service patch).
        service_port_names={cfg.probe_port: upstream.PROBE_PORT_NAME} if cfg.is_target else {},
    ),
    opts=on_cluster,
)

namespaces = {
    name: MeshedNamespace(
        f"ns-{name}",
        MeshedNamespaceArgs(name=name, exists=name in cfg.existing_namespaces, control_plane=linkerd.ready),
        opts=on_cluster,
    )
    for name in cfg.meshed_namespaces
}

qotm = None
if cfg.qotm:
    qotm = QotmDemo(
        "qotm",
        QotmDemoArgs(
            line=cfg.line,
            namespace=namespaces[cfg.qotm_namespace].name,
            depends_on=[namespaces[cfg.qotm_namespace], *edge_stack.crds, edge_stack.mesh],
            smoke_test_url=cfg.smoke_test_url,
        ),
        opts=on_cluster,
    )

pulumi.export("clusterName", cfg.cluster_name)
pulumi.export("context", cfg.context)
pulumi.export("versionLine", cfg.line.name)
pulumi.export("linkerdVersion", cfg.linkerd_version)
pulumi.export("edgeStack", f"{cfg.edge_stack.name} {cfg.edge_stack_version}")
pulumi.export("trustAnchorPem", trust_anchor_pem)
certificates_now = clock.now()
handed_on = [("peer-issuer", identity.issuers[config.PEER].cert_pem)] if cfg.is_target else []
pulumi.export(
    "identityCertificates",
    pulumi.Output.all(trust_anchor_pem, issuer_cert_pem, *(pem for _, pem in handed_on)).apply(
        lambda pems: [
            describe(name, role, pem, certificates_now)
            for (name, role), pem in zip(
                [("trust-anchor", "anchor"), (f"{cfg.cluster_name}-issuer", "issuer"), *((n, "issuer") for n, _ in handed_on)],
                pems,
                strict=True,
            )
        ]
    ),
)

if cfg.is_target:
    gateway = GatewayRef(
        namespace=cfg.edge_stack.namespace,
        deployment=cfg.edge_stack.deployment,
        service=cfg.edge_stack.service,
        service_account=cfg.edge_stack.service_account,
        service_ports=edge_stack.service_ports,
    )
    multicluster = MulticlusterTarget(
        "multicluster-target",
        MulticlusterTargetArgs(
            line=cfg.line,
            gateway=gateway,
            hostname=cfg.gateway_hostname or "",
            gateway_port=cfg.gateway_port,
            probe_port=cfg.probe_port,
            probe_target_port=cfg.probe_target_port,
            probe_path=cfg.probe_path,
            probe_period_seconds=cfg.probe_period_seconds,
            trust_domain=cfg.trust_domain,
            exported_services=cfg.exported_services,
            depends_on=[edge_stack.mesh, *linkerd.ready, *([qotm.service] if qotm else [])],
            service_resource=edge_stack.service,
        ),
        opts=on_cluster,
    )
    peer_issuer = identity.issuers[config.PEER]
    pulumi.export("peerIssuerCertPem", peer_issuer.cert_pem)
    pulumi.export("peerIssuerKeyPem", peer_issuer.key_pem)
    pulumi.export("identityIssuers", identity.issuer_state)
    pulumi.export("gatewayName", gateway.deployment)
    pulumi.export("gatewayNamespace", gateway.namespace)
    pulumi.export("gatewayIdentity", multicluster.gateway_identity)
    pulumi.export("exportedServices", [f"{ns}/{name}" for ns, name in cfg.exported_services])
else:
    target_cli = LinkerdCli(
        binary=cfg.linkerd_cli, cluster=ClusterAccess(context=cfg.target_context, kubeconfig=cfg.target_kubeconfig)
    )
    config.check_target_outputs(cfg, target)
    source = MulticlusterSource(
        "multicluster-source",
        MulticlusterSourceArgs(
            line=cfg.line,
            cli=cli,
            target_cli=target_cli,
            target_cluster_name=cfg.target_cluster_name,
            gateway_name=target.require_output("gatewayName"),
            gateway_namespace=target.require_output("gatewayNamespace"),
            gateway_addresses=cfg.gateway_addresses,
            api_server_address=cfg.target_api_server_address,
            control_plane=linkerd.ready,
            verify=cfg.verify,
            verify_after=[edge_stack.mesh, *(ns.namespace for ns in namespaces.values()), *([qotm] if qotm else [])],
            verify_inputs=[cfg.linkerd_version, cfg.edge_stack_version, trust_anchor_pem, issuer_cert_pem],
        ),
        opts=on_cluster,
    )
    pulumi.export("linkedCluster", cfg.target_cluster_name)

pulumi.export("edgeStackNamespace", cfg.edge_stack.namespace)
pulumi.export("meshedNamespaces", list(cfg.meshed_namespaces))
