"""The config schema is bitspike's: presets equal `bitspike config --preset NAME`, defaults are
filled like serde's, unknown or invalid fields are refused with their path."""

import json
import unittest

from bitspike_torch import config

import bitspike_cli


class Config(unittest.TestCase):
    def test_presets_equal_the_rust_presets(self):
        for name in config.PRESETS:
            with self.subTest(preset=name):
                rust = config.from_json(bitspike_cli.run("config", "--preset", name))
                self.assertEqual(config.preset(name), rust)

    def test_defaults_are_filled(self):
        cfg = config.normalize({
            "name": "tiny", "input": [1, 8, 8], "classes": 3, "timesteps": 2,
            "normalize_mean": [0.5], "normalize_std": [0.5],
            "layers": [{"kind": "conv", "out_channels": 4, "binary": False},
                       {"kind": "linear", "out_features": 3}]})
        self.assertEqual(cfg["neuron"]["reset"], "hard")
        self.assertEqual(cfg["agmm"], {"mode": "full", "alpha": None})
        self.assertEqual(cfg["layers"][0]["kernel"], 3)
        self.assertEqual(cfg["layers"][1]["bias"], True)

    def test_unknown_fields_are_refused_with_their_path(self):
        base = config.preset("mnist")
        cases = [
            ({**base, "dropout": 0.1}, "unknown field `dropout`"),
            ({**base, "agmm": {"mode": "full", "beta": 1}}, "agmm: unknown field `beta`"),
            ({**base, "layers": [{**base["layers"][0], "groups": 2}] + base["layers"][1:]},
             "layers[0] (conv): unknown field `groups`"),
        ]
        for cfg, message in cases:
            with self.subTest(message=message):
                with self.assertRaises(config.ConfigError) as e:
                    config.normalize(cfg)
                print(e.exception)
                self.assertIn(message, str(e.exception))

    def test_invalid_models_are_refused_naming_the_layer(self):
        base = config.preset("mnist")
        bad_mode = json.loads(json.dumps(base))
        bad_mode["agmm"]["mode"] = "sometimes"
        wrong_classes = {**base, "classes": 7}
        for cfg, message in [(bad_mode, "agmm.mode"), (wrong_classes, "readout has 10 outputs")]:
            with self.assertRaises(config.ConfigError) as e:
                config.normalize(cfg)
            self.assertIn(message, str(e.exception))

    def test_layer_names_follow_the_rust_plan(self):
        names = [p["name"] for p in config.plan(config.preset("mnist"))]
        self.assertEqual(names, ["conv1", "pool1", "conv2", "pool3", "conv3", "fc"])


if __name__ == "__main__":
    unittest.main()
