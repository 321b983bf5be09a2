// packed_conv_input_grad: the input gradient of a binary conv, its weights read as sign bits
// (docs/method.md §3, §7): with W_b[co, ci, kh, kw] = gamma[co] * sign(W) (sign(0) = +1),
// dL/dx[n, ci, iy, ix] = sum over co, kh, kw (taps that reach the pixel) of
// W_b[co, ci, kh, kw] * g[n, co, oy, ox],  oy * stride - pad + kh = iy (same for x).
// The float path multiplies W_b^T by g into im2col-shaped columns (C_in*k*k rows of N*HW
// floats) and folds them back with col2im; here each invocation sums its pixel's taps
// directly, and one 32-bit word of `pack_weights` gives the signs of 32 input channels, so a
// tap costs two loads (g and the word) for 32 sign flips and adds.
//
// Bindings:
//   0 uniform params : PackedConvGradParams (common/packed_grad.wgsl)
//   1 storage read   : grad_output [N, C_out, H_out, W_out] f32  dL/d(conv output)
//   2 storage read   : weights     [kH, kW, words, C_out_pad] u32  pack_weights of the latent W
//   3 storage read   : gamma       [C_out] f32                  per-channel scale of W_b
//   4 storage rw     : grad_input  [N, C_in, H, W] f32          (written, not accumulated)
// Dispatch: one invocation per (n, word, iy, ix): 32 input channels of one input pixel,
// workgroups of 64, folded 1-D (ceil(N * words * H * W / 64)); x varies fastest, so
// neighbouring invocations read neighbouring gradients and the same weight word.
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
    let plane = params.height * params.width;
    let ix = g % params.width;
    let iy = (g / params.width) % params.height;
    let word = (g / plane) % params.words;
    let n = g / (plane * params.words);
    let out_plane = params.out_height * params.out_width;
    let s = params.stride;
    var a0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0);
    var a3 = vec4<f32>(0.0);
    var a4 = vec4<f32>(0.0);
    var a5 = vec4<f32>(0.0);
    var a6 = vec4<f32>(0.0);
    var a7 = vec4<f32>(0.0);
    // Taps outside, channels inside: the tap arithmetic (divisions) runs k*k times, not
    // C_out*k*k times.
    for (var kh = 0u; kh < params.kernel_h; kh++) {
        // oy * stride = iy + pad - kh must be a whole, in-range output row.
        let ry = i32(iy + params.padding) - i32(kh);
        if (ry < 0 || u32(ry) % s != 0u || u32(ry) / s >= params.out_height) {
            continue;
        }
        let oy = u32(ry) / s;
        for (var kw = 0u; kw < params.kernel_w; kw++) {
            let rx = i32(ix + params.padding) - i32(kw);
            if (rx < 0 || u32(rx) % s != 0u || u32(rx) / s >= params.out_width) {
                continue;
            }
            let g_at = n * params.out_channels * out_plane + oy * params.out_width + u32(rx) / s;
            let w_at = ((kh * params.kernel_w + kw) * params.words + word) * params.out_pad;
            for (var co = 0u; co < params.out_channels; co++) {
                let gv = grad_output[g_at + co * out_plane] * gamma[co];
                let w = weights[w_at + co];
                a0 += signed4(gv, w, 0u);
                a1 += signed4(gv, w, 4u);
                a2 += signed4(gv, w, 8u);
                a3 += signed4(gv, w, 12u);
                a4 += signed4(gv, w, 16u);
                a5 += signed4(gv, w, 20u);
                a6 += signed4(gv, w, 24u);
                a7 += signed4(gv, w, 28u);
            }
        }
    }
    let sums = array<vec4<f32>, 8>(a0, a1, a2, a3, a4, a5, a6, a7);
    for (var j = 0u; j < 32u; j++) {
        let ci = word * 32u + j;
        if (ci < params.in_channels) {
            grad_input[((n * params.in_channels + ci) * params.height + iy) * params.width + ix] = sums[j / 4u][j % 4u];
        }
    }
}
