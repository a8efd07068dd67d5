"""A stack's configuration as typed values: what `support.config.load` returns, read by everything else."""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

import pulumi

from support import upstream
from support.certificates import RotationStep


class Role(StrEnum):
    SOURCE = "source"
    TARGET = "target"


@dataclass(frozen=True, kw_only=True)
class ClusterAccess:
    """How commands reach one cluster; the kubeconfig is a path, never its contents."""

    context: str
    kubeconfig: str | None = None

    def flags(self) -> list[str]:
        return [*(["--kubeconfig", self.kubeconfig] if self.kubeconfig else []), "--context", self.context]

    def kubectl_line(self, kubectl: str, *args: str) -> str:
        return shlex.join([kubectl, *self.flags(), *args])


@dataclass(frozen=True, kw_only=True)
class ClusterSettings(ClusterAccess):
    """A cluster as the provider, kubectl and the linkerd CLI reach it, and the name Linkerd knows it by."""

    name: str


@dataclass(frozen=True, kw_only=True)
class Tls:
    """TLS termination at Edge Stack: a certificate from config secrets, or ACME."""

    hostname: str
    certificate: pulumi.Output[str] | None = None
    private_key: pulumi.Output[str] | None = None
    acme_email: str | None = None


@dataclass(frozen=True, kw_only=True)
class LinkerdSettings:
    version: str
    cli: str  # the binary of that release
    ha: bool
    trust_domain: str
    # An issuer with fewer days left than this is re-issued by the next `up`.
    issuer_renew_before_days: int


@dataclass(frozen=True, kw_only=True)
class EdgeStackSettings:
    product: upstream.EdgeStackProduct
    version: str
    crds: str  # URL or path
    manifest: str  # URL or path
    license_key: pulumi.Output[str] | None
    add_linkerd_headers: bool
    tls: Tls | None
    # The helm CLI, for a release installed from its charts (support/charts.py); None: found by release.
    helm: str | None = None


@dataclass(frozen=True, kw_only=True)
class GatewaySettings:
    """The ports of Linkerd's gateway on Edge Stack and its health probe."""

    port: int
    probe_port: int
    probe_target_port: int
    probe_path: str
    probe_period_seconds: int


@dataclass(frozen=True, kw_only=True)
class WorkloadSettings:
    meshed_namespaces: tuple[str, ...]
    existing_namespaces: frozenset[str]  # only annotated, never created or deleted
    qotm: bool
    qotm_namespace: str
    smoke_test_url: str | None


class ExportMode(StrEnum):
    """How the source reaches an exported service (Linkerd's multicluster modes, mixable per service)."""

    # Through the target's gateway, here Edge Stack: the page's way; only the gateway must be reachable.
    GATEWAY = "gateway"
    # Pod to pod, no gateway hop (Linkerd 2.14+): the source's pods must reach the target's pods.
    REMOTE_DISCOVERY = "remote-discovery"
    # One `<service>-federated` Service over every linked cluster's members (2.17+): pod to pod as well.
    FEDERATED = "federated"

    @property
    def needs_flat_network(self) -> bool:
        return self is not ExportMode.GATEWAY


def needs_gateway(modes: Iterable[str]) -> bool:
    """Whether the source's Link goes through the target's gateway: unless every export is reached pod to pod.

    With nothing exported it keeps the gateway, the page's way.
    """
    listed = list(modes)
    return not listed or ExportMode.GATEWAY in listed


@dataclass(frozen=True)
class ExportedService:
    namespace: str
    name: str
    mode: ExportMode = ExportMode.GATEWAY

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True, kw_only=True)
class TargetRole:
    """What only the target (the gateway's cluster) reads."""

    gateway_hostname: str
    exported_services: tuple[ExportedService, ...]
    # The step of a trust anchor rotation this update does, if any.
    trust_anchor_rotation: RotationStep | None = None
    # The generation of the Link's credentials: 0 is upstream's default remote-access account.
    link_credentials: int = 0


@dataclass(frozen=True, kw_only=True)
class SourceRole:
    """What only the source (the linking cluster) reads."""

    target_stack: str
    target: ClusterSettings
    gateway_addresses: tuple[str, ...]
    target_api_server_address: str | None
    verify: bool
    # The source's pods reach the target's pods (and back): what remote-discovery and federated exports need.
    flat_network: bool = False


@dataclass(frozen=True, kw_only=True)
class StackConfig:
    line: upstream.VersionLine
    cluster: ClusterSettings
    kubectl: str
    linkerd: LinkerdSettings
    edge_stack: EdgeStackSettings
    gateway: GatewaySettings
    workloads: WorkloadSettings
    role: TargetRole | SourceRole

    @property
    def is_target(self) -> bool:
        return isinstance(self.role, TargetRole)
