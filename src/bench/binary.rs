//! Binary-layer kernels at the `mnist` preset (N = T*B = 256): binarization, spike and weight
//! packing, the bit-packed popcount forward of conv2/conv3 next to the float im2col + GEMM
//! forward of the same layer, the packed weight and input gradients next to the float ones, sign-flip counting and moments over the largest spike tensor;
//! and conv2 on means of 4 spikes (what a 2x2 average pool of spikes gives, as in the `vgg11`
//! preset): the popcount over bit planes of the counts next to the float forward it replaced.
//! Popcount rows count `2 * C_out * C_in * kH * kW * OH * OW * N` equivalent FLOPs so their
//! GFLOP/s compares with the float path's.

use super::{time_gpu, BenchRow};
use crate::gpu::{GpuBuffer, GpuContext, GpuError};
use crate::kernels::binarize::{BinarizeForward, BinarizeParams};
use crate::kernels::conv::{Conv2d, ConvShape};
use crate::kernels::flips::{FlipParams, PackSigns, PackSignsParams, SignFlipCount};
use crate::kernels::packed_grad::{
    PackedConvGradParams, PackedConvInputGrad, PackedConvWeightGrad,
};
use crate::kernels::popcount::{
    BinaryConvPopcount, PackSpikes, PackSpikesParams, PackWeights, PackWeightsParams,
    PopcountConvParams, SpikeArea,
};
use crate::kernels::stats::Moments;

/// `N = T * B` of the `mnist` preset.
const BATCH: usize = 256;

/// Deterministic weights in [-1, 1).
fn weights(len: usize) -> Vec<f32> {
    super::pattern(len, 0, -1.0, 2.0)
}

/// Deterministic spikes at a firing rate of about 1/5.
fn spikes(len: usize) -> Vec<f32> {
    (0..len)
        .map(|i| {
            if (i * 2_654_435_761) % 5 == 0 {
                1.0
            } else {
                0.0
            }
        })
        .collect()
}

fn describe(s: &ConvShape) -> String {
    format!(
        "N={} {}->{} {}x{} k{} s{} p{}",
        s.batch, s.in_channels, s.out_channels, s.height, s.width, s.kernel_h, s.stride, s.padding
    )
}

