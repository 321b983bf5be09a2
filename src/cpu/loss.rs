//! CPU mirror of `cross_entropy` (same name, same argument order). Losses and gradients are
//! computed in f64; the prediction uses the f32 time sum in the shader's order so that the
//! correct count matches the GPU exactly, ties included.

use crate::kernels::loss::{LossParams, LossSummary};

/// `log(sum_c exp(v_c))`, stable.
fn log_sum_exp(v: &[f64]) -> f64 {
    let m = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    m + v.iter().map(|x| (x - m).exp()).sum::<f64>().ln()
}

/// Mirror of `shaders/cross_entropy.wgsl`.
pub fn cross_entropy(
    params: &LossParams,
    logits: &[f32],
    labels: &[u32],
    grad: &mut [f32],
    sample_loss: &mut [f32],
    summary: &mut [LossSummary],
) {
    let (nt, nb, nc) = (
        params.timesteps as usize,
        params.batch as usize,
        params.classes as usize,
    );
    let at = |t: usize, b: usize| (t * nb + b) * nc;
    let scale = 1.0 / (nt as f64 * nb as f64);
    let (mut loss_sum, mut correct) = (0.0f64, 0u32);
    for b in 0..nb {
        let y = labels[b] as usize;
        let onehot = |c: usize| if c == y { 1.0 } else { 0.0 };
        // Prediction: argmax of the f32 time sum, strict `>` so ties keep the lowest index.
        let sums: Vec<f32> = (0..nc)
            .map(|c| (0..nt).fold(0.0f32, |s, t| s + logits[at(t, b) + c]))
            .collect();
        let arg = (1..nc).fold(0, |best, c| if sums[c] > sums[best] { c } else { best });
        correct += (arg == y) as u32;
        let loss = if params.kind == 1 {
            let mean: Vec<f64> = (0..nc)
                .map(|c| (0..nt).map(|t| logits[at(t, b) + c] as f64).sum::<f64>() / nt as f64)
                .collect();
            let lse = log_sum_exp(&mean);
            for (c, &m) in mean.iter().enumerate() {
                let g = (((m - lse).exp() - onehot(c)) * scale) as f32;
                for t in 0..nt {
                    grad[at(t, b) + c] = g;
                }
            }
            lse - mean.get(y).copied().unwrap_or(0.0)
        } else {
            let mut total = 0.0;
            for t in 0..nt {
                let row: Vec<f64> = logits[at(t, b)..at(t, b) + nc]
                    .iter()
                    .map(|&v| v as f64)
                    .collect();
                let lse = log_sum_exp(&row);
                for (c, &o) in row.iter().enumerate() {
                    grad[at(t, b) + c] = (((o - lse).exp() - onehot(c)) * scale) as f32;
                }
                total += lse - row.get(y).copied().unwrap_or(0.0);
            }
            total / nt as f64
        };
        sample_loss[b] = loss as f32;
        loss_sum += loss;
    }
    let slot = &mut summary[params.slot as usize];
    let fresh = LossSummary {
        loss_sum: loss_sum as f32,
        correct,
        samples: nb as u32,
        batches: 1,
    };
    *slot = if params.accumulate == 1 {
        LossSummary {
            loss_sum: slot.loss_sum + fresh.loss_sum,
            correct: slot.correct + correct,
            samples: slot.samples + fresh.samples,
            batches: slot.batches + 1,
        }
    } else {
        fresh
    };
}
