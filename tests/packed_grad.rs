//! `packed_conv_weight_grad` (the weight gradient of a conv on spikes, read bit-packed) and
//! `packed_conv_input_grad` (the input gradient with the weights read as sign bits and gamma)
//! against their CPU mirrors (same f32 sums in the same order), against the f64 conv gradients
//! of the CPU reference and against the float im2col + GEMM paths they replace, on awkward
//! shapes: channel counts around a word (1, 31, 32, 33, 70), strides, padding, non-square
//! kernels; the weight gradient also on means of spikes (bit planes of the counts, what an
//! average pool of spikes gives).

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use bitspike::gpu::split::SampleRanges;

use bitspike::cpu;
use bitspike::gpu::GpuContext;
use bitspike::kernels::conv::{Conv2d, ConvShape};
use bitspike::kernels::packed_grad::{
    PackedConvGradParams, PackedConvInputGrad, PackedConvWeightGrad,
};
use bitspike::kernels::popcount::{
    padded_out_channels, PackSpikesParams, PackWeightsParams, SpikeArea,
};
use common::*;

fn shapes() -> Vec<ConvShape> {
    let mut out = vec![
        ConvShape::new(1, 1, 1, 1, 1, 1, 1, 0),
        ConvShape::new(2, 31, 3, 5, 7, 3, 1, 1),
        ConvShape::new(3, 32, 17, 6, 6, 3, 2, 1),
        ConvShape::new(2, 33, 5, 9, 4, 3, 1, 0),
        ConvShape::new(4, 70, 8, 14, 14, 3, 1, 1),
        ConvShape::new(5, 64, 64, 7, 7, 3, 1, 1),
        ConvShape::new(2, 40, 6, 8, 8, 1, 2, 0),
        // Stride 2 with an odd width of 9: the input gradient's last slot of a row starts past
        // the row's end (four pixels x + 2k per invocation, 9 = 8 + 1).
        ConvShape::new(2, 33, 6, 9, 9, 3, 2, 1),
        // 128 frames of 28 x 28: 100,352 rows x columns, past the 65,535 loop iterations
        // lavapipe runs per invocation (the weight gradient splits its rows over dispatches;
        // in one pass the sums came back short).
        ConvShape::new(128, 16, 16, 28, 28, 3, 1, 1),
    ];
    // A non-square kernel.
    out.push(ConvShape {
        kernel_h: 1,
        kernel_w: 3,
        padding: 1,
        ..ConvShape::new(2, 36, 4, 5, 6, 3, 1, 1)
    });
    out
}

/// One weight-gradient check: the kernel on `input` (spikes, or means of `area` spikes) packed
/// as the forward packs it, against its CPU mirror (the same terms in the same order: bit for
/// bit), the f64 gradient and the float im2col + GEMM path it replaces.
fn check_weight_grad(
    ctx: &GpuContext,
    shape: &ConvShape,
    input: &[f32],
    area: SpikeArea,
    seed: u64,
) {
    let (kernel, float) = (
        PackedConvWeightGrad::new(ctx).unwrap(),
        Conv2d::new(ctx).unwrap(),
    );
    let grad_out = uniform(&mut rng(seed), shape.output_len(), -1.0, 1.0);
    let pack = PackSpikesParams::for_conv(shape).with_area(area);
    let mut packed = vec![0u32; pack.packed_len()];
    cpu::popcount::pack_spikes(&pack, input, &mut packed);
    let params = PackedConvGradParams::weight_grad(shape).with_area(area);
    let mut want = vec![0.0; shape.weight_len()];
    cpu::packed_grad::packed_conv_weight_grad(&params, &packed, &grad_out, &mut want);
    let (p, g, out) = (
        upload(ctx, &packed),
        upload(ctx, &grad_out),
        filled(ctx, shape.weight_len(), f32::NAN),
    );
    record(ctx, |enc| kernel.dispatch(ctx, enc, &params, &p, &g, &out));
    let got = read(ctx, &out);
    let tag = format!("{shape:?}, means of {area:?}");
    assert_exact(&format!("{tag} vs mirror"), &got, &want);

    // Bound in windows of samples (a tensor larger than one binding, `gpu::split`): the same
    // sums in the same order, bit for bit. The smallest limit that splits the batch and still
    // holds the weights.
    let per = |len: usize| (len / shape.batch * 4) as u64;
    let bytes = [per(shape.output_len()), per(packed.len())];
    let weights = (shape.weight_len() * 4) as u64;
    let limit = (1..=shape.batch as u64)
        .map(|k| k * bytes[0].max(bytes[1]))
        .find(|&l| {
            l >= weights
                && SampleRanges::under(l, "test", shape.batch, &bytes).is_ok_and(|r| r.len() > 1)
        });
    if let Some(limit) = limit {
        let windowed = filled(ctx, shape.weight_len(), f32::NAN);
        ctx.limit_bindings(limit);
        record(ctx, |enc| {
            kernel.dispatch(ctx, enc, &params, &p, &g, &windowed)
        });
        ctx.limit_bindings(u64::MAX);
        assert_exact(
            &format!("{tag} in windows of {limit} bytes"),
            &read(ctx, &windowed),
            &want,
        );
    }

    let mut exact = vec![0.0; shape.weight_len()];
    cpu::conv::conv2d_backward_weight(shape, input, &grad_out, &mut exact);
    // f32 sums of N * OH * OW terms of magnitude <= 1: their rounding grows with the count
    // (1.3e-3 at 100,352 terms), so the absolute tolerance does too.
    let terms = (shape.batch * shape.out_h() * shape.out_w()) as f32;
    let atol = (2e-8 * terms).max(1e-4);
    assert_close(&format!("{tag} vs f64 reference"), &got, &exact, 1e-4, atol);
    let (x, cols, gemm_out) = (
        upload(ctx, input),
        zeros(ctx, Conv2d::cols_scratch_len(shape).unwrap()),
        zeros(ctx, shape.weight_len()),
    );
    record(ctx, |enc| {
        float.backward_weight(ctx, enc, shape, &x, &g, &cols, &gemm_out, false)
    });
    let gemm = read(ctx, &gemm_out);
    assert_close(
        &format!("{tag} vs float path"),
        &got,
        &gemm,
        1e-4,
        2.0 * atol,
    );
}

