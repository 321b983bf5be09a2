#!/usr/bin/env bash
# Builds the library for wasm32-unknown-unknown (WebGPU backend). Two routes:
#  - a rustup toolchain with the wasm32 target installed: plain `cargo build --target ...`;
#  - Debian's rustc-web + rust-web-src (this project's CI machines): build std from source.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=wasm32-unknown-unknown
if rustup target list --installed 2>/dev/null | grep -qx "$TARGET"; then
  echo "wasm check: rustup route"
  cargo build --lib --target "$TARGET"
elif [ -x /usr/bin/rustc ] && [ -d /usr/lib/rustlib/src/rust/library ]; then
  echo "wasm check: Debian rustc-web route (build-std)"
  RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR=target-wasm \
    /usr/bin/cargo -Z build-std=std,panic_abort build --lib --target "$TARGET"
else
  echo "wasm check: no wasm32 toolchain. Run 'rustup target add $TARGET' or install rustc-web rust-web-src lld-22" >&2
  exit 1
fi
echo "wasm check: OK"
