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
//   1 storage read   : packed      [N, H, W, words] u32  pack_spikes of the conv input (N = T*B)
//   2 storage read   : grad_output [N, C_out, H_out, W_out] f32  dL/d(conv output)
//   3 storage rw     : grad_weight [C_out, C_in, kH, kW] f32  (written, not accumulated)
// Dispatch: one invocation per (output-channel pair co, co + 1, word, kh, kw), i.e. 32 input
// channels of one weight tap for two output channels (each spike word loaded once serves
// both: on lavapipe the loads, not the adds, are what costs), workgroups of 16 (there are few,
// long invocations; small groups spread them over the CPU's threads), folded 1-D
// (ceil(ceil(C_out / 2) * words * kH * kW / 16)). Taps vary fastest, so neighbouring
// invocations share the channels and word and read the same gradient values.
//
// Each of the 32 sums runs over n, then oy, then ox, in that order (the CPU mirror's order).

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

@compute @workgroup_size(16) fn main(inv: FlatInvocation) {
    let g = flat_index(inv, 16u);
    if (g >= params.invocations) {
        return;
    }
    let taps = params.kernel_h * params.kernel_w;
    let kw = g % params.kernel_w;
    let kh = (g / params.kernel_w) % params.kernel_h;
    let word = (g / taps) % params.words;
    // Two output channels per invocation, co and co + 1: each spike word serves both.
    let co = 2u * (g / (taps * params.words));
    let both = co + 1u < params.out_channels;
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
    // The second channel's plane, or the first's again past the last channel (summed, unused).
    let second = select(0u, out_plane, both);
    for (var n = 0u; n < params.batch; n++) {
        let g_base = (n * params.out_channels + co) * out_plane;
        for (var oy = 0u; oy < params.out_height; oy++) {
            let iy = i32(oy * params.stride + kh) - i32(params.padding);
            if (iy < 0 || iy >= i32(params.height)) {
                continue;
            }
            let row = (n * params.height + u32(iy)) * params.width;
            for (var ox = 0u; ox < params.out_width; ox++) {
                let ix = i32(ox * params.stride + kw) - i32(params.padding);
                if (ix < 0 || ix >= i32(params.width)) {
                    continue;
                }
                let w = packed[(row + u32(ix)) * params.words + word];
                if (w == 0u) {
                    continue;
                }
                let at = g_base + oy * params.out_width + ox;
                let gv = grad_output[at];
                let gv2 = grad_output[at + second];
                a0 += masked4(gv, w, 0u);
                a1 += masked4(gv, w, 4u);
                a2 += masked4(gv, w, 8u);
                a3 += masked4(gv, w, 12u);
                a4 += masked4(gv, w, 16u);
                a5 += masked4(gv, w, 20u);
                a6 += masked4(gv, w, 24u);
                a7 += masked4(gv, w, 28u);
                b0 += masked4(gv2, w, 0u);
                b1 += masked4(gv2, w, 4u);
                b2 += masked4(gv2, w, 8u);
                b3 += masked4(gv2, w, 12u);
                b4 += masked4(gv2, w, 16u);
                b5 += masked4(gv2, w, 20u);
                b6 += masked4(gv2, w, 24u);
                b7 += masked4(gv2, w, 28u);
            }
        }
    }
    let sums = array<vec4<f32>, 8>(a0, a1, a2, a3, a4, a5, a6, a7);
    let sums2 = array<vec4<f32>, 8>(b0, b1, b2, b3, b4, b5, b6, b7);
    let tap = kh * params.kernel_w + kw;
    for (var j = 0u; j < 32u; j++) {
        let ci = word * 32u + j;
        if (ci < params.in_channels) {
            grad_weight[(co * params.in_channels + ci) * taps + tap] = sums[j / 4u][j % 4u];
            if (both) {
                grad_weight[((co + 1u) * params.in_channels + ci) * taps + tap] = sums2[j / 4u][j % 4u];
            }
        }
    }
}
