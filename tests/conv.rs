//! im2col / col2im and the composite Conv2d (forward, backward input, backward weight) against
//! the direct-loop CPU mirrors, the gradients also against central finite differences of an f64
//! forward, and batch chunking with a scratch smaller than the batch; the direct conv forward
//! (few taps per output: the encoder) against the CPU mirror and against the im2col + GEMM chain
//! it replaces.

// Tests fail by panicking; unwrap is the clearest way to say "this must succeed".
#![allow(clippy::unwrap_used)]

mod common;

use bitspike::cpu;
use bitspike::gpu::{GpuContext, KernelVariant};
use bitspike::kernels::conv::{Col2im, Conv2d, ConvShape, Im2col};
use bitspike::kernels::conv_direct::{ConvDirect, ConvDirectWeightGrad};
use common::*;

const VARIANTS: [KernelVariant; 2] = [KernelVariant::RegisterBlocked, KernelVariant::SharedTiled];

/// (batch, C_in, C_out, H, W, kernel, stride, padding): 3x3 pad 1 stride 1, 3x3 stride 2,
/// 1x1 stride 2, C_in = 1, odd sizes, N = 1, and one mnist-like layer.
fn shapes() -> Vec<ConvShape> {
    [
        (2, 3, 5, 8, 8, 3, 1, 1),
        (3, 4, 6, 9, 7, 3, 2, 1),
        (2, 5, 7, 9, 9, 1, 2, 0),
        (3, 1, 8, 11, 13, 3, 1, 1),
        (1, 6, 9, 5, 5, 3, 1, 1),
        (1, 2, 3, 7, 5, 3, 2, 0),
        (4, 32, 64, 14, 14, 3, 1, 1),
    ]
    .into_iter()
    .map(|(n, ci, co, h, w, k, s, p)| ConvShape::new(n, ci, co, h, w, k, s, p))
    .collect()
}

/// (output, grad_input, grad_weight).
type Passes = (Vec<f32>, Vec<f32>, Vec<f32>);

/// Runs forward, backward_input and backward_weight on the GPU with a cols scratch of `scratch`
/// elements; returns (output, grad_input, grad_weight).
fn run_gpu(
    ctx: &GpuContext,
    conv: &Conv2d,
    shape: &ConvShape,
    scratch: usize,
    input: &[f32],
    weight: &[f32],
    grad_output: &[f32],
) -> Passes {
    let (x, w, gy) = (
        upload(ctx, input),
        upload(ctx, weight),
        upload(ctx, grad_output),
    );
    let cols = zeros(ctx, scratch);
    let (y, gx) = (
        zeros(ctx, shape.output_len()),
        zeros(ctx, shape.input_len()),
    );
    // Pre-filled: backward_weight must overwrite, not accumulate onto stale values.
    let gw = filled(ctx, shape.weight_len(), 7.0f32);
    record(ctx, |enc| {
        conv.forward(ctx, enc, shape, &x, &w, &cols, &y)?;
        conv.backward_input(ctx, enc, shape, &gy, &w, &cols, &gx)?;
        conv.backward_weight(ctx, enc, shape, &x, &gy, &cols, &gw, false)
    });
    (read(ctx, &y), read(ctx, &gx), read(ctx, &gw))
}

/// Which passes [`check_against_cpu`] compares.
#[derive(Clone, Copy, PartialEq)]
enum Pass {
    Forward,
    Input,
    Weight,
    All,
}

