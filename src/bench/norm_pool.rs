//! Batch norm, max pooling and the residual add at the `mnist` preset's shapes (B = 64, T = 4,
//! so N = T*B = 256): BN after conv1/conv2/conv3, the two 2x2 max pools, and a residual add
//! the size of conv2's output. Bandwidth-bound, so rows report bytes moved (GB/s).

use super::{time_gpu, BenchRow};
use crate::gpu::{GpuBuffer, GpuContext, GpuError};
use crate::kernels::batchnorm::{
    BatchNorm, BatchNormConfig, BatchNormSaved, BatchNormShape, BatchNormState,
};
use crate::kernels::elementwise::{ElementwiseParams, ResidualAdd};
use crate::kernels::pool::{MaxPool2d, PoolWindow};

/// Deterministic pseudo-random activations in [-2, 2).
fn activations(len: usize) -> Vec<f32> {
    super::pattern(len, 0, -2.0, 4.0)
}

/// Batch size of the `mnist` preset times its timesteps.
const SAMPLES: usize = 256;

/// BN train forward (stats + apply) and backward (reduce + input) on `[256, C, HW]`.
fn batchnorm_rows(
    ctx: &GpuContext,
    reps: usize,
    channels: usize,
    spatial: usize,
) -> Result<Vec<BenchRow>, GpuError> {
    let shape = BatchNormShape::new(SAMPLES, channels, spatial);
    let len = shape.elements();
    let bn = BatchNorm::new(ctx, BatchNormConfig::default())?;
    let x = GpuBuffer::from_slice(ctx, &activations(len), "x")?;
    let y = GpuBuffer::<f32>::zeros(ctx, len, "y")?;
    let grad_x = GpuBuffer::<f32>::zeros(ctx, len, "grad_x")?;
    let per_channel = |v: f32, label: &str| GpuBuffer::from_slice(ctx, &vec![v; channels], label);
    let (weight, bias) = (per_channel(1.0, "weight")?, per_channel(0.0, "bias")?);
    let (running_mean, running_var) = (
        per_channel(0.0, "running_mean")?,
        per_channel(1.0, "running_var")?,
    );
    let (mean, invstd) = (per_channel(0.0, "mean")?, per_channel(1.0, "invstd")?);
    let (grad_weight, grad_bias) = (
        per_channel(0.0, "grad_weight")?,
        per_channel(0.0, "grad_bias")?,
    );
    let state = BatchNormState {
        weight: &weight,
        bias: &bias,
        running_mean: &running_mean,
        running_var: &running_var,
    };
    let saved = BatchNormSaved {
        mean: &mean,
        invstd: &invstd,
    };
    let tag = format!("[{SAMPLES}, {channels}, {spatial}]");
    let bytes = (len * 4) as f64;
    Ok(vec![
        BenchRow {
            kernel: "batchnorm_forward_train".into(),
            shape: tag.clone(),
            seconds: time_gpu(ctx, reps, |e| {
                bn.forward_train(ctx, e, shape, &x, &state, &saved, &y)
            })?,
            flops: None,
            // stats reads x; apply reads x and writes y.
            bytes: Some(3.0 * bytes),
        },
        BenchRow {
            kernel: "batchnorm_backward".into(),
            shape: tag,
            seconds: time_gpu(ctx, reps, |e| {
                bn.backward(
                    ctx,
                    e,
                    shape,
                    &x,
                    &y,
                    &saved,
                    &weight,
                    &grad_weight,
                    &grad_bias,
                    &grad_x,
                )
            })?,
            flops: None,
            // reduce reads x, dy; input reads x, dy and writes dx.
            bytes: Some(5.0 * bytes),
        },
    ])
}

/// 2x2 stride-2 max pooling forward and backward on `[256, C, H, W]` spikes.
fn maxpool_rows(
    ctx: &GpuContext,
    reps: usize,
    channels: usize,
    size: usize,
) -> Result<Vec<BenchRow>, GpuError> {
    let shape = [SAMPLES, channels, size, size];
    let pool = MaxPool2d::new(ctx, PoolWindow::default())?;
    let params = pool.params(SAMPLES, channels, size, size)?;
    let spikes: Vec<f32> = (0..params.input_len())
        .map(|i| ((i * 7919) % 5 == 0) as u32 as f32)
        .collect();
    let input = GpuBuffer::from_slice(ctx, &spikes, "input")?;
    let output = GpuBuffer::<f32>::zeros(ctx, params.output_len(), "output")?;
    let argmax = GpuBuffer::<u32>::zeros(ctx, params.output_len(), "argmax")?;
    let grad_input = GpuBuffer::<f32>::zeros(ctx, params.input_len(), "grad_input")?;
    let tag = format!("[{SAMPLES}, {channels}, {size}, {size}] 2x2/2");
    let (in_bytes, out_bytes) = (
        (params.input_len() * 4) as f64,
        (params.output_len() * 4) as f64,
    );
    Ok(vec![
        BenchRow::timed(
            "maxpool_forward",
            tag.clone(),
            time_gpu(ctx, reps, |e| {
                pool.forward(ctx, e, shape, &input, &output, &argmax)
            })?,
        )
        .bytes(in_bytes + 2.0 * out_bytes),
        BenchRow::timed(
            "maxpool_backward",
            tag,
            time_gpu(ctx, reps, |e| {
                pool.backward(ctx, e, shape, &argmax, &output, &grad_input)
            })?,
        )
        .bytes(in_bytes + 2.0 * out_bytes),
    ])
}

/// The benchmark rows of this family.
pub fn rows(ctx: &GpuContext, reps: usize) -> Result<Vec<BenchRow>, GpuError> {
    let mut rows = Vec::new();
    for (channels, spatial) in [(32, 784), (64, 196), (64, 49)] {
        rows.extend(batchnorm_rows(ctx, reps, channels, spatial)?);
    }
    for (channels, size) in [(32, 28), (64, 14)] {
        rows.extend(maxpool_rows(ctx, reps, channels, size)?);
    }
    let len = SAMPLES * 64 * 196;
    let add = ResidualAdd::new(ctx)?;
    let params = ElementwiseParams::new(len);
    let a = GpuBuffer::from_slice(ctx, &activations(len), "a")?;
    let b = GpuBuffer::from_slice(ctx, &activations(len), "b")?;
    let out = GpuBuffer::<f32>::zeros(ctx, len, "out")?;
    rows.push(
        BenchRow::timed(
            "residual_add",
            format!("[{SAMPLES}, 64, 196]"),
            time_gpu(ctx, reps, |e| add.dispatch(ctx, e, &params, &a, &b, &out))?,
        )
        .bytes((len * 4 * 3) as f64),
    );
    Ok(rows)
}
