// packed_conv_input_grad: the input gradient of a binary conv, its weights read as sign bits
// (docs/method.md §3, §7): with W_b[co, ci, kh, kw] = gamma[co] * sign(W) (sign(0) = +1),
// dL/dx[n, ci, iy, ix] = sum over co, kh, kw (taps that reach the pixel) of
// W_b[co, ci, kh, kw] * g[n, co, oy, ox],  oy * stride - pad + kh = iy (same for x).
// The float path multiplies W_b^T by g into im2col-shaped columns (C_in*k*k rows of N*HW
// floats) and folds them back with col2im; here each invocation sums its pixel's taps
// directly, and one 32-bit word of `pack_weights` gives the signs of 32 input channels, so a
// tap costs two loads (g and the word) for 32 sign flips and adds. Each invocation takes four
// pixels of a row, x + k * stride (k = 0..3), which reach their outputs through the same taps:
// the tap's sign word and gamma are loaded once for all four (on lavapipe the loads, not the
// arithmetic, are what costs; 1.2x at the mnist shapes against one pixel per invocation).
//
// Bindings:
//   0 uniform params : PackedConvGradParams (common/packed_grad.wgsl)
//   1 storage read   : grad_output [N, C_out, H_out, W_out] f32  dL/d(conv output)
//   2 storage read   : weights     [kH, kW, words, C_out_pad] u32  pack_weights of the latent W
//   3 storage read   : gamma       [C_out] f32                  per-channel scale of W_b
//   4 storage rw     : grad_input  [N, C_in, H, W] f32          (written, not accumulated)
// Dispatch: one invocation per (n, word, iy, slot): 32 input channels of four input pixels,
// workgroups of 64, folded 1-D (ceil(N * words * H * pixel_slots(W, stride) / 64)); slots
// vary fastest, so neighbouring invocations read nearby gradients (four pixels apart) and the
// same weight word. A tap that reaches no output for some of the four pixels adds +-0.0 there
// (the sums start at +0.0 and never become -0.0, so that changes nothing, whatever gamma is).
//
// Each of the 32 sums runs over kh, then kw, then co (the CPU mirror's order).

//!include common/flat_index.wgsl
//!include common/packed_grad.wgsl

@group(0) @binding(1) var<storage, read> grad_output: array<f32>;
@group(0) @binding(2) var<storage, read> weights: array<u32>;
@group(0) @binding(3) var<storage, read> gamma: array<f32>;
@group(0) @binding(4) var<storage, read_write> grad_input: array<f32>;

// v where the bit is set (sign +1), -v where it is clear, four bits at a time: the clear bit,
// moved to the sign position, flips v's sign bit. Exactly +-v, the value a select of v or -v
// gives (what SwiftShader and lavapipe agree on bit for bit), in three integer operations per
// channel instead of four.
fn signed4(v: f32, w: u32, first: u32) -> vec4<f32> {
    let flip = (vec4<u32>(~w) << vec4<u32>(31u - first, 30u - first, 29u - first, 28u - first)) & vec4<u32>(0x80000000u);
    return bitcast<vec4<f32>>(vec4<u32>(bitcast<u32>(v)) ^ flip);
}

