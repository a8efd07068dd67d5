"""The views of a `status` report: aligned text, a rich table for a terminal, and an SVG picture.

(The JSON view is `Report.data()`.) Each takes a finished report and reads nothing else.
"""

from __future__ import annotations

from html import escape

from rich.table import Table
from rich.text import Text

from driver.status.checks import AREAS, FAIL, OK, UNKNOWN, WAITING, ClusterStatus, Report


def lines(report: Report) -> list[tuple[str, str, str, str, str]]:
    """(cluster, area, what, state, detail) rows, in the order of AREAS."""
    rows = []
    for cluster in report.clusters:
        for area in AREAS:
            rows += [(cluster.stack, area, c.name, c.state, c.detail) for c in cluster.checks if c.area == area]
    return rows


def summary(report: Report) -> str:
    failed = [c for c in report.checks if c.state == FAIL]
    unknown = sum(c.state == UNKNOWN for c in report.checks)
    head = "healthy" if not failed else f"NOT HEALTHY: {len(failed)} check(s) failed"
    return f"{head} ({len(report.checks)} checks, {unknown} unknown: nothing real can answer them without running proxies)"


def text(report: Report) -> str:
    """Aligned plain lines: one per check, then the verdict."""
    header = ("cluster", "area", "check", "state", "detail")
    rows = lines(report)
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(4)]
    out = [
        "  ".join([*(cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True)), row[4]]).rstrip()
        for row in [header, *rows]
    ]
    return "\n".join([*out, summary(report)])


def table(report: Report) -> Table:
    """The same as a rich Table, coloured by state, for a terminal."""
    styles = {OK: "green", FAIL: "bold red", UNKNOWN: "dim", WAITING: "yellow"}
    shown = Table(title="aes-linkerd2 status", caption=Text(summary(report)), expand=False)
    for column in ("cluster", "area", "check", "state", "detail"):
        shown.add_column(column, overflow="fold")
    previous = None
    for cluster, area, name, state, detail in lines(report):
        cells = (cluster if cluster != previous else "", area, name)
        shown.add_row(*(Text(cell) for cell in cells), Text(state, style=styles[state]), Text(detail))
        previous = cluster
    return shown


# --- the picture --------------------------------------------------------------------------------

COLOURS = {OK: "#2e7d32", FAIL: "#c62828", UNKNOWN: "#9e9e9e", WAITING: "#f9a825", None: "#9e9e9e"}
FILLS = {OK: "#e8f5e9", FAIL: "#ffebee", UNKNOWN: "#f5f5f5", WAITING: "#fff8e1", None: "#f5f5f5"}
WIDTH, BOX_WIDTH, MARGIN, TOP = 960, 400, 30, 60
# A cluster's box holds one box per area, titled.
TITLES = {
    "control plane": "Linkerd control plane",
    "edge stack": "Edge Stack",
    "exports": "exported services",
    "link": "link and mirrored services",
    "certificates": "identity certificates",
    "trust": "trust rotation",
}
# Where each area's box sits, left and right edges at mid-height: the link's arrow joins two of them.
Anchors = dict[str, tuple[float, float]]


def svg(report: Report) -> str:
    """Both clusters side by side: control plane, Edge Stack (the gateway), exports and mirrors, the link."""
    parts: list[str] = []
    anchors: Anchors = {}
    bottoms = []
    for index, cluster in enumerate(report.clusters):
        x = MARGIN + index * (BOX_WIDTH + WIDTH - 2 * MARGIN - 2 * BOX_WIDTH)
        bottoms.append(_draw_cluster(parts, anchors, cluster, x))
    for cluster in report.clusters:
        parts += _link_arrow(cluster, anchors)
    height = max(bottoms, default=100) + 50
    legend = (
        f'<text x="{MARGIN}" y="{height - 20}" font-size="12">{escape(summary(report))}; '
        f"green ok, red failing, grey unknown</text>"
    )
    return "\n".join([_head(height), *parts, legend, "</svg>", ""])


def _head(height: int) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" '
        'font-family="sans-serif" font-size="14">'
        '<defs><marker id="arrow" markerWidth="10" markerHeight="10" refX="8" refY="3" orient="auto">'
        '<path d="M0,0 L8,3 L0,6 z" fill="#555"/></marker></defs>'
        f'<rect width="{WIDTH}" height="{height}" fill="white"/>'
        f'<text x="{MARGIN}" y="32" font-size="18" font-weight="bold">aes-linkerd2 status</text>'
    )


def _box(parts: list[str], where: tuple[float, float, float, float], state: str | None, title: str, body: list[str]) -> None:
    x, y, w, h = where
    colours = f'fill="{FILLS[state]}" stroke="{COLOURS[state]}" stroke-width="2"'
    parts.append(f'<rect x="{x}" y="{y}" width="{w}" height="{h}" rx="8" {colours}/>')
    parts.append(f'<text x="{x + 10}" y="{y + 20}" font-weight="bold">{escape(title)}</text>')
    for index, line in enumerate(body):
        parts.append(f'<text x="{x + 10}" y="{y + 38 + 16 * index}" font-size="12">{escape(line[:56])}</text>')


