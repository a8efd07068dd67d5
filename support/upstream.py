"""Names and numbers that Linkerd and Edge Stack define, in one place.

Everything that differs between releases is keyed by version line in VERSION_LINES, so another
line is a table entry. Values that must agree with each other (gateway port and identity port,
probe path and health Mapping prefix) are derived where they are used, never written twice.
"""

from __future__ import annotations

import platform
from collections.abc import Mapping
from dataclasses import dataclass, field

# --- Linkerd (linkerd2 pkg/k8s/labels.go, multicluster/cmd) -------------------------------------
INJECT_ANNOTATION = "linkerd.io/inject"
INJECT_ENABLED = "enabled"
ENABLE_GATEWAY_ANNOTATION = "config.linkerd.io/enable-gateway"
GATEWAY_IDENTITY_ANNOTATION = "mirror.linkerd.io/gateway-identity"
MULTICLUSTER_GATEWAY_ANNOTATION = "mirror.linkerd.io/multicluster-gateway"
PROBE_PATH_ANNOTATION = "mirror.linkerd.io/probe-path"
PROBE_PERIOD_ANNOTATION = "mirror.linkerd.io/probe-period"
EXPORT_GATEWAY_NAME_ANNOTATION = "mirror.linkerd.io/gateway-name"  # 2.8 only
EXPORT_GATEWAY_NAMESPACE_ANNOTATION = "mirror.linkerd.io/gateway-ns"  # 2.8 only
EXPORTED_LABEL = "mirror.linkerd.io/exported"  # 2.9 and later
FEDERATED_LABEL = "mirror.linkerd.io/federated"  # 2.17 and later
# The label each multicluster mode exports a service by: link-gen's default selectors for the Link's
# `selector` (through the gateway), `remoteDiscoverySelector` (2.14+) and `federatedServiceSelector` (2.17+).
EXPORT_LABELS = {
    "gateway": (EXPORTED_LABEL, "true"),
    "remote-discovery": (EXPORTED_LABEL, "remote-discovery"),
    "federated": (FEDERATED_LABEL, "member"),
}
# A federated service's one Service on the linking side, over every linked cluster's members.
FEDERATED_SERVICE = "{service}-federated"
GATEWAY_PORT_NAME = "mc-gateway"
PROBE_PORT_NAME = "mc-probe"
# The multicluster gateway port is the proxy's inbound port; identity is required on it.
PROXY_INBOUND_PORT = 4143
# The proxy's other ports (outbound, control, admin: the probe's 4191): never the gateway's.
PROXY_OTHER_PORTS = (4140, 4190, 4191)
DEFAULT_TRUST_DOMAIN = "cluster.local"
CONTROL_PLANE_NAMESPACE = "linkerd"
MULTICLUSTER_NAMESPACE = "linkerd-multicluster"
# The service mirror a source's multicluster install declares per link (2.18+).
LINK_CONTROLLER_DEPLOYMENT = "controller-{link}"
# Its pods (the chart's controller template): deleted so a new one reads rotated credentials.
LINK_CONTROLLER_SELECTOR = "component=controller,mirror.linkerd.io/cluster-name={link}"
# The target's account whose token a Link carries: the multicluster chart's remoteMirrorServiceAccountName
# (it renders the account, its token Secret `<name>-token`, a ClusterRole and its binding for each name).
REMOTE_ACCESS_ACCOUNT = "linkerd-service-mirror-remote-access-default"
REMOTE_ACCESS_VALUE = "remoteMirrorServiceAccountName"
# The control plane's destination controller: it reads a Link's credentials for pod-to-pod exports.
DESTINATION_DEPLOYMENT = "linkerd-destination"
# Linkerd's docs: the anchor outlives the issuer; `linkerd check` warns under 60 days left.
TRUST_ANCHOR_VALIDITY_HOURS = 87600
ISSUER_VALIDITY_HOURS = 8760
# `linkerd check` warns under 60 days left: renew before it would.
ISSUER_RENEW_BEFORE_DAYS = 60
# Each further cluster's issuer lives this much shorter, so no two are due on the same day.
ISSUER_STAGGER_DAYS = 90


