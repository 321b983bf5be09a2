"""The bitspike network in PyTorch, built from a bitspike model config.

Every piece does what its WGSL kernel does (docs/method.md; the shader headers), with autograd
giving the backward:

- time-major multi-step: conv, BN and pooling see `[T*B, C, H, W]` (sample n = t*B + b), so BN
  statistics cover T*B*H*W values per channel (method.md section 5);
- multi-step LIF as a loop over t, hard or soft reset, triangle surrogate (lif_forward.wgsl,
  lif_backward.wgsl);
- binary weights gamma*sign(W), per-output-channel gamma = mean|W| (detached), sign(0) = +1,
  clipped STE (binarize_forward.wgsl, binarize_backward.wgsl);
- AGMM Y = sigmoid(E)*X, E the running mean (alpha = 1/t) or an EMA (constant alpha), modes
  full / detached / off (agmm_forward.wgsl, agmm_backward.wgsl);
- conv unit: conv -> BN -> AGMM (binary units) -> + shortcut -> LIF; the downsample shortcut is
  AvgPool 2 -> binary 1x1 conv -> BN (src/snn/layers/conv_unit.rs);
- direct (normalised image at every t) or Poisson encoding; loss mean over time of CE, or CE of
  the mean logits.

Module and parameter names are the checkpoint's tensor names (`conv2.weight`, `conv2.bn.bias`,
`conv5.shortcut.bn.running_var`, `fc.weight`), so `state_dict()` minus BN's
`num_batches_tracked` is a bitspike checkpoint's tensor set.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import config as config_mod

# BatchNormConfig::default() in bitspike (not part of the model JSON; method.md section 5).
BN_EPS = 1e-5
BN_MOMENTUM = 0.1


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


def batch_norm(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


def conv_weight(cout: int, cin: int, kernel: int) -> nn.Parameter:
    """Kaiming normal, fan-out (method.md section 8.5), like bitspike's `Init::KaimingNormalFanOut`."""
    weight = nn.Parameter(torch.empty(cout, cin, kernel, kernel))
    nn.init.kaiming_normal_(weight, mode="fan_out", nonlinearity="relu")
    return weight


def effective(weight: torch.Tensor, binary: bool) -> torch.Tensor:
    """The weight the layer computes with: gamma*sign(W) for binary layers."""
    return BinarizeFn.apply(weight) if binary else weight


