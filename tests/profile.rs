//! The kernel profile (`gpu::profile`, `bench e2e --kernels`): every dispatch recorded while a
//! profile is open is counted under its kernel's name with a GPU time, results unchanged;
//! nothing is counted once it is closed; an adapter without timestamp queries refuses.

#![allow(clippy::unwrap_used)]

mod common;

use bitspike::cpu;
use bitspike::kernels::elementwise::{Accumulate, ElementwiseParams, ResidualAdd};
use common::*;

#[test]
fn profile_counts_every_dispatch_by_kernel() {
    let Some(ctx) = gpu() else { return };
    if !ctx.features.contains(wgpu::Features::TIMESTAMP_QUERY) {
        assert!(
            ctx.start_profile().is_err(),
            "no timestamps, yet a profile opened"
        );
        return;
    }
    let (add, acc) = (
        ResidualAdd::new(&ctx).unwrap(),
        Accumulate::new(&ctx).unwrap(),
    );
    let mut r = rng(71);
    let len = 1 << 22;
    let params = ElementwiseParams::new(len);
    let a = uniform(&mut r, len, -1.0, 1.0);
    let b = uniform(&mut r, len, -1.0, 1.0);
    let (ab, bb, out) = (upload(&ctx, &a), upload(&ctx, &b), zeros::<f32>(&ctx, len));
    assert!(
        ctx.finish_profile().is_err(),
        "closed a profile never opened"
    );

    ctx.start_profile().unwrap();
    record(&ctx, |enc| {
        for _ in 0..3 {
            add.dispatch(&ctx, enc, &params, &ab, &bb, &out)?;
        }
        acc.dispatch(&ctx, enc, &params, &ab, &bb)
    });
    let rows = ctx.finish_profile().unwrap();
    let find = |name: &str| rows.iter().find(|k| k.kernel == name).unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(find("residual_add").calls, 3);
    assert_eq!(find("accumulate").calls, 1);
    // Three passes over 48 MiB take time on any device; none is negative or NaN.
    assert!(find("residual_add").ms > 0.0, "{rows:?}");
    assert!(rows.iter().all(|k| k.ms.is_finite() && k.ms >= 0.0));

    // Results are what they are without the profile.
    let mut want = vec![0.0; len];
    cpu::elementwise::residual_add(&params, &a, &b, &mut want);
    assert_exact("residual_add (profiled)", &read(&ctx, &out), &want);
    let mut want_b = b.clone();
    cpu::elementwise::accumulate(&params, &a, &mut want_b);
    assert_exact("accumulate (profiled)", &read(&ctx, &bb), &want_b);

    // Closed: later dispatches are not timed, and a second close has nothing to close.
    record(&ctx, |enc| add.dispatch(&ctx, enc, &params, &ab, &bb, &out));
    assert!(ctx.finish_profile().is_err());
}
