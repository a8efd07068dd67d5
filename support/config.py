"""A stack's configuration parsed into its typed model (support/config_model.py), refused before any resource exists.

`load` is a pure function of the config's values (support/config_sources.py: the running program's, or
a stack file's as the driver reads it): no cluster, no file but Pulumi.yaml. What needs the outside
world is checked elsewhere, before the first registration: the clusters in support/clusters.py, the
stacks' outputs and the manifests in support/stack_checks.py.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import re
from dataclasses import dataclass

import pulumi
import yaml

from support import tools, upstream
from support.certificates import RotationStep
from support.config_model import (
    ClusterSettings,
    EdgeStackSettings,
    ExportedService,
    ExportMode,
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
from support.errors import ConfigError
from support.project import PROJECT, PROJECT_FILE, SECRET_SHOWN

# Version lines under their old names.
RENAMED_LINES = {"page": upstream.PAGE.name}

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_KUBERNETES_VERSION = re.compile(r"^v?(\d+)\.(\d+)(\.\d+)?$")
_INTEGER = re.compile(r"^-?[0-9]{1,10}$")
# Enough for what ACME and the config need; no quotes, spaces or shell syntax.
_EMAIL = re.compile(r"^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})+$")
# http(s)://<host>[:port][/], the host a DNS name, an IPv4 address or a bracketed IPv6 address.
_BASE_URL = re.compile(r"^https?://(?P<host>[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(:(?P<port>[0-9]{1,5}))?/?$")
# A URL path of unreserved characters: it becomes a Mapping prefix and an annotation.
_URL_PATH = re.compile(r"^/[A-Za-z0-9._~/-]{0,200}$")
# organization/project/stack, project/stack or stack.
_STACK_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}(/[A-Za-z0-9_.-]{1,100}){0,2}$")
# A kube context or a manifest's URL or path: no spaces or control characters.
_WORD = re.compile(r"^[^\s\x00-\x1f\x7f]{1,4096}$")
# A file path or command name (linkerdCli, kubectl, kubeconfig): no spaces, quotes or shell syntax.
_PATH = re.compile(r"^[A-Za-z0-9_./+~@:=,-]{1,4096}$")

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


class Reader:
    """Typed access to a stack's config that names the key in every error."""

    def __init__(self, source: ConfigSource) -> None:
        self._source = source

    def text(self, key: str, default: str | None = None) -> str | None:
        value = self._source.get(key)
        if value is None or value == "":
            return default
        return value

    def required(self, key: str) -> str:
        value = self.text(key)
        if value is None:
            raise ConfigError(key, None, "is required; set it with `pulumi config set " + f"{key} <value>`")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        raw = self.text(key)
        if raw is None:
            return default
        if raw.lower() in ("true", "false"):
            return raw.lower() == "true"
        raise ConfigError(key, raw, "must be true or false")

    def integer(self, key: str, default: int) -> int:
        raw = self.text(key)
        if raw is None:
            return default
        if not _INTEGER.fullmatch(raw):
            raise ConfigError(key, raw, "must be an integer")
        return int(raw)

    def string_list(self, key: str, default: list[str]) -> list[str]:
        raw = self.text(key)
        if raw is None:
            return default
        # The Pulumi CLI passes arrays as JSON; JSON has no aliases to expand.
        try:
            value = json.loads(raw)
        except (ValueError, RecursionError):
            value = None
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise ConfigError(key, raw, "must be a list of strings")
        return value

    def word(self, key: str, default: str | None = None) -> str | None:
        """A context, URL or path: one word, no spaces or control characters."""
        value = self.text(key, default)
        if value is not None and not _WORD.fullmatch(value):
            raise ConfigError(key, value, "must be one word: no spaces or control characters")
        return value

    def path(self, key: str, default: str | None = None) -> str | None:
        """A file path or command name, as plain as the tools' own: it reaches command lines (quoted there)."""
        value = self.text(key, default)
        if value is not None and not _PATH.fullmatch(value):
            raise ConfigError(key, value, "must be a path or command name of letters, digits and _ . / + ~ @ : = , -")
        return value

    def secret(self, key: str) -> pulumi.Output[str] | None:
        value = self._source.get(key)
        if value in (None, ""):
            return None
        if not self._source.is_secret(key):
            # A plain value sits readable in the stack file and the state.
            raise ConfigError(key, "[not shown]", f"must be a secret: `pulumi config set --secret {key} <value>`")
        return pulumi.Output.secret(value)


def _port(key: str, value: int) -> int:
    if not 1 <= value <= 65535:
        raise ConfigError(key, value, "must be a port between 1 and 65535")
    return value


def _label(key: str, value: str) -> str:
    if not _DNS1123_LABEL.fullmatch(value):
        raise ConfigError(key, value, "must be a DNS-1123 label (lower-case letters, digits and '-', at most 63)")
    return value


