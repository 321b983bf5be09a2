//! `cross_entropy` against its CPU mirror (gradients, per-sample losses, summary), its gradient
//! against central finite differences of an independent f64 loss for both loss kinds, a hand
//! computed case, tie-breaking, and summary accumulation across dispatches.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

mod common;

use bitspike::cpu;
use bitspike::gpu::GpuContext;
use bitspike::kernels::loss::{CrossEntropy, LossKind, LossParams, LossSummary};
use common::*;
use rand::Rng;

const KINDS: [LossKind; 2] = [LossKind::MeanOverTime, LossKind::MeanLogits];

struct Out {
    grad: Vec<f32>,
    sample_loss: Vec<f32>,
    summary: Vec<LossSummary>,
}

/// Runs `cross_entropy` once per `params` entry on the same buffers (summary of `slots` entries,
/// starting zeroed), then reads everything back.
fn run_gpu(
    ctx: &GpuContext,
    params: &[LossParams],
    logits: &[f32],
    labels: &[u32],
    slots: usize,
) -> Out {
    let p = params[0];
    let (tbc, b) = (
        (p.timesteps * p.batch * p.classes) as usize,
        p.batch as usize,
    );
    let (lb, yb) = (upload(ctx, logits), upload(ctx, labels));
    let (grad, sample_loss) = (zeros(ctx, tbc), zeros(ctx, b));
    let summary = zeros::<LossSummary>(ctx, slots);
    let ce = CrossEntropy::new(ctx).unwrap();
    record(ctx, |enc| {
        params
            .iter()
            .try_for_each(|p| ce.dispatch(ctx, enc, p, &lb, &yb, &grad, &sample_loss, &summary))
    });
    Out {
        grad: read(ctx, &grad),
        sample_loss: read(ctx, &sample_loss),
        summary: read(ctx, &summary),
    }
}

fn run_cpu(params: &[LossParams], logits: &[f32], labels: &[u32], slots: usize) -> Out {
    let p = params[0];
    let (tbc, b) = (
        (p.timesteps * p.batch * p.classes) as usize,
        p.batch as usize,
    );
    let mut out = Out {
        grad: vec![0.0; tbc],
        sample_loss: vec![0.0; b],
        summary: vec![LossSummary::default(); slots],
    };
    for p in params {
        cpu::loss::cross_entropy(
            p,
            logits,
            labels,
            &mut out.grad,
            &mut out.sample_loss,
            &mut out.summary,
        );
    }
    out
}

fn labels(r: &mut bitspike::rng::SeededRng, b: usize, c: usize) -> Vec<u32> {
    (0..b).map(|_| r.random_range(0..c as u32)).collect()
}

#[test]
fn cross_entropy_matches_cpu_reference() {
    let Some(ctx) = gpu() else { return };
    let mut r = rng(21);
    for kind in KINDS {
        for &t in &[1usize, 4] {
            for &c in &[10usize, 100] {
                for &b in &[1usize, 63, 64, 65, 300] {
                    let params = [LossParams::new(kind, t, b, c)];
                    let logits = uniform(&mut r, t * b * c, -4.0, 4.0);
                    let y = labels(&mut r, b, c);
                    let got = run_gpu(&ctx, &params, &logits, &y, 1);
                    let want = run_cpu(&params, &logits, &y, 1);
                    let tag = format!("cross_entropy {kind:?} T={t} B={b} C={c}");
                    // Gradients are O(1/(T B)); tolerance scaled to that.
                    let g_abs = 1e-6 / (t * b) as f32;
                    assert_close(&format!("{tag} grad"), &got.grad, &want.grad, 1e-4, g_abs);
                    assert_close(
                        &format!("{tag} sample_loss"),
                        &got.sample_loss,
                        &want.sample_loss,
                        1e-5,
                        1e-5,
                    );
                    let (g, w) = (got.summary[0], want.summary[0]);
                    assert_close(
                        &format!("{tag} loss_sum"),
                        &[g.loss_sum],
                        &[w.loss_sum],
                        1e-5,
                        1e-4,
                    );
                    assert_exact(
                        &format!("{tag} correct/samples/batches"),
                        &[g.correct, g.samples, g.batches],
                        &[w.correct, w.samples, w.batches],
                    );
                }
            }
        }
    }
}