fn check_against_cpu(
    ctx: &GpuContext,
    conv: &Conv2d,
    shape: &ConvShape,
    scratch: usize,
    seed: u64,
    tag: &str,
    pass: Pass,
) {
    let mut r = rng(seed);
    let input = uniform(&mut r, shape.input_len(), -1.0, 1.0);
    let weight = uniform(&mut r, shape.weight_len(), -1.0, 1.0);
    let grad_output = uniform(&mut r, shape.output_len(), -1.0, 1.0);
    let (y, gx, gw) = run_gpu(ctx, conv, shape, scratch, &input, &weight, &grad_output);
    let mut want_y = vec![0.0; shape.output_len()];
    let mut want_gx = vec![0.0; shape.input_len()];
    let mut want_gw = vec![0.0; shape.weight_len()];
    cpu::conv::conv2d_forward(shape, &input, &weight, &mut want_y);
    cpu::conv::conv2d_backward_input(shape, &grad_output, &weight, &mut want_gx);
    cpu::conv::conv2d_backward_weight(shape, &input, &grad_output, &mut want_gw);
    let s = shape;
    let desc = format!(
        "{tag} N={} C_in={} C_out={} {}x{} k={} s={} p={}",
        s.batch, s.in_channels, s.out_channels, s.height, s.width, s.kernel_h, s.stride, s.padding
    );
    // Sums of up to C_in*9 (forward, backward input) or N*H_out*W_out (weight) products in f32.
    if matches!(pass, Pass::Forward | Pass::All) {
        assert_close(&format!("conv2d_forward {desc}"), &y, &want_y, 1e-4, 1e-4);
    }
    if matches!(pass, Pass::Input | Pass::All) {
        assert_close(
            &format!("conv2d_backward_input {desc}"),
            &gx,
            &want_gx,
            1e-4,
            1e-4,
        );
    }
    if matches!(pass, Pass::Weight | Pass::All) {
        assert_close(
            &format!("conv2d_backward_weight {desc}"),
            &gw,
            &want_gw,
            1e-4,
            5e-4,
        );
    }
}

#[test]
fn im2col_and_col2im_match_cpu_reference() {
    let Some(ctx) = gpu() else { return };
    let (im2col, col2im) = (Im2col::new(&ctx).unwrap(), Col2im::new(&ctx).unwrap());
    let mut r = rng(1);
    for shape in shapes() {
        // Chunk view: the last sample only (nonzero image offset), and the whole batch.
        for (first, samples) in [(shape.batch - 1, 1), (0, shape.batch)] {
            let image = uniform(&mut r, shape.input_len(), -1.0, 1.0);
            let p = shape.im2col_params(first, samples, false);
            let mut want = vec![0.0; samples * shape.cols_per_sample()];
            cpu::conv::im2col(&p, &image, &mut want);
            let (img, cols) = (upload(&ctx, &image), zeros(&ctx, want.len()));
            record(&ctx, |enc| im2col.dispatch(&ctx, enc, &p, &img, &cols));
            assert_exact(
                &format!("im2col {shape:?} first={first}"),
                &read(&ctx, &cols),
                &want,
            );

            let dcols = uniform(&mut r, want.len(), -1.0, 1.0);
            let p = shape.im2col_params(first, samples, true);
            // Elements outside the chunk must keep their value.
            let mut want_img = vec![3.0; shape.input_len()];
            cpu::conv::col2im(&p, &dcols, &mut want_img);
            let (dc, gimg) = (
                upload(&ctx, &dcols),
                filled(&ctx, shape.input_len(), 3.0f32),
            );
            record(&ctx, |enc| col2im.dispatch(&ctx, enc, &p, &dc, &gimg));
            let got = read(&ctx, &gimg);
            assert_close(
                &format!("col2im {shape:?} first={first}"),
                &got,
                &want_img,
                1e-6,
                1e-6,
            );
        }
    }
}

fn check_pass(pass: Pass) {
    let Some(ctx) = gpu() else { return };
    for variant in VARIANTS {
        let conv = Conv2d::with_variant(&ctx, variant).unwrap();
        for (i, shape) in shapes().iter().enumerate() {
            let scratch = Conv2d::cols_scratch_len(shape).unwrap();
            check_against_cpu(
                &ctx,
                &conv,
                shape,
                scratch,
                10 + i as u64,
                &format!("{variant:?}"),
                pass,
            );
        }
    }
}

#[test]
fn conv2d_forward_matches_cpu_reference() {
    check_pass(Pass::Forward);
}

#[test]
fn conv2d_backward_input_matches_cpu_reference() {
    check_pass(Pass::Input);
}

#[test]
fn conv2d_backward_weight_matches_cpu_reference() {
    check_pass(Pass::Weight);
}

