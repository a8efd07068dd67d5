"""`setup`: fetch what the stacks need into the project's cache, verified; `--check` only says what is there.

What a stack needs: the linkerd CLI release it pins, and its Edge Stack product's release manifests (or
the https URLs its `edgeStackCrds`/`edgeStackManifest` name; a path is the user's own file); for a release
installed from charts (Emissary 4.1.0), helm and the charts its oci:// references name (support/charts.py). `--all`:
every pinned release of every line. One line per item; the items whose host the network does not reach
share one line, and a host found unreachable is not dialled again.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from driver.preflight import Finding
from driver.settings import STACKS, DriverError, StackSettings, read_settings
from support import charts, upstream
from support.downloads import Downloader, DownloadError, UnreachableError, host
from support.errors import ConfigError
from support.lockfile import LOCK_NAME, LockError, LockFile
from support.project import PROJECT_ROOT
from support.tools import SETUP_COMMAND
from support.upstream_cache import Cached, UpstreamCache

MANIFEST_KEYS = ("edgeStackCrds", "edgeStackManifest")


@dataclass(frozen=True)
class Item:
    """One thing to have: what setup calls it, the host it comes from, and how to get (or only look for) it."""

    title: str
    host: str
    get: Callable[[bool], Cached]  # argument: fetch when missing


def linkerd_item(cache: UpstreamCache, version: str) -> Item:
    asset = upstream.linkerd_cli(version)
    return Item(f"linkerd CLI {version}", host(asset.checksum_url), lambda fetch: cache.linkerd(version, fetch=fetch))


def manifest_item(cache: UpstreamCache, file: upstream.ReleaseFile) -> Item:
    return Item(file.title, host(file.url), lambda fetch: cache.manifest(file, fetch=fetch))


def url_item(cache: UpstreamCache, url: str) -> Item:
    """An https URL a stack names: the catalogue's file, or its own, cached under reference/urls/ and pinned by the lock file."""
    listed = upstream.release_manifest(url)
    if listed is not None:
        return manifest_item(cache, listed)
    return Item(url, host(url), lambda fetch: cache.url(url, fetch=fetch))


def chart_items(
    cache: UpstreamCache, product: upstream.EdgeStackProduct, version: str, settings: StackSettings | None = None
) -> list[Item]:
    """helm and the release's charts (support/charts.py), as the stack names them (none: the official ones)."""
    named = settings.get if settings is not None else lambda _: None
    return [Item(e.title, e.host, e.get) for e in charts.setup_entries(cache, product, version, named)]


def stack_items(cache: UpstreamCache, settings: StackSettings) -> list[Item]:
    """What one stack needs: its linkerd CLI and its two release manifests (none where the config refuses them)."""
    try:
        items = [linkerd_item(cache, settings.linkerd_version)]
        product, version = settings.edge_stack_product()
    except ConfigError:
        return []  # the pre-flight's config check names the key
    if version in product.charts:  # helm and the release's charts (support/charts.py)
        return items + chart_items(cache, product, version, settings)
    files = upstream.edge_stack_files(product, version)
    for key, file in zip(MANIFEST_KEYS, files, strict=True):
        named = str(settings.get(key) or "")
        if not named:
            items.append(manifest_item(cache, file))
        elif named.lower().startswith("https://"):
            items.append(url_item(cache, named))
    return items


def project_cache(project_dir: Path) -> UpstreamCache:
    """The cache with the project's lock file: one per run, so a host found unreachable is not dialled again."""
    return UpstreamCache(downloader=Downloader(), lock=LockFile(project_dir / LOCK_NAME))


def findings(stack: str, settings: StackSettings, *, fetch: bool, cache: UpstreamCache) -> list[Finding]:
    """The pre-flight's view of one stack's set-up: each item there (fetched first when `fetch`), or why not."""
    return [_item_finding(stack, item, fetch) for item in stack_items(cache, settings)]


