#!/usr/bin/env python3
"""Plots AGMM full vs detached vs off from runs/agmm-<mode>/metrics.jsonl (written by
`bitspike train --agmm <mode> --out runs/agmm-<mode>`) into docs/agmm_comparison.png and prints
a Markdown table. Needs matplotlib (pip install matplotlib); it only reads bitspike's output."""
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

root = Path(sys.argv[1] if len(sys.argv) > 1 else "runs")
modes = ["full", "detached", "off"]
runs = {}
for m in modes:
    p = root / f"agmm-{m}" / "metrics.jsonl"
    if p.exists():
        runs[m] = [json.loads(line) for line in p.read_text().splitlines() if line.strip()]

fig, axes = plt.subplots(1, 4, figsize=(16, 3.6))
for m, recs in runs.items():
    ep = [r["epoch"] for r in recs]
    axes[0].plot(ep, [100 * r["flip_ratio_total"] for r in recs], marker="o", label=m)
    axes[1].plot(ep, [100 * r["test_accuracy"] for r in recs], marker="o", label=m)
    axes[2].plot(ep, [sum(v for _, _, v in r["grad_stats"]) / len(r["grad_stats"]) for r in recs], marker="o", label=m)
    binary_rates = [dict(r["firing_rate"]) for r in recs]
    axes[3].plot(ep, [(d["conv2"] + d["conv3"]) / 2 for d in binary_rates], marker="o", label=m)
for ax, title in zip(axes, ["weight flip ratio (%)", "test accuracy (%)", "latent grad variance (mean over binary layers)", "firing rate of binary layers"]):
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("epoch")
    ax.grid(alpha=0.3)
axes[2].set_yscale("log")
axes[0].legend(title="AGMM")
fig.suptitle("bitspike, mnist preset (T=4), embedded MNIST-10k, seed 1: AGMM full vs detached vs off")
fig.tight_layout()
out = Path("docs/agmm_comparison.png")
out.parent.mkdir(exist_ok=True)
fig.savefig(out, dpi=90)
print(f"wrote {out}")

print("\n| AGMM | epoch | test acc | train loss | flip ratio | flips conv2 / conv3 | firing conv2 / conv3 | grad var conv2 / conv3 | samples/s |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for m, recs in runs.items():
    for r in recs:
        f = dict(r["flip_ratio"])
        fr = dict(r["firing_rate"])
        g = {n: v for n, _, v in r["grad_stats"]}
        print(
            f"| {m} | {r['epoch']} | {100 * r['test_accuracy']:.2f}% | {r['train_loss']:.4f} | {100 * r['flip_ratio_total']:.3f}% | "
            f"{100 * f['conv2']:.3f}% / {100 * f['conv3']:.3f}% | {fr['conv2']:.4f} / {fr['conv3']:.4f} | "
            f"{g['conv2']:.2e} / {g['conv3']:.2e} | {r['samples_per_second']:.1f} |"
        )
