"""Releases installed from Helm charts (Emissary 4): located, verified, rendered by `helm template`, checked.

The rendered YAML goes into the same pipeline as a release manifest (components/edge_stack.py): every
object the charts make is a typed, planned resource, listed by `preview` and written by `render`; no
chart is ever installed as an opaque release. A chart is named by `edgeStackCrds`/`edgeStackManifest`:
an `oci://host/repository` reference, pulled by `./aes-linkerd2 setup` (`helm pull`, at the release's
version) into the cache and pinned in aes-linkerd2.lock by the .tgz's sha256 at its first pull, checked at
every later use; or a local chart directory or .tgz (relative to the project). Every refusal names the
key or the tool, before anything is registered.
"""

from __future__ import annotations

import hashlib
import re
import stat
import tempfile
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from support import helm, render_cache, tools, upstream
from support.downloads import DownloadError, UnreachableError, file_sha256, host
from support.errors import ConfigError
from support.lockfile import LOCK_NAME, LockError, LockFile
from support.manifest_input import manifest_problem
from support.manifests import KEEP_ANNOTATION, parse
from support.project import PROJECT_ROOT
from support.upstream_cache import MANIFEST_LIMIT_BYTES, Cached, UpstreamCache

HOOK_ANNOTATION = "helm.sh/hook"
# The only getambassador.io version the current line writes; the CRD chart serves v1/v2 (and its
# conversion webhook, emissary-apiext) only when told to.
SERVED_VERSION = "v3alpha1"
_OCI = re.compile(r"^oci://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[a-z0-9._-]+)+$")
# What helm says when the registry is out of reach (Go's resolver and dialer).
_UNREACHABLE = re.compile(r"no such host|connection refused|network is unreachable|i/o timeout|no route to host")


@dataclass(frozen=True, kw_only=True)
class ChartInput:
    """One chart as the config names it: the key, the value, and the chart it must be."""

    key: str
    location: str
    chart: upstream.HelmChart
    version: str


def lock_key(reference: str, version: str) -> str:
    """How aes-linkerd2.lock names a pulled chart: its reference and version, as `helm pull` takes them."""
    return f"{reference}:{version}"


def cache_name(chart: upstream.HelmChart, reference: str, version: str) -> str:
    """The official chart under its own name; another reference (a mirror) under a name of its own."""
    if reference == chart.reference:
        return chart.cache_name(version)
    tag = hashlib.sha256(reference.encode()).hexdigest()[:16]
    return f"charts/{tag}-{chart.name}-{version}.tgz"


@dataclass(frozen=True)
class ChartCache:
    """Pulled charts in the cache's reference/charts, each checked against the lock file."""

    helm_binary: str | None
    lock: LockFile = field(default_factory=lambda: LockFile(PROJECT_ROOT / LOCK_NAME))
    reference: Path = field(default_factory=tools.reference_dir)

    def chart(self, chart: upstream.HelmChart, reference: str, version: str, *, fetch: bool = True) -> Cached:
        title = f"chart {reference} {version}"
        path = self.reference / cache_name(chart, reference, version)
        key = lock_key(reference, version)
        note = self._not_current(path, key)
        if note is None:
            return Cached(title, "have", path)
        if not fetch:
            return Cached(title, "missing", path, note)
        self.lock.record(key, self._pull(reference, version, path))
        return Cached(title, "fetched", path)

    def _not_current(self, path: Path, key: str) -> str | None:
        """Why the cached chart cannot be used (absent, or not the digest the lock records), or None."""
        recorded = self.lock.digest(key)
        if not path.is_file():
            return "not in the cache"
        if recorded is None:
            return "no digest recorded yet"
        return None if file_sha256(path) == recorded else f"its sha256 is not the one {self.lock.path} records"

    def _pull(self, reference: str, version: str, path: Path) -> str:
        """`helm pull` into a scratch folder beside `path`, checked against the lock, then moved there; its sha256."""
        key = lock_key(reference, version)
        if self.helm_binary is None:
            raise DownloadError(key, f"helm is needed to pull it, and none was found ({helm.where_to_look()})")
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".pull-", dir=path.parent) as scratch:
            try:
                helm.run(self.helm_binary, "pull", reference, "--version", version, "--destination", scratch)
            except helm.HelmError as error:
                if _UNREACHABLE.search(str(error)):
                    raise UnreachableError(reference) from None
                raise DownloadError(key, str(error)) from None
            pulled = sorted(Path(scratch).glob("*.tgz"))
            if len(pulled) != 1:
                raise DownloadError(key, f"`helm pull` left {len(pulled)} chart archives, not one")
            digest = file_sha256(pulled[0])
            self.lock.check(key, digest)
            pulled[0].replace(path)
        return digest


