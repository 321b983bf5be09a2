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
use bitspike::kernels::pool::{AvgPool2d, MaxPool2d, PackedPoolParams, PoolParams, PoolWindow};
use bitspike::kernels::popcount::PackSpikesParams;
use bitspike::rng::SeededRng;
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
        // 2x2 windows take maxpool_forward's unrolled pipeline at any stride: overlapping.
        ([2, 3, 6, 5], PoolWindow::square(2, 1)),
        ([3, 4, 2, 2], PoolWindow::global(2, 2)),
        ([4, 8, 8, 8], PoolWindow::global(8, 8)),
        ([1, 1, 5, 3], PoolWindow::global(5, 3)),
        ([16, 32, 28, 28], s2),
        // Rows of a multiple of 4 take maxpool_forward_pairs (two outputs per invocation):
        // with an odd last row, and a single pair per row.
        ([2, 3, 7, 8], s2),
        ([3, 1, 2, 4], s2),
    ]
}

fn params(shape: [usize; 4], window: PoolWindow) -> PoolParams {
    let [n, c, h, w] = shape;
    PoolParams::new(n * c, h, w, window).unwrap()
}

/// Runs `check(ctx, rng, shape, window, params)` for every case of `cases` in order, drawing
/// all inputs from one rng seeded `seed`.
fn for_each_case(
    seed: u64,
    cases: Vec<([usize; 4], PoolWindow)>,
    mut check: impl FnMut(&GpuContext, &mut SeededRng, [usize; 4], PoolWindow, &PoolParams),
) {
    let Some(ctx) = gpu() else { return };
    let mut r = rng(seed);
    for (shape, window) in cases {
        check(&ctx, &mut r, shape, window, &params(shape, window));
    }
}

fn gpu_maxpool(
    ctx: &GpuContext,
    shape: [usize; 4],
    window: PoolWindow,
    x: &[f32],
) -> (Vec<f32>, Vec<u32>) {
    let p = params(shape, window);
    let pool = MaxPool2d::new(ctx, window).unwrap();
    // Garbage-filled: an output the kernel fails to write cannot pass for a zero.
    let (xb, out, arg) = (
        upload(ctx, x),
        filled(ctx, p.output_len(), f32::NAN),
        filled(ctx, p.output_len(), u32::MAX),
    );
    record(ctx, |enc| pool.forward(ctx, enc, shape, &xb, &out, &arg));
    (read(ctx, &out), read(ctx, &arg))
}

/// The backwards write into a garbage-filled `grad_in`: they must overwrite every element,
/// zeros included.
fn garbage_grad_in(ctx: &GpuContext, p: &PoolParams) -> GpuBuffer<f32> {
    filled(ctx, p.input_len(), 9.0f32)
}

fn gpu_maxpool_backward(
    ctx: &GpuContext,
    shape: [usize; 4],
    window: PoolWindow,
    arg: &[u32],
    g: &[f32],
) -> Vec<f32> {
    let pool = MaxPool2d::new(ctx, window).unwrap();
    let (ab, gb) = (upload(ctx, arg), upload(ctx, g));
    let gi = garbage_grad_in(ctx, &params(shape, window));
    record(ctx, |enc| pool.backward(ctx, enc, shape, &ab, &gb, &gi));
    read(ctx, &gi)
}

fn gpu_avgpool(ctx: &GpuContext, shape: [usize; 4], window: PoolWindow, x: &[f32]) -> Vec<f32> {
    let pool = AvgPool2d::new(ctx, window).unwrap();
    let (xb, out) = (
        upload(ctx, x),
        zeros::<f32>(ctx, params(shape, window).output_len()),
    );
    record(ctx, |enc| pool.forward(ctx, enc, shape, &xb, &out));
    read(ctx, &out)
}

fn gpu_avgpool_backward(
    ctx: &GpuContext,
    shape: [usize; 4],
    window: PoolWindow,
    g: &[f32],
) -> Vec<f32> {
    let pool = AvgPool2d::new(ctx, window).unwrap();
    let gb = upload(ctx, g);
    let gi = garbage_grad_in(ctx, &params(shape, window));
    record(ctx, |enc| pool.backward(ctx, enc, shape, &gb, &gi));
    read(ctx, &gi)
}

