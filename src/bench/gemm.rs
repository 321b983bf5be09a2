//! GEMM, conv and linear timings: square GEMMs (both variants) and every conv / linear pass of
//! the `mnist` preset at N = T*B = 256. GFLOP/s counts `2*M*N*K` of the underlying products.

use super::{time_gpu, BenchRow};
use crate::gpu::{GpuBuffer, GpuContext, GpuError, KernelVariant};
use crate::kernels::conv::{Conv2d, ConvShape};
use crate::kernels::conv_direct::ConvDirect;
use crate::kernels::gemm::{Gemm, GemmShape};
use crate::kernels::linear::{Linear, LinearShape};

/// Deterministic, non-trivial test data in [-1, 1).
fn filler(len: usize) -> Vec<f32> {
    super::pattern(len, 0, -1.0, 2.0)
}

fn upload(ctx: &GpuContext, len: usize, label: &str) -> Result<GpuBuffer<f32>, GpuError> {
    GpuBuffer::from_slice(ctx, &filler(len), label)
}

fn square_gemm(
    ctx: &GpuContext,
    reps: usize,
    variant: KernelVariant,
    s: usize,
) -> Result<BenchRow, GpuError> {
    let gemm = Gemm::with_variant(ctx, variant)?;
    let (a, b) = (upload(ctx, s * s, "a")?, upload(ctx, s * s, "b")?);
    let c = GpuBuffer::<f32>::zeros(ctx, s * s, "c")?;
    let shape = GemmShape::new(s, s, s);
    let name = match variant {
        KernelVariant::RegisterBlocked => "gemm_register",
        KernelVariant::SharedTiled => "gemm_tiled",
    };
    Ok(BenchRow::timed(
        name,
        format!("M=N=K={s}"),
        time_gpu(ctx, reps, |e| gemm.dispatch(ctx, e, &shape, &a, &b, &c))?,
    )
    .flops(shape.flops()))
}

fn conv_rows(
    ctx: &GpuContext,
    reps: usize,
    conv: &Conv2d,
    name: &str,
    shape: ConvShape,
) -> Result<Vec<BenchRow>, GpuError> {
    let x = upload(ctx, shape.input_len(), "input")?;
    let w = upload(ctx, shape.weight_len(), "weight")?;
    let gy = upload(ctx, shape.output_len(), "grad_output")?;
    let cols = GpuBuffer::<f32>::zeros(ctx, Conv2d::cols_scratch_len(&shape)?, "cols")?;
    let y = GpuBuffer::<f32>::zeros(ctx, shape.output_len(), "output")?;
    let gx = GpuBuffer::<f32>::zeros(ctx, shape.input_len(), "grad_input")?;
    let gw = GpuBuffer::<f32>::zeros(ctx, shape.weight_len(), "grad_weight")?;
    let desc = format!(
        "N={} {}->{} {}x{} k{} s{} p{}",
        shape.batch,
        shape.in_channels,
        shape.out_channels,
        shape.height,
        shape.width,
        shape.kernel_h,
        shape.stride,
        shape.padding
    );
    let mut rows = Vec::new();
    if ConvDirect::applies(&shape) {
        // What the direct conv replaces, for comparison.
        let gemm = time_gpu(ctx, reps, |e| {
            conv.forward_gemm(ctx, e, &shape, &x, &w, &cols, &y)
        })?;
        rows.push(
            BenchRow::timed(
                format!("{name}_forward_im2col_gemm (replaced)"),
                &desc,
                gemm,
            )
            .flops(shape.flops()),
        );
    }
    let seconds = [
        time_gpu(ctx, reps, |e| {
            conv.forward(ctx, e, &shape, &x, &w, &cols, &y)
        })?,
        time_gpu(ctx, reps, |e| {
            conv.backward_input(ctx, e, &shape, &gy, &w, &cols, &gx)
        })?,
        time_gpu(ctx, reps, |e| {
            conv.backward_weight(ctx, e, &shape, &x, &gy, &cols, &gw, false)
        })?,
    ];
    rows.extend(pass_rows(name, &desc, shape.flops(), seconds));
    Ok(rows)
}