def release_inputs(product: upstream.EdgeStackProduct, version: str, crds: str, manifest: str) -> tuple[ChartInput, ChartInput]:
    release = product.charts[version]
    return (
        ChartInput(key="edgeStackCrds", location=crds, chart=release.crds, version=version),
        ChartInput(key="edgeStackManifest", location=manifest, chart=release.app, version=version),
    )


def require_helm(configured: str | None, what: str) -> str:
    """The helm to run: the configured one (checked), else the pinned release found in the cache or on PATH."""
    if configured is None:
        found = helm.find_helm()
        if found is None:
            raise ConfigError("helm", None, f"no helm v{helm.HELM_VERSION} found ({helm.where_to_look()}): {what}")
        return found
    said = helm.client_version(configured)
    if said is None:
        raise ConfigError("helm", configured, f"does not run as helm (`helm version` failed): {what}")
    if said not in helm.ACCEPTED_VERSIONS:
        raise ConfigError("helm", configured, f"is helm {said[:40]!r}, not v{helm.HELM_VERSION}")
    return configured


def chart_path(item: ChartInput, cache: ChartCache) -> Path:
    """The chart on this machine: a local directory or .tgz, or an oci:// reference's verified copy in the cache."""
    location = item.location
    if location.lower().startswith("oci://"):
        if not _OCI.fullmatch(location):
            raise ConfigError(
                item.key,
                location,
                f"must be oci://<host>/<repository> without a tag (the version is the release's, {item.version})",
            )
        try:
            return cache.chart(item.chart, location, item.version).path
        except (DownloadError, LockError) as error:
            raise ConfigError(
                item.key,
                location,
                f"cannot be pulled ({error}); run {tools.SETUP_COMMAND} where the network reaches it, or name a local copy",
            ) from None
    if re.match(r"^[a-z][a-z0-9+.-]*://", location, re.IGNORECASE):
        raise ConfigError(item.key, location, "names a chart: an oci:// reference, or a local chart directory or .tgz")
    return _local_chart(item)


def _local_chart(item: ChartInput) -> Path:
    """A chart directory (with its Chart.yaml) or a chart archive, relative to the project."""
    location = item.location
    path = Path(location).expanduser()
    path = path if path.is_absolute() else PROJECT_ROOT / path
    try:
        status = path.stat()
    except OSError as error:
        raise ConfigError(item.key, location, f"cannot be read ({error.strerror}): name the chart's directory or .tgz") from None
    if stat.S_ISDIR(status.st_mode):
        if not (path / "Chart.yaml").is_file():
            raise ConfigError(item.key, location, f"is a directory without Chart.yaml: it is not the {item.chart.name} chart")
    elif not stat.S_ISREG(status.st_mode) or not path.name.endswith((".tgz", ".tar.gz")):
        raise ConfigError(item.key, location, "must be a chart directory or a chart archive (.tgz)")
    elif status.st_size > MANIFEST_LIMIT_BYTES:
        raise ConfigError(item.key, location, f"is {status.st_size} bytes, more than a chart's {MANIFEST_LIMIT_BYTES}")
    return path


def _helm_reading(chart: Path, binary: str, *args: str, stdin: str | None = None) -> str:
    """helm's stdout for a command that reads the local `chart` and no cluster: from the render cache when kept."""
    name = render_cache.helm_key([binary, *args], stdin, chart)
    kept = render_cache.read(name) if name else None
    if kept is not None:
        return kept
    output = helm.run(binary, *args, stdin=stdin)
    if name:
        render_cache.write(name, output)
    return output


