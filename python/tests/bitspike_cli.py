"""Finding and running the `bitspike` binary for the tests that compare both sides.

`BITSPIKE_BIN` names the binary; without it, `target/{release,debug}/bitspike` of this checkout
(or of `$CARGO_TARGET_DIR`) is used. Without a binary these tests are skipped, unless `CI` is
set: there a missing binary is a failure, so CI cannot pass without comparing."""

from __future__ import annotations

import os
import subprocess
import unittest
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def find() -> Path | None:
    if os.environ.get("BITSPIKE_BIN"):
        return Path(os.environ["BITSPIKE_BIN"])
    roots = [Path(os.environ["CARGO_TARGET_DIR"])] if os.environ.get("CARGO_TARGET_DIR") else []
    roots.append(REPO / "target")
    for root in roots:
        for profile in ("release", "debug"):
            if (root / profile / "bitspike").exists():
                return root / profile / "bitspike"
    return None


def require() -> Path:
    """The binary, or skip (fail under CI)."""
    binary = find()
    if binary is None or not binary.exists():
        message = "no bitspike binary (set BITSPIKE_BIN or build with cargo)"
        if os.environ.get("CI"):
            raise AssertionError(message)
        raise unittest.SkipTest(message)
    return binary


def run(*args) -> str:
    """Runs `bitspike ARGS`, returns stdout; a failure shows its stderr."""
    env = dict(os.environ)
    env.setdefault("WGPU_BACKEND", "vulkan")
    result = subprocess.run([str(require()), *map(str, args)], capture_output=True, text=True,
                            env=env)
    if result.returncode != 0:
        raise AssertionError(f"bitspike {' '.join(map(str, args))} failed:\n{result.stderr}")
    return result.stdout
