"""The stack's configuration, read once into a typed model and validated before any resource exists."""

from __future__ import annotations

import os
import re
import socket
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import pulumi
import yaml

from components import upstream
from support import tools

PROJECT = "aes-linkerd2"
# The target signs an issuer for the cluster that links to it; the source reads it by this name.
PEER = "peer"

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_KUBERNETES_VERSION = re.compile(r"^v?(\d+)\.(\d+)(\.\d+)?$")


class ConfigError(pulumi.RunError):
    """A configuration value that cannot work; raised before the first resource is registered."""

    def __init__(self, key: str, value: object, reason: str) -> None:
        super().__init__(f"config {PROJECT}:{key} = {value!r}: {reason}")
        self.key = key
        self.value = value


class Role(StrEnum):
    SOURCE = "source"
    TARGET = "target"


@dataclass(frozen=True, kw_only=True)
class Tls:
    """TLS termination at Edge Stack: a certificate from config secrets, or ACME."""

    hostname: str
    certificate: pulumi.Output[str] | None = None
    private_key: pulumi.Output[str] | None = None
    acme_email: str | None = None


@dataclass(frozen=True, kw_only=True)
class StackConfig:
    role: Role
    line: upstream.VersionLine
    kubeconfig: str | None
    context: str
    cluster_name: str
    kubernetes_version: tuple[int, int] | None
    linkerd_cli: str
    kubectl: str
    linkerd_version: str
    linkerd_ha: bool
    trust_domain: str
    edge_stack: upstream.EdgeStackProduct
    edge_stack_version: str
    edge_stack_crds: str
    edge_stack_manifest: str
    edge_stack_license_key: pulumi.Output[str] | None
    add_linkerd_headers: bool
    gateway_port: int
    probe_port: int
    probe_target_port: int
    probe_path: str
    probe_period_seconds: int
    meshed_namespaces: tuple[str, ...]
    existing_namespaces: frozenset[str]
    qotm: bool
    qotm_namespace: str
    smoke_test_url: str | None
    tls: Tls | None
    # target only
    gateway_hostname: str | None = None
    exported_services: tuple[tuple[str, str], ...] = ()
    # source only
    target_stack: str = ""
    target_context: str = ""
    target_cluster_name: str = ""
    target_kubeconfig: str | None = None
    gateway_addresses: tuple[str, ...] = ()
    verify: bool = True

    @property
    def is_target(self) -> bool:
        return self.role is Role.TARGET


class _Reader:
    """Typed access to pulumi.Config that names the key in every error."""

    def __init__(self, config: pulumi.Config) -> None:
        self._config = config

    def text(self, key: str, default: str | None = None) -> str | None:
        value = self._config.get(key)
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
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(key, raw, "must be an integer") from None

    def string_list(self, key: str, default: list[str]) -> list[str]:
        raw = self.text(key)
        if raw is None:
            return default
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            value = None
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise ConfigError(key, raw, "must be a list of strings")
        return value

    def secret(self, key: str) -> pulumi.Output[str] | None:
        if self._config.get(key) in (None, ""):
            return None
        return self._config.require_secret(key)


def _port(key: str, value: int) -> int:
    if not 1 <= value <= 65535:
        raise ConfigError(key, value, "must be a port between 1 and 65535")
    return value


def _label(key: str, value: str) -> str:
    if not _DNS1123_LABEL.match(value):
        raise ConfigError(key, value, "must be a DNS-1123 label (lower-case letters, digits and '-', at most 63)")
    return value


def _one_of(key: str, value: str, allowed: list[str] | tuple[str, ...]) -> str:
    if value not in allowed:
        raise ConfigError(key, value, f"is not known; use one of: {', '.join(allowed)}")
    return value


def _kubernetes_version(key: str, raw: str | None) -> tuple[int, int] | None:
    if raw is None:
        return None
    match = _KUBERNETES_VERSION.match(raw)
    if not match:
        raise ConfigError(key, raw, "must look like 1.34 or v1.34.2")
    return int(match.group(1)), int(match.group(2))


def _service_ref(key: str, value: str) -> tuple[str, str]:
    namespace, _, name = value.partition("/")
    if not name:
        raise ConfigError(key, value, "each entry must be <namespace>/<service>")
    return _label(key, namespace), _label(key, name)


