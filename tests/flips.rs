//! `pack_signs` / `sign_flip_count` against their CPU mirrors and against a direct count of
//! `sign(W_a) != sign(W_b)` (docs/method.md §1), including the snapshot/reset workflow.

// Helpers outside #[test] fns unwrap too: a failed GPU call is a test failure.
#![allow(clippy::unwrap_used)]

mod common;

use bitspike::cpu;
use bitspike::gpu::{GpuBuffer, GpuContext};
use bitspike::kernels::flips::{
    flip_ratio, packed_words, FlipParams, PackSigns, PackSignsParams, SignFlipCount,
};
use common::*;

fn gpu_pack(ctx: &GpuContext, values: &[f32]) -> Vec<u32> {
    let pack = PackSigns::new(ctx).unwrap();
    let params = PackSignsParams::new(values.len());
    let (v, p) = (upload(ctx, values), zeros(ctx, packed_words(values.len())));
    record(ctx, |enc| pack.dispatch(ctx, enc, &params, &v, &p));
    read(ctx, &p)
}

#[test]
fn pack_signs_matches_cpu_reference() {
    let Some(ctx) = gpu() else { return };
    let mut r = rng(21);
    let mut sizes = vec![1usize, 31, 32, 33];
    sizes.extend(awkward_sizes(64 * 32, 1_000_003));
    for n in sizes {
        let mut values = uniform(&mut r, n, -1.0, 1.0);
        values[0] = -0.0;
        if n > 2 {
            values[1] = 0.0;
            values[2] = -f32::MIN_POSITIVE;
        }
        let params = PackSignsParams::new(n);
        let mut want = vec![0u32; params.words as usize];
        cpu::flips::pack_signs(&params, &values, &mut want);
        // independent check of the bit definition on the CPU mirror
        for (e, &v) in values.iter().enumerate() {
            assert_eq!((want[e / 32] >> (e % 32)) & 1 == 1, v >= 0.0, "bit {e}");
        }
        if n % 32 != 0 {
            assert_eq!(want[want.len() - 1] >> (n % 32), 0, "unused bits zero");
        }
        assert_exact(
            &format!("pack_signs numel={n}"),
            &gpu_pack(&ctx, &values),
            &want,
        );
    }
}

#[test]
fn sign_flip_count_matches_cpu_reference() {
    let Some(ctx) = gpu() else { return };
    let flips_kernel = SignFlipCount::new(&ctx).unwrap();
    let mut r = rng(22);
    // several layers sharing one counts buffer; word counts around the 256-word workgroup
    let layers = [
        1usize,
        33,
        255 * 32,
        256 * 32,
        256 * 32 + 1,
        36_864,
        1_000_003,
    ];
    let counts = zeros::<u32>(&ctx, layers.len() + 1);
    let mut want_counts = vec![0u32; layers.len() + 1];
    let mut direct = vec![0u32; layers.len() + 1];
    let mut keep = Vec::new();
    let mut enc = ctx.encoder("test");
    for (slot, &n) in layers.iter().enumerate() {
        let a = uniform(&mut r, n, -1.0, 1.0);
        // flip about 10% of the signs, and nudge others without crossing zero
        let b: Vec<f32> = a
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                if (i * 2_654_435_761) % 10 == 3 {
                    -v
                } else {
                    v * 0.5
                }
            })
            .collect();
        direct[slot] = a
            .iter()
            .zip(&b)
            .filter(|(x, y)| (**x >= 0.0) != (**y >= 0.0))
            .count() as u32;
        let (pa, pb) = (gpu_pack(&ctx, &a), gpu_pack(&ctx, &b));
        let params = FlipParams::new(n, slot);
        cpu::flips::sign_flip_count(&params, &pa, &pb, &mut want_counts);
        let (sa, sb) = (upload(&ctx, &pa), upload(&ctx, &pb));
        flips_kernel
            .dispatch(&ctx, &mut enc, &params, &sa, &sb, &counts)
            .unwrap();
        keep.push((sa, sb));
    }
    ctx.submit(enc);
    let got = read(&ctx, &counts);
    assert_exact(
        "sign_flip_count (GPU vs CPU mirror), one slot per layer",
        &got,
        &want_counts,
    );
    assert_exact(
        "sign_flip_count vs direct count of sign(a) != sign(b)",
        &got,
        &direct,
    );
    for (slot, &n) in layers.iter().enumerate() {
        println!(
            "layer {slot}: {} flips of {n}, pi = {:.4}",
            got[slot],
            flip_ratio(got[slot], n)
        );
    }
    assert_eq!(got[layers.len()], 0, "untouched slot stays zero");
}

/// The per-epoch workflow: count, snapshot, count again (zero flips), reset, flip one weight.
#[test]
fn sign_flip_count_snapshot_and_reset() {
    let Some(ctx) = gpu() else { return };
    let pack = PackSigns::new(&ctx).unwrap();
    let flips = SignFlipCount::new(&ctx).unwrap();
    let n = 1000usize;
    let params = PackSignsParams::new(n);
    let fparams = FlipParams::new(n, 1);
    let mut weights: Vec<f32> = (0..n).map(|i| i as f32 - 500.0).collect();
    let w = upload(&ctx, &weights);
    let current = zeros::<u32>(&ctx, params.words as usize);
    let snapshot = zeros::<u32>(&ctx, params.words as usize);
    let counts = zeros::<u32>(&ctx, 2);
    let step = |w: &GpuBuffer<f32>| {
        record(&ctx, |enc| {
            pack.dispatch(&ctx, enc, &params, w, &current)?;
            flips.dispatch(&ctx, enc, &fparams, &snapshot, &current, &counts)?;
            flips.snapshot(enc, &current, &snapshot)
        });
        read(&ctx, &counts)
    };
    // snapshot starts all-zero bits (all "negative"): the 500 weights >= 0 count as flips
    assert_exact("first epoch vs zero snapshot", &step(&w), &[0, 500]);
    assert_exact("unchanged weights add no flips", &step(&w), &[0, 500]);
    let mut enc = ctx.encoder("reset");
    flips.reset_counts(&mut enc, &counts);
    ctx.submit(enc);
    weights[0] = 3.0; // -500 -> +3
    weights[999] = -1.0; // +499 -> -1
    weights[10] = -7.0; // stays negative
    w.write(&ctx, &weights).unwrap();
    let got = step(&w);
    assert_exact("two flips after reset", &got, &[0, 2]);
    println!("pi = {}", flip_ratio(got[1], n));
    assert!((flip_ratio(got[1], n) - 0.002).abs() < 1e-12);
}

#[test]
fn sign_flip_count_rejects_bad_shapes() {
    let Some(ctx) = gpu() else { return };
    let flips = SignFlipCount::new(&ctx).unwrap();
    let (a, b, counts) = (zeros(&ctx, 4), zeros(&ctx, 5), zeros(&ctx, 2));
    let mut enc = ctx.encoder("test");
    assert_err_contains(
        flips.dispatch(&ctx, &mut enc, &FlipParams::new(128, 0), &a, &b, &counts),
        "current",
    );
    assert_err_contains(
        flips.dispatch(&ctx, &mut enc, &FlipParams::new(128, 2), &a, &a, &counts),
        "slot 2",
    );
    assert!(flips.snapshot(&mut enc, &a, &b).is_err());
}