class Downsample(nn.Module):
    """The shortcut of a stride-2 unit: AvgPool 2 -> binary 1x1 conv -> BN (named
    `convN.shortcut.*` in checkpoints)."""

    binary = True

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.weight = conv_weight(cout, cin, 1)
        self.bn = batch_norm(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(F.conv2d(F.avg_pool2d(x, 2), effective(self.weight, True)))


class ConvUnit(nn.Module):
    """conv -> BN -> [AGMM if binary and mode != off] -> [+ shortcut] -> LIF."""

    spiking = True

    def __init__(self, layer: dict, cin: int, cfg: dict):
        super().__init__()
        cout, T = layer["out_channels"], cfg["timesteps"]
        self.weight = conv_weight(cout, cin, layer["kernel"])
        self.stride, self.padding, self.binary = layer["stride"], layer["padding"], layer["binary"]
        self.bn = batch_norm(cout)
        use_agmm = layer["binary"] and cfg["agmm"]["mode"] != "off"
        self.agmm = AGMM(cfg["agmm"], T) if use_agmm else None
        self.shortcut_kind = layer["shortcut"]
        self.shortcut = Downsample(cin, cout) if self.shortcut_kind == "downsample" else None
        self.lif = LIF(cfg["neuron"], T)

    def per_frame(self) -> bool:
        """True when nothing before the LIF depends on t, so a repeated input frame can be
        processed once (bitspike's eval-mode encoder path, method.md 2.4)."""
        return self.agmm is None and self.shortcut_kind == "none"

    def forward(self, x: torch.Tensor, broadcast: bool = False) -> torch.Tensor:
        w = effective(self.weight, self.binary)
        y = self.bn(F.conv2d(x, w, stride=self.stride, padding=self.padding))
        if self.agmm is not None:
            y = self.agmm(y)
        if self.shortcut_kind == "identity":
            y = y + x
        elif self.shortcut is not None:
            y = y + self.shortcut(x)
        return self.lif(y, broadcast=broadcast)


class Readout(nn.Module):
    """Linear layer applied at every t to the flattened features (optionally binary).
    Initialised like `nn.Linear` (method.md section 8.5)."""

    spiking = False

    def __init__(self, layer: dict, inputs: int):
        super().__init__()
        linear = nn.Linear(inputs, layer["out_features"], bias=layer["bias"])
        self.weight, self.bias = linear.weight, linear.bias
        self.binary = layer["binary"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x.flatten(1), effective(self.weight, self.binary), self.bias)


class Pool(nn.Module):
    """Pooling of size x size, stride size; max (an OR on spikes) or average."""

    spiking = True  # bitspike records its output's mean as a firing rate

    def __init__(self, size: int, kind: str):
        super().__init__()
        self.size, self.kind = size, kind

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pool = F.max_pool2d if self.kind == "max" else F.avg_pool2d
        return pool(x, self.size)


class GlobalAvgPool(nn.Module):
    spiking = True  # as Pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean((2, 3), keepdim=True)


class BSNN(nn.Module):
    """The whole network: uint8 images [B, C, H, W] in, logits [T, B, classes] out.

    Layers are registered under their bitspike names (`conv1`, `pool1`, `fc`, ...), in config
    order; `layers` lists them."""

    def __init__(self, cfg: dict):
        super().__init__()
        self.cfg, self.timesteps = cfg, cfg["timesteps"]
        self.layer_names = []
        for planned in config_mod.plan(cfg):
            layer, (c, h, w) = planned["layer"], planned["input"]
            kind = layer["kind"]
            if kind == "conv":
                module = ConvUnit(layer, c, cfg)
            elif kind == "pool":
                module = Pool(layer["size"], cfg["pooling"])
            elif kind == "global_avg_pool":
                module = GlobalAvgPool()
            else:
                module = Readout(layer, c * h * w)
            self.add_module(planned["name"], module)
            self.layer_names.append(planned["name"])
        mean = torch.tensor(cfg["normalize_mean"]).view(1, -1, 1, 1)
        std = torch.tensor(cfg["normalize_std"]).view(1, -1, 1, 1)
        self.register_buffer("mean", mean, persistent=False)
        self.register_buffer("std", std, persistent=False)

    @property
    def layers(self) -> list[nn.Module]:
        return [getattr(self, name) for name in self.layer_names]

    def binary_weights(self) -> list[tuple[str, nn.Parameter]]:
        """(layer name, latent weight) of every binary layer, in bitspike's order (a unit's
        own weight before its shortcut's): the layers of `flip_ratio` and `grad_stats`."""
        out = []
        for name, layer in zip(self.layer_names, self.layers):
            if getattr(layer, "binary", False):
                out.append((name, layer.weight))
            shortcut = getattr(layer, "shortcut", None)
            if shortcut is not None:
                out.append((f"{name}.shortcut", shortcut.weight))
        return out

    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, bool]:
        """uint8 [B, C, H, W] -> model input. Returns (input, single_frame): with direct
        encoding in eval mode the first unit runs once on [B, ...] when it can (as bitspike
        does); otherwise the input is [T*B, ...], time-major. Poisson frames use torch's
        generator (bitspike's own stream is not reproduced)."""
        x = images.to(self.mean.dtype) / 255.0
        T = self.timesteps
        if self.cfg["encoding"] == "poisson":
            frames = torch.rand((T,) + tuple(x.shape), device=x.device, dtype=x.dtype) < x
            return frames.to(x.dtype).flatten(0, 1), False
        x = (x - self.mean) / self.std
        first = self.layers[0]
        if not self.training and isinstance(first, ConvUnit) and first.per_frame():
            return x, True
        return x.repeat(T, 1, 1, 1), False

    def forward(self, images: torch.Tensor, spikes_out: dict | None = None) -> torch.Tensor:
        """Logits [T, B, classes]. With `spikes_out`, each spiking layer's output is stored
        there under its name (for firing rates)."""
        x, single_frame = self.encode(images)
        for i, (name, layer) in enumerate(zip(self.layer_names, self.layers)):
            x = layer(x, broadcast=True) if i == 0 and single_frame else layer(x)
            if spikes_out is not None and layer.spiking:
                spikes_out[name] = x
        return x.unflatten(0, (self.timesteps, -1))


def loss_fn(logits: torch.Tensor, labels: torch.Tensor, kind: str) -> torch.Tensor:
    """mean_over_time: (1/T) sum_t CE(o_t, y), batch mean; mean_logits: CE(mean_t o_t, y)."""
    if kind == "mean_logits":
        return F.cross_entropy(logits.mean(0), labels)
    T = logits.shape[0]
    return F.cross_entropy(logits.flatten(0, 1), labels.repeat(T))


def predict(logits: torch.Tensor) -> torch.Tensor:
    """The class with the largest summed logit over time (bitspike's accuracy)."""
    return logits.sum(0).argmax(1)


def expected_params(cfg: dict) -> tuple[int, int]:
    """(binary, full-precision) parameter counts the config implies, counted like
    src/model/summary.rs: conv weights + BN affine (+ shortcut 1x1 conv + its BN), linear
    weights + bias."""
    binary = fp = 0
    for planned in config_mod.plan(cfg):
        layer, (c, h, w) = planned["layer"], planned["input"]
        kind = layer["kind"]
        if kind == "conv":
            co, k = layer["out_channels"], layer["kernel"]
            weights = co * c * k * k
            binary += weights if layer["binary"] else 0
            fp += (0 if layer["binary"] else weights) + 2 * co
            if layer["shortcut"] == "downsample":
                binary += co * c
                fp += 2 * co
        elif kind == "linear":
            weights = layer["out_features"] * c * h * w
            binary += weights if layer["binary"] else 0
            fp += 0 if layer["binary"] else weights
            fp += layer["out_features"] if layer["bias"] else 0
    return binary, fp
