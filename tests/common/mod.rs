//! Shared helpers for the GPU-vs-CPU tests: device acquisition (a hard failure under CI),
//! seeded random inputs, and comparisons that print what they compared.
#![allow(dead_code)]

use bitspike::gpu::{GpuBuffer, GpuContext};
use bitspike::kernels::conv::ConvShape;
use bitspike::rng::SeededRng;
use bytemuck::Pod;
use rand::{Rng, SeedableRng};
use std::fmt::Display;

/// Opens the GPU. Without an adapter the test is skipped locally, but fails when `CI` is set:
/// CI installs lavapipe, so a missing adapter there is a broken environment, not a skip.
pub fn gpu() -> Option<GpuContext> {
    match GpuContext::new_blocking() {
        Ok(ctx) => Some(ctx),
        Err(e) if std::env::var_os("CI").is_some() => {
            panic!("CI is set but no usable GPU adapter: {e}")
        }
        Err(e) => {
            eprintln!("SKIPPED (no GPU adapter; set CI=1 to make this fatal): {e}");
            None
        }
    }
}

/// A GPU buffer holding a copy of `data`.
pub fn upload<T: Pod>(ctx: &GpuContext, data: &[T]) -> GpuBuffer<T> {
    GpuBuffer::from_slice(ctx, data, "test input").unwrap_or_else(|e| panic!("upload: {e}"))
}

/// A zero-filled GPU buffer of `len` elements (a kernel output).
pub fn zeros<T: Pod>(ctx: &GpuContext, len: usize) -> GpuBuffer<T> {
    GpuBuffer::zeros(ctx, len, "test output").unwrap_or_else(|e| panic!("zeros: {e}"))
}

/// A GPU buffer of `len` copies of `value`: garbage that a kernel must overwrite everywhere.
pub fn filled<T: Pod>(ctx: &GpuContext, len: usize, value: T) -> GpuBuffer<T> {
    upload(ctx, &vec![value; len])
}

/// Records the dispatches of `encode` into a fresh encoder and submits it; a dispatch error
/// fails the test.
pub fn record<R, E: Display>(
    ctx: &GpuContext,
    encode: impl FnOnce(&mut wgpu::CommandEncoder) -> Result<R, E>,
) -> R {
    let mut enc = ctx.encoder("test");
    let out = encode(&mut enc).unwrap_or_else(|e| panic!("dispatch: {e}"));
    ctx.submit(enc);
    out
}

/// The contents of `buf`, after all submitted work.
pub fn read<T: Pod>(ctx: &GpuContext, buf: &GpuBuffer<T>) -> Vec<T> {
    buf.read_blocking(ctx)
        .unwrap_or_else(|e| panic!("read back: {e}"))
}

/// Asserts that `result` is an error whose message contains `needle`; prints the message.
pub fn assert_err_contains<T, E: Display>(result: Result<T, E>, needle: &str) {
    let Err(err) = result else {
        panic!("expected an error containing {needle:?}, got Ok");
    };
    println!("{err}");
    assert!(
        err.to_string().contains(needle),
        "error {err:?} does not contain {needle:?}",
        err = err.to_string()
    );
}

/// Sizes that hit workgroup edges: 1, wg-1, wg, wg+1 and a large one.
pub fn awkward_sizes(workgroup: usize, large: usize) -> Vec<usize> {
    vec![1, workgroup - 1, workgroup, workgroup + 1, large]
}

pub fn rng(seed: u64) -> SeededRng {
    SeededRng::seed_from_u64(seed)
}

/// Uniform values in `[lo, hi)`.
pub fn uniform(rng: &mut SeededRng, len: usize, lo: f32, hi: f32) -> Vec<f32> {
    (0..len).map(|_| rng.random_range(lo..hi)).collect()
}

/// Spikes in {0, 1} with firing probability `p`.
pub fn spikes(rng: &mut SeededRng, len: usize, p: f64) -> Vec<f32> {
    (0..len)
        .map(|_| if rng.random_bool(p) { 1.0 } else { 0.0 })
        .collect()
}

fn assert_same_len(what: &str, got: usize, want: usize) {
    assert_eq!(got, want, "{what}: length {got} vs expected {want}");
}

/// Asserts `|got - want| <= abs + rel * |want|` element-wise; prints a one-line summary and the
/// first few mismatches (index, got, expected).
pub fn assert_close(what: &str, got: &[f32], want: &[f32], rel: f32, abs: f32) {
    assert_same_len(what, got.len(), want.len());
    let mut worst = 0.0f32;
    let mut bad = Vec::new();
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let err = (g - w).abs();
        worst = worst.max(err);
        // NaN must fail: written so a NaN error lands in `bad`.
        if err.is_nan() || err > abs + rel * w.abs() {
            bad.push((i, g, w));
        }
    }
    println!(
        "{what}: compared {} values, max |err| {worst:.3e} (tolerance {abs:.0e} + {rel:.0e}*|x|), {} outside",
        got.len(),
        bad.len()
    );
    if !bad.is_empty() {
        for (i, g, w) in bad.iter().take(8) {
            println!("  [{i}] got {g} expected {w}");
        }
        panic!(
            "{what}: {} of {} values outside tolerance",
            bad.len(),
            got.len()
        );
    }
}