#[test]
fn conv2d_chunks_the_batch_when_the_scratch_is_small() {
    let Some(ctx) = gpu() else { return };
    let conv = Conv2d::new(&ctx).unwrap();
    for (i, shape) in shapes().iter().enumerate().filter(|(_, s)| s.batch > 1) {
        // Two samples per chunk (and a remainder), plus a scratch of one sample and a bit.
        for scratch in [2 * shape.cols_per_sample(), shape.cols_per_sample() + 5] {
            check_against_cpu(
                &ctx,
                &conv,
                shape,
                scratch,
                100 + i as u64,
                "chunked",
                Pass::All,
            );
        }
    }
    // A shape past the direct conv's reach (36 taps): its forward runs on the columns.
    let shape = shapes()[1];
    assert!(!ConvDirect::applies(&shape));
    let small = zeros(&ctx, shape.cols_per_sample() - 1);
    let (x, w, y) = (
        zeros(&ctx, shape.input_len()),
        zeros(&ctx, shape.weight_len()),
        zeros(&ctx, shape.output_len()),
    );
    assert_err_contains(
        conv.forward(&ctx, &mut ctx.encoder("t"), &shape, &x, &w, &small, &y),
        "cols scratch",
    );
    let huge = ConvShape::new(1, 2048, 8, 128, 128, 3, 1, 1);
    assert_err_contains(
        Conv2d::cols_scratch_len(&huge),
        "max_storage_buffer_binding_size",
    );
    let big = ConvShape::new(64, 128, 128, 32, 32, 3, 1, 1);
    let len = Conv2d::cols_scratch_len(&big).unwrap();
    println!(
        "scratch for {big:?}: {len} elements = {} samples",
        len / big.cols_per_sample()
    );
    assert!(len * 4 <= 128 << 20 && len < big.batch * big.cols_per_sample());
}

/// Independent f64 conv forward, for finite differences.
fn conv_f64(s: &ConvShape, x: &[f64], w: &[f64]) -> Vec<f64> {
    direct_conv(s, |_, xi, wi| x[xi] * w[wi])
}

#[test]
fn conv2d_backward_matches_finite_differences() {
    // L = sum(y * g): dL/dx and dL/dW from the GPU backward vs central differences in f64.
    let Some(ctx) = gpu() else { return };
    let mut r = rng(5);
    for variant in VARIANTS {
        let conv = Conv2d::with_variant(&ctx, variant).unwrap();
        for shape in shapes()
            .into_iter()
            .filter(|s| s.input_len() < 1000 && s.weight_len() < 1000)
        {
            let input = uniform(&mut r, shape.input_len(), -1.0, 1.0);
            let weight = uniform(&mut r, shape.weight_len(), -1.0, 1.0);
            let g = uniform(&mut r, shape.output_len(), -1.0, 1.0);
            let scratch = Conv2d::cols_scratch_len(&shape).unwrap();
            let (_, gx, gw) = run_gpu(&ctx, &conv, &shape, scratch, &input, &weight, &g);
            let (x64, w64, g64) = (to_f64(&input), to_f64(&weight), to_f64(&g));
            let loss = |y: Vec<f64>| y.iter().zip(&g64).map(|(a, b)| a * b).sum::<f64>();
            let fd_x = fd_gradient(&input, 1e-3, |x| loss(conv_f64(&shape, x, &w64)));
            let fd_w = fd_gradient(&weight, 1e-3, |w| loss(conv_f64(&shape, &x64, w)));
            assert_close(
                &format!("conv2d_backward_input vs FD {variant:?} {shape:?}"),
                &gx,
                &fd_x,
                1e-4,
                1e-4,
            );
            assert_close(
                &format!("conv2d_backward_weight vs FD {variant:?} {shape:?}"),
                &gw,
                &fd_w,
                1e-4,
                1e-4,
            );
        }
    }
}

/// Shapes within the direct conv's reach (at most 27 taps per output): C_out of 1, under, at
/// and past the 16-channel block (33), pixel counts that are not multiples of 4 or 64, stride
/// 2, no padding, 1x1 kernels, 3 input channels (27 taps), and mnist's encoder.
fn direct_shapes() -> Vec<ConvShape> {
    [
        (3, 1, 8, 11, 13, 3, 1, 1),
        (2, 3, 5, 8, 8, 3, 1, 1),
        (5, 1, 33, 9, 7, 3, 2, 1),
        (1, 2, 17, 7, 5, 3, 2, 0),
        (2, 5, 7, 9, 9, 1, 2, 0),
        (1, 1, 1, 3, 3, 3, 1, 0),
        (3, 3, 16, 6, 5, 3, 1, 1),
        (64, 1, 32, 28, 28, 3, 1, 1),
    ]
    .into_iter()
    .map(|(n, ci, co, h, w, k, s, p)| ConvShape::new(n, ci, co, h, w, k, s, p))
    .collect()
}

