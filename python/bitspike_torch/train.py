"""Train a bitspike model with PyTorch, on one process or many (DistributedDataParallel).

    python -m bitspike_torch.train --steps 100                       # one process
    torchrun --nproc_per_node 8 -m bitspike_torch.train --dataset cifar10 --data DIR \\
        --preset resnet19 --optimizer sgd --batch 256 --out runs/r19  # 8 GPUs, NCCL

The options are `bitspike train`'s, with its meanings: `--batch` is the batch of one optimizer
step (split evenly over the processes, so the schedule and the gradient are those of a
single-process run), `--steps` counts optimizer steps in total (a resumed run included), the
learning rate follows bitspike's cosine schedule from `--lr` to 0 over the run, weight decay
applies to conv/linear weights only. Each epoch appends one line to OUT/metrics.jsonl with
bitspike's fields (train/test loss and accuracy, flip ratio per binary layer and in total,
firing rate per spiking layer, latent-gradient mean and variance per binary layer, samples/s,
epoch and eval time) and writes OUT/last.safetensors, a bitspike checkpoint (`bitspike eval`,
`bitspike gui --checkpoint`, `bitspike train --init` read it).

The shuffle order and the CIFAR augmentation are bitspike's own seeded streams (`rng.py`), so
a one-process run with direct encoding repeats `bitspike train` step for step (up to float
rounding); Poisson spikes come from torch's generator. With several processes each takes its
slice of every global batch; BN statistics are then per process (`--sync-bn` uses
SyncBatchNorm on CUDA).

Under torchrun the backend is NCCL when CUDA is available and gloo otherwise. (Debian's torch
1.13 on Python 3.11 needs `torchrun --redirects 2 --tee 2 ...`: its default log-redirect
setting hits an IntFlag change in Python 3.11.)
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from . import checkpoint as ckpt
from . import config as config_mod
from . import data as data_mod
from . import evaluate, rng
from .model import BSNN, loss_fn, predict

ADAM_LR, SGD_LR = 1e-3, 0.1  # OptimizerKind::default_lr
SGD_WEIGHT_DECAY = 1e-4      # OptimizerKind::default_weight_decay (Adam: 0)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bitspike_torch.train",
                                description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", choices=data_mod.DATASETS, default="mnist10k")
    p.add_argument("--data", help="directory with the data set's files (idx / cifar10 / cifar100)")
    p.add_argument("--preset", choices=config_mod.PRESETS,
                   help="built-in model (default mnist; with --init: the checkpoint's model)")
    p.add_argument("--config", help="model config file (JSON), overrides --preset")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--steps", type=int, help="stop after this many optimizer steps in total")
    p.add_argument("--batch", type=int, default=64, help="samples per optimizer step, all processes")
    p.add_argument("-T", "--timesteps", type=int, help="timesteps T (overrides the model's)")
    p.add_argument("--optimizer", choices=("adam", "sgd"), default="adam")
    p.add_argument("--lr", type=float, help="peak learning rate (default 1e-3 Adam, 0.1 SGD)")
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--weight-decay", type=float,
                   help="on conv/linear weights (default 0 Adam, 1e-4 SGD)")
    p.add_argument("--agmm", choices=("full", "detached", "off"), help="overrides the model's")
    p.add_argument("--loss", choices=("mean-over-time", "mean-logits"),
                   help="overrides the model's")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", default="runs/latest", help="metrics.jsonl and last.safetensors")
    p.add_argument("--init", help="start from this checkpoint (weights, optimizer, step, epoch)")
    p.add_argument("--no-shuffle", action="store_true", help="keep file order")
    p.add_argument("--no-augment", action="store_true", help="no CIFAR crop + flip")
    p.add_argument("--save", help="also save the final checkpoint here")
    p.add_argument("--limit-train", type=int, help="only the first N training samples")
    p.add_argument("--limit-test", type=int, help="only the first N test samples")
    p.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    p.add_argument("--sync-bn", action="store_true",
                   help="BN statistics over all processes (SyncBatchNorm, CUDA only)")
    return p.parse_args(argv)


class Distributed:
    """The process group when started by torchrun (WORLD_SIZE set), else a single process."""

    def __init__(self, device_arg: str | None):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", "0"))
        cuda = torch.cuda.is_available() if device_arg is None else device_arg.startswith("cuda")
        self.device = torch.device(f"cuda:{local}" if cuda else "cpu")
        if cuda:
            torch.cuda.set_device(self.device)
        if self.world > 1:
            dist.init_process_group("nccl" if cuda else "gloo")

    @property
    def main(self) -> bool:
        return self.rank == 0

    def sum(self, values: list[float]) -> list[float]:
        """Element-wise sum over all processes (float64)."""
        t = torch.tensor(values, dtype=torch.float64,
                         device=self.device if self.device.type == "cuda" else "cpu")
        if self.world > 1:
            dist.all_reduce(t)
        return t.tolist()

    def close(self, barrier: bool = True) -> None:
        if self.world > 1:
            if barrier:
                # Every rank's queued work is done before the group goes away.
                dist.barrier()
            dist.destroy_process_group()


def train_config(args, lr: float, weight_decay: float) -> dict:
    """The run's settings as bitspike's `TrainConfig` JSON (checkpoint metadata)."""
    return {"epochs": args.epochs, "max_steps": args.steps, "batch": args.batch,
            "optimizer": args.optimizer, "lr": lr, "momentum": args.momentum,
            "weight_decay": weight_decay, "cosine": True, "seed": args.seed,
            "shuffle": not args.no_shuffle, "augment": augment_on(args), "log_every": 5}


def augment_on(args) -> bool:
    return not args.no_augment and args.dataset in ("cifar10", "cifar100")


def lr_at(lr: float, step: int, total_steps: int) -> float:
    """`Trainer::lr_at`: cosine from `lr` to 0 over the run, computed in f64, used as f32."""
    progress = min(step / total_steps, 1.0)
    return float(np.float32(lr * 0.5 * (1.0 + math.cos(math.pi * progress))))


def augment(images: np.ndarray, shifts: list[tuple[int, int, bool]]) -> np.ndarray:
    """bitspike's CIFAR augmentation: output pixel (y, x) reads the source at
    (y + dy, (flip ? W-1-x : x) + dx), zero outside the image."""
    b, _, h, w = images.shape
    padded = np.pad(images, ((0, 0), (0, 0), (4, 4), (4, 4)))
    out = np.empty_like(images)
    for i, (dy, dx, flip) in enumerate(shifts):
        rows = padded[i, :, 4 + dy:4 + dy + h]
        # Flipped, column x reads source column w-1-x+dx: the mirrored window starts at 4-dx.
        if flip:
            out[i] = rows[:, :, ::-1][:, :, 4 - dx:4 - dx + w]
        else:
            out[i] = rows[:, :, 4 + dx:4 + dx + w]
    return out


class EpochStats:
    """What one epoch measures, summed on this process (firing rates, loss, accuracy) or
    already global (latent gradients after DDP's all-reduce)."""

    def __init__(self, spiking: list[str], binary: list[str]):
        self.spiking, self.binary = spiking, binary
        self.loss_sum = self.correct = self.samples = 0.0
        self.firing = {n: [0.0, 0.0] for n in spiking}          # sum, count
        self.grads = {n: [0.0, 0.0, 0.0] for n in binary}       # sum, sum of squares, count

    def add_step(self, loss: float, correct: int, samples: int, spikes: dict, grads) -> None:
        self.loss_sum += loss * samples
        self.correct += correct
        self.samples += samples
        for name, s in spikes.items():
            self.firing[name][0] += float(s.detach().sum(dtype=torch.float64))
            self.firing[name][1] += s.numel()
        for name, g in grads:
            g = g.detach().double()
            acc = self.grads[name]
            acc[0] += float(g.sum())
            acc[1] += float((g * g).sum())
            acc[2] += g.numel()

    def reduce(self, group: Distributed) -> None:
        local = [self.loss_sum, self.correct, self.samples]
        for n in self.spiking:
            local += self.firing[n]
        total = group.sum(local)
        self.loss_sum, self.correct, self.samples = total[:3]
        for i, n in enumerate(self.spiking):
            self.firing[n] = total[3 + 2 * i: 5 + 2 * i]


def mean_and_variance(acc) -> tuple[float, float]:
    s, q, c = acc
    if c <= 0:
        return 0.0, 0.0
    mean = s / c
    return mean, max(q / c - mean * mean, 0.0)


def signs(model: BSNN) -> dict[str, torch.Tensor]:
    """Sign bits of every binary latent weight (w >= 0, so sign(0) = +1)."""
    return {name: (w.detach() >= 0) for name, w in model.binary_weights()}


def build_model(args, init: ckpt.Checkpoint | None) -> dict:
    """The model config: --config, --preset, or the --init checkpoint's; then -T/--agmm/--loss."""
    if args.config:
        cfg = config_mod.load(args.config)
    elif args.preset or init is None or init.model is None:
        cfg = config_mod.preset(args.preset or "mnist")
    else:
        cfg = init.model
    if args.timesteps:
        cfg["timesteps"] = args.timesteps
    if args.agmm:
        cfg["agmm"]["mode"] = args.agmm
    if args.loss:
        cfg["loss"] = args.loss.replace("-", "_")
    return config_mod.normalize(cfg)


def run(args) -> int:
    group = Distributed(args.device)
    log = print if group.main else (lambda *a, **k: None)
    init = ckpt.read(args.init) if args.init else None
    cfg = build_model(args, init)
    train_set, test_set = data_mod.load(args.dataset, args.data)
    train_set, test_set = train_set.truncated(args.limit_train), test_set.truncated(args.limit_test)
    for split in (train_set, test_set):
        evaluate.check_shapes(cfg, split)
    if len(train_set) == 0:
        raise data_mod.DataError("the training set is empty")
    if args.batch < 1 or args.batch % group.world:
        raise SystemExit(f"--batch {args.batch} must be a positive multiple of the "
                         f"{group.world} processes")
    lr = args.lr if args.lr is not None else (ADAM_LR if args.optimizer == "adam" else SGD_LR)
    weight_decay = args.weight_decay if args.weight_decay is not None else (
        0.0 if args.optimizer == "adam" else SGD_WEIGHT_DECAY)

    torch.manual_seed(args.seed)
    model = BSNN(cfg)
    opt = ckpt.make_optimizer(model, args.optimizer, lr, args.momentum, weight_decay)
    step, epoch = 0, 0
    if init is not None:
        ckpt.load_weights(model, init)
        ckpt.load_optimizer(model, opt, init)
        step, epoch = init.step, init.epoch
    model.to(group.device)
    for state in opt.state.values():  # optimizer state follows its parameters' device
        for key, value in state.items():
            if torch.is_tensor(value) and key != "step":
                state[key] = value.to(group.device)
    net = model
    if group.world > 1:
        if args.sync_bn:
            net = torch.nn.SyncBatchNorm.convert_sync_batchnorm(net)
        net = torch.nn.parallel.DistributedDataParallel(
            net, device_ids=[group.device.index] if group.device.type == "cuda" else None)

    batch = min(args.batch, len(train_set))
    local_batch = batch // group.world
    steps_per_epoch = len(train_set) // batch
    total_steps = max(1, min((len(train_set) // args.batch or 1) * args.epochs,
                             args.steps if args.steps is not None else 1 << 62))
    out = Path(args.out)
    metrics = out / "metrics.jsonl"
    if group.main:
        out.mkdir(parents=True, exist_ok=True)
        if init is None and metrics.exists():
            metrics.unlink()
    log(f"model {cfg['name']} (T = {cfg['timesteps']}, AGMM {cfg['agmm']['mode']}), "
        f"{len(train_set)} train / {len(test_set)} test samples, batch {args.batch} over "
        f"{group.world} process(es) on {group.device}, {args.optimizer} lr {lr}, seed {args.seed}"
        + (f"; resumed from {args.init} at epoch {epoch}, step {step}" if init else ""))

    spiking = [n for n, layer in zip(model.layer_names, model.layers) if layer.spiking]
    binary = [n for n, _ in model.binary_weights()]
    previous_signs = signs(model)
    firing_rates: list = init.firing_rates if init else []
    finished = False
    try:
        while step < total_steps and epoch < args.epochs:
            stats = EpochStats(spiking, binary)
            order = rng.epoch_order(len(train_set), args.seed, epoch, not args.no_shuffle)
            started = time.perf_counter()
            lr_now = lr
            net.train()
            for s in range(steps_per_epoch):
                if step >= total_steps:
                    break
                mine = slice(group.rank * local_batch, (group.rank + 1) * local_batch)
                idx = order[s * batch:(s + 1) * batch][mine]
                images = train_set.images[idx]
                if augment_on(args):
                    images = augment(images, rng.augmentation(batch, args.seed, step)[mine])
                images = torch.from_numpy(images).to(group.device)
                labels = torch.from_numpy(train_set.labels[idx]).to(group.device)
                lr_now = lr_at(lr, step, total_steps)
                for g in opt.param_groups:
                    g["lr"] = lr_now
                spikes: dict = {}
                logits = net(images, spikes_out=spikes)
                loss = loss_fn(logits, labels, cfg["loss"])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                stats.add_step(loss.item(), int((predict(logits) == labels).sum()), len(idx),
                               spikes, [(n, w.grad) for n, w in model.binary_weights()])
                opt.step()
                step += 1
                if not math.isfinite(loss.item()):
                    raise SystemExit(f"training diverged: the loss became {loss.item()} at epoch "
                                     f"{epoch}, step {step}. Stopped. Try a lower learning rate.")
            train_seconds = time.perf_counter() - started
            now_signs = signs(model)
            flips = [(n, float((now_signs[n] != previous_signs[n]).sum()), now_signs[n].numel())
                     for n in binary]
            previous_signs = now_signs
            eval_started = time.perf_counter()
            shard = np.array_split(np.arange(len(test_set)), group.world)[group.rank]
            test_loss, test_correct, test_n = group.sum(list(evaluate.run(
                model, test_set, group.device, args.batch, indices=shard)))
            eval_seconds = time.perf_counter() - eval_started
            stats.reduce(group)
            firing_rates = [[n, stats.firing[n][0] / max(stats.firing[n][1], 1)] for n in spiking]
            record = {
                "epoch": epoch + 1, "step": step, "lr": lr_now,
                "train_loss": stats.loss_sum / max(stats.samples, 1),
                "train_accuracy": stats.correct / max(stats.samples, 1),
                "test_loss": test_loss / max(test_n, 1), "test_accuracy": test_correct / max(test_n, 1),
                "flip_ratio": [[n, f / max(t, 1)] for n, f, t in flips],
                "flip_ratio_total": sum(f for _, f, _ in flips) / max(sum(t for *_, t in flips), 1),
                "firing_rate": firing_rates,
                "grad_stats": [[n, *mean_and_variance(stats.grads[n])] for n in binary],
                "samples_per_second": stats.samples / max(train_seconds, 1e-9),
                "epoch_seconds": train_seconds, "eval_seconds": eval_seconds,
            }
            epoch += 1
            if group.main:
                with metrics.open("a") as f:
                    f.write(json.dumps(record) + "\n")
                ckpt.save(out / "last.safetensors", model, opt, step=step, epoch=epoch,
                          seed=args.seed, train_config=train_config(args, lr, weight_decay),
                          firing_rates=firing_rates)
            log(f"epoch {record['epoch']:>3}  train loss {record['train_loss']:.4f} acc "
                f"{100 * record['train_accuracy']:6.2f}%  test loss {record['test_loss']:.4f} acc "
                f"{100 * record['test_accuracy']:6.2f}%  flips {100 * record['flip_ratio_total']:.4f}%"
                f"  {record['samples_per_second']:.1f} samples/s  {train_seconds:.1f}s")
        if group.main:
            last = out / "last.safetensors"
            if args.save and last.exists():
                shutil.copyfile(last, args.save)
            log(f"metrics: {metrics}  checkpoint: {last}")
        finished = True
    finally:
        # The DDP wrapper goes first, while the process group is still registered: its
        # Reducer holds the group, and a group destroyed with the Reducer at interpreter exit
        # deadlocked torch 1.13 + gloo (the destructor joins a gloo thread that waits for the
        # GIL the exiting main thread holds; seen in a CI rehearsal, rank 1 hung after writing
        # its last epoch). Also when training stops with an error; then without the barrier,
        # which the other ranks may never reach.
        del net
        gc.collect()
        group.close(barrier=finished)
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        return run(args)
    except (config_mod.ConfigError, data_mod.DataError, ckpt.CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