# Set by offline tools (the driver's `render`) that evaluate the program without any cluster.
OFFLINE_ENV = "AES_LINKERD2_OFFLINE"


def _kubeconfig_documents(kubeconfig: str | None) -> list[dict[str, Any]] | None:
    """The kubeconfig files kubectl would read, or None where there is none here."""
    paths = [kubeconfig] if kubeconfig else os.environ.get("KUBECONFIG", "").split(os.pathsep)
    paths = [p for p in paths if p] or [os.path.expanduser("~/.kube/config")]
    documents = []
    for path in paths:
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as handle:
                documents.append(yaml.safe_load(handle) or {})
    return documents or None


def _server(documents: list[dict[str, Any]], context: str) -> str | None:
    entries = {e.get("name"): e.get("context") or {} for d in documents for e in d.get("contexts") or []}
    clusters = {e.get("name"): e.get("cluster") or {} for d in documents for e in d.get("clusters") or []}
    return clusters.get(entries.get(context, {}).get("cluster"), {}).get("server")


def check_cluster(
    key: str, context: str, kubeconfig_key: str, kubeconfig: str | None, *, require_kubeconfig: bool = False
) -> None:
    """The context exists in the kubeconfig and its API server answers on TCP, before anything is planned.

    Skipped where OFFLINE_ENV is set (rendering without clusters).
    """
    if os.environ.get(OFFLINE_ENV):
        return
    if kubeconfig and not os.path.isfile(kubeconfig):
        raise ConfigError(kubeconfig_key, kubeconfig, "no such kubeconfig file")
    documents = _kubeconfig_documents(kubeconfig)
    if documents is None:
        if require_kubeconfig:
            raise ConfigError(key, context, "no kubeconfig found ($KUBECONFIG, ~/.kube/config) to look the context up in")
        return  # the provider reports a missing kubeconfig itself
    contexts = [e.get("name", "") for d in documents for e in d.get("contexts") or []]
    if context not in contexts:
        raise ConfigError(key, context, f"is not a context of the kubeconfig (it has: {', '.join(contexts) or 'none'})")
    server = _server(documents, context)
    if server:
        url = urllib.parse.urlparse(server)
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            socket.create_connection((url.hostname or "", port), timeout=5).close()
        except OSError as error:
            raise ConfigError(key, context, f"its API server {server} is unreachable ({error})") from None


