"""Hostile and careless input, table-driven: every key, every cross-field rule, hostile strings, huge and
recursive YAML, broken stack files. Each is refused before anything is registered or run, with one
error naming the key (or the file) and the value, bounded, without a traceback, in seconds.

The linkerd CLI is a stand-in that must never be asked (conftest.run_refused), except for the Edge
Stack manifests: the program reads them after it has asked the real CLI its version, so those cases run
the real CLI (skipped, loudly, without it) and may ask it nothing else.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from driver.settings import DriverError, read_settings
from support import errors
from tests.conftest import (
    FIXTURES,
    LICENSE,
    REFERENCE_FILES,
    ROOT,
    run_refused,
    source_config,
    target_config,
    target_outputs,
    upstream_file,
)

SECONDS = 5
SHOWN_LIMIT = 200
REMOVE = object()  # a change that removes the key

# Nine levels of nine: 387 million nodes once expanded.
ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(8)
)


def file_with(name: str, text: str) -> Callable[[Path], str]:
    """A file `name` holding `text`, made in the test's folder; its path is the config value."""

    def make(folder: Path) -> str:
        path = folder / name
        path.write_text(text)
        return str(path)

    return make


def manifest_with(text: str) -> Callable[[Path], str]:
    return file_with("manifest.yaml", text)


def kubeconfig_reaching(server: str) -> Callable[[Path], str]:
    """A kubeconfig whose one context, target-ctx, names `server`."""
    return kubeconfig_with(
        f"clusters: [{{name: c, cluster: {{server: '{server}'}}}}]\n"
        "contexts: [{name: target-ctx, context: {cluster: c, user: u}}]\nusers: [{name: u, user: {}}]\n"
    )


def latin1_file(folder: Path) -> str:
    path = folder / "kubeconfig-latin1"
    path.write_bytes("contexts: [do-not-show-me \u00e9]\n".encode("latin-1"))
    return str(path)


def kubeconfig_with(text: str) -> Callable[[Path], str]:
    return file_with("kubeconfig-under-test", text)


def huge_file(folder: Path) -> str:
    path = folder / "huge.yaml"
    with path.open("wb") as handle:
        handle.truncate(17 * 1024 * 1024)  # sparse: refused by its size, never read
    return str(path)


@dataclass(frozen=True)
class Case:
    name: str
    change: dict[str, Any]
    key: str
    value: Any  # what the error shows (the value as read, or None when missing)
    stack: str = "target"
    secrets: dict[str, str] | None = None
    # Values computed in the test's folder (files), by key.
    files: dict[str, Callable[[Path], str]] = field(default_factory=dict)
    # The whole reason the error gives, where the case pins it.
    reason: str | None = None
    # On the source: outputs of the target stack beyond those of a target that is up (conftest.target_outputs).
    target: dict[str, Any] = field(default_factory=dict)


def t(name: str, key: str, value: Any, **change: Any) -> Case:
    return Case(name, change, key, value)


def s(name: str, key: str, value: Any, **change: Any) -> Case:
    return Case(name, change, key, value, stack="source")


def mode(name: str, value: Any, reason: str, **change: Any) -> Case:
    """exportedServices on the target, refused with this value and reason."""
    return Case(name, change, "exportedServices", value, reason=reason)


EXPORT_SHAPE = "each entry must be <namespace>/<service>, or a one-entry mapping <namespace>/<service>: <mode>"
MODES = "mode must be one of gateway, remote-discovery, federated"
POD_TO_POD = (
    "pod to pod, which needs the source's pods to reach the target's pods directly; set flatNetwork true on this stack "
    "once they do, or export them in mode gateway"
)


def f(name: str, key: str, make: Callable[[Path], str]) -> Case:
    return Case(name, {}, key, None, files={key: make})


def read(name: str, key: str, value: str) -> Case:
    """A manifest path the config takes, whose file is refused once read."""
    return Case(name, {key: value}, key, value)


