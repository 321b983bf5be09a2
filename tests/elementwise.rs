//! `residual_add` and `accumulate` against their CPU mirrors (bit-exact: one f32 add per
//! element on both sides), at workgroup edges and a large size, plus aliasing and length errors.

// Shared helpers below panic on GPU errors like the #[test] fns do (clippy.toml allows
// unwrap in tests but not in helper fns of integration-test crates).
#![allow(clippy::unwrap_used)]

mod common;

use bitspike::cpu;
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
        let (ab, bb, out) = (upload(&ctx, &a), upload(&ctx, &b), zeros::<f32>(&ctx, len));
        record(&ctx, |enc| add.dispatch(&ctx, enc, &params, &ab, &bb, &out));
        assert_exact(&format!("residual_add len={len}"), &read(&ctx, &out), &want);
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
        let (sb, db) = (upload(&ctx, &src), upload(&ctx, &dst));
        // Twice in one encoder: the second must see the first's result.
        record(&ctx, |enc| {
            acc.dispatch(&ctx, enc, &params, &sb, &db)?;
            acc.dispatch(&ctx, enc, &params, &sb, &db)
        });
        cpu::elementwise::accumulate(&params, &src, &mut want);
        assert_exact(&format!("accumulate x2 len={len}"), &read(&ctx, &db), &want);
    }
}

#[test]
fn elementwise_rejects_bad_buffers() {
    let Some(ctx) = gpu() else { return };
    let (add, acc) = (
        ResidualAdd::new(&ctx).unwrap(),
        Accumulate::new(&ctx).unwrap(),
    );
    let (a, b, short) = (zeros(&ctx, 10), zeros(&ctx, 10), zeros(&ctx, 9));
    let params = ElementwiseParams::new(10);
    let mut enc = ctx.encoder("test");
    assert_err_contains(
        add.dispatch(&ctx, &mut enc, &params, &a, &b, &short),
        "`out` has 9 elements, expected 10",
    );
    assert_err_contains(add.dispatch(&ctx, &mut enc, &params, &a, &b, &a), "aliases");
    assert_err_contains(acc.dispatch(&ctx, &mut enc, &params, &a, &a), "same buffer");
}
