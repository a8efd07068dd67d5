"""The source stack's own keys: the target it links to (targetStack, targetContext, targetKubeconfig,
targetClusterName, targetApiServerAddress), gatewayAddresses, verify and flatNetwork. support/config.py reads the
keys both roles share and calls `source`.
"""

from __future__ import annotations

import ipaddress
import re

from support import config_values as values
from support import upstream
from support.config_model import ClusterSettings, SourceRole
from support.config_values import Reader
from support.errors import ConfigError

# organization/project/stack, project/stack or stack.
_STACK_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}(/[A-Za-z0-9_.-]{1,100}){0,2}$")


def source(read: Reader, cluster: ClusterSettings, line: upstream.VersionLine) -> SourceRole:
    context, kubeconfig, cluster_name = cluster.context, cluster.kubeconfig, cluster.name
    target_stack = read.required("targetStack")
    if not _STACK_NAME.fullmatch(target_stack):
        raise ConfigError("targetStack", target_stack, "must be a stack name: [organization/][project/]stack")
    target_context = values.word("targetContext", read.required("targetContext"))
    if target_context == context:
        raise ConfigError("targetContext", target_context, "is the same context as `context`: the two stacks need two clusters")
    target_kubeconfig = read.path("targetKubeconfig", kubeconfig)
    addresses = tuple(_address("gatewayAddresses", address) for address in read.string_list("gatewayAddresses", []))
    if len(set(addresses)) != len(addresses):
        raise ConfigError("gatewayAddresses", list(addresses), "lists an address twice")
    # The target's clusterName defaults to its stack name, so this one does too.
    target_cluster_name = values.cluster_name(
        "targetClusterName", read.text("targetClusterName", target_stack.split("/")[-1]) or ""
    )
    if target_cluster_name == cluster_name:
        raise ConfigError(
            "targetClusterName", target_cluster_name, "is this stack's own clusterName: the two clusters need two names"
        )
    return SourceRole(
        target_stack=target_stack,
        target=ClusterSettings(name=target_cluster_name, context=target_context, kubeconfig=target_kubeconfig),
        gateway_addresses=addresses,
        target_api_server_address=_api_server(read.text("targetApiServerAddress") or kind_internal_address(target_context)),
        verify=read.boolean("verify", True),
        flat_network=_flat_network(read, line),
    )


def _address(key: str, value: str) -> str:
    if not (values.is_ip(value) or values.is_dns_name(value)):
        raise ConfigError(key, value, "each entry must be an IP address or a DNS name")
    if values.is_ip(value) and ipaddress.ip_address(value).is_unspecified:
        raise ConfigError(key, value, "is the unspecified address: no gateway answers there")
    return value


def _flat_network(read: Reader, line: upstream.VersionLine) -> bool:
    flat = read.boolean("flatNetwork", False)
    if flat and not line.link_modes:
        raise ConfigError(
            "flatNetwork", flat, f"version line {line.name} links through the gateway only: nothing there reaches pods directly"
        )
    return flat


# kind names a cluster's context `kind-<cluster>` and its control-plane container `<cluster>-control-plane`.
_KIND_CONTEXT = re.compile(r"^kind-(?P<cluster>[a-z0-9]([-a-z0-9]{0,40}[a-z0-9])?)$")


def kind_internal_address(context: str) -> str | None:
    """The API server of a kind cluster as the other kind clusters reach it (what `kind get kubeconfig --internal` says).

    The kubeconfig's own address (https://127.0.0.1:<port>) is the host's: from the source cluster's
    service mirror it leads nowhere. kind's API server certificate names the container, so this one verifies.
    """
    match = _KIND_CONTEXT.fullmatch(context)
    return f"https://{match.group('cluster')}-control-plane:6443" if match else None


def _api_server(value: str | None) -> str | None:
    if value is not None and not value.startswith("https://"):
        raise ConfigError("targetApiServerAddress", value, "must be https://<host>[:port] of the target's API server")
    return None if value is None else values.base_url("targetApiServerAddress", value, "the target's API server")
