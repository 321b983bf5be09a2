//! Bit-packed binary conv/linear on spikes (docs/method.md §3): `pack_spikes`, `pack_weights` and
//! `binary_conv_popcount` against their CPU mirrors, and the popcount forward against an
//! independent float conv `sum s * gamma * sign(W)`: bit-exact integer counts with gamma = 1.
//! Also on means of spikes (`k / area`, what an average pool of spikes gives), packed as bit
//! planes of the counts.

// Helpers outside #[test] fns unwrap too: a failed GPU call is a test failure.
#![allow(clippy::unwrap_used)]

mod common;

use bitspike::cpu;
use bitspike::gpu::{GpuBuffer, GpuContext, KernelVariant};
use bitspike::kernels::conv::ConvShape;
use bitspike::kernels::popcount::{
    popcount_linear_shape, BinaryConvPopcount, PackSpikes, PackSpikesParams, PackWeights,
    PackWeightsParams, PopcountConvParams, SpikeArea,
};
use common::*;

/// The float path, written independently: direct conv of spikes with `gamma[co] * sign(W)`,
/// accumulated in f32 in (ci, kh, kw) order (exact for small integer sums when gamma = 1).
fn float_binary_conv(s: &ConvShape, spikes: &[f32], weights: &[f32], gamma: &[f32]) -> Vec<f32> {
    direct_conv(s, |co, xi, wi| {
        let wb = if weights[wi] >= 0.0 {
            gamma[co]
        } else {
            -gamma[co]
        };
        spikes[xi] * wb
    })
}

struct Packed {
    spikes: GpuBuffer<u32>,
    weights: GpuBuffer<u32>,
}

fn gpu_pack(ctx: &GpuContext, shape: &ConvShape, spikes: &[f32], weights: &[f32]) -> Packed {
    gpu_pack_area(ctx, shape, spikes, weights, SpikeArea::SPIKES)
}

fn gpu_pack_area(
    ctx: &GpuContext,
    shape: &ConvShape,
    spikes: &[f32],
    weights: &[f32],
    area: SpikeArea,
) -> Packed {
    let ps = PackSpikes::new(ctx).unwrap();
    let pw = PackWeights::new(ctx).unwrap();
    let sp = PackSpikesParams::for_conv(shape).with_area(area);
    let wp = PackWeightsParams::for_conv(shape);
    let (s, w) = (upload(ctx, spikes), upload(ctx, weights));
    let packed = Packed {
        spikes: zeros(ctx, sp.packed_len()),
        weights: zeros(ctx, wp.total_words as usize),
    };
    record(ctx, |enc| {
        ps.dispatch(ctx, enc, &sp, &s, &packed.spikes)?;
        pw.dispatch(ctx, enc, &wp, &w, &packed.weights)
    });
    packed
}

/// The popcount forward with both kernel variants' pixels per invocation (4 on CPU
/// rasterisers, 1 on GPUs: `KernelVariant::popcount_pixels`), which must agree exactly; returns
/// the result.
fn gpu_conv(ctx: &mut GpuContext, shape: &ConvShape, packed: &Packed, gamma: &[f32]) -> Vec<f32> {
    gpu_conv_params(ctx, &PopcountConvParams::new(shape), packed, gamma)
}

fn gpu_conv_params(
    ctx: &mut GpuContext,
    params: &PopcountConvParams,
    packed: &Packed,
    gamma: &[f32],
) -> Vec<f32> {
    let shape = params.shape();
    let original = ctx.variant;
    let mut results = Vec::new();
    for variant in [KernelVariant::RegisterBlocked, KernelVariant::SharedTiled] {
        ctx.variant = variant;
        let conv = BinaryConvPopcount::new(ctx).unwrap();
        // NaN-filled: a value the kernel fails to store cannot pass for a zero count.
        let (g, out) = (
            upload(ctx, gamma),
            filled(ctx, params.output_len(), f32::NAN),
        );
        record(ctx, |enc| {
            conv.dispatch(ctx, enc, params, &packed.spikes, &packed.weights, &g, &out)
        });
        results.push(read(ctx, &out));
    }
    ctx.variant = original;
    assert_exact(
        &format!("popcount, 4 vs 1 pixels per invocation, {shape:?}"),
        &results[0],
        &results[1],
    );
    results.swap_remove(0)
}

