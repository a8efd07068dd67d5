"""The target cluster's Edge Stack as Linkerd's multicluster gateway, and the services it exports.

What the page patches by hand on the gateway Service and the exported services is a server-side patch
here: it owns only the fields it sets, a second `up` sets them again, and `destroy` takes back only
those fields. The page's `enable-gateway` patch of Edge Stack's pod template is written with the
Deployment itself (`GATEWAY_POD_ANNOTATIONS`, components/edge_stack.py): one rollout, not two.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from support import ambassador, upstream
from support.config_model import ExportedService, GatewaySettings


@dataclass(frozen=True, kw_only=True)
class MulticlusterTargetArgs:
    line: upstream.VersionLine
    # The Edge Stack product that serves as gateway (its namespace, Deployment, Service and account).
    product: upstream.EdgeStackProduct
    # The Service's own ports, in its order, as Edge Stack's manifest declares them.
    service_ports: tuple[Mapping[str, Any], ...]
    hostname: str
    ports: GatewaySettings
    trust_domain: str
    exported_services: Sequence[ExportedService]
    # The Edge Stack Service the gateway patch changes: created first, and when it goes the patch needs no undoing.
    service_resource: pulumi.Resource | None = None
    # What the Host and the health Mapping wait for: Edge Stack's CRDs (and on 3.9.1 the conversion webhook).
    custom_after: Sequence[pulumi.Resource] = ()
    # What the exports wait for besides the gateway's Service patch: the services they label.
    exports_after: Sequence[pulumi.Resource] = ()


# Edge Stack's pod template as Linkerd's gateway: what the page's `enable-gateway` patch sets.
GATEWAY_POD_ANNOTATIONS = {upstream.ENABLE_GATEWAY_ANNOTATION: "true"}


def gateway_service_annotations(args: MulticlusterTargetArgs) -> dict[str, str]:
    """What Linkerd's service mirror reads from the gateway Service."""
    product = args.product
    return {
        upstream.GATEWAY_IDENTITY_ANNOTATION: upstream.gateway_identity(
            product.service_account, product.namespace, args.trust_domain
        ),
        upstream.MULTICLUSTER_GATEWAY_ANNOTATION: "true",
        # Must be the health Mapping's prefix, which this same value defines.
        upstream.PROBE_PATH_ANNOTATION: args.ports.probe_path,
        upstream.PROBE_PERIOD_ANNOTATION: str(args.ports.probe_period_seconds),
    }


def gateway_ports(args: MulticlusterTargetArgs) -> list[k8s.core.v1.ServicePortPatchArgs]:
    """The gateway Service's ports as the page leaves them: its port 80 renamed mc-probe, mc-gateway added.

    Every port of the Service is listed, in its order: the provider compares port lists position
    by position, so a patch naming only some of them would show a change at every preview.
    """
    gateway = args.ports
    probe: dict[str, Any] = {
        "name": upstream.PROBE_PORT_NAME,
        "port": gateway.probe_port,
        "targetPort": gateway.probe_target_port,
    }
    ports = [probe if port["port"] == gateway.probe_port else dict(port) for port in args.service_ports]
    if probe not in ports:
        ports.append(probe)
    ports = [p for p in ports if p["port"] != gateway.port]
    ports.append({"name": upstream.GATEWAY_PORT_NAME, "port": gateway.port})
    return [
        k8s.core.v1.ServicePortPatchArgs(
            name=port.get("name"), port=port["port"], target_port=port.get("targetPort"), protocol=port.get("protocol", "TCP")
        )
        for port in ports
    ]


def export_modes(services: Sequence[ExportedService]) -> dict[str, str]:
    """Each exported service ("namespace/name") and its mode: the source reads it to link, `status` to check."""
    return {service.ref: service.mode.value for service in services}


