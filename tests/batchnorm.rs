//! Batch norm (`batchnorm_stats`, `batchnorm_apply`, `batchnorm_backward_reduce`,
//! `batchnorm_backward_input`, composed by `BatchNorm`) against the f64 CPU mirrors over
//! awkward shapes, the backward against central finite differences of an independent f64
//! train-mode forward, and PyTorch's refusal to train with one value per channel.

// Shared helpers below panic on GPU errors like the #[test] fns do (clippy.toml allows
// unwrap in tests but not in helper fns of integration-test crates).
#![allow(clippy::unwrap_used)]

mod common;

use bitspike::cpu;
use bitspike::gpu::split::SampleRanges;
use bitspike::gpu::{GpuBuffer, GpuContext, GpuError, KernelVariant};
use bitspike::kernels::batchnorm::{
    BatchNorm, BatchNormConfig, BatchNormParams, BatchNormSaved, BatchNormShape, BatchNormState,
    BatchNormStats,
};
use bitspike::rng::SeededRng;
use common::*;

const CHANNELS: [usize; 3] = [1, 3, 64];
const SAMPLES: [usize; 3] = [1, 2, 5];
const SPATIAL: [usize; 6] = [1, 49, 255, 256, 257, 784];

/// Every shape of the sweep, plus one larger `mnist`-like layer.
fn shapes() -> Vec<BatchNormShape> {
    let mut out = Vec::new();
    for &c in &CHANNELS {
        for &n in &SAMPLES {
            for &hw in &SPATIAL {
                out.push(BatchNormShape::new(n, c, hw));
            }
        }
    }
    out.push(BatchNormShape::new(64, 8, 784));
    out
}

/// A layer's parameters and running statistics on host and device.
struct Layer {
    weight: Vec<f32>,
    bias: Vec<f32>,
    running_mean: Vec<f32>,
    running_var: Vec<f32>,
}

impl Layer {
    fn random(r: &mut SeededRng, c: usize) -> Self {
        Self {
            weight: uniform(r, c, 0.5, 1.5),
            bias: uniform(r, c, -0.5, 0.5),
            running_mean: uniform(r, c, -0.2, 0.2),
            running_var: uniform(r, c, 0.5, 2.0),
        }
    }
}

/// A layer's parameters and running statistics, uploaded.
struct DeviceLayer {
    weight: GpuBuffer<f32>,
    bias: GpuBuffer<f32>,
    running_mean: GpuBuffer<f32>,
    running_var: GpuBuffer<f32>,
}

impl DeviceLayer {
    fn upload(ctx: &GpuContext, layer: &Layer) -> Self {
        Self {
            weight: upload(ctx, &layer.weight),
            bias: upload(ctx, &layer.bias),
            running_mean: upload(ctx, &layer.running_mean),
            running_var: upload(ctx, &layer.running_var),
        }
    }

    fn state(&self) -> BatchNormState<'_> {
        state(
            &self.weight,
            &self.bias,
            &self.running_mean,
            &self.running_var,
        )
    }
}

fn state<'a>(
    weight: &'a GpuBuffer<f32>,
    bias: &'a GpuBuffer<f32>,
    running_mean: &'a GpuBuffer<f32>,
    running_var: &'a GpuBuffer<f32>,
) -> BatchNormState<'a> {
    BatchNormState {
        weight,
        bias,
        running_mean,
        running_var,
    }
}

/// Inputs with a per-channel offset and scale, so mean and variance differ by channel and the
/// mean is large against the spread (exercises the shifted sums in `batchnorm_stats`).
fn activations(r: &mut SeededRng, shape: BatchNormShape) -> Vec<f32> {
    let offsets = uniform(r, shape.channels, -3.0, 3.0);
    let scales = uniform(r, shape.channels, 0.1, 2.0);
    let raw = uniform(r, shape.elements(), -1.0, 1.0);
    raw.iter()
        .enumerate()
        .map(|(i, v)| {
            let c = (i / shape.spatial) % shape.channels;
            offsets[c] + scales[c] * v
        })
        .collect()
}

struct TrainOut {
    y: Vec<f32>,
    mean: Vec<f32>,
    invstd: Vec<f32>,
    running_mean: Vec<f32>,
    running_var: Vec<f32>,
}

