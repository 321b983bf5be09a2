//! `residual_add` and `accumulate` against their CPU mirrors (bit-exact: one f32 add per
//! element on both sides), at workgroup edges and a large size, plus aliasing and length errors.

// Shared helpers below panic on GPU errors like the #[test] fns do (clippy.toml allows
// unwrap in tests but not in helper fns of integration-test crates).
#![allow(clippy::unwrap_used)]

mod common;

use bitspike::cpu;
use bitspike::gpu::GpuBuffer;
use bitspike::kernels::elementwise::{Accumulate, ElementwiseParams, ResidualAdd};
use common::*;

#[test]
fn residual_add_matches_cpu_reference() {
    let Some(ctx) = gpu() else { return };
    let add = ResidualAdd::new(&ctx).unwrap();
    let mut r = rng(31);
    for len in awkward_sizes(256, 256 * 64 * 196 + 3) {
        let params = ElementwiseParams::new(len);
        let a = uniform(&mut r, len, -2.0, 2.0);
        let b = spikes(&mut r, len, 0.3);
        let mut want = vec![0.0; len];
        cpu::elementwise::residual_add(&params, &a, &b, &mut want);
        let (ab, bb) = (
            GpuBuffer::from_slice(&ctx, &a, "a").unwrap(),
            GpuBuffer::from_slice(&ctx, &b, "b").unwrap(),
        );
        let out = GpuBuffer::<f32>::zeros(&ctx, len, "out").unwrap();
        let mut enc = ctx.encoder("test");
        add.dispatch(&ctx, &mut enc, &params, &ab, &bb, &out)
            .unwrap();
        ctx.submit(enc);
        assert_exact(
            &format!("residual_add len={len}"),
            &out.read_blocking(&ctx).unwrap(),
            &want,
        );
    }
}

#[test]
fn accumulate_matches_cpu_reference() {
    let Some(ctx) = gpu() else { return };
    let acc = Accumulate::new(&ctx).unwrap();
    let mut r = rng(32);
    for len in awkward_sizes(256, 1_000_003) {
        let params = ElementwiseParams::new(len);
        let src = uniform(&mut r, len, -1.0, 1.0);
        let dst = uniform(&mut r, len, -1.0, 1.0);
        let mut want = dst.clone();
        cpu::elementwise::accumulate(&params, &src, &mut want);
        let sb = GpuBuffer::from_slice(&ctx, &src, "src").unwrap();
        let db = GpuBuffer::from_slice(&ctx, &dst, "dst").unwrap();
        let mut enc = ctx.encoder("test");
        // Twice in one encoder: the second must see the first's result.
        acc.dispatch(&ctx, &mut enc, &params, &sb, &db).unwrap();
        acc.dispatch(&ctx, &mut enc, &params, &sb, &db).unwrap();
        ctx.submit(enc);
        cpu::elementwise::accumulate(&params, &src, &mut want);
        assert_exact(
            &format!("accumulate x2 len={len}"),
            &db.read_blocking(&ctx).unwrap(),
            &want,
        );
    }
}

#[test]
fn elementwise_rejects_bad_buffers() {
    let Some(ctx) = gpu() else { return };
    let (add, acc) = (
        ResidualAdd::new(&ctx).unwrap(),
        Accumulate::new(&ctx).unwrap(),
    );
    let a = GpuBuffer::<f32>::zeros(&ctx, 10, "a").unwrap();
    let b = GpuBuffer::<f32>::zeros(&ctx, 10, "b").unwrap();
    let short = GpuBuffer::<f32>::zeros(&ctx, 9, "short").unwrap();
    let params = ElementwiseParams::new(10);
    let mut enc = ctx.encoder("test");
    let err = add
        .dispatch(&ctx, &mut enc, &params, &a, &b, &short)
        .unwrap_err();
    println!("{err}");
    assert!(err
        .to_string()
        .contains("`out` has 9 elements, expected 10"));
    let err = add
        .dispatch(&ctx, &mut enc, &params, &a, &b, &a)
        .unwrap_err();
    println!("{err}");
    assert!(err.to_string().contains("aliases"));
    let err = acc.dispatch(&ctx, &mut enc, &params, &a, &a).unwrap_err();
    println!("{err}");
    assert!(err.to_string().contains("same buffer"));
}
