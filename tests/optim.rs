//! `sgd_step` / `adam_step` against their CPU mirrors over several steps at awkward sizes, and
//! against values worked out by hand (PyTorch's update rules in f64) for two steps on a
//! two-element tensor.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

mod common;

use bitspike::cpu;
use bitspike::gpu::GpuContext;
use bitspike::kernels::optim::{AdamConfig, AdamParams, AdamStep, SgdConfig, SgdParams, SgdStep};
use common::*;

/// A per-step learning rate, as a host-side cosine schedule would produce.
fn lr_at(base: f32, step: usize) -> f32 {
    base * (0.5 + 0.5 * (step as f32 * 0.7).cos())
}

fn sgd_configs() -> Vec<(SgdConfig, f32)> {
    let base = SgdConfig::default();
    vec![
        (base, base.weight_decay),
        (
            SgdConfig {
                nesterov: true,
                ..base
            },
            base.weight_decay,
        ),
        (base, 0.0), // a BN parameter or bias: no decay
        (
            SgdConfig {
                momentum: 0.0,
                ..base
            },
            5e-4,
        ),
    ]
}

/// Runs `steps` SGD steps on the GPU with fresh gradients each step; returns (w, buf).
fn sgd_gpu(
    ctx: &GpuContext,
    params: &[SgdParams],
    w0: &[f32],
    grads: &[Vec<f32>],
) -> (Vec<f32>, Vec<f32>) {
    let kernel = SgdStep::new(ctx).unwrap();
    let (w, buf, g) = (upload(ctx, w0), zeros(ctx, w0.len()), zeros(ctx, w0.len()));
    for (p, grad) in params.iter().zip(grads) {
        g.write(ctx, grad).unwrap();
        record(ctx, |enc| kernel.dispatch(ctx, enc, p, &w, &g, &buf));
    }
    (read(ctx, &w), read(ctx, &buf))
}

type AdamState = (Vec<f32>, Vec<f32>, Vec<f32>);

fn adam_gpu(ctx: &GpuContext, params: &[AdamParams], w0: &[f32], grads: &[Vec<f32>]) -> AdamState {
    let kernel = AdamStep::new(ctx).unwrap();
    let w = upload(ctx, w0);
    let (m, v, g) = (
        zeros(ctx, w0.len()),
        zeros(ctx, w0.len()),
        zeros(ctx, w0.len()),
    );
    for (p, grad) in params.iter().zip(grads) {
        g.write(ctx, grad).unwrap();
        record(ctx, |enc| kernel.dispatch(ctx, enc, p, &w, &g, &m, &v));
    }
    (read(ctx, &w), read(ctx, &m), read(ctx, &v))
}

#[test]
fn sgd_step_matches_cpu_reference() {
    let Some(ctx) = gpu() else { return };
    let mut r = rng(31);
    for (config, wd) in sgd_configs() {
        for len in awkward_sizes(256, 105_418) {
            let steps = 5;
            let params: Vec<SgdParams> = (0..steps)
                .map(|s| SgdParams::new(&config, len, lr_at(SgdConfig::DEFAULT_LR, s), wd))
                .collect();
            let w0 = uniform(&mut r, len, -1.0, 1.0);
            let grads: Vec<Vec<f32>> = (0..steps)
                .map(|_| uniform(&mut r, len, -0.5, 0.5))
                .collect();
            let (mut w, mut buf) = (w0.clone(), vec![0.0; len]);
            for (p, g) in params.iter().zip(&grads) {
                cpu::optim::sgd_step(p, &mut w, g, &mut buf);
            }
            let (gw, gbuf) = sgd_gpu(&ctx, &params, &w0, &grads);
            let tag = format!("sgd_step {config:?} wd={wd} len={len} after {steps} steps");
            assert_close(&format!("{tag} weights"), &gw, &w, 1e-6, 1e-6);
            assert_close(&format!("{tag} momentum"), &gbuf, &buf, 1e-6, 1e-6);
        }
    }
}

