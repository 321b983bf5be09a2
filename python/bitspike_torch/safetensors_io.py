"""A small reader and writer of the safetensors format, for float32 tensors.

Why not the `safetensors` package: Debian (where CI gets torch 1.13 from apt) has no
`python3-safetensors`, and a pip install would be the only thing CI fetches from the Python
package registry. The format is short and documented
(https://github.com/huggingface/safetensors#format): an unsigned little-endian 64-bit header
size N, N bytes of JSON (`{name: {"dtype", "shape", "data_offsets": [begin, end]}, ...,
"__metadata__": {str: str}}`, padded with spaces to a multiple of 8), then the raw
little-endian tensor bytes. Files written here are read by bitspike's Rust `safetensors` crate
(the round-trip tests) and by `safetensors.numpy.load_file` (tested where installed).

bitspike checkpoints hold only F32 tensors, so only F32 is read; anything else is refused with
the tensor's name, as the Rust side does.
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
from pathlib import Path

import numpy as np

# The Rust crate refuses headers above 100 MB; a larger one here means a corrupt file.
MAX_HEADER = 100_000_000


class SafetensorsError(ValueError):
    """A file that is not a valid safetensors checkpoint of float32 tensors."""


def load(path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Reads `path`: ({name: float32 array}, metadata). Arrays are copies, safe to modify."""
    data = Path(path).read_bytes()
    return loads(data, str(path))


def loads(data: bytes, source: str = "<bytes>") -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Parses safetensors bytes; `source` names the file in errors."""
    def bad(message: str) -> SafetensorsError:
        return SafetensorsError(f"{source}: not a valid safetensors file: {message}")

    if len(data) < 8:
        raise bad("shorter than the 8-byte header size")
    (n,) = struct.unpack("<Q", data[:8])
    if n > MAX_HEADER or 8 + n > len(data):
        raise bad(f"header size {n} does not fit the {len(data)}-byte file")
    try:
        header = json.loads(data[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise bad(f"header is not JSON: {e}") from None
    if not isinstance(header, dict):
        raise bad("header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise bad("__metadata__ must map strings to strings")
    body = memoryview(data)[8 + n:]
    tensors = {}
    for name, info in header.items():
        try:
            dtype, shape, (begin, end) = info["dtype"], info["shape"], info["data_offsets"]
        except (KeyError, TypeError, ValueError):
            raise bad(f"tensor `{name}` has no dtype/shape/data_offsets") from None
        if dtype != "F32":
            raise SafetensorsError(f"{source}: tensor `{name}` has dtype {dtype}, expected F32")
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if not 0 <= begin <= end <= len(body) or end - begin != 4 * count:
            raise bad(f"tensor `{name}`: offsets [{begin}, {end}] do not hold {shape} float32 "
                      f"values in a {len(body)}-byte body")
        tensors[name] = np.frombuffer(body[begin:end], dtype="<f4").reshape(shape).copy()
    return tensors, metadata


def dumps(tensors: dict[str, np.ndarray], metadata: dict[str, str] | None = None) -> bytes:
    """Serialises float32 tensors (sorted by name, as the Rust crate writes them)."""
    header, offset, chunks = {}, 0, []
    for name in sorted(tensors):
        array = np.asarray(tensors[name], dtype="<f4")
        raw = array.tobytes(order="C")
        header[name] = {"dtype": "F32", "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(chunks)


def save(path, tensors: dict[str, np.ndarray], metadata: dict[str, str] | None = None) -> None:
    """Writes atomically (temporary file in the same directory, then rename), like bitspike,
    so a crash never leaves a half-written checkpoint where a good one was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = dumps(tensors, metadata)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