def is_dns_name(value: str) -> bool:
    """A DNS-1123 subdomain: dot-separated labels, lower case, no trailing dot, at most 253 characters.

    The last label is not all digits: 300.1.1.1 is a mistyped address, not a name.
    """
    labels = value.split(".")
    return len(value) <= 253 and all(_DNS1123_LABEL.fullmatch(label) for label in labels) and not labels[-1].isdigit()


def _dns_name(key: str, value: str) -> str:
    if not is_dns_name(value):
        raise ConfigError(key, value, "must be a DNS name (lower-case labels of letters, digits and '-', no trailing dot)")
    return value


def _address(key: str, value: str) -> str:
    if not (_is_ip(value) or is_dns_name(value)):
        raise ConfigError(key, value, "each entry must be an IP address or a DNS name")
    if _is_ip(value) and ipaddress.ip_address(value).is_unspecified:
        raise ConfigError(key, value, "is the unspecified address: no gateway answers there")
    return value


def _base_url(key: str, value: str, what: str = "Edge Stack") -> str:
    """A base URL, strictly: it reaches a shell command line (quoted there too)."""
    match = _BASE_URL.fullmatch(value)
    if match:
        host, port = match.group("host"), match.group("port")
        host_ok = _is_ip(host[1:-1], version=6) if host.startswith("[") else is_dns_name(host.lower()) or _is_ip(host)
        if host_ok and (port is None or 1 <= int(port) <= 65535):
            return value
    raise ConfigError(key, value, f"must be http(s)://<host>[:port] of {what}")


def _is_ip(value: str, version: int | None = None) -> bool:
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return False
    return version is None or address.version == version


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


def _one_of(key: str, value: str, allowed: list[str] | tuple[str, ...]) -> str:
    if value not in allowed:
        raise ConfigError(key, value, f"is not known; use one of: {', '.join(allowed)}")
    return value


def _kubernetes_version(key: str, raw: str | None) -> tuple[int, int] | None:
    if raw is None:
        return None
    match = _KUBERNETES_VERSION.fullmatch(raw)
    if not match:
        raise ConfigError(key, raw, "must look like 1.34 or v1.34.2")
    return int(match.group(1)), int(match.group(2))


def _service_ref(key: str, value: str) -> tuple[str, str]:
    namespace, _, name = value.partition("/")
    if not name:
        raise ConfigError(key, value, "each entry must be <namespace>/<service>")
    return _label(key, namespace), _label(key, name)


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


def _word(key: str, value: str) -> str:
    if not _WORD.fullmatch(value):
        raise ConfigError(key, value, "must be one word: no spaces or control characters")
    return value


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
    context = _word("context", read.required("context"))
    _kubernetes_version_fits(read, line)
    version = linkerd_version(read, line)
    product = _licensed_product(read, line)
    workloads = _workloads(read, role)
    tls = _tls(read)
    trust_domain = _trust_domain(read.text("trustDomain", upstream.DEFAULT_TRUST_DOMAIN) or "")
    cluster_name = _cluster_name("clusterName", read.text("clusterName", source.stack) or "")
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
    return upstream.VERSION_LINES[_one_of("versionLine", line_name, list(upstream.VERSION_LINES))]


def linkerd_version(read: Reader, line: upstream.VersionLine) -> str:
    """`linkerdVersion`: one of the line's releases, the line's first by default."""
    return _one_of("linkerdVersion", read.text("linkerdVersion", line.linkerd_versions[0]) or "", line.linkerd_versions)


def edge_stack_product(read: Reader, line: upstream.VersionLine) -> tuple[upstream.EdgeStackProduct, str]:
    """`edgeStackProduct` and `edgeStackVersion`: the product and its pinned release."""
    product_name = _one_of("edgeStackProduct", read.text("edgeStackProduct", line.default_product) or "", list(line.edge_stack))
    product = line.edge_stack[product_name]
    return product, _one_of("edgeStackVersion", read.text("edgeStackVersion", product.versions[0]) or "", product.versions)


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
# Linkerd names the mirror of the target's gateway probe `probe-gateway-<cluster>`, a DNS label.
_PROBE_MIRROR_PREFIX = "probe-gateway-"
_DNS_LABEL_LIMIT = 63


def _trust_domain(value: str) -> str:
    _dns_name("trustDomain", value)
    longest = _COMMON_NAME_LIMIT - len(upstream.issuer_common_name(""))
    if len(value) > longest:
        raise ConfigError(
            "trustDomain", value, f"is longer than {longest}: identity.linkerd.<trustDomain> is an X.509 common name"
        )
    return value