#[test]
fn adam_step_matches_cpu_reference() {
    let Some(ctx) = gpu() else { return };
    let mut r = rng(32);
    let base = AdamConfig::default();
    for (config, wd) in [
        (base, 0.0),
        (base, 1e-2),
        (
            AdamConfig {
                beta1: 0.8,
                beta2: 0.99,
                eps: 1e-6,
                ..base
            },
            1e-4,
        ),
    ] {
        for len in awkward_sizes(256, 105_418) {
            let steps = 5;
            let params: Vec<AdamParams> = (0..steps)
                .map(|s| {
                    AdamParams::new(
                        &config,
                        len,
                        s as u32 + 1,
                        lr_at(AdamConfig::DEFAULT_LR, s),
                        wd,
                    )
                })
                .collect();
            let w0 = uniform(&mut r, len, -1.0, 1.0);
            let grads: Vec<Vec<f32>> = (0..steps)
                .map(|_| uniform(&mut r, len, -0.5, 0.5))
                .collect();
            let (mut w, mut m, mut v) = (w0.clone(), vec![0.0; len], vec![0.0; len]);
            for (p, g) in params.iter().zip(&grads) {
                cpu::optim::adam_step(p, &mut w, g, &mut m, &mut v);
            }
            let (gw, gm, gv) = adam_gpu(&ctx, &params, &w0, &grads);
            let tag = format!("adam_step {config:?} wd={wd} len={len} after {steps} steps");
            assert_close(&format!("{tag} weights"), &gw, &w, 1e-6, 1e-6);
            assert_close(&format!("{tag} exp_avg"), &gm, &m, 1e-5, 1e-7);
            assert_close(&format!("{tag} exp_avg_sq"), &gv, &v, 1e-5, 1e-9);
        }
    }
}

// Two steps on w = [1, -0.5] with gradients [0.2, -0.1] then [0.1, 0.3], weight decay 0.01.
const W0: [f32; 2] = [1.0, -0.5];
const G1: [f32; 2] = [0.2, -0.1];
const G2: [f32; 2] = [0.1, 0.3];

/// SGD lr 0.1, momentum 0.9, weight decay 0.01. Step 1: g' = [0.21, -0.105], buf = g',
/// w = [0.979, -0.4895]. Step 2: g' = [0.10979, 0.295105], buf = 0.9 buf + g' =
/// [0.29879, 0.200605], w = [0.949121, -0.5095605]. Nesterov: step 1 d = g' + 0.9 g' gives
/// w = [0.9601, -0.48005]; step 2 g' = [0.109601, 0.2951995], buf = [0.298601, 0.2006995],
/// d = [0.3783419, 0.47582905], w = [0.92226581, -0.527632905].
#[test]
fn sgd_step_matches_hand_computed_two_steps() {
    let grads = vec![G1.to_vec(), G2.to_vec()];
    for (nesterov, want_w, want_buf) in [
        (false, [0.949121f32, -0.5095605], [0.29879f32, 0.200605]),
        (true, [0.922_265_8, -0.527_632_9], [0.298601, 0.2006995]),
    ] {
        let config = SgdConfig {
            momentum: 0.9,
            weight_decay: 0.01,
            nesterov,
        };
        let params = vec![SgdParams::new(&config, 2, 0.1, 0.01); 2];
        let (mut w, mut buf) = (W0.to_vec(), vec![0.0; 2]);
        for (p, g) in params.iter().zip(&grads) {
            cpu::optim::sgd_step(p, &mut w, g, &mut buf);
        }
        assert_close(
            &format!("cpu sgd nesterov={nesterov} weights"),
            &w,
            &want_w,
            1e-6,
            1e-7,
        );
        assert_close(
            &format!("cpu sgd nesterov={nesterov} momentum"),
            &buf,
            &want_buf,
            1e-6,
            1e-7,
        );
        if let Some(ctx) = gpu() {
            let (gw, gbuf) = sgd_gpu(&ctx, &params, &W0, &grads);
            assert_close(
                &format!("gpu sgd nesterov={nesterov} weights"),
                &gw,
                &want_w,
                1e-6,
                1e-7,
            );
            assert_close(
                &format!("gpu sgd nesterov={nesterov} momentum"),
                &gbuf,
                &want_buf,
                1e-6,
                1e-7,
            );
        }
    }
}