def gateway_identity(service_account: str, namespace: str, trust_domain: str) -> str:
    """The TLS identity Linkerd gives a meshed workload's service account."""
    return f"{service_account}.{namespace}.serviceaccount.identity.linkerd.{trust_domain}"


def remote_access_account(generation: int) -> str:
    """The target's remote-access account for a `linkCredentials` generation: 0 is upstream's default."""
    return REMOTE_ACCESS_ACCOUNT if generation == 0 else REMOTE_ACCESS_ACCOUNT.replace("-default", f"-{generation}")


def trust_anchor_common_name(trust_domain: str) -> str:
    return f"root.linkerd.{trust_domain}"


def issuer_common_name(trust_domain: str) -> str:
    # The identity controller only accepts an issuer with exactly this name.
    return f"identity.linkerd.{trust_domain}"


# --- Edge Stack / Emissary (aes.yaml, emissary charts) --------------------------------------------
ADMIN_PORT = 8877
READY_CHECK_PATH = "/ambassador/v0/check_ready"
HTTP_LISTENER_PORT = 8080
HTTPS_LISTENER_PORT = 8443
# Ports Edge Stack terminates itself; its proxy must leave them alone (the page's --skip-inbound-ports).
EDGE_STACK_PUBLIC_PORTS = (80, 443)
PROBE_SERVICE_PORT = 80
DEFAULT_PROBE_PATH = "/-/ambassador/ready"
DEFAULT_PROBE_PERIOD_SECONDS = 3
MODULE_NAME = "ambassador"
HEALTH_MAPPING_NAME = "public-health-check"
GATEWAY_HOST_NAME = "linkerd-host"

# --- The page's demo application --------------------------------------------------------------
QOTM_NAME = "qotm"
QOTM_IMAGE = "docker.io/datawire/qotm:1.7"
QOTM_PORT_NAME = "http-api"
QOTM_CONTAINER_PORT = 5000
QOTM_SERVICE = "qotm-linkerd2"
QOTM_SERVICE_PORT = 80
QOTM_MAPPING = "linkerd2-qotm"
QOTM_PREFIX = "/qotm-linkerd2/"

# --- This program's own marks ----------------------------------------------------------------
# On every namespace the program creates: who made it, so that a namespace made by someone else is never taken over.
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "aes-linkerd2"
OWNER_STACK_ANNOTATION = "aes-linkerd2.io/stack"
# On the source's destination pod template: the Link credentials' generation it must read (a new one rolls it).
LINK_CREDENTIALS_ANNOTATION = "aes-linkerd2.io/link-credentials"
# On the pod templates of the meshed workloads the program restarts when a trust rotation changes the roots:
# the anchors the roots carry ("0 1"). A new value rolls the pods, whose proxies then read the new roots.
TRUST_ANCHORS_ANNOTATION = "aes-linkerd2.io/trust-anchors"
# The field manager of that annotation on workloads the program does not own (it owns nothing else there).
RESTART_FIELD_MANAGER = "aes-linkerd2-restart"

# --- Pulumi (pulumi-kubernetes annotations) ----------------------------------------------------
SKIP_AWAIT_ANNOTATION = "pulumi.com/skipAwait"
PATCH_FIELD_MANAGER_ANNOTATION = "pulumi.com/patchFieldManager"


@dataclass(frozen=True, kw_only=True)
class HelmChart:
    """One chart of a release, published as an OCI artifact (chart version = the release's version)."""

    name: str  # the chart's own name (Chart.yaml), checked in a local chart
    reference: str  # oci://host/repository, what `helm pull` takes
    release: str  # the release name `helm template` renders with (it names the objects)
    namespace: str  # the release namespace, as the release notes install it

    def cache_name(self, version: str) -> str:
        """Where `helm pull` leaves it in the cache's reference/."""
        return f"charts/{self.name}-{version}.tgz"


