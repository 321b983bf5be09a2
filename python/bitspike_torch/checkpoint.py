"""bitspike checkpoints on the PyTorch side: the same file, both directions.

A checkpoint is safetensors with PyTorch names and layouts (`src/checkpoint.rs`,
`src/snn/checkpoint_io.rs`): latent f32 weights, BN affine and running statistics, optimizer
state as `optim.<param>.a` / `optim.<param>.b` (SGD: momentum buffer and an unused zero tensor;
Adam: `exp_avg` and `exp_avg_sq`), and string metadata: `format` = `bitspike-1`,
`model_config` (the model JSON), `timesteps`, `step`, `epoch`, `seed`, `train_config` (the
Rust `TrainConfig` as JSON) and `firing_rates`. Writing every key the Rust side writes, with
the same meaning, is what lets `bitspike train --init` continue a run PyTorch started and the
other way round.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from . import config as config_mod
from . import safetensors_io
from .model import BSNN

FORMAT = "bitspike-1"
# TrainConfig's fields (src/train/mod.rs, `deny_unknown_fields`): train_config JSON has exactly
# these, so the Rust side can read what is written here.
TRAIN_CONFIG_FIELDS = ("epochs", "max_steps", "batch", "optimizer", "lr", "momentum",
                       "weight_decay", "cosine", "seed", "shuffle", "augment", "log_every")


class CheckpointError(ValueError):
    """A checkpoint that cannot be used here; the message names the file, key or tensor."""


@dataclass
class Checkpoint:
    """A checkpoint's tensors (name -> float32 array) and its typed metadata."""

    tensors: dict[str, np.ndarray]
    model: dict | None = None
    step: int = 0
    epoch: int = 0
    seed: int | None = None
    train_config: dict | None = None
    firing_rates: list = field(default_factory=list)
    extra_metadata: dict = field(default_factory=dict)

    def metadata(self) -> dict[str, str]:
        """String metadata as bitspike writes it (`CheckpointMeta::write_into`)."""
        meta = dict(self.extra_metadata)
        meta["format"] = FORMAT
        if self.model is not None:
            meta["model_config"] = config_mod.to_json(self.model)
            meta["timesteps"] = str(self.model["timesteps"])
        meta["step"], meta["epoch"] = str(self.step), str(self.epoch)
        if self.seed is not None:
            meta["seed"] = str(self.seed)
        if self.train_config is not None:
            meta["train_config"] = json.dumps(self.train_config)
        meta["firing_rates"] = json.dumps(self.firing_rates)
        return meta


_KNOWN_KEYS = ("format", "model_config", "timesteps", "step", "epoch", "seed", "train_config",
               "firing_rates")


def read(path) -> Checkpoint:
    """Reads a checkpoint file; a malformed metadata value is an error naming its key."""
    tensors, meta = safetensors_io.load(path)

    def bad(key: str, reason: str) -> CheckpointError:
        return CheckpointError(f"{path}: metadata key `{key}` is malformed: {reason}")

    def number(key: str) -> int | None:
        if key not in meta:
            return None
        if not meta[key].isdigit():
            raise bad(key, f"`{meta[key]}` is not a whole number")
        return int(meta[key])

    model = None
    if "model_config" in meta:
        try:
            model = config_mod.from_json(meta["model_config"])
        except config_mod.ConfigError as e:
            raise bad("model_config", str(e)) from None
    train_config = None
    if "train_config" in meta:
        try:
            train_config = json.loads(meta["train_config"])
        except json.JSONDecodeError as e:
            raise bad("train_config", str(e)) from None
    try:
        firing_rates = json.loads(meta.get("firing_rates", "[]"))
    except json.JSONDecodeError:
        firing_rates = []  # only feeds energy estimates; bitspike drops it with a warning too
    return Checkpoint(tensors=tensors, model=model, step=number("step") or 0,
                      epoch=number("epoch") or 0, seed=number("seed"),
                      train_config=train_config, firing_rates=firing_rates,
                      extra_metadata={k: v for k, v in meta.items() if k not in _KNOWN_KEYS})


def write(path, ck: Checkpoint) -> None:
    """Writes a checkpoint atomically."""
    safetensors_io.save(path, ck.tensors, ck.metadata())


def unwrap(model: torch.nn.Module) -> BSNN:
    """The BSNN inside a DistributedDataParallel (or any `.module`) wrapper."""
    return getattr(model, "module", model)