/// Spike tensors (N, C, H, W) for `pack_spikes`: C at and around the 32-bit word edges.
const PACK_SPIKES_SHAPES: [(usize, usize, usize, usize); 6] = [
    (1, 1, 1, 1),
    (2, 31, 3, 5),
    (3, 32, 4, 4),
    (2, 33, 5, 3),
    (1, 65, 2, 7),
    (4, 64, 7, 7),
];

/// Weights (C_out, C_in, K) of `K x K` kernels for `pack_weights`: C_in around the word edges.
const PACK_WEIGHTS_SHAPES: [(usize, usize, usize); 6] = [
    (1, 1, 1),
    (3, 31, 3),
    (17, 32, 3),
    (2, 33, 1),
    (64, 65, 3),
    (5, 64, 7),
];

/// Binary linear layers (batch, N_in, N_out); 3136 = 64 * 7 * 7, the `mnist` flatten.
const LINEAR_SHAPES: [(usize, usize, usize); 4] =
    [(1, 1, 1), (5, 100, 10), (3, 3136, 17), (2, 64, 64)];

/// Awkward C_in (word edges), C_out (16-channel block edges), sizes, strides and paddings.
fn shapes() -> Vec<ConvShape> {
    let c_ins = [1usize, 31, 32, 33, 64, 65];
    let c_outs = [1usize, 17, 64, 5, 16, 33];
    let mut out = Vec::new();
    for (i, &c_in) in c_ins.iter().enumerate() {
        let c_out = c_outs[i];
        out.push(ConvShape::new(2, c_in, c_out, 7, 9, 3, 1, 1));
        out.push(ConvShape::new(3, c_in, c_outs[(i + 2) % 6], 8, 5, 3, 2, 1));
        out.push(ConvShape::new(1, c_in, c_outs[(i + 4) % 6], 5, 5, 1, 2, 0));
    }
    out.push(ConvShape::new(2, 32, 64, 14, 14, 3, 1, 1)); // mnist conv2
    out.push(ConvShape::new(2, 64, 64, 7, 7, 3, 1, 1)); // mnist conv3
    out.push(ConvShape::new(1, 3, 4, 1, 1, 3, 1, 1)); // 1x1 image, only the centre tap valid
    out.push(ConvShape::new(2, 40, 3, 6, 6, 5, 1, 0)); // no padding, 5x5
    out.push(ConvShape::new(1, 5, 3, 3, 5, 3, 1, 1)); // 15 pixels: 4 per invocation, last 3
    out
}

#[test]
fn pack_spikes_matches_cpu_reference() {
    let Some(ctx) = gpu() else { return };
    let ps = PackSpikes::new(&ctx).unwrap();
    let mut r = rng(41);
    for (n, c, h, w) in PACK_SPIKES_SHAPES {
        let params = PackSpikesParams::new(n, c, h, w);
        let x = spikes(&mut r, params.spikes_len(), 0.3);
        let mut want = vec![0u32; params.total_words as usize];
        cpu::popcount::pack_spikes(&params, &x, &mut want);
        let (xb, p) = (upload(&ctx, &x), zeros::<u32>(&ctx, want.len()));
        record(&ctx, |enc| ps.dispatch(&ctx, enc, &params, &xb, &p));
        // bit definition, independently: bit (c % 32) of word c / 32 at (n, y, x)
        let words = params.words as usize;
        for (i, &v) in x.iter().enumerate() {
            let (pix, ch, nn) = (i % (h * w), (i / (h * w)) % c, i / (c * h * w));
            let bit = (want[(nn * h * w + pix) * words + ch / 32] >> (ch % 32)) & 1;
            assert_eq!(bit == 1, v == 1.0);
        }
        assert_exact(
            &format!("pack_spikes [{n}, {c}, {h}, {w}]"),
            &read(&ctx, &p),
            &want,
        );
    }
}