def load(config: pulumi.Config | None = None) -> StackConfig:
    """Read and validate the whole stack config; raises ConfigError naming the first bad key."""
    read = _Reader(config or pulumi.Config(PROJECT))

    role = Role(_one_of("role", read.required("role"), [r.value for r in Role]))
    line_name = _one_of("versionLine", read.text("versionLine", upstream.DEFAULT_LINE) or "", list(upstream.VERSION_LINES))
    line = upstream.VERSION_LINES[line_name]

    kubeconfig = read.text("kubeconfig")
    context = read.required("context")
    check_cluster("context", context, "kubeconfig", kubeconfig)

    kubernetes_version = _kubernetes_version("kubernetesVersion", read.text("kubernetesVersion"))
    if kubernetes_version is not None and not line.supports_kubernetes(kubernetes_version):
        raise ConfigError(
            "kubernetesVersion",
            read.text("kubernetesVersion"),
            f"version line '{line.name}' cannot install on it: {line.kubernetes_limit}",
        )

    linkerd_version = _one_of(
        "linkerdVersion", read.text("linkerdVersion", line.linkerd_versions[0]) or "", line.linkerd_versions
    )
    product_name = _one_of("edgeStackProduct", read.text("edgeStackProduct", line.default_product) or "", list(line.edge_stack))
    product = line.edge_stack[product_name]
    edge_stack_version = _one_of("edgeStackVersion", read.text("edgeStackVersion", product.versions[0]) or "", product.versions)
    license_key = read.secret("edgeStackLicenseKey")
    if license_key is not None and product.license_secret is None:
        raise ConfigError(
            "edgeStackLicenseKey", "[secret]", f"{product.name} {edge_stack_version} takes no licence key; remove it"
        )
    if product.needs_license and license_key is None:
        raise ConfigError(
            "edgeStackLicenseKey",
            None,
            f"{product.name} {edge_stack_version} needs a licence token: "
            "`pulumi config set --secret edgeStackLicenseKey <token>`, or use edgeStackProduct: emissary",
        )

    gateway_port = _port("gatewayPort", read.integer("gatewayPort", upstream.PROXY_INBOUND_PORT))
    probe_port = _port("probePort", read.integer("probePort", upstream.PROBE_SERVICE_PORT))
    probe_target_port = _port("probeTargetPort", read.integer("probeTargetPort", upstream.HTTP_LISTENER_PORT))
    probe_path = read.text("probePath", upstream.DEFAULT_PROBE_PATH) or ""
    if not probe_path.startswith("/"):
        raise ConfigError("probePath", probe_path, "must start with '/' (it is the health-check Mapping's prefix)")
    probe_period = read.integer("probePeriodSeconds", upstream.DEFAULT_PROBE_PERIOD_SECONDS)
    if probe_period < 1:
        raise ConfigError("probePeriodSeconds", probe_period, "must be at least 1")

    meshed = [_label("meshedNamespaces", ns) for ns in read.string_list("meshedNamespaces", ["default"])]
    if len(set(meshed)) != len(meshed):
        raise ConfigError("meshedNamespaces", meshed, "lists a namespace twice")
    existing = frozenset(_label("existingNamespaces", ns) for ns in read.string_list("existingNamespaces", ["default"]))
    qotm = read.boolean("qotm", role is Role.TARGET)
    qotm_namespace = _label("qotmNamespace", read.text("qotmNamespace", meshed[0] if meshed else "default") or "")
    if qotm and qotm_namespace not in meshed:
        raise ConfigError(
            "qotmNamespace", qotm_namespace, f"must be one of meshedNamespaces ({', '.join(meshed)}) so QOTM is meshed"
        )

    smoke_test_url = read.text("smokeTestUrl")
    if smoke_test_url is not None and not re.match(r"^https?://[^/\s]+/?$", smoke_test_url):
        raise ConfigError("smokeTestUrl", smoke_test_url, "must be http(s)://<host>[:port] of Edge Stack")

    tls = _tls(read)
    trust_domain = read.text("trustDomain", upstream.DEFAULT_TRUST_DOMAIN) or ""
    if not _DNS1123_SUBDOMAIN.match(trust_domain):
        raise ConfigError("trustDomain", trust_domain, "must be a DNS name")

    common: dict[str, Any] = {
        "role": role,
        "line": line,
        "kubeconfig": kubeconfig,
        "context": context,
        "cluster_name": _label("clusterName", read.text("clusterName", pulumi.get_stack()) or ""),
        "kubernetes_version": kubernetes_version,
        "linkerd_cli": read.text("linkerdCli") or tools.find_linkerd(linkerd_version) or "linkerd",
        "kubectl": read.text("kubectl", "kubectl") or "",
        "linkerd_version": linkerd_version,
        "linkerd_ha": read.boolean("linkerdHa", True),
        "trust_domain": trust_domain,
        "edge_stack": product,
        "edge_stack_version": edge_stack_version,
        "edge_stack_crds": read.text("edgeStackCrds", product.crds_url.format(version=edge_stack_version)) or "",
        "edge_stack_manifest": read.text("edgeStackManifest", product.manifest_url.format(version=edge_stack_version)) or "",
        "edge_stack_license_key": license_key,
        "add_linkerd_headers": read.boolean("addLinkerdHeaders", True),
        "gateway_port": gateway_port,
        "probe_port": probe_port,
        "probe_target_port": probe_target_port,
        "probe_path": probe_path,
        "probe_period_seconds": probe_period,
        "meshed_namespaces": tuple(meshed),
        "existing_namespaces": existing,
        "qotm": qotm,
        "qotm_namespace": qotm_namespace,
        "smoke_test_url": smoke_test_url,
        "tls": tls,
    }
    if role is Role.TARGET:
        return StackConfig(**common, **_target(read, qotm, qotm_namespace))
    return StackConfig(**common, **_source(read, context, kubeconfig))


