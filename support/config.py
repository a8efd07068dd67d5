"""A stack's configuration parsed into its typed model (support/config_model.py), refused before any resource exists.

`load` is a pure function of the config's values (support/config_sources.py: the running program's, or
a stack file's as the driver reads it): no cluster, no file but Pulumi.yaml. Here the keys both roles
read; each role's own in support/config_target.py and config_source.py, a value's shape (and the Reader)
in config_values.py. What needs the outside
world is checked elsewhere, before the first registration: the clusters in support/clusters.py, the
stacks' outputs and the manifests in support/stack_checks.py.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

import pulumi
import yaml

from support import config_source, config_target, tools, upstream
from support import config_values as values
from support.config_model import (
    ClusterSettings,
    EdgeStackSettings,
    GatewaySettings,
    LinkerdSettings,
    Role,
    SourceRole,
    StackConfig,
    TargetRole,
    Tls,
    WorkloadSettings,
)
from support.config_sources import ConfigSource, RuntimeSource
from support.config_values import Reader
from support.errors import ConfigError
from support.project import PROJECT, PROJECT_FILE, SECRET_SHOWN

# Version lines under their old names.
RENAMED_LINES = {"page": upstream.PAGE.name}

_KUBERNETES_VERSION = re.compile(r"^v?(\d+)\.(\d+)(\.\d+)?$")
# Enough for what ACME and the config need; no quotes, spaces or shell syntax.
_EMAIL = re.compile(r"^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})+$")
# A URL path of unreserved characters: it becomes a Mapping prefix and an annotation.
_URL_PATH = re.compile(r"^/[A-Za-z0-9._~/-]{0,200}$")

# Namespaces that belong to Kubernetes, Linkerd or Edge Stack: meshing or creating them is not this program's business.
RESERVED_NAMESPACES = frozenset(
    {
        "kube-system",
        "kube-public",
        "kube-node-lease",
        upstream.CONTROL_PLANE_NAMESPACE,
        upstream.MULTICLUSTER_NAMESPACE,
        "linkerd-viz",
        "linkerd-jaeger",
        *(product.namespace for line in upstream.VERSION_LINES.values() for product in line.edge_stack.values()),
    }
)
# Namespaces every cluster has: never created (and so never deleted) by this program.
BUILTIN_NAMESPACES = frozenset({"default"})
# Keys the program reads that Pulumi.yaml does not declare: secrets, and `qotm`, whose default depends on the role.
UNDECLARED_KEYS = frozenset({"edgeStackLicenseKey", "tlsCertificate", "tlsPrivateKey", "qotm"})


def known_keys() -> frozenset[str]:
    """Every key the program reads: those Pulumi.yaml declares and the undeclared ones."""
    project = yaml.safe_load(PROJECT_FILE.read_text(encoding="utf-8"))
    return frozenset(project.get("config") or {}) | UNDECLARED_KEYS


def check_keys(source: ConfigSource, known: frozenset[str]) -> None:
    """Refuse a key the program does not read (a typo would otherwise be ignored), suggesting the nearest."""
    for key in source.names():
        if key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=1)
            hint = f"did you mean {close[0]}?" if close else "Pulumi.yaml declares the keys"
            value = SECRET_SHOWN if source.is_secret(key) else source.get(key)
            raise ConfigError(key, value, f"is not a key of {PROJECT}; {hint}")


def _kubernetes_version(key: str, raw: str | None) -> tuple[int, int] | None:
    if raw is None:
        return None
    match = _KUBERNETES_VERSION.fullmatch(raw)
    if not match:
        raise ConfigError(key, raw, "must look like 1.34 or v1.34.2")
    return int(match.group(1)), int(match.group(2))


# Ports the gateway port must not take: Edge Stack's own (public, listeners, admin) serve other traffic.
_EDGE_STACK_PORTS = (
    *upstream.EDGE_STACK_PUBLIC_PORTS,
    upstream.HTTP_LISTENER_PORT,
    upstream.HTTPS_LISTENER_PORT,
    upstream.ADMIN_PORT,
)
# The probe reaches Edge Stack's plain-HTTP listener, where the health Mapping answers.
_PROBE_TARGET_PORTS = (upstream.HTTP_LISTENER_PORT,)
# Keys only one role reads: set on the other, they would be silently ignored.
_ROLE_KEYS = {
    Role.TARGET: ("gatewayHostname", "exportedServices", "linkCredentials"),
    Role.SOURCE: (
        "targetStack",
        "targetContext",
        "targetKubeconfig",
        "targetClusterName",
        "gatewayAddresses",
        "targetApiServerAddress",
        "flatNetwork",
    ),
}
# What Pulumi.yaml's defaults hand a stack that did not set a role key: as good as unset.
_UNSET = (None, "[]", "false", "0")


def _renew_before(days: int) -> int:
    # Beyond the issuer's lifetime, every `up` would re-issue it.
    longest = upstream.ISSUER_VALIDITY_HOURS // 24 - upstream.ISSUER_STAGGER_DAYS - 1
    if not 1 <= days <= longest:
        raise ConfigError("issuerRenewBeforeDays", days, f"must be between 1 and {longest} (issuers live a year)")
    return days


def load(source: ConfigSource | None = None) -> StackConfig:
    """Read and validate the whole stack config; raises ConfigError naming the first bad key.

    `source` defaults to the running program's config; the driver passes a stack file's values. Pure:
    the clusters the config names are checked by `support.clusters.check_stack`.
    """
    source = source or RuntimeSource()
    check_keys(source, known_keys())
    read = Reader(source)
    role = _role(read)
    line = version_line(read)
    kubeconfig = read.path("kubeconfig")
    context = values.word("context", read.required("context"))
    _kubernetes_version_fits(read, line)
    version = linkerd_version(read, line)
    product = _licensed_product(read, line)
    workloads = _workloads(read, role)
    tls = _tls(read)
    trust_domain = _trust_domain(read.text("trustDomain", upstream.DEFAULT_TRUST_DOMAIN) or "")
    cluster_name = values.cluster_name("clusterName", read.text("clusterName", source.stack) or "")
    cluster = ClusterSettings(name=cluster_name, context=context, kubeconfig=kubeconfig)
    return StackConfig(
        line=line,
        cluster=cluster,
        kubectl=read.path("kubectl", "kubectl") or "",
        linkerd=_linkerd(read, version, trust_domain),
        edge_stack=_edge_stack(read, product, tls),
        gateway=_probe_path_free(_gateway(read), workloads),
        workloads=workloads,
        role=_role_settings(read, role=role, workloads=workloads, cluster=cluster, tls=tls, line=line),
    )


def version_line(read: Reader) -> upstream.VersionLine:
    """`versionLine`: the program's and the driver's one reading of it (an unknown line is refused, never defaulted)."""
    line_name = read.text("versionLine", upstream.DEFAULT_LINE) or ""
    if line_name in RENAMED_LINES:
        raise ConfigError("versionLine", line_name, f"was renamed {RENAMED_LINES[line_name]!r}: set that")
    return upstream.VERSION_LINES[values.one_of("versionLine", line_name, list(upstream.VERSION_LINES))]


def linkerd_version(read: Reader, line: upstream.VersionLine) -> str:
    """`linkerdVersion`: one of the line's releases, the line's first by default."""
    return values.one_of("linkerdVersion", read.text("linkerdVersion", line.linkerd_versions[0]) or "", line.linkerd_versions)


def edge_stack_product(read: Reader, line: upstream.VersionLine) -> tuple[upstream.EdgeStackProduct, str]:
    """`edgeStackProduct` and `edgeStackVersion`: the product and its pinned release."""
    product_name = values.one_of(
        "edgeStackProduct", read.text("edgeStackProduct", line.default_product) or "", list(line.edge_stack)
    )
    product = line.edge_stack[product_name]
    return product, values.one_of("edgeStackVersion", read.text("edgeStackVersion", product.versions[0]) or "", product.versions)


def _kubernetes_version_fits(read: Reader, line: upstream.VersionLine) -> None:
    raw = read.text("kubernetesVersion")
    kubernetes_version = _kubernetes_version("kubernetesVersion", raw)
    if kubernetes_version is not None and not line.supports_kubernetes(kubernetes_version):
        raise ConfigError("kubernetesVersion", raw, f"version line '{line.name}' cannot install on it: {line.kubernetes_limit}")


def _linkerd(read: Reader, version: str, trust_domain: str) -> LinkerdSettings:
    return LinkerdSettings(
        version=version,
        cli=tools.linkerd_cli(read.path("linkerdCli"), version),
        ha=read.boolean("linkerdHa", True),
        trust_domain=trust_domain,
        issuer_renew_before_days=_renew_before(read.integer("issuerRenewBeforeDays", upstream.ISSUER_RENEW_BEFORE_DAYS)),
    )


@dataclass(frozen=True)
class _Product:
    product: upstream.EdgeStackProduct
    version: str
    license_key: pulumi.Output[str] | None


def _licensed_product(read: Reader, line: upstream.VersionLine) -> _Product:
    """The product, its release and its licence key, which Edge Stack needs and Emissary refuses."""
    product, version = edge_stack_product(read, line)
    license_key = read.secret("edgeStackLicenseKey")
    if license_key is not None and product.license_secret is None:
        raise ConfigError(
            "edgeStackLicenseKey",
            SECRET_SHOWN,
            f"{product.name} {version} takes no licence key; remove it, or set edgeStackProduct: edge-stack "
            f"(the {line.name} line's default product is {line.default_product})",
        )
    if product.needs_license and license_key is None:
        raise ConfigError(
            "edgeStackLicenseKey",
            None,
            f"{product.name} {version} needs a licence token: "
            "`pulumi config set --secret edgeStackLicenseKey <token>`, or use edgeStackProduct: emissary",
        )
    return _Product(product, version, license_key)


def _edge_stack(read: Reader, chosen: _Product, tls: Tls | None) -> EdgeStackSettings:
    product, version = chosen.product, chosen.version
    return EdgeStackSettings(
        product=product,
        version=version,
        crds=read.word("edgeStackCrds", product.crds_location(version)) or "",
        manifest=read.word("edgeStackManifest", product.manifest_location(version)) or "",
        license_key=chosen.license_key,
        add_linkerd_headers=read.boolean("addLinkerdHeaders", True),
        tls=tls,
        helm=read.path("helm"),
    )


# The identity controller's certificate names itself identity.linkerd.<trust domain>: an X.509
# common name holds at most 64 characters.
_COMMON_NAME_LIMIT = 64


def _trust_domain(value: str) -> str:
    values.dns_name("trustDomain", value)
    longest = _COMMON_NAME_LIMIT - len(upstream.issuer_common_name(""))
    if len(value) > longest:
        raise ConfigError(
            "trustDomain", value, f"is longer than {longest}: identity.linkerd.<trustDomain> is an X.509 common name"
        )
    return value


def _role_settings(
    read: Reader,
    *,
    role: Role,
    workloads: WorkloadSettings,
    cluster: ClusterSettings,
    tls: Tls | None,
    line: upstream.VersionLine,
) -> TargetRole | SourceRole:
    if role is Role.TARGET:
        return config_target.target(
            read, workloads, config_target.trust_anchor_rotation(role, read), cluster.name, tls, line=line
        )
    source = config_source.source(read, cluster, line)
    config_target.trust_anchor_rotation(role, read)  # refused on the source, which follows the target's step
    return source


def _role(read: Reader) -> Role:
    role = Role(values.one_of("role", read.required("role"), [r.value for r in Role]))
    for other in (r for r in Role if r is not role):
        for key in _ROLE_KEYS[other]:
            if read.text(key) not in _UNSET:
                reason = f"is read by the {other.value} stack only; remove it from this {role.value} stack"
                raise ConfigError(key, read.text(key), reason)
    return role


def _probe_path_free(gateway: GatewaySettings, workloads: WorkloadSettings) -> GatewaySettings:
    """The health Mapping's prefix must not take another Mapping's requests (Edge Stack routes the longest prefix)."""
    path = gateway.probe_path
    if path == "/":
        raise ConfigError("probePath", path, "would route every request no other Mapping takes to the ready check")
    if workloads.qotm and (path.startswith(upstream.QOTM_PREFIX) or path.rstrip("/") == upstream.QOTM_PREFIX.rstrip("/")):
        raise ConfigError("probePath", path, f"would take requests of QOTM's Mapping ({upstream.QOTM_PREFIX})")
    return gateway


# A gateway probed less often than hourly is not watched.
_PROBE_PERIOD_LIMIT = 3600


def _gateway(read: Reader) -> GatewaySettings:
    """gatewayPort, probePort, probeTargetPort, probePath, probePeriodSeconds, checked together."""
    gateway_port = values.port("gatewayPort", read.integer("gatewayPort", upstream.PROXY_INBOUND_PORT))
    probe_port = values.port("probePort", read.integer("probePort", upstream.PROBE_SERVICE_PORT))
    probe_target_port = values.port("probeTargetPort", read.integer("probeTargetPort", upstream.HTTP_LISTENER_PORT))
    if gateway_port in _EDGE_STACK_PORTS:
        raise ConfigError(
            "gatewayPort", gateway_port, f"is one of Edge Stack's own ports ({', '.join(map(str, _EDGE_STACK_PORTS))})"
        )
    for key, port in (("gatewayPort", gateway_port), ("probePort", probe_port)):
        if port in upstream.PROXY_OTHER_PORTS:
            proxy_ports = ", ".join(map(str, upstream.PROXY_OTHER_PORTS))
            raise ConfigError(key, port, f"is one of the Linkerd proxy's own ports ({proxy_ports})")
    if gateway_port == probe_port:
        raise ConfigError("gatewayPort", gateway_port, "equals probePort: the gateway and its probe need two ports")
    if probe_target_port not in _PROBE_TARGET_PORTS:
        raise ConfigError(
            "probeTargetPort",
            probe_target_port,
            f"Edge Stack serves plain HTTP only on {', '.join(map(str, _PROBE_TARGET_PORTS))}, where the probe must land",
        )
    probe_path = read.text("probePath", upstream.DEFAULT_PROBE_PATH) or ""
    if not probe_path.startswith("/"):
        raise ConfigError("probePath", probe_path, "must start with '/' (it is the health-check Mapping's prefix)")
    if not _URL_PATH.fullmatch(probe_path):
        raise ConfigError("probePath", probe_path, "must be a URL path of letters, digits and . _ ~ / - (at most 200)")
    probe_period = read.integer("probePeriodSeconds", upstream.DEFAULT_PROBE_PERIOD_SECONDS)
    if not 1 <= probe_period <= _PROBE_PERIOD_LIMIT:
        raise ConfigError("probePeriodSeconds", probe_period, f"must be between 1 and {_PROBE_PERIOD_LIMIT} (an hour)")
    return GatewaySettings(
        port=gateway_port,
        probe_port=probe_port,
        probe_target_port=probe_target_port,
        probe_path=probe_path,
        probe_period_seconds=probe_period,
    )


def _workloads(read: Reader, role: Role) -> WorkloadSettings:
    """meshedNamespaces, existingNamespaces, qotm, qotmNamespace and smokeTestUrl, checked together.

    Nothing is created that may already exist: a namespace is either ours (created, and deleted by
    `destroy`) or listed in existingNamespaces (only annotated); others' namespaces are refused.
    """
    meshed = _meshed_namespaces(read)
    existing = _existing_namespaces(read, meshed)
    qotm = read.boolean("qotm", role is Role.TARGET)
    qotm_namespace = values.label("qotmNamespace", read.text("qotmNamespace", meshed[0] if meshed else "default") or "")
    if qotm and qotm_namespace not in meshed:
        raise ConfigError(
            "qotmNamespace", qotm_namespace, f"must be one of meshedNamespaces ({', '.join(meshed)}) so QOTM is meshed"
        )
    smoke_test_url = read.text("smokeTestUrl")
    if smoke_test_url is not None:
        values.base_url("smokeTestUrl", smoke_test_url)
    return WorkloadSettings(
        meshed_namespaces=tuple(meshed),
        existing_namespaces=existing,
        qotm=qotm,
        qotm_namespace=qotm_namespace,
        smoke_test_url=smoke_test_url,
    )


def _meshed_namespaces(read: Reader) -> list[str]:
    meshed = [values.label("meshedNamespaces", ns) for ns in read.string_list("meshedNamespaces", ["default"])]
    if len(set(meshed)) != len(meshed):
        raise ConfigError("meshedNamespaces", meshed, "lists a namespace twice")
    for namespace in (ns for ns in meshed if ns in RESERVED_NAMESPACES):
        raise ConfigError(
            "meshedNamespaces", namespace, "belongs to Kubernetes, Linkerd or Edge Stack: it is not this program's to mesh"
        )
    return meshed


def _existing_namespaces(read: Reader, meshed: list[str]) -> frozenset[str]:
    existing = frozenset(values.label("existingNamespaces", ns) for ns in read.string_list("existingNamespaces", ["default"]))
    # The built-in `default` may stay listed (Pulumi.yaml's default) when it is not meshed.
    for namespace in sorted(existing - set(meshed) - BUILTIN_NAMESPACES):
        raise ConfigError(
            "existingNamespaces", namespace, f"is not one of meshedNamespaces ({', '.join(meshed) or 'none'}): nothing to patch"
        )
    for namespace in sorted(BUILTIN_NAMESPACES & (set(meshed) - existing)):
        raise ConfigError(
            "existingNamespaces",
            sorted(existing),
            f"must list {namespace!r}: every cluster has it, and a namespace this program creates, `destroy` deletes",
        )
    return existing


def _tls(read: Reader) -> Tls | None:
    hostname = read.text("tlsHostname")
    certificate, private_key = read.secret("tlsCertificate"), read.secret("tlsPrivateKey")
    acme_email = read.text("tlsAcmeEmail")
    if hostname is None:
        _no_tls_without_hostname(certificate=certificate, private_key=private_key, acme_email=acme_email)
        return None
    values.dns_name("tlsHostname", hostname)
    _one_tls_source(certificate, private_key, acme_email)
    return Tls(hostname=hostname, certificate=certificate, private_key=private_key, acme_email=acme_email)


def _no_tls_without_hostname(**values: object) -> None:
    keys = {"certificate": "tlsCertificate", "private_key": "tlsPrivateKey", "acme_email": "tlsAcmeEmail"}
    for name, value in values.items():
        if value is not None:
            raise ConfigError("tlsHostname", None, f"is required when {keys[name]} is set")


def _one_tls_source(certificate: object, private_key: object, acme_email: str | None) -> None:
    """A certificate with its key, or ACME: one of them, whole."""
    if (certificate is None) != (private_key is None):
        missing = "tlsPrivateKey" if private_key is None else "tlsCertificate"
        raise ConfigError(missing, None, "is required: tlsCertificate and tlsPrivateKey come together")
    if certificate is None and acme_email is None:
        raise ConfigError("tlsAcmeEmail", None, "is required when tlsHostname is set without tlsCertificate/tlsPrivateKey")
    if certificate is not None and acme_email is not None:
        raise ConfigError("tlsAcmeEmail", acme_email, "set either tlsAcmeEmail or tlsCertificate/tlsPrivateKey, not both")
    if acme_email is not None and not _EMAIL.fullmatch(acme_email):
        raise ConfigError("tlsAcmeEmail", acme_email, "must be an email address (name@example.com)")