#[test]
fn pack_weights_matches_cpu_reference() {
    let Some(ctx) = gpu() else { return };
    let pw = PackWeights::new(&ctx).unwrap();
    let mut r = rng(42);
    for (co, ci, k) in PACK_WEIGHTS_SHAPES {
        let params = PackWeightsParams::new(co, ci, k, k);
        let mut w = uniform(&mut r, params.weights_len(), -1.0, 1.0);
        w[0] = -0.0;
        let mut want = vec![0u32; params.total_words as usize];
        cpu::popcount::pack_weights(&params, &w, &mut want);
        let wb = upload(&ctx, &w);
        let p = filled(&ctx, want.len(), u32::MAX); // every word must be written
        record(&ctx, |enc| pw.dispatch(&ctx, enc, &params, &wb, &p));
        assert_eq!(want[0] & 1, 1, "-0.0 packs as +1");
        assert_exact(
            &format!("pack_weights [{co}, {ci}, {k}, {k}]"),
            &read(&ctx, &p),
            &want,
        );
    }
}

/// gamma = 1: the popcount forward must give exactly the float path's integer sums.
#[test]
fn binary_conv_popcount_equals_float_path_exactly() {
    let Some(mut ctx) = gpu() else { return };
    let mut r = rng(43);
    for shape in shapes() {
        let x = spikes(&mut r, shape.input_len(), 0.35);
        let mut w = uniform(&mut r, shape.weight_len(), -1.0, 1.0);
        w[0] = 0.0; // sign(0) = +1 on both paths
        let ones = vec![1.0f32; shape.out_channels];
        let want = float_binary_conv(&shape, &x, &w, &ones);
        let packed = gpu_pack(&ctx, &shape, &x, &w);
        let got = gpu_conv(&mut ctx, &shape, &packed, &ones);
        assert_exact(
            &format!("popcount vs float, gamma=1, {shape:?}"),
            &got,
            &want,
        );
    }
}

#[test]
fn binary_conv_popcount_matches_cpu_reference() {
    let Some(mut ctx) = gpu() else { return };
    let mut r = rng(44);
    for shape in shapes() {
        let x = spikes(&mut r, shape.input_len(), 0.2);
        let w = uniform(&mut r, shape.weight_len(), -1.0, 1.0);
        let gamma = uniform(&mut r, shape.out_channels, 0.05, 1.5);
        let packed = gpu_pack(&ctx, &shape, &x, &w);
        let params = PopcountConvParams::new(&shape);
        let (sp, wp) = (
            PackSpikesParams::for_conv(&shape),
            PackWeightsParams::for_conv(&shape),
        );
        let mut ps = vec![0u32; sp.total_words as usize];
        let mut pw = vec![0u32; wp.total_words as usize];
        cpu::popcount::pack_spikes(&sp, &x, &mut ps);
        cpu::popcount::pack_weights(&wp, &w, &mut pw);
        let mut want = vec![0.0f32; params.output_len()];
        cpu::popcount::binary_conv_popcount(&params, &ps, &pw, &gamma, &mut want);
        let got = gpu_conv(&mut ctx, &shape, &packed, &gamma);
        // both compute gamma * (exact integer): one rounding, bit-exact
        assert_exact(
            &format!("binary_conv_popcount vs CPU mirror {shape:?}"),
            &got,
            &want,
        );
        // the float path rounds at every add of +-gamma: relative tolerance on the sum of |terms|
        let float = float_binary_conv(&shape, &x, &w, &gamma);
        let taps = (shape.in_channels * shape.kernel_h * shape.kernel_w) as f32;
        let max_g = gamma.iter().cloned().fold(0.0, f32::max);
        assert_close(
            &format!("popcount vs float path {shape:?}"),
            &got,
            &float,
            1e-6,
            taps * max_g * 1e-6,
        );
    }
}

