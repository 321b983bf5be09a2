// conv_direct_block: the accumulation loop of the direct convs (conv_direct and
// conv_direct_lif_eval_packed): the 16 output channels co.. of four output pixels, summed in
// (ci, kh, kw) order. The including kernel declares the uniform `params` (ConvDirectParams'
// fields by name), `input` ([N, C_in, H, W] f32), `weight` (the weights' uniform copy, vec4s)
// and the PIXELS override (1 or 4: with 1 only pixel px0 is summed).

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

// The sums of pixels px0 (a*), px1 (b*), px2 (c*), px3 (d*), channels co + 4k .. + 3 in vector k
// (named vectors: an indexed array would live in memory on lavapipe).
struct ConvBlock {
    a0: vec4<f32>,
    a1: vec4<f32>,
    a2: vec4<f32>,
    a3: vec4<f32>,
    b0: vec4<f32>,
    b1: vec4<f32>,
    b2: vec4<f32>,
    b3: vec4<f32>,
    c0: vec4<f32>,
    c1: vec4<f32>,
    c2: vec4<f32>,
    c3: vec4<f32>,
    d0: vec4<f32>,
    d1: vec4<f32>,
    d2: vec4<f32>,
    d3: vec4<f32>,
}

fn conv_direct_block(px0: Pixel, px1: Pixel, px2: Pixel, px3: Pixel, co: u32) -> ConvBlock {
    var r: ConvBlock;
    let taps = params.in_channels * params.kernel_h * params.kernel_w;

    var k = 0u;
    for (var ci = 0u; ci < params.in_channels; ci++) {
        for (var kh = 0u; kh < params.kernel_h; kh++) {
            for (var kw = 0u; kw < params.kernel_w; kw++) {
                let w0 = weights4(co, k, taps);
                let w1 = weights4(co + 4u, k, taps);
                let w2 = weights4(co + 8u, k, taps);
                let w3 = weights4(co + 12u, k, taps);
                let x0 = tap_value(px0, ci, kh, kw);
                r.a0 += x0 * w0;
                r.a1 += x0 * w1;
                r.a2 += x0 * w2;
                r.a3 += x0 * w3;
                if (PIXELS == 4u) {
                    let x1 = tap_value(px1, ci, kh, kw);
                    let x2 = tap_value(px2, ci, kh, kw);
                    let x3 = tap_value(px3, ci, kh, kw);
                    r.b0 += x1 * w0;
                    r.b1 += x1 * w1;
                    r.b2 += x1 * w2;
                    r.b3 += x1 * w3;
                    r.c0 += x2 * w0;
                    r.c1 += x2 * w1;
                    r.c2 += x2 * w2;
                    r.c3 += x2 * w3;
                    r.d0 += x3 * w0;
                    r.d1 += x3 * w1;
                    r.d2 += x3 * w2;
                    r.d3 += x3 * w3;
                }
                k += 1u;
            }
        }
    }
    return r;
}