CASES = [
    # role
    t("role-missing", "role", None, role=REMOVE),
    t("role-unknown", "role", "gateway", role="gateway"),
    t("role-case", "role", "Target", role="Target"),
    t("role-shell", "role", "target; rm -rf /", role="target; rm -rf /"),
    t("role-huge", "role", "x" * 100_000, role="x" * 100_000),
    # context
    t("context-missing", "context", None, context=REMOVE),
    t("context-unknown", "context", "nowhere", context="nowhere"),
    t("context-space", "context", "target ctx", context="target ctx"),
    t("context-newline", "context", "target-ctx\nrm -rf /", context="target-ctx\nrm -rf /"),
    t("context-substitution", "context", "$(touch PWNED)", context="$(touch PWNED)"),
    # kubeconfig
    t("kubeconfig-missing-file", "kubeconfig", "/nowhere/kubeconfig", kubeconfig="/nowhere/kubeconfig"),
    t("kubeconfig-shell", "kubeconfig", "k;id", kubeconfig="k;id"),
    # clusterName
    t("clusterName-case", "clusterName", "Target_1", clusterName="Target_1"),
    t("clusterName-long", "clusterName", "a" * 64, clusterName="a" * 64),
    t("clusterName-dash", "clusterName", "-x", clusterName="-x"),
    # versionLine, versions
    t("versionLine-unknown", "versionLine", "2019", versionLine="2019"),
    t("versionLine-path", "versionLine", "../current", versionLine="../current"),
    t("kubernetesVersion-word", "kubernetesVersion", "latest", kubernetesVersion="latest"),
    t("kubernetesVersion-old", "kubernetesVersion", "1.29", kubernetesVersion="1.29"),
    t("kubernetesVersion-shell", "kubernetesVersion", "1.34;id", kubernetesVersion="1.34;id"),
    t("linkerdVersion-unknown", "linkerdVersion", "edge-20.1.1", linkerdVersion="edge-20.1.1"),
    t("linkerdVersion-newline", "linkerdVersion", "edge-26.8.3\n", linkerdVersion="edge-26.8.3\n"),
    t("edgeStackProduct-unknown", "edgeStackProduct", "nginx", edgeStackProduct="nginx"),
    t("edgeStackVersion-unknown", "edgeStackVersion", "2.0.0", edgeStackVersion="2.0.0"),
    # commands and paths
    t("linkerdCli-space", "linkerdCli", "linkerd --verbose", linkerdCli="linkerd --verbose"),
    t("linkerdCli-substitution", "linkerdCli", "$(touch PWNED)", linkerdCli="$(touch PWNED)"),
    t("helm-space", "helm", "helm --debug", helm="helm --debug"),
    t("helm-substitution", "helm", "$(touch PWNED)", helm="$(touch PWNED)"),
    t("kubectl-args", "kubectl", "kubectl apply", kubectl="kubectl apply"),
    t("kubectl-shell", "kubectl", "kubectl;id", kubectl="kubectl;id"),
    t("kubectl-backticks", "kubectl", "`id`", kubectl="`id`"),
    # booleans
    t("linkerdHa-word", "linkerdHa", "yes", linkerdHa="yes"),
    t("linkerdHa-number", "linkerdHa", "1", linkerdHa="1"),
    t("addLinkerdHeaders-word", "addLinkerdHeaders", "maybe", addLinkerdHeaders="maybe"),
    t("qotm-word", "qotm", "sometimes", qotm="sometimes"),
    # trustDomain
    t("trustDomain-space", "trustDomain", "Cluster Local", trustDomain="Cluster Local"),
    t("trustDomain-trailing-dot", "trustDomain", "cluster.local.", trustDomain="cluster.local."),
    t("trustDomain-upper", "trustDomain", "Cluster.local", trustDomain="Cluster.local"),
    t("trustDomain-empty-label", "trustDomain", "cluster..local", trustDomain="cluster..local"),
    t("trustDomain-dash-label", "trustDomain", "-a.local", trustDomain="-a.local"),
    t("trustDomain-long-label", "trustDomain", "a" * 64 + ".local", trustDomain="a" * 64 + ".local"),
    # ports
    t("gatewayPort-zero", "gatewayPort", 0, gatewayPort="0"),
    t("gatewayPort-http", "gatewayPort", 80, gatewayPort="80"),
    t("gatewayPort-https", "gatewayPort", 443, gatewayPort="443"),
    t("gatewayPort-http-listener", "gatewayPort", 8080, gatewayPort="8080"),
    t("gatewayPort-https-listener", "gatewayPort", 8443, gatewayPort="8443"),
    t("gatewayPort-admin", "gatewayPort", 8877, gatewayPort="8877"),
    t("gatewayPort-equals-probePort", "gatewayPort", 4143, probePort="4143"),
    t("gatewayPort-exponent", "gatewayPort", "1e3", gatewayPort="1e3"),
    t("gatewayPort-fullwidth", "gatewayPort", "４１４３", gatewayPort="４１４３"),
    t("gatewayPort-underscore", "gatewayPort", "4_143", gatewayPort="4_143"),
    t("gatewayPort-huge", "gatewayPort", "9" * 5000, gatewayPort="9" * 5000),
    t("probePort-high", "probePort", 70000, probePort="70000"),
    t("probePort-negative", "probePort", -1, probePort="-1"),
    t("probeTargetPort-word", "probeTargetPort", "http", probeTargetPort="http"),
    t("probeTargetPort-https", "probeTargetPort", 8443, probeTargetPort="8443"),
    t("probeTargetPort-admin", "probeTargetPort", 8877, probeTargetPort="8877"),
    t("probeTargetPort-qotm", "probeTargetPort", 5000, probeTargetPort="5000"),
    # probe path and period
    t("probePath-relative", "probePath", "-/ambassador/ready", probePath="-/ambassador/ready"),
    t("probePath-space", "probePath", "/a b", probePath="/a b"),
    t("probePath-quote", "probePath", "/x'; rm -rf /", probePath="/x'; rm -rf /"),
    t("probePath-long", "probePath", "/" + "a" * 300, probePath="/" + "a" * 300),
    t("probePeriodSeconds-zero", "probePeriodSeconds", 0, probePeriodSeconds="0"),
    t("probePeriodSeconds-negative", "probePeriodSeconds", -5, probePeriodSeconds="-5"),
    t("probePeriodSeconds-fraction", "probePeriodSeconds", "3.5", probePeriodSeconds="3.5"),
    # namespaces
    t("meshedNamespaces-case", "meshedNamespaces", "Default", meshedNamespaces=["Default"]),
    t("meshedNamespaces-not-a-list", "meshedNamespaces", "default", meshedNamespaces="default"),
    t("meshedNamespaces-twice", "meshedNamespaces", ["default", "default"], meshedNamespaces=["default", "default"]),
    t("meshedNamespaces-objects", "meshedNamespaces", '[{"a": 1}]', meshedNamespaces=[{"a": 1}]),
    t("meshedNamespaces-alias-bomb", "meshedNamespaces", ALIAS_BOMB, meshedNamespaces=ALIAS_BOMB),
    t("meshedNamespaces-deep", "meshedNamespaces", "[" * 100_000, meshedNamespaces="[" * 100_000),
    *(
        t(f"meshedNamespaces-{ns}", "meshedNamespaces", ns, meshedNamespaces=["default", ns], existingNamespaces=["default"])
        for ns in ("kube-system", "kube-public", "kube-node-lease", "linkerd", "linkerd-multicluster", "linkerd-viz")
    ),
    t("meshedNamespaces-ambassador", "meshedNamespaces", "ambassador", meshedNamespaces=["ambassador"], qotm="false"),
    t("meshedNamespaces-emissary", "meshedNamespaces", "emissary", meshedNamespaces=["emissary"], qotm="false"),
    t("existingNamespaces-not-meshed", "existingNamespaces", "demo", existingNamespaces=["default", "demo"]),
    t("existingNamespaces-case", "existingNamespaces", "Default", existingNamespaces=["Default"]),
    t(
        "existingNamespaces-without-default",
        "existingNamespaces",
        [],
        meshedNamespaces=["default", "demo"],
        existingNamespaces=[],
    ),
    t("qotmNamespace-not-meshed", "qotmNamespace", "demo", qotmNamespace="demo"),
    t("qotmNamespace-case", "qotmNamespace", "Demo", qotmNamespace="Demo"),
    # smokeTestUrl
    t("smokeTestUrl-no-scheme", "smokeTestUrl", "edge.example.com", smokeTestUrl="edge.example.com"),
    t(
        "smokeTestUrl-quote-injection",
        "smokeTestUrl",
        "http://x';touch${IFS}PWNED;'",
        smokeTestUrl="http://x';touch${IFS}PWNED;'",
    ),
    t("smokeTestUrl-substitution", "smokeTestUrl", "http://x$(id)", smokeTestUrl="http://x$(id)"),
    t("smokeTestUrl-backticks", "smokeTestUrl", "http://x/`id`", smokeTestUrl="http://x/`id`"),
    t("smokeTestUrl-space", "smokeTestUrl", "http://a b", smokeTestUrl="http://a b"),
    t("smokeTestUrl-ftp", "smokeTestUrl", "ftp://x", smokeTestUrl="ftp://x"),
    t("smokeTestUrl-port", "smokeTestUrl", "http://x:99999", smokeTestUrl="http://x:99999"),
    t("smokeTestUrl-path", "smokeTestUrl", "http://x/qotm", smokeTestUrl="http://x/qotm"),
    t("smokeTestUrl-ipv6", "smokeTestUrl", "http://[zz]:80", smokeTestUrl="http://[zz]:80"),
    t("smokeTestUrl-newline", "smokeTestUrl", "http://x\n", smokeTestUrl="http://x\n"),
    t("smokeTestUrl-userinfo", "smokeTestUrl", "http://u:p@x", smokeTestUrl="http://u:p@x"),
    t("smokeTestUrl-empty-host", "smokeTestUrl", "http://", smokeTestUrl="http://"),
    # TLS
    t("tlsHostname-space", "tlsHostname", "www example", tlsHostname="www example", tlsAcmeEmail="ops@example.com"),
    t("tlsHostname-trailing-dot", "tlsHostname", "www.example.com.", tlsHostname="www.example.com.", tlsAcmeEmail="o@x.com"),
    t("tlsHostname-missing", "tlsHostname", None, tlsAcmeEmail="ops@example.com"),
    t("tlsAcmeEmail-missing", "tlsAcmeEmail", None, tlsHostname="www.example.com"),
    t("tlsAcmeEmail-no-at", "tlsAcmeEmail", "ops", tlsHostname="www.example.com", tlsAcmeEmail="ops"),
    t("tlsAcmeEmail-no-domain", "tlsAcmeEmail", "ops@", tlsHostname="www.example.com", tlsAcmeEmail="ops@"),
    t("tlsAcmeEmail-no-tld", "tlsAcmeEmail", "ops@example", tlsHostname="www.example.com", tlsAcmeEmail="ops@example"),
    t("tlsAcmeEmail-shell", "tlsAcmeEmail", "o@x.com; rm", tlsHostname="www.example.com", tlsAcmeEmail="o@x.com; rm"),
    t("tlsAcmeEmail-brackets", "tlsAcmeEmail", "<o@x.com>", tlsHostname="www.example.com", tlsAcmeEmail="<o@x.com>"),
    Case(
        "tlsPrivateKey-missing",
        {"tlsHostname": "www.example.com"},
        "tlsPrivateKey",
        None,
        secrets={"edgeStackLicenseKey": LICENSE, "tlsCertificate": "CERT"},
    ),
    Case(
        "tlsCertificate-missing",
        {"tlsHostname": "www.example.com"},
        "tlsCertificate",
        None,
        secrets={"edgeStackLicenseKey": LICENSE, "tlsPrivateKey": "KEY"},
    ),
    Case(
        "tlsAcmeEmail-and-certificate",
        {"tlsHostname": "www.example.com", "tlsAcmeEmail": "o@x.com"},
        "tlsAcmeEmail",
        "o@x.com",
        secrets={"edgeStackLicenseKey": LICENSE, "tlsCertificate": "C", "tlsPrivateKey": "K"},
    ),
    Case(
        "tlsCertificate-without-hostname",
        {},
        "tlsHostname",
        None,
        secrets={"edgeStackLicenseKey": LICENSE, "tlsCertificate": "C", "tlsPrivateKey": "K"},
    ),
    # licence
    Case("edgeStackLicenseKey-missing", {}, "edgeStackLicenseKey", None, secrets={}),
    Case(
        "edgeStackLicenseKey-for-emissary",
        {"edgeStackProduct": "emissary"},
        "edgeStackLicenseKey",
        "[secret]",
        secrets={"edgeStackLicenseKey": "do-not-show-me"},
    ),
    # gateway and exports (target)
    t("gatewayHostname-missing", "gatewayHostname", None, gatewayHostname=REMOVE),
    t("gatewayHostname-space", "gatewayHostname", "gw example", gatewayHostname="gw example"),
    t("gatewayHostname-upper", "gatewayHostname", "GW.example.com", gatewayHostname="GW.example.com"),
    t("gatewayHostname-numeric", "gatewayHostname", "300.1.1.1", gatewayHostname="300.1.1.1"),
    t("exportedServices-no-namespace", "exportedServices", "qotm-linkerd2", exportedServices=["qotm-linkerd2"]),
    t("exportedServices-case", "exportedServices", "Qotm", exportedServices=["default/Qotm"]),
    t(
        "exportedServices-twice",
        "exportedServices",
        "default/qotm-linkerd2",
        exportedServices=["default/qotm-linkerd2", "default/qotm-linkerd2"],
    ),
    t("exportedServices-not-meshed", "exportedServices", "demo/api", exportedServices=["demo/api"]),
    t("exportedServices-kube-system", "exportedServices", "kube-system/kube-dns", exportedServices=["kube-system/kube-dns"]),
    t("exportedServices-three-parts", "exportedServices", "b/c", exportedServices=["default/b/c"]),
    # unknown keys (typos), role keys on the wrong stack
    t("unknown-gatewayPrt", "gatewayPrt", "4143", gatewayPrt="4143"),
    t("unknown-meshedNamespace", "meshedNamespace", '["default"]', meshedNamespace=["default"]),
    t("unknown-smokeTestURL", "smokeTestURL", "http://x", smokeTestURL="http://x"),
    t("unknown-anything", "zzzzzz", "1", zzzzzz="1"),
    t("target-with-targetStack", "targetStack", "org/aes-linkerd2/target", targetStack="org/aes-linkerd2/target"),
    s("source-with-gatewayHostname", "gatewayHostname", "gw.example.com", gatewayHostname="gw.example.com"),
    # source
    s("targetStack-missing", "targetStack", None, targetStack=REMOVE),
    s("targetStack-too-deep", "targetStack", "a/b/c/d", targetStack="a/b/c/d"),
    s("targetStack-space", "targetStack", "org/aes linkerd2/target", targetStack="org/aes linkerd2/target"),
    s("targetContext-missing", "targetContext", None, targetContext=REMOVE),
    s("targetContext-same", "targetContext", "source-ctx", targetContext="source-ctx"),
    s("targetContext-unknown", "targetContext", "nowhere", targetContext="nowhere"),
    s("targetKubeconfig-missing-file", "targetKubeconfig", "/nowhere/k", targetKubeconfig="/nowhere/k"),
    s(
        "targetApiServerAddress-http",
        "targetApiServerAddress",
        "http://10.0.0.1:6443",
        targetApiServerAddress="http://10.0.0.1:6443",
    ),
    s("targetApiServerAddress-shell", "targetApiServerAddress", "https://x;id", targetApiServerAddress="https://x;id"),
    t(
        "targetApiServerAddress-on-target",
        "targetApiServerAddress",
        "https://10.0.0.1",
        targetApiServerAddress="https://10.0.0.1",
    ),
    t("issuerRenewBeforeDays-zero", "issuerRenewBeforeDays", 0, issuerRenewBeforeDays="0"),
    t("issuerRenewBeforeDays-beyond-a-year", "issuerRenewBeforeDays", 400, issuerRenewBeforeDays="400"),
    t("trustAnchorRotation-unknown", "trustAnchorRotation", "rotate", trustAnchorRotation="rotate"),
    t("trustAnchorRotation-shell", "trustAnchorRotation", "bundle; rm -rf /", trustAnchorRotation="bundle; rm -rf /"),
    t("trustAnchorRotation-huge", "trustAnchorRotation", "x" * 100_000, trustAnchorRotation="x" * 100_000),
    s("trustAnchorRotation-on-source", "trustAnchorRotation", "bundle", trustAnchorRotation="bundle"),
    s("targetClusterName-case", "targetClusterName", "Target", targetClusterName="Target"),
    s("targetClusterName-is-own", "targetClusterName", "source", targetClusterName="source"),
    s("gatewayAddresses-word", "gatewayAddresses", "not an address", gatewayAddresses=["not an address"]),
    s("gatewayAddresses-twice", "gatewayAddresses", ["192.0.2.1", "192.0.2.1"], gatewayAddresses=["192.0.2.1", "192.0.2.1"]),
    s("gatewayAddresses-bad-ip", "gatewayAddresses", "300.1.1.1", gatewayAddresses=["300.1.1.1"]),
    s("gatewayAddresses-not-a-list", "gatewayAddresses", "192.0.2.1", gatewayAddresses="192.0.2.1"),
    s("verify-word", "verify", "nope", verify="nope"),
    # each export's multicluster mode: a string (gateway) or one mapping of the service to its mode
    mode(
        "exportedServices-mode-unknown",
        {"default/qotm-linkerd2": "flat"},
        MODES,
        exportedServices=[{"default/qotm-linkerd2": "flat"}],
    ),
    mode(
        "exportedServices-mode-case",
        {"default/qotm-linkerd2": "Federated"},
        MODES,
        exportedServices=[{"default/qotm-linkerd2": "Federated"}],
    ),
    mode("exportedServices-mode-number", {"default/qotm-linkerd2": 3}, MODES, exportedServices=[{"default/qotm-linkerd2": 3}]),
    mode(
        "exportedServices-mode-list",
        {"default/qotm-linkerd2": ["gateway"]},
        MODES,
        exportedServices=[{"default/qotm-linkerd2": ["gateway"]}],
    ),
    mode(
        "exportedServices-mapping-two-keys",
        {"default/qotm-linkerd2": "gateway", "default/api": "federated"},
        EXPORT_SHAPE,
        exportedServices=[{"default/qotm-linkerd2": "gateway", "default/api": "federated"}],
    ),
    mode("exportedServices-mapping-empty", {}, EXPORT_SHAPE, exportedServices=[{}]),
    mode("exportedServices-number", 42, EXPORT_SHAPE, exportedServices=[42]),
    mode("exportedServices-null", None, EXPORT_SHAPE, exportedServices=[None]),
    mode("exportedServices-nested-list", ["default/qotm-linkerd2"], EXPORT_SHAPE, exportedServices=[["default/qotm-linkerd2"]]),
    mode(
        "exportedServices-not-a-list",
        '{"default/qotm-linkerd2": "gateway"}',
        "must be a list; each entry <namespace>/<service>, or a one-entry mapping <namespace>/<service>: <mode>",
        exportedServices={"default/qotm-linkerd2": "gateway"},
    ),
    mode(
        "exportedServices-mapping-bad-service",
        "Qotm",
        "must be a DNS-1123 label (lower-case letters, digits and '-', at most 63)",
        exportedServices=[{"default/Qotm": "federated"}],
    ),
    mode(
        "exportedServices-federated-mirror-too-long",
        "default/" + "f" * 54,
        "its mirror <service>-federated would be longer than a Service name's 63",
        clusterName="t",
        exportedServices=[{"default/" + "f" * 54: "federated"}],
    ),
    mode(
        "exportedServices-remote-discovery-mirror-too-long",
        "default/" + "r" * 57,
        "its mirror <service>-target would be longer than a Service name's 63",
        exportedServices=[{"default/" + "r" * 57: "remote-discovery"}],
    ),
    mode(
        "exportedServices-twice-two-modes",
        "default/qotm-linkerd2",
        "is listed twice",
        exportedServices=["default/qotm-linkerd2", {"default/qotm-linkerd2": "remote-discovery"}],
    ),
    mode(
        "exportedServices-twice-as-mappings",
        "default/qotm-linkerd2",
        "is listed twice",
        exportedServices=[{"default/qotm-linkerd2": "federated"}, {"default/qotm-linkerd2": "federated"}],
    ),
    mode(
        "exportedServices-mode-not-meshed",
        "demo/api",
        "is in namespace 'demo', not one of meshedNamespaces (default)",
        exportedServices=[{"demo/api": "remote-discovery"}],
    ),
    mode(
        "exportedServices-mode-api-server",
        "default/kubernetes",
        "is the API server's own Service: exporting it would mirror the API server",
        exportedServices=[{"default/kubernetes": "federated"}],
    ),
    mode(
        "exportedServices-remote-discovery-on-page-line",
        {"default/qotm-linkerd2": "remote-discovery"},
        "version line linkerd-2.8 (Linkerd stable-2.8.1) has only the gateway mode; remote-discovery needs the current line",
        versionLine="linkerd-2.8",
        exportedServices=[{"default/qotm-linkerd2": "remote-discovery"}],
    ),
    mode(
        "exportedServices-federated-on-page-line",
        {"default/qotm-linkerd2": "federated"},
        "version line linkerd-2.8 (Linkerd stable-2.8.1) has only the gateway mode; federated needs the current line",
        versionLine="linkerd-2.8",
        exportedServices=["default/api", {"default/qotm-linkerd2": "federated"}],
        meshedNamespaces=["default"],
    ),
    # the Link's credentials generation: a whole number from 0, on the target of the current line
    t("linkCredentials-negative", "linkCredentials", -1, linkCredentials="-1"),
    t("linkCredentials-fraction", "linkCredentials", "1.5", linkCredentials="1.5"),
    t("linkCredentials-word", "linkCredentials", "two", linkCredentials="two"),
    Case(
        "linkCredentials-too-high",
        {"linkCredentials": "100000"},
        "linkCredentials",
        100000,
        reason="must be between 0 (upstream's default account) and 99999",
    ),
    s("linkCredentials-on-source", "linkCredentials", "2", linkCredentials="2"),
    Case(
        "linkCredentials-on-page-line",
        {"versionLine": "linkerd-2.8", "edgeStackProduct": REMOVE, "edgeStackVersion": REMOVE, "linkCredentials": "1"},
        "linkCredentials",
        1,
        reason="version line linkerd-2.8 links with upstream's default account only; rotating it needs the current line",
    ),
    Case(
        "linkServiceAccount-not-a-name",
        {},
        "targetStack",
        "organization/aes-linkerd2/target",
        stack="source",
        reason="the target stack's linkServiceAccount 'x; rm -rf /' is not an account name",
        target={"linkServiceAccount": "x; rm -rf /"},
    ),
    # what a mode needs: pod-to-pod exports need the source to say its network is flat
    s("flatNetwork-word", "flatNetwork", "flat", flatNetwork="flat"),
    t("flatNetwork-on-target", "flatNetwork", "true", flatNetwork="true"),
    Case(
        "flatNetwork-on-page-line",
        {"versionLine": "linkerd-2.8", "edgeStackProduct": REMOVE, "edgeStackVersion": REMOVE, "flatNetwork": "true"},
        "flatNetwork",
        True,
        stack="source",
        reason="version line linkerd-2.8 links through the gateway only: nothing there reaches pods directly",
    ),
    Case(
        "flatNetwork-off-remote-discovery",
        {},
        "flatNetwork",
        False,
        stack="source",
        reason=f"the target stack exports default/qotm-linkerd2 (remote-discovery): {POD_TO_POD}",
        target={
            "exportedServices": ["default/qotm-linkerd2"],
            "exportedServiceModes": {"default/qotm-linkerd2": "remote-discovery"},
        },
    ),
    Case(
        "flatNetwork-off-federated-among-gateway",
        {"flatNetwork": "false"},
        "flatNetwork",
        False,
        stack="source",
        reason=f"the target stack exports shop/cart (federated): {POD_TO_POD}",
        target={
            "exportedServices": ["default/qotm-linkerd2", "shop/cart"],
            "exportedServiceModes": {"default/qotm-linkerd2": "gateway", "shop/cart": "federated"},
        },
    ),
    Case(
        "targetStack-unknown-mode",
        {"flatNetwork": "true"},
        "targetStack",
        "organization/aes-linkerd2/target",
        stack="source",
        reason="the target stack exports default/qotm-linkerd2 in mode 'mesh', not one of ['gateway', 'remote-discovery', "
        "'federated']",
        target={"exportedServices": ["default/qotm-linkerd2"], "exportedServiceModes": {"default/qotm-linkerd2": "mesh"}},
    ),
    # collisions: ports Linkerd's proxy or Edge Stack use, probe paths that take others' requests, names twice
    *(t(f"gatewayPort-proxy-{port}", "gatewayPort", port, gatewayPort=str(port)) for port in (4140, 4190, 4191)),
    *(t(f"probePort-proxy-{port}", "probePort", port, probePort=str(port)) for port in (4140, 4190, 4191)),
    t("probePeriodSeconds-a-day", "probePeriodSeconds", 86400, probePeriodSeconds="86400"),
    t("probePeriodSeconds-huge", "probePeriodSeconds", 9999999999, probePeriodSeconds="9999999999"),
    t("probePath-root", "probePath", "/", probePath="/"),
    t("probePath-qotm", "probePath", "/qotm-linkerd2/", probePath="/qotm-linkerd2/"),
    t("probePath-qotm-no-slash", "probePath", "/qotm-linkerd2", probePath="/qotm-linkerd2"),
    t("probePath-under-qotm", "probePath", "/qotm-linkerd2/ready", probePath="/qotm-linkerd2/ready"),
    t("exportedServices-api-server", "exportedServices", "default/kubernetes", exportedServices=["default/kubernetes"]),
    t(
        "exportedServices-qotm-off",
        "exportedServices",
        "default/qotm-linkerd2",
        qotm="false",
        exportedServices=["default/qotm-linkerd2"],
    ),
    t("exportedServices-mirror-too-long", "exportedServices", "default/" + "s" * 57, exportedServices=["default/" + "s" * 57]),
    t(
        "tlsHostname-is-gatewayHostname",
        "tlsHostname",
        "gateway.example.com",
        tlsHostname="gateway.example.com",
        tlsAcmeEmail="me@example.com",
    ),
    # derived names the API server or X.509 would refuse mid-`up`
    t("trustDomain-too-long", "trustDomain", "d" * 40 + ".example.com", trustDomain="d" * 40 + ".example.com"),
    t("trustDomain-253", "trustDomain", ("d" * 60 + ".") * 4 + "com", trustDomain=("d" * 60 + ".") * 4 + "com"),
    t("clusterName-too-long", "clusterName", "c" * 50, clusterName="c" * 50),
    t("clusterName-63", "clusterName", "c" * 63, clusterName="c" * 63),
    s("clusterName-too-long-source", "clusterName", "c" * 50, clusterName="c" * 50),
    s("targetClusterName-too-long", "targetClusterName", "t" * 50, targetClusterName="t" * 50),
    s("gatewayAddresses-unspecified-v4", "gatewayAddresses", "0.0.0.0", gatewayAddresses=["0.0.0.0"]),  # noqa: S104
    s("gatewayAddresses-unspecified-v6", "gatewayAddresses", "::", gatewayAddresses=["::"]),
    s("gatewayAddresses-unspecified-long-v6", "gatewayAddresses", "0:0::0", gatewayAddresses=["0:0::0"]),
    # secret keys in plain text: refused, the value never shown
    Case(
        "edgeStackLicenseKey-plain", {"edgeStackLicenseKey": "do-not-show-me"}, "edgeStackLicenseKey", "[not shown]", secrets={}
    ),
    Case(
        "tlsPrivateKey-plain",
        {"tlsHostname": "tls.example.com", "tlsPrivateKey": "do-not-show-me"},
        "tlsPrivateKey",
        "[not shown]",
        secrets={"edgeStackLicenseKey": LICENSE, "tlsCertificate": "cert"},
    ),
    Case(
        "tlsCertificate-plain",
        {"tlsHostname": "tls.example.com", "tlsCertificate": "do-not-show-me"},
        "tlsCertificate",
        "[not shown]",
        secrets={"edgeStackLicenseKey": LICENSE, "tlsPrivateKey": "key"},
    ),
    # kubeconfig files that are not kubeconfigs: the key named, the file never shown
    *(
        Case(f"kubeconfig-{name}", {}, "kubeconfig", None, files={"kubeconfig": kubeconfig_with(text)})
        for name, text in (
            ("string", "do-not-show-me\n"),
            ("list", "- do-not-show-me\n"),
            ("contexts-mapping", "contexts: {do-not-show-me: 1}\n"),
            ("contexts-strings", "contexts: [do-not-show-me]\n"),
            ("not-yaml", "contexts: [do-not-show-me\n"),
            ("scanner", "a: b: do-not-show-me\n"),
            ("deep", "[" * 100_000),
            ("binary", "\x00\x01 do-not-show-me"),
        )
    ),
    Case("kubeconfig-huge", {}, "kubeconfig", None, files={"kubeconfig": huge_file}),
    Case(
        "context-port-out-of-range",
        {},
        "context",
        "target-ctx",
        files={"kubeconfig": kubeconfig_reaching("https://127.0.0.1:99999")},
    ),
    # boundaries and variations of the rules above, each refused on its own
    t("trustDomain-48", "trustDomain", "d" * 36 + ".example.com", trustDomain="d" * 36 + ".example.com"),
    t("clusterName-50", "clusterName", "c" * 50, clusterName="c" * 50),
    s("targetClusterName-63", "targetClusterName", "t" * 63, targetClusterName="t" * 63),
    t("probePort-proxy-equals-gateway", "probePort", 4191, probePort="4191", gatewayPort="4143"),
    t("gatewayPort-proxy-admin-with-probe", "gatewayPort", 4191, gatewayPort="4191", probePort="81"),
    t("probePeriodSeconds-hour-and-one", "probePeriodSeconds", 3601, probePeriodSeconds="3601"),
    t("probePath-qotm-deeper", "probePath", "/qotm-linkerd2/a/b", probePath="/qotm-linkerd2/a/b"),
    t("probePath-qotm-double-slash", "probePath", "/qotm-linkerd2//", probePath="/qotm-linkerd2//"),
    t(
        "exportedServices-api-server-among-others",
        "exportedServices",
        "default/kubernetes",
        exportedServices=["default/qotm-linkerd2", "default/kubernetes"],
    ),
    t(
        "exportedServices-qotm-off-other-namespace",
        "exportedServices",
        "shop/qotm-linkerd2",
        qotm="false",
        meshedNamespaces=["default", "shop"],
        qotmNamespace="shop",
        exportedServices=["shop/qotm-linkerd2"],
    ),
    t(
        "tlsHostname-is-gatewayHostname-with-certificate",
        "tlsHostname",
        "gateway.example.com",
        tlsHostname="gateway.example.com",
        tlsAcmeEmail="ops@example.com",
    ),
    s("gatewayAddresses-unspecified-among-others", "gatewayAddresses", "0.0.0.0", gatewayAddresses=["192.0.2.10", "0.0.0.0"]),  # noqa: S104
    s("gatewayAddresses-unspecified-v6-zero", "gatewayAddresses", "::0", gatewayAddresses=["::0"]),
    s("gatewayAddresses-unspecified-v6-full", "gatewayAddresses", "0:0:0:0:0:0:0:0", gatewayAddresses=["0:0:0:0:0:0:0:0"]),
    Case(
        "edgeStackLicenseKey-plain-shell",
        {"edgeStackLicenseKey": "$(touch PWNED) do-not-show-me"},
        "edgeStackLicenseKey",
        "[not shown]",
        secrets={},
    ),
    Case(
        "edgeStackLicenseKey-plain-huge",
        {"edgeStackLicenseKey": "do-not-show-me" * 10_000},
        "edgeStackLicenseKey",
        "[not shown]",
        secrets={},
    ),
    Case(
        "tlsPrivateKey-plain-pem",
        {
            "tlsHostname": "tls.example.com",
            "tlsPrivateKey": "-----BEGIN PRIVATE KEY-----\ndo-not-show-me\n-----END PRIVATE KEY-----\n",
        },
        "tlsPrivateKey",
        "[not shown]",
        secrets={"edgeStackLicenseKey": LICENSE, "tlsCertificate": "cert"},
    ),
    Case("kubeconfig-directory", {}, "kubeconfig", None, files={"kubeconfig": str}),
    Case(
        "kubeconfig-clusters-mapping",
        {},
        "kubeconfig",
        None,
        files={"kubeconfig": kubeconfig_with("clusters: {do-not-show-me: 1}\n")},
    ),
    Case("kubeconfig-users-strings", {}, "kubeconfig", None, files={"kubeconfig": kubeconfig_with("users: [do-not-show-me]\n")}),
    Case("kubeconfig-number", {}, "kubeconfig", None, files={"kubeconfig": kubeconfig_with("42\n")}),
    Case(
        "kubeconfig-tab-indent", {}, "kubeconfig", None, files={"kubeconfig": kubeconfig_with("contexts:\n\t- do-not-show-me\n")}
    ),
    Case(
        "kubeconfig-nested-deep",
        {},
        "kubeconfig",
        None,
        files={"kubeconfig": kubeconfig_with("a: " + "[" * 30 + "]" * 30 + "\n")},
    ),
    Case("kubeconfig-latin1", {}, "kubeconfig", None, files={"kubeconfig": latin1_file}),
    Case(
        "targetKubeconfig-not-a-kubeconfig",
        {},
        "targetKubeconfig",
        None,
        stack="source",
        files={"targetKubeconfig": kubeconfig_with("- do-not-show-me\n")},
    ),
    Case(
        "context-port-not-a-number",
        {},
        "context",
        "target-ctx",
        files={"kubeconfig": kubeconfig_reaching("https://127.0.0.1:port")},
    ),
    # the same rules on the source stack, which reads the keys of both roles
    *(s(f"gatewayPort-proxy-{port}-source", "gatewayPort", port, gatewayPort=str(port)) for port in (4140, 4190, 4191)),
    s("trustDomain-too-long-source", "trustDomain", "d" * 40 + ".example.com", trustDomain="d" * 40 + ".example.com"),
    Case(
        "edgeStackLicenseKey-plain-source",
        {"edgeStackLicenseKey": "do-not-show-me"},
        "edgeStackLicenseKey",
        "[not shown]",
        stack="source",
        secrets={},
    ),
    Case(
        "kubeconfig-not-a-kubeconfig-source",
        {},
        "kubeconfig",
        None,
        stack="source",
        files={"kubeconfig": kubeconfig_with("do-not-show-me\n")},
    ),
    Case(
        "targetKubeconfig-contexts-mapping",
        {},
        "targetKubeconfig",
        None,
        stack="source",
        files={"targetKubeconfig": kubeconfig_with("contexts: {do-not-show-me: 1}\n")},
    ),
    Case(
        "targetKubeconfig-not-yaml",
        {},
        "targetKubeconfig",
        None,
        stack="source",
        files={"targetKubeconfig": kubeconfig_with("contexts: [do-not-show-me\n")},
    ),
    Case(
        "targetContext-port-out-of-range",
        {},
        "targetContext",
        "target-ctx",
        stack="source",
        files={"targetKubeconfig": kubeconfig_reaching("https://127.0.0.1:70000")},
    ),
    t(
        "exportedServices-api-server-qotm-off",
        "exportedServices",
        "default/kubernetes",
        qotm="false",
        exportedServices=["default/kubernetes"],
    ),
    t(
        "probePath-qotm-with-qotm-namespace",
        "probePath",
        "/qotm-linkerd2/",
        probePath="/qotm-linkerd2/",
        meshedNamespaces=["default", "shop"],
        qotmNamespace="shop",
    ),
    # the key of the other role, read as Pulumi hands it over (JSON text)
    t("gatewayAddresses-on-target", "gatewayAddresses", '["0.0.0.0"]', gatewayAddresses=["0.0.0.0"]),  # noqa: S104
    # manifests that are not the product's, for Emissary too
    Case(
        "edgeStackManifest-emissary-names-edge-stack",
        {"edgeStackProduct": "emissary"},
        "edgeStackManifest",
        None,
        files={
            "edgeStackManifest": manifest_with(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: edge-stack, namespace: ambassador}\n"
                "spec: {template: {}}\n"
                "---\napiVersion: v1\nkind: Service\nmetadata: {name: edge-stack, namespace: ambassador}\nspec: {ports: []}\n"
            )
        },
    ),
    f(
        "edgeStackManifest-only-crds",
        "edgeStackManifest",
        manifest_with(
            "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: mappings.getambassador.io}\n"
        ),
    ),
    f(
        "edgeStackManifest-deployment-spec-list",
        "edgeStackManifest",
        manifest_with(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: edge-stack, namespace: ambassador}\nspec: [1]\n"
            "---\napiVersion: v1\nkind: Service\nmetadata: {name: edge-stack, namespace: ambassador}\nspec: {ports: []}\n"
        ),
    ),
    # manifests: unreadable, huge, recursive, not YAML, not Kubernetes
    read("edgeStackCrds-missing-file", "edgeStackCrds", "/nowhere/crds.yaml"),
    read("edgeStackManifest-missing-file", "edgeStackManifest", "/nowhere/aes.yaml"),
    read("edgeStackManifest-passwd", "edgeStackManifest", "/etc/passwd"),
    read("edgeStackCrds-device", "edgeStackCrds", "/dev/zero"),
    read("edgeStackCrds-directory", "edgeStackCrds", str(FIXTURES)),
    t("edgeStackManifest-space", "edgeStackManifest", "a b.yaml", edgeStackManifest="a b.yaml"),
    f("edgeStackManifest-alias-bomb", "edgeStackManifest", manifest_with(ALIAS_BOMB)),
    f(
        "edgeStackCrds-alias-bomb",
        "edgeStackCrds",
        manifest_with("apiVersion: v1\nkind: List\n" + ALIAS_BOMB.replace("a:", "items:", 1)),
    ),
    f("edgeStackManifest-deep", "edgeStackManifest", manifest_with("[" * 100_000)),
    f("edgeStackManifest-huge", "edgeStackManifest", huge_file),
    f("edgeStackManifest-empty", "edgeStackManifest", manifest_with("")),
    f("edgeStackManifest-list", "edgeStackManifest", manifest_with("- apiVersion: v1\n  kind: Namespace\n")),
    f("edgeStackManifest-no-kind", "edgeStackManifest", manifest_with("apiVersion: v1\nmetadata: {name: x}\n")),
    f("edgeStackManifest-invalid", "edgeStackManifest", manifest_with("apiVersion: v1\nkind: [Namespace\n")),
    f("edgeStackCrds-binary", "edgeStackCrds", manifest_with("\x00\x01\x02 secret-looking text")),
    # a manifest that is not the product's: no Deployment or Service to mesh and patch, or no shape to patch
    f(
        "edgeStackManifest-no-deployment",
        "edgeStackManifest",
        manifest_with("apiVersion: v1\nkind: Service\nmetadata: {name: edge-stack, namespace: ambassador}\nspec: {ports: []}\n"),
    ),
    f(
        "edgeStackManifest-no-service",
        "edgeStackManifest",
        manifest_with(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: edge-stack, namespace: ambassador}\nspec: {template: {}}\n"
        ),
    ),
    f(
        "edgeStackManifest-other-namespace",
        "edgeStackManifest",
        manifest_with(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: edge-stack, namespace: default}\nspec: {template: {}}\n"
        ),
    ),
    f(
        "edgeStackManifest-deployment-without-template",
        "edgeStackManifest",
        manifest_with(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: edge-stack, namespace: ambassador}\nspec: {replicas: 1}\n"
            "---\napiVersion: v1\nkind: Service\nmetadata: {name: edge-stack, namespace: ambassador}\nspec: {ports: []}\n"
        ),
    ),
    f(
        "edgeStackManifest-service-without-ports",
        "edgeStackManifest",
        manifest_with(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: edge-stack, namespace: ambassador}\nspec: {template: {}}\n"
            "---\napiVersion: v1\nkind: Service\nmetadata: {name: edge-stack, namespace: ambassador}\nspec: {ports: 80}\n"
        ),
    ),
]