def check_chart(item: ChartInput, binary: str, path: Path) -> None:
    """The chart is the one the release publishes: its Chart.yaml's name and version, as helm reads them."""
    try:
        described = yaml.safe_load(_helm_reading(path, binary, "show", "chart", str(path)))
    except helm.HelmError as error:
        raise ConfigError(item.key, item.location, f"helm cannot read it as a chart ({error})") from None
    except yaml.YAMLError:
        described = None
    name, version = (described.get("name"), described.get("version")) if isinstance(described, dict) else (None, None)
    if (name, version) != (item.chart.name, item.version):
        raise ConfigError(item.key, item.location, f"is chart {name!s:.60} {version!s:.20}, not {item.chart.name} {item.version}")


def crd_values(namespace: str) -> dict[str, Any]:
    """v3alpha1 only: no v1/v2, so no conversion webhook and no emissary-apiext."""
    return {"enableLegacyVersions": False, "enableV1": False, "emissary": {"namespace": namespace}}


def app_values(add_linkerd_headers: bool) -> dict[str, Any]:
    """What the page needs of the main chart; everything else stays the chart's default."""
    return {
        # The program makes (and owns) the namespace, as for release YAML.
        "createNamespace": False,
        # The program's own Listeners (support/ambassador.py), as on every current-line product.
        "createDefaultListeners": False,
        # No apiext to wait for: the CRD chart serves v3alpha1 alone.
        "waitForApiext": {"enabled": False},
        # The page uses Mappings, not Ingresses; a cluster-wide IngressClass `ambassador` is not ours to own.
        "ingressClassResource": {"enabled": False},
        # The chart's own Module carries the option: one Module, no second one from the program.
        "module": {"add_linkerd_headers": add_linkerd_headers},
        # The ports the gateway patches name and extend (mc-probe on 80, mc-gateway added), written out so a
        # changed chart default cannot move them.
        "service": {
            "type": "LoadBalancer",
            "ports": [
                {"name": "http", "port": 80, "targetPort": upstream.HTTP_LISTENER_PORT},
                {"name": "https", "port": 443, "targetPort": upstream.HTTPS_LISTENER_PORT},
            ],
        },
    }


def template(item: ChartInput, binary: str, path: Path, values: Mapping[str, Any]) -> str:
    """`helm template` of the chart with `values`, checked to be a plain manifest with no hooks."""
    try:
        text = _helm_reading(
            path,
            binary,
            "template",
            item.chart.release,
            str(path),
            "--namespace",
            item.chart.namespace,
            "--skip-tests",
            "--values",
            "-",
            stdin=yaml.safe_dump(dict(values)),
        )
    except helm.HelmError as error:
        raise ConfigError(item.key, item.location, f"helm could not render it ({error})") from None
    problem = manifest_problem(text)
    if problem is not None:
        raise ConfigError(item.key, item.location, f"helm rendered no manifest this program applies: {problem}")
    for obj in parse(text):
        annotations = obj.body["metadata"].get("annotations") or {}
        if HOOK_ANNOTATION in annotations:
            raise ConfigError(item.key, item.location, f"renders {obj.key} as a helm hook: a step this program cannot plan")
        if KEEP_ANNOTATION in annotations and obj.kind != "CustomResourceDefinition":
            raise ConfigError(item.key, item.location, f"renders {obj.key} kept by helm on uninstall: not this release's")
    return text


def check_crds(item: ChartInput, text: str) -> None:
    """The CRD chart renders CustomResourceDefinitions only, each serving and storing v3alpha1 alone, unconverted."""
    for obj in parse(text):
        if obj.kind != "CustomResourceDefinition":
            raise ConfigError(item.key, item.location, f"renders {obj.key}: the CRD chart must render CRDs only (no apiext)")
        spec = obj.body.get("spec") or {}
        versions = [v.get("name") for v in spec.get("versions") or []]
        if versions != [SERVED_VERSION] or (spec.get("conversion") or {}).get("strategy", "None") != "None":
            raise ConfigError(
                item.key,
                item.location,
                f"renders {obj.name} with versions {versions} and a conversion: not {SERVED_VERSION} alone",
            )