def model_tensors(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The model's checkpoint tensors by name (parameters and BN running statistics; BN's
    `num_batches_tracked` has no bitspike counterpart: momentum is fixed)."""
    return {name: t for name, t in unwrap(model).state_dict().items()
            if not name.endswith("num_batches_tracked")}


def decay_parameters(model: torch.nn.Module) -> tuple[list, list]:
    """(conv/linear weights, everything else): bitspike applies weight decay to the first
    group only (BN affine and biases get 0; `Param::decay`)."""
    decay, no_decay = [], []
    for name, p in unwrap(model).named_parameters():
        (no_decay if ".bn." in name or name.endswith(".bias") else decay).append(p)
    return decay, no_decay


def make_optimizer(model: torch.nn.Module, kind: str, lr: float, momentum: float,
                   weight_decay: float) -> torch.optim.Optimizer:
    """`torch.optim.SGD` / `Adam` with bitspike's semantics (the kernels follow PyTorch's:
    L2 decay added to the gradient, no dampening, no Nesterov; Adam betas 0.9/0.999,
    eps 1e-8)."""
    decay, no_decay = decay_parameters(model)
    groups = [{"params": decay, "weight_decay": weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    if kind == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum)
    if kind == "adam":
        return torch.optim.Adam(groups, lr=lr, betas=(0.9, 0.999), eps=1e-8)
    raise ValueError(f"unknown optimizer `{kind}` (expected sgd or adam)")


def _state_keys(opt: torch.optim.Optimizer) -> tuple[str, str | None]:
    """The optimizer-state keys stored as `.a` and `.b` (SGD's `.b` is unused)."""
    if isinstance(opt, torch.optim.Adam):
        return "exp_avg", "exp_avg_sq"
    return "momentum_buffer", None


def optimizer_tensors(model: torch.nn.Module, opt: torch.optim.Optimizer) -> dict:
    """`optim.<name>.a` / `.b` for every parameter (zeros where the optimizer has no state
    yet, as bitspike's buffers start)."""
    first, second = _state_keys(opt)
    out = {}
    for name, p in unwrap(model).named_parameters():
        state = opt.state.get(p, {})
        for suffix, key in (("a", first), ("b", second)):
            value = state.get(key) if key else None
            out[f"optim.{name}.{suffix}"] = value if value is not None else torch.zeros_like(p)
    return out


def load_optimizer(model: torch.nn.Module, opt: torch.optim.Optimizer, ck: Checkpoint) -> bool:
    """Sets the optimizer state from a checkpoint's `optim.*` tensors (Adam's step count from
    the checkpoint's `step`). Returns False when the checkpoint has none (fresh state)."""
    if not any(n.startswith("optim.") for n in ck.tensors):
        return False
    first, second = _state_keys(opt)
    for name, p in unwrap(model).named_parameters():
        state = {first: torch.from_numpy(ck.tensors[f"optim.{name}.a"]).to(p.device)}
        if second:
            state[second] = torch.from_numpy(ck.tensors[f"optim.{name}.b"]).to(p.device)
            state["step"] = torch.tensor(float(ck.step))
        opt.state[p] = state
    return True


def expected_specs(model: torch.nn.Module, with_optimizer: bool) -> list[tuple[str, tuple]]:
    """(name, shape) of every tensor a checkpoint of this model holds."""
    tensors = model_tensors(model)
    specs = [(n, tuple(t.shape)) for n, t in tensors.items()]
    if with_optimizer:
        for name, p in unwrap(model).named_parameters():
            specs += [(f"optim.{name}.a", tuple(p.shape)), (f"optim.{name}.b", tuple(p.shape))]
    return specs


def check_fits(model: torch.nn.Module, ck: Checkpoint) -> None:
    """Refuses a checkpoint of another model, naming the first mismatching tensor (as
    `Checkpoint::check_fits` does)."""
    with_optimizer = any(n.startswith("optim.") for n in ck.tensors)
    specs = expected_specs(model, with_optimizer)

    def mismatch(name: str, problem: str) -> CheckpointError:
        return CheckpointError("checkpoint does not fit this model: first mismatch at tensor "
                               f"`{name}`: {problem}")

    for name, shape in specs:
        if name not in ck.tensors:
            raise mismatch(name, "missing from the checkpoint")
        got = tuple(ck.tensors[name].shape)
        if got != shape:
            raise mismatch(name, f"shape {list(got)} in the checkpoint, {list(shape)} in the "
                                 "model")
    names = {n for n, _ in specs}
    for name in sorted(ck.tensors):
        if name not in names:
            raise mismatch(name, "not part of this model")


def load_weights(model: torch.nn.Module, ck: Checkpoint) -> None:
    """Copies a checkpoint's weights and BN statistics into `model` after `check_fits`."""
    check_fits(model, ck)
    with torch.no_grad():
        for name, t in model_tensors(model).items():
            t.copy_(torch.from_numpy(ck.tensors[name]))


def load_model(path, device="cpu") -> tuple[BSNN, Checkpoint]:
    """The model a checkpoint describes (its `model_config`), with its weights loaded."""
    ck = read(path)
    if ck.model is None:
        raise CheckpointError(f"{path}: no model_config in the checkpoint metadata")
    model = BSNN(ck.model)
    load_weights(model, ck)
    return model.to(device), ck


def snapshot(model: torch.nn.Module, opt: torch.optim.Optimizer | None, *, step: int,
             epoch: int, seed: int | None = None, train_config: dict | None = None,
             firing_rates=()) -> Checkpoint:
    """A checkpoint of `model` (and the optimizer's state) as bitspike writes one."""
    tensors = dict(model_tensors(model))
    if opt is not None:
        tensors.update(optimizer_tensors(model, opt))
    arrays = {n: t.detach().to("cpu", torch.float32).numpy() for n, t in tensors.items()}
    if train_config is not None:
        unknown = set(train_config) - set(TRAIN_CONFIG_FIELDS)
        if unknown:
            raise CheckpointError(f"train_config: fields bitspike does not know: {sorted(unknown)}")
    return Checkpoint(tensors=arrays, model=unwrap(model).cfg, step=step, epoch=epoch,
                      seed=seed, train_config=train_config, firing_rates=list(firing_rates))


def save(path, model: torch.nn.Module, opt: torch.optim.Optimizer | None = None, **meta) -> Path:
    """Writes `snapshot(model, opt, **meta)` to `path` atomically and returns the path."""
    write(path, snapshot(model, opt, **meta))
    return Path(path)
