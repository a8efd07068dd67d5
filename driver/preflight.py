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
from support import config as stack_config
from support import tools, upstream
from support.linkerd_cli import ClusterAccess

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

    subject: str
    ok: bool
    message: str

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'}  {self.subject}: {self.message}"


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
        return None, Finding(subject, False, str(error))
    return settings, Finding(subject, True, "read")


def stack_config_values(settings: StackSettings, stack: str) -> tuple[stack_config.StackConfig | None, Finding]:
    """The stack's config through the program's own rules, without the Pulumi CLI or a cluster."""
    subject = f"Pulumi.{stack}.yaml config"
    source = stack_config.SettingsSource(settings.values, settings.secret_keys, stack)
    try:
        parsed = stack_config.load(source, check_clusters=False)
    except stack_config.ConfigError as error:
        return None, Finding(subject, False, str(error))
    return parsed, Finding(subject, True, "valid")


def namespaces(stack: str, cfg: stack_config.StackConfig, run: RunTool) -> list[Finding]:
    """Each meshed namespace as the cluster has it: one to create must not be someone else's, one to patch must exist.

    pulumi-kubernetes creates with server-side apply: a create over an existing namespace would take it
    over, and `destroy` would then delete it with everything in it.
    """
    subject = f"{stack}: meshedNamespaces on {cfg.cluster.context}"
    access = ClusterAccess(context=cfg.cluster.context, kubeconfig=cfg.cluster.kubeconfig)
    try:
        items = _kubectl_list(run, cfg.kubectl, access, "namespaces")
    except DriverError as error:
        return [Finding(subject, False, f"cannot list the cluster's namespaces: {error}")]
    live = {str((item.get("metadata") or {}).get("name")): item.get("metadata") or {} for item in items}
    owner = stack_config.namespace_owner(stack)
    found = []
    for name in cfg.workloads.meshed_namespaces:
        listed = name in cfg.workloads.existing_namespaces
        metadata = live.get(name)
        ours = metadata is not None and (metadata.get("annotations") or {}).get(upstream.OWNER_STACK_ANNOTATION) == owner
        if listed and metadata is None:
            found.append(
                Finding(
                    f"{subject}: {name}",
                    False,
                    "is listed in existingNamespaces but does not exist: "
                    "remove it from existingNamespaces and the program creates it",
                )
            )
        elif not listed and metadata is not None and not ours:
            found.append(
                Finding(
                    f"{subject}: {name}",
                    False,
                    "exists and was not created by this stack: add it to existingNamespaces in "
                    f"Pulumi.{stack}.yaml (it is then only annotated, never created or deleted)",
                )
            )
    return found or [Finding(subject, True, ", ".join(cfg.workloads.meshed_namespaces) or "none")]


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
    subject = f"{stack}: {key} {context}"
    try:
        version = stack_config.check_cluster(key, context, kubeconfig_key, kubeconfig, require_kubeconfig=True)
        if version is not None:
            stack_config.check_line_fits(settings.line, version, context)
    except stack_config.ConfigError as error:
        return Finding(subject, False, str(error))
    return Finding(subject, True, "API server answers" + (f", Kubernetes {version[0]}.{version[1]}" if version else ""))


def ha_nodes(stack: str, settings: StackSettings, context: str, kubeconfig: str | None, run: RunTool) -> Finding | None:
    """With `linkerdHa`, the cluster needs three nodes a pod can be scheduled on."""
    if str(settings.get("linkerdHa")).lower() == "false":
        return None
    subject = f"{stack}: linkerdHa on {context}"
    kubectl = str(settings.get("kubectl") or "kubectl")
    try:
        nodes = _kubectl_list(run, kubectl, ClusterAccess(context=context, kubeconfig=kubeconfig), "nodes")
    except DriverError as error:
        return Finding(subject, False, f"cannot count the cluster's nodes: {error}")
    usable = [node for node in nodes if _schedulable(node)]
    if len(usable) >= HA_NODES:
        return Finding(subject, True, f"{len(usable)} schedulable nodes")
    return Finding(
        subject,
        False,
        f"config {stack_config.PROJECT}:linkerdHa = true needs {HA_NODES} schedulable nodes (required anti-affinity); "
        f"the cluster has {len(usable)} of {len(nodes)} nodes schedulable: add nodes (scripts/kind-clusters makes "
        f"{HA_NODES + 1} each) or `pulumi config set linkerdHa false --stack {stack}`",
    )