#[test]
fn conv_direct_matches_cpu_reference() {
    let Some(ctx) = gpu() else { return };
    for pixels in [1, 4] {
        let direct = ConvDirect::with_pixels(&ctx, pixels).unwrap();
        for (i, shape) in direct_shapes().iter().enumerate() {
            assert!(ConvDirect::applies(shape), "{shape:?}");
            let mut r = rng(300 + i as u64);
            let input = uniform(&mut r, shape.input_len(), -1.0, 1.0);
            let weight = uniform(&mut r, shape.weight_len(), -1.0, 1.0);
            let (x, w) = (upload(&ctx, &input), upload(&ctx, &weight));
            // NaN-filled: every output must be written.
            let y = filled(&ctx, shape.output_len(), f32::NAN);
            record(&ctx, |enc| direct.dispatch(&ctx, enc, shape, &x, &w, &y));
            let mut want = vec![0.0; shape.output_len()];
            cpu::conv::conv2d_forward(shape, &input, &weight, &mut want);
            // Sums of up to 27 products of values in [-1, 1], in f32.
            assert_close(
                &format!("conv_direct pixels={pixels} {shape:?}"),
                &read(&ctx, &y),
                &want,
                1e-5,
                1e-5,
            );
        }
    }
}

#[test]
fn conv_direct_matches_the_im2col_gemm_chain() {
    let Some(ctx) = gpu() else { return };
    for variant in VARIANTS {
        let conv = Conv2d::with_variant(&ctx, variant).unwrap();
        let direct_conv = ConvDirect::with_pixels(&ctx, variant.popcount_pixels()).unwrap();
        for (i, shape) in direct_shapes().iter().enumerate() {
            let mut r = rng(400 + i as u64);
            let x = upload(&ctx, &uniform(&mut r, shape.input_len(), -1.0, 1.0));
            let w = upload(&ctx, &uniform(&mut r, shape.weight_len(), -1.0, 1.0));
            let cols = zeros(&ctx, Conv2d::cols_scratch_len(shape).unwrap());
            let (direct, chain) = (
                zeros(&ctx, shape.output_len()),
                zeros(&ctx, shape.output_len()),
            );
            record(&ctx, |enc| {
                direct_conv.dispatch(&ctx, enc, shape, &x, &w, &direct)?;
                conv.forward_gemm(&ctx, enc, shape, &x, &w, &cols, &chain)
            });
            assert_close(
                &format!("conv_direct vs im2col+GEMM ({variant:?}) {shape:?}"),
                &read(&ctx, &direct),
                &read(&ctx, &chain),
                1e-5,
                1e-5,
            );
        }
    }
}

/// The kernel's uniform copy of the weights is shared: two convs with different weights
/// recorded in one encoder must each see their own.
#[test]
fn conv_direct_dispatches_in_one_encoder_keep_their_own_weights() {
    let Some(ctx) = gpu() else { return };
    let direct = ConvDirect::new(&ctx).unwrap();
    let (a, b) = (direct_shapes()[2], direct_shapes()[6]);
    let mut r = rng(500);
    let data = |r: &mut _, len| uniform(r, len, -1.0, 1.0);
    let (xa, wa) = (data(&mut r, a.input_len()), data(&mut r, a.weight_len()));
    let (xb, wb) = (data(&mut r, b.input_len()), data(&mut r, b.weight_len()));
    let (gxa, gwa, gxb, gwb) = (
        upload(&ctx, &xa),
        upload(&ctx, &wa),
        upload(&ctx, &xb),
        upload(&ctx, &wb),
    );
    let (ya, yb) = (zeros(&ctx, a.output_len()), zeros(&ctx, b.output_len()));
    record(&ctx, |enc| {
        direct.dispatch(&ctx, enc, &a, &gxa, &gwa, &ya)?;
        direct.dispatch(&ctx, enc, &b, &gxb, &gwb, &yb)
    });
    for (shape, x, w, y) in [(a, &xa, &wa, &ya), (b, &xb, &wb, &yb)] {
        let mut want = vec![0.0; shape.output_len()];
        cpu::conv::conv2d_forward(&shape, x, w, &mut want);
        assert_close(&format!("{shape:?}"), &read(&ctx, y), &want, 1e-5, 1e-5);
    }
}

