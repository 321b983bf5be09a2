"""bitspike_torch: a PyTorch twin of every bitspike model.

Builds the network of a bitspike model config (presets or JSON), computes what the WGSL
kernels compute (autograd for the backward), reads and writes bitspike checkpoints, and trains
with DistributedDataParallel (`torchrun -m bitspike_torch.train`). A model moves between
bitspike and PyTorch with the same numbers on both sides.

    import bitspike_torch as bt
    logits = bt.eval_logits("runs/latest/last.safetensors")      # [N, classes], float32
    model, ck = bt.load_model("runs/latest/last.safetensors")    # a torch.nn.Module
    bt.save(path, model, optimizer, step=..., epoch=...)          # bitspike resumes from it
"""

from .checkpoint import (Checkpoint, CheckpointError, load_model, make_optimizer, read, save,
                         write)
from .config import ConfigError, preset
from .config import load as load_config
from .data import DataError, Dataset
from .evaluate import eval_logits
from .model import BSNN, loss_fn, predict

__all__ = ["BSNN", "Checkpoint", "CheckpointError", "ConfigError", "DataError", "Dataset",
           "eval_logits", "load_config", "load_model", "loss_fn", "make_optimizer", "predict",
           "preset", "read", "save", "write"]