/// Popcount forward (with and without packing the input) and the float forward of one layer.
fn layer_rows(
    ctx: &GpuContext,
    reps: usize,
    name: &str,
    shape: ConvShape,
) -> Result<Vec<BenchRow>, GpuError> {
    let (pack_spikes, pack_weights) = (PackSpikes::new(ctx)?, PackWeights::new(ctx)?);
    let (popcount, binarize, float_conv) = (
        BinaryConvPopcount::new(ctx)?,
        BinarizeForward::new(ctx)?,
        Conv2d::new(ctx)?,
    );
    let (packed_grad, packed_input) = (
        PackedConvWeightGrad::new(ctx)?,
        PackedConvInputGrad::new(ctx)?,
    );
    let sp = PackSpikesParams::for_conv(&shape);
    let wp = PackWeightsParams::for_conv(&shape);
    let cp = PopcountConvParams::new(&shape);
    let bp = BinarizeParams::new(shape.out_channels, shape.col_rows());

    let x = GpuBuffer::from_slice(ctx, &spikes(shape.input_len()), "spikes")?;
    let w = GpuBuffer::from_slice(ctx, &weights(shape.weight_len()), "latent")?;
    let wb = GpuBuffer::<f32>::zeros(ctx, shape.weight_len(), "weight_b")?;
    let gamma = GpuBuffer::<f32>::zeros(ctx, shape.out_channels, "gamma")?;
    let xp = GpuBuffer::<u32>::zeros(ctx, sp.total_words as usize, "packed spikes")?;
    let wpk = GpuBuffer::<u32>::zeros(ctx, wp.total_words as usize, "packed weights")?;
    let y = GpuBuffer::<f32>::zeros(ctx, shape.output_len(), "output")?;
    let cols = GpuBuffer::<f32>::zeros(ctx, Conv2d::cols_scratch_len(&shape)?, "cols")?;
    // Prepare gamma and packed weights/spikes once; the timed calls reuse them.
    let mut enc = ctx.encoder("bench setup");
    binarize.dispatch(ctx, &mut enc, &bp, &w, &wb, &gamma)?;
    pack_weights.dispatch(ctx, &mut enc, &wp, &w, &wpk)?;
    pack_spikes.dispatch(ctx, &mut enc, &sp, &x, &xp)?;
    ctx.submit(enc);

    let desc = describe(&shape);
    let flops = Some(shape.flops());
    let spike_bytes = Some((shape.input_len() * 4 + sp.total_words as usize * 4) as f64);
    let weight_bytes = Some((shape.weight_len() * 4 * 3 + shape.out_channels * 4) as f64);
    Ok(vec![
        BenchRow {
            kernel: format!("binarize_forward {name}"),
            shape: format!("[{}, {}]", shape.out_channels, shape.col_rows()),
            seconds: time_gpu(ctx, reps, |e| {
                binarize.dispatch(ctx, e, &bp, &w, &wb, &gamma)
            })?,
            flops: None,
            bytes: weight_bytes,
        },
        BenchRow::timed(
            format!("pack_weights {name}"),
            format!(
                "[{}, {}, {}, {}]",
                shape.out_channels, shape.in_channels, shape.kernel_h, shape.kernel_w
            ),
            time_gpu(ctx, reps, |e| pack_weights.dispatch(ctx, e, &wp, &w, &wpk))?,
        )
        .bytes((shape.weight_len() * 4 + wp.total_words as usize * 4) as f64),
        BenchRow {
            kernel: format!("pack_spikes {name} input"),
            shape: format!(
                "[{}, {}, {}, {}]",
                shape.batch, shape.in_channels, shape.height, shape.width
            ),
            seconds: time_gpu(ctx, reps, |e| pack_spikes.dispatch(ctx, e, &sp, &x, &xp))?,
            flops: None,
            bytes: spike_bytes,
        },
        BenchRow {
            kernel: format!("binary_conv_popcount {name}"),
            shape: desc.clone(),
            seconds: time_gpu(ctx, reps, |e| {
                popcount.dispatch(ctx, e, &cp, &xp, &wpk, &gamma, &y)
            })?,
            flops,
            bytes: None,
        },
        BenchRow {
            kernel: format!("binary_conv_popcount+pack_spikes {name}"),
            shape: desc.clone(),
            seconds: time_gpu(ctx, reps, |e| {
                pack_spikes.dispatch(ctx, e, &sp, &x, &xp)?;
                popcount.dispatch(ctx, e, &cp, &xp, &wpk, &gamma, &y)
            })?,
            flops,
            bytes: None,
        },
        BenchRow {
            kernel: format!("float conv forward (im2col+GEMM) {name}"),
            shape: desc.clone(),
            seconds: time_gpu(ctx, reps, |e| {
                float_conv.forward(ctx, e, &shape, &x, &wb, &cols, &y)
            })?,
            flops,
            bytes: None,
        },
        // The weight gradient from the same spikes (y stands in for dL/d(output)).
        BenchRow {
            kernel: format!("packed_conv_weight_grad {name}"),
            shape: desc.clone(),
            seconds: time_gpu(ctx, reps, |e| {
                packed_grad.dispatch(
                    ctx,
                    e,
                    &PackedConvGradParams::weight_grad(&shape),
                    &xp,
                    &y,
                    &wb,
                )
            })?,
            flops,
            bytes: None,
        },
        BenchRow {
            kernel: format!("float conv backward_weight (im2col+GEMM) {name}"),
            shape: desc.clone(),
            seconds: time_gpu(ctx, reps, |e| {
                float_conv.backward_weight(ctx, e, &shape, &x, &y, &cols, &wb, false)
            })?,
            flops,
            bytes: None,
        },
        // The input gradient (x stands in for dL/d(input); wb was overwritten above, so
        // rebinarize first).
        BenchRow {
            kernel: format!("packed_conv_input_grad {name}"),
            shape: desc.clone(),
            seconds: time_gpu(ctx, reps, |e| {
                packed_input.dispatch(
                    ctx,
                    e,
                    &PackedConvGradParams::input_grad(&shape),
                    &y,
                    &wpk,
                    &gamma,
                    &x,
                )
            })?,
            flops,
            bytes: None,
        },
        BenchRow {
            kernel: format!("float conv backward_input (GEMM+col2im) {name}"),
            shape: desc,
            seconds: time_gpu(ctx, reps, |e| {
                binarize.dispatch(ctx, e, &bp, &w, &wb, &gamma)?;
                float_conv.backward_input(ctx, e, &shape, &y, &wb, &cols, &x)
            })?,
            flops,
            bytes: None,
        },
    ])
}

