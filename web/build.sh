#!/usr/bin/env bash
# Builds the web app (WASM + WebGPU) into web/dist/, a static folder any static server can
# serve:   bash web/build.sh && python3 -m http.server --directory web/dist 8000
#
# Two toolchain routes, detected automatically:
#  - rustup with the wasm32 target (`rustup target add wasm32-unknown-unknown`);
#  - Debian's rustc-web + rust-web-src + lld (build std from source; no rustup target needed).
# wasm-bindgen CLI: taken from PATH or .tools/bin if its version matches the crate's pin
# (Cargo.lock), otherwise installed into .tools/ with cargo install.
# PROFILE=dev builds faster, unoptimised.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=wasm32-unknown-unknown
PROFILE=${PROFILE:-release}
OUT=web/dist
WBG_VERSION=$(grep -A1 '^name = "wasm-bindgen"$' Cargo.lock | sed -n 's/^version = "\(.*\)"/\1/p' | head -1)
[ -n "$WBG_VERSION" ] || { echo "build: wasm-bindgen not found in Cargo.lock" >&2; exit 1; }

if [ "$PROFILE" = release ]; then FLAG=--release; DIR=release; else FLAG=; DIR=debug; fi
start=$(date +%s)
if rustup target list --installed 2>/dev/null | grep -qx "$TARGET"; then
  echo "build: rustup route ($PROFILE)"
  cargo rustc --lib $FLAG --target "$TARGET" --crate-type cdylib
  WASM=target/$TARGET/$DIR/bitspike.wasm
elif [ -x /usr/bin/rustc ] && [ -d /usr/lib/rustlib/src/rust/library ]; then
  echo "build: Debian rustc-web route, std built from source ($PROFILE)"
  RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR=target-wasm \
    /usr/bin/cargo -Z build-std=std,panic_abort rustc --lib $FLAG --target "$TARGET" --crate-type cdylib
  WASM=target-wasm/$TARGET/$DIR/bitspike.wasm
else
  echo "build: no wasm32 toolchain. Run 'rustup target add $TARGET' (rustup) or" \
       "'apt-get install rustc-web cargo-web rust-web-src lld-22' (Debian)" >&2
  exit 1
fi
echo "build: cargo took $(( $(date +%s) - start )) s"

WBG=""
for candidate in "$(command -v wasm-bindgen || true)" .tools/bin/wasm-bindgen; do
  if [ -n "$candidate" ] && [ -x "$candidate" ] && "$candidate" --version | grep -q " $WBG_VERSION$"; then
    WBG=$candidate; break
  fi
done
if [ -z "$WBG" ]; then
  echo "build: installing wasm-bindgen-cli $WBG_VERSION into .tools/"
  cargo install wasm-bindgen-cli --version "$WBG_VERSION" --root .tools
  WBG=.tools/bin/wasm-bindgen
fi

rm -rf "$OUT"
mkdir -p "$OUT"
"$WBG" --target web --no-typescript --out-dir "$OUT/pkg" "$WASM"
# No wasm-opt: Debian's binaryen (108) rewrites wasm-bindgen's externref table into one the
# browser rejects at start-up, and it saves only ~4 % once gzipped.
cp index.html "$OUT/"
cp web/style.css web/favicon.svg "$OUT/"
echo "build: $OUT ready, wasm $(du -k "$OUT/pkg/bitspike_bg.wasm" | cut -f1) KiB" \
     "($(gzip -c "$OUT/pkg/bitspike_bg.wasm" | wc -c | awk '{printf "%d", $1/1024}') KiB gzipped)"
