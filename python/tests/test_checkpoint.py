"""Checkpoints on the Python side: the safetensors reader/writer, bitspike's names and
metadata, optimizer state, and clear errors for another model's or a corrupt checkpoint."""

import json
import struct
import tempfile
import unittest
from pathlib import Path

import numpy as np
import torch

from bitspike_torch import checkpoint as ckpt
from bitspike_torch import config, safetensors_io
from bitspike_torch.model import BSNN


def small_resnet() -> dict:
    """A resnet-style model with an identity and a downsampling shortcut."""
    return config.normalize({
        "name": "tiny-resnet", "input": [1, 8, 8], "classes": 3, "timesteps": 2,
        "pooling": "avg", "normalize_mean": [0.5], "normalize_std": [0.5],
        "layers": [{"kind": "conv", "out_channels": 4, "binary": False},
                   {"kind": "conv", "out_channels": 4, "binary": True, "shortcut": "identity"},
                   {"kind": "conv", "out_channels": 8, "binary": True, "stride": 2,
                    "shortcut": "downsample"},
                   {"kind": "global_avg_pool"},
                   {"kind": "linear", "out_features": 3}]})


class Safetensors(unittest.TestCase):
    def test_round_trip_keeps_values_shapes_and_metadata(self):
        tensors = {"b": np.arange(6, dtype=np.float32).reshape(2, 3),
                   "a": np.array(-0.0, dtype=np.float32).reshape(()),
                   "c": np.zeros((0, 4), dtype=np.float32)}
        raw = safetensors_io.dumps(tensors, {"k": "v"})
        (n,) = struct.unpack("<Q", raw[:8])
        self.assertEqual(n % 8, 0)
        back, meta = safetensors_io.loads(raw)
        self.assertEqual(meta, {"k": "v"})
        for name, value in tensors.items():
            np.testing.assert_array_equal(back[name], value)
            self.assertEqual(back[name].shape, value.shape)

    def test_matches_the_reference_library_where_installed(self):
        try:
            from safetensors.numpy import load, save
        except ImportError:
            self.skipTest("safetensors not installed (optional cross-check)")
        tensors = {"w": np.random.default_rng(0).normal(size=(3, 5)).astype(np.float32)}
        ours, _ = safetensors_io.loads(save(tensors, {"m": "1"}))
        np.testing.assert_array_equal(ours["w"], tensors["w"])
        np.testing.assert_array_equal(load(safetensors_io.dumps(tensors))["w"], tensors["w"])

    def test_corrupt_files_are_refused_with_a_reason(self):
        good = safetensors_io.dumps({"w": np.ones(4, dtype=np.float32)})
        cases = [(good[:5], "shorter than"), (struct.pack("<Q", 1 << 40) + good[8:], "header size"),
                 (good[:-4], "offsets"),
                 (safetensors_io.dumps({"w": np.ones(2, np.float32)}).replace(b"F32", b"F16"),
                  "dtype F16")]
        for raw, message in cases:
            with self.subTest(message=message):
                with self.assertRaises(safetensors_io.SafetensorsError) as e:
                    safetensors_io.loads(raw, "x.safetensors")
                self.assertIn(message, str(e.exception))
                self.assertIn("x.safetensors", str(e.exception))


class Checkpoints(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = Path(self.tmp.name)

    def tearDown(self):
        self.tmp.cleanup()

    def test_names_are_bitspikes(self):
        names = set(ckpt.model_tensors(BSNN(small_resnet())))
        self.assertIn("conv3.shortcut.weight", names)
        self.assertIn("conv3.shortcut.bn.running_var", names)
        self.assertIn("conv2.bn.weight", names)
        self.assertIn("fc.bias", names)
        self.assertFalse(any("num_batches_tracked" in n for n in names))

    def test_save_and_load_round_trip_with_adam_state(self):
        torch.manual_seed(0)
        model = BSNN(small_resnet())
        opt = ckpt.make_optimizer(model, "adam", 1e-3, 0.9, 0.0)
        images = torch.randint(0, 256, (4, 1, 8, 8), dtype=torch.uint8)
        model(images).sum().backward()
        opt.step()
        path = ckpt.save(self.dir / "a.safetensors", model, opt, step=1, epoch=0, seed=5,
                         train_config={"batch": 4, "optimizer": "adam"})
        ck = ckpt.read(path)
        self.assertEqual((ck.step, ck.epoch, ck.seed), (1, 0, 5))
        self.assertEqual(ck.model, small_resnet())
        restored = BSNN(ck.model)
        opt2 = ckpt.make_optimizer(restored, "adam", 1e-3, 0.9, 0.0)
        ckpt.load_weights(restored, ck)
        self.assertTrue(ckpt.load_optimizer(restored, opt2, ck))
        for (name, a), b in zip(model.state_dict().items(), restored.state_dict().values()):
            if "num_batches" not in name:
                torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)
        for p, q in zip(model.parameters(), restored.parameters()):
            torch.testing.assert_close(opt.state[p]["exp_avg_sq"], opt2.state[q]["exp_avg_sq"])
            self.assertEqual(float(opt2.state[q]["step"]), 1.0)
        meta = safetensors_io.load(path)[1]
        self.assertEqual(meta["format"], "bitspike-1")
        self.assertEqual(json.loads(meta["firing_rates"]), [])

    def test_another_models_checkpoint_names_the_first_mismatching_tensor(self):
        path = ckpt.save(self.dir / "mnist.safetensors", BSNN(config.preset("mnist")), step=0,
                         epoch=0)
        wider = config.preset("mnist")
        wider["layers"][2]["out_channels"] = 32
        with self.assertRaises(ckpt.CheckpointError) as e:
            ckpt.load_weights(BSNN(wider), ckpt.read(path))
        print(e.exception)
        self.assertIn("first mismatch at tensor `conv2.weight`", str(e.exception))
        self.assertIn("shape [64, 32, 3, 3] in the checkpoint, [32, 32, 3, 3] in the model",
                      str(e.exception))
        with self.assertRaises(ckpt.CheckpointError) as e:
            ckpt.load_weights(BSNN(small_resnet()), ckpt.read(path))
        self.assertIn("first mismatch at tensor", str(e.exception))

    def test_malformed_metadata_names_its_key(self):
        path = self.dir / "bad.safetensors"
        safetensors_io.save(path, {"w": np.zeros(1, np.float32)}, {"step": "seven"})
        with self.assertRaises(ckpt.CheckpointError) as e:
            ckpt.read(path)
        self.assertIn("metadata key `step`", str(e.exception))
        safetensors_io.save(path, {"w": np.zeros(1, np.float32)},
                            {"model_config": json.dumps({**config.preset("mnist"), "x": 1})})
        with self.assertRaises(ckpt.CheckpointError) as e:
            ckpt.read(path)
        self.assertIn("unknown field `x`", str(e.exception))


if __name__ == "__main__":
    unittest.main()