fn gpu_train(
    ctx: &GpuContext,
    bn: &BatchNorm,
    shape: BatchNormShape,
    x: &[f32],
    layer: &Layer,
) -> TrainOut {
    let c = shape.channels;
    let (xb, dev) = (upload(ctx, x), DeviceLayer::upload(ctx, layer));
    let (mean, invstd, y) = (zeros(ctx, c), zeros(ctx, c), zeros(ctx, shape.elements()));
    let saved = BatchNormSaved {
        mean: &mean,
        invstd: &invstd,
    };
    record(ctx, |enc| {
        bn.forward_train(ctx, enc, shape, &xb, &dev.state(), &saved, &y)
    });
    TrainOut {
        y: read(ctx, &y),
        mean: read(ctx, &mean),
        invstd: read(ctx, &invstd),
        running_mean: read(ctx, &dev.running_mean),
        running_var: read(ctx, &dev.running_var),
    }
}

fn cpu_train(
    config: &BatchNormConfig,
    shape: BatchNormShape,
    x: &[f32],
    layer: &Layer,
) -> TrainOut {
    let params = BatchNormParams::new(config, shape, false);
    let c = shape.channels;
    let mut out = TrainOut {
        y: vec![0.0; shape.elements()],
        mean: vec![0.0; c],
        invstd: vec![0.0; c],
        running_mean: layer.running_mean.clone(),
        running_var: layer.running_var.clone(),
    };
    cpu::batchnorm::batchnorm_stats(
        &params,
        x,
        &mut out.mean,
        &mut out.invstd,
        &mut out.running_mean,
        &mut out.running_var,
    );
    cpu::batchnorm::batchnorm_apply(
        &params,
        x,
        &out.mean,
        &out.invstd,
        &layer.weight,
        &layer.bias,
        &mut out.y,
    );
    out
}

/// Every shape with both kernel variants (their run lengths differ: `KernelVariant::plane_run`).
fn shapes_and_variants() -> Vec<(BatchNormShape, KernelVariant)> {
    let variants = [KernelVariant::RegisterBlocked, KernelVariant::SharedTiled];
    shapes()
        .into_iter()
        .flat_map(|s| variants.map(|v| (s, v)))
        .collect()
}

/// What the CPU-reference and finite-difference tests start from: the GPU (`None`: skip the
/// test), the default config, a layer with it on the GPU, and an rng seeded `seed`.
fn setup(seed: u64) -> Option<(GpuContext, BatchNormConfig, BatchNorm, SeededRng)> {
    let ctx = gpu()?;
    let config = BatchNormConfig::default();
    let bn = BatchNorm::new(&ctx, config).unwrap();
    Some((ctx, config, bn, rng(seed)))
}

#[test]
fn batchnorm_forward_train_matches_cpu_reference() {
    let Some((mut ctx, config, bn, mut r)) = setup(11) else {
        return;
    };
    let mut compared = 0;
    // Both run lengths (`KernelVariant::plane_run`: 16 values per invocation on CPU
    // rasterisers, 1 on GPUs) on every shape.
    for (shape, variant) in shapes_and_variants() {
        ctx.variant = variant;
        if shape.per_channel() < 2 {
            continue; // rejected in training; see batchnorm_train_rejects_one_value_per_channel
        }
        let x = activations(&mut r, shape);
        let layer = Layer::random(&mut r, shape.channels);
        let got = gpu_train(&ctx, &bn, shape, &x, &layer);
        let want = cpu_train(&config, shape, &x, &layer);
        let tag = format!("batchnorm train {shape:?}");
        assert_close(
            &format!("{tag} save_mean"),
            &got.mean,
            &want.mean,
            1e-5,
            1e-5,
        );
        assert_close(
            &format!("{tag} save_invstd"),
            &got.invstd,
            &want.invstd,
            1e-4,
            1e-5,
        );
        assert_close(
            &format!("{tag} running_mean"),
            &got.running_mean,
            &want.running_mean,
            1e-5,
            1e-5,
        );
        assert_close(
            &format!("{tag} running_var"),
            &got.running_var,
            &want.running_var,
            1e-5,
            1e-5,
        );
        assert_close(&format!("{tag} y"), &got.y, &want.y, 1e-4, 1e-4);
        compared += 1;
    }
    assert!(compared >= 50, "only {compared} shapes compared");
}

