// packed_conv_weight_grad: the weight gradient of a conv whose input is spikes, read bit-packed
// (docs/method.md §3, §7): dW[co, ci, kh, kw] = sum over n, oy, ox of
// g[n, co, oy, ox] * s[n, ci, oy*stride - pad + kh, ox*stride - pad + kw], with s in {0, 1}.
// The float path materialises im2col columns of the spikes (K = C_in*k*k rows of N*HW floats)
// and runs a GEMM; here one 32-bit word carries 32 input channels of one position (the
// `pack_spikes` output the popcount forward already made), so each position costs two loads
// (the word and the gradient) for 32 masked adds, and no columns are written or read.
//
// Bindings:
//   0 uniform params : PackedConvGradParams (common/packed_grad.wgsl)
//   1 storage read   : packed      [N, H, W, planes, words] u32  pack_spikes of the conv input (N = T*B)
//   2 storage read   : grad_output [N, C_out, H_out, W_out] f32  dL/d(conv output)
//   3 storage rw     : grad_weight [C_out, C_in, kH, kW] f32  (written, not accumulated)
// Dispatch: one invocation per (output channels co..co+3, word, kh, kw), i.e. 32 input channels
// of one weight tap for four output channels (each spike word loaded once serves all four: on
// lavapipe the loads, not the adds, are what costs; one channel per invocation took 1.8x as
// long at the mnist shapes, two 1.2x, eight no better than four), workgroups of 8 (there are
// few, long invocations; small groups spread them over the CPU's threads), folded 1-D
// (ceil(ceil(C_out / 4) * words * kH * kW / 8)). Taps vary fastest, so neighbouring
// invocations share the channels and word and read the same gradient values. Channels past
// C_out read the first channel's gradient again (summed, never stored).
//
// Each of the 32 sums runs over n, then oy, then ox, in that order (the CPU mirror's order).
//
// Means of spikes (an average pool of spikes before the conv: inputs k / area): `packed` holds
// the bit planes of the counts k, [N, H, W, planes, words]; one dispatch reads one plane and
// adds g * 2^plane (exact) where its bit is set, planes in order, and the last dispatch divides
// the sums by the area (multiplies by 1 / area, rounded once on the host). Spikes are plane 0 of 1, area 1: g itself, no division.
//
// packed and grad_output may be windows of samples first_sample.. of tensors larger than one
// binding (crate::gpu::split): the rows stay the whole batch's, and every dispatch's rows lie
// in its windows, so the sums run in the same order whatever the split.
//
// One dispatch sums the output rows r = n * OH + oy in params.row_start..row_end, and one after
// the first starts from the sums grad_weight holds: the host splits the rows over dispatches
// (PackedConvWeightGrad::dispatch) because lavapipe stops all of an invocation's loops after
// 65,535 iterations in all (crate::gpu::MAX_LOOP_ITERATIONS), which cut the sums short from
// about 64 frames of 28 x 28. Stored and reloaded f32 sums continue exactly: the same additions
// in the same order as one pass.

//!include common/flat_index.wgsl
//!include common/packed_grad.wgsl

@group(0) @binding(1) var<storage, read> packed: array<u32>;
@group(0) @binding(2) var<storage, read> grad_output: array<f32>;
@group(0) @binding(3) var<storage, read_write> grad_weight: array<f32>;

// v where bit b of w is set, +0.0 where it is clear, four bits at a time: the bit moved to the
// sign position and shifted back arithmetically is an all-ones or all-zeros mask of v's bits.
// The sums start at +0.0 and a round-to-nearest sum is -0.0 only of two -0.0s, so they never
// are, and adding +0.0 leaves them as they are: the sums of the set channels' terms (the CPU
// mirror's; a non-finite v reaches only the channels whose bit is set).
fn masked4(v: f32, w: u32, first: u32) -> vec4<f32> {
    let at_sign = vec4<u32>(w) << vec4<u32>(31u - first, 30u - first, 29u - first, 28u - first);
    let mask = bitcast<vec4<u32>>(bitcast<vec4<i32>>(at_sign) >> vec4<u32>(31u));
    return bitcast<vec4<f32>>(vec4<u32>(bitcast<u32>(v)) & mask);
}

// The sum a previous dispatch stored for output channel co (past C_out: 0) and input channels
// ci..ci+3 (past C_in: 0) at tap `tap`.
fn stored4(co: u32, ci: u32, tap: u32) -> vec4<f32> {
    var v = vec4<f32>(0.0);
    if (co >= params.out_channels) {
        return v;
    }
    let taps = params.kernel_h * params.kernel_w;
    for (var j = 0u; j < 4u; j++) {
        if (ci + j < params.in_channels) {
            v[j] = grad_weight[(co * params.in_channels + ci + j) * taps + tap];
        }
    }
    return v;
}

