// conv_direct_weight_grad: the weight gradient of a 3x3 conv with few input channels (the
// encoder: 1 to 3), directly, without im2col columns (docs/method.md §3):
//   partials[n, co, ci, kh, kw] = sum over oy, then ox, of
//       g[n, co, oy, ox] * in[n, ci, oy*s + kh - p, ox*s + kw - p]     (padding taps: 0)
// and `bias_grad` then sums the partials over n, in order, into dW [C_out, C_in, 3, 3]
// (Conv2d::backward_weight). With 9 taps per input channel the im2col + GEMM path spends its
// time writing and reading 9 columns per input value and reduces over N*OH*OW with few output
// tiles (8 invocations at mnist's encoder); here each invocation keeps the 9 taps of four
// output channels in registers and reads each gradient and input value where it is used.
//
// Bindings:
//   0 uniform params : ConvDirectParams (conv_direct.wgsl's)
//   1 storage read   : input       [N, C_in, H, W] f32
//   2 storage read   : grad_output [N, C_out, OH, OW] f32
//   3 storage rw     : partials    [N, C_out, C_in, 3, 3] f32 (written)
// Dispatch: one invocation per (sample, input channel, block of four output channels), blocks
// fastest, workgroups of 64, folded 1-D. An invocation loops over OH * OW pixels (the host
// keeps that under lavapipe's loop budget, crate::gpu::MAX_LOOP_ITERATIONS). Channels past
// C_out read the first channel's gradient again (summed, never stored).

//!include common/flat_index.wgsl

//!include common/conv_direct_params.wgsl

@group(0) @binding(0) var<uniform> params: ConvDirectParams;
@group(0) @binding(1) var<storage, read> input: array<f32>;
@group(0) @binding(2) var<storage, read> grad_output: array<f32>;
@group(0) @binding(3) var<storage, read_write> partials: array<f32>;

// The input value at (y, x) of the plane starting at `base`, or 0 in the padding.
fn at(base: u32, y: i32, x: i32) -> f32 {
    if (y < 0 || y >= i32(params.height) || x < 0 || x >= i32(params.width)) {
        return 0.0;
    }
    return input[base + u32(y) * params.width + u32(x)];
}

fn store(n: u32, co: u32, ci: u32, tap: u32, acc: vec4<f32>) {
    let taps = params.in_channels * 9u;
    for (var j = 0u; j < 4u; j++) {
        if (co + j < params.out_channels) {
            partials[(n * params.out_channels + co + j) * taps + ci * 9u + tap] = acc[j];
        }
    }
}

@compute @workgroup_size(64) fn main(inv: FlatInvocation) {
    let blocks = (params.out_channels + 3u) / 4u;
    let g = flat_index(inv, 64u);
    if (g >= params.batch * params.in_channels * blocks) {
        return;
    }
    let co = 4u * (g % blocks);
    let ci = (g / blocks) % params.in_channels;
    let n = g / (blocks * params.in_channels);
    let plane = params.out_h * params.out_w;
    let g0 = (n * params.out_channels + co) * plane;
    let o1 = select(0u, plane, co + 1u < params.out_channels);
    let o2 = select(0u, 2u * plane, co + 2u < params.out_channels);
    let o3 = select(0u, 3u * plane, co + 3u < params.out_channels);
    let base = (n * params.in_channels + ci) * params.height * params.width;
    // One vec4 (four output channels) per tap (kh, kw), named: an indexed array would live in
    // memory on lavapipe.
    var a0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0);
    var a3 = vec4<f32>(0.0);
    var a4 = vec4<f32>(0.0);
    var a5 = vec4<f32>(0.0);
    var a6 = vec4<f32>(0.0);
    var a7 = vec4<f32>(0.0);
    var a8 = vec4<f32>(0.0);
    for (var oy = 0u; oy < params.out_h; oy++) {
        let y = i32(oy * params.stride) - i32(params.padding);
        for (var ox = 0u; ox < params.out_w; ox++) {
            let x = i32(ox * params.stride) - i32(params.padding);
            let o = g0 + oy * params.out_w + ox;
            let gv = vec4<f32>(grad_output[o], grad_output[o + o1], grad_output[o + o2],
                               grad_output[o + o3]);
            a0 += gv * at(base, y, x);
            a1 += gv * at(base, y, x + 1);
            a2 += gv * at(base, y, x + 2);
            a3 += gv * at(base, y + 1, x);
            a4 += gv * at(base, y + 1, x + 1);
            a5 += gv * at(base, y + 1, x + 2);
            a6 += gv * at(base, y + 2, x);
            a7 += gv * at(base, y + 2, x + 1);
            a8 += gv * at(base, y + 2, x + 2);
        }
    }
    store(n, co, ci, 0u, a0);
    store(n, co, ci, 1u, a1);
    store(n, co, ci, 2u, a2);
    store(n, co, ci, 3u, a3);
    store(n, co, ci, 4u, a4);
    store(n, co, ci, 5u, a5);
    store(n, co, ci, 6u, a6);
    store(n, co, ci, 7u, a7);
    store(n, co, ci, 8u, a8);
}