/// The running variance must use the unbiased estimate (M / (M - 1)) and the saved invstd the
/// biased one; pinned on a hand-checkable case, M = 2 values {1, 3}: mean 2, biased var 1,
/// unbiased var 2.
#[test]
fn batchnorm_stats_uses_biased_and_unbiased_variance_like_pytorch() {
    let Some(ctx) = gpu() else { return };
    let config = BatchNormConfig {
        momentum: 0.1,
        eps: 1e-5,
    };
    let bn = BatchNorm::new(&ctx, config).unwrap();
    let layer = Layer {
        weight: vec![1.0],
        bias: vec![0.0],
        running_mean: vec![0.0],
        running_var: vec![1.0],
    };
    let got = gpu_train(&ctx, &bn, BatchNormShape::new(2, 1, 1), &[1.0, 3.0], &layer);
    let invstd = 1.0 / (1.0f32 + 1e-5).sqrt();
    assert_close("mean", &got.mean, &[2.0], 0.0, 1e-6);
    assert_close("invstd (biased var 1)", &got.invstd, &[invstd], 1e-6, 0.0);
    assert_close(
        "running_mean = 0.9*0 + 0.1*2",
        &got.running_mean,
        &[0.2],
        1e-6,
        0.0,
    );
    assert_close(
        "running_var = 0.9*1 + 0.1*2 (unbiased)",
        &got.running_var,
        &[1.1],
        1e-6,
        0.0,
    );
    assert_close("y", &got.y, &[-invstd, invstd], 1e-6, 0.0);
}

#[test]
fn batchnorm_forward_eval_matches_cpu_reference() {
    let Some((mut ctx, config, bn, mut r)) = setup(12) else {
        return;
    };
    // Both run lengths (`KernelVariant::plane_run`: 16 values per invocation on CPU
    // rasterisers, 1 on GPUs) on every shape.
    for (shape, variant) in shapes_and_variants() {
        ctx.variant = variant;
        let x = activations(&mut r, shape);
        let layer = Layer::random(&mut r, shape.channels);
        let params = BatchNormParams::new(&config, shape, true);
        let mut want = vec![0.0; shape.elements()];
        cpu::batchnorm::batchnorm_apply(
            &params,
            &x,
            &layer.running_mean,
            &layer.running_var,
            &layer.weight,
            &layer.bias,
            &mut want,
        );
        let (xb, dev) = (upload(&ctx, &x), DeviceLayer::upload(&ctx, &layer));
        let y = zeros(&ctx, shape.elements());
        record(&ctx, |enc| {
            bn.forward_eval(&ctx, enc, shape, &xb, &dev.state(), &y)
        });
        let tag = format!("batchnorm eval {shape:?}");
        assert_close(&format!("{tag} y"), &read(&ctx, &y), &want, 1e-5, 1e-5);
        // Eval mode must leave the running statistics alone.
        assert_exact(
            &format!("{tag} running_mean untouched"),
            &read(&ctx, &dev.running_mean),
            &layer.running_mean,
        );
        assert_exact(
            &format!("{tag} running_var untouched"),
            &read(&ctx, &dev.running_var),
            &layer.running_var,
        );
    }
}

/// GPU backward from the statistics `saved` by a train-mode forward: (grad_x, grad_weight,
/// grad_bias).
fn gpu_backward(
    ctx: &GpuContext,
    bn: &BatchNorm,
    shape: BatchNormShape,
    x: &[f32],
    grad_y: &[f32],
    saved: &TrainOut,
    weight: &[f32],
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let c = shape.channels;
    let (xb, gy, w) = (upload(ctx, x), upload(ctx, grad_y), upload(ctx, weight));
    let (mb, ib) = (upload(ctx, &saved.mean), upload(ctx, &saved.invstd));
    // Filled with garbage: the backward must overwrite, not accumulate.
    let (gw, gb) = (filled(ctx, c, 7.0f32), filled(ctx, c, 7.0f32));
    let gx = filled(ctx, shape.elements(), 7.0f32);
    let saved = BatchNormSaved {
        mean: &mb,
        invstd: &ib,
    };
    record(ctx, |enc| {
        bn.backward(ctx, enc, shape, &xb, &gy, &saved, &w, &gw, &gb, &gx)
    });
    (read(ctx, &gx), read(ctx, &gw), read(ctx, &gb))
}