/// For every output of `p`, in output order, the input indices of its window (row-major
/// within the window), computed here independently of the CPU mirror.
fn windows(p: &PoolParams) -> Vec<Vec<usize>> {
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
    let mut out = Vec::new();
    for plane in 0..p.planes as usize {
        for y in 0..oh {
            for xo in 0..ow {
                let mut w = Vec::new();
                for dy in 0..kh {
                    for dx in 0..kw {
                        w.push((plane * ih + y * sh + dy) * iw + xo * sw + dx);
                    }
                }
                out.push(w);
            }
        }
    }
    out
}

#[test]
fn maxpool_forward_matches_cpu_reference() {
    for_each_case(21, cases(), |ctx, r, shape, window, p| {
        for (kind, x) in [
            ("spikes", spikes(r, p.input_len(), 0.2)),
            ("floats", uniform(r, p.input_len(), -2.0, 2.0)),
            // Few distinct values: many ties inside windows.
            (
                "ties",
                uniform(r, p.input_len(), 0.0, 3.0)
                    .iter()
                    .map(|v| v.floor())
                    .collect(),
            ),
        ] {
            let (mut want, mut want_arg) = (vec![0.0; p.output_len()], vec![0u32; p.output_len()]);
            cpu::pool::maxpool_forward(p, &x, &mut want, &mut want_arg);
            let (got, got_arg) = gpu_maxpool(ctx, shape, window, &x);
            let tag = format!(
                "maxpool_forward {kind} {shape:?} {window:?} -> {}x{}",
                p.out_h, p.out_w
            );
            assert_exact(&format!("{tag} output"), &got, &want);
            assert_exact(&format!("{tag} argmax"), &got_arg, &want_arg);
        }
    });
}

/// Spike max-pooling is a logical OR of the window (so binary layers stay popcount-exact),
/// checked against an OR computed here, independently of the CPU mirror.
#[test]
fn maxpool_of_spikes_is_logical_or() {
    for_each_case(22, cases(), |ctx, r, shape, window, p| {
        let x = spikes(r, p.input_len(), 0.1);
        let (got, _) = gpu_maxpool(ctx, shape, window, &x);
        let want: Vec<f32> = windows(p)
            .iter()
            .map(|w| {
                if w.iter().any(|&i| x[i] == 1.0) {
                    1.0
                } else {
                    0.0
                }
            })
            .collect();
        assert_exact(
            &format!("maxpool spikes == OR {shape:?} {window:?}"),
            &got,
            &want,
        );
    });
}

