//! Pooling (`maxpool_forward`, `maxpool_backward`, `avgpool_forward`, `avgpool_backward`,
//! composed by `MaxPool2d` / `AvgPool2d`) against the CPU mirrors over awkward shapes (odd
//! sizes with floor, one plane, overlapping windows, global pooling), spike max-pooling as an
//! exact logical OR, PyTorch's first-maximum tie rule, and both backwards against central
//! finite differences of independent f64 forwards.

// Shared helpers below panic on GPU errors like the #[test] fns do (clippy.toml allows
// unwrap in tests but not in helper fns of integration-test crates).
#![allow(clippy::unwrap_used)]

mod common;

use bitspike::cpu;
use bitspike::gpu::{GpuBuffer, GpuContext};
use bitspike::kernels::pool::{AvgPool2d, MaxPool2d, PoolParams, PoolWindow};
use common::*;

/// (N, C, H, W, window): odd sizes (7 -> 3), one plane, workgroup edges in the output count
/// (N*C*oH*oW = 255, 256, 257), non-square planes, overlapping windows, global pooling, and
/// the `mnist` preset's first pooling at a reduced batch.
fn cases() -> Vec<([usize; 4], PoolWindow)> {
    let s2 = PoolWindow::square(2, 2);
    vec![
        ([1, 1, 2, 2], s2),
        ([1, 1, 7, 7], s2),
        ([1, 1, 28, 28], s2),
        ([3, 5, 7, 9], s2),
        ([1, 255, 2, 2], s2),
        ([2, 128, 2, 2], s2),
        ([1, 257, 3, 2], s2),
        ([2, 3, 14, 14], s2),
        ([1, 1, 9, 8], PoolWindow::square(3, 2)),
        ([2, 3, 10, 7], PoolWindow::square(3, 1)),
        (
            [2, 2, 11, 13],
            PoolWindow {
                kernel_h: 2,
                kernel_w: 3,
                stride_h: 1,
                stride_w: 2,
            },
        ),
        ([2, 3, 6, 6], PoolWindow::square(2, 3)),
        ([4, 8, 8, 8], PoolWindow::global(8, 8)),
        ([1, 1, 5, 3], PoolWindow::global(5, 3)),
        ([16, 32, 28, 28], s2),
    ]
}

fn params(shape: [usize; 4], window: PoolWindow) -> PoolParams {
    let [n, c, h, w] = shape;
    PoolParams::new(n * c, h, w, window).unwrap()
}

fn gpu_maxpool(
    ctx: &GpuContext,
    shape: [usize; 4],
    window: PoolWindow,
    x: &[f32],
) -> (Vec<f32>, Vec<u32>) {
    let p = params(shape, window);
    let pool = MaxPool2d::new(ctx, window).unwrap();
    let xb = GpuBuffer::from_slice(ctx, x, "x").unwrap();
    let out = GpuBuffer::<f32>::zeros(ctx, p.output_len(), "out").unwrap();
    let arg = GpuBuffer::<u32>::zeros(ctx, p.output_len(), "argmax").unwrap();
    let mut enc = ctx.encoder("test");
    pool.forward(ctx, &mut enc, shape, &xb, &out, &arg).unwrap();
    ctx.submit(enc);
    (
        out.read_blocking(ctx).unwrap(),
        arg.read_blocking(ctx).unwrap(),
    )
}

fn gpu_maxpool_backward(
    ctx: &GpuContext,
    shape: [usize; 4],
    window: PoolWindow,
    arg: &[u32],
    g: &[f32],
) -> Vec<f32> {
    let p = params(shape, window);
    let pool = MaxPool2d::new(ctx, window).unwrap();
    let ab = GpuBuffer::from_slice(ctx, arg, "argmax").unwrap();
    let gb = GpuBuffer::from_slice(ctx, g, "grad_out").unwrap();
    // Garbage-filled: the backward must overwrite every element, zeros included.
    let gi = GpuBuffer::from_slice(ctx, &vec![9.0f32; p.input_len()], "grad_in").unwrap();
    let mut enc = ctx.encoder("test");
    pool.backward(ctx, &mut enc, shape, &ab, &gb, &gi).unwrap();
    ctx.submit(enc);
    gi.read_blocking(ctx).unwrap()
}

