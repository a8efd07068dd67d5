"""`./aes-linkerd2` (python -m driver): both stacks of the Linkerd 2 integration, in order, with one command."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live

from driver import certs, rotate, setup
from driver.api import MARKED_OPERATIONS, Deployment, OperationResult
from driver.progress import Display
from driver.render import RENDERED_INCOMPLETELY, incomplete
from driver.settings import STACKS, DriverError, read_settings
from driver.status import checks, read, views
from support.errors import ConfigError
from support.project import PROJECT_ROOT

VERBS = {
    "up": "deploy: the target stack (Linkerd, Edge Stack as gateway, exports, trust anchor), then the source "
    "(Linkerd, link, checks); stops at the first failing stack",
    "preview": "show what `up` would change in each stack, with the diff (pulumi preview --diff)",
    "refresh": "read the live state of every resource back into each stack's state",
    "destroy": "remove everything: the source first (unlink, un-inject), then the target",
    "outputs": "print each stack's outputs (secrets masked)",
    "certs": "list each stack's identity certificates (anchor, issuers) with the days they have left; "
    f"exit 1 when one has fewer than --warn-days ({certs.WARN_DAYS}, as `linkerd check` warns)",
    "status": "read both clusters live (through each stack's outputs and kube context): control plane, Edge Stack "
    "and the gateway, the link and mirrored services, certificates; exit 1 when any check fails",
    "check": "the pre-flight alone: the Pulumi CLI, the passphrase, each stack file and key, each cluster (and its "
    "nodes for linkerdHa), the linkerd CLI; lists every problem at once (up, preview, refresh and destroy run it first)",
    "render": "write every Kubernetes object each stack would apply as YAML, one folder per stack, "
    "offline: no cluster, no Pulumi CLI; secrets are not written; the same inputs give the same bytes. "
    f"Exit {RENDERED_INCOMPLETELY} when the linkerd CLI was missing (what it renders is listed in NOT-RENDERED.md)",
    "rotate-trust": "rotate the trust anchor across both clusters, unattended: bundle, issuers, restart, drop-old, "
    "each `up` but issuers restarting what the program meshes, each next step only once the live gates pass (roots "
    "held, issuer loaded, drop-old allowed); stopped at any point, run it again to go on",
    "setup": "fetch what the stacks need (the pinned linkerd CLI, Edge Stack's release manifests) into the cache, "
    "verified; --check only reports, --all fetches every pinned release (`setup --help`)",
}


def _common_options(parser: argparse.ArgumentParser, *, inherited: bool) -> None:
    """--stack, --project-dir and --json, before or after the verb (after it, they keep what came before)."""
    project = str(PROJECT_ROOT)
    # On a verb, an option not given leaves the value given before the verb alone.
    stacks: Any = argparse.SUPPRESS if inherited else None
    parser.add_argument("--stack", choices=STACKS, action="append", default=stacks, help="only this stack (repeatable)")
    parser.add_argument(
        "--project-dir", default=argparse.SUPPRESS if inherited else project, help="the Pulumi project (default: this checkout)"
    )
    json_default: Any = argparse.SUPPRESS if inherited else False
    parser.add_argument("--json", action="store_true", default=json_default, help="print the result as JSON")


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="./aes-linkerd2",
        description="Ambassador Edge Stack's Linkerd 2 integration on two clusters: the target and source stacks, in order.",
        epilog="State defaults to a local backend in .state/ (PULUMI_BACKEND_URL overrides it); "
        "PULUMI_CONFIG_PASSPHRASE (or _FILE) must be set. Exit codes: 0 done, 1 a stack failed, 2 nothing ran.",
    )
    _common_options(root, inherited=False)
    verbs = root.add_subparsers(dest="verb", required=True, metavar="VERB")
    for verb, help_text in VERBS.items():
        sub = verbs.add_parser(verb, help=help_text, description=help_text)
        _common_options(sub, inherited=True)
        if verb == "certs":
            sub.add_argument("--warn-days", type=int, default=certs.WARN_DAYS, help="mark what has fewer days left")
        if verb == "status":
            sub.add_argument("--warn-days", type=int, default=certs.WARN_DAYS, help="a certificate with fewer days left fails")
            sub.add_argument("--watch", action="store_true", help="refresh in place until interrupted")
            sub.add_argument("--interval", type=float, default=5.0, help="seconds between refreshes with --watch")
            sub.add_argument("--svg", metavar="FILE", help="also draw the clusters, the gateway and the link as SVG")
        if verb == "destroy":
            sub.add_argument("--force", action="store_true", help="destroy the target alone even while the source links to it")
            sub.add_argument(
                "--delete-trust-anchor",
                action="store_true",
                help="destroying the target deletes the trust anchor both meshes trust (protected): say so to go on",
            )
        if verb == "rotate-trust":
            sub.add_argument(
                "--timeout", type=float, default=rotate.DEFAULT_TIMEOUT, help="seconds to wait for each gate (then exit 1)"
            )
            sub.add_argument("--interval", type=float, default=rotate.DEFAULT_INTERVAL, help="seconds between reads of the gates")
            sub.add_argument(
                "--new-anchor", action="store_true", help="start a new rotation although the last one is complete (drop-old set)"
            )
        if verb in ("up", "preview", "refresh"):
            sub.add_argument("--expect-no-changes", action="store_true", help="fail a stack whose plan changes anything")
        if verb in MARKED_OPERATIONS:
            sub.add_argument(
                "--skip-checkpoints",
                action="store_true",
                help=f"write each stack's state once, when its {verb} ends, not after every step (faster, most on a "
                "fresh cluster); a run killed before that leaves the stack marked unfinished, and the next up or "
                "destroy refuses to start until the state is checked",
            )
        if verb == "render":
            sub.add_argument("--out", default="rendered", help="output folder, from the current directory (default: rendered/)")
            sub.add_argument(
                "--set", action="append", default=[], metavar="STACK:KEY=VALUE", help="override a stack's config for this render"
            )
    return root


def read_status(deployment: Deployment, args: argparse.Namespace) -> checks.Report:
    outputs = stack_outputs(deployment)
    settings = {stack: read_settings(deployment.project_dir, stack) for stack in outputs}
    report = checks.collect(outputs, settings, read.kubectl_runner, args.warn_days, read.linkerd_gateways)
    if args.svg:
        Path(args.svg).write_text(views.svg(report), encoding="utf-8")
    return report


def show_status(deployment: Deployment, args: argparse.Namespace) -> int:
    """`status`: once (text, table on a terminal, or JSON), or refreshed in place with --watch."""
    report = read_status(deployment, args)
    console = Console()
    if args.json:
        print(json.dumps(report.data(), indent=2))
    elif args.watch:
        with Live(views.table(report), console=console, screen=False, auto_refresh=False) as live:
            try:
                while True:
                    time.sleep(args.interval)
                    report = read_status(deployment, args)
                    live.update(views.table(report), refresh=True)
            except KeyboardInterrupt:
                pass
    elif console.is_terminal:
        console.print(views.table(report))
    else:
        print(views.text(report))
    return 0 if report.healthy else 1


def show_checks(deployment: Deployment, args: argparse.Namespace) -> int:
    """`check`: every pre-flight check, passed or not; exit 2 (nothing would run) when any fails."""
    findings = deployment.check()
    if args.json:
        print(json.dumps({"ok": all(f.ok for f in findings), "checks": [vars(f) for f in findings]}, indent=2))
    else:
        print("\n".join(f.line() for f in findings))
    return 0 if all(f.ok for f in findings) else 2


def render_report(summary: dict[str, Any]) -> str:
    lines = []
    for stack, result in summary.items():
        missing = result["notRendered"]
        note = f" ({len(missing)} steps not rendered: see NOT-RENDERED.md)" if missing else ""
        lines.append(f"{stack}: {result['objects']} objects in {result['folder']}{note}")
    return "\n".join(lines)


def overrides(values: list[str]) -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = {}
    for value in values:
        stack, _, assignment = value.partition(":")
        key, _, text = assignment.partition("=")
        if stack not in STACKS or not key or not _:
            raise DriverError(f"--set {value!r}: expected STACK:KEY=VALUE with STACK one of {', '.join(STACKS)}")
        result.setdefault(stack, {})[key] = override_value(value, text)
    return result


def override_value(option: str, text: str) -> Any:
    """A --set value as Pulumi config would hold it: a string, unless clearly a JSON list, object or boolean.

    So `kubernetesVersion=1.40` stays "1.40" and `gatewayPort=4143` stays "4143" (config reads integers from text).
    """
    if text in ("true", "false"):
        return text == "true"
    if not text.lstrip().startswith(("[", "{")):
        return text
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise DriverError(f"--set {option[:200]!r}: the value starts like JSON but is not valid JSON") from None


def stack_outputs(deployment: Deployment) -> dict[str, dict[str, Any]]:
    """Each stack's outputs; an engine error (no such stack, no backend) becomes one line, not a traceback."""
    try:
        return deployment.outputs()
    except DriverError:
        raise
    except Exception as error:
        lines = str(error).strip().splitlines()
        first = next((line for line in lines if "error:" in line), lines[0] if lines else type(error).__name__)
        raise DriverError(f"outputs: {first.strip()[:300]}") from None