def linkerd_cli(stack: str, settings: StackSettings, tools_: Tools) -> Finding:
    pinned = settings.linkerd_version
    subject = f"{stack}: linkerd CLI {pinned}"
    configured = settings.get("linkerdCli")
    binary = str(configured or tools_.find_linkerd(pinned) or "linkerd")
    if tools_.which(binary) is None:
        where = "config aes-linkerd2:linkerdCli" if configured else f"looked for {tools.where_to_look(pinned)}"
        return Finding(subject, False, f"not found ({where})")
    try:
        found = tools_.run([binary, *tools.LINKERD_VERSION_ARGS]).strip()
    except DriverError as error:
        return Finding(subject, False, str(error))
    if found != pinned:
        blame = "config aes-linkerd2:linkerdCli" if configured else "the `linkerd` on PATH"
        fix = f"`./aes-linkerd2 setup` fetches {pinned}"
        return Finding(subject, False, f"{blame} `{binary}` is {found[:80]!r}, not {pinned!r}: {fix}")
    return Finding(subject, True, binary)


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
        settings, read = stack_file(project_dir, stack)
        findings.append(read)
        if settings is None:
            continue
        parsed = None
        if operation in RUNS_PROGRAM:
            parsed, valid = stack_config_values(settings, stack)
            findings.append(valid)
        for key, context, kubeconfig_key, kubeconfig in clusters_of(settings):
            reached = cluster(stack, settings, key=key, context=context, kubeconfig_key=kubeconfig_key, kubeconfig=kubeconfig)
            findings.append(reached)
            if reached.ok and key == "context" and operation in RUNS_PROGRAM:
                findings.extend(f for f in [ha_nodes(stack, settings, context, kubeconfig, tools_.run)] if f)
                if parsed is not None:
                    findings.extend(namespaces(stack, parsed, tools_.run))
        if operation in RUNS_PROGRAM:
            # The set-up first: `up`, `preview` and `refresh` fetch what is missing; `check` only looks.
            fetched = tools_.release_files(stack, settings, operation != "check")
            findings.extend(fetched)
            cli = linkerd_cli(stack, settings, tools_)
            # A CLI the set-up could not get is one problem, said once (with why it could not).
            if cli.ok or not any(f.subject == cli.subject and not f.ok for f in fetched):
                findings.append(cli)
    return findings


def report(findings: Sequence[Finding], operation: str) -> str:
    """The failed checks as one message: what `up` and the others stop with."""
    # The same problem in both stacks (one unreachable host, say) is one line naming both.
    stacks_of: dict[tuple[str, str], list[str]] = {}
    for finding in (f for f in findings if not f.ok):
        stack, colon, rest = finding.subject.partition(": ")
        key = (rest, finding.message) if colon and stack in STACKS else (finding.subject, finding.message)
        stacks_of.setdefault(key, []).extend([stack] if colon and stack in STACKS else [])
    lines = [
        f"  - {', '.join(stacks)}{': ' if stacks else ''}{subject}: {message}" for (subject, message), stacks in stacks_of.items()
    ]
    head = f"{len(lines)} problem{'s' if len(lines) != 1 else ''} found before {operation}; nothing was applied:"
    return "\n".join([head, *lines])


def _kubectl_list(run: RunTool, kubectl: str, access: ClusterAccess, kind: str) -> list[dict[str, Any]]:
    """`kubectl get KIND -o json`'s items, read from the live cluster."""
    try:
        listed = json.loads(run([kubectl, *access.flags(), "get", kind, "--request-timeout=10s", "-o", "json"]))
    except ValueError:
        raise DriverError(f"`kubectl get {kind}` did not print JSON") from None
    return list(listed.get("items") or [])


def _schedulable(node: Mapping[str, Any]) -> bool:
    spec, status = node.get("spec") or {}, node.get("status") or {}
    if spec.get("unschedulable"):
        return False
    if any(t.get("effect") in ("NoSchedule", "NoExecute") for t in spec.get("taints") or []):
        return False
    ready = [c for c in status.get("conditions") or [] if c.get("type") == "Ready"]
    return bool(ready) and ready[0].get("status") == "True"


def _pulumi_version_wanted(project_dir: Path) -> str:
    path = project_dir / ".pulumi-version"
    return "v" + path.read_text(encoding="utf-8").strip().lstrip("v") if path.is_file() else "v3"


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text.split("-", maxsplit=1)[0])[:3])
