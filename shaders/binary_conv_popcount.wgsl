// binary_conv_popcount: bit-packed forward of a binary conv (or linear) layer on {0,1} spikes
// (docs/method.md §3): out[n, co, y, x] = gamma[co] * sum over valid taps (kh, kw) and words of
// (2 * popcount(s & w) - popcount(s)), i.e. exactly sum_{ci,kh,kw} s * sign(W) times gamma.
// Zero padding contributes nothing (the tap is skipped). Linear layers: H = W = kH = kW = 1.
//
// Bindings:
//   0 uniform params : PopcountConvParams
//   1 storage read   : spikes  [N, H, W, words] u32         pack_spikes output, words = ceil(C_in/32)
//   2 storage read   : weights [kH, kW, words, C_out_pad] u32  pack_weights output (bit = W >= 0),
//                                                           read as vec4<u32>; C_out_pad =
//                                                           C_out rounded up to 16, zero-filled
//   3 storage read   : gamma   [C_out] f32                  binarize_forward scales
//   4 storage rw     : output  [N, C_out, OH, OW] f32       N = T*B (time-major)
// Dispatch: grid (x, ceil(C_out / 16), z) with x * z >= ceil(N * OH * OW / 128): each
// workgroup holds 128 output pixels (two per invocation: flat pixels 2q and 2q + 1, q from the
// pixel group wid.x + wid.z * nwg.x) and one block of 16 output channels (wid.y). Each
// invocation computes 16 channels of two pixels, reusing each loaded input word 16 times and
// each loaded weight vec4 twice. The 16 channels' weight words of one (tap, word) are
// contiguous, so they arrive in four vec4 loads (on lavapipe per-lane loads of the weights cost
// 3x the whole popcount arithmetic, hence also the second pixel: 1.2x at the mnist shapes).
// Spike loads are per pixel and neighbouring invocations hold neighbouring pixels. A tap whose
// words are zero for both pixels (padding, or no spike) is skipped: it adds 0 to every count.

struct PopcountConvParams {
    batch: u32,
    in_channels: u32,
    height: u32,
    width: u32,
    out_channels: u32,
    kernel_h: u32,
    kernel_w: u32,
    stride: u32,
    padding: u32,
    out_h: u32,
    out_w: u32,
    words: u32,          // ceil(in_channels / 32)
    pixels: u32,         // batch * out_h * out_w
    out_pad: u32,        // out_channels rounded up to 16
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: PopcountConvParams;
@group(0) @binding(1) var<storage, read> spikes: array<u32>;
@group(0) @binding(2) var<storage, read> weights: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> gamma: array<f32>;
@group(0) @binding(4) var<storage, read_write> output: array<f32>;

fn store4(co: u32, out_base: u32, plane: u32, acc: vec4<u32>, ones: u32) {
    let counts = vec4<i32>(acc) * 2 - vec4<i32>(i32(ones));
    for (var j = 0u; j < 4u; j++) {
        let c = co + j;
        if (c < params.out_channels) {
            output[out_base + c * plane] = gamma[c] * f32(counts[j]);
        }
    }
}

// Output pixel p as (n, oy, ox): the flat index of its first channel's value and its window's
// top-left input position.
struct Pixel {
    out_base: u32,
    n: u32,
    y0: i32,
    x0: i32,
}

fn pixel(p: u32) -> Pixel {
    let ox = p % params.out_w;
    let rest = p / params.out_w;
    let oy = rest % params.out_h;
    let n = rest / params.out_h;
    let plane = params.out_h * params.out_w;
    return Pixel(
        n * params.out_channels * plane + oy * params.out_w + ox,
        n,
        i32(oy * params.stride) - i32(params.padding),
        i32(ox * params.stride) - i32(params.padding),
    );
}

// The spike word of tap (kh, kw), word wd of pixel `px`, or 0 where the tap is padding.
fn spike_word(px: Pixel, kh: u32, kw: u32, wd: u32) -> u32 {
    let iy = px.y0 + i32(kh);
    let ix = px.x0 + i32(kw);
    if (iy < 0 || iy >= i32(params.height) || ix < 0 || ix >= i32(params.width)) {
        return 0u;
    }
    return spikes[((px.n * params.height + u32(iy)) * params.width + u32(ix)) * params.words + wd];
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    // Two output pixels per invocation, 2q and 2q + 1: every weight load serves both.
    let p = 2u * ((wid.x + wid.z * nwg.x) * 64u + lid);
    if (p >= params.pixels) {
        return;
    }
    let has_second = p + 1u < params.pixels;
    let a = pixel(p);
    let b = pixel(select(p, p + 1u, has_second));

    let words = params.words;
    let co0 = wid.y * 16u;
    // vec4 index of this block's first 4 channels at (tap, word) = 0; each further
    // (tap, word) step moves out_pad / 4 vec4s.
    let block = co0 / 4u;
    let step = params.out_pad / 4u;

    var acc0 = vec4<u32>(0u);
    var acc1 = vec4<u32>(0u);
    var acc2 = vec4<u32>(0u);
    var acc3 = vec4<u32>(0u);
    var bcc0 = vec4<u32>(0u);
    var bcc1 = vec4<u32>(0u);
    var bcc2 = vec4<u32>(0u);
    var bcc3 = vec4<u32>(0u);
    var ones = 0u;
    var ones_b = 0u;
    for (var kh = 0u; kh < params.kernel_h; kh++) {
        for (var kw = 0u; kw < params.kernel_w; kw++) {
            let tap = (kh * params.kernel_w + kw) * words;
            for (var wd = 0u; wd < words; wd++) {
                let sa = spike_word(a, kh, kw, wd);
                let sb = spike_word(b, kh, kw, wd);
                if ((sa | sb) == 0u) {
                    continue;
                }
                ones += countOneBits(sa);
                ones_b += countOneBits(sb);
                let va = vec4<u32>(sa);
                let vb = vec4<u32>(sb);
                let o = (tap + wd) * step + block;
                let w0 = weights[o];
                let w1 = weights[o + 1u];
                let w2 = weights[o + 2u];
                let w3 = weights[o + 3u];
                acc0 += countOneBits(va & w0);
                acc1 += countOneBits(va & w1);
                acc2 += countOneBits(va & w2);
                acc3 += countOneBits(va & w3);
                bcc0 += countOneBits(vb & w0);
                bcc1 += countOneBits(vb & w1);
                bcc2 += countOneBits(vb & w2);
                bcc3 += countOneBits(vb & w3);
            }
        }
    }
    let plane = params.out_h * params.out_w;
    store4(co0, a.out_base, plane, acc0, ones);
    store4(co0 + 4u, a.out_base, plane, acc1, ones);
    store4(co0 + 8u, a.out_base, plane, acc2, ones);
    store4(co0 + 12u, a.out_base, plane, acc3, ones);
    if (has_second) {
        store4(co0, b.out_base, plane, bcc0, ones_b);
        store4(co0 + 4u, b.out_base, plane, bcc1, ones_b);
        store4(co0 + 8u, b.out_base, plane, bcc2, ones_b);
        store4(co0 + 12u, b.out_base, plane, bcc3, ones_b);
    }
}
