//! Linear layer (forward with and without bias, backward input, backward weight + bias) and the
//! bias kernels against the CPU mirrors, both GEMM variants, and the gradients against central
//! finite differences of an f64 forward.

// Tests fail by panicking; unwrap is the clearest way to say "this must succeed".
#![allow(clippy::unwrap_used)]

mod common;

use bitspike::cpu;
use bitspike::gpu::{GpuContext, KernelVariant};
use bitspike::kernels::linear::{BiasAdd, BiasGrad, Linear, LinearShape};
use common::*;

const VARIANTS: [KernelVariant; 2] = [KernelVariant::RegisterBlocked, KernelVariant::SharedTiled];

/// (batch, in, out): awkward edges around the 64 block and the mnist classifier (256, 3136, 10).
fn shapes() -> Vec<LinearShape> {
    [
        (1, 1, 1),
        (7, 63, 10),
        (64, 65, 9),
        (65, 130, 64),
        (256, 3136, 10),
    ]
    .into_iter()
    .map(|(n, i, o)| LinearShape::new(n, i, o))
    .collect()
}

struct Outputs {
    y: Vec<f32>,
    y_no_bias: Vec<f32>,
    grad_x: Vec<f32>,
    grad_w: Vec<f32>,
    grad_b: Vec<f32>,
}

fn run_gpu(
    ctx: &GpuContext,
    linear: &Linear,
    s: &LinearShape,
    x: &[f32],
    w: &[f32],
    b: &[f32],
    gy: &[f32],
) -> Outputs {
    let (xb, wb, bb, gyb) = (
        upload(ctx, x),
        upload(ctx, w),
        upload(ctx, b),
        upload(ctx, gy),
    );
    // Stale values in every output: each pass must overwrite.
    let stale = |len: usize| filled(ctx, len, 5.0f32);
    let (y, y2) = (stale(s.output_len()), stale(s.output_len()));
    let (gx, gw, gb) = (
        stale(s.input_len()),
        stale(s.weight_len()),
        stale(s.out_features),
    );
    record(ctx, |enc| {
        linear.forward(ctx, enc, s, &xb, &wb, Some(&bb), &y)?;
        linear.forward(ctx, enc, s, &xb, &wb, None, &y2)?;
        linear.backward_input(ctx, enc, s, &gyb, &wb, &gx)?;
        linear.backward_weight(ctx, enc, s, &xb, &gyb, &gw, Some(&gb), false)
    });
    Outputs {
        y: read(ctx, &y),
        y_no_bias: read(ctx, &y2),
        grad_x: read(ctx, &gx),
        grad_w: read(ctx, &gw),
        grad_b: read(ctx, &gb),
    }
}

#[test]
fn linear_matches_cpu_reference() {
    let Some(ctx) = gpu() else { return };
    let mut r = rng(1);
    for variant in VARIANTS {
        let linear = Linear::with_variant(&ctx, variant).unwrap();
        for s in shapes() {
            let x = uniform(&mut r, s.input_len(), -1.0, 1.0);
            let w = uniform(&mut r, s.weight_len(), -1.0, 1.0);
            let b = uniform(&mut r, s.out_features, -1.0, 1.0);
            let gy = uniform(&mut r, s.output_len(), -1.0, 1.0);
            let got = run_gpu(&ctx, &linear, &s, &x, &w, &b, &gy);
            let mut y = vec![0.0; s.output_len()];
            let mut y2 = vec![0.0; s.output_len()];
            let mut gx = vec![0.0; s.input_len()];
            let mut gw = vec![0.0; s.weight_len()];
            let mut gb = vec![0.0; s.out_features];
            cpu::linear::linear_forward(&s, &x, &w, Some(&b), &mut y);
            cpu::linear::linear_forward(&s, &x, &w, None, &mut y2);
            cpu::linear::linear_backward_input(&s, &gy, &w, &mut gx);
            cpu::linear::linear_backward_weight(&s, &x, &gy, &mut gw, Some(&mut gb));
            let tag = format!("{variant:?} {s:?}");
            // Sums of up to 3136 products of magnitude <= 1 in f32.
            assert_close(&format!("linear_forward {tag}"), &got.y, &y, 1e-4, 2e-4);
            assert_close(
                &format!("linear_forward (no bias) {tag}"),
                &got.y_no_bias,
                &y2,
                1e-4,
                2e-4,
            );
            assert_close(
                &format!("linear_backward_input {tag}"),
                &got.grad_x,
                &gx,
                1e-4,
                1e-4,
            );
            assert_close(
                &format!("linear_backward_weight {tag}"),
                &got.grad_w,
                &gw,
                1e-4,
                1e-4,
            );
            assert_close(
                &format!("linear_backward_weight bias {tag}"),
                &got.grad_b,
                &gb,
                1e-4,
                1e-4,
            );
        }
    }
}

