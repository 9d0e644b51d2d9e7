#!/usr/bin/env python3
"""The same run on two devices: the largest relative gap between their losses, step by step.

    python3 bench/gpu/compare_losses.py CPU_RUN CUDA_RUN [--tolerance 1e-3] [--name NAME]

Reads both runs' metrics.jsonl, pairs the records by step, and prints one line: the steps
compared, the largest relative loss gap and its step, and "ok" or "DIFFERS" against
--tolerance. Exits 1 when a run has no loss at a step the other has, or when the gap
exceeds the tolerance.
"""

import argparse
import json
import os
import sys


def losses(run: str) -> dict:
    with open(os.path.join(run, "metrics.jsonl")) as metrics:
        records = [json.loads(line) for line in metrics if line.strip()]
    return {record["step"]: record.get("loss") for record in records}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("one")
    p.add_argument("other")
    p.add_argument("--tolerance", type=float, default=1e-3)
    p.add_argument("--name", default=None)
    a = p.parse_args()
    name = a.name or os.path.basename(os.path.normpath(a.other))
    one, other = losses(a.one), losses(a.other)
    if sorted(one) != sorted(other):
        print(f"{name}: DIFFERS: steps {sorted(one)} vs {sorted(other)}")
        sys.exit(1)
    worst, worst_step = 0.0, None
    for step in sorted(one):
        x, y = one[step], other[step]
        if x is None or y is None:
            print(f"{name}: DIFFERS: no finite loss at step {step} ({x} vs {y})")
            sys.exit(1)
        gap = abs(x - y) / max(abs(x), 1e-12)
        if gap >= worst:
            worst, worst_step = gap, step
    verdict = "ok" if worst <= a.tolerance else "DIFFERS"
    print(f"{name}: {len(one)} steps, largest relative loss gap {worst:.1e} at step "
          f"{worst_step} (tolerance {a.tolerance:.0e}): {verdict}")
    sys.exit(0 if verdict == "ok" else 1)


if __name__ == "__main__":
    main()
