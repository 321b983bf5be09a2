//! `lif_forward` / `lif_backward` against their CPU mirrors, and the backward against the
//! surrogate-gradient formula of docs/method.md §2 (forward-mode differentiation of an independent f64 LIF).

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use bitspike::cpu;
use bitspike::gpu::GpuContext;
use bitspike::kernels::lif::{LifBackward, LifConfig, LifForward, LifParams, ResetMode};
use common::*;

/// Runs `lif_forward` on the GPU: returns (spikes, membrane), `T*N` each.
fn gpu_forward(
    ctx: &GpuContext,
    fwd: &LifForward,
    params: &LifParams,
    t: usize,
    n: usize,
    current: &[f32],
) -> (Vec<f32>, Vec<f32>) {
    let (cur, s, h) = (upload(ctx, current), zeros(ctx, t * n), zeros(ctx, t * n));
    record(ctx, |enc| fwd.dispatch(ctx, enc, params, &cur, &s, &h));
    (read(ctx, &s), read(ctx, &h))
}

fn configs() -> Vec<LifConfig> {
    let base = LifConfig::default();
    vec![
        base,
        LifConfig {
            reset: ResetMode::Soft,
            ..base
        },
        LifConfig {
            detach_reset: true,
            ..base
        },
        LifConfig {
            reset: ResetMode::Soft,
            detach_reset: true,
            decay: 0.9,
            v_th: 0.7,
            surrogate_width: 0.5,
        },
    ]
}

/// Every (config, T, N) of the CPU-reference sweeps, N at workgroup edges.
fn cases() -> Vec<(LifConfig, usize, usize)> {
    let mut out = Vec::new();
    for config in configs() {
        // 18: past MAX_UNROLLED_STEPS, the backward's loop of uniform length.
        for t in [1usize, 4, 7, 18] {
            for n in awkward_sizes(64, 10_007) {
                out.push((config, t, n));
            }
        }
    }
    out
}

#[test]
fn lif_forward_matches_cpu_reference() {
    let Some(ctx) = gpu() else { return };
    let fwd = LifForward::new(&ctx).unwrap();
    let mut r = rng(1);
    for (config, t, n) in cases() {
        let params = LifParams::new(&config, t, n);
        let current = uniform(&mut r, t * n, -0.5, 2.0);
        let mut want_s = vec![0.0; t * n];
        let mut want_h = vec![0.0; t * n];
        cpu::lif::lif_forward(&params, &current, &mut want_s, &mut want_h);
        let (s, h) = gpu_forward(&ctx, &fwd, &params, t, n, &current);
        let tag = format!("lif_forward {config:?} T={t} N={n}");
        assert_exact(&format!("{tag} spikes"), &s, &want_s);
        assert_close(&format!("{tag} membrane"), &h, &want_h, 1e-6, 1e-6);
    }
}

#[test]
fn lif_backward_matches_cpu_reference() {
    let Some(ctx) = gpu() else { return };
    let fwd = LifForward::new(&ctx).unwrap();
    let bwd = LifBackward::new(&ctx).unwrap();
    let mut r = rng(2);
    for (config, t, n) in cases() {
        let params = LifParams::new(&config, t, n);
        let current = uniform(&mut r, t * n, -0.5, 2.0);
        let grad_s = uniform(&mut r, t * n, -1.0, 1.0);
        let (mut s, mut h) = (vec![0.0; t * n], vec![0.0; t * n]);
        cpu::lif::lif_forward(&params, &current, &mut s, &mut h);
        let mut want = vec![0.0; t * n];
        cpu::lif::lif_backward(&params, &h, &grad_s, &mut want);
        let (hb, gs, gi) = (upload(&ctx, &h), upload(&ctx, &grad_s), zeros(&ctx, t * n));
        record(&ctx, |enc| bwd.dispatch(&ctx, enc, &params, &hb, &gs, &gi));
        let tag = format!("lif_backward {config:?} T={t} N={n}");
        assert_close(&tag, &read(&ctx, &gi), &want, 1e-5, 1e-5);
    }
    // keep the forward pipeline exercised in the same device for coverage of cache reuse
    assert!(LifForward::new(&ctx).is_ok() && ctx.cached_pipelines() >= 2);
    drop(fwd);
}

