"""The pre-flight: everything that can be known wrong before a stack runs, listed at once.

`./aes-linkerd2 check` prints every check; `up`, `preview`, `refresh` and `destroy` run the same
checks first and stop, having applied nothing, when any fails. Each check is independent, so one
problem never hides the next: a new user learns in one run that the Pulumi CLI is missing, the
passphrase unset, a context unknown and a cluster too small for `linkerdHa`.

No check needs the Pulumi CLI to run: the stack files are read and validated with the program's own
rules (`support.config.load` on the file's values), the clusters are asked with `kubectl`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from driver.settings import STACKS, DriverError, StackSettings, read_settings
from support import tools, upstream
from support.clusters import check_cluster, check_line_fits
from support.config_model import ClusterAccess, StackConfig
from support.errors import ConfigError
from support.live_cluster import ListError, by_name, list_items
from support.namespaces import problems as namespace_problems
from support.project import PROJECT

PULUMI_INSTALL = "https://www.pulumi.com/docs/install/"
PASSPHRASE_VARIABLES = ("PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE")
# Linkerd's HA charts spread three replicas with required anti-affinity on the node's hostname.
HA_NODES = 3
# What every operation needs; `up`, `preview` and `refresh` run the program, which needs the rest.
RUNS_PROGRAM = ("up", "preview", "refresh", "check")

RunTool = Callable[[list[str]], str]


@dataclass(frozen=True)
class Finding:
    """One check: what was checked, whether it passed, and what was found (or how to fix it)."""

    subject: str  # "<stack>: <what>" for a stack's check
    ok: bool
    message: str
    # The stack checked, for a stack's check (None for the machine's: the Pulumi CLI, the passphrase).
    stack: str | None = None

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'}  {self.subject}: {self.message}"

    @property
    def what(self) -> str:
        """The subject without its stack: the same check of two stacks has the same `what`."""
        return self.subject.removeprefix(f"{self.stack}: ") if self.stack else self.subject


def stack_finding(stack: str, what: str, ok: bool, message: str) -> Finding:
    return Finding(f"{stack}: {what}", ok, message, stack)


def unfinished(stack: str, marker: Path) -> Finding:
    """A stack whose last `up` or `destroy --skip-checkpoints` did not end: its state may not be what is live."""
    try:
        found = json.loads(marker.read_text(encoding="utf-8"))
        operation, started = str(found["operation"]), str(found["started"])
    except (OSError, ValueError, KeyError, TypeError):
        operation, started = "up", "at an unknown time"
    if operation == "destroy":
        lacks = "may still list what it deleted"
        repair = f"`./aes-linkerd2 refresh --stack {stack}` drops from the state what is gone."
    else:
        lacks = "may not list what it made"
        repair = (
            f"`./aes-linkerd2 preview --stack {stack}` shows what the state lacks: each object it plans to create that "
            "already exists must be imported (`pulumi import`) or deleted first."
        )
    return stack_finding(
        stack,
        f"last {operation}",
        False,
        f"`{operation} --skip-checkpoints`, started {started}, did not end, so the stack's state {lacks}. {repair} "
        f"Then remove {marker} and run again (a killed run also leaves the stack locked: "
        f"`pulumi cancel --stack {stack} --yes` lets it go).",
    )


@dataclass(frozen=True)
class Tools:
    """How the pre-flight reaches the outside world (replaced in tests)."""

    which: Callable[[str], str | None]
    run: RunTool
    find_linkerd: Callable[[str], str | None]
    # (stack, settings, fetch): the set-up's items for the stack, each there (fetched first when asked) or not.
    release_files: Callable[[str, StackSettings, bool], list[Finding]]


def pulumi_cli(project_dir: Path, which: Callable[[str], str | None], run: RunTool) -> Finding:
    wanted = _pulumi_version_wanted(project_dir)
    if which("pulumi") is None:
        return Finding("Pulumi CLI", False, f"`pulumi` is not on PATH: install {wanted} ({PULUMI_INSTALL})")
    try:
        found = run(["pulumi", "version"]).strip()
    except DriverError as error:
        return Finding("Pulumi CLI", False, f"`pulumi version` failed: {error}")
    if _version_tuple(found) < _version_tuple(wanted):
        return Finding("Pulumi CLI", False, f"is {found}, older than {wanted} (.pulumi-version): upgrade it ({PULUMI_INSTALL})")
    return Finding("Pulumi CLI", True, found)


def passphrase(backend_url: str, environ: Mapping[str, str]) -> Finding:
    if not backend_url.startswith("file://"):
        return Finding(
            "secrets", True, f"the backend {backend_url.split('://', maxsplit=1)[0]}:// keeps its own secrets provider"
        )
    if any(environ.get(v) for v in PASSPHRASE_VARIABLES):
        return Finding("PULUMI_CONFIG_PASSPHRASE", True, "set")
    return Finding(
        "PULUMI_CONFIG_PASSPHRASE",
        False,
        "not set: the local backend encrypts the stacks' secrets with it (export PULUMI_CONFIG_PASSPHRASE=... or "
        "PULUMI_CONFIG_PASSPHRASE_FILE=...)",
    )


def stack_file(project_dir: Path, stack: str) -> tuple[StackSettings | None, Finding]:
    subject = f"Pulumi.{stack}.yaml"
    try:
        settings = read_settings(project_dir, stack)
    except DriverError as error:
        return None, Finding(subject, False, str(error), stack)
    return settings, Finding(subject, True, "read", stack)


def stack_config_values(settings: StackSettings, stack: str) -> tuple[StackConfig | None, Finding]:
    """The stack's config through the program's own parser (support.config.load), without the Pulumi CLI or a cluster."""
    subject = f"Pulumi.{stack}.yaml config"
    try:
        parsed = settings.config()
    except ConfigError as error:
        return None, Finding(subject, False, str(error), stack)
    return parsed, Finding(subject, True, "valid", stack)


def namespaces(stack: str, cfg: StackConfig, run: RunTool) -> list[Finding]:
    """Each meshed namespace as the cluster has it: one to create must not be someone else's, one to patch must exist.

    pulumi-kubernetes creates with server-side apply: a create over an existing namespace would take it
    over, and `destroy` would then delete it with everything in it.
    """
    what = f"meshedNamespaces on {cfg.cluster.context}"
    try:
        items = list_items(run, cfg.kubectl, cfg.cluster, "namespaces")
    except (DriverError, ListError) as error:
        return [stack_finding(stack, what, False, f"cannot list the cluster's namespaces: {error}")]
    found = [stack_finding(stack, f"{what}: {name}", False, why) for name, why in namespace_problems(cfg, stack, by_name(items))]
    return found or [stack_finding(stack, what, True, ", ".join(cfg.workloads.meshed_namespaces) or "none")]


def clusters_of(settings: StackSettings) -> list[tuple[str, str, str, str | None]]:
    """(key, context, kubeconfig key, kubeconfig) of each cluster the stack reaches."""
    context = settings.get("context")
    found: list[tuple[str, str, str, str | None]] = []
    if context is not None:
        found.append(("context", str(context), "kubeconfig", settings.get("kubeconfig")))
    target = settings.get("targetContext")
    if settings.get("role") == "source" and target is not None:
        kubeconfig = settings.get("targetKubeconfig") or settings.get("kubeconfig")
        found.append(("targetContext", str(target), "targetKubeconfig", kubeconfig))
    return found


def cluster(
    stack: str, settings: StackSettings, *, key: str, context: str, kubeconfig_key: str, kubeconfig: str | None
) -> Finding:
    what = f"{key} {context}"
    try:
        version = check_cluster(key, context, kubeconfig_key, kubeconfig, require_kubeconfig=True)
    except ConfigError as error:
        return stack_finding(stack, what, False, str(error))
    try:
        if version is not None:
            check_line_fits(settings.line, version, context)
    except ConfigError as error:
        # An unknown versionLine is the config check's finding; here only a known line that cannot install is.
        if error.key != "versionLine" or error.value in upstream.VERSION_LINES:
            return stack_finding(stack, what, False, str(error))
    return stack_finding(stack, what, True, "API server answers" + (f", Kubernetes {version[0]}.{version[1]}" if version else ""))


def ha_nodes(stack: str, settings: StackSettings, context: str, kubeconfig: str | None, run: RunTool) -> Finding | None:
    """With `linkerdHa`, the cluster needs three nodes a pod can be scheduled on."""
    if str(settings.get("linkerdHa")).lower() == "false":
        return None
    what = f"linkerdHa on {context}"
    kubectl = str(settings.get("kubectl") or "kubectl")
    try:
        nodes = list_items(run, kubectl, ClusterAccess(context=context, kubeconfig=kubeconfig), "nodes")
    except (DriverError, ListError) as error:
        return stack_finding(stack, what, False, f"cannot count the cluster's nodes: {error}")
    usable = [node for node in nodes if _schedulable(node)]
    if len(usable) >= HA_NODES:
        return stack_finding(stack, what, True, f"{len(usable)} schedulable nodes")
    return stack_finding(
        stack,
        what,
        False,
        f"config {PROJECT}:linkerdHa = true needs {HA_NODES} schedulable nodes (required anti-affinity); "
        f"the cluster has {len(usable)} of {len(nodes)} nodes schedulable: add nodes (scripts/kind-clusters makes "
        f"{HA_NODES + 1} each) or `pulumi config set linkerdHa false --stack {stack}`",
    )


def linkerd_cli(stack: str, settings: StackSettings, tools_: Tools) -> Finding | None:
    """The linkerd CLI the program would run is the pinned release; None where the config refuses the keys."""
    try:
        pinned, binary = settings.linkerd_version, settings.linkerd_cli(tools_.find_linkerd)
    except ConfigError:
        return None  # the config check names the key
    what = f"linkerd CLI {pinned}"
    configured = settings.get("linkerdCli")
    if tools_.which(binary) is None:
        where = "config aes-linkerd2:linkerdCli" if configured else f"looked for {tools.where_to_look(pinned)}"
        return stack_finding(stack, what, False, f"not found ({where})")
    try:
        found = tools_.run([binary, *tools.LINKERD_VERSION_ARGS]).strip()
    except DriverError as error:
        return stack_finding(stack, what, False, str(error))
    if found != pinned:
        blame = "config aes-linkerd2:linkerdCli" if configured else "the `linkerd` on PATH"
        fix = f"`./aes-linkerd2 setup` fetches {pinned}"
        return stack_finding(stack, what, False, f"{blame} `{binary}` is {found[:80]!r}, not {pinned!r}: {fix}")
    return stack_finding(stack, what, True, binary)


def run_checks(
    project_dir: Path,
    stacks: Sequence[str],
    operation: str,
    *,
    backend_url: str,
    environ: Mapping[str, str],
    tools_: Tools,
) -> list[Finding]:
    """Every check `operation` needs, each independent of the others' results."""
    findings = [pulumi_cli(project_dir, tools_.which, tools_.run), passphrase(backend_url, environ)]
    for stack in stacks:
        findings.extend(stack_checks(project_dir, stack, operation, tools_))
    return findings


