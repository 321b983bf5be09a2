//! `agmm_forward` / `agmm_backward` against their CPU mirrors, the `full` backward against
//! central finite differences of an independent f64 forward, and the `detached` / `off` modes
//! against their closed forms.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

mod common;

use bitspike::cpu;
use bitspike::gpu::GpuContext;
use bitspike::kernels::agmm::{
    AgmmAlpha, AgmmBackward, AgmmConfig, AgmmForward, AgmmMode, AgmmParams,
};
use bitspike::rng::SeededRng;
use common::*;

const TIMESTEPS: [usize; 4] = [1, 2, 4, 7];

fn configs() -> Vec<AgmmConfig> {
    let mut out = Vec::new();
    for mode in [AgmmMode::Full, AgmmMode::Detached, AgmmMode::Off] {
        for alpha in [AgmmAlpha::RunningMean, AgmmAlpha::Constant(0.3)] {
            out.push(AgmmConfig { mode, alpha });
        }
    }
    out
}

/// Every (config, T, N) of the CPU-reference sweeps, N at workgroup edges.
fn cases() -> Vec<(AgmmConfig, usize, usize)> {
    let mut out = Vec::new();
    for config in configs() {
        for &t in &TIMESTEPS {
            for n in awkward_sizes(64, 10_007) {
                out.push((config, t, n));
            }
        }
    }
    out
}

/// Runs both kernels on the GPU: returns (y, e, grad_x).
fn run_gpu(
    ctx: &GpuContext,
    params: &AgmmParams,
    x: &[f32],
    grad_y: &[f32],
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let len = x.len();
    let (xb, gy) = (upload(ctx, x), upload(ctx, grad_y));
    let (y, e, gx) = (zeros(ctx, len), zeros(ctx, len), zeros(ctx, len));
    let (fwd, bwd) = (
        AgmmForward::new(ctx).unwrap(),
        AgmmBackward::new(ctx).unwrap(),
    );
    record(ctx, |enc| {
        fwd.dispatch(ctx, enc, params, &xb, &y, &e)?;
        bwd.dispatch(ctx, enc, params, &xb, &e, &gy, &gx)
    });
    (read(ctx, &y), read(ctx, &e), read(ctx, &gx))
}

/// The CPU-reference sweep: for every case of `cases()`, draws `X` uniform in [-3, 3) from an
/// rng seeded `seed` and hands the GPU, that rng (for further inputs), the params, `X` and a
/// description of the case to `check`.
fn for_each_case(
    seed: u64,
    mut check: impl FnMut(&GpuContext, &mut SeededRng, &AgmmParams, &[f32], String),
) {
    let Some(ctx) = gpu() else { return };
    let mut r = rng(seed);
    for (config, t, n) in cases() {
        let params = AgmmParams::new(&config, t, n);
        let x = uniform(&mut r, t * n, -3.0, 3.0);
        check(&ctx, &mut r, &params, &x, format!("{config:?} T={t} N={n}"));
    }
}

#[test]
fn agmm_forward_matches_cpu_reference() {
    for_each_case(11, |ctx, _, params, x, case| {
        let (mut want_y, mut want_e) = (vec![0.0; x.len()], vec![0.0; x.len()]);
        cpu::agmm::agmm_forward(params, x, &mut want_y, &mut want_e);
        let (y, e, _) = run_gpu(ctx, params, x, x);
        let tag = format!("agmm_forward {case}");
        assert_close(&format!("{tag} y"), &y, &want_y, 1e-5, 1e-6);
        assert_close(&format!("{tag} e"), &e, &want_e, 1e-5, 1e-6);
    });
}

#[test]
fn agmm_backward_matches_cpu_reference() {
    for_each_case(12, |ctx, r, params, x, case| {
        let grad_y = uniform(r, x.len(), -1.0, 1.0);
        let (mut y, mut e) = (vec![0.0; x.len()], vec![0.0; x.len()]);
        cpu::agmm::agmm_forward(params, x, &mut y, &mut e);
        let mut want = vec![0.0; x.len()];
        cpu::agmm::agmm_backward(params, x, &e, &grad_y, &mut want);
        let (_, _, got) = run_gpu(ctx, params, x, &grad_y);
        assert_close(&format!("agmm_backward {case}"), &got, &want, 1e-5, 1e-6);
    });
}

/// Independent f64 forward of the equations of docs/method.md §4, written from the document,
/// not the mirror.
fn forward_f64(t_len: usize, n_len: usize, alpha: AgmmAlpha, x: &[f64]) -> Vec<f64> {
    let mut y = vec![0.0; x.len()];
    for n in 0..n_len {
        let mut e = 0.0;
        for t in 1..=t_len {
            let a = match alpha {
                AgmmAlpha::RunningMean => 1.0 / t as f64,
                AgmmAlpha::Constant(c) => c as f64,
            };
            let i = (t - 1) * n_len + n;
            e = (1.0 - a) * e + a * x[i];
            y[i] = x[i] / (1.0 + (-e).exp());
        }
    }
    y
}

