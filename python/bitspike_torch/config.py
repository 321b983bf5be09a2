"""bitspike model configs in Python: the same JSON schema the Rust side reads
(`src/model/config.rs`), with the same defaults and the same refusals.

A config is a plain dict (what `json.load` gives), normalised so every optional field is
present. Unknown fields are refused with their path, as Rust's serde `deny_unknown_fields`
does, so a file that one side accepts the other accepts too and a typo never passes silently.
The presets are the Rust constructors written out (`bitspike config --preset NAME` prints the
same JSON; `tests/test_config.py` checks it where the binary is available).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

PRESETS = ("mnist", "resnet19", "vgg11")

_NEURON_DEFAULTS = {"decay": 0.5, "v_th": 1.0, "reset": "hard", "detach_reset": False,
                    "surrogate_width": 1.0}
_AGMM_DEFAULTS = {"mode": "full", "alpha": None}
_MODEL_REQUIRED = ("name", "input", "classes", "timesteps", "normalize_mean", "normalize_std",
                   "layers")
_MODEL_OPTIONAL = {"neuron": None, "agmm": None, "encoding": "direct", "loss": "mean_over_time",
                   "pooling": "max"}
_CHOICES = {"encoding": ("direct", "poisson"), "loss": ("mean_over_time", "mean_logits"),
            "pooling": ("max", "avg")}
# Per layer kind: required fields, and optional fields with their defaults.
_LAYERS = {
    "conv": (("out_channels", "binary"),
             {"kernel": 3, "stride": 1, "padding": 1, "shortcut": "none"}),
    "pool": (("size",), {}),
    "global_avg_pool": ((), {}),
    "linear": (("out_features",), {"binary": False, "bias": True}),
}
_SHORTCUTS = ("none", "identity", "downsample")


class ConfigError(ValueError):
    """A model config the Rust side would refuse too; the message names the field."""


def _check_fields(where: str, obj: Any, required, optional) -> None:
    if not isinstance(obj, dict):
        raise ConfigError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    known = set(required) | set(optional)
    for key in obj:
        if key not in known:
            raise ConfigError(f"{where}: unknown field `{key}` (expected one of "
                              f"{', '.join(sorted(known))})")
    for key in required:
        if key not in obj:
            raise ConfigError(f"{where}: missing field `{key}`")


def _choice(where: str, value: Any, choices) -> None:
    if value not in choices:
        raise ConfigError(f"{where}: `{value}` is not one of {', '.join(choices)}")


def _natural(where: str, value: Any) -> None:
    # serde's usize refuses negatives, floats and booleans.
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{where}: expected a non-negative whole number, got {value!r}")


def normalize(raw: dict) -> dict:
    """Checks a parsed model config and returns a copy with every default filled in.

    Raises ConfigError for unknown fields, missing fields and values outside the schema."""
    cfg = copy.deepcopy(raw)
    _check_fields("model config", cfg, _MODEL_REQUIRED, _MODEL_OPTIONAL)
    for key, default in _MODEL_OPTIONAL.items():
        if cfg.get(key) is None:
            cfg[key] = copy.deepcopy(default)
    neuron = dict(_NEURON_DEFAULTS)
    _check_fields("neuron", cfg["neuron"] or {}, (), _NEURON_DEFAULTS)
    neuron.update(cfg["neuron"] or {})
    _choice("neuron.reset", neuron["reset"], ("hard", "soft"))
    agmm = dict(_AGMM_DEFAULTS)
    _check_fields("agmm", cfg["agmm"] or {}, (), _AGMM_DEFAULTS)
    agmm.update(cfg["agmm"] or {})
    _choice("agmm.mode", agmm["mode"], ("full", "detached", "off"))
    if agmm["alpha"] is not None and not isinstance(agmm["alpha"], (int, float)):
        raise ConfigError(f"agmm.alpha: expected a number or null, got {agmm['alpha']!r}")
    cfg["neuron"], cfg["agmm"] = neuron, agmm
    for key, choices in _CHOICES.items():
        _choice(key, cfg[key], choices)
    if not isinstance(cfg["input"], list) or len(cfg["input"]) != 3:
        raise ConfigError(f"input: expected [channels, height, width], got {cfg['input']!r}")
    for i, v in enumerate(cfg["input"]):
        _natural(f"input[{i}]", v)
    _natural("classes", cfg["classes"])
    _natural("timesteps", cfg["timesteps"])
    if not isinstance(cfg["layers"], list):
        raise ConfigError("layers: expected a list")
    for i, layer in enumerate(cfg["layers"]):
        where = f"layers[{i}]"
        if not isinstance(layer, dict) or "kind" not in layer:
            raise ConfigError(f"{where}: expected an object with a `kind`")
        kind = layer["kind"]
        if kind not in _LAYERS:
            raise ConfigError(f"{where}: unknown kind `{kind}` (expected one of "
                              f"{', '.join(_LAYERS)})")
        required, optional = _LAYERS[kind]
        _check_fields(f"{where} ({kind})", layer, ("kind",) + required, optional)
        for key, default in optional.items():
            layer.setdefault(key, default)
        for key in ("out_channels", "kernel", "stride", "padding", "size", "out_features"):
            if key in layer:
                _natural(f"{where}.{key}", layer[key])
        if kind == "conv":
            _choice(f"{where}.shortcut", layer["shortcut"], _SHORTCUTS)
    plan(cfg)
    return cfg


def plan(cfg: dict) -> list[dict]:
    """Resolves shapes and names like `src/model/plan.rs`: one entry per layer with `name`
    (`conv{k}` counting convs, `pool{i}` / `gap{i}` by layer index, `fc`), `input` and
    `output` `[C, H, W]`. Refuses configs the Rust side refuses, naming the layer."""
    c0, h0, w0 = cfg["input"]
    if 0 in (c0, h0, w0):
        raise ConfigError(f"model: input shape {cfg['input']} has a zero dimension")
    if cfg["timesteps"] == 0:
        raise ConfigError("model: timesteps must be at least 1")
    if len(cfg["normalize_mean"]) != c0 or len(cfg["normalize_std"]) != c0:
        raise ConfigError(f"model: normalize_mean/normalize_std need {c0} entries (one per "
                          "input channel)")
    if any(not s > 0 for s in cfg["normalize_std"]):
        raise ConfigError("model: normalize_std entries must be positive")
    shape, out, convs, linears = list(cfg["input"]), [], 0, 0
    for index, layer in enumerate(cfg["layers"]):
        kind = layer["kind"]

        def err(message: str) -> ConfigError:
            return ConfigError(f"layer {index} ({kind}): {message}")

        c, h, w = shape
        if linears:
            raise err("only the final layer may follow a linear readout")
        if kind == "conv":
            co, k, s, p = layer["out_channels"], layer["kernel"], layer["stride"], layer["padding"]
            if 0 in (co, k, s):
                raise err("out_channels, kernel and stride must be positive")
            if h + 2 * p < k or w + 2 * p < k:
                raise err(f"kernel {k} larger than the padded {h}x{w} input")
            new = [co, (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1]
            if layer["shortcut"] == "identity" and new != shape:
                raise err(f"identity shortcut needs equal shapes, {shape} -> {new}")
            if layer["shortcut"] == "downsample" and (s != 2 or new[1] != h // 2
                                                      or new[2] != w // 2):
                raise err("downsample shortcut (AvgPool 2 + 1x1 conv) needs stride 2 halving "
                          "H and W")
            convs += 1
            name = f"conv{convs}"
        elif kind == "pool":
            size = layer["size"]
            if size == 0 or h < size or w < size:
                raise err(f"pool size {size} does not fit {h}x{w}")
            new, name = [c, h // size, w // size], f"pool{index}"
        elif kind == "global_avg_pool":
            new, name = [c, 1, 1], f"gap{index}"
        else:
            if layer["out_features"] == 0:
                raise err("out_features must be positive")
            linears += 1
            new, name = [layer["out_features"], 1, 1], "fc"
        out.append({"index": index, "name": name, "layer": layer, "input": shape,
                    "output": new})
        shape = new
    if not out or out[-1]["layer"]["kind"] != "linear":
        raise ConfigError("model: the last layer must be a linear readout")
    if out[-1]["output"][0] != cfg["classes"]:
        raise ConfigError(f"model: readout has {out[-1]['output'][0]} outputs but the model "
                          f"has {cfg['classes']} classes")
    return out


def from_json(text: str) -> dict:
    """Parses and normalises a model config from JSON text."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"model config is not valid JSON: {e}") from None
    return normalize(raw)