#[test]
fn bias_add_and_bias_grad_match_cpu_reference() {
    let Some(ctx) = gpu() else { return };
    let (add, grad) = (BiasAdd::new(&ctx).unwrap(), BiasGrad::new(&ctx).unwrap());
    let mut r = rng(2);
    for (rows, cols) in [(1, 1), (3, 63), (256, 64), (5, 65), (1000, 300)] {
        let s = LinearShape::new(rows, 1, cols);
        let p = s.bias_params();
        let bias = uniform(&mut r, cols, -1.0, 1.0);
        let y0 = uniform(&mut r, rows * cols, -1.0, 1.0);
        let mut want_y = y0.clone();
        cpu::linear::bias_add(&p, &bias, &mut want_y);
        let mut want_g = vec![0.0; cols];
        cpu::linear::bias_grad(&p, &y0, &mut want_g);
        let (bb, yb, y_orig) = (upload(&ctx, &bias), upload(&ctx, &y0), upload(&ctx, &y0));
        let gb = zeros(&ctx, cols);
        record(&ctx, |enc| {
            add.dispatch(&ctx, enc, &p, &bb, &yb)?;
            grad.dispatch(&ctx, enc, &p, &y_orig, &gb)
        });
        let tag = format!("{rows}x{cols}");
        assert_close(
            &format!("bias_add {tag}"),
            &read(&ctx, &yb),
            &want_y,
            1e-6,
            1e-6,
        );
        assert_close(
            &format!("bias_grad {tag}"),
            &read(&ctx, &gb),
            &want_g,
            1e-5,
            1e-4,
        );
    }
}

/// Independent f64 forward.
fn linear_f64(s: &LinearShape, x: &[f64], w: &[f64], b: &[f64]) -> Vec<f64> {
    let mut y = vec![0.0; s.output_len()];
    for r in 0..s.batch {
        for o in 0..s.out_features {
            y[r * s.out_features + o] = b[o]
                + (0..s.in_features)
                    .map(|i| x[r * s.in_features + i] * w[o * s.in_features + i])
                    .sum::<f64>();
        }
    }
    y
}

#[test]
fn linear_backward_matches_finite_differences() {
    // L = sum(y * g): dL/dx, dL/dW, dL/db from the GPU vs central differences in f64.
    let Some(ctx) = gpu() else { return };
    let mut r = rng(3);
    for variant in VARIANTS {
        let linear = Linear::with_variant(&ctx, variant).unwrap();
        for s in [
            LinearShape::new(3, 7, 5),
            LinearShape::new(9, 65, 2),
            LinearShape::new(1, 4, 66),
        ] {
            let x = uniform(&mut r, s.input_len(), -1.0, 1.0);
            let w = uniform(&mut r, s.weight_len(), -1.0, 1.0);
            let b = uniform(&mut r, s.out_features, -1.0, 1.0);
            let g = uniform(&mut r, s.output_len(), -1.0, 1.0);
            let got = run_gpu(&ctx, &linear, &s, &x, &w, &b, &g);
            let (x64, w64, b64, g64) = (to_f64(&x), to_f64(&w), to_f64(&b), to_f64(&g));
            let loss = |y: Vec<f64>| y.iter().zip(&g64).map(|(a, b)| a * b).sum::<f64>();
            let fd_x = fd_gradient(&x, 1e-3, |x| loss(linear_f64(&s, x, &w64, &b64)));
            let fd_w = fd_gradient(&w, 1e-3, |w| loss(linear_f64(&s, &x64, w, &b64)));
            let fd_b = fd_gradient(&b, 1e-3, |b| loss(linear_f64(&s, &x64, &w64, b)));
            let tag = format!("{variant:?} {s:?}");
            assert_close(
                &format!("linear_backward_input vs FD {tag}"),
                &got.grad_x,
                &fd_x,
                1e-4,
                1e-4,
            );
            assert_close(
                &format!("linear_backward_weight vs FD {tag}"),
                &got.grad_w,
                &fd_w,
                1e-4,
                1e-4,
            );
            assert_close(
                &format!("linear bias grad vs FD {tag}"),
                &got.grad_b,
                &fd_b,
                1e-4,
                1e-4,
            );
        }
    }
}