def stack_checks(project_dir: Path, stack: str, operation: str, tools_: Tools) -> list[Finding]:
    """One stack's checks: its file, its config, its clusters and, when the program runs, its tools."""
    settings, read = stack_file(project_dir, stack)
    if settings is None:
        return [read]
    if operation not in RUNS_PROGRAM:
        return [read, *_cluster_checks(stack, settings, None, tools_, runs_program=False)]
    parsed, valid = stack_config_values(settings, stack)
    clusters = _cluster_checks(stack, settings, parsed, tools_, runs_program=True)
    return [read, valid, *clusters, *_tool_checks(stack, settings, operation, tools_)]


def _cluster_checks(
    stack: str, settings: StackSettings, parsed: StackConfig | None, tools_: Tools, *, runs_program: bool
) -> list[Finding]:
    """Each cluster the stack reaches answers; this stack's own, when the program runs, has the nodes and namespaces it needs."""
    findings = []
    for key, context, kubeconfig_key, kubeconfig in clusters_of(settings):
        reached = cluster(stack, settings, key=key, context=context, kubeconfig_key=kubeconfig_key, kubeconfig=kubeconfig)
        findings.append(reached)
        if reached.ok and key == "context" and runs_program:
            findings.extend(f for f in [ha_nodes(stack, settings, context, kubeconfig, tools_.run)] if f)
            findings.extend(namespaces(stack, parsed, tools_.run) if parsed is not None else [])
    return findings