def load(path) -> dict:
    """Reads and normalises a model config file; errors name the file."""
    try:
        return from_json(Path(path).read_text())
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


def to_json(cfg: dict) -> str:
    """Pretty JSON that both sides read (the `model_config` checkpoint metadata)."""
    return json.dumps(cfg, indent=2)


def _conv(out_channels: int, binary: bool, stride: int = 1, shortcut: str = "none") -> dict:
    return {"kind": "conv", "out_channels": out_channels, "kernel": 3, "stride": stride,
            "padding": 1, "binary": binary, "shortcut": shortcut}


def _readout(classes: int) -> dict:
    return {"kind": "linear", "out_features": classes, "binary": False, "bias": True}


def _model(name, input_, classes, timesteps, pooling, mean, std, layers) -> dict:
    return normalize({"name": name, "input": input_, "classes": classes,
                      "timesteps": timesteps, "pooling": pooling, "normalize_mean": mean,
                      "normalize_std": std, "layers": layers})


def preset(name: str, classes: int | None = None) -> dict:
    """A preset by name, as `ModelConfig::preset_for_classes` builds it (mnist keeps 10)."""
    if name == "mnist":
        pool = {"kind": "pool", "size": 2}
        return _model("mnist", [1, 28, 28], 10, 4, "max", [0.1307], [0.3081],
                      [_conv(32, False), pool, _conv(64, True), dict(pool), _conv(64, True),
                       _readout(10)])
    if name == "resnet19":
        classes = classes or 10
        layers = [_conv(128, False)]
        for stage, (blocks, channels) in enumerate(zip((3, 3, 2), (128, 256, 512))):
            for block in range(blocks):
                for conv in range(2):
                    down = stage > 0 and block == 0 and conv == 0
                    layers.append(_conv(channels, True, 2 if down else 1,
                                        "downsample" if down else "identity"))
        layers += [{"kind": "global_avg_pool"}, _readout(classes)]
        return _model("resnet19", [3, 32, 32], classes, 2, "avg", [0.4914, 0.4822, 0.4465],
                      [0.2470, 0.2435, 0.2616], layers)
    if name == "vgg11":
        classes = classes or 10
        pool = {"kind": "pool", "size": 2}
        widths = [64, 128, "p", 256, 256, "p", 512, 512, "p", 512, 512]
        layers = [dict(pool) if w == "p" else _conv(w, i > 0) for i, w in enumerate(widths)]
        layers += [{"kind": "global_avg_pool"}, _readout(classes)]
        return _model("vgg11", [2, 48, 48], classes, 10, "avg", [0.0, 0.0], [1.0, 1.0], layers)
    raise ConfigError(f"unknown preset `{name}` (available: {', '.join(PRESETS)})")
