"""The clusters a stack names, checked before anything is planned: the context, the API server, its version."""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import socket
import ssl
import urllib.parse
import urllib.request
from typing import Any

import yaml

from support import upstream
from support.config_model import SourceRole, StackConfig
from support.errors import ConfigError
from support.project import PROJECT_ROOT
from support.yaml_events import SAFE_LOADER, shape_problem

# Set by offline tools (the driver's `render`) that evaluate the program without any cluster.
OFFLINE_ENV = "AES_LINKERD2_OFFLINE"
# Set by the driver for the stacks it runs once its pre-flight passed: it checked the clusters (and the
# linkerd CLI) already, so the program does not ask them again. Plain `pulumi up` leaves it unset.
PREFLIGHT_ENV = "AES_LINKERD2_PREFLIGHT_PASSED"


def checked_by_preflight() -> bool:
    return bool(os.environ.get(PREFLIGHT_ENV))


# A kubeconfig is a few kilobytes (certificates inline); anything near this is not one.
KUBECONFIG_LIMIT_BYTES = 4 * 1024 * 1024


def _kubeconfig_paths(kubeconfig: str | None) -> list[str]:
    """The kubeconfig files kubectl would read, as it finds them: the given path, $KUBECONFIG, ~/.kube/config."""
    paths = [kubeconfig] if kubeconfig else os.environ.get("KUBECONFIG", "").split(os.pathsep)
    return [p for p in [p for p in paths if p] or [os.path.expanduser("~/.kube/config")] if os.path.isfile(p)]


def _kubeconfig_documents(kubeconfig: str | None, key: str) -> list[dict[str, Any]] | None:
    """The kubeconfig files kubectl would read, or None where there is none here; a broken one names `key`."""
    documents = [_kubeconfig_document(path, kubeconfig, key) for path in _kubeconfig_paths(kubeconfig)]
    return documents or None


# The provider's kubeconfig, relative to the project (the engine starts the provider in the project's folder).
PROVIDER_KUBECONFIG_DIR = ".kubeconfig"


def provider_kubeconfig(stack: str, context: str, kubeconfig: str | None) -> str | None:
    """The kubeconfig path the provider is given: one that reads the same on every machine.

    The provider keeps its kubeconfig in its inputs, and a file's own path differs between a laptop, a
    colleague's and a CI runner: every preview from elsewhere would show the provider updated. So the
    program links `.kubeconfig/<stack>` in the project to the one file that holds the context (its
    cluster and user too) and gives the provider that relative path. Offline, where the context spans
    files of $KUBECONFIG, or where the project is read-only: the path as given.
    """
    if os.environ.get(OFFLINE_ENV):
        return kubeconfig
    holder = next((path for path in _kubeconfig_paths(kubeconfig) if _holds_context(path, context)), None)
    if holder is None:
        return kubeconfig
    folder = PROJECT_ROOT / PROVIDER_KUBECONFIG_DIR
    link, fresh = folder / stack, folder / f".{stack}.{os.getpid()}"
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        fresh.unlink(missing_ok=True)
        fresh.symlink_to(os.path.abspath(holder))
        fresh.replace(link)  # atomic: a concurrent run of the same stack sees one link or the other
    except OSError:
        return kubeconfig
    return f"{PROVIDER_KUBECONFIG_DIR}/{stack}"


def _holds_context(path: str, context: str) -> bool:
    """Whether the file alone names `context`, its cluster and its user."""
    try:
        document = _kubeconfig_document(path, path, "kubeconfig")
    except ConfigError:
        return False
    entry = next((e.get("context") or {} for e in document.get("contexts") or [] if e.get("name") == context), None)
    if entry is None:
        return False
    user = entry.get("user")
    return entry.get("cluster") in _names(document, "clusters") and (not user or user in _names(document, "users"))


def _names(document: dict[str, Any], part: str) -> set[str]:
    return {str(e.get("name")) for e in document.get(part) or []}


def _kubeconfig_document(path: str, kubeconfig: str | None, key: str) -> dict[str, Any]:
    """One kubeconfig file as a mapping; never shown (it may hold credentials), only named."""
    shown_as = kubeconfig or path
    try:
        if os.path.getsize(path) > KUBECONFIG_LIMIT_BYTES:
            raise ConfigError(key, shown_as, f"is larger than a kubeconfig's {KUBECONFIG_LIMIT_BYTES} bytes")
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        # Aliases are legal in a kubeconfig (kubectl reads them) and cost nothing here: the safe loader
        # shares an aliased node instead of copying it, and only a few lists are read.
        problem = shape_problem(yaml.parse(text, Loader=SAFE_LOADER), _KUBECONFIG_NESTING_LIMIT, aliases=True)
        if problem:
            raise ConfigError(key, shown_as, f"is not a kubeconfig: it {problem}")
        document = yaml.load(text, Loader=SAFE_LOADER)  # noqa: S506 (a safe loader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError) as error:
        raise ConfigError(key, shown_as, f"cannot be read as a kubeconfig ({type(error).__name__})") from None
    problem = _kubeconfig_shape_problem(document)
    if problem:
        raise ConfigError(key, shown_as, problem)
    return document or {}


_KUBECONFIG_LISTS = ("contexts", "clusters", "users")


def _kubeconfig_shape_problem(document: object) -> str | None:
    """Why a parsed document is not a kubeconfig (a mapping of contexts, clusters and users lists of mappings), or None."""
    if document is None:
        return None
    if not isinstance(document, dict) or not all(isinstance(document.get(part) or [], list) for part in _KUBECONFIG_LISTS):
        return "is not a kubeconfig (a mapping with contexts, clusters and users lists)"
    for part in _KUBECONFIG_LISTS:
        if not all(isinstance(entry, dict) for entry in document.get(part) or []):
            return f"is not a kubeconfig: an entry of {part} is not a mapping"
    return None


