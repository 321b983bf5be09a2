// conv_direct: 2-D convolution forward computed directly, without im2col columns, for convs with
// few taps per output (C_in * kH * kW <= CONV_DIRECT_MAX_TAPS, i.e. the encoder: 1 or 3 input
// channels, 3x3): out[n, co, y, x] = sum over ci, kh, kw of
// w[co, ci, kh, kw] * in[n, ci, y*s + kh - p, x*s + kw - p] (zero padding: the tap is skipped),
// summed in (ci, kh, kw) order. Same result as im2col + GEMM (conv.wgsl's chain) within f32
// rounding: with K = 9 the GEMM spends its time on the column buffer and on tiles that are
// mostly empty, and the im2col columns are 9x the input; here each input value is loaded once
// per invocation and reused for 16 output channels.
//
// Bindings:
//   0 uniform params : ConvDirectParams
//   1 storage read   : input  [N, C_in, H, W] f32
//   2 uniform        : weight [C_out, C_in, kH, kW] f32, as 4096 vec4s (64 KiB, WebGPU's
//                      default uniform binding limit): a copy of the weights made just before
//                      the dispatch; only the first C_out * C_in * kH * kW floats are read
//   3 storage rw     : output [N, C_out, OH, OW] f32
// Dispatch: grid (x, ceil(C_out / 16), z) with x * z >= ceil(N * OH * OW / (64 * PIXELS)): each
// invocation computes output channels 16 * wid.y .. + 15 of PIXELS consecutive flat output
// pixels. PIXELS is an override constant: 4 on CPU rasterisers (every weight load serves four
// pixels: per-lane loads are what costs on lavapipe), 1 on GPUs (KernelVariant::popcount_pixels).
//
// Why the weights are a uniform: every invocation of a workgroup reads the same weights, and
// lavapipe turns a storage load into a loop over the SIMD lanes with a bounds check each, but a
// uniform load at a workgroup-uniform offset into one scalar load broadcast to the lanes (mnist's
// encoder: 23 -> 15 ms; GPUs serve it from the constant cache).

//!include common/conv_direct_params.wgsl

@group(0) @binding(0) var<uniform> params: ConvDirectParams;

override PIXELS: u32 = 4u;
@group(0) @binding(1) var<storage, read> input: array<f32>;
@group(0) @binding(2) var<uniform> weight: array<vec4<f32>, 4096>;
@group(0) @binding(3) var<storage, read_write> output: array<f32>;

//!include common/conv_direct_block.wgsl

fn store4(co: u32, out_base: u32, acc: vec4<f32>) {
    let plane = params.out_h * params.out_w;
    for (var j = 0u; j < 4u; j++) {
        if (co + j < params.out_channels) {
            output[out_base + (co + j) * plane] = acc[j];
        }
    }
}

fn store16(co: u32, out_base: u32, a0: vec4<f32>, a1: vec4<f32>, a2: vec4<f32>, a3: vec4<f32>) {
    store4(co, out_base, a0);
    store4(co + 4u, out_base, a1);
    store4(co + 8u, out_base, a2);
    store4(co + 12u, out_base, a3);
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let p = PIXELS * ((wid.x + wid.z * nwg.x) * 64u + lid);
    if (p >= params.pixels) {
        return;
    }
    // Pixels past the last one repeat the first (computed, never stored).
    let px0 = pixel(p);
    let px1 = pixel(select(p, p + 1u, p + 1u < params.pixels));
    let px2 = pixel(select(p, p + 2u, p + 2u < params.pixels));
    let px3 = pixel(select(p, p + 3u, p + 3u < params.pixels));
    let co = wid.y * 16u;
    let r = conv_direct_block(px0, px1, px2, px3, co);
    store16(co, px0.out_base, r.a0, r.a1, r.a2, r.a3);
    if (PIXELS == 4u) {
        if (p + 1u < params.pixels) {
            store16(co, px1.out_base, r.b0, r.b1, r.b2, r.b3);
        }
        if (p + 2u < params.pixels) {
            store16(co, px2.out_base, r.c0, r.c1, r.c2, r.c3);
        }
        if (p + 3u < params.pixels) {
            store16(co, px3.out_base, r.d0, r.d1, r.d2, r.d3);
        }
    }
}
