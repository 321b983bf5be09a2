"""Eval-mode forwards: `eval_logits` (what `bitspike eval --dump-logits` writes) and the
loss/accuracy summary of a data set (the test columns of `metrics.jsonl`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from . import checkpoint as ckpt
from . import data as data_mod
from .model import BSNN, loss_fn, predict

EVAL_BATCH = 64  # `bitspike eval`'s default; BN uses running statistics, so only speed depends on it


def _default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve_test_set(model_cfg: dict, data) -> data_mod.Dataset:
    """The test split `data` names: a Dataset, an (images, labels) pair, a directory of IDX /
    CIFAR files, or None for the model's default (MNIST-10k for 1x28x28 models)."""
    if isinstance(data, data_mod.Dataset):
        return data
    if isinstance(data, tuple):
        images, labels = (np.asarray(a) for a in data)
        return data_mod.Dataset(images, labels.astype(np.int64), model_cfg["classes"])
    if data is None:
        if list(model_cfg["input"]) != [1, 28, 28]:
            raise data_mod.DataError(
                f"model `{model_cfg['name']}` takes {model_cfg['input']} inputs, not the "
                "embedded MNIST-10k: pass data=DIR (IDX or CIFAR files)")
        return data_mod.load_mnist10k()[1]
    return data_mod.load(data_mod.guess_dataset(data), Path(data))[1]


def check_shapes(model_cfg: dict, dataset: data_mod.Dataset) -> None:
    """The data set fits the model (as `Trainer::check_data`)."""
    got = list(dataset.images.shape[1:])
    if got != list(model_cfg["input"]):
        raise data_mod.DataError(f"data set images are {'x'.join(map(str, got))}, the model "
                                 f"expects {'x'.join(map(str, model_cfg['input']))}")
    if dataset.classes > model_cfg["classes"]:
        raise data_mod.DataError(f"data set has {dataset.classes} classes, the model "
                                 f"{model_cfg['classes']}")


@torch.no_grad()
def run(model: BSNN, dataset: data_mod.Dataset, device, batch: int = EVAL_BATCH,
        indices=None, logits_out: list | None = None) -> tuple[float, int, int]:
    """Eval-mode forward over `dataset` (or its `indices`), in order. Returns (loss sum,
    correct, samples); with `logits_out`, appends each batch's mean-over-t logits."""
    model.eval()
    order = np.arange(len(dataset)) if indices is None else np.asarray(indices)
    loss_sum, correct = 0.0, 0
    for start in range(0, len(order), batch):
        idx = order[start:start + batch]
        images = torch.from_numpy(dataset.images[idx]).to(device)
        labels = torch.from_numpy(dataset.labels[idx]).to(device)
        logits = model(images)
        loss_sum += float(loss_fn(logits, labels, model.cfg["loss"])) * len(idx)
        correct += int((predict(logits) == labels).sum())
        if logits_out is not None:
            logits_out.append(logits.mean(0).float().cpu().numpy())
    return loss_sum, correct, len(order)


def eval_logits(checkpoint, data=None, limit: int | None = None, device=None) -> np.ndarray:
    """Mean-over-t logits float32 [N, classes] of a checkpoint's model, in data order, like
    `bitspike eval --checkpoint CKPT --dump-logits`.

    `checkpoint`: a path. `data`: see `resolve_test_set` (default: the model's data set, the
    MNIST-10k test split for MNIST-shaped models). `limit`: only the first N samples.
    `device`: default CUDA when available, else CPU."""
    device = torch.device(device) if device is not None else _default_device()
    model, ck = ckpt.load_model(checkpoint, device)
    test = resolve_test_set(ck.model, data).truncated(limit)
    check_shapes(ck.model, test)
    out = []
    run(model, test, device, logits_out=out)
    if not out:
        return np.zeros((0, ck.model["classes"]), dtype=np.float32)
    return np.concatenate(out).astype(np.float32)
