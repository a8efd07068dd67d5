"""One stack's render, in a process of its own (Pulumi's runtime settings are process-wide)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from driver.render import render_stack
from driver.settings import DriverError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Render one stack (used by `./aes-linkerd2 render`).")
    parser.add_argument("--project-dir", type=Path, required=True)
    parser.add_argument("--stack", required=True)
    parser.add_argument("--out", type=Path, required=True, help="a folder that does not exist yet")
    parser.add_argument("--outputs", type=Path, help="where to write the stack's outputs for the source")
    parser.add_argument("--overrides", default="{}")
    parser.add_argument("--target-outputs", type=Path)
    args = parser.parse_args(argv)
    try:
        summary = render_stack(
            args.project_dir, args.stack, args.out, json.loads(args.overrides), args.target_outputs, outputs_file=args.outputs
        )
    except DriverError as error:
        print(error, file=sys.stderr)
        return error.exit_code
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