def _item_finding(stack: str, item: Item, fetch: bool) -> Finding:
    subject = f"{stack}: {item.title}"
    try:
        cached = item.get(fetch)
    except (DownloadError, LockError) as error:
        return Finding(subject, False, str(error), stack)
    if cached.state == "missing":
        why = f" ({cached.note})" if cached.note else ""
        fix = f"`{SETUP_COMMAND}` fetches it where the network reaches {item.host}"
        return Finding(subject, False, f"not in the cache{why}: {fix}", stack)
    return Finding(subject, True, f"{cached.state}: {cached.path}", stack)


def needed(cache: UpstreamCache, project_dir: Path, stacks: Iterable[str], everything: bool) -> list[Item]:
    """The items, each once, in order: the stacks' (or with `everything`, every pinned release's)."""
    if everything:
        items = [linkerd_item(cache, version) for version in upstream.linkerd_versions()]
        items += [manifest_item(cache, file) for file in upstream.release_manifests()]
        for product, version in charts.every_chart_release():
            items += chart_items(cache, product, version)
    else:
        items = [item for stack in stacks for item in stack_items(cache, read_settings(project_dir, stack))]
    return list({item.title: item for item in items}.values())


def run(items: list[Item], *, fetch: bool, out: Callable[[str], None] = print) -> int:
    """Have or fetch each item, one line each; 0 when all are there."""
    network = _Network()
    there = sum(_have(item, fetch, network, out) for item in items)
    if network.unreachable:
        titles = [title for group in network.unreachable.values() for title in group]
        out(f"FAILED   the network does not reach {' or '.join(network.hosts)}: {len(titles)} not fetched ({', '.join(titles)})")
    missing = len(items) - there
    if not missing:
        out(f"setup: all {len(items)} there")
    else:
        out(f"setup: {missing} of {len(items)} missing" + ("" if fetch else f": {SETUP_COMMAND} fetches them"))
    return 0 if there == len(items) else 1


@dataclass
class _Network:
    """What one run learnt of the network: a host it did not reach is not dialled again."""

    unreachable: dict[str, list[str]] = field(default_factory=dict)  # an item's host -> the items it would have given
    hosts: dict[str, None] = field(default_factory=dict)  # the hosts not reached (a redirect's, too), in order


def _have(item: Item, fetch: bool, network: _Network, out: Callable[[str], None]) -> bool:
    """Whether `item` is there (fetched first when asked and its host is not known unreachable); one line said."""
    offline = item.host in network.unreachable
    try:
        cached = item.get(fetch and not offline)
    except UnreachableError as error:
        network.unreachable[item.host] = [item.title]
        network.hosts[error.host] = None
        return False
    except (DownloadError, LockError) as error:
        out(f"FAILED   {item.title}: {error}")
        return False
    if offline and cached.state == "missing":
        network.unreachable[item.host].append(item.title)  # said once, with its host
        return False
    note = f" ({cached.note})" if cached.note else ""
    out(f"{cached.state:<8} {item.title}  {cached.path}{note}")
    return cached.state != "missing"


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="./aes-linkerd2 setup",
        description="Fetch what the stacks need (the linkerd CLI each pins, its Edge Stack release manifests) into the "
        "project's cache, each verified (sha256 from the version table, the release's checksum file or aes-linkerd2.lock)",
    )
    root.add_argument("--stack", choices=STACKS, action="append", help="only this stack (repeatable; default: both)")
    root.add_argument("--project-dir", default=str(PROJECT_ROOT), help="the Pulumi project")
    root.add_argument("--all", action="store_true", help="every pinned release of every version line (what the tests use)")
    root.add_argument("--check", action="store_true", help="only say what is there; fetch nothing")
    return root


def main(argv: list[str], downloader: Downloader | None = None) -> int:
    args = parser().parse_args(argv)
    project_dir = Path(args.project_dir)
    cache = UpstreamCache(downloader=downloader or Downloader(), lock=LockFile(project_dir / LOCK_NAME))
    try:
        items = needed(cache, project_dir, args.stack or STACKS, args.all)
    except DriverError as error:
        print(f"error: {error}")
        return error.exit_code
    return run(items, fetch=not args.check)