@dataclass(frozen=True, kw_only=True)
class ChartRelease:
    """A release installed from two charts, the CRDs first."""

    crds: HelmChart
    app: HelmChart


@dataclass(frozen=True, kw_only=True)
class EdgeStackProduct:
    """One installable product of a line: where its manifests are and what they name."""

    name: str
    versions: tuple[str, ...]  # the first is the default
    crds_url: str  # "{version}" is replaced
    manifest_url: str
    # Where each lands in the project's cache (reference/), "{version}" replaced likewise.
    crds_cache: str
    manifest_cache: str
    namespace: str
    deployment: str
    service: str
    service_account: str
    needs_license: bool = False
    license_secret: str | None = None
    license_secret_key: str | None = None
    # Versions installed from their Helm charts instead of release YAML (support/charts.py renders them).
    charts: Mapping[str, ChartRelease] = field(default_factory=dict)

    def crds_location(self, version: str) -> str:
        """Where `edgeStackCrds` points unless set: the release's CRD manifest URL, or its CRD chart."""
        release = self.charts.get(version)
        return release.crds.reference if release else self.crds_url.format(version=version)

    def manifest_location(self, version: str) -> str:
        """Where `edgeStackManifest` points unless set: the release's manifest URL, or its main chart."""
        release = self.charts.get(version)
        return release.app.reference if release else self.manifest_url.format(version=version)


@dataclass(frozen=True, kw_only=True)
class VersionLine:
    name: str
    summary: str
    linkerd_versions: tuple[str, ...]  # the first is the default
    # 2.12+ installs CRDs with `install --crds`; before that one `install` did both.
    separate_crds: bool
    crds_args: tuple[str, ...]
    install_args: tuple[str, ...]
    # Objects of the render this program does not apply, keyed by `Kind/namespace/name`.
    dropped_objects: tuple[str, ...]
    # Fields the CLI fills with fresh random material at every render (webhook certificates and
    # what hashes them), keyed by `Kind/namespace/name`: kept as first applied, or every preview
    # would show a change and every `up` would restart the control plane.
    generated_fields: Mapping[str, tuple[str, ...]]
    # Whether `multicluster install` renders without a cluster (2.8's reads linkerd-config from it).
    multicluster_offline: bool
    # The issuer Secret's scheme: `kubernetes.io/tls` (an external issuer, as cert-manager's) where
    # the identity controller reads it; 2.8's CLI renders an external issuer only against a live
    # cluster of its time, so that line keeps Linkerd's own format (crt.pem, key.pem).
    issuer_scheme: str
    multicluster_install_args: tuple[str, ...]
    # Per-link service mirrors declared by the source's multicluster install (the link-gen era).
    link_controllers_in_install: bool
    link_command: tuple[str, ...]
    link_names_gateway: bool
    multicluster_check: tuple[str, ...]
    export_by_label: bool
    # Exports in remote-discovery and federated modes, and Links without a gateway (link-gen --gateway=false).
    link_modes: bool
    # Whether `inject` can decide the annotations offline; 2.8's reads the live control plane's config
    # (offline it insists on --disable-identity, which refuses --require-identity-on-inbound-ports).
    inject_offline: bool
    ambassador_api: str
    needs_listeners: bool
    mapping_hostname: str | None
    default_product: str
    edge_stack: Mapping[str, EdgeStackProduct]
    max_kubernetes: tuple[int, int] | None = None
    min_kubernetes: tuple[int, int] | None = None

    def supports_kubernetes(self, version: tuple[int, int]) -> bool:
        too_new = self.max_kubernetes is not None and version > self.max_kubernetes
        too_old = self.min_kubernetes is not None and version < self.min_kubernetes
        return not (too_new or too_old)

    @property
    def kubernetes_limit(self) -> str:
        parts = []
        if self.max_kubernetes:
            parts.append(f"needs Kubernetes {self.max_kubernetes[0]}.{self.max_kubernetes[1]} or older")
        if self.min_kubernetes:
            parts.append(f"needs Kubernetes {self.min_kubernetes[0]}.{self.min_kubernetes[1]} or newer")
        return " and ".join(parts)