/// Forward-mode derivative of an independent f64 LIF: the Heaviside's derivative is replaced by
/// the triangle surrogate of docs/method.md §2, every other operation differentiated exactly. The reverse-mode
/// `lif_backward` must give the same vector-Jacobian product: sum_t g[t] * ds[t]/dI[k].
#[test]
fn lif_backward_equals_surrogate_chain_rule() {
    let mut r = rng(3);
    for config in configs() {
        let (t_len, n) = (6usize, 1usize);
        let params = LifParams::new(&config, t_len, n);
        let current = uniform(&mut r, t_len, 0.2, 1.6);
        let upstream = uniform(&mut r, t_len, -1.0, 1.0);
        let (mut s, mut h) = (vec![0.0; t_len], vec![0.0; t_len]);
        cpu::lif::lif_forward(&params, &current, &mut s, &mut h);
        let mut reverse = vec![0.0; t_len];
        cpu::lif::lif_backward(&params, &h, &upstream, &mut reverse);
        let (lam, vth, g) = (
            config.decay as f64,
            config.v_th as f64,
            config.surrogate_width as f64,
        );
        for (k, &reverse_k) in reverse.iter().enumerate() {
            // tangent: d/dI[k]
            let (mut u, mut du, mut sp, mut dsp) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
            let mut vjp = 0.0;
            for t in 0..t_len {
                let di = if t == k { 1.0 } else { 0.0 };
                let dsp_r = if config.detach_reset { 0.0 } else { dsp };
                let (hh, dh) = match config.reset {
                    ResetMode::Hard => (
                        lam * u * (1.0 - sp) + current[t] as f64,
                        lam * (du * (1.0 - sp) - u * dsp_r) + di,
                    ),
                    ResetMode::Soft => (
                        lam * (u - vth * sp) + current[t] as f64,
                        lam * (du - vth * dsp_r) + di,
                    ),
                };
                let surrogate = (g - (hh - vth).abs()).max(0.0) / (g * g);
                sp = if hh >= vth { 1.0 } else { 0.0 };
                dsp = surrogate * dh;
                u = hh;
                du = dh;
                vjp += upstream[t] as f64 * dsp;
            }
            let got = reverse_k as f64;
            println!(
                "{:?} dL/dI[{k}]: reverse {got:.6} forward-mode {vjp:.6}",
                config.reset
            );
            assert!(
                (got - vjp).abs() <= 1e-5 + 1e-4 * vjp.abs(),
                "k={k}: {got} vs {vjp}"
            );
        }
    }
}

/// `broadcast_input = 1` (direct encoding: one `[N]` frame for every t) gives exactly what the
/// plain kernel gives on T copies of the frame, on the GPU and in the CPU mirror.
#[test]
fn lif_forward_broadcast_equals_repeated_input() {
    let Some(ctx) = gpu() else { return };
    let fwd = LifForward::new(&ctx).unwrap();
    let mut r = rng(5);
    for n in awkward_sizes(64, 4099) {
        let t = 4;
        let frame = uniform(&mut r, n, -0.5, 2.0);
        let repeated: Vec<f32> = (0..t).flat_map(|_| frame.clone()).collect();
        let plain = LifParams::new(&LifConfig::default(), t, n);
        let broadcast = LifParams {
            broadcast_input: 1,
            ..plain
        };
        let (mut want_s, mut want_h) = (vec![0.0; t * n], vec![0.0; t * n]);
        cpu::lif::lif_forward(&plain, &repeated, &mut want_s, &mut want_h);
        let (mut cpu_s, mut cpu_h) = (vec![0.0; t * n], vec![0.0; t * n]);
        cpu::lif::lif_forward(&broadcast, &frame, &mut cpu_s, &mut cpu_h);
        assert_exact("cpu broadcast spikes", &cpu_s, &want_s);
        let (s, h) = gpu_forward(&ctx, &fwd, &broadcast, t, n, &frame);
        assert_exact(&format!("gpu broadcast spikes N={n}"), &s, &want_s);
        assert_exact(&format!("gpu broadcast membrane N={n}"), &h, &want_h);
    }
}

