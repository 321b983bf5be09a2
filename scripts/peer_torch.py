#!/usr/bin/env python3
"""PyTorch peer of bitspike for side-by-side speed benchmarks.

Builds the same binary spiking network as bitspike from a bitspike JSON model config
(`bitspike config --preset mnist > mnist.json`) in plain PyTorch eager and times training
steps (forward + backward + Adam) and inference batches. The math follows docs/method.md and
the shader headers:

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
import gzip
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

REPO = Path(__file__).resolve().parent.parent
MNIST_DIR = REPO / "assets" / "mnist10k"

# BatchNormConfig::default() in bitspike (not part of the model JSON; method.md section 5).
BN_EPS = 1e-5
BN_MOMENTUM = 0.1


# ----------------------------------------------------------------------------- config


def load_config(path: str) -> dict:
    """Reads a bitspike model config and fills the defaults the Rust side's serde applies."""
    cfg = json.loads(Path(path).read_text())
    neuron = {"decay": 0.5, "v_th": 1.0, "reset": "hard", "detach_reset": False,
              "surrogate_width": 1.0}
    neuron.update(cfg.get("neuron") or {})
    agmm = {"mode": "full", "alpha": None}
    agmm.update(cfg.get("agmm") or {})
    cfg["neuron"], cfg["agmm"] = neuron, agmm
    cfg.setdefault("encoding", "direct")
    cfg.setdefault("loss", "mean_over_time")
    cfg.setdefault("pooling", "max")
    for layer in cfg["layers"]:
        if layer["kind"] == "conv":
            layer.setdefault("kernel", 3)
            layer.setdefault("stride", 1)
            layer.setdefault("padding", 1)
            layer.setdefault("shortcut", "none")
        elif layer["kind"] == "linear":
            layer.setdefault("binary", False)
            layer.setdefault("bias", True)
    return cfg


