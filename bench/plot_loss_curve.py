#!/usr/bin/env python3
"""Draws a run's training and held-out loss from its metrics.jsonl as a standalone SVG
(standard library only), for the README.

    python3 bench/plot_loss_curve.py runs/char-gpt/metrics.jsonl docs/char-gpt-loss.svg \
        --title "char-GPT on Austen (4x128, 3000 steps, CPU)"

Training loss: every logged step, smoothed by a running mean over 10 records; held-out loss:
every `held_out_loss` record (no dropout, the same held-out sequences each time).
"""

import argparse
import json

W, H = 640, 360
LEFT, RIGHT, TOP, BOTTOM = 60, 20, 40, 50


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("metrics")
    p.add_argument("output")
    p.add_argument("--title", default="")
    a = p.parse_args()
    train, held = [], []
    with open(a.metrics) as f:
        for line in f:
            r = json.loads(line)
            if r.get("loss") is not None:
                train.append((r["step"], r["loss"]))
            if r.get("held_out_loss") is not None:
                held.append((r["step"], r["held_out_loss"]))
    smooth = []
    for i in range(len(train)):
        window = train[max(0, i - 9): i + 1]
        smooth.append((train[i][0], sum(v for _, v in window) / len(window)))
    points = smooth + held
    x_max = max(s for s, _ in points)
    y_min = min(v for _, v in points)
    y_max = max(v for _, v in points)
    y_lo, y_hi = (int(y_min * 2) / 2.0), (int(y_max * 2) / 2.0 + 0.5)

    def xy(step, value):
        x = LEFT + (W - LEFT - RIGHT) * step / x_max
        y = TOP + (H - TOP - BOTTOM) * (1 - (value - y_lo) / (y_hi - y_lo))
        return f"{x:.1f},{y:.1f}"

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{W / 2}" y="22" text-anchor="middle" font-size="14">{a.title}</text>']
    y = y_lo
    while y <= y_hi + 1e-9:
        _, py = xy(0, y).split(",")
        out.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{py}" y2="{py}" stroke="#ddd"/>')
        out.append(f'<text x="{LEFT - 6}" y="{float(py) + 4}" text-anchor="end">{y:.1f}</text>')
        y += 0.5
    for i in range(0, 6):
        step = x_max * i / 5
        px, _ = xy(step, y_lo).split(",")
        out.append(f'<text x="{px}" y="{H - BOTTOM + 18}" text-anchor="middle">{step:.0f}</text>')
    out.append(f'<text x="{W / 2}" y="{H - 12}" text-anchor="middle">step</text>')
    out.append(f'<text x="16" y="{H / 2}" text-anchor="middle" '
               f'transform="rotate(-90 16 {H / 2})">cross-entropy (nats per token)</text>')
    for series, color, label, dy in ((smooth, "#1f77b4", "training (running mean)", 0),
                                     (held, "#d62728", "held-out", 18)):
        path = " ".join(xy(s, v) for s, v in series)
        out.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{path}"/>')
        out.append(f'<line x1="{W - 200}" x2="{W - 180}" y1="{TOP + 10 + dy}" '
                   f'y2="{TOP + 10 + dy}" stroke="{color}" stroke-width="2"/>')
        out.append(f'<text x="{W - 175}" y="{TOP + 14 + dy}">{label}</text>')
    if held:
        s, v = held[-1]
        out.append(f'<text x="{xy(s, v).split(",")[0]}" y="{float(xy(s, v).split(",")[1]) - 8}" '
                   f'text-anchor="end" fill="#d62728">{v:.3f}</text>')
    out.append("</svg>")
    with open(a.output, "w") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