/// conv2's forward on means of 4 spikes (a 2x2 average pool of spikes before it): packing the
/// bit planes, the popcount over them, and the float forward (what such convs ran before).
fn averaged_rows(
    ctx: &GpuContext,
    reps: usize,
    shape: ConvShape,
) -> Result<Vec<BenchRow>, GpuError> {
    let area = SpikeArea::new(4).ok_or_else(|| GpuError::shape("bench", "area 4"))?;
    let (pack_spikes, pack_weights) = (PackSpikes::new(ctx)?, PackWeights::new(ctx)?);
    let (popcount, binarize, float_conv) = (
        BinaryConvPopcount::new(ctx)?,
        BinarizeForward::new(ctx)?,
        Conv2d::new(ctx)?,
    );
    let sp = PackSpikesParams::for_conv(&shape).with_area(area);
    let wp = PackWeightsParams::for_conv(&shape);
    let cp = PopcountConvParams::new(&shape).with_area(area);
    let bp = BinarizeParams::new(shape.out_channels, shape.col_rows());
    let means: Vec<f32> = spikes(4 * shape.input_len())
        .chunks(4)
        .map(|w| w.iter().sum::<f32>() / 4.0)
        .collect();
    let x = GpuBuffer::from_slice(ctx, &means, "means of spikes")?;
    let w = GpuBuffer::from_slice(ctx, &weights(shape.weight_len()), "latent")?;
    let wb = GpuBuffer::<f32>::zeros(ctx, shape.weight_len(), "weight_b")?;
    let gamma = GpuBuffer::<f32>::zeros(ctx, shape.out_channels, "gamma")?;
    let xp = GpuBuffer::<u32>::zeros(ctx, sp.packed_len(), "packed planes")?;
    let wpk = GpuBuffer::<u32>::zeros(ctx, wp.total_words as usize, "packed weights")?;
    let y = GpuBuffer::<f32>::zeros(ctx, shape.output_len(), "output")?;
    let cols = GpuBuffer::<f32>::zeros(ctx, Conv2d::cols_scratch_len(&shape)?, "cols")?;
    let mut enc = ctx.encoder("bench setup");
    binarize.dispatch(ctx, &mut enc, &bp, &w, &wb, &gamma)?;
    pack_weights.dispatch(ctx, &mut enc, &wp, &w, &wpk)?;
    ctx.submit(enc);
    let desc = format!("{}, means of 4 spikes", describe(&shape));
    let flops = Some(shape.flops());
    Ok(vec![
        BenchRow::timed(
            "pack_spikes conv2 input, 3 bit planes",
            desc.clone(),
            time_gpu(ctx, reps, |e| pack_spikes.dispatch(ctx, e, &sp, &x, &xp))?,
        ),
        BenchRow {
            kernel: "binary_conv_popcount+pack_spikes conv2, 3 bit planes".into(),
            shape: desc.clone(),
            seconds: time_gpu(ctx, reps, |e| {
                pack_spikes.dispatch(ctx, e, &sp, &x, &xp)?;
                popcount.dispatch(ctx, e, &cp, &xp, &wpk, &gamma, &y)
            })?,
            flops,
            bytes: None,
        },
        BenchRow {
            kernel: "float conv forward (im2col+GEMM) conv2 (replaced)".into(),
            shape: desc,
            seconds: time_gpu(ctx, reps, |e| {
                float_conv.forward(ctx, e, &shape, &x, &wb, &cols, &y)
            })?,
            flops,
            bytes: None,
        },
    ])
}

/// Benchmark rows of the binary-layer family.
pub fn rows(ctx: &GpuContext, reps: usize) -> Result<Vec<BenchRow>, GpuError> {
    let conv2 = ConvShape::new(BATCH, 32, 64, 14, 14, 3, 1, 1);
    let conv3 = ConvShape::new(BATCH, 64, 64, 7, 7, 3, 1, 1);
    let mut rows = layer_rows(ctx, reps, "conv2", conv2)?;
    rows.extend(layer_rows(ctx, reps, "conv3", conv3)?);
    rows.extend(averaged_rows(ctx, reps, conv2)?);

    // Flip counting for conv3's weights: pack the current signs, XOR-count, snapshot.
    let (pack, flips) = (PackSigns::new(ctx)?, SignFlipCount::new(ctx)?);
    let numel = conv3.weight_len();
    let pp = PackSignsParams::new(numel);
    let fp = FlipParams::new(numel, 1);
    let w = GpuBuffer::from_slice(ctx, &weights(numel), "latent")?;
    let current = GpuBuffer::<u32>::zeros(ctx, pp.words as usize, "current")?;
    let snapshot = GpuBuffer::<u32>::zeros(ctx, pp.words as usize, "snapshot")?;
    let counts = GpuBuffer::<u32>::zeros(ctx, 2, "counts")?;
    rows.push(
        BenchRow::timed(
            "pack_signs+sign_flip_count+snapshot",
            format!("conv3 weights, {numel} signs"),
            time_gpu(ctx, reps, |e| {
                pack.dispatch(ctx, e, &pp, &w, &current)?;
                flips.dispatch(ctx, e, &fp, &snapshot, &current, &counts)?;
                flips.snapshot(e, &current, &snapshot)
            })?,
        )
        .bytes((numel * 4 + pp.words as usize * 4 * 4) as f64),
    );

    // Moments over conv1's spikes [256, 32, 28, 28], the largest spike tensor of the preset.
    let moments = Moments::new(ctx)?;
    let len = BATCH * 32 * 28 * 28;
    let x = GpuBuffer::from_slice(ctx, &spikes(len), "spikes")?;
    let scratch = GpuBuffer::<f32>::zeros(ctx, Moments::partials_len(len), "partials")?;
    let summary = GpuBuffer::<f32>::zeros(ctx, 6, "summary")?;
    rows.push(
        BenchRow::timed(
            "moments (partial+final)",
            format!("[{BATCH}, 32, 28, 28] = {len}"),
            time_gpu(ctx, reps, |e| {
                moments.dispatch(ctx, e, &x, &scratch, &summary, 1, true)
            })?,
        )
        .bytes(len as f64 * 4.0),
    );
    Ok(rows)
}
