#!/usr/bin/env python3
"""PyTorch peer of bitspike for side-by-side speed benchmarks.

Builds the same binary spiking network as bitspike from a bitspike JSON model config
(`bitspike config --preset mnist > mnist.json`) with the `bitspike_torch` package
(python/bitspike_torch, used from this checkout when it is not installed) in plain PyTorch
eager and times training steps (forward + backward + Adam) and inference batches. The math
follows docs/method.md and the shader headers:

- time-major multi-step: conv, BN and pooling see [T*B, C, H, W] (sample n = t*B + b), so BN
  statistics cover T*B*H*W values per channel (method.md section 5);
- multi-step LIF as a Python loop over t, hard or soft reset, triangle surrogate
  (shaders/lif_forward.wgsl, lif_backward.wgsl);
- binary weights gamma*sign(W), per-output-channel gamma = mean|W| (detached), sign(0) = +1,
  clipped STE (binarize_forward.wgsl, binarize_backward.wgsl);
- AGMM Y = sigmoid(E)*X, E the running mean (alpha = 1/t) or an EMA (constant alpha), modes
  full / detached / off (agmm_forward.wgsl, agmm_backward.wgsl);
- conv unit: conv -> BN -> AGMM (binary units) -> + shortcut -> LIF; the downsample shortcut is
  AvgPool 2 -> binary 1x1 conv -> BN (src/snn/layers/conv_unit.rs);
- direct (normalised image at every t) or Poisson encoding; loss mean over time of CE, or CE of
  the mean logits.

Data: 1x28x28 models use the real MNIST-10k (assets/mnist10k/*.gz); other input shapes use
seeded random uint8 images and labels.

Usage (PyTorch in a virtualenv, see the final report / environment.md):
    bitspike config --preset mnist > /tmp/mnist.json
    /work/venv-torch/bin/python scripts/peer_torch.py --config /tmp/mnist.json
    ... --device cuda --batch 64 --infer-batch 256 --steps 10 --warmup 3 --mode both --json
    ... --check      # 20 Adam steps: the loss must fall; parameter count vs the config

The thread count is PyTorch's default on purpose (the benchmark compares default setups).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
try:
    import bitspike_torch  # noqa: F401  (installed: pip install ./python)
except ImportError:
    sys.path.insert(0, str(REPO / "python"))

from bitspike_torch import config as config_mod  # noqa: E402
from bitspike_torch.data import mnist10k_dir, read_idx  # noqa: E402
from bitspike_torch.model import BSNN, expected_params, loss_fn, predict  # noqa: E402


def load_config(path: str) -> dict:
    """A bitspike model config with the Rust side's defaults (unknown fields refused)."""
    return config_mod.load(path)


# ----------------------------------------------------------------------------- data