def _webhook_material(
    secrets: tuple[str, ...], webhooks: tuple[str, ...], api_services: tuple[str, ...]
) -> dict[str, tuple[str, ...]]:
    fields: dict[str, tuple[str, ...]] = {f"Secret/{CONTROL_PLANE_NAMESPACE}/{name}": ("data",) for name in secrets}
    fields.update(dict.fromkeys(webhooks, ("webhooks[*].clientConfig.caBundle",)))
    fields.update({f"APIService/{name}": ("spec.caBundle",) for name in api_services})
    return fields


PAGE = VersionLine(
    name="linkerd-2.8",
    summary="The page's own releases: Linkerd stable-2.8.1, Edge Stack 1.14.4, getambassador.io/v2",
    linkerd_versions=("stable-2.8.1",),
    separate_crds=False,
    crds_args=(),
    # The heartbeat CronJob's schedule is "now + 10 minutes": new at every render.
    install_args=("--disable-heartbeat",),
    dropped_objects=(),
    generated_fields=_webhook_material(
        ("linkerd-proxy-injector-tls", "linkerd-sp-validator-tls", "linkerd-tap-tls"),
        (
            "MutatingWebhookConfiguration/linkerd-proxy-injector-webhook-config",
            "ValidatingWebhookConfiguration/linkerd-sp-validator-webhook-config",
        ),
        ("v1alpha1.tap.linkerd.io",),
    ),
    multicluster_offline=False,
    issuer_scheme="linkerd.io/tls",
    multicluster_install_args=("--gateway=false",),
    link_controllers_in_install=False,
    link_command=("multicluster", "link"),
    link_names_gateway=False,
    multicluster_check=("check", "--multicluster"),
    export_by_label=False,
    link_modes=False,
    inject_offline=False,
    ambassador_api="getambassador.io/v2",
    needs_listeners=False,
    mapping_hostname=None,
    default_product="edge-stack",
    edge_stack={
        "edge-stack": EdgeStackProduct(
            name="edge-stack",
            versions=("1.14.4",),
            crds_url="https://app.getambassador.io/yaml/ambassador-docs/{version}/aes-crds.yaml",
            manifest_url="https://app.getambassador.io/yaml/ambassador-docs/{version}/aes.yaml",
            crds_cache="emissary/aes-crds.v{version}.yaml",
            manifest_cache="emissary/aes.v{version}.yaml",
            namespace="ambassador",
            deployment="ambassador",
            service="ambassador",
            service_account="ambassador",
        ),
    },
    # aes-crds.yaml 1.x and Linkerd 2.8 use apiextensions.k8s.io/v1beta1, gone in Kubernetes 1.22.
    max_kubernetes=(1, 21),
)

# Emissary 4's two charts (its release notes: `helm install` from ghcr.io, the CRDs first).
EMISSARY_CHARTS = ChartRelease(
    crds=HelmChart(
        name="emissary-crds-chart",
        reference="oci://ghcr.io/emissary-ingress/emissary-crds-chart",
        release="emissary-crds",
        namespace="emissary-system",
    ),
    app=HelmChart(
        name="emissary-ingress",
        reference="oci://ghcr.io/emissary-ingress/emissary-ingress",
        release="emissary-ingress",
        namespace="emissary",
    ),
)