fn linear_rows(
    ctx: &GpuContext,
    reps: usize,
    shape: LinearShape,
) -> Result<Vec<BenchRow>, GpuError> {
    let linear = Linear::new(ctx)?;
    let x = upload(ctx, shape.input_len(), "x")?;
    let w = upload(ctx, shape.weight_len(), "weight")?;
    let b = upload(ctx, shape.out_features, "bias")?;
    let gy = upload(ctx, shape.output_len(), "grad_y")?;
    let y = GpuBuffer::<f32>::zeros(ctx, shape.output_len(), "y")?;
    let gx = GpuBuffer::<f32>::zeros(ctx, shape.input_len(), "grad_x")?;
    let gw = GpuBuffer::<f32>::zeros(ctx, shape.weight_len(), "grad_weight")?;
    let gb = GpuBuffer::<f32>::zeros(ctx, shape.out_features, "grad_bias")?;
    let desc = format!(
        "N={} {}->{}",
        shape.batch, shape.in_features, shape.out_features
    );
    let seconds = [
        time_gpu(ctx, reps, |e| {
            linear.forward(ctx, e, &shape, &x, &w, Some(&b), &y)
        })?,
        time_gpu(ctx, reps, |e| {
            linear.backward_input(ctx, e, &shape, &gy, &w, &gx)
        })?,
        time_gpu(ctx, reps, |e| {
            linear.backward_weight(ctx, e, &shape, &x, &gy, &gw, Some(&gb), false)
        })?,
    ];
    Ok(pass_rows("linear", &desc, shape.flops(), seconds))
}

/// The forward, backward-input and backward-weight rows (`{name}_{pass}`) of one layer.
fn pass_rows(name: &str, desc: &str, flops: f64, seconds: [f64; 3]) -> Vec<BenchRow> {
    ["forward", "backward_input", "backward_weight"]
        .into_iter()
        .zip(seconds)
        .map(|(pass, s)| BenchRow::timed(format!("{name}_{pass}"), desc, s).flops(flops))
        .collect()
}

/// Square GEMMs (register-blocked 512 and 1024, shared-tiled 512 and, on GPUs, 1024), then the
/// mnist preset's convs and classifier (B = 64, T = 4) with the context's variant.
pub fn rows(ctx: &GpuContext, reps: usize) -> Result<Vec<BenchRow>, GpuError> {
    let mut rows = vec![
        square_gemm(ctx, reps, KernelVariant::RegisterBlocked, 512)?,
        square_gemm(ctx, reps, KernelVariant::RegisterBlocked, 1024)?,
        square_gemm(ctx, reps, KernelVariant::SharedTiled, 512)?,
    ];
    // The shared-tiled 1024 run takes ~0.3 s per call on lavapipe; only time it where it is the
    // variant in use.
    if ctx.variant == KernelVariant::SharedTiled {
        rows.push(square_gemm(ctx, reps, KernelVariant::SharedTiled, 1024)?);
    }
    let n = 4 * 64;
    let conv = Conv2d::new(ctx)?;
    rows.extend(conv_rows(
        ctx,
        reps,
        &conv,
        "conv1",
        ConvShape::new(n, 1, 32, 28, 28, 3, 1, 1),
    )?);
    rows.extend(conv_rows(
        ctx,
        reps,
        &conv,
        "conv2",
        ConvShape::new(n, 32, 64, 14, 14, 3, 1, 1),
    )?);
    rows.extend(conv_rows(
        ctx,
        reps,
        &conv,
        "conv3",
        ConvShape::new(n, 64, 64, 7, 7, 3, 1, 1),
    )?);
    rows.extend(linear_rows(ctx, reps, LinearShape::new(n, 64 * 7 * 7, 10))?);
    Ok(rows)
}