# A kubeconfig nests a few levels.
_KUBECONFIG_NESTING_LIMIT = 20


def _cluster_entry(documents: list[dict[str, Any]], context: str) -> dict[str, Any]:
    entries = {e.get("name"): e.get("context") or {} for d in documents for e in d.get("contexts") or []}
    clusters = {e.get("name"): e.get("cluster") or {} for d in documents for e in d.get("clusters") or []}
    entry = clusters.get(entries.get(context, {}).get("cluster"), {})
    return entry if isinstance(entry, dict) else {}


def server_version(cluster: dict[str, Any]) -> tuple[int, int] | None:
    """The Kubernetes version the API server reports at /version, or None where it cannot be read here.

    /version needs no credentials (every cluster grants it to all), only the kubeconfig's trust in
    the server. None means "not known": the check it feeds is then left to `kubernetesVersion`.
    """
    server = str(cluster.get("server") or "")
    if not server.startswith("https://"):
        return None
    context = ssl.create_default_context()
    try:
        if cluster.get("insecure-skip-tls-verify"):
            context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        elif cluster.get("certificate-authority-data"):
            context.load_verify_locations(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
        elif cluster.get("certificate-authority"):
            context.load_verify_locations(cafile=str(cluster["certificate-authority"]))
        with urllib.request.urlopen(f"{server.rstrip('/')}/version", context=context, timeout=5) as response:  # noqa: S310
            body = json.loads(response.read(65536))
        # EKS and GKE say "29+": the digits are the version.
        major, minor = (int(re.sub(r"\D", "", str(body[part])) or "x") for part in ("major", "minor"))
    except (OSError, ValueError, KeyError, TypeError, binascii.Error, ssl.SSLError):
        return None
    return major, minor


def check_cluster(
    key: str, context: str, kubeconfig_key: str, kubeconfig: str | None, *, require_kubeconfig: bool = False
) -> tuple[int, int] | None:
    """The context exists in the kubeconfig and its API server answers, before anything is planned.

    Returns the server's Kubernetes version where it can be read (None otherwise). Skipped where
    OFFLINE_ENV is set (rendering without clusters).
    """
    if os.environ.get(OFFLINE_ENV):
        return None
    documents = _kubeconfig_for(key, context, kubeconfig_key, kubeconfig, require_kubeconfig)
    if documents is None:
        return None  # the provider reports a missing kubeconfig itself
    contexts = [e.get("name", "") for d in documents for e in d.get("contexts") or []]
    if context not in contexts:
        raise ConfigError(key, context, f"is not a context of the kubeconfig (it has: {', '.join(contexts) or 'none'})")
    cluster = _cluster_entry(documents, context)
    if not cluster.get("server"):
        return None
    _dial(key, context, str(cluster["server"]))
    return server_version(cluster)


def names_context(context: str, kubeconfig: str | None) -> bool:
    """Whether a kubeconfig kubectl would read here has `context` (an unreadable one is said by check_cluster)."""
    try:
        documents = _kubeconfig_documents(kubeconfig, "kubeconfig")
    except ConfigError:
        return False
    return any(e.get("name") == context for d in documents or [] for e in d.get("contexts") or [])


def _kubeconfig_for(
    key: str, context: str, kubeconfig_key: str, kubeconfig: str | None, require_kubeconfig: bool
) -> list[dict[str, Any]] | None:
    if kubeconfig and not os.path.isfile(kubeconfig):
        raise ConfigError(kubeconfig_key, kubeconfig, "no such kubeconfig file")
    documents = _kubeconfig_documents(kubeconfig, kubeconfig_key)
    if documents is None and require_kubeconfig:
        raise ConfigError(key, context, "no kubeconfig found ($KUBECONFIG, ~/.kube/config) to look the context up in")
    return documents


def _dial(key: str, context: str, server: str) -> None:
    """The API server's port accepts a connection, or a ConfigError naming the context's key."""
    url = urllib.parse.urlparse(server)
    try:
        port = url.port or (443 if url.scheme == "https" else 80)
    except ValueError:
        raise ConfigError(key, context, f"its cluster's server {server[:120]!r} has no valid port") from None
    try:
        socket.create_connection((url.hostname or "", port), timeout=5).close()
    except OSError as error:
        raise ConfigError(key, context, f"its API server {server} is unreachable ({error})") from None


def check_line_fits(line: upstream.VersionLine, version: tuple[int, int], context: str) -> None:
    """Refuse a version line that cannot install on the cluster's Kubernetes, before anything is applied."""
    if not line.supports_kubernetes(version):
        raise ConfigError(
            "versionLine",
            line.name,
            f"the API server of context {context!r} runs Kubernetes {version[0]}.{version[1]}, "
            f"and this line {line.kubernetes_limit} (its CRDs and APIs are gone there)",
        )


def check_stack(cfg: StackConfig) -> None:
    """The clusters a stack's config names answer, and this one runs a Kubernetes its version line installs on.

    What the program checks itself under plain `pulumi up`; the driver's pre-flight checks the same
    (and sets PREFLIGHT_ENV), the offline render skips it (OFFLINE_ENV).
    """
    if checked_by_preflight():
        return
    version = check_cluster("context", cfg.cluster.context, "kubeconfig", cfg.cluster.kubeconfig)
    if version is not None:
        check_line_fits(cfg.line, version, cfg.cluster.context)
    if isinstance(cfg.role, SourceRole):
        check_cluster("targetContext", cfg.role.target.context, "targetKubeconfig", cfg.role.target.kubeconfig)
