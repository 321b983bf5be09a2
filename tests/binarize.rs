//! `binarize_forward` / `binarize_backward` against their CPU mirrors, the formulas of docs/method.md §3
//! (section 3) computed independently in f64, and central finite differences.

// Helpers outside #[test] fns unwrap too: a failed GPU call is a test failure.
#![allow(clippy::unwrap_used)]

mod common;

use bitspike::cpu;
use bitspike::gpu::GpuContext;
use bitspike::kernels::binarize::{BinarizeBackward, BinarizeForward, BinarizeParams};
use bitspike::rng::SeededRng;
use common::*;

/// Runs `binarize_forward` on the GPU: returns (W_b, gamma).
fn gpu_forward(ctx: &GpuContext, params: &BinarizeParams, latent: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let fwd = BinarizeForward::new(ctx).unwrap();
    let w = upload(ctx, latent);
    let (wb, gamma) = (
        zeros(ctx, params.numel()),
        zeros(ctx, params.out_channels as usize),
    );
    record(ctx, |enc| fwd.dispatch(ctx, enc, params, &w, &wb, &gamma));
    (read(ctx, &wb), read(ctx, &gamma))
}

/// Runs `binarize_backward` on the GPU: returns dL/dW.
fn gpu_backward(
    ctx: &GpuContext,
    bwd: &BinarizeBackward,
    params: &BinarizeParams,
    latent: &[f32],
    gamma: &[f32],
    grad_wb: &[f32],
) -> Vec<f32> {
    let (w, gb, gwb) = (
        upload(ctx, latent),
        upload(ctx, gamma),
        upload(ctx, grad_wb),
    );
    let gw = zeros(ctx, params.numel());
    record(ctx, |enc| {
        bwd.dispatch(ctx, enc, params, &w, &gb, &gwb, &gw)
    });
    read(ctx, &gw)
}

/// Every (C_out, K) with C_out from `c_outs` and K at workgroup edges up to `large`.
fn cases(c_outs: &[usize], large: usize) -> Vec<(usize, usize)> {
    c_outs
        .iter()
        .flat_map(|&c_out| {
            awkward_sizes(64, large)
                .into_iter()
                .map(move |k| (c_out, k))
        })
        .collect()
}

/// `len` latent weights uniform in `[-range, range)`, the first ones (as many as fit)
/// overwritten with `edges`.
fn latent_with_edges(r: &mut SeededRng, len: usize, range: f32, edges: [f32; 2]) -> Vec<f32> {
    let mut latent = uniform(r, len, -range, range);
    for (w, e) in latent.iter_mut().zip(edges) {
        *w = e;
    }
    latent
}

#[test]
fn binarize_forward_matches_cpu_reference() {
    let Some(ctx) = gpu() else { return };
    let mut r = rng(11);
    for (c_out, k) in cases(&[1, 3, 64], 4_801) {
        let params = BinarizeParams::new(c_out, k);
        // exact zeros of both signs must binarize to +gamma
        let latent = latent_with_edges(&mut r, c_out * k, 1.5, [0.0, -0.0]);
        let (mut want_wb, mut want_g) = (vec![0.0; c_out * k], vec![0.0; c_out]);
        cpu::binarize::binarize_forward(&params, &latent, &mut want_wb, &mut want_g);
        let (wb, g) = gpu_forward(&ctx, &params, &latent);
        let tag = format!("binarize_forward C_out={c_out} K={k}");
        assert_close(&format!("{tag} gamma"), &g, &want_g, 1e-6, 1e-7);
        assert_close(&format!("{tag} W_b"), &wb, &want_wb, 1e-6, 1e-7);
        // signs bit-exact: +1 exactly where W >= 0 (including -0.0)
        let got_sign: Vec<bool> = wb.iter().map(|&v| v.is_sign_positive()).collect();
        let want_sign: Vec<bool> = latent.iter().map(|&v| v >= 0.0).collect();
        assert_exact(&format!("{tag} signs"), &got_sign, &want_sign);
    }
}

/// gamma and W_b from the formula of docs/method.md §3 in f64, independent of the mirror's summation order.
#[test]
fn binarize_forward_equals_spec_formula() {
    let Some(ctx) = gpu() else { return };
    let mut r = rng(12);
    let (c_out, k) = (5usize, 300usize);
    let params = BinarizeParams::new(c_out, k);
    let latent = uniform(&mut r, c_out * k, -2.0, 2.0);
    let (wb, g) = gpu_forward(&ctx, &params, &latent);
    let mut want_g = vec![0.0f32; c_out];
    let mut want_wb = vec![0.0f32; c_out * k];
    for c in 0..c_out {
        let row = &latent[c * k..(c + 1) * k];
        let gamma = row.iter().map(|&w| (w as f64).abs()).sum::<f64>() / k as f64;
        want_g[c] = gamma as f32;
        for (i, &w) in row.iter().enumerate() {
            want_wb[c * k + i] = (if w >= 0.0 { gamma } else { -gamma }) as f32;
        }
    }
    assert_close("gamma vs mean|W| (f64)", &g, &want_g, 1e-6, 0.0);
    assert_close("W_b vs gamma*sign(W) (f64)", &wb, &want_wb, 1e-6, 0.0);
}