@compute @workgroup_size(64) fn main(inv: FlatInvocation) {
    let g = flat_index(inv, 64u);
    if (g >= params.invocations) {
        return;
    }
    // Four pixels of one row, ix + k * stride (k = 0..3): they reach output columns through the
    // same taps (away from the borders), so a tap's sign word and gamma serve all four.
    let s = params.stride;
    let slots = pixel_slots(params.width, s);
    let slot = g % slots;
    let ix = (slot / s) * 4u * s + slot % s;
    let iy = (g / slots) % params.height;
    let word = (g / (slots * params.height)) % params.words;
    let n = g / (slots * params.height * params.words);
    if (ix >= params.width) {
        return; // a slot past the row's end (when the width is not a multiple of 4 * stride)
    }
    let e1 = ix + 1u * s < params.width;
    let e2 = ix + 2u * s < params.width;
    let e3 = ix + 3u * s < params.width;
    let out_plane = params.out_height * params.out_width;
    // Accumulators: a* for pixel ix, b* for ix + stride, c* for ix + 2 stride, d* for
    // ix + 3 stride; 32 input channels each, as 8 vec4s.
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
    for (var kh = 0u; kh < params.kernel_h; kh++) {
        // oy * stride = iy + pad - kh must be a whole, in-range output row.
        let ry = i32(iy + params.padding) - i32(kh);
        if (ry < 0 || u32(ry) % s != 0u || u32(ry) / s >= params.out_height) {
            continue;
        }
        let oy = u32(ry) / s;
        for (var kw = 0u; kw < params.kernel_w; kw++) {
            let rx = i32(ix + params.padding) - i32(kw);
            let v0 = rx >= 0 && u32(rx) % s == 0u && u32(rx) / s < params.out_width;
            let rx1 = rx + 1 * i32(s);
            let v1 = e1 && rx1 >= 0 && u32(rx1) % s == 0u && u32(rx1) / s < params.out_width;
            let rx2 = rx + 2 * i32(s);
            let v2 = e2 && rx2 >= 0 && u32(rx2) % s == 0u && u32(rx2) / s < params.out_width;
            let rx3 = rx + 3 * i32(s);
            let v3 = e3 && rx3 >= 0 && u32(rx3) % s == 0u && u32(rx3) / s < params.out_width;
            if (!v0 && !v1 && !v2 && !v3) {
                continue;
            }
            let row = n * params.out_channels * out_plane + oy * params.out_width;
            let g0 = row + select(0u, u32(rx) / s, v0);
            let g1 = row + select(0u, u32(rx1) / s, v1);
            let g2 = row + select(0u, u32(rx2) / s, v2);
            let g3 = row + select(0u, u32(rx3) / s, v3);
            let w_at = ((kh * params.kernel_w + kw) * params.words + word) * params.out_pad;
            for (var co = 0u; co < params.out_channels; co++) {
                let gm = gamma[co];
                let w = weights[w_at + co];
                let gv0 = select(0.0, grad_output[g0 + co * out_plane] * gm, v0);
                let gv1 = select(0.0, grad_output[g1 + co * out_plane] * gm, v1);
                let gv2 = select(0.0, grad_output[g2 + co * out_plane] * gm, v2);
                let gv3 = select(0.0, grad_output[g3 + co * out_plane] * gm, v3);
                a0 += signed4(gv0, w, 0u);
                a1 += signed4(gv0, w, 4u);
                a2 += signed4(gv0, w, 8u);
                a3 += signed4(gv0, w, 12u);
                a4 += signed4(gv0, w, 16u);
                a5 += signed4(gv0, w, 20u);
                a6 += signed4(gv0, w, 24u);
                a7 += signed4(gv0, w, 28u);
                b0 += signed4(gv1, w, 0u);
                b1 += signed4(gv1, w, 4u);
                b2 += signed4(gv1, w, 8u);
                b3 += signed4(gv1, w, 12u);
                b4 += signed4(gv1, w, 16u);
                b5 += signed4(gv1, w, 20u);
                b6 += signed4(gv1, w, 24u);
                b7 += signed4(gv1, w, 28u);
                c0 += signed4(gv2, w, 0u);
                c1 += signed4(gv2, w, 4u);
                c2 += signed4(gv2, w, 8u);
                c3 += signed4(gv2, w, 12u);
                c4 += signed4(gv2, w, 16u);
                c5 += signed4(gv2, w, 20u);
                c6 += signed4(gv2, w, 24u);
                c7 += signed4(gv2, w, 28u);
                d0 += signed4(gv3, w, 0u);
                d1 += signed4(gv3, w, 4u);
                d2 += signed4(gv3, w, 8u);
                d3 += signed4(gv3, w, 12u);
                d4 += signed4(gv3, w, 16u);
                d5 += signed4(gv3, w, 20u);
                d6 += signed4(gv3, w, 24u);
                d7 += signed4(gv3, w, 28u);
            }
        }
    }
    let s0 = array<vec4<f32>, 8>(a0, a1, a2, a3, a4, a5, a6, a7);
    let s1 = array<vec4<f32>, 8>(b0, b1, b2, b3, b4, b5, b6, b7);
    let s2 = array<vec4<f32>, 8>(c0, c1, c2, c3, c4, c5, c6, c7);
    let s3 = array<vec4<f32>, 8>(d0, d1, d2, d3, d4, d5, d6, d7);
    for (var j = 0u; j < 32u; j++) {
        let ci = word * 32u + j;
        if (ci < params.in_channels) {
            let at = ((n * params.in_channels + ci) * params.height + iy) * params.width + ix;
            grad_input[at] = s0[j / 4u][j % 4u];
            if (e1) {
                grad_input[at + 1u * s] = s1[j / 4u][j % 4u];
            }
            if (e2) {
                grad_input[at + 2u * s] = s2[j / 4u][j % 4u];
            }
            if (e3) {
                grad_input[at + 3u * s] = s3[j / 4u][j % 4u];
            }
        }
    }
}
