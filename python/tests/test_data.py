"""The package reads the data sets bitspike reads, sample for sample: the same checkpoint's
eval logits and loss agree between `bitspike eval --dataset D --data DIR` and
`eval_logits(ckpt, data=DIR)` for raw IDX files and CIFAR-10 binary batches."""

import re
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

import numpy as np
import torch

import bitspike_torch as bt
from bitspike_torch import config, data, train

import bitspike_cli

TINY_CIFAR = {"name": "tiny-cifar", "input": [3, 32, 32], "classes": 10, "timesteps": 2,
              "pooling": "max", "normalize_mean": [0.5, 0.5, 0.5], "normalize_std": [0.25] * 3,
              "layers": [{"kind": "conv", "out_channels": 8, "binary": False},
                         {"kind": "pool", "size": 4},
                         {"kind": "conv", "out_channels": 8, "binary": True},
                         {"kind": "linear", "out_features": 10}]}


def write_idx(path: Path, array: np.ndarray) -> None:
    """An uncompressed unsigned-byte IDX file."""
    header = bytes([0, 0, 8, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def bitspike_loss(output: str) -> float:
    return float(re.search(r"loss ([0-9.]+)", output).group(1))


class ReadsWhatBitspikeReads(unittest.TestCase):
    def setUp(self):
        bitspike_cli.require()
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = Path(self.tmp.name)

    def tearDown(self):
        self.tmp.cleanup()

    def check_same_eval(self, checkpoint: Path, dataset: str, directory: Path, n: int) -> None:
        dump = self.dir / "logits.npy"
        out = bitspike_cli.run("eval", "--checkpoint", checkpoint, "--dataset", dataset,
                               "--data", directory, "--dump-logits", dump)
        want = np.load(dump)
        got = bt.eval_logits(checkpoint, data=directory, device="cpu")
        self.assertEqual(got.shape, (n, 10))
        self.assertGreater(float(want.std(0).max()), 1e-3)  # input-dependent logits
        err = float(np.abs(got - want).max() / np.abs(want).max())
        print(f"{dataset}: {n} samples, logits rel {err:.2e}")
        self.assertLessEqual(err, 1e-4)
        # The loss needs the labels: both loaders must have read the same ones.
        test = data.load(dataset, directory)[1]
        model, _ = bt.load_model(checkpoint)
        with torch.no_grad():
            logits = model.eval()(torch.from_numpy(test.images))
            loss = float(bt.loss_fn(logits, torch.from_numpy(test.labels), "mean_over_time"))
        self.assertAlmostEqual(loss, bitspike_loss(out), places=3)

    def test_raw_idx_files(self):
        train_set, test_set = data.load_mnist10k()
        idx = self.dir / "idx"
        idx.mkdir()
        write_idx(idx / "train-images-idx3-ubyte", train_set.images[:64, 0])
        write_idx(idx / "train-labels-idx1-ubyte", train_set.labels[:64])
        write_idx(idx / "t10k-images-idx3-ubyte", test_set.images[:48, 0])
        write_idx(idx / "t10k-labels-idx1-ubyte", test_set.labels[:48])
        run = self.dir / "mnist"
        self.assertEqual(train.main(["--steps", "12", "--batch", "16", "--lr", "0.005",
                                     "--limit-train", "192", "--limit-test", "16",
                                     "--out", str(run), "--device", "cpu"]), 0)
        self.check_same_eval(run / "last.safetensors", "idx", idx, 48)

    def test_cifar10_binary_batches(self):
        cifar = self.dir / "cifar"
        subprocess.run([sys.executable, str(bitspike_cli.REPO / "scripts" / "make_cifar_sample.py"),
                        str(cifar), "128"], check=True, capture_output=True)
        cfg = self.dir / "tiny.json"
        cfg.write_text(config.to_json(config.normalize(TINY_CIFAR)))
        run = self.dir / "cifar-run"
        self.assertEqual(train.main(["--dataset", "cifar10", "--data", str(cifar), "--config",
                                     str(cfg), "--steps", "8", "--batch", "16", "--lr", "0.01",
                                     "--out", str(run), "--device", "cpu"]), 0)
        self.check_same_eval(run / "last.safetensors", "cifar10", cifar, 32)


if __name__ == "__main__":
    unittest.main()