fn gpu_avgpool(ctx: &GpuContext, shape: [usize; 4], window: PoolWindow, x: &[f32]) -> Vec<f32> {
    let p = params(shape, window);
    let pool = AvgPool2d::new(ctx, window).unwrap();
    let xb = GpuBuffer::from_slice(ctx, x, "x").unwrap();
    let out = GpuBuffer::<f32>::zeros(ctx, p.output_len(), "out").unwrap();
    let mut enc = ctx.encoder("test");
    pool.forward(ctx, &mut enc, shape, &xb, &out).unwrap();
    ctx.submit(enc);
    out.read_blocking(ctx).unwrap()
}

fn gpu_avgpool_backward(
    ctx: &GpuContext,
    shape: [usize; 4],
    window: PoolWindow,
    g: &[f32],
) -> Vec<f32> {
    let p = params(shape, window);
    let pool = AvgPool2d::new(ctx, window).unwrap();
    let gb = GpuBuffer::from_slice(ctx, g, "grad_out").unwrap();
    let gi = GpuBuffer::from_slice(ctx, &vec![9.0f32; p.input_len()], "grad_in").unwrap();
    let mut enc = ctx.encoder("test");
    pool.backward(ctx, &mut enc, shape, &gb, &gi).unwrap();
    ctx.submit(enc);
    gi.read_blocking(ctx).unwrap()
}

#[test]
fn maxpool_forward_matches_cpu_reference() {
    let Some(ctx) = gpu() else { return };
    let mut r = rng(21);
    for (shape, window) in cases() {
        let p = params(shape, window);
        for (kind, x) in [
            ("spikes", spikes(&mut r, p.input_len(), 0.2)),
            ("floats", uniform(&mut r, p.input_len(), -2.0, 2.0)),
            // Few distinct values: many ties inside windows.
            (
                "ties",
                uniform(&mut r, p.input_len(), 0.0, 3.0)
                    .iter()
                    .map(|v| v.floor())
                    .collect(),
            ),
        ] {
            let (mut want, mut want_arg) = (vec![0.0; p.output_len()], vec![0u32; p.output_len()]);
            cpu::pool::maxpool_forward(&p, &x, &mut want, &mut want_arg);
            let (got, got_arg) = gpu_maxpool(&ctx, shape, window, &x);
            let tag = format!(
                "maxpool_forward {kind} {shape:?} {window:?} -> {}x{}",
                p.out_h, p.out_w
            );
            assert_exact(&format!("{tag} output"), &got, &want);
            assert_exact(&format!("{tag} argmax"), &got_arg, &want_arg);
        }
    }
}

/// Spike max-pooling is a logical OR of the window (so binary layers stay popcount-exact),
/// checked against an OR computed here, independently of the CPU mirror.
#[test]
fn maxpool_of_spikes_is_logical_or() {
    let Some(ctx) = gpu() else { return };
    let mut r = rng(22);
    for (shape, window) in cases() {
        let p = params(shape, window);
        let x = spikes(&mut r, p.input_len(), 0.1);
        let (got, _) = gpu_maxpool(&ctx, shape, window, &x);
        let (ih, iw, oh, ow) = (
            p.in_h as usize,
            p.in_w as usize,
            p.out_h as usize,
            p.out_w as usize,
        );
        let mut want = Vec::new();
        for plane in 0..p.planes as usize {
            for y in 0..oh {
                for xo in 0..ow {
                    let any = (0..window.kernel_h).any(|dy| {
                        (0..window.kernel_w).any(|dx| {
                            x[(plane * ih + y * window.stride_h + dy) * iw
                                + xo * window.stride_w
                                + dx]
                                == 1.0
                        })
                    });
                    want.push(if any { 1.0f32 } else { 0.0 });
                }
            }
        }
        assert_exact(
            &format!("maxpool spikes == OR {shape:?} {window:?}"),
            &got,
            &want,
        );
    }
}

/// PyTorch's rule: among equal maxima the first in row-major window order wins.
#[test]
fn maxpool_ties_pick_first_maximum_like_pytorch() {
    let Some(ctx) = gpu() else { return };
    // One 4x4 plane, 2x2 windows: all equal / equal in the bottom row / max last / all spikes 0.
    #[rustfmt::skip]
    let x = [
        1.0, 1.0,   0.0, 2.0,
        1.0, 1.0,   2.0, 2.0,

        0.0, 0.0,   0.0, 0.0,
        3.0, 3.0,   0.0, 5.0,
    ];
    let (out, arg) = gpu_maxpool(&ctx, [1, 1, 4, 4], PoolWindow::square(2, 2), &x);
    assert_exact("tie outputs", &out, &[1.0, 2.0, 3.0, 5.0]);
    assert_exact("tie argmax (index in plane)", &arg, &[0, 3, 12, 15]);
    let (_, arg) = gpu_maxpool(&ctx, [1, 1, 4, 4], PoolWindow::square(2, 2), &[0.0; 16]);
    assert_exact(
        "all-zero spikes: argmax is each window's first element",
        &arg,
        &[0, 2, 8, 10],
    );
}

