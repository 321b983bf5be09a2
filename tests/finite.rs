//! `count_nonfinite` against its CPU mirror: NaN, +-inf, and the finite values next to them
//! (largest finite, subnormals, -0) on awkward sizes, several tensors sharing one counts buffer.

#![allow(clippy::unwrap_used)]

mod common;

use bitspike::cpu;
use bitspike::kernels::finite::{CountNonFinite, FiniteParams};
use common::*;
use rand::Rng;

#[test]
fn count_nonfinite_matches_cpu_reference() {
    let Some(ctx) = gpu() else { return };
    let kernel = CountNonFinite::new(&ctx).unwrap();
    let mut r = rng(31);
    let specials = [
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::MAX,
        f32::MIN,
        f32::MIN_POSITIVE / 4.0,
        -0.0,
        f32::from_bits(0x7fc0_1234), // a NaN with payload
        f32::from_bits(0xff80_0001), // a signalling-pattern NaN, sign bit set
    ];
    let mut sizes = vec![1usize, 255, 256, 257];
    sizes.extend(awkward_sizes(256, 300_007));
    let tensors: Vec<Vec<f32>> = sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            let mut v = uniform(&mut r, n, -3.0, 3.0);
            // Tensor 0 stays clean: a zero count must stay zero.
            if i > 0 {
                for _ in 0..r.random_range(1..6) {
                    let at = r.random_range(0..n);
                    v[at] = specials[r.random_range(0..specials.len())];
                }
                v[n - 1] = specials[i % specials.len()];
            }
            v
        })
        .collect();
    let counts = zeros::<u32>(&ctx, tensors.len());
    let mut want = vec![0u32; tensors.len()];
    let buffers: Vec<_> = tensors.iter().map(|t| upload(&ctx, t)).collect();
    record(&ctx, |enc| {
        for (slot, (t, b)) in tensors.iter().zip(&buffers).enumerate() {
            let params = FiniteParams::new(t.len(), slot);
            cpu::finite::count_nonfinite(&params, t, &mut want);
            kernel.dispatch(&ctx, enc, &params, b, &counts)?;
        }
        Ok::<_, bitspike::gpu::GpuError>(())
    });
    assert_eq!(want[0], 0);
    assert!(want.iter().sum::<u32>() > 0, "the mirror saw the injected NaNs");
    assert_exact("count_nonfinite", &read(&ctx, &counts), &want);
}

#[test]
fn count_nonfinite_refuses_bad_arguments() {
    let Some(ctx) = gpu() else { return };
    let kernel = CountNonFinite::new(&ctx).unwrap();
    let values = upload(&ctx, &[1.0f32; 8]);
    let counts = zeros::<u32>(&ctx, 2);
    let mut enc = ctx.encoder("bad");
    assert_err_contains(
        kernel.dispatch(&ctx, &mut enc, &FiniteParams::new(9, 0), &values, &counts),
        "values",
    );
    assert_err_contains(
        kernel.dispatch(&ctx, &mut enc, &FiniteParams::new(8, 2), &values, &counts),
        "slot 2",
    );
}