def _cluster_name(key: str, value: str) -> str:
    _label(key, value)
    longest = _DNS_LABEL_LIMIT - len(_PROBE_MIRROR_PREFIX)
    if len(value) > longest:
        raise ConfigError(key, value, f"is longer than {longest}: Linkerd names the mirrored probe {_PROBE_MIRROR_PREFIX}<name>")
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
        return _target(read, workloads, trust_anchor_rotation(role, read), cluster.name, tls, line=line)
    source = _source(read, cluster, line)
    trust_anchor_rotation(role, read)  # refused on the source, which follows the target's step
    return source


def _role(read: Reader) -> Role:
    role = Role(_one_of("role", read.required("role"), [r.value for r in Role]))
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
    gateway_port = _port("gatewayPort", read.integer("gatewayPort", upstream.PROXY_INBOUND_PORT))
    probe_port = _port("probePort", read.integer("probePort", upstream.PROBE_SERVICE_PORT))
    probe_target_port = _port("probeTargetPort", read.integer("probeTargetPort", upstream.HTTP_LISTENER_PORT))
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
    qotm_namespace = _label("qotmNamespace", read.text("qotmNamespace", meshed[0] if meshed else "default") or "")
    if qotm and qotm_namespace not in meshed:
        raise ConfigError(
            "qotmNamespace", qotm_namespace, f"must be one of meshedNamespaces ({', '.join(meshed)}) so QOTM is meshed"
        )
    smoke_test_url = read.text("smokeTestUrl")
    if smoke_test_url is not None:
        _base_url("smokeTestUrl", smoke_test_url)
    return WorkloadSettings(
        meshed_namespaces=tuple(meshed),
        existing_namespaces=existing,
        qotm=qotm,
        qotm_namespace=qotm_namespace,
        smoke_test_url=smoke_test_url,
    )


def _meshed_namespaces(read: Reader) -> list[str]:
    meshed = [_label("meshedNamespaces", ns) for ns in read.string_list("meshedNamespaces", ["default"])]
    if len(set(meshed)) != len(meshed):
        raise ConfigError("meshedNamespaces", meshed, "lists a namespace twice")
    for namespace in (ns for ns in meshed if ns in RESERVED_NAMESPACES):
        raise ConfigError(
            "meshedNamespaces", namespace, "belongs to Kubernetes, Linkerd or Edge Stack: it is not this program's to mesh"
        )
    return meshed


def _existing_namespaces(read: Reader, meshed: list[str]) -> frozenset[str]:
    existing = frozenset(_label("existingNamespaces", ns) for ns in read.string_list("existingNamespaces", ["default"]))
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
    _dns_name("tlsHostname", hostname)
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


def _target(
    read: Reader,
    workloads: WorkloadSettings,
    rotation: RotationStep | None,
    cluster_name: str,
    tls: Tls | None,
    *,
    line: upstream.VersionLine,
) -> TargetRole:
    hostname = _dns_name("gatewayHostname", read.required("gatewayHostname"))
    if tls is not None and tls.hostname == hostname:
        raise ConfigError("tlsHostname", hostname, "equals gatewayHostname: two Hosts (redirect and insecure route) for one name")
    meshed = workloads.meshed_namespaces
    default_exports = [f"{workloads.qotm_namespace}/{upstream.QOTM_SERVICE}"] if workloads.qotm else []
    # An empty list (Pulumi.yaml's default) means the default: the QOTM service when QOTM is on.
    entries = _export_entries(read) or default_exports
    exported = tuple(_export(entry, line) for entry in entries)
    refs = [service.ref for service in exported]
    for ref, service in zip(refs, exported, strict=True):
        if refs.count(ref) > 1:
            raise ConfigError("exportedServices", ref, "is listed twice")
        if service.namespace not in meshed:
            raise ConfigError(
                "exportedServices",
                ref,
                f"is in namespace {service.namespace!r}, not one of meshedNamespaces ({', '.join(meshed)})",
            )
        _check_export(ref, service, workloads, cluster_name)
    return TargetRole(
        gateway_hostname=hostname,
        exported_services=exported,
        trust_anchor_rotation=rotation,
        link_credentials=_link_credentials(read, line),
    )


# Generations far beyond any rotation schedule; the account's name stays short.
_LINK_CREDENTIALS_LIMIT = 99999


def _link_credentials(read: Reader, line: upstream.VersionLine) -> int:
    """`linkCredentials`: which generation of remote-access account the Link's token comes from."""
    generation = read.integer("linkCredentials", 0)
    if not 0 <= generation <= _LINK_CREDENTIALS_LIMIT:
        raise ConfigError(
            "linkCredentials", generation, f"must be between 0 (upstream's default account) and {_LINK_CREDENTIALS_LIMIT}"
        )
    if generation and not line.link_controllers_in_install:
        raise ConfigError(
            "linkCredentials",
            generation,
            f"version line {line.name} links with upstream's default account only; rotating it needs the current line",
        )
    return generation