/// The readout form of the forward (`linear_readout`, at most 16 outputs, where the GEMM is the
/// register-blocked one) against `gemm_register` itself: bit for bit on spike inputs (every
/// product exact, the same summation order), including K split over several uniform parts and
/// K not a multiple of 4; and against the CPU mirror on float inputs (within rounding).
#[test]
fn linear_readout_equals_the_gemm_on_spikes() {
    use bitspike::kernels::gemm::{Gemm, GemmShape};
    use bitspike::kernels::linear::LinearReadout;
    let Some(ctx) = gpu() else { return };
    let readout = LinearReadout::new(&ctx).unwrap();
    let gemm = Gemm::with_variant(&ctx, KernelVariant::RegisterBlocked).unwrap();
    let mut r = rng(71);
    // (rows, in, out): 4000 x 10 and 3,000 x 16 split into 3 and 4 parts; 3137 with a last
    // part of one column.
    for (n, k, o) in [
        (1, 1, 1),
        (67, 5, 3),
        (300, 3136, 10),
        (70, 3137, 10),
        (65, 4000, 10),
        (9, 3000, 16),
    ] {
        let shape = LinearShape::new(n, k, o);
        assert!(LinearReadout::takes(&shape));
        let parts = LinearReadout::parts(&shape);
        assert_eq!(parts.first().map(|p| p.0), Some(0));
        assert_eq!(parts.last().map(|p| p.1), Some(k));
        assert!(parts
            .windows(2)
            .all(|w| w[0].1 == w[1].0 && w[0].1 % 4 == 0));
        let x = spikes(&mut r, n * k, 0.2);
        let w = uniform(&mut r, o * k, -1.0, 1.0);
        let (xb, wb) = (upload(&ctx, &x), upload(&ctx, &w));
        let (got, want) = (filled(&ctx, n * o, f32::NAN), filled(&ctx, n * o, f32::NAN));
        record(&ctx, |enc| {
            readout.dispatch(&ctx, enc, &shape, &xb, &wb, &got)?;
            let g = GemmShape::new(n, o, k).transpose(false, true);
            gemm.dispatch(&ctx, enc, &g, &xb, &wb, &want)
        });
        let got = read(&ctx, &got);
        assert_exact(
            &format!("readout vs gemm_register {shape:?} ({} parts)", parts.len()),
            &got,
            &read(&ctx, &want),
        );
        // Float inputs: the CPU mirror's sums, within rounding.
        let xf = uniform(&mut r, n * k, -1.0, 1.0);
        let xb = upload(&ctx, &xf);
        let out = zeros(&ctx, n * o);
        record(&ctx, |enc| {
            readout.dispatch(&ctx, enc, &shape, &xb, &wb, &out)
        });
        let mut cpu_y = vec![0.0; n * o];
        cpu::linear::linear_forward(&shape, &xf, &w, None, &mut cpu_y);
        assert_close(
            &format!("readout vs CPU {shape:?}"),
            &read(&ctx, &out),
            &cpu_y,
            1e-4,
            1e-4,
        );
    }
    // More outputs than one invocation keeps: refused (the layer takes the GEMM).
    let wide = LinearShape::new(2, 8, 17);
    assert!(!LinearReadout::takes(&wide));
    let (x, w, y) = (
        zeros::<f32>(&ctx, 16),
        zeros::<f32>(&ctx, 136),
        zeros::<f32>(&ctx, 34),
    );
    let mut enc = ctx.device.create_command_encoder(&Default::default());
    assert_err_contains(
        readout.dispatch(&ctx, &mut enc, &wide, &x, &w, &y),
        "at most 16",
    );
}
