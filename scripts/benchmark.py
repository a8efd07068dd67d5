"""How long the program takes to evaluate a stack offline as exported services and meshed namespaces grow.

Runs the real __main__.py under the render's mocks (driver.render.RenderMocks: no cluster, no
engine; the linkerd CLI only if the pinned one is on PATH), in a fresh process per measurement.

    venv/bin/python scripts/benchmark.py [--sizes 1 100 500] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import runpy
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # a script in scripts/, importing the project's packages

from driver.offline import evaluate  # noqa: E402
from driver.render import RenderMocks  # noqa: E402

REFERENCE = ROOT.parent / "shared" / "reference" / "emissary"


def measure(stack: str, size: int) -> dict[str, float]:
    """One evaluation in this process; prints nothing else."""
    namespaces = [f"team-{i:03d}" for i in range(size)]
    config = {
        "role": stack,
        "context": f"bench-{stack}",
        "edgeStackProduct": "emissary",
        "edgeStackCrds": str(REFERENCE / "crds.v4-head.yaml"),
        "edgeStackManifest": str(ROOT / "tests" / "fixtures" / "emissary-3.yaml"),
        "meshedNamespaces": namespaces,
        "existingNamespaces": [],
        "qotm": "false",
    }
    references = {}
    if stack == "target":
        config |= {"gatewayHostname": "gateway.example.com", "exportedServices": [f"{ns}/api" for ns in namespaces]}
    else:
        config |= {"targetStack": "organization/aes-linkerd2/target", "targetContext": "bench-target"}
        references["organization/aes-linkerd2/target"] = {
            "trustAnchorPem": "<anchor>", "peerIssuerCertPem": "<issuer>", "peerIssuerKeyPem": "<key>",
            "gatewayName": "emissary-ingress", "gatewayNamespace": "emissary", "clusterName": "target",
            "context": "bench-target", "versionLine": "current",
        }  # fmt: skip
    mocks = RenderMocks("linkerd", "edge-26.8.3", references)
    started = time.perf_counter()
    result = evaluate(lambda: runpy.run_path(str(ROOT / "__main__.py")), mocks, stack=stack, config=config)
    elapsed = time.perf_counter() - started
    if result.error is not None:
        raise SystemExit(f"{stack} x{size}: {result.error}")
    return {"seconds": elapsed, "resources": len(result.registrations)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 100, 500])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--one", nargs=2, metavar=("STACK", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one[0], int(args.one[1]))))
        return 0
    env = {**os.environ, "AES_LINKERD2_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    print(f"{'stack':<7} {'size':>5} {'resources':>9} {'median s':>9} {'min s':>7}  (of {args.repeat} runs)")
    for stack in ("target", "source"):
        for size in args.sizes:
            runs = []
            for _ in range(args.repeat):
                done = subprocess.run(
                    [sys.executable, __file__, "--one", stack, str(size)], env=env, capture_output=True, text=True, check=True
                )
                runs.append(json.loads(done.stdout))
            seconds = [r["seconds"] for r in runs]
            print(f"{stack:<7} {size:>5} {runs[0]['resources']:>9} {statistics.median(seconds):>9.2f} {min(seconds):>7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
