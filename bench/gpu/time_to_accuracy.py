#!/usr/bin/env python3
"""Time to k-NN accuracy: pretext's run of a recipe beside bench/reference/simclr_recipe.py.

pretext's side is a run directory whose kept checkpoints were probed with
`pretext probe RUN --step S1,S2,… --labels L --knn-only` (one probe-<L>-seed0-step<S>.json
each): the accuracy at step S is that report's k-NN, its time the `elapsed_seconds` of
metrics.jsonl's record of step S (training time since the step loop began, pretext's
monitors and checkpoint writes included). PyTorch's side is the JSON lines the reference
printed with --json: its "eval" lines (training clock, evaluations excluded).

Prints both curves side by side by step and the first time each reaches --target, and
writes them with --json.

    python3 bench/gpu/time_to_accuracy.py --run RUN --reference ref.jsonl --labels 60000 \\
        [--target 0.90] [--k 20] [--json out.json]
"""

import argparse
import glob
import json
import os
import re


def pretext_curve(run: str, labels: str, k: int) -> list:
    """[(step, elapsed_seconds, accuracy)] of the probed checkpoints, by step."""
    elapsed = {}
    with open(os.path.join(run, "metrics.jsonl")) as metrics:
        for line in metrics:
            record = json.loads(line)
            if "elapsed_seconds" in record:
                elapsed[record["step"]] = record["elapsed_seconds"]
    curve = []
    pattern = re.compile(rf"probe-{re.escape(labels)}-seed0-step(\d+)\.json$")
    for path in glob.glob(os.path.join(run, f"probe-{labels}-seed0-step*.json")):
        match = pattern.search(path)
        if not match:
            continue
        step = int(match.group(1))
        with open(path) as file:
            row = json.load(file)["rows"][0]
        accuracy = dict((kk, value) for kk, value in row["knn"]).get(k)
        if accuracy is None:
            raise SystemExit(f"{path}: no k-NN {k} column")
        if step not in elapsed:
            raise SystemExit(f"{run}/metrics.jsonl has no record of step {step}: "
                             "train.log_every must divide train.checkpoint_every")
        curve.append((step, elapsed[step], accuracy))
    return sorted(curve)


def reference_curve(path: str, k: int) -> tuple:
    """([(step, train_seconds, accuracy)], the summary line or None)."""
    curve, summary = [], None
    with open(path) as file:
        for line in file:
            line = line.strip()
            if not line.startswith("{"):
                continue
            record = json.loads(line)
            if record.get("kind") == "eval":
                curve.append((record["step"], record["train_seconds"],
                              record[f"knn{k}_accuracy"]))
            elif record.get("kind") == "summary":
                summary = record
    return sorted(curve), summary


def first_reaching(curve: list, target: float):
    return next(((step, seconds) for step, seconds, accuracy in curve if accuracy >= target),
                None)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run", required=True, help="pretext's run directory")
    p.add_argument("--reference", required=True, help="simclr_recipe.py's --json output")
    p.add_argument("--labels", default="60000", help="the probes' --labels")
    p.add_argument("--target", type=float, default=0.90)
    p.add_argument("--k", type=int, default=20, help="the k-NN column compared")
    p.add_argument("--json", help="write both curves and the times here")
    a = p.parse_args()

    ours = pretext_curve(a.run, a.labels, a.k)
    theirs, summary = reference_curve(a.reference, a.k)
    print(f"k-NN {a.k} accuracy (bank: {a.labels} training images) against training time")
    print(f"{'step':>6} {'pretext s':>10} {'pretext':>8} {'PyTorch s':>10} {'PyTorch':>8}")
    by_step = {step: (seconds, accuracy) for step, seconds, accuracy in theirs}
    for step in sorted({s for s, _, _ in ours} | set(by_step)):
        mine = next(((s, acc) for st, s, acc in ours if st == step), None)
        other = by_step.get(step)
        cells = [f"{mine[0]:>10.1f} {100 * mine[1]:>7.1f}%" if mine else f"{'':>10} {'':>8}",
                 f"{other[0]:>10.1f} {100 * other[1]:>7.1f}%" if other else f"{'':>10} {'':>8}"]
        print(f"{step:>6} {cells[0]} {cells[1]}")
    reached = {"pretext": first_reaching(ours, a.target),
               "pytorch": first_reaching(theirs, a.target)}
    for side, hit in reached.items():
        curve = ours if side == "pretext" else theirs
        best = max((accuracy for _, _, accuracy in curve), default=None)
        if hit:
            print(f"{side}: {100 * a.target:.0f}% first reached at step {hit[0]}, "
                  f"{hit[1]:.1f} s of training")
        elif best is not None:
            print(f"{side}: {100 * a.target:.0f}% not reached (best {100 * best:.1f}%)")
        else:
            print(f"{side}: no evaluation")
    if reached["pretext"] and reached["pytorch"]:
        print(f"time to {100 * a.target:.0f}%: pretext / PyTorch = "
              f"{reached['pretext'][1] / reached['pytorch'][1]:.2f}")
    if a.json:
        with open(a.json, "w") as file:
            json.dump({"k": a.k, "target": a.target, "labels": a.labels,
                       "pretext": [dict(zip(("step", "seconds", "accuracy"), point))
                                   for point in ours],
                       "pytorch": [dict(zip(("step", "seconds", "accuracy"), point))
                                   for point in theirs],
                       "pytorch_summary": summary,
                       "time_to_target_s": {side: hit[1] if hit else None
                                            for side, hit in reached.items()}},
                      file, indent=1)


if __name__ == "__main__":
    main()
