"""The garbage collector's pace while the program registers its resources.

The SDK keeps each registration's futures, tasks and Outputs alive until the engine answers it, so
most of what the young generation holds survives each collection and is scanned again and again,
by every older one: at 500 meshed namespaces that was about 2 of the evaluation's 6 CPU seconds
(scripts/benchmark.py; the SDK floor, a plain program of as many objects, spends as much). Rarer
young collections still collect every cycle, in fewer and larger passes.
"""

from __future__ import annotations

import gc

# Python's defaults are (700, 10, 10).
THRESHOLDS = (20_000, 20, 20)


def tune() -> None:
    gc.set_threshold(*THRESHOLDS)