#[test]
fn conv_direct_refuses_shapes_beyond_its_reach() {
    let Some(ctx) = gpu() else { return };
    let direct = ConvDirect::new(&ctx).unwrap();
    // 4 * 9 = 36 taps per output; and 27 taps with weights over 64 KiB.
    for shape in [
        ConvShape::new(1, 4, 8, 5, 5, 3, 1, 1),
        ConvShape::new(1, 3, 640, 5, 5, 3, 1, 1),
    ] {
        assert!(!ConvDirect::applies(&shape));
        let (x, w, y) = (
            zeros(&ctx, shape.input_len()),
            zeros(&ctx, shape.weight_len()),
            zeros(&ctx, shape.output_len()),
        );
        assert_err_contains(
            direct.dispatch(&ctx, &mut ctx.encoder("t"), &shape, &x, &w, &y),
            "taps per output",
        );
    }
    assert_err_contains(ConvDirect::with_pixels(&ctx, 3), "pixels per invocation");
}

/// The encoder's weight gradient without columns (`conv_direct_weight_grad`, then the sum
/// over samples) against its f32 CPU mirror (same order), the f64 reference and the im2col +
/// GEMM path it replaces, on the direct conv's 3x3 shapes; a 1x1 conv is refused.
#[test]
fn conv_direct_weight_grad_matches_cpu_reference() {
    let Some(mut ctx) = gpu() else { return };
    let conv = Conv2d::new(&ctx).unwrap();
    for (i, shape) in direct_shapes().iter().enumerate() {
        let applies = ConvDirectWeightGrad::applies(shape);
        assert_eq!(applies, shape.kernel_h == 3, "{shape:?}");
        let mut r = rng(500 + i as u64);
        let input = uniform(&mut r, shape.input_len(), -1.0, 1.0);
        let grad_out = uniform(&mut r, shape.output_len(), -1.0, 1.0);
        let (x, g) = (upload(&ctx, &input), upload(&ctx, &grad_out));
        let partials = filled(&ctx, ConvDirectWeightGrad::partials_len(shape), f32::NAN);
        let gw = filled(&ctx, shape.weight_len(), f32::NAN);
        let mut enc = ctx.encoder("test");
        let result = conv.backward_weight_direct(&ctx, &mut enc, shape, &x, &g, &partials, &gw);
        ctx.submit(enc);
        if !applies {
            assert!(result.is_err(), "{shape:?} accepted");
            continue;
        }
        result.unwrap();
        let got = read(&ctx, &gw);
        let mut want = vec![0.0; shape.weight_len()];
        cpu::conv::conv_direct_weight_grad(shape, &input, &grad_out, &mut want);
        let tag = format!("conv_direct_weight_grad {shape:?}");
        // f32 sums of N * OH * OW products in [-1, 1].
        let terms = (shape.batch * shape.out_h() * shape.out_w()) as f32;
        let atol = (2e-8 * terms).max(1e-5);
        assert_close(&format!("{tag} vs mirror"), &got, &want, 1e-5, atol);
        let mut exact = vec![0.0; shape.weight_len()];
        cpu::conv::conv2d_backward_weight(shape, &input, &grad_out, &mut exact);
        assert_close(&format!("{tag} vs f64"), &got, &exact, 1e-4, 2.0 * atol);
        // What Conv2d::backward_weight runs with the direct conv off (the browser).
        ctx.conv_direct = false;
        let cols = zeros(&ctx, Conv2d::cols_scratch_len(shape).unwrap());
        let gemm = zeros(&ctx, shape.weight_len());
        record(&ctx, |enc| {
            conv.backward_weight(&ctx, enc, shape, &x, &g, &cols, &gemm, false)
        });
        ctx.conv_direct = true;
        assert_close(
            &format!("{tag} vs GEMM"),
            &got,
            &read(&ctx, &gemm),
            1e-4,
            2.0 * atol,
        );
    }
}