/// All-zero rows: gamma = 0 and W_b = +0 (sign(0) = +1 scaled by 0), no NaN.
#[test]
fn binarize_forward_zero_row_gives_zero_gamma() {
    let Some(ctx) = gpu() else { return };
    let params = BinarizeParams::new(2, 3);
    let latent = [0.0, -0.0, 0.0, 1.0, -2.0, 0.0];
    let (wb, g) = gpu_forward(&ctx, &params, &latent);
    assert_exact("gamma", &g, &[0.0, 1.0]);
    assert_exact("W_b", &wb, &[0.0, 0.0, 0.0, 1.0, -1.0, 1.0]);
}

#[test]
fn binarize_backward_matches_cpu_reference() {
    let Some(ctx) = gpu() else { return };
    let bwd = BinarizeBackward::new(&ctx).unwrap();
    let mut r = rng(13);
    for (c_out, k) in cases(&[1, 7], 10_007) {
        let params = BinarizeParams::new(c_out, k);
        // the clip boundary |W| = 1 passes the gradient (<= 1)
        let latent = latent_with_edges(&mut r, c_out * k, 2.0, [1.0, -1.0]);
        let gamma = uniform(&mut r, c_out, 0.1, 1.0);
        let grad_wb = uniform(&mut r, c_out * k, -1.0, 1.0);
        let mut want = vec![0.0; c_out * k];
        cpu::binarize::binarize_backward(&params, &latent, &gamma, &grad_wb, &mut want);
        let got = gpu_backward(&ctx, &bwd, &params, &latent, &gamma, &grad_wb);
        // one multiply per element: bit-exact
        assert_exact(
            &format!("binarize_backward C_out={c_out} K={k}"),
            &got,
            &want,
        );
    }
}

/// The clipped STE written straight from docs/method.md §3, in f64: dL/dW = gamma_c * dL/dW_b * 1{|W| <= 1}.
#[test]
fn binarize_backward_equals_spec_ste() {
    let Some(ctx) = gpu() else { return };
    let bwd = BinarizeBackward::new(&ctx).unwrap();
    let mut r = rng(14);
    let (c_out, k) = (4usize, 257usize);
    let params = BinarizeParams::new(c_out, k);
    let latent = uniform(&mut r, c_out * k, -3.0, 3.0);
    let grad_wb = uniform(&mut r, c_out * k, -1.0, 1.0);
    let (_, gamma) = gpu_forward(&ctx, &params, &latent);
    let got = gpu_backward(&ctx, &bwd, &params, &latent, &gamma, &grad_wb);
    let mut want = vec![0.0f32; c_out * k];
    let mut passed = 0;
    for c in 0..c_out {
        let gamma_c = latent[c * k..(c + 1) * k]
            .iter()
            .map(|&v| (v as f64).abs())
            .sum::<f64>()
            / k as f64;
        for i in c * k..(c + 1) * k {
            if (latent[i] as f64).abs() <= 1.0 {
                want[i] = (gamma_c * grad_wb[i] as f64) as f32;
                passed += 1;
            }
        }
    }
    println!("{passed} of {} weights inside the clip |W| <= 1", c_out * k);
    assert!(
        passed > 0 && passed < c_out * k,
        "test data must exercise both sides of the clip"
    );
    assert_close(
        "binarize_backward vs spec STE (f64)",
        &got,
        &want,
        1e-6,
        1e-7,
    );
}

/// The clipped STE is the exact gradient of the proxy `gamma_c * clip(W, -1, 1)` with gamma
/// held constant (detached). Central differences of that proxy, in f64, away from the kinks.
#[test]
fn binarize_backward_matches_finite_differences() {
    let mut r = rng(15);
    let (c_out, k) = (3usize, 20usize);
    let params = BinarizeParams::new(c_out, k);
    let latent: Vec<f32> = uniform(&mut r, c_out * k, -2.0, 2.0)
        .into_iter()
        .map(|v| {
            if (v.abs() - 1.0).abs() < 0.01 {
                v * 0.9
            } else {
                v
            }
        })
        .collect();
    let upstream = uniform(&mut r, c_out * k, -1.0, 1.0);
    let (mut wb, mut gamma) = (vec![0.0; c_out * k], vec![0.0; c_out]);
    cpu::binarize::binarize_forward(&params, &latent, &mut wb, &mut gamma);
    let mut analytic = vec![0.0; c_out * k];
    cpu::binarize::binarize_backward(&params, &latent, &gamma, &upstream, &mut analytic);
    let gamma64 = to_f64(&gamma);
    let numeric = fd_gradient(&latent, 1e-4, |w| {
        w.iter()
            .enumerate()
            .map(|(i, &v)| upstream[i] as f64 * gamma64[i / k] * v.clamp(-1.0, 1.0))
            .sum()
    });
    assert_close(
        "binarize_backward vs finite differences of gamma*clip(W)",
        &analytic,
        &numeric,
        1e-4,
        1e-6,
    );
}

#[test]
fn binarize_rejects_bad_shapes() {
    let Some(ctx) = gpu() else { return };
    let fwd = BinarizeForward::new(&ctx).unwrap();
    let params = BinarizeParams::new(4, 10);
    let (w, wb, short) = (zeros(&ctx, 40), zeros(&ctx, 40), zeros(&ctx, 3));
    let mut enc = ctx.encoder("test");
    assert_err_contains(
        fwd.dispatch(&ctx, &mut enc, &params, &w, &wb, &short),
        "gamma",
    );
    let err = fwd
        .dispatch(&ctx, &mut enc, &BinarizeParams::new(4, 0), &w, &wb, &short)
        .unwrap_err();
    println!("{err}");
}
