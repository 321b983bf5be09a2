//! Batched GEMM, both variants (register-blocked and shared-tiled, constructed explicitly
//! whatever the adapter), against the f64-accumulating CPU mirror over awkward sizes, all four
//! transpose combinations, batch strides (including shared A), offsets, accumulate and
//! reduce_batch.

// Tests fail by panicking; unwrap is the clearest way to say "this must succeed".
#![allow(clippy::unwrap_used)]

mod common;

use bitspike::cpu;
use bitspike::gpu::{GpuContext, KernelVariant};
use bitspike::kernels::gemm::{Gemm, GemmShape};
use common::*;

const VARIANTS: [KernelVariant; 2] = [KernelVariant::RegisterBlocked, KernelVariant::SharedTiled];
const TRANSPOSES: [(bool, bool); 4] = [(false, false), (true, false), (false, true), (true, true)];

/// Runs one GEMM on the GPU and the CPU from the same random inputs (C pre-filled with random
/// values so that accumulate and overwrite are both visible) and compares.
fn check(ctx: &GpuContext, gemm: &Gemm, shape: &GemmShape, seed: u64) {
    let mut r = rng(seed);
    let [la, lb, lc] = shape.required_lens();
    let a = uniform(&mut r, la, -1.0, 1.0);
    let b = uniform(&mut r, lb, -1.0, 1.0);
    let c0 = uniform(&mut r, lc, -1.0, 1.0);
    let mut want = c0.clone();
    cpu::gemm::gemm(shape, &a, &b, &mut want);
    let (ga, gb, gc) = (upload(ctx, &a), upload(ctx, &b), upload(ctx, &c0));
    record(ctx, |enc| gemm.dispatch(ctx, enc, shape, &ga, &gb, &gc));
    let got = read(ctx, &gc);
    let terms = (shape.k * if shape.reduce_batch { shape.batch } else { 1 }) as f32;
    // f32 accumulation of `terms` products of magnitude <= 1: error grows like sqrt(terms) ulps.
    let abs = 1e-6 * terms.sqrt().max(1.0) * 4.0;
    assert_close(
        &format!(
            "gemm {:?} b={} m={} n={} k={} tA={} tB={} acc={} reduce={}",
            gemm.variant(),
            shape.batch,
            shape.m,
            shape.n,
            shape.k,
            shape.trans_a,
            shape.trans_b,
            shape.accumulate,
            shape.reduce_batch
        ),
        &got,
        &want,
        1e-5,
        abs,
    );
}

/// `check`s every shape that `shapes(trans_a, trans_b)` lists, in both variants and all four
/// transpose combinations, seeding each check with the next seed after `seed`.
fn check_all_variants_and_transposes(mut seed: u64, shapes: impl Fn(bool, bool) -> Vec<GemmShape>) {
    let Some(ctx) = gpu() else { return };
    for variant in VARIANTS {
        let gemm = Gemm::with_variant(&ctx, variant).unwrap();
        for (ta, tb) in TRANSPOSES {
            for shape in shapes(ta, tb) {
                seed += 1;
                check(&ctx, &gemm, &shape, seed);
            }
        }
    }
}

#[test]
fn gemm_matches_cpu_reference() {
    let sizes = [1usize, 7, 8, 9, 63, 64, 65, 130];
    let mut triples = Vec::new();
    for &s in &sizes {
        triples.push((s, 9, 7));
        triples.push((7, s, 9));
        triples.push((9, 7, s));
    }
    triples.extend([
        (63, 65, 130),
        (65, 64, 63),
        (130, 1, 65),
        (64, 64, 64),
        (301, 290, 307),
    ]);
    check_all_variants_and_transposes(0, |ta, tb| {
        triples
            .iter()
            .map(|&(m, n, k)| GemmShape::new(m, n, k).transpose(ta, tb))
            .collect()
    });
}

#[test]
fn gemm_batched_accumulate_and_reduce_match_cpu_reference() {
    check_all_variants_and_transposes(1000, |ta, tb| {
        let mut shapes = Vec::new();
        for &(m, n, k) in &[(9usize, 65usize, 7usize), (65, 7, 66), (1, 130, 9)] {
            for &(accumulate, reduce) in
                &[(false, false), (true, false), (false, true), (true, true)]
            {
                let batch = 3;
                // Shared A (stride 0, like conv weights), padded strides and offsets elsewhere.
                shapes.push(
                    GemmShape::new(m, n, k)
                        .transpose(ta, tb)
                        .batched(batch, 0, k * n + 5, m * n + 3)
                        .offsets(2, 11, 1)
                        .accumulate(accumulate)
                        .reduce_batch(reduce),
                );
                // And with every operand strided.
                shapes.push(
                    GemmShape::new(m, n, k)
                        .transpose(ta, tb)
                        .batched(batch, m * k, k * n, m * n)
                        .accumulate(accumulate)
                        .reduce_batch(reduce),
                );
            }
        }
        shapes
    });
}

#[test]
fn gemm_rejects_short_buffers() {
    let Some(ctx) = gpu() else { return };
    let gemm = Gemm::new(&ctx).unwrap();
    let (a, b, c) = (zeros(&ctx, 6), zeros(&ctx, 6), zeros(&ctx, 3));
    let mut enc = ctx.encoder("test");
    assert_err_contains(
        gemm.dispatch(&ctx, &mut enc, &GemmShape::new(2, 2, 3), &a, &b, &c),
        "`c` has 3 elements",
    );
}

/// Shapes whose operands are 4-aligned along their contiguous dimension take the register
/// variant's vec4 fetch paths (one per transpose combination); mixed and odd shapes the
/// element-wise path. Conv-like sizes (K = 196, 288) and aligned batch strides and offsets.
#[test]
fn gemm_vec4_paths_match_cpu_reference() {
    check_all_variants_and_transposes(5000, |ta, tb| {
        let mut shapes = Vec::new();
        for &(m, n, k) in &[
            (4usize, 4usize, 4usize),
            (12, 20, 16),
            (64, 196, 288),
            (288, 196, 64),
            (60, 36, 196),
            (8, 12, 7),
        ] {
            shapes.push(GemmShape::new(m, n, k).transpose(ta, tb));
            shapes.push(
                GemmShape::new(m, n, k)
                    .transpose(ta, tb)
                    .batched(3, m * k + 4, k * n + 8, m * n)
                    .offsets(4, 12, 0)
                    .reduce_batch(true)
                    .accumulate(true),
            );
        }
        shapes
    });
}

/// A summed batch whose K loops come to more than the 65,535 loop passes lavapipe runs per
/// invocation (`gpu::MAX_LOOP_ITERATIONS`; conv1's weight gradient at a batch of 512): the
/// GEMM splits the batch over accumulating dispatches. In one dispatch the sums came back
/// short.
#[test]
fn gemm_reduced_batch_past_the_loop_limit_matches_cpu_reference() {
    let Some(ctx) = gpu() else { return };
    let gemm = Gemm::with_variant(&ctx, KernelVariant::RegisterBlocked).unwrap();
    for (seed, accumulate) in [(7001, false), (7002, true)] {
        let (m, n, k, batch) = (8, 9, 784, 400);
        let shape = GemmShape::new(m, n, k)
            .transpose(false, true)
            .batched(batch, m * k, n * k, 0)
            .reduce_batch(true)
            .accumulate(accumulate);
        check(&ctx, &gemm, &shape, seed);
    }
}