_EXPORT_SHAPE = "<namespace>/<service>, or a one-entry mapping <namespace>/<service>: <mode>"
_MODES = tuple(mode.value for mode in ExportMode)


def _export_entries(read: Reader) -> list[object]:
    """exportedServices as listed: each a string, or a mapping of one service to its mode."""
    raw = read.text("exportedServices")
    if raw is None:
        return []
    # The Pulumi CLI passes arrays as JSON; JSON has no aliases to expand.
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        value = None
    if not isinstance(value, list):
        raise ConfigError("exportedServices", raw, f"must be a list; each entry {_EXPORT_SHAPE}")
    return value


def _export(entry: object, line: upstream.VersionLine) -> ExportedService:
    """One entry of exportedServices: the service, and how the source reaches it (gateway unless said)."""
    if isinstance(entry, str):
        return ExportedService(*_service_ref("exportedServices", entry))
    if not isinstance(entry, dict) or len(entry) != 1:
        raise ConfigError("exportedServices", entry, f"each entry must be {_EXPORT_SHAPE}")
    [(ref, mode)] = entry.items()
    if not isinstance(mode, str) or mode not in _MODES:
        raise ConfigError("exportedServices", entry, f"mode must be one of {', '.join(_MODES)}")
    if mode != ExportMode.GATEWAY and not line.link_modes:
        raise ConfigError(
            "exportedServices",
            entry,
            f"version line {line.name} (Linkerd {line.linkerd_versions[0]}) has only the gateway mode; "
            f"{mode} needs the current line",
        )
    return ExportedService(*_service_ref("exportedServices", ref), ExportMode(mode))


def _check_export(ref: str, service: ExportedService, workloads: WorkloadSettings, cluster_name: str) -> None:
    namespace, name = service.namespace, service.name
    if (namespace, name) == ("default", "kubernetes"):
        raise ConfigError("exportedServices", ref, "is the API server's own Service: exporting it would mirror the API server")
    if name == upstream.QOTM_SERVICE and not workloads.qotm and namespace == workloads.qotm_namespace:
        raise ConfigError("exportedServices", ref, "is QOTM's Service, and qotm is false: nothing would create it")
    # The service mirror names a federated service's one Service <service>-federated, the others <service>-<cluster>.
    federated = service.mode is ExportMode.FEDERATED
    mirror = upstream.FEDERATED_SERVICE.format(service="<service>") if federated else f"<service>-{cluster_name}"
    if len(mirror.replace("<service>", name)) > _DNS_LABEL_LIMIT:
        raise ConfigError(
            "exportedServices", ref, f"its mirror {mirror} would be longer than a Service name's {_DNS_LABEL_LIMIT}"
        )


def _source(read: Reader, cluster: ClusterSettings, line: upstream.VersionLine) -> SourceRole:
    context, kubeconfig, cluster_name = cluster.context, cluster.kubeconfig, cluster.name
    target_stack = read.required("targetStack")
    if not _STACK_NAME.fullmatch(target_stack):
        raise ConfigError("targetStack", target_stack, "must be a stack name: [organization/][project/]stack")
    target_context = _word("targetContext", read.required("targetContext"))
    if target_context == context:
        raise ConfigError("targetContext", target_context, "is the same context as `context`: the two stacks need two clusters")
    target_kubeconfig = read.path("targetKubeconfig", kubeconfig)
    addresses = tuple(_address("gatewayAddresses", address) for address in read.string_list("gatewayAddresses", []))
    if len(set(addresses)) != len(addresses):
        raise ConfigError("gatewayAddresses", list(addresses), "lists an address twice")
    # The target's clusterName defaults to its stack name, so this one does too.
    target_cluster_name = _cluster_name("targetClusterName", read.text("targetClusterName", target_stack.split("/")[-1]) or "")
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
    return None if value is None else _base_url("targetApiServerAddress", value, "the target's API server")


TRUST_ANCHOR_ROTATION = "trustAnchorRotation"


def trust_anchor_rotation(role: Role, read: Reader) -> RotationStep | None:
    """`trustAnchorRotation`: the step of a trust anchor rotation this update does, if any (the target's)."""
    raw = read.text(TRUST_ANCHOR_ROTATION)
    if raw is None:
        return None
    if role is not Role.TARGET:
        raise ConfigError(
            TRUST_ANCHOR_ROTATION, raw, "is read by the target stack only (it owns the anchor); the source follows its step"
        )
    steps = [step.value for step in RotationStep]
    if raw not in steps:
        raise ConfigError(TRUST_ANCHOR_ROTATION, raw, f"must be one of {', '.join(steps)} (one `up` each, in this order)")
    return RotationStep(raw)