#[test]
fn packed_conv_weight_grad_matches_cpu_reference() {
    let Some(ctx) = gpu() else { return };
    let mut r = rng(3);
    for (i, shape) in shapes().into_iter().enumerate() {
        let input = spikes(&mut r, shape.input_len(), 0.2);
        check_weight_grad(&ctx, &shape, &input, SpikeArea::SPIKES, 300 + i as u64);
    }
}

/// Means of `area` spikes (an average pool's output): the weight gradient reads the bit planes
/// of the counts, plane by plane, and divides by the area once. The last shape runs past
/// lavapipe's loop limit in every plane.
#[test]
fn packed_conv_weight_grad_on_means_of_spikes_matches_cpu_reference() {
    let Some(ctx) = gpu() else { return };
    let mut r = rng(5);
    let cases = [
        (4, ConvShape::new(2, 31, 3, 5, 7, 3, 1, 1)),
        (9, ConvShape::new(3, 33, 17, 6, 6, 3, 2, 1)),
        (16, ConvShape::new(4, 70, 8, 14, 14, 3, 1, 1)),
        (4, ConvShape::new(2, 40, 6, 8, 8, 1, 2, 0)),
        (4, ConvShape::new(96, 16, 8, 28, 28, 3, 1, 1)),
    ];
    for (i, (area, shape)) in cases.into_iter().enumerate() {
        let area = SpikeArea::new(area).unwrap();
        let input: Vec<f32> = spikes(&mut r, shape.input_len() * area.get() as usize, 0.2)
            .chunks(area.get() as usize)
            .map(|w| w.iter().sum::<f32>() / area.get() as f32)
            .collect();
        check_weight_grad(&ctx, &shape, &input, area, 500 + i as u64);
    }
}

#[test]
fn packed_conv_weight_grad_refuses_wrong_lengths() {
    let Some(ctx) = gpu() else { return };
    let kernel = PackedConvWeightGrad::new(&ctx).unwrap();
    let shape = shapes()[2];
    let params = PackedConvGradParams::weight_grad(&shape);
    let words = PackSpikesParams::for_conv(&shape).total_words as usize;
    let (p, g, w) = (
        zeros::<u32>(&ctx, words),
        zeros::<f32>(&ctx, shape.output_len()),
        zeros::<f32>(&ctx, shape.weight_len() + 1),
    );
    let mut enc = ctx.encoder("test");
    assert_err_contains(
        kernel.dispatch(&ctx, &mut enc, &params, &p, &g, &w),
        "grad_weight",
    );
    // The input gradient's params are refused (their invocation count may coincide).
    let w = zeros::<f32>(&ctx, shape.weight_len());
    assert_err_contains(
        kernel.dispatch(
            &ctx,
            &mut enc,
            &PackedConvGradParams::input_grad(&shape),
            &p,
            &g,
            &w,
        ),
        "weight_grad",
    );
}