def _tls(read: _Reader) -> Tls | None:
    hostname = read.text("tlsHostname")
    certificate, private_key = read.secret("tlsCertificate"), read.secret("tlsPrivateKey")
    acme_email = read.text("tlsAcmeEmail")
    if hostname is None:
        for key, value in (("tlsCertificate", certificate), ("tlsPrivateKey", private_key), ("tlsAcmeEmail", acme_email)):
            if value is not None:
                raise ConfigError("tlsHostname", None, f"is required when {key} is set")
        return None
    if not _DNS1123_SUBDOMAIN.match(hostname):
        raise ConfigError("tlsHostname", hostname, "must be a DNS name")
    if (certificate is None) != (private_key is None):
        missing = "tlsPrivateKey" if private_key is None else "tlsCertificate"
        raise ConfigError(missing, None, "is required: tlsCertificate and tlsPrivateKey come together")
    if certificate is None and acme_email is None:
        raise ConfigError("tlsAcmeEmail", None, "is required when tlsHostname is set without tlsCertificate/tlsPrivateKey")
    if certificate is not None and acme_email is not None:
        raise ConfigError("tlsAcmeEmail", acme_email, "set either tlsAcmeEmail or tlsCertificate/tlsPrivateKey, not both")
    if acme_email is not None and "@" not in acme_email:
        raise ConfigError("tlsAcmeEmail", acme_email, "must be an email address")
    return Tls(hostname=hostname, certificate=certificate, private_key=private_key, acme_email=acme_email)


def _target(read: _Reader, qotm: bool, qotm_namespace: str) -> dict[str, Any]:
    hostname = read.required("gatewayHostname")
    if not _DNS1123_SUBDOMAIN.match(hostname):
        raise ConfigError("gatewayHostname", hostname, "must be a DNS name")
    default_exports = [f"{qotm_namespace}/{upstream.QOTM_SERVICE}"] if qotm else []
    # An empty list (Pulumi.yaml's default) means the default: the QOTM service when QOTM is on.
    exported = tuple(_service_ref("exportedServices", ref) for ref in read.string_list("exportedServices", []) or default_exports)
    return {"gateway_hostname": hostname, "exported_services": exported}


def _source(read: _Reader, context: str, kubeconfig: str | None) -> dict[str, Any]:
    target_stack = read.required("targetStack")
    target_context = read.required("targetContext")
    if target_context == context:
        raise ConfigError("targetContext", target_context, "is the same context as `context`: the two stacks need two clusters")
    target_kubeconfig = read.text("targetKubeconfig", kubeconfig)
    check_cluster("targetContext", target_context, "targetKubeconfig", target_kubeconfig)
    addresses = tuple(read.string_list("gatewayAddresses", []))
    # The target's clusterName defaults to its stack name, so this one does too.
    target_cluster_name = _label("targetClusterName", read.text("targetClusterName", target_stack.split("/")[-1]) or "")
    return {
        "target_stack": target_stack,
        "target_context": target_context,
        "target_cluster_name": target_cluster_name,
        "target_kubeconfig": target_kubeconfig,
        "gateway_addresses": addresses,
        "verify": read.boolean("verify", True),
    }


def read_manifest(key: str, location: str, read: Callable[[str], str]) -> str:
    """The manifest at `location`, or an error naming the key that points there."""
    try:
        return read(location)
    except (OSError, ValueError) as error:
        raise ConfigError(key, location, f"cannot be read ({error}); point it at a reachable URL or a local copy") from None


def check_target_outputs(cfg: StackConfig, target: pulumi.StackReference) -> None:
    """Fail the update when the target stack was built for something else than this source expects."""

    def compare(values: list[Any]) -> None:
        line, cluster_name, context = values
        if line != cfg.line.name:
            raise ConfigError("versionLine", cfg.line.name, f"the target stack {cfg.target_stack} uses version line {line!r}")
        if cluster_name != cfg.target_cluster_name:
            raise ConfigError("targetClusterName", cfg.target_cluster_name, f"the target stack's clusterName is {cluster_name!r}")
        if context == cfg.context:
            raise ConfigError("context", cfg.context, f"the target stack {cfg.target_stack} uses the same context")

    pulumi.Output.all(
        target.require_output("versionLine"), target.require_output("clusterName"), target.require_output("context")
    ).apply(compare)
