"""getambassador.io objects (Mapping, Host, Listener, Module) written once for every version line."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from support import upstream


def custom_resource(
    resource_name: str,
    line: upstream.VersionLine,
    kind: str,
    *,
    name: str,
    namespace: pulumi.Input[str],
    spec: dict[str, Any],
    opts: pulumi.ResourceOptions,
) -> k8s.apiextensions.CustomResource:
    return k8s.apiextensions.CustomResource(
        resource_name,
        api_version=line.ambassador_api,
        kind=kind,
        metadata=k8s.meta.v1.ObjectMetaArgs(name=name, namespace=namespace),
        spec=spec,
        opts=opts,
    )


def mapping_spec(
    line: upstream.VersionLine,
    *,
    prefix: str,
    service: str,
    add_linkerd_headers: bool | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A Mapping's spec; on lines with Listeners it names the hosts it serves ("*": any)."""
    spec: dict[str, Any] = {"prefix": prefix, "service": service, **fields}
    if line.mapping_hostname is not None:
        spec["hostname"] = line.mapping_hostname
    if add_linkerd_headers is not None:
        spec["add_linkerd_headers"] = add_linkerd_headers
    return spec


def module_object(line: upstream.VersionLine, namespace: str, add_linkerd_headers: bool) -> dict[str, Any]:
    return {
        "apiVersion": line.ambassador_api,
        "kind": "Module",
        "metadata": {"name": upstream.MODULE_NAME, "namespace": namespace},
        "spec": {"config": {"add_linkerd_headers": add_linkerd_headers}},
    }


def listener_objects(line: upstream.VersionLine, namespace: str, prefix: str) -> list[dict[str, Any]]:
    """The HTTP and HTTPS Listeners that Edge Stack / Emissary 2.x+ need to listen at all."""
    return [
        {
            "apiVersion": line.ambassador_api,
            "kind": "Listener",
            "metadata": {"name": f"{prefix}-{protocol.lower()}-listener", "namespace": namespace},
            "spec": {
                "port": port,
                "protocol": protocol,
                # X-Forwarded-Proto decides whether a request counts as secure.
                "securityModel": "XFP",
                "hostBinding": {"namespace": {"from": "ALL"}},
            },
        }
        for protocol, port in (("HTTP", upstream.HTTP_LISTENER_PORT), ("HTTPS", upstream.HTTPS_LISTENER_PORT))
    ]
