//! LIF forward/backward at the `mnist` preset's largest spiking layer: T=4, B=64, 32x28x28.

use super::{time_gpu, BenchRow};
use crate::gpu::{GpuBuffer, GpuContext, GpuError};
use crate::kernels::lif::{LifBackward, LifConfig, LifForward, LifParams};

pub fn rows(ctx: &GpuContext, reps: usize) -> Result<Vec<BenchRow>, GpuError> {
    let (t, n) = (4usize, 64 * 32 * 28 * 28);
    let params = LifParams::new(&LifConfig::default(), t, n);
    let current = super::pattern(t * n, 0, 0.0, 2.5);
    let current = GpuBuffer::from_slice(ctx, &current, "current")?;
    let spikes = GpuBuffer::<f32>::zeros(ctx, t * n, "spikes")?;
    let membrane = GpuBuffer::<f32>::zeros(ctx, t * n, "membrane")?;
    let grad = GpuBuffer::<f32>::zeros(ctx, t * n, "grad")?;
    let fwd = LifForward::new(ctx)?;
    let bwd = LifBackward::new(ctx)?;
    let shape = format!("T={t} N={n}");
    let bytes = (t * n * 4 * 3) as f64;
    Ok(vec![
        BenchRow::timed(
            "lif_forward",
            shape.clone(),
            time_gpu(ctx, reps, |e| {
                fwd.dispatch(ctx, e, &params, &current, &spikes, &membrane)
            })?,
        )
        .bytes(bytes),
        BenchRow {
            kernel: "lif_backward".into(),
            shape,
            seconds: time_gpu(ctx, reps, |e| {
                bwd.dispatch(ctx, e, &params, &membrane, &spikes, &grad)
            })?,
            flops: None,
            bytes: Some(bytes),
        },
    ])
}