#[test]
fn batchnorm_backward_matches_cpu_reference() {
    let Some((mut ctx, config, bn, mut r)) = setup(13) else {
        return;
    };
    // Both run lengths (`KernelVariant::plane_run`: 16 values per invocation on CPU
    // rasterisers, 1 on GPUs) on every shape.
    for (shape, variant) in shapes_and_variants() {
        ctx.variant = variant;
        if shape.per_channel() < 2 {
            continue;
        }
        let c = shape.channels;
        let x = activations(&mut r, shape);
        let grad_y = uniform(&mut r, shape.elements(), -1.0, 1.0);
        let layer = Layer::random(&mut r, c);
        let fwd = cpu_train(&config, shape, &x, &layer);
        let params = BatchNormParams::new(&config, shape, false);
        let (mut want_gw, mut want_gb) = (vec![0.0; c], vec![0.0; c]);
        let mut want_gx = vec![0.0; shape.elements()];
        cpu::batchnorm::batchnorm_backward_reduce(
            &params,
            &x,
            &grad_y,
            &fwd.mean,
            &fwd.invstd,
            &mut want_gw,
            &mut want_gb,
        );
        cpu::batchnorm::batchnorm_backward_input(
            &params,
            &x,
            &grad_y,
            &fwd.mean,
            &fwd.invstd,
            &layer.weight,
            &want_gw,
            &want_gb,
            &mut want_gx,
        );
        let (gx, gw, gb) = gpu_backward(&ctx, &bn, shape, &x, &grad_y, &fwd, &layer.weight);
        let tag = format!("batchnorm backward {shape:?}");
        // Sums over M values in f32: absolute error grows like sqrt(M) * eps * |terms|.
        let sum_abs = 2e-6 * (shape.per_channel() as f32).sqrt();
        assert_close(&format!("{tag} grad_bias"), &gb, &want_gb, 1e-5, sum_abs);
        assert_close(&format!("{tag} grad_weight"), &gw, &want_gw, 1e-5, sum_abs);
        assert_close(&format!("{tag} grad_x"), &gx, &want_gx, 1e-4, 2e-5);
    }
}

/// Independent f64 train-mode forward and loss `L = sum_i r_i * y_i`.
fn loss_f64(shape: BatchNormShape, eps: f64, x: &[f64], w: &[f64], b: &[f64], r: &[f64]) -> f64 {
    let (n, c, hw) = (shape.samples, shape.channels, shape.spatial);
    let m = (n * hw) as f64;
    let mut loss = 0.0;
    for ch in 0..c {
        let idx: Vec<usize> = (0..n)
            .flat_map(|s| (0..hw).map(move |p| (s * c + ch) * hw + p))
            .collect();
        let mean = idx.iter().map(|&i| x[i]).sum::<f64>() / m;
        let var = idx.iter().map(|&i| (x[i] - mean).powi(2)).sum::<f64>() / m;
        for &i in &idx {
            loss += r[i] * ((x[i] - mean) / (var + eps).sqrt() * w[ch] + b[ch]);
        }
    }
    loss
}

#[test]
fn batchnorm_backward_matches_finite_differences() {
    let Some((ctx, config, bn, mut r)) = setup(14) else {
        return;
    };
    for shape in [
        BatchNormShape::new(2, 3, 5),
        BatchNormShape::new(1, 2, 7),
        BatchNormShape::new(3, 1, 1),
    ] {
        let c = shape.channels;
        let x = activations(&mut r, shape);
        let grad_y = uniform(&mut r, shape.elements(), -1.0, 1.0);
        let layer = Layer::random(&mut r, c);
        let fwd = cpu_train(&config, shape, &x, &layer);
        let (gx, gw, gb) = gpu_backward(&ctx, &bn, shape, &x, &grad_y, &fwd, &layer.weight);
        let f64s = |v: &[f32]| v.iter().map(|&a| a as f64).collect::<Vec<f64>>();
        let (mut x64, mut w64, mut b64, r64) = (
            f64s(&x),
            f64s(&layer.weight),
            f64s(&layer.bias),
            f64s(&grad_y),
        );
        let eps = config.eps as f64;
        let h = 1e-5;
        let mut fd_x = Vec::new();
        for i in 0..x64.len() {
            let (w_, b_) = (w64.clone(), b64.clone());
            fd_x.push(finite_difference(&mut x64, i, h, &mut |xv| {
                loss_f64(shape, eps, xv, &w_, &b_, &r64)
            }) as f32);
        }
        let mut fd_w = Vec::new();
        let mut fd_b = Vec::new();
        for ch in 0..c {
            let (xc, bc) = (x64.clone(), b64.clone());
            fd_w.push(finite_difference(&mut w64, ch, h, &mut |wv| {
                loss_f64(shape, eps, &xc, wv, &bc, &r64)
            }) as f32);
            let (xc, wc) = (x64.clone(), w64.clone());
            fd_b.push(finite_difference(&mut b64, ch, h, &mut |bv| {
                loss_f64(shape, eps, &xc, &wc, bv, &r64)
            }) as f32);
        }
        let tag = format!("batchnorm backward vs finite differences {shape:?}");
        assert_close(&format!("{tag} grad_x"), &gx, &fd_x, 1e-3, 1e-4);
        assert_close(&format!("{tag} grad_weight"), &gw, &fd_w, 1e-3, 1e-4);
        assert_close(&format!("{tag} grad_bias"), &gb, &fd_b, 1e-3, 1e-4);
        // A wrong backward that ignores the mean/variance paths would give weight*invstd*dy.
        let naive: Vec<f32> = (0..x.len())
            .map(|i| {
                layer.weight[(i / shape.spatial) % c]
                    * fwd.invstd[(i / shape.spatial) % c]
                    * grad_y[i]
            })
            .collect();
        let differs = naive.iter().zip(&fd_x).any(|(a, b)| (a - b).abs() > 1e-2);
        assert!(
            differs,
            "{tag}: test cannot tell the full gradient from the naive one"
        );
    }
}