/// Independent f64 batch-mean loss, written from docs/method.md §6.
fn batch_loss_f64(
    kind: LossKind,
    t_len: usize,
    b_len: usize,
    c_len: usize,
    o: &[f64],
    y: &[u32],
) -> f64 {
    let lse = |v: &[f64]| {
        let m = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        m + v.iter().map(|x| (x - m).exp()).sum::<f64>().ln()
    };
    let row = |t: usize, b: usize| &o[(t * b_len + b) * c_len..(t * b_len + b + 1) * c_len];
    let mut total = 0.0;
    for (b, &label) in y.iter().enumerate().take(b_len) {
        let yb = label as usize;
        total += match kind {
            LossKind::MeanOverTime => {
                (0..t_len)
                    .map(|t| lse(row(t, b)) - row(t, b)[yb])
                    .sum::<f64>()
                    / t_len as f64
            }
            LossKind::MeanLogits => {
                let mean: Vec<f64> = (0..c_len)
                    .map(|c| (0..t_len).map(|t| row(t, b)[c]).sum::<f64>() / t_len as f64)
                    .collect();
                lse(&mean) - mean[yb]
            }
        };
    }
    total / b_len as f64
}

#[test]
fn cross_entropy_gradient_matches_finite_differences() {
    let ctx = gpu();
    let mut r = rng(22);
    for kind in KINDS {
        for &t in &[1usize, 4] {
            let (b, c) = (3usize, 5usize);
            let params = [LossParams::new(kind, t, b, c)];
            let logits = uniform(&mut r, t * b * c, -3.0, 3.0);
            let y = labels(&mut r, b, c);
            let o64 = to_f64(&logits);
            let fd = fd_gradient(&logits, 1e-5, |o| batch_loss_f64(kind, t, b, c, o, &y));
            let want_loss = batch_loss_f64(kind, t, b, c, &o64, &y) as f32;
            let tag = format!("cross_entropy {kind:?} T={t} B={b} C={c}");
            let cpu_out = run_cpu(&params, &logits, &y, 1);
            assert_close(
                &format!("{tag} cpu grad vs finite differences"),
                &cpu_out.grad,
                &fd,
                1e-5,
                1e-7,
            );
            assert_close(
                &format!("{tag} cpu mean loss"),
                &[cpu_out.summary[0].mean_loss() as f32],
                &[want_loss],
                1e-6,
                0.0,
            );
            if let Some(ctx) = &ctx {
                let out = run_gpu(ctx, &params, &logits, &y, 1);
                assert_close(
                    &format!("{tag} gpu grad vs finite differences"),
                    &out.grad,
                    &fd,
                    1e-4,
                    1e-6,
                );
                assert_close(
                    &format!("{tag} gpu mean loss"),
                    &[out.summary[0].mean_loss() as f32],
                    &[want_loss],
                    1e-5,
                    0.0,
                );
            }
        }
    }
}

/// Hand-computed: equal logits give loss ln C, gradient (1/C - onehot) / (T B), and the argmax
/// tie goes to class 0. Ties in the sum over time (integer logits) must agree with the CPU.
#[test]
fn cross_entropy_hand_values_and_ties() {
    let Some(ctx) = gpu() else { return };
    for kind in KINDS {
        // T = 2, B = 2, C = 2, all logits 0; labels 0 and 1: sample 0 correct (tie -> 0), 1 not.
        let params = [LossParams::new(kind, 2, 2, 2)];
        let out = run_gpu(&ctx, &params, &[0.0; 8], &[0, 1], 1);
        let ln2 = std::f32::consts::LN_2;
        assert_close(
            &format!("{kind:?} equal logits: per-sample loss"),
            &out.sample_loss,
            &[ln2, ln2],
            1e-6,
            1e-7,
        );
        let q = 0.5 / 4.0;
        assert_close(
            &format!("{kind:?} equal logits: grad"),
            &out.grad,
            &[-q, q, q, -q, -q, q, q, -q],
            1e-6,
            1e-7,
        );
        assert_exact(
            &format!("{kind:?} equal logits: correct, samples"),
            &[out.summary[0].correct, out.summary[0].samples],
            &[1, 2],
        );
    }
    // Integer logits in {-2..2}: many exact ties of sum_t o[t]; counts must match the CPU.
    let mut r = rng(23);
    let (t, b, c) = (4usize, 300usize, 10usize);
    let logits: Vec<f32> = (0..t * b * c)
        .map(|_| r.random_range(-2i32..=2) as f32)
        .collect();
    let y = labels(&mut r, b, c);
    let params = [LossParams::new(LossKind::MeanOverTime, t, b, c)];
    let got = run_gpu(&ctx, &params, &logits, &y, 1);
    let want = run_cpu(&params, &logits, &y, 1);
    assert_exact(
        "tied integer logits: correct",
        &[got.summary[0].correct],
        &[want.summary[0].correct],
    );
    // And a label >= C matches nothing: never correct, loss = log-sum-exp.
    let params = [LossParams::new(LossKind::MeanOverTime, 1, 1, 3)];
    let out = run_gpu(&ctx, &params, &[1.0, 2.0, 3.0], &[7], 1);
    let lse = (1f32.exp() + 2f32.exp() + 3f32.exp()).ln();
    assert_close(
        "label out of range: loss",
        &out.sample_loss,
        &[lse],
        1e-6,
        0.0,
    );
    assert_exact(
        "label out of range: correct",
        &[out.summary[0].correct],
        &[0],
    );
}

