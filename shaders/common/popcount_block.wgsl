// popcount_block: the counting loop of the popcount convs (binary_conv_popcount and the
// binary_conv_lif_eval pair; docs/method.md §3). For four output pixels and the 16 output
// channels co0..co0 + 15 it sums, over the valid taps and the words, popcount(s & w) (four
// channels per vec4) and each pixel's own popcount(s); the conv's value is then
// gamma[co] * (2 * popcount(s & w) - popcount(s)).
//
// The including kernel declares the uniform `params` (the fields of PopcountConvParams, by
// name), `spikes` (packed input, [N, H, W, PLANES, words] u32), `weights` (packed signs,
// [kH, kW, words, C_out_pad] as vec4<u32>) and the overrides PIXELS (1 or 4: with 1 only
// pixel px0 is counted) and PLANES (bit planes of averaged spikes; 1: spikes).
//
// Why this shape (lavapipe): every loaded weight vec4 serves all four pixels and every loaded
// spike word sixteen channels; a tap whose words are zero for all four pixels (padding, or no
// spike) is skipped: it adds 0 to every count.

//!include common/conv_pixel.wgsl

// The counts of pixels px0 (a*), px1 (b*), px2 (c*), px3 (d*), channels co0 + 4k .. + 3 in
// vector k; `ones` holds the four pixels' spike counts (x for px0).
struct PopcountBlock {
    a0: vec4<u32>,
    a1: vec4<u32>,
    a2: vec4<u32>,
    a3: vec4<u32>,
    b0: vec4<u32>,
    b1: vec4<u32>,
    b2: vec4<u32>,
    b3: vec4<u32>,
    c0: vec4<u32>,
    c1: vec4<u32>,
    c2: vec4<u32>,
    c3: vec4<u32>,
    d0: vec4<u32>,
    d1: vec4<u32>,
    d2: vec4<u32>,
    d3: vec4<u32>,
    ones: vec4<u32>,
}

// The spike word of tap (kh, kw), word wd (of plane wd / words) of pixel `px`, or 0 where the
// tap is padding.
fn spike_word(px: Pixel, kh: u32, kw: u32, wd: u32) -> u32 {
    let iy = px.y0 + i32(kh);
    let ix = px.x0 + i32(kw);
    if (iy < 0 || iy >= i32(params.height) || ix < 0 || ix >= i32(params.width)) {
        return 0u;
    }
    return spikes[((px.n * params.height + u32(iy)) * params.width + u32(ix)) * PLANES * params.words + wd];
}

// Averaged spikes (PLANES > 1): plane p's counts enter shifted left by p, so the sums are
// exactly those of the counts k times sign(W).
fn popcount_block(px0: Pixel, px1: Pixel, px2: Pixel, px3: Pixel, co0: u32) -> PopcountBlock {
    let words = params.words;
    // vec4 index of this block's first 4 channels at (tap, word) = 0; each further
    // (tap, word) step moves out_pad / 4 vec4s.
    let block = co0 / 4u;
    let step = params.out_pad / 4u;
    var r: PopcountBlock;
    for (var kh = 0u; kh < params.kernel_h; kh++) {
        for (var kw = 0u; kw < params.kernel_w; kw++) {
            let tap = (kh * params.kernel_w + kw) * words;
            for (var wd = 0u; wd < words * PLANES; wd++) {
                // wd runs over the planes' words: weight word wq of plane sh.
                var wq = wd;
                var sh = 0u;
                if (PLANES > 1u) {
                    sh = wd / words;
                    wq = wd - sh * words;
                }
                let s0 = spike_word(px0, kh, kw, wd);
                var s1 = 0u;
                var s2 = 0u;
                var s3 = 0u;
                if (PIXELS == 4u) {
                    s1 = spike_word(px1, kh, kw, wd);
                    s2 = spike_word(px2, kh, kw, wd);
                    s3 = spike_word(px3, kh, kw, wd);
                }
                if ((s0 | s1 | s2 | s3) == 0u) {
                    continue;
                }
                let v4 = vec4<u32>(sh);
                let v0 = vec4<u32>(s0);
                let o = (tap + wq) * step + block;
                let w0 = weights[o];
                let w1 = weights[o + 1u];
                let w2 = weights[o + 2u];
                let w3 = weights[o + 3u];
                r.a0 += countOneBits(v0 & w0) << v4;
                r.a1 += countOneBits(v0 & w1) << v4;
                r.a2 += countOneBits(v0 & w2) << v4;
                r.a3 += countOneBits(v0 & w3) << v4;
                if (PIXELS == 4u) {
                    r.ones += countOneBits(vec4<u32>(s0, s1, s2, s3)) << v4;
                    let v1 = vec4<u32>(s1);
                    let v2 = vec4<u32>(s2);
                    let v3 = vec4<u32>(s3);
                    r.b0 += countOneBits(v1 & w0) << v4;
                    r.b1 += countOneBits(v1 & w1) << v4;
                    r.b2 += countOneBits(v1 & w2) << v4;
                    r.b3 += countOneBits(v1 & w3) << v4;
                    r.c0 += countOneBits(v2 & w0) << v4;
                    r.c1 += countOneBits(v2 & w1) << v4;
                    r.c2 += countOneBits(v2 & w2) << v4;
                    r.c3 += countOneBits(v2 & w3) << v4;
                    r.d0 += countOneBits(v3 & w0) << v4;
                    r.d1 += countOneBits(v3 & w1) << v4;
                    r.d2 += countOneBits(v3 & w2) << v4;
                    r.d3 += countOneBits(v3 & w3) << v4;
                } else {
                    r.ones.x += countOneBits(s0) << sh;
                }
            }
        }
    }
    return r;
}