#[test]
fn maxpool_backward_matches_cpu_reference() {
    let Some(ctx) = gpu() else { return };
    let mut r = rng(23);
    for (shape, window) in cases() {
        let p = params(shape, window);
        // Ties (spikes) included: the gradient must go to the saved argmax only.
        for x in [
            spikes(&mut r, p.input_len(), 0.3),
            uniform(&mut r, p.input_len(), -1.0, 1.0),
        ] {
            let (mut out, mut arg) = (vec![0.0; p.output_len()], vec![0u32; p.output_len()]);
            cpu::pool::maxpool_forward(&p, &x, &mut out, &mut arg);
            let g = uniform(&mut r, p.output_len(), -1.0, 1.0);
            let mut want = vec![0.0; p.input_len()];
            cpu::pool::maxpool_backward(&p, &arg, &g, &mut want);
            let got = gpu_maxpool_backward(&ctx, shape, window, &arg, &g);
            assert_exact(
                &format!("maxpool_backward {shape:?} {window:?}"),
                &got,
                &want,
            );
            // Conservation: every output gradient lands on exactly one input.
            let (sum_in, sum_out) = (
                got.iter().map(|&v| v as f64).sum::<f64>(),
                g.iter().map(|&v| v as f64).sum::<f64>(),
            );
            assert!(
                (sum_in - sum_out).abs() < 1e-3,
                "gradient mass {sum_in} vs {sum_out}"
            );
        }
    }
}

/// Independent f64 max pooling and the loss `sum_o r_o * out_o`.
fn maxpool_loss_f64(p: &PoolParams, x: &[f64], r: &[f64]) -> f64 {
    let (ih, iw, oh, ow) = (
        p.in_h as usize,
        p.in_w as usize,
        p.out_h as usize,
        p.out_w as usize,
    );
    let (kh, kw, sh, sw) = (
        p.kernel_h as usize,
        p.kernel_w as usize,
        p.stride_h as usize,
        p.stride_w as usize,
    );
    let mut loss = 0.0;
    for plane in 0..p.planes as usize {
        for y in 0..oh {
            for xo in 0..ow {
                let mut m = f64::NEG_INFINITY;
                for dy in 0..kh {
                    for dx in 0..kw {
                        m = m.max(x[(plane * ih + y * sh + dy) * iw + xo * sw + dx]);
                    }
                }
                loss += r[(plane * oh + y) * ow + xo] * m;
            }
        }
    }
    loss
}

/// Independent f64 average pooling and the loss `sum_o r_o * out_o`.
fn avgpool_loss_f64(p: &PoolParams, x: &[f64], r: &[f64]) -> f64 {
    let (ih, iw, oh, ow) = (
        p.in_h as usize,
        p.in_w as usize,
        p.out_h as usize,
        p.out_w as usize,
    );
    let (kh, kw, sh, sw) = (
        p.kernel_h as usize,
        p.kernel_w as usize,
        p.stride_h as usize,
        p.stride_w as usize,
    );
    let mut loss = 0.0;
    for plane in 0..p.planes as usize {
        for y in 0..oh {
            for xo in 0..ow {
                let mut s = 0.0;
                for dy in 0..kh {
                    for dx in 0..kw {
                        s += x[(plane * ih + y * sh + dy) * iw + xo * sw + dx];
                    }
                }
                loss += r[(plane * oh + y) * ow + xo] * s / (kh * kw) as f64;
            }
        }
    }
    loss
}

/// Small cases for finite differences, overlapping windows and floor included.
fn fd_cases() -> Vec<([usize; 4], PoolWindow)> {
    vec![
        ([2, 1, 7, 7], PoolWindow::square(2, 2)),
        ([1, 2, 7, 6], PoolWindow::square(3, 2)),
        ([1, 1, 5, 5], PoolWindow::square(3, 1)),
        ([1, 2, 4, 6], PoolWindow::global(4, 6)),
    ]
}