def _tool_checks(stack: str, settings: StackSettings, operation: str, tools_: Tools) -> list[Finding]:
    # The set-up first: `up`, `preview` and `refresh` fetch what is missing; `check` only looks.
    fetched = tools_.release_files(stack, settings, operation != "check")
    cli = linkerd_cli(stack, settings, tools_)
    # A CLI the set-up could not get is one problem, said once (with why it could not).
    if cli is None or (not cli.ok and any(f.subject == cli.subject and not f.ok for f in fetched)):
        return fetched
    return [*fetched, cli]


def report(findings: Sequence[Finding], operation: str) -> str:
    """The failed checks as one message: what `up` and the others stop with."""
    # The same problem in both stacks (one unreachable host, say) is one line naming both.
    stacks_of: dict[tuple[str, str], list[str]] = {}
    for finding in (f for f in findings if not f.ok):
        grouped = finding.stack in STACKS and finding.what != finding.subject
        stacks_of.setdefault((finding.what, finding.message), []).extend([str(finding.stack)] if grouped else [])
    lines = [
        f"  - {', '.join(stacks)}{': ' if stacks else ''}{subject}: {message}" for (subject, message), stacks in stacks_of.items()
    ]
    head = f"{len(lines)} problem{'s' if len(lines) != 1 else ''} found before {operation}; nothing was applied:"
    return "\n".join([head, *lines])


def _schedulable(node: Mapping[str, Any]) -> bool:
    spec, status = node.get("spec") or {}, node.get("status") or {}
    tainted = any(t.get("effect") in ("NoSchedule", "NoExecute") for t in spec.get("taints") or [])
    ready = [c.get("status") for c in status.get("conditions") or [] if c.get("type") == "Ready"]
    return not spec.get("unschedulable") and not tainted and ready[:1] == ["True"]


def _pulumi_version_wanted(project_dir: Path) -> str:
    path = project_dir / ".pulumi-version"
    return "v" + path.read_text(encoding="utf-8").strip().lstrip("v") if path.is_file() else "v3"


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text.split("-", maxsplit=1)[0])[:3])