/// With a broadcast input (one frame read at every t), `lif_backward` writes the frame's
/// gradient: the GPU equals the mirror, and the mirror equals the per-t gradients of the
/// repeated current summed over t (what the full-time path would feed the layer below).
#[test]
fn lif_backward_broadcast_sums_over_time_and_matches_cpu_reference() {
    let Some(ctx) = gpu() else { return };
    let bwd = LifBackward::new(&ctx).unwrap();
    let mut r = rng(4);
    for (config, t, n) in cases() {
        let full = LifParams::new(&config, t, n);
        let broadcast = LifParams {
            broadcast_input: 1,
            ..full
        };
        let frame = uniform(&mut r, n, -0.5, 2.0);
        let repeated: Vec<f32> = (0..t).flat_map(|_| frame.iter().copied()).collect();
        let grad_s = uniform(&mut r, t * n, -1.0, 1.0);
        let (mut s, mut h) = (vec![0.0; t * n], vec![0.0; t * n]);
        cpu::lif::lif_forward(&broadcast, &frame, &mut s, &mut h);
        let mut per_t = vec![0.0; t * n];
        cpu::lif::lif_backward(&full, &h, &grad_s, &mut per_t);
        let summed: Vec<f32> = (0..n)
            .map(|i| (0..t).rev().map(|ti| per_t[ti * n + i]).sum())
            .collect();
        let mut want = vec![0.0; n];
        cpu::lif::lif_backward(&broadcast, &h, &grad_s, &mut want);
        let tag = format!("lif_backward broadcast {config:?} T={t} N={n}");
        assert_close(
            &format!("{tag} mirror vs summed"),
            &want,
            &summed,
            1e-5,
            1e-6,
        );
        let (hb, gs, gi) = (upload(&ctx, &h), upload(&ctx, &grad_s), zeros(&ctx, n));
        record(&ctx, |enc| {
            bwd.dispatch(&ctx, enc, &broadcast, &hb, &gs, &gi)
        });
        assert_close(&tag, &read(&ctx, &gi), &want, 1e-5, 1e-5);
        // Same membrane either way: the repeated current gives the same forward.
        let (mut s2, mut h2) = (vec![0.0; t * n], vec![0.0; t * n]);
        cpu::lif::lif_forward(&full, &repeated, &mut s2, &mut h2);
        assert_exact(&format!("{tag} forward"), &h2, &h);
    }
}

/// `lif_backward_vec4` (a multiple of 4 neurons, T <= 16, on CPU rasterisers) against the scalar
/// pass (`KernelVariant::SharedTiled`): the same gradients, in every reset mode; bit for bit per
/// timestep and for a broadcast frame at T = 4 (mnist's), within 1e-6 relative for a frame
/// summed over longer T.
#[test]
fn lif_backward_vec4_equals_the_scalar_pass() {
    use bitspike::gpu::KernelVariant;
    let Some(mut ctx) = gpu() else { return };
    let bwd = LifBackward::new(&ctx).unwrap();
    let mut r = rng(5);
    let mut vec4_cases = 0;
    for config in configs() {
        for (t, n) in [(4, 64), (1, 4), (5, 1_000), (16, 260)] {
            for broadcast in [0, 1] {
                let params = LifParams {
                    broadcast_input: broadcast,
                    ..LifParams::new(&config, t, n)
                };
                let h = uniform(&mut r, t * n, -0.5, 2.0);
                let grad_s = uniform(&mut r, t * n, -1.0, 1.0);
                let out_len = if broadcast == 1 { n } else { t * n };
                let (hb, gs) = (upload(&ctx, &h), upload(&ctx, &grad_s));
                let mut outs = Vec::new();
                for variant in [KernelVariant::RegisterBlocked, KernelVariant::SharedTiled] {
                    ctx.variant = variant;
                    let gi = filled(&ctx, out_len, f32::NAN);
                    record(&ctx, |enc| bwd.dispatch(&ctx, enc, &params, &hb, &gs, &gi));
                    outs.push(read(&ctx, &gi));
                }
                ctx.variant = KernelVariant::RegisterBlocked;
                assert!(LifBackward::vec4(&ctx, &params));
                vec4_cases += 1;
                let tag = format!(
                    "lif_backward vec4 vs scalar {config:?} T={t} N={n} broadcast={broadcast}"
                );
                if broadcast == 1 && t > 4 {
                    // The frame's sum over a long unrolled loop: lavapipe may contract its
                    // multiply-adds differently in the two kernels (last bits only).
                    assert_close(&tag, &outs[0], &outs[1], 1e-6, 1e-7);
                } else {
                    assert_exact(&tag, &outs[0], &outs[1]);
                }
            }
        }
    }
    assert_eq!(vec4_cases, 32);
}