#[test]
fn packed_conv_input_grad_matches_cpu_reference() {
    let Some(ctx) = gpu() else { return };
    let kernel = PackedConvInputGrad::new(&ctx).unwrap();
    let float = Conv2d::new(&ctx).unwrap();
    let mut r = rng(4);
    for shape in shapes() {
        let latent = uniform(&mut r, shape.weight_len(), -1.0, 1.0);
        let gamma = uniform(&mut r, shape.out_channels, 0.05, 0.5);
        let grad_out = uniform(&mut r, shape.output_len(), -1.0, 1.0);
        let pack = PackWeightsParams::for_conv(&shape);
        let mut signs = vec![0u32; pack.total_words as usize];
        cpu::popcount::pack_weights(&pack, &latent, &mut signs);
        let per_co = shape.weight_len() / shape.out_channels;
        let weight_b: Vec<f32> = latent
            .iter()
            .enumerate()
            .map(|(i, &w)| gamma[i / per_co] * if w >= 0.0 { 1.0 } else { -1.0 })
            .collect();
        let params = PackedConvGradParams::input_grad(&shape);

        let mut want = vec![0.0; shape.input_len()];
        cpu::packed_grad::packed_conv_input_grad(&params, &grad_out, &signs, &gamma, &mut want);
        let (g, sg, gm, out) = (
            upload(&ctx, &grad_out),
            upload(&ctx, &signs),
            upload(&ctx, &gamma),
            filled(&ctx, shape.input_len(), f32::NAN),
        );
        record(&ctx, |enc| {
            kernel.dispatch(&ctx, enc, &params, &g, &sg, &gm, &out)
        });
        let got = read(&ctx, &out);
        let tag = format!("input grad {shape:?}");
        // The same terms in the same order: bit for bit.
        assert_exact(&format!("{tag} vs mirror"), &got, &want);

        let mut exact = vec![0.0; shape.input_len()];
        cpu::conv::conv2d_backward_input(&shape, &grad_out, &weight_b, &mut exact);
        assert_close(&format!("{tag} vs f64 reference"), &got, &exact, 1e-4, 1e-5);
        let (wb, cols, gemm_out) = (
            upload(&ctx, &weight_b),
            zeros(&ctx, Conv2d::cols_scratch_len(&shape).unwrap()),
            zeros(&ctx, shape.input_len()),
        );
        record(&ctx, |enc| {
            float.backward_input(&ctx, enc, &shape, &g, &wb, &cols, &gemm_out)
        });
        assert_close(
            &format!("{tag} vs float path"),
            &got,
            &read(&ctx, &gemm_out),
            1e-4,
            1e-5,
        );
    }
}

/// Shapes whose signs pass the 64 KiB uniform copy: split over words, over kernel rows
/// (continuing the stored sums), and over output channels within a row. Bit for bit the
/// mirror, which sums in one pass.
#[test]
fn packed_conv_input_grad_split_over_uniform_copies_matches_cpu_reference() {
    let Some(ctx) = gpu() else { return };
    let kernel = PackedConvInputGrad::new(&ctx).unwrap();
    let mut r = rng(5);
    let cases = [
        // 3 words x 9 taps x 1,024 channels: one word per dispatch.
        (ConvShape::new(1, 70, 1024, 4, 5, 3, 1, 1), 3),
        // 3 taps x 2,048 channels a row: rows 0-1, then row 2 continuing (2 words).
        (ConvShape::new(1, 33, 2048, 3, 3, 3, 1, 1), 4),
        // 6,000 channels x 3 taps > 16,384: channel ranges per row; stride 2 (general form).
        (ConvShape::new(1, 20, 6000, 4, 3, 3, 2, 1), 6),
        // 7 words, two per dispatch: copies per tap of runs of two words, words 1 of 2 read.
        (ConvShape::new(1, 200, 700, 3, 3, 3, 1, 1), 4),
        // 5,461 channels: 3 x 5,461 fits 16,384, 3 x 5,472 (padded) does not: one range of
        // all channels per row, copied unpadded.
        (ConvShape::new(1, 20, 5461, 3, 3, 3, 1, 1), 3),
    ];
    for (shape, dispatches) in cases {
        let parts = PackedConvInputGrad::parts(&shape);
        assert_eq!(parts.len(), dispatches, "{shape:?}: {parts:?}");
        let latent = uniform(&mut r, shape.weight_len(), -1.0, 1.0);
        let gamma = uniform(&mut r, shape.out_channels, 0.05, 0.5);
        let grad_out = uniform(&mut r, shape.output_len(), -1.0, 1.0);
        let pack = PackWeightsParams::for_conv(&shape);
        let mut signs = vec![0u32; pack.total_words as usize];
        cpu::popcount::pack_weights(&pack, &latent, &mut signs);
        let params = PackedConvGradParams::input_grad(&shape);
        let mut want = vec![0.0; shape.input_len()];
        cpu::packed_grad::packed_conv_input_grad(&params, &grad_out, &signs, &gamma, &mut want);
        let (g, sg, gm, out) = (
            upload(&ctx, &grad_out),
            upload(&ctx, &signs),
            upload(&ctx, &gamma),
            filled(&ctx, shape.input_len(), f32::NAN),
        );
        record(&ctx, |enc| {
            kernel.dispatch(&ctx, enc, &params, &g, &sg, &gm, &out)
        });
        assert_exact(
            &format!("split input grad {shape:?}"),
            &read(&ctx, &out),
            &want,
        );
    }
}