CURRENT = VersionLine(
    name="current",
    summary="Today's releases: Linkerd edge-26.8.3 (2.20+), Emissary 4.1 (or 3.9) / Edge Stack 3.12, getambassador.io/v3alpha1",
    linkerd_versions=("edge-26.8.3",),
    separate_crds=True,
    # `linkerd check` fails without the Gateway API CRDs; offline, the CLI adds them only when told.
    crds_args=("--set", "installGatewayAPI=true"),
    install_args=("--disable-heartbeat",),
    # Only `linkerd upgrade` reads it, and it would carry the issuer key inside an opaque blob.
    dropped_objects=(f"Secret/{CONTROL_PLANE_NAMESPACE}/linkerd-config-overrides",),
    generated_fields={
        **_webhook_material(
            ("linkerd-proxy-injector-k8s-tls", "linkerd-sp-validator-k8s-tls", "linkerd-policy-validator-k8s-tls"),
            (
                "MutatingWebhookConfiguration/linkerd-proxy-injector-webhook-config",
                "ValidatingWebhookConfiguration/linkerd-sp-validator-webhook-config",
                "ValidatingWebhookConfiguration/linkerd-policy-validator-webhook-config",
            ),
            (),
        ),
        **{
            f"Deployment/{CONTROL_PLANE_NAMESPACE}/{name}": ('spec.template.metadata.annotations["checksum/config"]',)
            for name in ("linkerd-proxy-injector", DESTINATION_DEPLOYMENT)
        },
    },
    multicluster_offline=True,
    issuer_scheme="kubernetes.io/tls",
    multicluster_install_args=("--gateway=false",),
    link_controllers_in_install=True,
    link_command=("multicluster", "link-gen"),
    link_names_gateway=True,
    multicluster_check=("multicluster", "check"),
    export_by_label=True,
    link_modes=True,
    inject_offline=True,
    ambassador_api="getambassador.io/v3alpha1",
    needs_listeners=True,
    mapping_hostname="*",
    # Emissary needs no licence (Edge Stack 3.8+ does): the line installs with no account anywhere.
    default_product="emissary",
    edge_stack={
        "edge-stack": EdgeStackProduct(
            name="edge-stack",
            versions=("3.12.12",),
            crds_url="https://app.getambassador.io/yaml/edge-stack/{version}/aes-crds.yaml",
            manifest_url="https://app.getambassador.io/yaml/edge-stack/{version}/aes.yaml",
            crds_cache="edge-stack/aes-crds.v{version}.yaml",
            manifest_cache="edge-stack/aes.v{version}.yaml",
            namespace="ambassador",
            deployment="edge-stack",
            service="edge-stack",
            service_account="edge-stack",
            needs_license=True,
            # The name Edge Stack reads by default (AMBASSADOR_AES_SECRET_NAME), in its own namespace.
            license_secret="ambassador-edge-stack",
            license_secret_key="license-key",
        ),
        "emissary": EdgeStackProduct(
            name="emissary",
            # 4.x publishes no release YAML, only its two charts; 3.9.1 stays selectable.
            versions=("4.1.0", "3.9.1"),
            crds_url="https://app.getambassador.io/yaml/emissary/{version}/emissary-crds.yaml",
            manifest_url="https://app.getambassador.io/yaml/emissary/{version}/emissary-emissaryns.yaml",
            crds_cache="emissary/emissary-crds.v{version}.yaml",
            manifest_cache="emissary/emissary-emissaryns.v{version}.yaml",
            namespace="emissary",
            deployment="emissary-ingress",
            service="emissary-ingress",
            service_account="emissary-ingress",
            charts={"4.1.0": EMISSARY_CHARTS},
        ),
    },
    # Linkerd edge-26.x's own minimum (its CRD chart says kubeVersion >=1.31).
    min_kubernetes=(1, 31),
)

VERSION_LINES: Mapping[str, VersionLine] = {line.name: line for line in (PAGE, CURRENT)}
DEFAULT_LINE = CURRENT.name