def render_release(
    product: upstream.EdgeStackProduct,
    version: str,
    *,
    crds: str,
    manifest: str,
    helm_binary: str | None,
    add_linkerd_headers: bool,
    cache: ChartCache | None = None,
) -> tuple[str, str]:
    """The release's two charts rendered: (CRDs, everything else), each checked, before anything is registered."""
    binary = require_helm(helm_binary, f"{product.name} {version} installs from its charts")
    cache = cache or ChartCache(binary)
    crd_input, app_input = release_inputs(product, version, crds, manifest)
    paths = {item.key: chart_path(item, cache) for item in (crd_input, app_input)}
    # The four helm runs only read the charts: they run at once (the program waits for them before its first
    # registration), and their results are taken in this order, so the first problem is the one reported.
    with ThreadPoolExecutor(max_workers=4) as pool:
        checks = [pool.submit(check_chart, item, binary, paths[item.key]) for item in (crd_input, app_input)]
        crds_job = pool.submit(template, crd_input, binary, paths[crd_input.key], crd_values(product.namespace))
        app_job = pool.submit(template, app_input, binary, paths[app_input.key], app_values(add_linkerd_headers))
        for check in checks:
            check.result()
        crds_yaml = crds_job.result()
        check_crds(crd_input, crds_yaml)
        if app_input.chart.namespace != product.namespace:
            raise ValueError(f"{product.name}'s chart installs into {app_input.chart.namespace}, not {product.namespace}")
        return crds_yaml, app_job.result()


# --- What `./aes-linkerd2 setup` (and the pre-flight) has or fetches for a release from charts -----------
@dataclass(frozen=True)
class SetupEntry:
    """One thing to have: its title, the host it comes from, and how to get (or only look for) it."""

    title: str
    host: str
    get: Callable[[bool], Cached]  # argument: fetch when missing


def helm_cached(configured: str | None, cache: UpstreamCache, fetch: bool) -> Cached:
    """The helm the stack runs: the configured one, or the pinned release found, or fetched into bin/helm-<version>."""
    title = f"helm v{helm.HELM_VERSION}"
    if configured is not None:
        said = helm.client_version(configured)
        if said in helm.ACCEPTED_VERSIONS:
            return Cached(title, "have", Path(configured))
        return Cached(title, "missing", Path(configured), f"config aes-linkerd2:helm says {said or 'nothing'} to `helm version`")
    found = helm.find_helm()
    if found is not None:
        return Cached(title, "have", Path(found))
    target = cache.bin / f"helm-{helm.HELM_VERSION}"
    if not fetch:
        return Cached(title, "missing", target, f"not found ({helm.where_to_look()})")
    target.parent.mkdir(parents=True, exist_ok=True)
    helm.fetch(target, cache.downloader, cache.lock)
    return Cached(title, "fetched", target)


def setup_entries(
    cache: UpstreamCache,
    product: upstream.EdgeStackProduct,
    version: str,
    setting: Callable[[str], Any] = lambda _: None,
) -> list[SetupEntry]:
    """helm, and each chart the stack names by an oci:// reference (a local chart is the user's own).

    `setting` reads the stack's value of a key (`helm`, `edgeStackCrds`, `edgeStackManifest`), None when unset.
    """
    helm_configured = setting("helm")
    entries = [
        SetupEntry(
            f"helm v{helm.HELM_VERSION}", host(helm.helm_asset().url), lambda fetch: helm_cached(helm_configured, cache, fetch)
        )
    ]
    release = product.charts[version]
    for key, chart in (("edgeStackCrds", release.crds), ("edgeStackManifest", release.app)):
        reference = str(setting(key) or chart.reference)
        if not reference.lower().startswith("oci://"):
            continue

        def get(fetch: bool, chart: upstream.HelmChart = chart, reference: str = reference) -> Cached:
            binary = helm_configured or helm.find_helm()
            return ChartCache(binary, lock=cache.lock, reference=cache.reference).chart(chart, reference, version, fetch=fetch)

        entries.append(SetupEntry(f"{product.name} {version} chart {chart.name}", host(reference), get))
    return entries


def every_chart_release() -> list[tuple[upstream.EdgeStackProduct, str]]:
    """Each (product, version) of every line installed from charts (what `setup --all` fetches)."""
    return [
        (product, version)
        for line in upstream.VERSION_LINES.values()
        for product in line.edge_stack.values()
        for version in product.charts
    ]