/// Every (word, kernel row, output channel) is summed by exactly one part, rows and channels
/// in order, and a part continues the sums exactly when an earlier one of its word wrote them.
#[test]
fn packed_conv_input_grad_parts_cover_every_sum_once_in_order() {
    for shape in [
        ConvShape::new(1, 31, 8, 3, 3, 3, 1, 1),
        ConvShape::new(1, 300, 1000, 3, 3, 3, 1, 1),
        ConvShape::new(1, 70, 2048, 3, 3, 3, 1, 1),
        ConvShape::new(1, 40, 16_384, 2, 2, 3, 1, 1),
        ConvShape::new(1, 64, 9000, 2, 2, 1, 1, 0),
        ConvShape::new(1, 20, 5461, 3, 3, 3, 1, 1),
        ConvShape::new(1, 20, 3270, 3, 3, 5, 1, 2),
    ] {
        let words = shape.in_channels.div_ceil(32);
        let parts = PackedConvInputGrad::parts(&shape);
        for word in 0..words {
            let mine: Vec<_> = parts
                .iter()
                .filter(|p| (p.words.0..p.words.1).contains(&word))
                .collect();
            let mut next = (0, 0); // (kh, co) the next part must start at
            for (i, p) in mine.iter().enumerate() {
                // What the part copies fits the 64 KiB uniform, and holds its channels.
                let wc = p.words.1 - p.words.0;
                let copied = (p.kh.1 - p.kh.0) * shape.kernel_w * wc * p.stride;
                assert!(copied <= 16_384, "{shape:?} {p:?}: {copied} words");
                assert!(p.stride >= p.co.1 - p.co.0, "{shape:?} {p:?}");
                if p.stride != p.co.1 - p.co.0 {
                    assert_eq!(p.stride, padded_out_channels(shape.out_channels));
                }
                assert_eq!(p.resume, i > 0, "{shape:?} {p:?}");
                assert_eq!((p.kh.0, p.co.0), next, "{shape:?} {p:?}");
                next = if p.co.1 == shape.out_channels {
                    (p.kh.1, 0)
                } else {
                    assert_eq!(p.kh.1, p.kh.0 + 1, "{shape:?} {p:?}");
                    (p.kh.0, p.co.1)
                };
            }
            assert_eq!(
                next,
                (shape.kernel_h, 0),
                "{shape:?}: word {word} not covered"
            );
        }
    }
}

#[test]
fn packed_conv_input_grad_refuses_wrong_lengths_and_foreign_params() {
    let Some(ctx) = gpu() else { return };
    let kernel = PackedConvInputGrad::new(&ctx).unwrap();
    let shape = shapes()[3];
    let words = PackWeightsParams::for_conv(&shape).total_words as usize;
    let (g, sg, gm, out) = (
        zeros::<f32>(&ctx, shape.output_len()),
        zeros::<u32>(&ctx, words),
        zeros::<f32>(&ctx, shape.out_channels),
        zeros::<f32>(&ctx, shape.input_len()),
    );
    let mut enc = ctx.encoder("test");
    let params = PackedConvGradParams::input_grad(&shape);
    let short = zeros::<f32>(&ctx, shape.out_channels - 1);
    assert_err_contains(
        kernel.dispatch(&ctx, &mut enc, &params, &g, &sg, &short, &out),
        "gamma",
    );
    let foreign = PackedConvGradParams::weight_grad(&shape);
    assert_err_contains(
        kernel.dispatch(&ctx, &mut enc, &foreign, &g, &sg, &gm, &out),
        "input_grad",
    );
}