# --- What the project fetches: the catalogue -------------------------------------------------------
# The sha256 of the published release files the project knows, by URL. Files without one here (Edge
# Stack 3.12.12's, the linkerd CLIs) are pinned by the lock file at their first verified fetch.
PUBLISHED_SHA256: Mapping[str, str] = {
    "https://app.getambassador.io/yaml/ambassador-docs/1.14.4/aes-crds.yaml": (
        "a5f6f631494f4c086d63a8f7f840e883d7941d4ebd0717d27aac7ca33d089c15"
    ),
    "https://app.getambassador.io/yaml/ambassador-docs/1.14.4/aes.yaml": (
        "66eea3338d07835ab46217859d19c53e42ef1714ebbe767d67012607b88bf08c"
    ),
    "https://app.getambassador.io/yaml/emissary/3.9.1/emissary-crds.yaml": (
        "4ee02280402b80a3de31c7c5ea968f3389752719daf276c73aa211916f2afea4"
    ),
    "https://app.getambassador.io/yaml/emissary/3.9.1/emissary-emissaryns.yaml": (
        "a3e3ab6cf7c0ed1e13cc135ee1b7d259927973fb2fd012730820e2ca92ec1082"
    ),
}


@dataclass(frozen=True, kw_only=True)
class ReleaseFile:
    """One release manifest: where its release publishes it, where it lands in the cache, its digest if known."""

    title: str
    url: str
    cache_name: str  # relative to the cache's reference/
    sha256: str | None


def edge_stack_files(product: EdgeStackProduct, version: str) -> tuple[ReleaseFile, ReleaseFile]:
    """The CRD manifest and the main manifest of one product release."""

    def entry(what: str, url: str, cache: str) -> ReleaseFile:
        url = url.format(version=version)
        return ReleaseFile(
            title=f"{product.name} {version} {what}",
            url=url,
            cache_name=cache.format(version=version),
            sha256=PUBLISHED_SHA256.get(url),
        )

    return entry("CRDs", product.crds_url, product.crds_cache), entry("manifest", product.manifest_url, product.manifest_cache)


def release_manifests() -> tuple[ReleaseFile, ...]:
    """Every release manifest of every pinned product release of every line."""
    return tuple(
        file
        for line in VERSION_LINES.values()
        for product in line.edge_stack.values()
        for version in product.versions
        if version not in product.charts
        for file in edge_stack_files(product, version)
    )


def release_manifest(url: str) -> ReleaseFile | None:
    """The catalogue's entry for `url`, or None."""
    return next((file for file in release_manifests() if file.url == url), None)


LINKERD_RELEASES = "https://github.com/linkerd/linkerd2/releases/download"
# Releases published before the CLI assets carried an architecture (2.9 added ARM builds): their
# x86-64 Linux CLI is plain `-linux`.
LINKERD_UNSUFFIXED_LINUX = frozenset({"stable-2.8.1"})


@dataclass(frozen=True, kw_only=True)
class LinkerdCliAsset:
    """A linkerd release's CLI for one OS and architecture, and the release's own checksum file of it."""

    version: str
    url: str

    @property
    def checksum_url(self) -> str:
        return f"{self.url}.sha256"


def linkerd_versions() -> tuple[str, ...]:
    """Every pinned linkerd release of every line."""
    return tuple(dict.fromkeys(version for line in VERSION_LINES.values() for version in line.linkerd_versions))


def linkerd_cli(version: str, system: str | None = None, machine: str | None = None) -> LinkerdCliAsset:
    """The release asset as linkerd's install script names it (run.linkerd.io/install), for this machine by default."""
    system = (system or platform.system()).lower()
    machine = (machine or platform.machine()).lower()
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine)
    if arch is None:
        arch = "arm64" if machine.startswith("armv8") else "arm" if machine.startswith("arm") else machine
    if system == "windows":
        name = "windows.exe"
    elif arch == "amd64" and (system == "darwin" or version in LINKERD_UNSUFFIXED_LINUX):
        name = system
    else:
        name = f"{system}-{arch}"
    return LinkerdCliAsset(version=version, url=f"{LINKERD_RELEASES}/{version}/linkerd2-cli-{version}-{name}")
