//! AGMM at the `mnist` preset (T = 4, B = 64) on the conv2 output (64 channels x 14x14): alone,
//! its backward fused with the LIF's, and the training tail (BN, AGMM, LIF, firing rate) as the
//! chain and fused, each against what it replaced; cross entropy on `[4, 64, 10]` logits; one
//! SGD and one Adam step on a tensor the size of the whole model (~105k parameters).

use super::{time_gpu, BenchRow};
use crate::gpu::{GpuBuffer, GpuContext, GpuError};
use crate::kernels::agmm::{AgmmBackward, AgmmConfig, AgmmForward, AgmmParams};
use crate::kernels::batchnorm::{
    BatchNorm, BatchNormConfig, BatchNormSaved, BatchNormShape, BatchNormState,
};
use crate::kernels::fused::{
    BnAgmmLifSpec, BnAgmmLifTrain, LifAgmmBackward, LifAgmmParams, TrainTailOut,
};
use crate::kernels::lif::{LifBackward, LifConfig, LifForward, LifParams};
use crate::kernels::loss::{CrossEntropy, LossKind, LossParams, LossSummary};
use crate::kernels::optim::{AdamConfig, AdamParams, AdamStep, SgdConfig, SgdParams, SgdStep};
use crate::kernels::stats::Moments;

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

    // The conv2 unit's LIF + AGMM backward: the chain and the fused pass that replaced it.
    let lif_agmm = LifAgmmParams::new(&LifConfig::default(), &AgmmConfig::default(), t, n);
    let membrane = GpuBuffer::from_slice(ctx, &values(t * n, 5), "membrane")?;
    let grad_pre = GpuBuffer::<f32>::zeros(ctx, t * n, "grad pre")?;
    let (lif_bwd, fused_bwd) = (LifBackward::new(ctx)?, LifAgmmBackward::new(ctx)?);
    let shape = format!("T={t} N={n}");
    rows.push(
        BenchRow::timed(
            "lif_backward+agmm_backward (replaced)",
            shape.clone(),
            time_gpu(ctx, reps, |enc| {
                lif_bwd.dispatch(ctx, enc, &lif_agmm.lif, &membrane, &grad_y, &grad_pre)?;
                bwd.dispatch(ctx, enc, &params, &x, &e, &grad_pre, &grad_x)
            })?,
        )
        .bytes(tn * 4.0 * 7.0),
    );
    rows.push(
        BenchRow::timed(
            "lif_agmm_backward",
            shape,
            time_gpu(ctx, reps, |enc| {
                fused_bwd.dispatch(
                    ctx, enc, &lif_agmm, &membrane, &grad_y, &x, &e, &grad_x, None,
                )
            })?,
        )
        .bytes(tn * 4.0 * 5.0),
    );

    // The conv2 unit's training tail after its conv: the chain (BN statistics and apply,
    // AGMM, LIF, the firing rate's moments) and the fused pass that replaced it.
    rows.extend(train_tail_rows(ctx, reps, t, &x)?);

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

/// The training tail at conv2's shape (`x` is its conv output, `[T, B, 64, 14, 14]`).
fn train_tail_rows(
    ctx: &GpuContext,
    reps: usize,
    t: usize,
    x: &GpuBuffer<f32>,
) -> Result<Vec<BenchRow>, GpuError> {
    let (b, c, hw) = (64usize, 64usize, 196usize);
    let total = t * b * c * hw;
    let z = |label: &str| GpuBuffer::<f32>::zeros(ctx, total, label);
    let zc = |label: &str| GpuBuffer::<f32>::zeros(ctx, c, label);
    let ones = GpuBuffer::from_slice(ctx, &vec![1.0f32; c], "ones")?;
    let (running_mean, running_var, bias) = (zc("running mean")?, zc("running var")?, zc("bias")?);
    let state = BatchNormState {
        weight: &ones,
        bias: &bias,
        running_mean: &running_mean,
        running_var: &running_var,
    };
    let (mean, invstd) = (zc("mean")?, zc("invstd")?);
    let saved = BatchNormSaved {
        mean: &mean,
        invstd: &invstd,
    };
    let (bn_out, gated, e, spikes, membrane) =
        (z("bn out")?, z("gated")?, z("E")?, z("s")?, z("h")?);
    let values = GpuBuffer::<f32>::zeros(ctx, 4 * c, "bn values")?;
    let partials = GpuBuffer::<f32>::zeros(
        ctx,
        Moments::partials_len(total).max(BnAgmmLifTrain::partials_len(total)),
        "partials",
    )?;
    let summary = GpuBuffer::<f32>::zeros(ctx, 3, "summary")?;
    let bn = BatchNorm::new(ctx, BatchNormConfig::default())?;
    let (agmm, lif, moments) = (
        AgmmForward::new(ctx)?,
        LifForward::new(ctx)?,
        Moments::new(ctx)?,
    );
    let fused = BnAgmmLifTrain::new(ctx)?;
    let config = AgmmConfig::default();
    let n = total / t;
    let shape = BatchNormShape::new(t * b, c, hw);
    let spec = BnAgmmLifSpec {
        timesteps: t,
        batch: b,
        channels: c,
        spatial: hw,
        eps: bn.config.eps,
        agmm: Some(config),
        residual: false,
        broadcast: false,
        lif: LifConfig::default(),
    };
    let label = format!("[{t}*{b}, {c}, 14, 14]");
    let chain = time_gpu(ctx, reps, |enc| {
        bn.forward_train(ctx, enc, shape, x, &state, &saved, &bn_out)?;
        agmm.dispatch(
            ctx,
            enc,
            &AgmmParams::new(&config, t, n),
            &bn_out,
            &gated,
            &e,
        )?;
        let params = LifParams::new(&spec.lif, t, n);
        lif.dispatch(ctx, enc, &params, &gated, &spikes, &membrane)?;
        moments.dispatch(ctx, enc, &spikes, &partials, &summary, 0, true)
    })?;
    let one_pass = time_gpu(ctx, reps, |enc| {
        bn.statistics(ctx, enc, shape, x, &state, &saved)?;
        BnAgmmLifTrain::gather_bn(enc, &saved, &state, &values)?;
        let out = TrainTailOut {
            agmm: Some((&bn_out, &e)),
            membrane: &membrane,
            spikes: &spikes,
            partials: &partials,
        };
        let groups = fused.dispatch(ctx, enc, &spec, x, &values, None, &out)?;
        moments.finish(ctx, enc, &partials, groups, total, &summary, 0, true)
    })?;
    Ok(vec![
        BenchRow::timed(
            "batchnorm+agmm_forward+lif_forward+moments (replaced)",
            label.clone(),
            chain,
        ),
        BenchRow::timed("batchnorm_stats+bn_agmm_lif_train", label, one_pass),
    ])
}