def expected_params(cfg: dict) -> tuple[int, int]:
    """(binary, full-precision) parameter counts the config implies, counted like
    src/model/summary.rs: conv weights + BN affine (+ shortcut 1x1 conv + its BN), linear
    weights + bias. Shapes are inferred like src/model/plan.rs."""
    c, h, w = cfg["input"]
    binary = fp = 0
    for layer in cfg["layers"]:
        kind = layer["kind"]
        if kind == "conv":
            co, k, s, p = layer["out_channels"], layer["kernel"], layer["stride"], layer["padding"]
            weights = co * c * k * k
            binary += weights if layer["binary"] else 0
            fp += (0 if layer["binary"] else weights) + 2 * co
            if layer["shortcut"] == "downsample":
                binary += co * c
                fp += 2 * co
            c, h, w = co, (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
        elif kind == "pool":
            h, w = h // layer["size"], w // layer["size"]
        elif kind == "global_avg_pool":
            h = w = 1
        elif kind == "linear":
            weights = layer["out_features"] * c * h * w
            binary += weights if layer["binary"] else 0
            fp += 0 if layer["binary"] else weights
            fp += layer["out_features"] if layer["bias"] else 0
            c, h, w = layer["out_features"], 1, 1
    return binary, fp


# ----------------------------------------------------------------------------- autograd ops


class SpikeFn(torch.autograd.Function):
    """s = 1{h >= v_th}; backward uses the triangle surrogate
    max(0, g - |h - v_th|) / g^2 (lif_backward.wgsl)."""

    @staticmethod
    def forward(ctx, h, v_th: float, width: float):
        ctx.save_for_backward(h)
        ctx.v_th, ctx.width = v_th, width
        return (h >= v_th).to(h.dtype)

    @staticmethod
    def backward(ctx, grad):
        (h,) = ctx.saved_tensors
        g = ctx.width
        surrogate = (g - (h - ctx.v_th).abs()).clamp_min(0.0) / (g * g)
        return grad * surrogate, None, None


class BinarizeFn(torch.autograd.Function):
    """W_b = gamma_c * sign(W), gamma_c = mean_k |W[c, k]| (detached), sign(0) = +1;
    backward: dW = gamma_c * dW_b * 1{|W| <= 1} (binarize_backward.wgsl)."""

    @staticmethod
    def forward(ctx, w):
        gamma = w.abs().flatten(1).mean(1).view(-1, *([1] * (w.dim() - 1)))
        # `w >= 0` is True for -0.0 too, as in the shader.
        wb = torch.where(w >= 0, gamma, -gamma)
        ctx.save_for_backward(w, gamma)
        return wb

    @staticmethod
    def backward(ctx, grad):
        w, gamma = ctx.saved_tensors
        return grad * gamma * (w.abs() <= 1.0).to(grad.dtype)


# ----------------------------------------------------------------------------- modules


class LIF(nn.Module):
    """Multi-step LIF on a time-major [T*B, ...] current, state carried as h[t] (the reset of a
    spike at t is applied when t+1 charges; lif_forward.wgsl). Autograd through this loop gives
    exactly the BPTT of lif_backward.wgsl, including the reset path unless detach_reset."""

    def __init__(self, neuron: dict, timesteps: int):
        super().__init__()
        self.decay, self.v_th = float(neuron["decay"]), float(neuron["v_th"])
        self.width = float(neuron["surrogate_width"])
        self.soft = neuron["reset"] == "soft"
        self.detach_reset = bool(neuron["detach_reset"])
        self.timesteps = timesteps

    def forward(self, current: torch.Tensor, broadcast: bool = False) -> torch.Tensor:
        # broadcast: `current` is one frame [B, ...] fed at every t (eval encoder shortcut).
        frames = None if broadcast else current.unflatten(0, (self.timesteps, -1))
        h = s = None
        spikes = []
        for t in range(self.timesteps):
            i_t = current if broadcast else frames[t]
            if t == 0:
                h = i_t
            else:
                reset = s.detach() if self.detach_reset else s
                if self.soft:
                    h = self.decay * (h - self.v_th * reset) + i_t
                else:
                    h = self.decay * h * (1.0 - reset) + i_t
            s = SpikeFn.apply(h, self.v_th, self.width)
            spikes.append(s)
        return torch.cat(spikes, 0)


class AGMM(nn.Module):
    """Y[t] = sigmoid(E[t]) * X[t], E[t] = (1 - a_t) E[t-1] + a_t X[t], E[0] = 0
    (agmm_forward.wgsl). `full`: autograd gives the exact gradient of agmm_backward.wgsl;
    `detached`: E is a constant in the backward (dX = q*G)."""

    def __init__(self, agmm: dict, timesteps: int):
        super().__init__()
        self.detached = agmm["mode"] == "detached"
        alpha = agmm["alpha"]
        # The shaders treat alpha <= 0 as "running mean" (method.md section 4.2).
        self.alpha = None if alpha is None or alpha <= 0 else float(alpha)
        self.timesteps = timesteps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xt = x.unflatten(0, (self.timesteps, -1))
        e = self.running_mean(xt) if self.alpha is None else self.ema(xt)
        if self.detached:
            e = e.detach()
        return (torch.sigmoid(e) * xt).flatten(0, 1)

    def running_mean(self, xt: torch.Tensor) -> torch.Tensor:
        # alpha_t = 1/t: E[t] is the mean of X[1..t]; cumsum is the same function (and its
        # autograd the same closed-form gradient, method.md 4.3) without a Python loop.
        shape = (self.timesteps,) + (1,) * (xt.dim() - 1)
        steps = torch.arange(1, self.timesteps + 1, device=xt.device, dtype=xt.dtype).view(shape)
        return xt.cumsum(0) / steps

    def ema(self, xt: torch.Tensor) -> torch.Tensor:
        a, e, out = self.alpha, torch.zeros_like(xt[0]), []
        for t in range(self.timesteps):
            e = (1.0 - a) * e + a * xt[t]
            out.append(e)
        return torch.stack(out, 0)


class Conv(nn.Module):
    """A conv without bias (BN follows), optionally with binarised weights."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, padding: int, binary: bool):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(cout, cin, kernel, kernel))
        # Kaiming normal, fan-out (method.md section 8.5).
        nn.init.kaiming_normal_(self.weight, mode="fan_out", nonlinearity="relu")
        self.stride, self.padding, self.binary = stride, padding, binary

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = BinarizeFn.apply(self.weight) if self.binary else self.weight
        return F.conv2d(x, w, stride=self.stride, padding=self.padding)


def batch_norm(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class ConvUnit(nn.Module):
    """conv -> BN -> [AGMM if binary and mode != off] -> [+ shortcut] -> LIF."""

    def __init__(self, layer: dict, cin: int, cfg: dict):
        super().__init__()
        cout, T = layer["out_channels"], cfg["timesteps"]
        self.conv = Conv(cin, cout, layer["kernel"], layer["stride"], layer["padding"],
                         layer["binary"])
        self.bn = batch_norm(cout)
        use_agmm = layer["binary"] and cfg["agmm"]["mode"] != "off"
        self.agmm = AGMM(cfg["agmm"], T) if use_agmm else None
        self.shortcut = layer["shortcut"]
        if self.shortcut == "downsample":
            self.down_conv = Conv(cin, cout, 1, 1, 0, binary=True)
            self.down_bn = batch_norm(cout)
        self.lif = LIF(cfg["neuron"], T)

    def per_frame(self) -> bool:
        """True when nothing before the LIF depends on t, so a repeated input frame can be
        processed once (bitspike's eval-mode encoder path, method.md 2.4)."""
        return self.agmm is None and self.shortcut == "none"

    def forward(self, x: torch.Tensor, broadcast: bool = False) -> torch.Tensor:
        y = self.bn(self.conv(x))
        if self.agmm is not None:
            y = self.agmm(y)
        if self.shortcut == "identity":
            y = y + x
        elif self.shortcut == "downsample":
            y = y + self.down_bn(self.down_conv(F.avg_pool2d(x, 2)))
        return self.lif(y, broadcast=broadcast)


class Readout(nn.Module):
    """Linear layer applied at every t to the flattened features (optionally binary)."""

    def __init__(self, layer: dict, inputs: int):
        super().__init__()
        self.linear = nn.Linear(inputs, layer["out_features"], bias=layer["bias"])
        self.binary = layer["binary"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = BinarizeFn.apply(self.linear.weight) if self.binary else self.linear.weight
        return F.linear(x.flatten(1), w, self.linear.bias)


class Pool(nn.Module):
    def __init__(self, size: int, kind: str):
        super().__init__()
        self.size, self.kind = size, kind

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pool = F.max_pool2d if self.kind == "max" else F.avg_pool2d
        return pool(x, self.size)


class GlobalAvgPool(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean((2, 3), keepdim=True)


class BSNN(nn.Module):
    """The whole network: [T*B, C, H, W] in, logits [T, B, classes] out."""

    def __init__(self, cfg: dict):
        super().__init__()
        self.cfg, self.timesteps = cfg, cfg["timesteps"]
        layers, (c, h, w) = [], cfg["input"]
        for layer in cfg["layers"]:
            kind = layer["kind"]
            if kind == "conv":
                layers.append(ConvUnit(layer, c, cfg))
                k, s, p = layer["kernel"], layer["stride"], layer["padding"]
                c, h, w = layer["out_channels"], (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
            elif kind == "pool":
                layers.append(Pool(layer["size"], cfg["pooling"]))
                h, w = h // layer["size"], w // layer["size"]
            elif kind == "global_avg_pool":
                layers.append(GlobalAvgPool())
                h = w = 1
            elif kind == "linear":
                layers.append(Readout(layer, c * h * w))
                c, h, w = layer["out_features"], 1, 1
            else:
                raise ValueError(f"unknown layer kind {kind!r}")
        self.layers = nn.ModuleList(layers)
        mean = torch.tensor(cfg["normalize_mean"]).view(1, -1, 1, 1)
        std = torch.tensor(cfg["normalize_std"]).view(1, -1, 1, 1)
        self.register_buffer("mean", mean, persistent=False)
        self.register_buffer("std", std, persistent=False)

    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, bool]:
        """uint8 [B, C, H, W] -> model input. Returns (input, single_frame): with direct
        encoding in eval mode the first unit runs once on [B, ...] when it can (as bitspike
        does); otherwise the input is [T*B, ...], time-major."""
        x = images.float() / 255.0
        T = self.timesteps
        if self.cfg["encoding"] == "poisson":
            frames = torch.rand((T,) + tuple(x.shape), device=x.device) < x
            return frames.to(x.dtype).flatten(0, 1), False
        x = (x - self.mean) / self.std
        first = self.layers[0]
        if not self.training and isinstance(first, ConvUnit) and first.per_frame():
            return x, True
        return x.repeat(T, 1, 1, 1), False

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x, single_frame = self.encode(images)
        for i, layer in enumerate(self.layers):
            x = layer(x, broadcast=True) if i == 0 and single_frame else layer(x)
        return x.unflatten(0, (self.timesteps, -1))


def loss_fn(logits: torch.Tensor, labels: torch.Tensor, kind: str) -> torch.Tensor:
    """mean_over_time: (1/T) sum_t CE(o_t, y), batch mean; mean_logits: CE(mean_t o_t, y)."""
    if kind == "mean_logits":
        return F.cross_entropy(logits.mean(0), labels)
    T = logits.shape[0]
    return F.cross_entropy(logits.flatten(0, 1), labels.repeat(T))


def predict(logits: torch.Tensor) -> torch.Tensor:
    return logits.sum(0).argmax(1)


# ----------------------------------------------------------------------------- data


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (gzip): big-endian magic (dtype code 0x08 = uint8, ndim), dims, data."""
    raw = gzip.decompress(path.read_bytes())
    if raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    ndim = raw[3]
    dims = np.frombuffer(raw, dtype=">u4", count=ndim, offset=4).astype(int)
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_data(cfg: dict, split: str, count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(uint8 images [N, C, H, W], int64 labels [N]) on the host: MNIST-10k for 1x28x28,
    else `count` seeded random images."""
    if list(cfg["input"]) == [1, 28, 28]:
        images = read_idx(MNIST_DIR / f"mnist10k-{split}-images-idx3-ubyte.gz")
        labels = read_idx(MNIST_DIR / f"mnist10k-{split}-labels-idx1-ubyte.gz")
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