/// A binary linear layer is the 1x1 conv on a 1x1 image: [N, N_in] spikes, [N_out, N_in] weights.
#[test]
fn binary_linear_popcount_equals_float_path() {
    let Some(mut ctx) = gpu() else { return };
    let mut r = rng(45);
    for (batch, n_in, n_out) in LINEAR_SHAPES {
        let shape = popcount_linear_shape(batch, n_in, n_out);
        let x = spikes(&mut r, batch * n_in, 0.3);
        let w = uniform(&mut r, n_out * n_in, -1.0, 1.0);
        let ones = vec![1.0; n_out];
        let mut want = vec![0.0f32; batch * n_out];
        for b in 0..batch {
            for o in 0..n_out {
                want[b * n_out + o] = (0..n_in)
                    .map(|i| x[b * n_in + i] * if w[o * n_in + i] >= 0.0 { 1.0 } else { -1.0 })
                    .sum();
            }
        }
        let packed = gpu_pack(&ctx, &shape, &x, &w);
        let got = gpu_conv(&mut ctx, &shape, &packed, &ones);
        assert_exact(
            &format!("binary linear N={batch} {n_in}->{n_out}"),
            &got,
            &want,
        );
    }
}

#[test]
fn binary_conv_popcount_rejects_bad_shapes() {
    let Some(ctx) = gpu() else { return };
    let conv = BinaryConvPopcount::new(&ctx).unwrap();
    let shape = ConvShape::new(2, 33, 4, 5, 5, 3, 1, 1);
    let params = PopcountConvParams::new(&shape);
    let s = zeros::<u32>(&ctx, params.packed_spikes_len());
    let w = zeros::<u32>(&ctx, params.packed_weights_len() - 1);
    let g = zeros::<f32>(&ctx, 4);
    let o = zeros::<f32>(&ctx, params.output_len());
    let mut enc = ctx.encoder("test");
    assert_err_contains(
        conv.dispatch(&ctx, &mut enc, &params, &s, &w, &g, &o),
        "weights",
    );
    let mut bad = params;
    bad.words = 1;
    let err = conv
        .dispatch(&ctx, &mut enc, &bad, &s, &w, &g, &o)
        .unwrap_err();
    println!("{err}");
    let zero_stride = PopcountConvParams::new(&ConvShape::new(2, 33, 4, 5, 5, 3, 0, 1));
    assert!(conv
        .dispatch(&ctx, &mut enc, &zero_stride, &s, &w, &g, &o)
        .is_err());
}

/// Means of `area` spikes, as an average pool of spikes gives them: `k / area` in f32 with
/// `k` drawn in `0..=area` (mostly small, as from sparse spikes).
fn averaged_spikes(r: &mut bitspike::rng::SeededRng, len: usize, area: u32) -> Vec<f32> {
    spikes(r, len * area as usize, 0.3)
        .chunks(area as usize)
        .map(|window| window.iter().sum::<f32>() / area as f32)
        .collect()
}

/// Areas of average pools: 2x2 (3 planes), 3x3 (4, and k / 9 not exact in f32), 4x4 (5), and
/// the largest taken (8 planes).
const AREAS: [usize; 4] = [4, 9, 16, SpikeArea::MAX];

#[test]
fn pack_spikes_of_averages_matches_cpu_reference() {
    let Some(ctx) = gpu() else { return };
    let ps = PackSpikes::new(&ctx).unwrap();
    let mut r = rng(46);
    for area in AREAS.map(|a| SpikeArea::new(a).unwrap()) {
        for (n, c, h, w) in PACK_SPIKES_SHAPES {
            let params = PackSpikesParams::new(n, c, h, w).with_area(area);
            let x = averaged_spikes(&mut r, params.spikes_len(), area.get());
            let mut want = vec![0u32; params.packed_len()];
            cpu::popcount::pack_spikes(&params, &x, &mut want);
            let (xb, p) = (upload(&ctx, &x), filled(&ctx, want.len(), u32::MAX));
            record(&ctx, |enc| ps.dispatch(&ctx, enc, &params, &xb, &p));
            // bit definition, independently: bit p of the count k at plane p
            let (words, planes) = (params.words as usize, area.planes() as usize);
            for (i, &v) in x.iter().enumerate() {
                let (pix, ch, nn) = (i % (h * w), (i / (h * w)) % c, i / (c * h * w));
                let mut k = 0u32;
                for p in 0..planes {
                    let word = want[((nn * h * w + pix) * planes + p) * words + ch / 32];
                    k |= ((word >> (ch % 32)) & 1) << p;
                }
                assert_eq!(
                    k as f32 / area.get() as f32,
                    v,
                    "count of {v} (area {area:?})"
                );
            }
            assert_exact(
                &format!("pack_spikes of means of {area:?} [{n}, {c}, {h}, {w}]"),
                &read(&ctx, &p),
                &want,
            );
        }
    }
}

