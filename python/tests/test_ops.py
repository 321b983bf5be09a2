"""The package's autograd against the backward formulas in the shader headers
(lif_backward.wgsl, agmm_backward.wgsl, binarize_backward.wgsl), its parameter count against
the preset numbers in docs/method.md, and the eval-mode encoder shortcut.

    python -m unittest discover -s python/tests -v
"""

import tempfile
import unittest
from pathlib import Path

import torch

from bitspike_torch import config, model as p

T, N = 4, 257

# The `mnist` preset as `bitspike config --preset mnist` prints it (src/model/config.rs).
MNIST_CONFIG = """{"name": "mnist", "input": [1, 28, 28], "classes": 10, "timesteps": 4,
 "neuron": {"decay": 0.5, "v_th": 1.0, "reset": "hard", "detach_reset": false,
            "surrogate_width": 1.0},
 "agmm": {"mode": "full", "alpha": null}, "encoding": "direct", "loss": "mean_over_time",
 "pooling": "max", "normalize_mean": [0.1307], "normalize_std": [0.3081],
 "layers": [
  {"kind": "conv", "out_channels": 32, "kernel": 3, "stride": 1, "padding": 1, "binary": false,
   "shortcut": "none"},
  {"kind": "pool", "size": 2},
  {"kind": "conv", "out_channels": 64, "kernel": 3, "stride": 1, "padding": 1, "binary": true,
   "shortcut": "none"},
  {"kind": "pool", "size": 2},
  {"kind": "conv", "out_channels": 64, "kernel": 3, "stride": 1, "padding": 1, "binary": true,
   "shortcut": "none"},
  {"kind": "linear", "out_features": 10, "binary": false, "bias": true}]}"""


def lif_backward_reference(h, grad_s, neuron):
    """dL/dI[t] written out as in lif_backward.wgsl."""
    lam, vth, g = neuron["decay"], neuron["v_th"], neuron["surrogate_width"]
    soft, detach = neuron["reset"] == "soft", neuron["detach_reset"]
    gh = torch.zeros_like(h[0])
    out = torch.zeros_like(h)
    for t in reversed(range(h.shape[0])):
        s = (h[t] >= vth).double()
        sg = (g - (h[t] - vth).abs()).clamp_min(0) / g**2
        gs = grad_s[t] - (0 if detach else lam * (vth if soft else h[t]) * gh)
        gh = gs * sg + lam * (1 if soft else (1 - s)) * gh
        out[t] = gh
    return out


def agmm_backward_reference(x, grad_y, alpha, detached):
    """dL/dX[t] written out as in agmm_backward.wgsl."""
    steps = x.shape[0]
    a = [alpha if alpha else 1.0 / (t + 1) for t in range(steps)] + [0.0]
    e, prev = [], torch.zeros_like(x[0])
    for t in range(steps):
        prev = (1 - a[t]) * prev + a[t] * x[t]
        e.append(prev)
    out, ge = torch.zeros_like(x), torch.zeros_like(x[0])
    for t in reversed(range(steps)):
        q = torch.sigmoid(e[t])
        if detached:
            out[t] = q * grad_y[t]
            continue
        ge = grad_y[t] * x[t] * q * (1 - q) + (1 - a[t + 1]) * ge
        out[t] = q * grad_y[t] + a[t] * ge
    return out


class OpsMatchShaders(unittest.TestCase):
    def setUp(self):
        torch.manual_seed(0)

    def test_lif_backward(self):
        for reset in ("hard", "soft"):
            for detach in (False, True):
                neuron = {"decay": 0.5, "v_th": 1.0, "reset": reset, "detach_reset": detach,
                          "surrogate_width": 1.0}
                current = (torch.randn(T * N, dtype=torch.float64) * 1.2).requires_grad_()
                spikes = p.LIF(neuron, T)(current)
                grad_s = torch.randn_like(spikes)
                spikes.backward(grad_s)
                # Recompute h[t] (the saved membrane) directly from the forward equations.
                i = current.detach().view(T, N)
                h, s, hs = torch.zeros(N, dtype=i.dtype), torch.zeros(N, dtype=i.dtype), []
                for t in range(T):
                    h = (0.5 * (h - s) if reset == "soft" else 0.5 * h * (1 - s)) + i[t]
                    s = (h >= 1.0).double()
                    hs.append(h)
                want = lif_backward_reference(torch.stack(hs), grad_s.view(T, N), neuron)
                with self.subTest(reset=reset, detach=detach):
                    torch.testing.assert_close(current.grad.view(T, N), want)

    def test_agmm_backward(self):
        for mode in ("full", "detached"):
            for alpha in (None, 0.3):
                x = torch.randn(T * N, dtype=torch.float64, requires_grad=True)
                y = p.AGMM({"mode": mode, "alpha": alpha}, T)(x)
                g = torch.randn_like(y)
                y.backward(g)
                want = agmm_backward_reference(x.detach().view(T, N), g.view(T, N), alpha,
                                               mode == "detached")
                with self.subTest(mode=mode, alpha=alpha):
                    torch.testing.assert_close(x.grad.view(T, N), want)

    def test_binarize(self):
        w = torch.randn(8, 3, 3, 3, dtype=torch.float64) * 0.8
        w[0, 0, 0, 0], w[0, 0, 0, 1] = 0.0, -0.0
        w.requires_grad_()
        wb = p.BinarizeFn.apply(w)
        gamma = w.detach().abs().flatten(1).mean(1).view(-1, 1, 1, 1)
        self.assertEqual(wb[0, 0, 0, 0].item(), gamma[0].item())  # sign(+0) = +1
        self.assertEqual(wb[0, 0, 0, 1].item(), gamma[0].item())  # sign(-0) = +1
        torch.testing.assert_close(wb.abs(), gamma.expand_as(w))
        g = torch.randn_like(wb)
        wb.backward(g)
        torch.testing.assert_close(w.grad, gamma * g * (w.detach().abs() <= 1).double())

    def test_mnist_parameter_count(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "mnist.json"
            path.write_text(MNIST_CONFIG)
            cfg = config.load(path)
        self.assertEqual(p.expected_params(cfg), (55_296, 31_978))  # docs/method.md 10.1
        self.assertEqual(sum(q.numel() for q in p.BSNN(cfg).parameters()), 87_274)

    def test_eval_encoder_once_matches_every_step(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "mnist.json"
            path.write_text(MNIST_CONFIG)
            model = p.BSNN(config.load(path)).double().eval()
        images = torch.randint(0, 256, (5, 1, 28, 28), dtype=torch.uint8)
        with torch.no_grad():
            once = model(images)
            x = ((images.double() / 255 - model.mean) / model.std).repeat(T, 1, 1, 1)
            for layer in model.layers:
                x = layer(x)
        torch.testing.assert_close(once, x.unflatten(0, (T, -1)))


if __name__ == "__main__":
    unittest.main()