/// Three batches accumulated into slot 1 equal the sum of their separate summaries; slot 0 is
/// untouched; a later non-accumulating dispatch resets the slot.
#[test]
fn cross_entropy_summary_accumulates_per_slot() {
    let Some(ctx) = gpu() else { return };
    let mut r = rng(24);
    let (t, b, c) = (4usize, 64usize, 10usize);
    let base = LossParams::new(LossKind::MeanOverTime, t, b, c);
    let logits = uniform(&mut r, t * b * c, -4.0, 4.0);
    let y = labels(&mut r, b, c);
    let single = run_gpu(&ctx, &[base], &logits, &y, 1).summary[0];
    let acc = [base.with_slot(1, true); 3];
    let got = run_gpu(&ctx, &acc, &logits, &y, 3).summary;
    let want = run_cpu(&acc, &logits, &y, 3).summary;
    println!("single batch {single:?}, accumulated {:?}", got[1]);
    assert_exact(
        "untouched slots",
        &[got[0], got[2]],
        &[LossSummary::default(); 2],
    );
    assert_exact(
        "accumulated counts",
        &[got[1].correct, got[1].samples, got[1].batches],
        &[3 * single.correct, 3 * b as u32, 3],
    );
    assert_exact(
        "accumulated counts vs cpu",
        &[got[1].correct],
        &[want[1].correct],
    );
    assert_close(
        "accumulated loss",
        &[got[1].loss_sum],
        &[3.0 * single.loss_sum],
        1e-6,
        0.0,
    );
    let reset = run_gpu(
        &ctx,
        &[base.with_slot(1, true), base.with_slot(1, false)],
        &logits,
        &y,
        2,
    )
    .summary;
    assert_exact("overwrite resets", &[reset[1]], &[single]);
}

#[test]
fn cross_entropy_rejects_bad_shapes() {
    let Some(ctx) = gpu() else { return };
    let ce = CrossEntropy::new(&ctx).unwrap();
    let (logits, y) = (zeros::<f32>(&ctx, 4 * 8 * 10), zeros::<u32>(&ctx, 8));
    let (grad, loss) = (zeros::<f32>(&ctx, 4 * 8 * 10), zeros::<f32>(&ctx, 8));
    let summary = zeros::<LossSummary>(&ctx, 2);
    let mut enc = ctx.encoder("test");
    let ok = LossParams::new(LossKind::MeanOverTime, 4, 8, 10);
    assert!(ce
        .dispatch(&ctx, &mut enc, &ok, &logits, &y, &grad, &loss, &summary)
        .is_ok());
    for (bad, needle) in [
        (LossParams::new(LossKind::MeanOverTime, 4, 8, 9), "logits"),
        (LossParams::new(LossKind::MeanOverTime, 4, 7, 10), "logits"),
        (ok.with_slot(2, true), "slot 2"),
        (
            LossParams::new(LossKind::MeanOverTime, 0, 8, 10),
            "at least 1",
        ),
    ] {
        assert_err_contains(
            ce.dispatch(&ctx, &mut enc, &bad, &logits, &y, &grad, &loss, &summary),
            needle,
        );
    }
}