#[test]
fn batchnorm_train_rejects_one_value_per_channel() {
    let Some(ctx) = gpu() else { return };
    let bn = BatchNorm::new(&ctx, BatchNormConfig::default()).unwrap();
    let shape = BatchNormShape::new(1, 3, 1);
    let [x, y, w, b, rm, rv, mean, invstd] = std::array::from_fn(|_| zeros::<f32>(&ctx, 3));
    let layer_state = state(&w, &b, &rm, &rv);
    let saved = BatchNormSaved {
        mean: &mean,
        invstd: &invstd,
    };
    let mut enc = ctx.encoder("test");
    let err = bn
        .forward_train(&ctx, &mut enc, shape, &x, &layer_state, &saved, &y)
        .unwrap_err();
    println!("forward_train with M = 1: {err}");
    assert!(matches!(err, GpuError::Shape { .. }) && err.to_string().contains("M = N*HW = 1"));
    let stats = BatchNormStats::new(&ctx).unwrap();
    let params = BatchNormParams::new(&BatchNormConfig::default(), shape, false);
    let err = stats
        .dispatch(&ctx, &mut enc, &params, &x, &mean, &invstd, &rm, &rv)
        .unwrap_err();
    println!("batchnorm_stats with M = 1: {err}");
    assert!(matches!(err, GpuError::Shape { .. }));
    // Eval mode is fine with a single value.
    bn.forward_eval(&ctx, &mut enc, shape, &x, &layer_state, &y)
        .unwrap();
    ctx.submit(enc);
}

#[test]
fn batchnorm_rejects_mismatched_buffers() {
    let Some(ctx) = gpu() else { return };
    let bn = BatchNorm::new(&ctx, BatchNormConfig::default()).unwrap();
    let shape = BatchNormShape::new(2, 3, 4);
    let buf = |len: usize| zeros::<f32>(&ctx, len);
    let (x, y, short_y) = (buf(24), buf(24), buf(23));
    let (w, b, rm, rv, mean, invstd, wrong_c) =
        (buf(3), buf(3), buf(3), buf(3), buf(3), buf(3), buf(4));
    let saved = BatchNormSaved {
        mean: &mean,
        invstd: &invstd,
    };
    let mut enc = ctx.encoder("test");
    assert_err_contains(
        bn.forward_train(
            &ctx,
            &mut enc,
            shape,
            &x,
            &state(&w, &b, &rm, &rv),
            &saved,
            &short_y,
        ),
        "`y` has 23 elements, expected N*C*HW = 2*3*4 = 24",
    );
    assert_err_contains(
        bn.forward_eval(
            &ctx,
            &mut enc,
            shape,
            &x,
            &state(&wrong_c, &b, &rm, &rv),
            &y,
        ),
        "`weight` has 4 elements, expected C = 3",
    );
    assert_err_contains(
        bn.backward(&ctx, &mut enc, shape, &x, &y, &saved, &w, &w, &wrong_c, &y),
        "`grad_bias` has 4 elements",
    );
}

