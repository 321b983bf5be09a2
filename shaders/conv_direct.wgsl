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

//!include common/conv_pixel.wgsl

// Input channel ci at tap (kh, kw) of pixel `px`, or 0 where the tap is padding.
fn tap_value(px: Pixel, ci: u32, kh: u32, kw: u32) -> f32 {
    let iy = px.y0 + i32(kh);
    let ix = px.x0 + i32(kw);
    if (iy < 0 || iy >= i32(params.height) || ix < 0 || ix >= i32(params.width)) {
        return 0.0;
    }
    return input[((px.n * params.in_channels + ci) * params.height + u32(iy)) * params.width + u32(ix)];
}

// Weights of channels co..co+3 at flat tap k (channels past the last read the last one; their
// sums are never stored).
// Flat weight i.
fn wt(i: u32) -> f32 {
    return weight[i / 4u][i % 4u];
}

fn weights4(co: u32, k: u32, taps: u32) -> vec4<f32> {
    let last = params.out_channels - 1u;
    return vec4<f32>(
        wt(min(co, last) * taps + k),
        wt(min(co + 1u, last) * taps + k),
        wt(min(co + 2u, last) * taps + k),
        wt(min(co + 3u, last) * taps + k),
    );
}

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
    let taps = params.in_channels * params.kernel_h * params.kernel_w;

    // a* pixel p, b* p + 1, c* p + 2, d* p + 3; four channels per vec4 (named registers: an
    // indexed array would live in memory on lavapipe). With PIXELS = 1 only a* are used.
    var a0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0);
    var a3 = vec4<f32>(0.0);
    var b0 = vec4<f32>(0.0);
    var b1 = vec4<f32>(0.0);
    var b2 = vec4<f32>(0.0);
    var b3 = vec4<f32>(0.0);
    var c0 = vec4<f32>(0.0);
    var c1 = vec4<f32>(0.0);
    var c2 = vec4<f32>(0.0);
    var c3 = vec4<f32>(0.0);
    var d0 = vec4<f32>(0.0);
    var d1 = vec4<f32>(0.0);
    var d2 = vec4<f32>(0.0);
    var d3 = vec4<f32>(0.0);
    var k = 0u;
    for (var ci = 0u; ci < params.in_channels; ci++) {
        for (var kh = 0u; kh < params.kernel_h; kh++) {
            for (var kw = 0u; kw < params.kernel_w; kw++) {
                let w0 = weights4(co, k, taps);
                let w1 = weights4(co + 4u, k, taps);
                let w2 = weights4(co + 8u, k, taps);
                let w3 = weights4(co + 12u, k, taps);
                let x0 = tap_value(px0, ci, kh, kw);
                a0 += x0 * w0;
                a1 += x0 * w1;
                a2 += x0 * w2;
                a3 += x0 * w3;
                if (PIXELS == 4u) {
                    let x1 = tap_value(px1, ci, kh, kw);
                    let x2 = tap_value(px2, ci, kh, kw);
                    let x3 = tap_value(px3, ci, kh, kw);
                    b0 += x1 * w0;
                    b1 += x1 * w1;
                    b2 += x1 * w2;
                    b3 += x1 * w3;
                    c0 += x2 * w0;
                    c1 += x2 * w1;
                    c2 += x2 * w2;
                    c3 += x2 * w3;
                    d0 += x3 * w0;
                    d1 += x3 * w1;
                    d2 += x3 * w2;
                    d3 += x3 * w3;
                }
                k += 1u;
            }
        }
    }
    store16(co, px0.out_base, a0, a1, a2, a3);
    if (PIXELS == 4u) {
        if (p + 1u < params.pixels) {
            store16(co, px1.out_base, b0, b1, b2, b3);
        }
        if (p + 2u < params.pixels) {
            store16(co, px2.out_base, c0, c1, c2, c3);
        }
        if (p + 3u < params.pixels) {
            store16(co, px3.out_base, d0, d1, d2, d3);
        }
    }
}
