//! AGMM, the readout loss and the optimizers at the `mnist` preset (T = 4, B = 64): AGMM on the
//! conv2 output (64 channels x 14x14), cross entropy on `[4, 64, 10]` logits, and one SGD and
//! one Adam step on a tensor the size of the whole model (~105k parameters).

use super::{time_gpu, BenchRow};
use crate::gpu::{GpuBuffer, GpuContext, GpuError};
use crate::kernels::agmm::{AgmmBackward, AgmmConfig, AgmmForward, AgmmParams};
use crate::kernels::loss::{CrossEntropy, LossKind, LossParams, LossSummary};
use crate::kernels::optim::{AdamConfig, AdamParams, AdamStep, SgdConfig, SgdParams, SgdStep};

/// Deterministic pseudo-random values in `[-2, 2)`.
fn values(len: usize, salt: usize) -> Vec<f32> {
    super::pattern(len, salt, -2.0, 4.0)
}

/// Benchmark rows for `agmm_forward`, `agmm_backward`, `cross_entropy`, `sgd_step`, `adam_step`.
pub fn rows(ctx: &GpuContext, reps: usize) -> Result<Vec<BenchRow>, GpuError> {
    let mut rows = Vec::new();

    // AGMM on the conv2 output: N = B * 64 * 14 * 14 per timestep.
    let (t, n) = (4usize, 64 * 64 * 196);
    let params = AgmmParams::new(&AgmmConfig::default(), t, n);
    let x = GpuBuffer::from_slice(ctx, &values(t * n, 0), "agmm x")?;
    let grad_y = GpuBuffer::from_slice(ctx, &values(t * n, 17), "agmm grad_y")?;
    let y = GpuBuffer::<f32>::zeros(ctx, t * n, "agmm y")?;
    let e = GpuBuffer::<f32>::zeros(ctx, t * n, "agmm e")?;
    let grad_x = GpuBuffer::<f32>::zeros(ctx, t * n, "agmm grad_x")?;
    let fwd = AgmmForward::new(ctx)?;
    let bwd = AgmmBackward::new(ctx)?;
    let shape = format!("T={t} N={n}");
    let tn = (t * n) as f64;
    rows.push(
        BenchRow::timed(
            "agmm_forward",
            shape.clone(),
            time_gpu(ctx, reps, |enc| fwd.dispatch(ctx, enc, &params, &x, &y, &e))?,
        )
        .bytes(tn * 4.0 * 3.0),
    );
    rows.push(BenchRow {
        kernel: "agmm_backward".into(),
        shape,
        seconds: time_gpu(ctx, reps, |enc| {
            bwd.dispatch(ctx, enc, &params, &x, &e, &grad_y, &grad_x)
        })?,
        flops: None,
        bytes: Some(tn * 4.0 * 4.0),
    });

    // Readout loss on [T, B, C] = [4, 64, 10].
    let (b, c) = (64usize, 10usize);
    let params = LossParams::new(LossKind::MeanOverTime, t, b, c).with_slot(0, true);
    let logits = GpuBuffer::from_slice(ctx, &values(t * b * c, 3), "logits")?;
    let labels: Vec<u32> = (0..b as u32).map(|i| i % c as u32).collect();
    let labels = GpuBuffer::from_slice(ctx, &labels, "labels")?;
    let grad = GpuBuffer::<f32>::zeros(ctx, t * b * c, "grad logits")?;
    let sample_loss = GpuBuffer::<f32>::zeros(ctx, b, "sample loss")?;
    let summary = GpuBuffer::<LossSummary>::zeros(ctx, 1, "loss summary")?;
    let ce = CrossEntropy::new(ctx)?;
    rows.push(
        BenchRow::timed(
            "cross_entropy",
            format!("T={t} B={b} C={c}"),
            time_gpu(ctx, reps, |enc| {
                ce.dispatch(
                    ctx,
                    enc,
                    &params,
                    &logits,
                    &labels,
                    &grad,
                    &sample_loss,
                    &summary,
                )
            })?,
        )
        .bytes((t * b * c * 8 + b * 8) as f64),
    );

    // Optimizers on one tensor the size of the mnist model (320 + 36864 + 36864 + 31370).
    let len = 320 + 36_864 + 36_864 + 31_370;
    let weights = GpuBuffer::from_slice(ctx, &values(len, 5), "weights")?;
    let grad = GpuBuffer::from_slice(ctx, &values(len, 9), "grad")?;
    let state_a = GpuBuffer::<f32>::zeros(ctx, len, "optimizer state a")?;
    let state_b = GpuBuffer::<f32>::zeros(ctx, len, "optimizer state b")?;
    // Tiny lr so repeated steps keep the weights finite and representative.
    let sgd_config = SgdConfig::default();
    let sgd_params = SgdParams::new(&sgd_config, len, 1e-6, sgd_config.weight_decay);
    let sgd = SgdStep::new(ctx)?;
    let shape = format!("len={len}");
    rows.push(
        BenchRow::timed(
            "sgd_step",
            shape.clone(),
            time_gpu(ctx, reps, |enc| {
                sgd.dispatch(ctx, enc, &sgd_params, &weights, &grad, &state_a)
            })?,
        )
        .bytes(len as f64 * 4.0 * 5.0),
    );
    let adam_config = AdamConfig::default();
    let adam_params = AdamParams::new(&adam_config, len, 10, 1e-6, 0.0);
    let adam = AdamStep::new(ctx)?;
    rows.push(BenchRow {
        kernel: "adam_step".into(),
        shape,
        seconds: time_gpu(ctx, reps, |enc| {
            adam.dispatch(ctx, enc, &adam_params, &weights, &grad, &state_a, &state_b)
        })?,
        flops: None,
        bytes: Some(len as f64 * 4.0 * 7.0),
    });
    Ok(rows)
}