def export_metadata(
    line: upstream.VersionLine, gateway: upstream.EdgeStackProduct, service: ExportedService
) -> k8s.meta.v1.ObjectMetaPatchArgs:
    """A service's metadata that exports it in its mode: the mode's label, or 2.8's gateway annotations."""
    name, namespace = service.name, service.namespace
    # The label changes nothing the provider's Service await looks at (endpoints, settled for 10 seconds).
    not_awaited = {upstream.SKIP_AWAIT_ANNOTATION: "true"}
    if line.export_by_label:
        label, value = upstream.EXPORT_LABELS[service.mode]
        return k8s.meta.v1.ObjectMetaPatchArgs(name=name, namespace=namespace, labels={label: value}, annotations=not_awaited)
    annotations = {
        upstream.EXPORT_GATEWAY_NAME_ANNOTATION: gateway.deployment,
        upstream.EXPORT_GATEWAY_NAMESPACE_ANNOTATION: gateway.namespace,
        **not_awaited,
    }
    return k8s.meta.v1.ObjectMetaPatchArgs(name=name, namespace=namespace, annotations=annotations)


class MulticlusterTarget(pulumi.ComponentResource):
    gateway_identity: pulumi.Output[str]
    host: k8s.apiextensions.CustomResource
    health_mapping: k8s.apiextensions.CustomResource
    service_patch: k8s.core.v1.ServicePatch
    exports: list[k8s.core.v1.ServicePatch]

    def __init__(self, name: str, args: MulticlusterTargetArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("aes-linkerd2:index:MulticlusterTarget", name, None, opts)
        line, gateway = args.line, args.product
        after = pulumi.ResourceOptions(parent=self, depends_on=list(args.custom_after))

        # Linkerd secures the hop between clusters, so requests reach Edge Stack as plain HTTP.
        self.host = ambassador.custom_resource(
            f"{name}-host",
            line,
            "Host",
            name=upstream.GATEWAY_HOST_NAME,
            namespace=gateway.namespace,
            spec={
                "hostname": args.hostname,
                "acmeProvider": {"authority": "none"},
                "requestPolicy": {"insecure": {"action": "Route"}},
            },
            opts=after,
        )
        # Linkerd probes the gateway itself; the admin port stays inside the cluster.
        self.health_mapping = ambassador.custom_resource(
            f"{name}-health-mapping",
            line,
            "Mapping",
            name=upstream.HEALTH_MAPPING_NAME,
            namespace=gateway.namespace,
            spec=ambassador.mapping_spec(
                line,
                prefix=args.ports.probe_path,
                rewrite=upstream.READY_CHECK_PATH,
                service=f"localhost:{upstream.ADMIN_PORT}",
                bypass_auth=True,
            ),
            opts=after,
        )
        self.service_patch = k8s.core.v1.ServicePatch(
            f"{name}-gateway-service",
            metadata=k8s.meta.v1.ObjectMetaPatchArgs(
                name=gateway.service,
                namespace=gateway.namespace,
                # Like the Service itself, the patch is not held until a load balancer shows up.
                annotations={**gateway_service_annotations(args), upstream.SKIP_AWAIT_ANNOTATION: "true"},
            ),
            spec=k8s.core.v1.ServiceSpecPatchArgs(ports=gateway_ports(args)),
            # The Service itself is all it needs: the Link that reads it is made later, by the source's `up`.
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[args.service_resource] if args.service_resource else [],
                deleted_with=args.service_resource,
            ),
        )
        self.exports = [
            k8s.core.v1.ServicePatch(
                f"{name}-export-{service.namespace}-{service.name}",
                metadata=export_metadata(line, gateway, service),
                # The gateway's annotations and ports first, then the label that routes the service through it.
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.service_patch, *args.exports_after]),
            )
            for service in args.exported_services
        ]
        self.gateway_identity = pulumi.Output.from_input(gateway_service_annotations(args)[upstream.GATEWAY_IDENTITY_ANNOTATION])
        self.register_outputs(
            {"gatewayIdentity": self.gateway_identity, "exportedServiceModes": export_modes(args.exported_services)}
        )
