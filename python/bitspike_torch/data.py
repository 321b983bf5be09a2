"""The data sets bitspike reads, as uint8 images [N, C, H, W] and int64 labels [N]:

- IDX files (MNIST and look-alikes, raw or gzip), recognised by name in a directory like
  `bitspike train --dataset idx --data DIR` (`train`+`images`, `t10k`/`test`+`images`, ...);
- CIFAR-10 / CIFAR-100 binary batches (`data_batch_1..5.bin` + `test_batch.bin`;
  `train.bin` + `test.bin`, fine labels);
- the embedded MNIST-10k (8,000 train / 2,000 test), shipped inside this package so a
  pip-installed copy works from any directory.

Headers are validated like `src/data/` does, and errors name the file.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DATASETS = ("mnist10k", "idx", "cifar10", "cifar100")
_PACKAGE_MNIST = Path(__file__).resolve().parent / "mnist10k"
_CIFAR_IMAGE = 3 * 32 * 32


class DataError(ValueError):
    """A data file or directory bitspike would refuse too; the message names the file."""


@dataclass
class Dataset:
    """uint8 images [N, C, H, W], int64 labels [N] and the class count."""

    images: np.ndarray
    labels: np.ndarray
    classes: int

    def __len__(self) -> int:
        return len(self.labels)

    def truncated(self, n: int | None) -> "Dataset":
        """The first `n` samples (all with None), like `--limit-train` / `--limit-test`."""
        if n is None:
            return self
        return Dataset(self.images[:n], self.labels[:n], self.classes)


def _maybe_gunzip(name: str, raw: bytes) -> bytes:
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise DataError(f"{name}: corrupt gzip data: {e}") from None
    return raw


def read_idx(path) -> np.ndarray:
    """An unsigned-byte IDX file (raw or gzip): magic 0 0 0x08 ndim, big-endian dims, data."""
    path = Path(path)
    raw = _maybe_gunzip(str(path), path.read_bytes())
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataError(f"{path}: not an unsigned-byte IDX file (bad magic)")
    ndim = raw[3]
    if len(raw) < 4 + 4 * ndim:
        raise DataError(f"{path}: truncated IDX header")
    dims = [int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4)]
    count = int(np.prod(dims, dtype=np.int64))
    body = len(raw) - 4 - 4 * ndim
    if body != count:
        raise DataError(f"{path}: header promises {dims} = {count} bytes, the file has {body}")
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def _idx_pair(images_path: Path, labels_path: Path, classes: int) -> Dataset:
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or labels.ndim != 1:
        raise DataError(f"{images_path}, {labels_path}: expected [N, H, W] images and [N] labels")
    if len(images) != len(labels):
        raise DataError(f"{images_path} has {len(images)} images but {labels_path} has "
                        f"{len(labels)} labels")
    bad = np.nonzero(labels >= classes)[0]
    if len(bad):
        raise DataError(f"{labels_path}: label {labels[bad[0]]} at index {bad[0]} is not below "
                        f"{classes} classes")
    return Dataset(images[:, None].copy(), labels.astype(np.int64), classes)


def _find(files: list[Path], parts) -> Path | None:
    return next((f for f in files if all(p in f.name.lower() for p in parts)), None)


def load_idx_dir(directory) -> tuple[Dataset, Dataset]:
    """(train, test) from IDX files in `directory`, recognised by name as bitspike does."""
    directory = Path(directory)
    files = sorted(f for f in directory.iterdir() if f.is_file())

    def pair(splits, what):
        images = next((f for s in splits if (f := _find(files, (s, "images")))), None)
        labels = next((f for s in splits if (f := _find(files, (s, "labels")))), None)
        if images is None or labels is None:
            raise DataError(f"{directory}: no {what} images/labels IDX files among "
                            f"[{', '.join(f.name for f in files)}]")
        return images, labels

    train, test = pair(("train",), "train"), pair(("t10k", "test"), "test")
    classes = max(10, *(1 + int(read_idx(p[1]).max(initial=0)) for p in (train, test)))
    return _idx_pair(*train, classes), _idx_pair(*test, classes)


def _load_cifar(files: list[Path], label_bytes: int, classes: int) -> Dataset:
    record = label_bytes + _CIFAR_IMAGE
    images, labels = [], []
    for f in files:
        raw = f.read_bytes()
        if not raw or len(raw) % record:
            raise DataError(f"{f}: {len(raw)} bytes is not a whole number of {record}-byte "
                            "records")
        rows = np.frombuffer(raw, dtype=np.uint8).reshape(-1, record)
        labels.append(rows[:, label_bytes - 1].astype(np.int64))
        images.append(rows[:, label_bytes:].reshape(-1, 3, 32, 32))
    labels = np.concatenate(labels)
    bad = np.nonzero(labels >= classes)[0]
    if len(bad):
        raise DataError(f"label {labels[bad[0]]} at record {bad[0]} is not below {classes} "
                        "classes")
    return Dataset(np.concatenate(images), labels, classes)


def load_cifar_dir(directory, kind: str) -> tuple[Dataset, Dataset]:
    """(train, test) from CIFAR-10 (`kind="cifar10"`) or CIFAR-100 binary files."""
    directory = Path(directory)
    files = sorted(f for f in directory.iterdir() if f.is_file())
    if kind == "cifar10":
        parts, test_part, label_bytes, classes = (
            [f"data_batch_{i}" for i in range(1, 6)], "test_batch", 1, 10)
    else:
        parts, test_part, label_bytes, classes = (["train.bin"], "test.bin", 2, 100)
    train = [f for p in parts if (f := _find(files, (p,)))]
    test = _find(files, (test_part,))
    if not train or test is None:
        raise DataError(f"{directory}: {kind} needs {', '.join(parts)} and {test_part} "
                        f"(found [{', '.join(f.name for f in files)}])")
    return _load_cifar(train, label_bytes, classes), _load_cifar([test], label_bytes, classes)


def mnist10k_dir() -> Path:
    """Where the embedded MNIST-10k files are: inside the package (installed or a checkout)."""
    if not (_PACKAGE_MNIST / "mnist10k-test-images-idx3-ubyte.gz").exists():
        raise DataError(f"the embedded MNIST-10k files are missing from {_PACKAGE_MNIST}")
    return _PACKAGE_MNIST


def load_mnist10k() -> tuple[Dataset, Dataset]:
    """The embedded MNIST-10k: (8,000 train, 2,000 test), as `bitspike train` uses it."""
    d = mnist10k_dir()
    split = [_idx_pair(d / f"mnist10k-{s}-images-idx3-ubyte.gz",
                       d / f"mnist10k-{s}-labels-idx1-ubyte.gz", 10) for s in ("train", "test")]
    return split[0], split[1]


def load(dataset: str = "mnist10k", data=None) -> tuple[Dataset, Dataset]:
    """(train, test) as `bitspike train --dataset DATASET --data DIR` reads them."""
    if dataset == "mnist10k":
        return load_mnist10k()
    if dataset not in DATASETS:
        raise DataError(f"unknown data set `{dataset}` (expected one of {', '.join(DATASETS)})")
    if data is None:
        raise DataError(f"--data DIR is required for --dataset {dataset}")
    if not Path(data).is_dir():
        raise DataError(f"{data}: not a directory")
    if dataset == "idx":
        return load_idx_dir(data)
    return load_cifar_dir(data, dataset)


def guess_dataset(directory) -> str:
    """The kind of data in `directory` from its file names (for `eval_logits(data=DIR)`)."""
    names = [f.name.lower() for f in Path(directory).iterdir()]
    if any("data_batch" in n for n in names):
        return "cifar10"
    if "train.bin" in names:
        return "cifar100"
    if any("images" in n for n in names):
        return "idx"
    raise DataError(f"{directory}: no IDX or CIFAR files recognised")