@pytest.fixture
def deadline() -> Iterator[None]:
    """A case that hangs fails at SECONDS * 4 instead of hanging the run (where Python gets control back)."""

    def expire(signum: int, frame: object) -> None:
        raise TimeoutError(f"still running after {SECONDS * 4} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(SECONDS * 4)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def values_for(case: Case, folder: Path) -> dict[str, Any]:
    base = source_config(edgeStackProduct="emissary") if case.stack == "source" else target_config()
    if case.change.get("edgeStackProduct") == "emissary":
        base.update(target_config(edgeStackProduct="emissary"))
    for key, value in case.change.items():
        if value is REMOVE:
            base.pop(key, None)
        else:
            base[key] = value
    for key, make in case.files.items():
        base[key] = make(folder)
    return base


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
@pytest.mark.usefixtures("deadline")
def test_bad_config_is_refused_before_anything_with_key_and_value(case: Case, tmp_path: Path) -> None:
    values = values_for(case, tmp_path)
    shown = case.files[case.key](tmp_path) if case.key in case.files else case.value
    started = time.monotonic()
    references = None
    if case.target:
        outputs = target_outputs(values.get("versionLine", "current"), values.get("edgeStackProduct", "edge-stack"))
        references = {values["targetStack"]: {**outputs, **case.target}}
    run = run_refused(case.stack, values, secret_config=case.secrets, stack_references=references)
    elapsed = time.monotonic() - started
    message = str(run.error)
    assert isinstance(run.error, errors.ConfigError), f"{type(run.error).__name__}: {message[:500]}"
    assert run.error.key == case.key, message[:500]
    prefix = f"config aes-linkerd2:{case.key} = "
    assert message.startswith(prefix), message[:500]
    # The value, as repr shows it, bounded.
    assert message[len(prefix) :].startswith(repr(shown)[: SHOWN_LIMIT // 2]), message[:500]
    assert len(message) <= len(prefix) + SHOWN_LIMIT + 300, f"{len(message)} characters"
    assert "Traceback" not in message and "root:x:0:0" not in message and "secret-looking" not in message
    assert "do-not-show-me" not in message
    if case.reason is not None:
        assert message == f"{prefix}{errors.shown(shown)}: {case.reason}"
    assert not (Path.cwd() / "PWNED").exists()
    assert elapsed < SECONDS, f"{elapsed:.1f} s"


def test_the_table_covers_every_key_the_program_reads() -> None:
    import yaml

    declared = set(yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"])
    undeclared = {"edgeStackLicenseKey", "tlsCertificate", "tlsPrivateKey", "qotm"}
    assert (declared | undeclared) - {case.key for case in CASES} == set()
    assert len(CASES) + len(BROKEN_STACK_FILES) >= 100


def aliases_and_anchors(path: Path) -> list[object]:
    import yaml

    events = yaml.parse(path.read_text(), Loader=yaml.CSafeLoader)
    return [e for e in events if isinstance(e, yaml.AliasEvent) or getattr(e, "anchor", None)]


@pytest.mark.parametrize("name", REFERENCE_FILES)
def test_upstreams_manifests_use_no_yaml_aliases(name: str) -> None:
    """Refusing aliases costs nothing upstream: none of its manifests uses an anchor or an alias."""
    assert aliases_and_anchors(upstream_file(name)) == []


def test_the_projects_own_manifests_use_no_yaml_aliases() -> None:
    paths = sorted(FIXTURES.glob("*.yaml"))
    assert [p.name for p in paths] == ["edge-stack-3.yaml", "emissary-3.yaml", "getambassador-crds.v3alpha1.yaml"]
    for path in paths:
        assert aliases_and_anchors(path) == [], path


BROKEN_STACK_FILES = [
    ("empty", "", "is empty: a settings file is a mapping with a `config:` section"),
    ("config-list", "config:\n  - aes-linkerd2:role: target\n", "`config` must be a mapping of <project>:<key> to values"),
    ("top-level-list", "- config\n", "is a list: a settings file is a mapping with a `config:` section"),
    ("invalid-yaml", "config: {aes-linkerd2:role: [target\n", "is not valid YAML at line 2, column 1"),
    ("number-keys", "config:\n  1: target\n", "`config` must be a mapping of <project>:<key> to values"),
    ("alias-bomb", ALIAS_BOMB + "config: {aes-linkerd2:role: *i}\n", "uses YAML aliases (*name): write each value out"),
    ("deep", "config: " + "[" * 100_000 + "\n", "nests deeper than 50 levels"),
    ("huge", "config:\n  aes-linkerd2:role: target\n" + "#" * (1024 * 1024) + "\n", "bytes: a settings file is at most"),
    ("passwd", "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n", "is a str"),
    ("config-scalar", "config: target\n", "`config` must be a mapping of <project>:<key> to values"),
    ("not-utf8", "config:\n  aes-linkerd2:role: \udcff\n", "cannot be read"),
]


@pytest.mark.parametrize(("text", "message"), [c[1:] for c in BROKEN_STACK_FILES], ids=[c[0] for c in BROKEN_STACK_FILES])
@pytest.mark.usefixtures("deadline")
def test_broken_stack_file_is_one_error_naming_the_file(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "Pulumi.yaml").write_text((ROOT / "Pulumi.yaml").read_text())
    stack_file = tmp_path / "Pulumi.target.yaml"
    stack_file.write_bytes(text.encode("utf-8", "surrogateescape"))
    started = time.monotonic()
    with pytest.raises(DriverError) as raised:
        read_settings(tmp_path, "target")
    error = str(raised.value)
    assert error.startswith(str(stack_file)) and message in error, error[:500]
    assert "root:x" not in error and "Traceback" not in error and len(error) < 300
    assert raised.value.exit_code == 2
    assert time.monotonic() - started < SECONDS