#[test]
fn maxpool_backward_matches_finite_differences() {
    let Some(ctx) = gpu() else { return };
    let mut r = rng(24);
    for (shape, window) in fd_cases() {
        let p = params(shape, window);
        // A shuffled ramp: distinct values at least 0.01 apart, so no ties and no kink within h.
        let mut x: Vec<f32> = (0..p.input_len()).map(|i| i as f32 * 0.01).collect();
        for i in (1..x.len()).rev() {
            x.swap(
                i,
                (uniform(&mut r, 1, 0.0, 1.0)[0] * (i + 1) as f32) as usize % (i + 1),
            );
        }
        let g = uniform(&mut r, p.output_len(), -1.0, 1.0);
        let (_, arg) = gpu_maxpool(&ctx, shape, window, &x);
        let got = gpu_maxpool_backward(&ctx, shape, window, &arg, &g);
        let r64 = to_f64(&g);
        let fd = fd_gradient(&x, 1e-4, |xv| maxpool_loss_f64(&p, xv, &r64));
        assert_close(
            &format!("maxpool_backward vs finite differences {shape:?} {window:?}"),
            &got,
            &fd,
            1e-4,
            1e-5,
        );
    }
}

#[test]
fn avgpool_forward_matches_cpu_reference() {
    let Some(ctx) = gpu() else { return };
    let mut r = rng(25);
    for (shape, window) in cases() {
        let p = params(shape, window);
        let x = uniform(&mut r, p.input_len(), -2.0, 2.0);
        let mut want = vec![0.0; p.output_len()];
        cpu::pool::avgpool_forward(&p, &x, &mut want);
        let got = gpu_avgpool(&ctx, shape, window, &x);
        assert_close(
            &format!("avgpool_forward {shape:?} {window:?}"),
            &got,
            &want,
            1e-6,
            1e-7,
        );
    }
}

#[test]
fn avgpool_backward_matches_cpu_reference() {
    let Some(ctx) = gpu() else { return };
    let mut r = rng(26);
    for (shape, window) in cases() {
        let p = params(shape, window);
        let g = uniform(&mut r, p.output_len(), -1.0, 1.0);
        let mut want = vec![0.0; p.input_len()];
        cpu::pool::avgpool_backward(&p, &g, &mut want);
        let got = gpu_avgpool_backward(&ctx, shape, window, &g);
        assert_close(
            &format!("avgpool_backward {shape:?} {window:?}"),
            &got,
            &want,
            1e-6,
            1e-7,
        );
    }
}

#[test]
fn avgpool_backward_matches_finite_differences() {
    let Some(ctx) = gpu() else { return };
    let mut r = rng(27);
    for (shape, window) in fd_cases() {
        let p = params(shape, window);
        let x = uniform(&mut r, p.input_len(), -1.0, 1.0);
        let g = uniform(&mut r, p.output_len(), -1.0, 1.0);
        let got = gpu_avgpool_backward(&ctx, shape, window, &g);
        let r64 = to_f64(&g);
        let fd = fd_gradient(&x, 1e-4, |xv| avgpool_loss_f64(&p, xv, &r64));
        assert_close(
            &format!("avgpool_backward vs finite differences {shape:?} {window:?}"),
            &got,
            &fd,
            1e-4,
            1e-6,
        );
    }
}

#[test]
fn pool_rejects_bad_shapes() {
    let Some(ctx) = gpu() else { return };
    let err = PoolParams::new(1, 1, 1, PoolWindow::square(2, 2)).unwrap_err();
    println!("{err}");
    assert!(err.to_string().contains("does not fit a 1x1 input"));
    assert!(PoolParams::new(1, 4, 4, PoolWindow::square(2, 0)).is_err());
    let pool = MaxPool2d::new(&ctx, PoolWindow::default()).unwrap();
    let x = GpuBuffer::<f32>::zeros(&ctx, 2 * 3 * 7 * 7, "x").unwrap();
    let out = GpuBuffer::<f32>::zeros(&ctx, 2 * 3 * 4 * 4, "out").unwrap(); // ceil, not floor
    let arg = GpuBuffer::<u32>::zeros(&ctx, 2 * 3 * 3 * 3, "argmax").unwrap();
    let mut enc = ctx.encoder("test");
    let err = pool
        .forward(&ctx, &mut enc, [2, 3, 7, 7], &x, &out, &arg)
        .unwrap_err();
    println!("{err}");
    assert!(err
        .to_string()
        .contains("`output` has 96 elements, expected N*C*out_h*out_w = 54"));
    let mut bad = params([2, 3, 7, 7], PoolWindow::default());
    bad.out_h = 4;
    let avg = AvgPool2d::new(&ctx, PoolWindow::default()).unwrap();
    drop(avg);
    let fwd = bitspike::kernels::pool::AvgPoolForward::new(&ctx).unwrap();
    let err = fwd.dispatch(&ctx, &mut enc, &bad, &x, &out).unwrap_err();
    println!("{err}");
    assert!(err.to_string().contains("inconsistent"));
}