/// Adam lr 0.01, betas 0.9/0.999, eps 1e-8, weight decay 0.01 (added to the gradient).
/// Step 1: g' = [0.21, -0.105], m = 0.1 g', v = 0.001 g'^2; bias-corrected m/sqrt(v) = sign(g'),
/// so w = w - lr * sign(g') = [0.99, -0.49] (to 1e-9, the eps). Step 2: g' = [0.1099, 0.2951],
/// m = [0.02989, 0.02006], v = [5.6133910e-5, 9.8097985e-5], step size lr / 0.19, bias
/// correction sqrt(0.001999): w = [0.98061215, -0.49476600].
#[test]
fn adam_step_matches_hand_computed_two_steps() {
    let grads = vec![G1.to_vec(), G2.to_vec()];
    let config = AdamConfig {
        weight_decay: 0.01,
        ..AdamConfig::default()
    };
    let params: Vec<AdamParams> = (1..=2)
        .map(|t| AdamParams::new(&config, 2, t, 0.01, 0.01))
        .collect();
    let want_w1 = [0.99f32, -0.49];
    let want_w = [0.980_612_15f32, -0.494_766];
    let want_m = [0.02989f32, 0.02006];
    let want_v = [5.613_391e-5f32, 9.809_798e-5];
    let (mut w, mut m, mut v) = (W0.to_vec(), vec![0.0; 2], vec![0.0; 2]);
    cpu::optim::adam_step(&params[0], &mut w, &G1, &mut m, &mut v);
    assert_close("cpu adam step 1 weights", &w, &want_w1, 1e-6, 1e-7);
    cpu::optim::adam_step(&params[1], &mut w, &G2, &mut m, &mut v);
    assert_close("cpu adam step 2 weights", &w, &want_w, 1e-6, 1e-7);
    assert_close("cpu adam step 2 exp_avg", &m, &want_m, 1e-5, 1e-9);
    assert_close("cpu adam step 2 exp_avg_sq", &v, &want_v, 1e-5, 1e-12);
    if let Some(ctx) = gpu() {
        let (gw, gm, gv) = adam_gpu(&ctx, &params, &W0, &grads);
        assert_close("gpu adam step 2 weights", &gw, &want_w, 1e-6, 1e-7);
        assert_close("gpu adam step 2 exp_avg", &gm, &want_m, 1e-5, 1e-9);
        assert_close("gpu adam step 2 exp_avg_sq", &gv, &want_v, 1e-5, 1e-12);
    }
}

#[test]
fn optimizers_reject_bad_shapes() {
    let Some(ctx) = gpu() else { return };
    let (a, b) = (zeros(&ctx, 10), zeros(&ctx, 9));
    let mut enc = ctx.encoder("test");
    let sgd = SgdParams::new(&SgdConfig::default(), 10, 0.1, 0.0);
    assert_err_contains(
        SgdStep::new(&ctx)
            .unwrap()
            .dispatch(&ctx, &mut enc, &sgd, &a, &a, &b),
        "`momentum` has 9 elements, expected len = 10",
    );
    let adam = AdamStep::new(&ctx).unwrap();
    let p = AdamParams::new(&AdamConfig::default(), 10, 1, 1e-3, 0.0);
    assert!(adam.dispatch(&ctx, &mut enc, &p, &a, &b, &a, &a).is_err());
    let p0 = AdamParams { step: 0, ..p };
    assert_err_contains(
        adam.dispatch(&ctx, &mut enc, &p0, &a, &a, &a, &a),
        "step count",
    );
}