/// `full` mode: dL/dX from the GPU (and the CPU mirror) equals the central finite difference of
/// the f64 forward under a random linear loss `L = sum w * Y`.
#[test]
fn agmm_backward_full_matches_finite_differences() {
    let ctx = gpu();
    let mut r = rng(13);
    for alpha in [AgmmAlpha::RunningMean, AgmmAlpha::Constant(0.3)] {
        for &t in &TIMESTEPS {
            let n = 5;
            let config = AgmmConfig {
                mode: AgmmMode::Full,
                alpha,
            };
            let params = AgmmParams::new(&config, t, n);
            let x = uniform(&mut r, t * n, -3.0, 3.0);
            let w = uniform(&mut r, t * n, -1.0, 1.0);
            let w64 = to_f64(&w);
            let fd = fd_gradient(&x, 1e-5, |xs| {
                forward_f64(t, n, alpha, xs)
                    .iter()
                    .zip(&w64)
                    .map(|(y, w)| y * w)
                    .sum::<f64>()
            });
            let (mut y, mut e) = (vec![0.0; t * n], vec![0.0; t * n]);
            cpu::agmm::agmm_forward(&params, &x, &mut y, &mut e);
            let mut cpu_grad = vec![0.0; t * n];
            cpu::agmm::agmm_backward(&params, &x, &e, &w, &mut cpu_grad);
            let tag = format!("agmm_backward full {alpha:?} T={t} N={n}");
            assert_close(
                &format!("{tag} cpu vs finite differences"),
                &cpu_grad,
                &fd,
                1e-5,
                1e-6,
            );
            if let Some(ctx) = &ctx {
                let (_, _, gpu_grad) = run_gpu(ctx, &params, &x, &w);
                assert_close(
                    &format!("{tag} gpu vs finite differences"),
                    &gpu_grad,
                    &fd,
                    1e-5,
                    1e-6,
                );
            }
        }
    }
}

/// `detached`: dL/dX = sigmoid(E) * G (E from the f64 forward); `off`: exact identity both ways.
/// The `full` gradient always differs from the detached one (even at T = 1, where E = X), so the
/// test would catch a mode switch that is ignored.
#[test]
fn agmm_detached_and_off_follow_their_formulas() {
    let Some(ctx) = gpu() else { return };
    let mut r = rng(14);
    for &t in &TIMESTEPS {
        for n in [1usize, 65, 1000] {
            let x = uniform(&mut r, t * n, -3.0, 3.0);
            let g = uniform(&mut r, t * n, -1.0, 1.0);
            // detached
            let params = AgmmParams::new(
                &AgmmConfig {
                    mode: AgmmMode::Detached,
                    ..Default::default()
                },
                t,
                n,
            );
            let (_, _, got) = run_gpu(&ctx, &params, &x, &g);
            let mut want = vec![0.0f32; t * n];
            for j in 0..n {
                let mut e = 0.0f64;
                for s in 1..=t {
                    let i = (s - 1) * n + j;
                    e += (x[i] as f64 - e) / s as f64;
                    want[i] = (g[i] as f64 / (1.0 + (-e).exp())) as f32;
                }
            }
            assert_close(
                &format!("agmm_backward detached T={t} N={n} vs q*G"),
                &got,
                &want,
                1e-5,
                1e-6,
            );
            let (_, _, full) =
                run_gpu(&ctx, &AgmmParams::new(&AgmmConfig::default(), t, n), &x, &g);
            let differ = full
                .iter()
                .zip(&got)
                .filter(|(a, b)| (*a - *b).abs() > 1e-4)
                .count();
            println!(
                "full vs detached T={t} N={n}: {differ} of {} gradients differ",
                t * n
            );
            assert!(differ > 0, "full must include the gradient through E");
            // off
            let params = AgmmParams::new(
                &AgmmConfig {
                    mode: AgmmMode::Off,
                    ..Default::default()
                },
                t,
                n,
            );
            let (y, _, gx) = run_gpu(&ctx, &params, &x, &g);
            assert_exact(&format!("agmm_forward off T={t} N={n} is identity"), &y, &x);
            assert_exact(
                &format!("agmm_backward off T={t} N={n} is identity"),
                &gx,
                &g,
            );
        }
    }
}

#[test]
fn agmm_rejects_mismatched_buffers() {
    let Some(ctx) = gpu() else { return };
    let params = AgmmParams::new(&AgmmConfig::default(), 4, 10);
    let (x, short) = (zeros(&ctx, 40), zeros(&ctx, 39));
    let mut enc = ctx.encoder("test");
    assert_err_contains(
        AgmmForward::new(&ctx)
            .unwrap()
            .dispatch(&ctx, &mut enc, &params, &x, &short, &x),
        "`y` has 39 elements, expected T*N = 40",
    );
    assert_err_contains(
        AgmmBackward::new(&ctx)
            .unwrap()
            .dispatch(&ctx, &mut enc, &params, &x, &x, &x, &short),
        "grad_x",
    );
    let bad = AgmmParams::new(
        &AgmmConfig {
            alpha: AgmmAlpha::Constant(1.5),
            ..Default::default()
        },
        4,
        10,
    );
    assert!(AgmmForward::new(&ctx)
        .unwrap()
        .dispatch(&ctx, &mut enc, &bad, &x, &x, &x)
        .is_err());
}