def load_data(cfg: dict, split: str, count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(uint8 images [N, C, H, W], int64 labels [N]) on the host: MNIST-10k for 1x28x28,
    else `count` seeded random images."""
    if list(cfg["input"]) == [1, 28, 28]:
        images = read_idx(mnist10k_dir() / f"mnist10k-{split}-images-idx3-ubyte.gz")
        labels = read_idx(mnist10k_dir() / f"mnist10k-{split}-labels-idx1-ubyte.gz")
        images = torch.from_numpy(images.copy()).unsqueeze(1)
        return images, torch.from_numpy(labels.astype(np.int64))
    rng = np.random.default_rng(seed + (0 if split == "train" else 1))
    images = rng.integers(0, 256, size=(count, *cfg["input"]), dtype=np.uint8)
    labels = rng.integers(0, cfg["classes"], size=count, dtype=np.int64)
    return torch.from_numpy(images), torch.from_numpy(labels)


def batches(images: torch.Tensor, labels: torch.Tensor, batch: int):
    """Consecutive batches, cycling (drop-last), forever."""
    n = images.shape[0]
    if n < batch:
        # Tile a small data set so any batch size works.
        reps = -(-batch // n)
        images, labels, n = images.repeat(reps, 1, 1, 1), labels.repeat(reps), n * reps
    start = 0
    while True:
        if start + batch > n:
            start = 0
        yield images[start:start + batch], labels[start:start + batch]
        start += batch


# ----------------------------------------------------------------------------- timing


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_step(model, opt, images, labels, device) -> torch.Tensor:
    # The host -> device copy is part of a real training step, so it is timed too.
    images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
    loss = loss_fn(model(images), labels, model.cfg["loss"])
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss


def time_train(model, opt, data, device, warmup: int, steps: int) -> list[float]:
    model.train()
    times = []
    for i in range(warmup + steps):
        images, labels = next(data)
        t0 = time.perf_counter()
        train_step(model, opt, images, labels, device)
        sync(device)
        if i >= warmup:
            times.append((time.perf_counter() - t0) * 1e3)
    return times


@torch.no_grad()
def time_infer(model, data, device, warmup: int, steps: int) -> list[float]:
    model.eval()
    times = []
    for i in range(warmup + steps):
        images, _ = next(data)
        t0 = time.perf_counter()
        predict(model(images.to(device, non_blocking=True)))
        sync(device)
        if i >= warmup:
            times.append((time.perf_counter() - t0) * 1e3)
    return times


def summarise(times: list[float], batch: int) -> tuple[float, float]:
    ms = statistics.median(times)
    return ms, batch * 1e3 / ms


# ----------------------------------------------------------------------------- check


def run_check(cfg: dict, device: torch.device, seed: int, batch: int = 64, steps: int = 20) -> bool:
    """Parameter count vs the config, and `steps` Adam steps whose loss must fall."""
    torch.manual_seed(seed)
    model = BSNN(cfg).to(device)
    binary, fp = expected_params(cfg)
    got = sum(p.numel() for p in model.parameters())
    params_ok = got == binary + fp
    print(f"parameters: {got:,} (config implies {binary:,} binary + {fp:,} fp32 = "
          f"{binary + fp:,}) {'OK' if params_ok else 'MISMATCH'}")

    images, labels = load_data(cfg, "train", max(batch, 256), seed)
    mnist = list(cfg["input"]) == [1, 28, 28]
    if not mnist:
        # Random labels carry no signal across batches: overfit one batch instead.
        images, labels = images[:batch], labels[:batch]
    data = batches(images, labels, batch)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    losses = [train_step(model, opt, *next(data), device).item() for _ in range(steps)]
    k = max(1, steps // 4)
    first, last = sum(losses[:k]) / k, sum(losses[-k:]) / k
    loss_ok = last < first
    print("losses: " + " ".join(f"{v:.3f}" for v in losses))
    print(f"mean loss of the first {k} steps {first:.4f} -> last {k} steps {last:.4f}: "
          f"{'falls, OK' if loss_ok else 'DOES NOT FALL'} "
          f"({'MNIST-10k batches' if mnist else 'one random batch, overfitted'})")
    return params_ok and loss_ok


# ----------------------------------------------------------------------------- main


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, help="bitspike model config JSON")
    p.add_argument("--device", default="cpu", help="cpu or cuda (or cuda:N)")
    p.add_argument("--batch", type=int, default=64, help="training batch")
    p.add_argument("--infer-batch", type=int, default=256)
    p.add_argument("--steps", type=int, default=10,
                   help="timed steps (and timed inference batches)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps (and batches) first")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    p.add_argument("--timesteps", "-T", type=int, help="override the config's T")
    p.add_argument("--mode", choices=["train", "infer", "both"], default="both")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--check", action="store_true", help="sanity check instead of timing")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    cfg = load_config(args.config)
    if args.timesteps:
        cfg["timesteps"] = args.timesteps
    device = torch.device(args.device)
    if args.check:
        return 0 if run_check(cfg, device, args.seed) else 1

    torch.manual_seed(args.seed)
    model = BSNN(cfg).to(device)
    result = {"tool": "pytorch", "device": str(device), "torch": torch.__version__,
              "threads": torch.get_num_threads(), "model": cfg.get("name", Path(args.config).stem),
              "batch": args.batch, "timesteps": cfg["timesteps"]}
    if device.type == "cuda":
        result["device_name"] = torch.cuda.get_device_name(device)
    n_data = max(args.batch, args.infer_batch) * 4
    if args.mode in ("train", "both"):
        opt = torch.optim.Adam(model.parameters(), lr=args.lr)
        data = batches(*load_data(cfg, "train", n_data, args.seed), args.batch)
        times = time_train(model, opt, data, device, args.warmup, args.steps)
        ms, rate = summarise(times, args.batch)
        result["train"] = {"ms_per_step": ms, "samples_per_s": rate, "steps": args.steps}
    if args.mode in ("infer", "both"):
        data = batches(*load_data(cfg, "test", n_data, args.seed), args.infer_batch)
        times = time_infer(model, data, device, args.warmup, args.steps)
        ms, rate = summarise(times, args.infer_batch)
        result["infer"] = {"ms_per_batch": ms, "samples_per_s": rate, "batch": args.infer_batch}

    if args.json:
        print(json.dumps(result))
    else:
        print_table(result)
    return 0


def print_table(r: dict) -> None:
    print(f"PyTorch {r['torch']} eager on {r['device']} ({r['threads']} threads), "
          f"model {r['model']}, T={r['timesteps']}")
    print(f"{'mode':<10} {'batch':>6} {'ms':>10} {'samples/s':>10}")
    if "train" in r:
        t = r["train"]
        print(f"{'train':<10} {r['batch']:>6} {t['ms_per_step']:>10.1f} "
              f"{t['samples_per_s']:>10.1f}")
    if "infer" in r:
        t = r["infer"]
        print(f"{'infer':<10} {t['batch']:>6} {t['ms_per_batch']:>10.1f} "
              f"{t['samples_per_s']:>10.1f}")


if __name__ == "__main__":
    sys.exit(main())