def show_render(deployment: Deployment, args: argparse.Namespace) -> int:
    summary = deployment.render(args.out, overrides(args.set))
    print(json.dumps(summary, indent=2) if args.json else render_report(summary))
    for line in incomplete(summary):
        print(line, file=sys.stderr)
    return RENDERED_INCOMPLETELY if incomplete(summary) else 0


def show_outputs(deployment: Deployment, args: argparse.Namespace) -> int:
    print(json.dumps(stack_outputs(deployment), indent=2, default=str))
    return 0


def show_certs(deployment: Deployment, args: argparse.Namespace) -> int:
    """`certs`: the table, each stack's headroom and the rotation's gates read live; the exit code says only what is due."""
    outputs = stack_outputs(deployment)
    found = certs.rows(outputs, args.warn_days)
    gates = trust_gates(deployment, outputs)
    if args.json:
        lines = [{"stack": s, "name": n, "state": state, "detail": d} for s, n, state, d in gates]
        print(json.dumps({"warnDays": args.warn_days, "certificates": found, "trust": lines}, indent=2))
    else:
        print(certs.table(found, args.warn_days))
        print(certs.trust_text(found, gates))
    return 1 if any(row["due"] for row in found) else 0


def trust_gates(deployment: Deployment, outputs: dict[str, dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    """The trust lines `status` shows ((stack, name, state, detail)), read live for the stacks that made their issuers."""
    settings = {stack: read_settings(deployment.project_dir, stack) for stack in outputs}
    clusters = {
        stack: checks.ClusterStatus(
            stack, str(values.get("clusterName") or stack), str(values.get("context") or settings[stack].get("context") or "")
        )
        for stack, values in outputs.items()
    }
    checks.trust(clusters, outputs, settings, read.kubectl_runner)
    return [(c.stack, c.name, c.state, c.detail) for cluster in clusters.values() for c in cluster.checks]


def rotate_trust(given: Deployment, args: argparse.Namespace) -> int:
    """`rotate-trust`: both stacks, step by step, each after its gates; progress on stderr, line by line."""
    if args.stack:
        raise DriverError("rotate-trust rotates the anchor both clusters trust: it takes both stacks, not --stack")
    deployment = Deployment(given.project_dir)  # without the live progress display: its own lines instead
    rotate.Rotate(
        deployment,
        rotate.live_gates(deployment),
        lambda line: print(line, file=sys.stderr, flush=True),
        timeout=args.timeout,
        interval=args.interval,
        new_anchor=args.new_anchor,
    ).run()
    return 0


# The verbs that change nothing: each prints its result and returns the exit code.
READ_ONLY_VERBS = {
    "status": show_status,
    "check": show_checks,
    "render": show_render,
    "outputs": show_outputs,
    "certs": show_certs,
}
# The verbs that print their own progress and result: the read-only ones, and the rotation (which runs `up`s itself).
OWN_VERBS = {**READ_ONLY_VERBS, "rotate-trust": rotate_trust}


def main(argv: list[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    if words[:1] == ["setup"]:  # its own options, and no Pulumi project or engine involved
        return setup.main(words[1:])
    args = parser().parse_args(argv)
    started = time.monotonic()
    display = Display(sys.stderr)
    try:
        deployment = Deployment(args.project_dir, stacks=args.stack or STACKS, on_progress=None if args.json else display.update)
        if args.verb in OWN_VERBS:
            return OWN_VERBS[args.verb](deployment, args)
        with display:
            result = _operate(deployment, args)
    except (DriverError, ConfigError) as error:
        exit_code = error.exit_code if isinstance(error, DriverError) else 2
        if args.json:
            print(json.dumps({"operation": args.verb, "succeeded": False, "exitCode": exit_code, "error": str(error)}))
        print(f"error: {error}", file=sys.stderr)
        return exit_code
    _print_result(result, args, started)
    return 0 if result.succeeded else 1


def _operate(deployment: Deployment, args: argparse.Namespace) -> OperationResult:
    operation = getattr(deployment, args.verb)
    skip_checkpoints = getattr(args, "skip_checkpoints", False)
    if skip_checkpoints:
        print(
            f"--skip-checkpoints: each stack's state is written when its {args.verb} ends; until then a file in "
            f"{deployment.unfinished_marker(deployment.stacks[0]).parent} marks the stack unfinished",
            file=sys.stderr,
        )
    if args.verb == "destroy":
        return deployment.destroy(
            force=args.force, delete_trust_anchor=args.delete_trust_anchor, skip_checkpoints=skip_checkpoints
        )
    if args.verb == "up":
        return deployment.up(expect_no_changes=args.expect_no_changes, skip_checkpoints=skip_checkpoints)
    return operation(expect_no_changes=args.expect_no_changes)  # type: ignore[no-any-return]


def _print_result(result: OperationResult, args: argparse.Namespace, started: float) -> None:
    if args.json:
        report = {"operation": result.operation, "succeeded": result.succeeded, "skipped": list(result.skipped)}
        print(json.dumps({**report, "stacks": [vars(s) for s in result.stacks]}, indent=2, default=str))
        return
    print(result.table())
    applied = [s.stack for s in result.stacks if s.succeeded]
    for failed in (s for s in result.stacks if not s.succeeded):
        print(f"\n{failed.stack} failed: {failed.error}\napplied before it: {', '.join(applied) or 'nothing'}", file=sys.stderr)
    outcome = "done" if result.succeeded else "FAILED"
    print(f"\n{result.operation} {outcome} in {time.monotonic() - started:.0f}s", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
