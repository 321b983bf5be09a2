#!/usr/bin/env python3
"""Writes a small CIFAR-10-format data set (random pixels, labels 0-9) for smoke-testing the
CIFAR path: OUT/data_batch_1.bin (N records) and OUT/test_batch.bin (N/4 records), each record
1 label byte + 3072 channel-planar pixel bytes, exactly like the real files."""
import os
import random
import sys

out = sys.argv[1] if len(sys.argv) > 1 else "cifar-sample"
n = int(sys.argv[2]) if len(sys.argv) > 2 else 64
rng = random.Random(0)
os.makedirs(out, exist_ok=True)
for name, count in [("data_batch_1.bin", n), ("test_batch.bin", max(1, n // 4))]:
    with open(os.path.join(out, name), "wb") as f:
        for i in range(count):
            f.write(bytes([i % 10]) + bytes(rng.randrange(256) for _ in range(3072)))
print(f"wrote {n} + {max(1, n // 4)} CIFAR-10 records to {out}/")