/// A batch that stands for `repeats` identical copies (the single-frame encoder): GPU equals
/// the mirror, and both equal BN run on the batch really repeated `repeats` times (same saved
/// statistics and output; the running variance's unbiased correction counts every copy).
#[test]
fn batchnorm_repeated_batch_equals_the_repeated_tensor() {
    let Some((ctx, config, bn, mut r)) = setup(19) else {
        return;
    };
    for (samples, channels, spatial, repeats) in [
        (2usize, 3usize, 5usize, 4usize),
        (1, 4, 9, 2),
        (8, 16, 49, 4),
    ] {
        let frame = BatchNormShape::new(samples, channels, spatial).repeated(repeats);
        let full = BatchNormShape::new(samples * repeats, channels, spatial);
        let x = activations(&mut r, BatchNormShape::new(samples, channels, spatial));
        let x_full: Vec<f32> = (0..repeats).flat_map(|_| x.iter().copied()).collect();
        let layer = Layer::random(&mut r, channels);
        let got = gpu_train(&ctx, &bn, frame, &x, &layer);
        let want = cpu_train(&config, frame, &x, &layer);
        let repeated = cpu_train(&config, full, &x_full, &layer);
        let tag = format!("batchnorm repeated {frame:?}");
        for (what, a, b) in [
            ("mean", &got.mean, &want.mean),
            ("invstd", &got.invstd, &want.invstd),
            ("running_mean", &got.running_mean, &want.running_mean),
            ("running_var", &got.running_var, &want.running_var),
            (
                "running_var vs repeated tensor",
                &want.running_var,
                &repeated.running_var,
            ),
            ("invstd vs repeated tensor", &want.invstd, &repeated.invstd),
        ] {
            assert_close(&format!("{tag} {what}"), a, b, 1e-5, 1e-5);
        }
        assert_close(&format!("{tag} y"), &got.y, &want.y, 1e-4, 1e-4);
        assert_close(
            &format!("{tag} y vs repeated"),
            &want.y,
            &repeated.y[..x.len()],
            1e-5,
            1e-5,
        );
    }
}

/// Shapes whose samples split into several ranges under `limit` bytes per binding (as a
/// tensor larger than one binding is, `gpu::split`): `(shape, limit)`, with last ranges shorter.
fn split_shapes() -> Vec<(BatchNormShape, u64)> {
    vec![
        // 588 bytes a sample: ranges start every 64 samples (256-byte offsets): 64, 64, 2.
        (BatchNormShape::new(130, 3, 49), 64 * 588),
        // 256 bytes a sample: 10, ..., 10.
        (BatchNormShape::new(70, 1, 64), 10 * 256),
        // 65,792 bytes a sample: 2, 2, 2, 2, 1; a single frame standing for 4 copies.
        (BatchNormShape::new(9, 64, 257).repeated(4), 2 * 65_792),
    ]
}