@compute @workgroup_size(8) fn main(inv: FlatInvocation) {
    let g = flat_index(inv, 8u);
    if (g >= params.invocations) {
        return;
    }
    let taps = params.kernel_h * params.kernel_w;
    let kw = g % params.kernel_w;
    let kh = (g / params.kernel_w) % params.kernel_h;
    let word = (g / taps) % params.words;
    let co = 4u * (g / (taps * params.words));
    // Accumulators: a* for co, b* for co + 1, c* for co + 2, d* for co + 3; 32 input channels
    // each, as 8 vec4s.
    let out_plane = params.out_height * params.out_width;
    var a0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0);
    var a3 = vec4<f32>(0.0);
    var a4 = vec4<f32>(0.0);
    var a5 = vec4<f32>(0.0);
    var a6 = vec4<f32>(0.0);
    var a7 = vec4<f32>(0.0);
    var b0 = vec4<f32>(0.0);
    var b1 = vec4<f32>(0.0);
    var b2 = vec4<f32>(0.0);
    var b3 = vec4<f32>(0.0);
    var b4 = vec4<f32>(0.0);
    var b5 = vec4<f32>(0.0);
    var b6 = vec4<f32>(0.0);
    var b7 = vec4<f32>(0.0);
    var c0 = vec4<f32>(0.0);
    var c1 = vec4<f32>(0.0);
    var c2 = vec4<f32>(0.0);
    var c3 = vec4<f32>(0.0);
    var c4 = vec4<f32>(0.0);
    var c5 = vec4<f32>(0.0);
    var c6 = vec4<f32>(0.0);
    var c7 = vec4<f32>(0.0);
    var d0 = vec4<f32>(0.0);
    var d1 = vec4<f32>(0.0);
    var d2 = vec4<f32>(0.0);
    var d3 = vec4<f32>(0.0);
    var d4 = vec4<f32>(0.0);
    var d5 = vec4<f32>(0.0);
    var d6 = vec4<f32>(0.0);
    var d7 = vec4<f32>(0.0);
    let tap = kh * params.kernel_w + kw;
    if (params.row_start > 0u || params.plane > 0u) {
        let ci = word * 32u;
        a0 = stored4(co, ci, tap);
        a1 = stored4(co, ci + 4u, tap);
        a2 = stored4(co, ci + 8u, tap);
        a3 = stored4(co, ci + 12u, tap);
        a4 = stored4(co, ci + 16u, tap);
        a5 = stored4(co, ci + 20u, tap);
        a6 = stored4(co, ci + 24u, tap);
        a7 = stored4(co, ci + 28u, tap);
        b0 = stored4(co + 1u, ci, tap);
        b1 = stored4(co + 1u, ci + 4u, tap);
        b2 = stored4(co + 1u, ci + 8u, tap);
        b3 = stored4(co + 1u, ci + 12u, tap);
        b4 = stored4(co + 1u, ci + 16u, tap);
        b5 = stored4(co + 1u, ci + 20u, tap);
        b6 = stored4(co + 1u, ci + 24u, tap);
        b7 = stored4(co + 1u, ci + 28u, tap);
        c0 = stored4(co + 2u, ci, tap);
        c1 = stored4(co + 2u, ci + 4u, tap);
        c2 = stored4(co + 2u, ci + 8u, tap);
        c3 = stored4(co + 2u, ci + 12u, tap);
        c4 = stored4(co + 2u, ci + 16u, tap);
        c5 = stored4(co + 2u, ci + 20u, tap);
        c6 = stored4(co + 2u, ci + 24u, tap);
        c7 = stored4(co + 2u, ci + 28u, tap);
        d0 = stored4(co + 3u, ci, tap);
        d1 = stored4(co + 3u, ci + 4u, tap);
        d2 = stored4(co + 3u, ci + 8u, tap);
        d3 = stored4(co + 3u, ci + 12u, tap);
        d4 = stored4(co + 3u, ci + 16u, tap);
        d5 = stored4(co + 3u, ci + 20u, tap);
        d6 = stored4(co + 3u, ci + 24u, tap);
        d7 = stored4(co + 3u, ci + 28u, tap);
    }
    let o1 = select(0u, out_plane, co + 1u < params.out_channels);
    let o2 = select(0u, 2u * out_plane, co + 2u < params.out_channels);
    let o3 = select(0u, 3u * out_plane, co + 3u < params.out_channels);
    // A plane's terms count 2^plane times: g * 2^plane is exact (and g itself for spikes).
    let scale = f32(1u << params.plane);
    // Rows r = n * OH + oy, with (n, oy) stepped along (no division per row).
    var n = params.row_start / params.out_height;
    var oy = params.row_start % params.out_height;
    for (var r = params.row_start; r < params.row_end; r++) {
        let g_base = ((n - params.first_sample) * params.out_channels + co) * out_plane;
        let iy = i32(oy * params.stride + kh) - i32(params.padding);
        if (iy >= 0 && iy < i32(params.height)) {
            let row = ((n - params.first_sample) * params.height + u32(iy)) * params.width;
            for (var ox = 0u; ox < params.out_width; ox++) {
                let ix = i32(ox * params.stride + kw) - i32(params.padding);
                if (ix < 0 || ix >= i32(params.width)) {
                    continue;
                }
                let w = packed[((row + u32(ix)) * params.planes + params.plane) * params.words + word];
                if (w == 0u) {
                    continue;
                }
                let at = g_base + oy * params.out_width + ox;
                let gv0 = grad_output[at] * scale;
                let gv1 = grad_output[at + o1] * scale;
                let gv2 = grad_output[at + o2] * scale;
                let gv3 = grad_output[at + o3] * scale;
                a0 += masked4(gv0, w, 0u);
                a1 += masked4(gv0, w, 4u);
                a2 += masked4(gv0, w, 8u);
                a3 += masked4(gv0, w, 12u);
                a4 += masked4(gv0, w, 16u);
                a5 += masked4(gv0, w, 20u);
                a6 += masked4(gv0, w, 24u);
                a7 += masked4(gv0, w, 28u);
                b0 += masked4(gv1, w, 0u);
                b1 += masked4(gv1, w, 4u);
                b2 += masked4(gv1, w, 8u);
                b3 += masked4(gv1, w, 12u);
                b4 += masked4(gv1, w, 16u);
                b5 += masked4(gv1, w, 20u);
                b6 += masked4(gv1, w, 24u);
                b7 += masked4(gv1, w, 28u);
                c0 += masked4(gv2, w, 0u);
                c1 += masked4(gv2, w, 4u);
                c2 += masked4(gv2, w, 8u);
                c3 += masked4(gv2, w, 12u);
                c4 += masked4(gv2, w, 16u);
                c5 += masked4(gv2, w, 20u);
                c6 += masked4(gv2, w, 24u);
                c7 += masked4(gv2, w, 28u);
                d0 += masked4(gv3, w, 0u);
                d1 += masked4(gv3, w, 4u);
                d2 += masked4(gv3, w, 8u);
                d3 += masked4(gv3, w, 12u);
                d4 += masked4(gv3, w, 16u);
                d5 += masked4(gv3, w, 20u);
                d6 += masked4(gv3, w, 24u);
                d7 += masked4(gv3, w, 28u);
            }
        }
        oy += 1u;
        if (oy == params.out_height) {
            oy = 0u;
            n += 1u;
        }
    }
    // The last dispatch of means of spikes divides the sums by the area, once (times 1 / area).
    if (params.area > 1u && params.plane + 1u == params.planes
        && params.row_end == params.batch * params.out_height) {
        let q = bitcast<f32>(params.inv_area_bits);
        a0 *= q; a1 *= q; a2 *= q; a3 *= q; a4 *= q; a5 *= q; a6 *= q; a7 *= q;
        b0 *= q; b1 *= q; b2 *= q; b3 *= q; b4 *= q; b5 *= q; b6 *= q; b7 *= q;
        c0 *= q; c1 *= q; c2 *= q; c3 *= q; c4 *= q; c5 *= q; c6 *= q; c7 *= q;
        d0 *= q; d1 *= q; d2 *= q; d3 *= q; d4 *= q; d5 *= q; d6 *= q; d7 *= q;
    }
    let s0 = array<vec4<f32>, 8>(a0, a1, a2, a3, a4, a5, a6, a7);
    let s1 = array<vec4<f32>, 8>(b0, b1, b2, b3, b4, b5, b6, b7);
    let s2 = array<vec4<f32>, 8>(c0, c1, c2, c3, c4, c5, c6, c7);
    let s3 = array<vec4<f32>, 8>(d0, d1, d2, d3, d4, d5, d6, d7);
    for (var j = 0u; j < 32u; j++) {
        let ci = word * 32u + j;
        if (ci < params.in_channels) {
            let at = (co * params.in_channels + ci) * taps + tap;
            let next = params.in_channels * taps;
            grad_weight[at] = s0[j / 4u][j % 4u];
            if (co + 1u < params.out_channels) {
                grad_weight[at + next] = s1[j / 4u][j % 4u];
            }
            if (co + 2u < params.out_channels) {
                grad_weight[at + 2u * next] = s2[j / 4u][j % 4u];
            }
            if (co + 3u < params.out_channels) {
                grad_weight[at + 3u * next] = s3[j / 4u][j % 4u];
            }
        }
    }
}