/// Max pooling of bit-packed spikes (`maxpool_packed`) gives exactly the float max pool's
/// output, packed, on every case above (channel counts of 1, 3, 128, 255, 257 words' worth)
/// and matches its CPU mirror; a stale output is overwritten.
#[test]
fn maxpool_packed_matches_cpu_reference() {
    for_each_case(23, cases(), |ctx, r, shape, window, p| {
        let [n, c, h, w] = shape;
        let x = spikes(r, p.input_len(), 0.15);
        let (pooled, _) = gpu_maxpool(ctx, shape, window, &x);
        let pack = |data: &[f32], h: usize, w: usize| {
            let params = PackSpikesParams::new(n, c, h, w);
            let mut out = vec![0u32; params.total_words as usize];
            cpu::popcount::pack_spikes(&params, data, &mut out);
            out
        };
        let input = pack(&x, h, w);
        let want = pack(&pooled, p.out_h as usize, p.out_w as usize);
        let pp = PackedPoolParams::new(shape, window).unwrap();
        let mut mirror = vec![0u32; pp.output_len()];
        cpu::pool::maxpool_packed(&pp, &input, &mut mirror);
        assert_eq!(mirror, want, "cpu maxpool_packed {shape:?} {window:?}");
        let pool = MaxPool2d::new(ctx, window).unwrap();
        let (xb, out) = (
            upload(ctx, &input),
            upload(ctx, &vec![u32::MAX; want.len()]),
        );
        record(ctx, |enc| pool.forward_packed(ctx, enc, shape, &xb, &out));
        assert_eq!(read(ctx, &out), want, "maxpool_packed {shape:?} {window:?}");
    });
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
    for_each_case(23, cases(), |ctx, r, shape, window, p| {
        // Ties (spikes) included: the gradient must go to the saved argmax only.
        for x in [
            spikes(r, p.input_len(), 0.3),
            uniform(r, p.input_len(), -1.0, 1.0),
        ] {
            let (mut out, mut arg) = (vec![0.0; p.output_len()], vec![0u32; p.output_len()]);
            cpu::pool::maxpool_forward(p, &x, &mut out, &mut arg);
            let g = uniform(r, p.output_len(), -1.0, 1.0);
            let mut want = vec![0.0; p.input_len()];
            cpu::pool::maxpool_backward(p, &arg, &g, &mut want);
            let got = gpu_maxpool_backward(ctx, shape, window, &arg, &g);
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
    });
}

/// The loss `sum_o r_o * out_o` of an independent f64 pooling whose output `out_o` is
/// `reduce` of the window's inputs (in row-major window order).
fn pool_loss_f64(
    p: &PoolParams,
    x: &[f64],
    r: &[f64],
    reduce: impl Fn(&mut dyn Iterator<Item = f64>) -> f64,
) -> f64 {
    let mut loss = 0.0;
    for (w, &r_o) in windows(p).iter().zip(r) {
        loss += r_o * reduce(&mut w.iter().map(|&i| x[i]));
    }
    loss
}

/// Independent f64 max pooling and the loss `sum_o r_o * out_o`.
fn maxpool_loss_f64(p: &PoolParams, x: &[f64], r: &[f64]) -> f64 {
    pool_loss_f64(p, x, r, |w| w.fold(f64::NEG_INFINITY, f64::max))
}

/// Independent f64 average pooling and the loss `sum_o r_o * out_o`.
fn avgpool_loss_f64(p: &PoolParams, x: &[f64], r: &[f64]) -> f64 {
    let n = (p.kernel_h * p.kernel_w) as f64;
    pool_loss_f64(p, x, r, |w| w.fold(0.0, |s, v| s + v) / n)
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
    for_each_case(24, fd_cases(), |ctx, r, shape, window, p| {
        // A shuffled ramp: distinct values at least 0.01 apart, so no ties and no kink within h.
        let mut x: Vec<f32> = (0..p.input_len()).map(|i| i as f32 * 0.01).collect();
        for i in (1..x.len()).rev() {
            x.swap(
                i,
                (uniform(r, 1, 0.0, 1.0)[0] * (i + 1) as f32) as usize % (i + 1),
            );
        }
        let g = uniform(r, p.output_len(), -1.0, 1.0);
        let (_, arg) = gpu_maxpool(ctx, shape, window, &x);
        let got = gpu_maxpool_backward(ctx, shape, window, &arg, &g);
        assert_matches_finite_differences("maxpool", shape, window, &x, &g, &got, 1e-5, |xv, r| {
            maxpool_loss_f64(p, xv, r)
        });
    });
}

/// `grad` (the GPU backward for upstream gradient `g` at input `x`) against central
/// finite differences of `loss(x, g)`, tolerance `abs` + 1e-4 relative.
#[allow(clippy::too_many_arguments)]
fn assert_matches_finite_differences(
    kind: &str,
    shape: [usize; 4],
    window: PoolWindow,
    x: &[f32],
    g: &[f32],
    grad: &[f32],
    abs: f32,
    loss: impl Fn(&[f64], &[f64]) -> f64,
) {
    let r64 = to_f64(g);
    let fd = fd_gradient(x, 1e-4, |xv| loss(xv, &r64));
    assert_close(
        &format!("{kind}_backward vs finite differences {shape:?} {window:?}"),
        grad,
        &fd,
        1e-4,
        abs,
    );
}

/// The avgpool forward (or backward) on the GPU against its CPU mirror over `cases()`, on
/// inputs uniform in `[lo, hi)`, to 1e-6 relative + 1e-7.
fn avgpool_matches_cpu_reference(backward: bool, seed: u64, lo: f32, hi: f32) {
    for_each_case(seed, cases(), |ctx, r, shape, window, p| {
        let (pass, got, want) = if backward {
            let g = uniform(r, p.output_len(), lo, hi);
            let mut want = vec![0.0; p.input_len()];
            cpu::pool::avgpool_backward(p, &g, &mut want);
            (
                "backward",
                gpu_avgpool_backward(ctx, shape, window, &g),
                want,
            )
        } else {
            let x = uniform(r, p.input_len(), lo, hi);
            let mut want = vec![0.0; p.output_len()];
            cpu::pool::avgpool_forward(p, &x, &mut want);
            ("forward", gpu_avgpool(ctx, shape, window, &x), want)
        };
        assert_close(
            &format!("avgpool_{pass} {shape:?} {window:?}"),
            &got,
            &want,
            1e-6,
            1e-7,
        );
    });
}

#[test]
fn avgpool_forward_matches_cpu_reference() {
    avgpool_matches_cpu_reference(false, 25, -2.0, 2.0);
}

#[test]
fn avgpool_backward_matches_cpu_reference() {
    avgpool_matches_cpu_reference(true, 26, -1.0, 1.0);
}

#[test]
fn avgpool_backward_matches_finite_differences() {
    for_each_case(27, fd_cases(), |ctx, r, shape, window, p| {
        let x = uniform(r, p.input_len(), -1.0, 1.0);
        let g = uniform(r, p.output_len(), -1.0, 1.0);
        let got = gpu_avgpool_backward(ctx, shape, window, &g);
        assert_matches_finite_differences("avgpool", shape, window, &x, &g, &got, 1e-6, |xv, r| {
            avgpool_loss_f64(p, xv, r)
        });
    });
}

#[test]
fn pool_rejects_bad_shapes() {
    let Some(ctx) = gpu() else { return };
    assert_err_contains(
        PoolParams::new(1, 1, 1, PoolWindow::square(2, 2)),
        "does not fit a 1x1 input",
    );
    assert!(PoolParams::new(1, 4, 4, PoolWindow::square(2, 0)).is_err());
    let pool = MaxPool2d::new(&ctx, PoolWindow::default()).unwrap();
    let x = zeros::<f32>(&ctx, 2 * 3 * 7 * 7);
    let out = zeros::<f32>(&ctx, 2 * 3 * 4 * 4); // ceil, not floor
    let arg = zeros::<u32>(&ctx, 2 * 3 * 3 * 3);
    let mut enc = ctx.encoder("test");
    assert_err_contains(
        pool.forward(&ctx, &mut enc, [2, 3, 7, 7], &x, &out, &arg),
        "`output` has 96 elements, expected N*C*out_h*out_w = 54",
    );
    let mut bad = params([2, 3, 7, 7], PoolWindow::default());
    bad.out_h = 4;
    let avg = AvgPool2d::new(&ctx, PoolWindow::default()).unwrap();
    drop(avg);
    let fwd = bitspike::kernels::pool::AvgPoolForward::new(&ctx).unwrap();
    assert_err_contains(fwd.dispatch(&ctx, &mut enc, &bad, &x, &out), "inconsistent");
}

/// The scatter form (non-overlapping windows): the kernel equals its mirror, the mirror equals
/// the gather mirror (odd edges included: inputs no window chose stay 0), and overlapping
/// windows are refused.
#[test]
fn maxpool_backward_scatter_matches_cpu_reference_and_the_gather_form() {
    let scattered = cases()
        .into_iter()
        .filter(|(shape, window)| params(*shape, *window).non_overlapping())
        .collect::<Vec<_>>();
    assert!(
        scattered.len() >= 10,
        "only {} non-overlapping cases",
        scattered.len()
    );
    for_each_case(29, scattered, |ctx, r, shape, window, p| {
        let x = spikes(r, p.input_len(), 0.3);
        let (mut out, mut arg) = (vec![0.0; p.output_len()], vec![0u32; p.output_len()]);
        cpu::pool::maxpool_forward(p, &x, &mut out, &mut arg);
        let g = uniform(r, p.output_len(), -1.0, 1.0);
        let (mut gather, mut want) = (vec![0.0; p.input_len()], vec![5.0; p.input_len()]);
        cpu::pool::maxpool_backward(p, &arg, &g, &mut gather);
        cpu::pool::maxpool_backward_scatter(p, &arg, &g, &mut want);
        let tag = format!("maxpool_backward_scatter {shape:?} {window:?}");
        assert_exact(&format!("{tag} mirror vs gather mirror"), &want, &gather);
        let kernel = bitspike::kernels::pool::MaxPoolBackwardScatter::new(ctx).unwrap();
        let (ab, gb) = (upload(ctx, &arg), upload(ctx, &g));
        let gi = zeros::<f32>(ctx, p.input_len());
        record(ctx, |enc| kernel.dispatch(ctx, enc, p, &ab, &gb, &gi));
        assert_exact(&tag, &read(ctx, &gi), &want);
    });
    let Some(ctx) = gpu() else { return };
    let p = params([1, 1, 9, 8], PoolWindow::square(3, 2));
    let kernel = bitspike::kernels::pool::MaxPoolBackwardScatter::new(&ctx).unwrap();
    let (a, g, gi) = (
        zeros::<u32>(&ctx, p.output_len()),
        zeros::<f32>(&ctx, p.output_len()),
        zeros::<f32>(&ctx, p.input_len()),
    );
    let mut enc = ctx.encoder("overlapping");
    assert_err_contains(kernel.dispatch(&ctx, &mut enc, &p, &a, &g, &gi), "overlap");
}
