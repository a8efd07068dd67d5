"""How long the program takes to evaluate a stack offline, against the floor, as meshed namespaces grow.

For each size N, N meshed namespaces with one exported service each, it measures in separate
processes (one per measurement, the median of --repeat):

- the program: the real __main__.py under the render's mocks (driver.render.RenderMocks on
  driver.offline.ProgramMocks: no cluster and no engine, but every command run for real through
  /bin/sh, so the real linkerd CLI of the pinned release renders Linkerd's objects);
- the floor: the same Pulumi SDK, the same mocks and the same `evaluate`, registering the same
  number of plain objects (ConfigMaps with one small data key) from a program that does nothing else.

The ratio program / floor is what the program adds on top of what any Pulumi program of that many
resources costs here. The target stack's outputs (its real trust anchor and issuer) feed the
source stack's stack reference, as `render` does.

Without the pinned linkerd CLI it refuses (exit 2) unless --without-cli is given; then Linkerd's
roughly one hundred objects are missing from every program measurement, and it says so.

The CLI's offline renders go through a render cache of the benchmark's own (support/render_cache.py),
filled by one unmeasured evaluation before each row's measurements, as a user's second evaluation
finds it (`--render-cache off`: every render runs the CLI, as at a first evaluation). The program
sets the garbage collector's pace (support/gc_tuning.py); `--tuned-floor` gives the floor the same,
so the ratio is then what the program adds on top of an equally tuned SDK program.

    venv/bin/python scripts/benchmark.py [--sizes 0 100 500] [--repeat 3] [--stacks target source]
        [--render-cache warm|off] [--tuned-floor]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import runpy
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # a script in scripts/, importing the project's packages

from driver import offline  # noqa: E402
from driver.offline import OFFLINE_CLUSTERS_ENV  # noqa: E402
from driver.render import RenderMocks  # noqa: E402
from support import gc_tuning, render_cache  # noqa: E402
from support.clusters import OFFLINE_ENV  # noqa: E402
from support.linkerd_cli import PendingRender  # noqa: E402
from support.tools import find_linkerd, linkerd_client_version, where_to_look  # noqa: E402
from support.upstream import VERSION_LINES  # noqa: E402

# Upstream's release files, as the tests look for them: $AES_LINKERD2_REFERENCE, else ../shared/reference.
REFERENCE = Path(os.environ.get("AES_LINKERD2_REFERENCE") or ROOT.parent / "shared" / "reference") / "emissary"
LINE = "current"
TARGET_STACK = "organization/aes-linkerd2/target"
# Where no CLI runs: a path that is not one, so RenderMocks stands in for every CLI step.
NO_CLI = "/nonexistent/linkerd"


def pinned_version() -> str:
    return VERSION_LINES[LINE].linkerd_versions[0]


def stack_config_for(stack: str, size: int, cli: str) -> dict[str, Any]:
    namespaces = [f"team-{i:03d}" for i in range(size)]
    values: dict[str, Any] = {
        "role": stack,
        "context": f"bench-{stack}",
        "versionLine": LINE,
        "linkerdCli": cli,
        "edgeStackProduct": "emissary",
        "edgeStackVersion": "3.9.1",  # the fixture stands in for its release manifest
        "edgeStackCrds": str(REFERENCE / "crds.v4-head.yaml"),
        "edgeStackManifest": str(ROOT / "tests" / "fixtures" / "emissary-3.yaml"),
        "meshedNamespaces": namespaces,
        "existingNamespaces": [],
        "qotm": "false",
    }
    if stack == "target":
        return values | {"gatewayHostname": "gateway.example.com", "exportedServices": [f"{ns}/api" for ns in namespaces]}
    return values | {"targetStack": TARGET_STACK, "targetContext": "bench-target"}


def _cpu() -> float:
    """CPU seconds of this process and of the children it waited for (the CLI runs): steadier than the
    wall clock on a machine that is busy with something else."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def measure_program(stack: str, size: int, cli: str, references: dict[str, Any]) -> dict[str, Any]:
    """One evaluation of the program in this process."""
    mocks = RenderMocks(cli, pinned_version(), references)
    # How long the linkerd CLI itself runs (its invokes block the program): a cost no program can shed.
    cli_runs, cli_seconds = [0], [0.0]
    run = offline.run_like_the_command_provider

    def timed(command: str, *args: Any, **kwargs: Any) -> str:
        started = time.perf_counter()
        try:
            return run(command, *args, **kwargs)
        finally:
            if command.startswith(cli):
                cli_runs[0] += 1
                cli_seconds[0] += time.perf_counter() - started

    offline.run_like_the_command_provider = timed
    # How long the program waits for renders: they run at once and beside it, so less than the above.
    waited = [0.0]
    stdout = PendingRender.stdout

    def timed_wait(render: PendingRender) -> str:
        started = time.perf_counter()
        try:
            return stdout(render)
        finally:
            waited[0] += time.perf_counter() - started

    PendingRender.stdout = timed_wait  # type: ignore[method-assign,assignment]
    started, cpu = time.perf_counter(), _cpu()
    result = offline.evaluate(
        lambda: runpy.run_path(str(ROOT / "__main__.py")), mocks, stack=stack, config=stack_config_for(stack, size, cli)
    )
    elapsed, cpu = time.perf_counter() - started, _cpu() - cpu
    if result.error is not None:
        raise SystemExit(f"{stack} x{size}: {result.error}")
    return {
        "seconds": elapsed,
        "cpu": cpu,
        "resources": len(result.registrations),
        "dependencies": sum(len(r.dependencies) for r in result.registrations),
        "cli_runs": cli_runs[0],
        "cli_seconds": cli_seconds[0],
        "cli_wait_seconds": waited[0],
        "not_rendered": len(mocks.not_rendered),
        "outputs": result.outputs,
    }