/// The split statistics (`batchnorm_stats_partial` per range, `batchnorm_stats_final`) and
/// the split backward (sums per range, added; the input gradient per range) against the f64
/// CPU mirrors of the whole batch.
#[test]
fn batchnorm_split_matches_cpu_reference() {
    let Some((ctx, config, bn, mut r)) = setup(29) else {
        return;
    };
    for (shape, limit) in split_shapes() {
        let per = (shape.channels * shape.spatial * 4) as u64;
        let ranges = SampleRanges::under(limit, "test", shape.samples, &[per]).unwrap();
        assert!(ranges.len() > 1, "{shape:?} not split");
        let c = shape.channels;
        let x = activations(&mut r, shape);
        let layer = Layer::random(&mut r, c);
        let want = cpu_train(&config, shape, &x, &layer);

        let (xb, dev) = (upload(&ctx, &x), DeviceLayer::upload(&ctx, &layer));
        let (mean, invstd) = (zeros(&ctx, c), zeros(&ctx, c));
        let (shift, sums) = (filled(&ctx, c, 7.0f32), filled(&ctx, 2 * c, 7.0f32));
        let saved = BatchNormSaved {
            mean: &mean,
            invstd: &invstd,
        };
        record(&ctx, |enc| {
            let state = dev.state();
            bn.statistics_split(
                &ctx,
                enc,
                shape,
                &ranges,
                &xb,
                &state,
                &saved,
                (&shift, &sums),
            )
        });
        let tag = format!("batchnorm split {shape:?} in {} ranges", ranges.len());
        let sum_abs = 2e-6 * (shape.per_channel() as f32).sqrt();
        assert_close(
            &format!("{tag} mean"),
            &read(&ctx, &mean),
            &want.mean,
            1e-5,
            sum_abs,
        );
        assert_close(
            &format!("{tag} invstd"),
            &read(&ctx, &invstd),
            &want.invstd,
            1e-4,
            1e-6,
        );
        let rm = read(&ctx, &dev.running_mean);
        let rv = read(&ctx, &dev.running_var);
        assert_close(
            &format!("{tag} running mean"),
            &rm,
            &want.running_mean,
            1e-5,
            sum_abs,
        );
        assert_close(
            &format!("{tag} running var"),
            &rv,
            &want.running_var,
            1e-4,
            1e-6,
        );

        // The backward, from the CPU's statistics.
        let grad_y = uniform(&mut r, shape.elements(), -1.0, 1.0);
        let params = BatchNormParams::new(&config, shape, false);
        let (mut want_gw, mut want_gb) = (vec![0.0; c], vec![0.0; c]);
        let mut want_gx = vec![0.0; shape.elements()];
        cpu::batchnorm::batchnorm_backward_reduce(
            &params,
            &x,
            &grad_y,
            &want.mean,
            &want.invstd,
            &mut want_gw,
            &mut want_gb,
        );
        cpu::batchnorm::batchnorm_backward_input(
            &params,
            &x,
            &grad_y,
            &want.mean,
            &want.invstd,
            &layer.weight,
            &want_gw,
            &want_gb,
            &mut want_gx,
        );
        let (gy, w) = (upload(&ctx, &grad_y), upload(&ctx, &layer.weight));
        let (mb, ib) = (upload(&ctx, &want.mean), upload(&ctx, &want.invstd));
        // Filled with garbage: the first range must overwrite.
        let (gw, gb) = (filled(&ctx, c, 7.0f32), filled(&ctx, c, 7.0f32));
        let (pw, pb) = (filled(&ctx, c, 7.0f32), filled(&ctx, c, 7.0f32));
        let gx = filled(&ctx, shape.elements(), 7.0f32);
        let saved = BatchNormSaved {
            mean: &mb,
            invstd: &ib,
        };
        record(&ctx, |enc| {
            bn.backward_split(
                &ctx,
                enc,
                shape,
                &ranges,
                &xb,
                &gy,
                &saved,
                &w,
                (&gw, &gb),
                Some((&pw, &pb)),
                &gx,
            )
        });
        assert_close(
            &format!("{tag} grad_bias"),
            &read(&ctx, &gb),
            &want_gb,
            1e-5,
            sum_abs,
        );
        assert_close(
            &format!("{tag} grad_weight"),
            &read(&ctx, &gw),
            &want_gw,
            1e-5,
            sum_abs,
        );
        assert_close(
            &format!("{tag} grad_x"),
            &read(&ctx, &gx),
            &want_gx,
            1e-4,
            2e-5,
        );
    }
}

/// `batchnorm_backward_input_vec4` (planes of a multiple of 4 values, runs of 16 on CPU
/// rasterisers) against the scalar kernel (runs of 1, `KernelVariant::SharedTiled`): the same
/// gradient bit for bit.
#[test]
fn batchnorm_backward_input_vec4_equals_the_scalar_pass() {
    let Some((mut ctx, config, bn, mut r)) = setup(17) else {
        return;
    };
    let mut tested = 0;
    for shape in shapes()
        .into_iter()
        .chain([BatchNormShape::new(3, 5, 4), BatchNormShape::new(2, 3, 196)])
    {
        if shape.spatial % 4 != 0 || shape.per_channel() < 2 {
            continue;
        }
        let x = activations(&mut r, shape);
        let grad_y = uniform(&mut r, shape.elements(), -1.0, 1.0);
        let layer = Layer::random(&mut r, shape.channels);
        let fwd = cpu_train(&config, shape, &x, &layer);
        let mut out = Vec::new();
        for variant in [KernelVariant::RegisterBlocked, KernelVariant::SharedTiled] {
            ctx.variant = variant;
            out.push(gpu_backward(&ctx, &bn, shape, &x, &grad_y, &fwd, &layer.weight).0);
        }
        assert_exact(
            &format!("grad_x, vec4 vs scalar, {shape:?}"),
            &out[0],
            &out[1],
        );
        tested += 1;
    }
    assert!(tested >= 3, "only {tested} shapes took the vec4 pass");
}