/// Means of spikes: the GPU equals the CPU mirror exactly (both pixel variants), and the float
/// path within its rounding; with gamma = 1 and a power-of-two area the float path's sums are
/// exact too, and so must the popcount's be.
#[test]
fn binary_conv_popcount_on_averages_matches_cpu_reference() {
    let Some(mut ctx) = gpu() else { return };
    let mut r = rng(47);
    for (i, shape) in shapes().into_iter().enumerate() {
        let area = SpikeArea::new(AREAS[i % AREAS.len()]).unwrap();
        let x = averaged_spikes(&mut r, shape.input_len(), area.get());
        let w = uniform(&mut r, shape.weight_len(), -1.0, 1.0);
        let gamma = uniform(&mut r, shape.out_channels, 0.05, 1.5);
        let packed = gpu_pack_area(&ctx, &shape, &x, &w, area);
        let params = PopcountConvParams::new(&shape).with_area(area);
        let (sp, wp) = (
            PackSpikesParams::for_conv(&shape).with_area(area),
            PackWeightsParams::for_conv(&shape),
        );
        let mut ps = vec![0u32; sp.packed_len()];
        let mut pw = vec![0u32; wp.total_words as usize];
        cpu::popcount::pack_spikes(&sp, &x, &mut ps);
        cpu::popcount::pack_weights(&wp, &w, &mut pw);
        let mut want = vec![0.0f32; params.output_len()];
        cpu::popcount::binary_conv_popcount(&params, &ps, &pw, &gamma, &mut want);
        let got = gpu_conv_params(&mut ctx, &params, &packed, &gamma);
        let tag = format!("{shape:?}, means of {area:?}");
        assert_exact(&format!("popcount vs CPU mirror, {tag}"), &got, &want);
        let float = float_binary_conv(&shape, &x, &w, &gamma);
        let taps = (shape.in_channels * shape.kernel_h * shape.kernel_w) as f32;
        let max_g = gamma.iter().cloned().fold(0.0, f32::max);
        assert_close(
            &format!("popcount vs float path, {tag}"),
            &got,
            &float,
            1e-6,
            taps * max_g * 1e-6,
        );
        if area.get().is_power_of_two() {
            let ones = vec![1.0f32; shape.out_channels];
            let exact = gpu_conv_params(&mut ctx, &params, &packed, &ones);
            let float = float_binary_conv(&shape, &x, &w, &ones);
            assert_exact(
                &format!("popcount vs float, gamma=1, {tag}"),
                &exact,
                &float,
            );
        }
    }
}

#[test]
fn spike_area_planes_and_bounds() {
    let planes = |a| SpikeArea::new(a).unwrap().planes();
    assert_eq!((planes(1), planes(4), planes(9), planes(255)), (1, 3, 4, 8));
    assert!(SpikeArea::new(0).is_none() && SpikeArea::new(256).is_none());
    assert_eq!(SpikeArea::SPIKES.pooled(4), SpikeArea::new(4));
    assert!(SpikeArea::new(64).unwrap().pooled(4).is_none());
    // params with an area outside 1..=255 are refused before anything is recorded
    let Some(ctx) = gpu() else { return };
    let conv = BinaryConvPopcount::new(&ctx).unwrap();
    let shape = ConvShape::new(1, 8, 4, 3, 3, 3, 1, 1);
    let mut params = PopcountConvParams::new(&shape);
    params.area = 256;
    let (s, w) = (zeros::<u32>(&ctx, 1 << 12), zeros::<u32>(&ctx, 1 << 12));
    let (g, o) = (
        zeros::<f32>(&ctx, 4),
        zeros::<f32>(&ctx, params.output_len()),
    );
    let mut enc = ctx.encoder("test");
    assert_err_contains(
        conv.dispatch(&ctx, &mut enc, &params, &s, &w, &g, &o),
        "area 256",
    );
}