def measure_floor(count: int, cli: str, tuned: bool = False) -> dict[str, Any]:
    """`count` plain ConfigMaps, registered through the same SDK, mocks and `evaluate` as the program
    (`tuned`: with the program's garbage-collector pace)."""

    def program() -> None:
        import pulumi_kubernetes as k8s  # noqa: PLC0415 (imported inside the measurement, as the program does)

        if tuned:
            gc_tuning.tune()

        for i in range(count):
            k8s.core.v1.ConfigMap(
                f"floor-{i}", metadata={"name": f"floor-{i}", "namespace": "default"}, data={"key": f"value-{i}"}
            )

    mocks = RenderMocks(cli, pinned_version(), {})
    started, cpu = time.perf_counter(), _cpu()
    result = offline.evaluate(program, mocks, stack="floor", config={})
    elapsed, cpu = time.perf_counter() - started, _cpu() - cpu
    if result.error is not None:
        raise SystemExit(f"floor x{count}: {result.error}")
    return {"seconds": elapsed, "cpu": cpu, "resources": len(result.registrations)}


def _one(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run([sys.executable, __file__, "--one", *args], env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"benchmark: measurement {' '.join(args)} failed:\n{done.stderr.strip() or done.stdout.strip()}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _measure_one(what: list[str]) -> None:
    """A measurement's own process (`--one`): prints its result as JSON for `_one`."""
    kind, *rest = what
    if kind == "floor":
        print(json.dumps(measure_floor(int(rest[0]), rest[1], tuned=rest[2:] == ["tuned"])))
        return
    references = json.loads(Path(rest[3]).read_text(encoding="utf-8")) if len(rest) > 3 else {}
    print(json.dumps(measure_program(rest[0], int(rest[1]), rest[2], references)))


def _linkerd_cli(without_cli: bool) -> str | None:
    """The CLI the measurements run (NO_CLI when told to go without), said; None when it is missing unasked."""
    pinned = pinned_version()
    cli = find_linkerd(pinned)
    if cli is None and not without_cli:
        print(
            f"benchmark: REFUSED: the linkerd CLI {pinned} is missing (looked in {where_to_look(pinned)}); "
            "pass --without-cli to measure without Linkerd's objects",
            file=sys.stderr,
        )
        return None
    if cli is None or without_cli:
        print(f"linkerd CLI: NONE (--without-cli): Linkerd's objects of the {LINE} line are NOT in these numbers")
        return NO_CLI
    print(f"linkerd CLI: {cli} ({linkerd_client_version(cli)}), the {LINE} line's pinned release, run for real")
    return cli


def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text(encoding="utf-8").split()[:3])
    except OSError:
        return "unknown"


def _keep_target_outputs(path: Path, measured: dict[str, Any]) -> None:
    """The target's outputs, for the source's stack reference (as `render` passes them)."""
    path.write_text(json.dumps({TARGET_STACK: measured["outputs"]}), encoding="utf-8")


def _measure(
    stack: str, size: int, *, cli: str, repeat: int, target_outputs: Path, env: dict[str, str], warm: bool, tuned: bool
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """`repeat` measurements of the program and of the floor at one size, each in a fresh process."""
    if stack == "source" and not target_outputs.exists():
        _keep_target_outputs(target_outputs, _one(["program", "target", "0", cli], env))
    extra = [str(target_outputs)] if stack == "source" else []
    if warm:  # the render cache as a second evaluation finds it
        _one(["program", stack, str(size), cli, *extra], env)
    runs, floors = [], []
    for _ in range(repeat):  # interleaved, so a busy moment weighs on both alike
        runs.append(_one(["program", stack, str(size), cli, *extra], env))
        floors.append(_one(["floor", str(runs[0]["resources"]), cli, *(["tuned"] if tuned else [])], env))
    if stack == "target" and not target_outputs.exists():
        _keep_target_outputs(target_outputs, runs[0])
    return runs, floors


def _row(stack: str, size: int, runs: list[dict[str, Any]], floors: list[dict[str, Any]]) -> str:
    """One line of the table: the medians of the runs, the first run's counts."""
    program_s = statistics.median(r["seconds"] for r in runs)
    floor_s = statistics.median(r["seconds"] for r in floors)
    cli_s = statistics.median(r["cli_seconds"] for r in runs)
    waited_s = statistics.median(r["cli_wait_seconds"] for r in runs)
    program_cpu = statistics.median(r["cpu"] for r in runs)
    floor_cpu = statistics.median(r["cpu"] for r in floors)
    first = runs[0]
    return (
        f"{stack:<7} {size:>5} {first['resources']:>9} {first['dependencies']:>6} {first['cli_runs']:>8} "
        f"{cli_s:>6.2f} {waited_s:>6.2f} {program_s:>9.2f} {floor_s:>7.2f} {program_s / floor_s:>5.2f}x   "
        f"{program_cpu:>11.2f} {floor_cpu:>9.2f} {program_cpu / floor_cpu:>5.2f}x"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[0, 100, 500])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--stacks", nargs="+", choices=["target", "source"], default=["target", "source"])
    parser.add_argument("--without-cli", action="store_true", help="measure without the linkerd CLI (Linkerd's objects missing)")
    parser.add_argument(
        "--render-cache",
        choices=["warm", "off"],
        default="warm",
        help="warm: the CLI's offline renders read from a filled render cache; off: every render runs the CLI",
    )
    parser.add_argument("--tuned-floor", action="store_true", help="give the floor the program's garbage-collector pace")
    parser.add_argument("--one", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        _measure_one(args.one)
        return 0

    cli = _linkerd_cli(args.without_cli)
    if cli is None:
        return 2
    print(f"python: {sys.executable}; {os.cpu_count()} cores; median of {args.repeat} runs, one process each")
    print(
        f"render cache: {args.render_cache}; floor: {'tuned like the program' if args.tuned_floor else 'plain SDK program'}; "
        f"load average before: {_loadavg()}"
    )
    print(
        f"{'stack':<7} {'size':>5} {'resources':>9} {'deps':>6} {'cli runs':>8} {'cli s':>6} {'waited':>6} "
        f"{'program s':>9} {'floor s':>7} {'ratio':>6}   {'program cpu':>11} {'floor cpu':>9} {'ratio':>6}"
    )
    with tempfile.TemporaryDirectory(prefix="aes-linkerd2-bench-") as folder:
        target_outputs = Path(folder) / "target-outputs.json"
        # One set of offline clusters for every process, as `render` shares them: the target's anchor
        # Secret, made by its first measurement, is where the source's issuer Command reads it.
        env = {**os.environ, OFFLINE_ENV: "1", OFFLINE_CLUSTERS_ENV: str(Path(folder) / "clusters"), "PYTHONPATH": str(ROOT)}
        cache = str(Path(folder) / "renders") if args.render_cache == "warm" else render_cache.OFF
        env[render_cache.RENDER_CACHE_ENV] = cache
        for stack in args.stacks:
            for size in args.sizes:
                runs, floors = _measure(
                    stack,
                    size,
                    cli=cli,
                    repeat=args.repeat,
                    target_outputs=target_outputs,
                    env=env,
                    warm=args.render_cache == "warm",
                    tuned=args.tuned_floor,
                )
                print(_row(stack, size, runs, floors), flush=True)
    print(f"load average after: {_loadavg()}")
    print(
        "size: meshed namespaces, one exported service each (target); resources: registrations (the floor "
        "registers as many ConfigMaps); deps: dependency edges the program declares; cli s: time inside the "
        "linkerd CLI's own runs, added up (they run at once, beside the program); waited: how long the program "
        "waited for them; s: median wall-clock seconds of the evaluation in a fresh process, imports of "
        "the program included; cpu: CPU seconds of that process and the commands it ran (steadier on a busy machine)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