/// Asserts bit-exact equality (spikes, signs, counts); prints a summary and first mismatches.
pub fn assert_exact<T: PartialEq + std::fmt::Debug>(what: &str, got: &[T], want: &[T]) {
    assert_same_len(what, got.len(), want.len());
    let bad: Vec<usize> = (0..got.len()).filter(|&i| got[i] != want[i]).collect();
    println!(
        "{what}: compared {} values exactly, {} differ",
        got.len(),
        bad.len()
    );
    if !bad.is_empty() {
        for &i in bad.iter().take(8) {
            println!("  [{i}] got {:?} expected {:?}", got[i], want[i]);
        }
        panic!("{what}: {} of {} values differ", bad.len(), got.len());
    }
}

/// Central finite difference of a scalar f64 function at `x[i]`.
pub fn finite_difference(
    x: &mut [f64],
    i: usize,
    eps: f64,
    f: &mut dyn FnMut(&[f64]) -> f64,
) -> f64 {
    let orig = x[i];
    x[i] = orig + eps;
    let plus = f(x);
    x[i] = orig - eps;
    let minus = f(x);
    x[i] = orig;
    (plus - minus) / (2.0 * eps)
}

/// `v` widened to f64 (the inputs of the f64 references and finite differences).
pub fn to_f64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&a| a as f64).collect()
}

/// The central finite-difference gradient of `f` at `x` (widened to f64), one element at a
/// time; returned as f32 to compare with a GPU gradient.
pub fn fd_gradient(x: &[f32], eps: f64, mut f: impl FnMut(&[f64]) -> f64) -> Vec<f32> {
    let mut x64 = to_f64(x);
    (0..x64.len())
        .map(|i| finite_difference(&mut x64, i, eps, &mut f) as f32)
        .collect()
}

/// A direct 2-D convolution of shape `s`, written independently of im2col: `out[n, co, oy, ox]`
/// sums `tap(co, input index, weight index)` over the taps inside the image (zero padding), in
/// (ci, ky, kx) order, starting from `T::default()`.
pub fn direct_conv<T: Copy + Default + std::ops::AddAssign>(
    s: &ConvShape,
    mut tap: impl FnMut(usize, usize, usize) -> T,
) -> Vec<T> {
    let (oh, ow) = (s.out_h(), s.out_w());
    let mut y = vec![T::default(); s.output_len()];
    for n in 0..s.batch {
        for co in 0..s.out_channels {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = T::default();
                    for ci in 0..s.in_channels {
                        for ky in 0..s.kernel_h {
                            for kx in 0..s.kernel_w {
                                let iy = (oy * s.stride + ky) as isize - s.padding as isize;
                                let ix = (ox * s.stride + kx) as isize - s.padding as isize;
                                if iy < 0
                                    || ix < 0
                                    || iy >= s.height as isize
                                    || ix >= s.width as isize
                                {
                                    continue;
                                }
                                let xi = ((n * s.in_channels + ci) * s.height + iy as usize)
                                    * s.width
                                    + ix as usize;
                                let wi =
                                    ((co * s.in_channels + ci) * s.kernel_h + ky) * s.kernel_w + kx;
                                acc += tap(co, xi, wi);
                            }
                        }
                    }
                    y[((n * s.out_channels + co) * oh + oy) * ow + ox] = acc;
                }
            }
        }
    }
    y
}

/// The small model the reliability, kill-resume, soak and ablation tests train on MNIST-shaped
/// data: conv(4) -> pool 2 -> binary conv(8) -> linear(10), the rest of the `mnist` preset.
/// `binary_first`: the first conv binary too (two binary layers to count flips on).
pub fn tiny_model(binary_first: bool) -> bitspike::model::ModelConfig {
    use bitspike::model::{LayerConfig, ModelConfig};
    ModelConfig {
        name: "tiny".into(),
        layers: vec![
            LayerConfig::conv3(4, binary_first),
            LayerConfig::Pool { size: 2 },
            LayerConfig::conv3(8, true),
            LayerConfig::Linear {
                out_features: 10,
                binary: false,
                bias: true,
            },
        ],
        ..ModelConfig::mnist()
    }
}

/// A binary 3x3 conv unit (padding 1) with `out_channels`, `stride` and `shortcut`.
pub fn binary_unit(
    out_channels: usize,
    stride: usize,
    shortcut: bitspike::model::Shortcut,
) -> bitspike::model::LayerConfig {
    bitspike::model::LayerConfig::Conv {
        out_channels,
        kernel: 3,
        stride,
        padding: 1,
        binary: true,
        shortcut,
    }
}

/// A small residual model: FP encoder, a binary unit with the identity shortcut, one with the
/// downsampling shortcut (AvgPool 2 + binary 1x1 conv + BN), max pool, FP readout.
pub fn residual_model() -> bitspike::model::ModelConfig {
    use bitspike::model::{LayerConfig, ModelConfig, Shortcut};
    let unit = binary_unit;
    ModelConfig {
        name: "residual".into(),
        layers: vec![
            LayerConfig::conv3(8, false),
            unit(8, 1, Shortcut::Identity),
            unit(16, 2, Shortcut::Downsample),
            LayerConfig::Pool { size: 2 },
            LayerConfig::Linear {
                out_features: 10,
                binary: false,
                bias: true,
            },
        ],
        ..ModelConfig::mnist()
    }
}