def _draw_cluster(parts: list[str], anchors: Anchors, cluster: ClusterStatus, x: int) -> int:
    """One cluster's box with a box per area inside; returns where it ends."""
    inner = _sections(cluster)
    heights = [30 + 16 * len(body) for _, body in inner]
    total = 40 + sum(heights) + 10 * len(inner)
    state = FAIL if any(c.state == FAIL for c in cluster.checks) else OK
    _box(
        parts,
        (x, TOP, BOX_WIDTH, total),
        state,
        f"{cluster.stack}: cluster {cluster.cluster_name} (context {cluster.context})",
        [],
    )
    top = TOP + 34
    for (area, body), height in zip(inner, heights, strict=True):
        title = TITLES[area] + (" = gateway" if area == "edge stack" and cluster.gateway_ports else "")
        _box(parts, (x + 10, top, BOX_WIDTH - 20, height), cluster.area_state(area), title, body)
        anchors[f"{cluster.stack}:{area}"] = (x, top + height / 2)
        anchors[f"{cluster.stack}:{area}:right"] = (x + BOX_WIDTH, top + height / 2)
        top += height + 10
    return TOP + total


def _sections(cluster: ClusterStatus) -> list[tuple[str, list[str]]]:
    """(area, lines) for each box inside the cluster's: exports on the target, the link where there is one."""
    inner = [("control plane", _control_plane_lines(cluster)), ("edge stack", _edge_stack_lines(cluster))]
    if cluster.stack == "target" or cluster.exported:
        exported = [f"exported {name} ({cluster.export_modes.get(name, 'gateway')})" for name in cluster.exported]
        inner.append(("exports", exported or ["nothing exported"]))
    if cluster.linked_to:
        inner.append(("link", _link_lines(cluster)))
    inner.append(("certificates", _certificate_lines(cluster)))
    gates = [f"{c.name}: {c.state}" for c in cluster.checks if c.area == "trust"]
    if gates:
        inner.append(("trust", gates))
    return inner


def _certificate_lines(cluster: ClusterStatus) -> list[str]:
    days = [c.detail.split(" days")[0] for c in cluster.checks if c.area == "certificates"]
    return [f"fewest days left: {min(int(d) for d in days)}" if days else "none reported"]


def _control_plane_lines(cluster: ClusterStatus) -> list[str]:
    checks = [c for c in cluster.checks if c.area == "control plane"]
    hooks = [c for c in checks if c.name.startswith("webhook ")]
    others = [c for c in checks if c not in hooks]
    lines = [f"{sum(c.state == OK for c in others)} of {len(others)} Deployments ready"]
    if hooks:
        lines.append(f"{sum(c.state == OK for c in hooks)} of {len(hooks)} webhooks with endpoints")
    return lines


def _edge_stack_lines(cluster: ClusterStatus) -> list[str]:
    meshed = next((c for c in cluster.checks if c.area == "edge stack" and c.name == "meshed"), None)
    return ["meshed" if meshed and meshed.state == OK else "NOT meshed", *(f"port {p}" for p in cluster.gateway_ports)]


def _link_lines(cluster: ClusterStatus) -> list[str]:
    checks = {c.name: c for c in cluster.checks if c.area == "link"}
    link = checks.get(f"Link {cluster.linked_to}")
    lines = [f"Link {cluster.linked_to}: " + (link.detail.split(" as ")[0] if link and link.state == OK else "missing")]
    for name in ("gateway mirror", "gateway alive, latency"):
        if name in checks:
            lines.append(f"{name}: {checks[name].state}")
    mirrors = [_mirror_line(cluster, name, eps) for name, eps in cluster.mirrored.items()]
    return lines + (mirrors or ["no mirrored services"])


def _mirror_line(cluster: ClusterStatus, name: str, endpoints: list[str]) -> str:
    """A mirror and where its traffic goes: the gateway's endpoints, or its pod-to-pod mode (the target's pods)."""
    mode = cluster.mirror_modes.get(name)
    return f"{name} <- {mode}" if mode else f"{name} <- {', '.join(endpoints) or 'no endpoints'}"


def _link_arrow(cluster: ClusterStatus, anchors: Anchors) -> list[str]:
    """The source's link box to the target's gateway, coloured by the link's state."""
    if not (cluster.linked_to and "target:edge stack:right" in anchors and f"{cluster.stack}:link" in anchors):
        return []
    (x1, y1), (x2, y2) = anchors[f"{cluster.stack}:link"], anchors["target:edge stack:right"]
    link_state = cluster.area_state("link")
    return [
        f'<line x1="{x1}" y1="{y1}" x2="{x2 + 2}" y2="{y2}" stroke="{COLOURS[link_state]}" stroke-width="3" '
        'marker-end="url(#arrow)"/>',
        f'<text x="{(x1 + x2) / 2}" y="{(y1 + y2) / 2 - 8}" font-size="11" text-anchor="middle">'
        f"link {escape(cluster.linked_to)}: {link_state}</text>",
    ]
