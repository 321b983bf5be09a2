#!/usr/bin/env python3
"""Copies a bitspike .safetensors checkpoint without its optimizer state ("optim.*" tensors),
keeping the metadata (model config, step). Used to make assets/demo/mnist-demo.safetensors.

Usage: python3 scripts/strip_optimizer.py IN.safetensors OUT.safetensors
Only the standard library: the safetensors layout is an 8-byte little-endian header length, a
JSON header (dtype, shape, data_offsets per tensor; __metadata__), then the raw data.
"""
import json
import struct
import sys


def main(src: str, dst: str) -> None:
    with open(src, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + n])
    data = blob[8 + n :]
    out_header, chunks, offset = {}, [], 0
    for name, info in header.items():
        if name == "__metadata__":
            out_header[name] = info
            continue
        if name.startswith("optim."):
            continue
        start, end = info["data_offsets"]
        chunks.append(data[start:end])
        out_header[name] = {**info, "data_offsets": [offset, offset + end - start]}
        offset += end - start
    text = json.dumps(out_header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # keep the data 8-byte aligned
    with open(dst, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(chunks))
    kept = len(out_header) - ("__metadata__" in out_header)
    print(f"{dst}: {kept} tensors, {8 + len(text) + offset} bytes")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
