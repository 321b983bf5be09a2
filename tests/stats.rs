//! `Moments` (`moments_partial` + `moments_final`) against the CPU mirrors and an f64 sum.

// Helpers outside #[test] fns unwrap too: a failed GPU call is a test failure.
#![allow(clippy::unwrap_used)]

mod common;

use bitspike::cpu;
use bitspike::gpu::{GpuBuffer, GpuContext};
use bitspike::kernels::stats::{summarize, Moments, MOMENTS_CHUNK};
use common::*;

fn gpu_moments(
    ctx: &GpuContext,
    input: &[f32],
    summary: &GpuBuffer<f32>,
    slot: usize,
    accumulate: bool,
) {
    let moments = Moments::new(ctx).unwrap();
    let (x, scratch) = (
        upload(ctx, input),
        zeros(ctx, Moments::partials_len(input.len())),
    );
    record(ctx, |enc| {
        moments.dispatch(ctx, enc, &x, &scratch, summary, slot, accumulate)
    });
}

#[test]
fn moments_matches_cpu_reference() {
    let Some(ctx) = gpu() else { return };
    let mut r = rng(31);
    let mut sizes = vec![
        1usize,
        255,
        256,
        257,
        MOMENTS_CHUNK - 1,
        MOMENTS_CHUNK,
        MOMENTS_CHUNK + 1,
    ];
    sizes.push(64 * MOMENTS_CHUNK + 1); // more partials than the final workgroup has invocations
    sizes.push(1_000_003);
    for (which, n) in sizes.into_iter().enumerate() {
        // alternate spikes (firing rates) and signed gradients
        let input = if which % 2 == 0 {
            spikes(&mut r, n, 0.2)
        } else {
            uniform(&mut r, n, -0.3, 0.5)
        };
        let slot = which % 3;
        let summary = zeros(&ctx, 9);
        gpu_moments(&ctx, &input, &summary, slot, false);
        let got = read(&ctx, &summary);
        let mut want = vec![0.0f32; 9];
        let mut scratch = vec![0.0f32; Moments::partials_len(n)];
        cpu::stats::moments(&input, &mut scratch, &mut want, slot, false);
        let tag = format!("moments n={n} slot={slot}");
        // same summation order as the mirror; slack for FMA contraction
        assert_close(&format!("{tag} vs CPU mirror"), &got, &want, 1e-6, 1e-6);
        // f64 reference: f32 accumulation error grows with log2(n) * eps * sum|x|
        let s64: f64 = input.iter().map(|&v| v as f64).sum();
        let q64: f64 = input.iter().map(|&v| (v as f64) * (v as f64)).sum();
        let abs_sum: f64 = input.iter().map(|&v| (v as f64).abs()).sum();
        let tol =
            |scale: f64| 1e-6 + 4.0 * f32::EPSILON as f64 * (n as f64).log2().max(1.0) * scale;
        let o = 3 * slot;
        println!(
            "{tag}: sum {} (f64 {s64:.4}), sum_sq {} (f64 {q64:.4}), count {}",
            got[o],
            got[o + 1],
            got[o + 2]
        );
        assert!(
            (got[o] as f64 - s64).abs() <= tol(abs_sum),
            "{tag}: sum {} vs {s64}",
            got[o]
        );
        assert!(
            (got[o + 1] as f64 - q64).abs() <= tol(q64),
            "{tag}: sum_sq {} vs {q64}",
            got[o + 1]
        );
        assert_eq!(got[o + 2], n as f32, "{tag}: count");
        for (i, &v) in got.iter().enumerate() {
            if i / 3 != slot {
                assert_eq!(v, 0.0, "{tag}: other slots untouched");
            }
        }
    }
}

/// Two layers and three steps into one summary buffer, as an epoch's metrics would be.
#[test]
fn moments_accumulates_into_slots() {
    let Some(ctx) = gpu() else { return };
    let mut r = rng(32);
    let summary = filled(&ctx, 6, 7.0f32);
    let mut want = vec![7.0f32; 6];
    let (mut s64, mut count) = ([0.0f64; 2], [0usize; 2]);
    for step in 0..3 {
        for slot in 0..2 {
            let n = 1000 + 4097 * slot + step;
            let input = spikes(&mut r, n, 0.1 + 0.2 * slot as f64);
            let accumulate = step > 0; // the first step overwrites the stale 7.0s
            gpu_moments(&ctx, &input, &summary, slot, accumulate);
            let mut scratch = vec![0.0f32; Moments::partials_len(n)];
            cpu::stats::moments(&input, &mut scratch, &mut want, slot, accumulate);
            s64[slot] += input.iter().map(|&v| v as f64).sum::<f64>();
            count[slot] += n;
        }
    }
    let got = read(&ctx, &summary);
    assert_close("accumulated summary vs CPU mirror", &got, &want, 1e-6, 1e-6);
    for slot in 0..2 {
        let (mean, var, c) = summarize(&got[3 * slot..3 * slot + 3]);
        let want_mean = s64[slot] / count[slot] as f64;
        println!(
            "slot {slot}: firing rate {mean:.5} (f64 {want_mean:.5}), var {var:.5}, count {c}"
        );
        assert_eq!(c, count[slot] as f64);
        assert_eq!(
            got[3 * slot],
            s64[slot] as f32,
            "spike counts are exact small integers"
        );
        // spikes: sum_sq == sum, var = p(1-p)
        assert!((var - want_mean * (1.0 - want_mean)).abs() < 1e-6);
    }
}

#[test]
fn moments_rejects_bad_shapes() {
    let Some(ctx) = gpu() else { return };
    let moments = Moments::new(&ctx).unwrap();
    let (x, small) = (zeros(&ctx, 10_000), zeros(&ctx, 2));
    let (scratch, summary) = (zeros(&ctx, Moments::partials_len(10_000)), zeros(&ctx, 6));
    let mut enc = ctx.encoder("test");
    assert_err_contains(
        moments.dispatch(&ctx, &mut enc, &x, &small, &summary, 0, false),
        "partials_scratch",
    );
    assert_err_contains(
        moments.dispatch(&ctx, &mut enc, &x, &scratch, &summary, 2, false),
        "slot 2",
    );
}
