// binary_conv_popcount: bit-packed forward of a binary conv (or linear) layer on {0,1} spikes
// (docs/method.md §3): out[n, co, y, x] = gamma[co] * sum over valid taps (kh, kw) and words of
// (2 * popcount(s & w) - popcount(s)), i.e. exactly sum_{ci,kh,kw} s * sign(W) times gamma.
// Zero padding contributes nothing (the tap is skipped). Linear layers: H = W = kH = kW = 1.
//
// Bindings:
//   0 uniform params : PopcountConvParams
//   1 storage read   : spikes  [N, H, W, PLANES, words] u32 pack_spikes output, words = ceil(C_in/32)
//   2 storage read   : weights [kH, kW, words, C_out_pad] u32  pack_weights output (bit = W >= 0),
//                                                           read as vec4<u32>; C_out_pad =
//                                                           C_out rounded up to 16, zero-filled
//   3 storage read   : gamma   [C_out] f32                  binarize_forward scales
//   4 storage rw     : output  [N, C_out, OH, OW] f32       N = T*B (time-major)
// Dispatch: grid (x, ceil(C_out / 16), z) with x * z >= ceil(N * OH * OW / (64 * PIXELS)):
// each workgroup holds 64 * PIXELS output pixels (PIXELS per invocation: flat pixels PIXELS * q
// .., q from the pixel group wid.x + wid.z * nwg.x) and one block of 16 output channels (wid.y).
// PIXELS is an override constant: 4 on CPU rasterisers, 1 on GPUs (KernelVariant::
// popcount_pixels). Each invocation computes 16 channels of its pixels, reusing each loaded
// input word 16 times and each loaded weight vec4 for every pixel. The 16 channels' weight words of one (tap, word) are
// contiguous, so they arrive in four vec4 loads (on lavapipe per-lane loads of the weights
// cost 3x the whole popcount arithmetic, hence also the four pixels: 1.7x at the mnist shapes
// against one, 1.2x for two; eight gained another 5 % only; GPUs, which want many light
// threads, get one).
// Spike loads are per pixel and neighbouring invocations hold neighbouring groups of four. A tap whose words are zero for all four
// pixels (padding, or no spike) is skipped: it adds 0 to every count.
//
// Averaged spikes (AREA > 1, an average pool of spikes before the conv: inputs k / AREA): the
// input is the PLANES bit planes of the counts k ([N, H, W, PLANES, words], pack_spikes), each
// plane's counts enter shifted left by its index p, so the sums are exactly sum of k * sign(W)
// over the taps, and out = gamma[co] * (that sum * (1 / AREA)). A plane that is zero for all four
// pixels is skipped like a silent tap (high planes mostly are). PLANES and AREA are override
// constants: with AREA = 1 the plane loop runs once at p = 0 and the kernel is the spikes' one.

//!include common/popcount_params.wgsl

@group(0) @binding(1) var<storage, read> spikes: array<u32>;
@group(0) @binding(2) var<storage, read> weights: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> gamma: array<f32>;
@group(0) @binding(4) var<storage, read_write> output: array<f32>;

fn store4(co: u32, out_base: u32, plane: u32, acc: vec4<u32>, ones: u32) {
    let counts = vec4<i32>(acc) * 2 - vec4<i32>(i32(ones));
    for (var j = 0u; j < 4u; j++) {
        let c = co + j;
        if (c < params.out_channels) {
            if (AREA == 1u) {
                output[out_base + c * plane] = gamma[c] * f32(counts[j]);
            } else {
                output[out_base + c * plane] = gamma[c] * (f32(counts[j]) * INV_AREA);
            }
        }
    }
}

// The 16 channels co..co+15 of one pixel (`out_base`: its value of channel 0).
fn store16(co: u32, out_base: u32, c0: vec4<u32>, c1: vec4<u32>, c2: vec4<u32>, c3: vec4<u32>, ones: u32) {
    let plane = params.out_h * params.out_w;
    store4(co, out_base, plane, c0, ones);
    store4(co + 4u, out_base, plane, c1, ones);
    store4(co + 8u, out_base, plane, c2, ones);
    store4(co + 12u, out_base, plane, c3, ones);
}

//!include common/popcount_block.wgsl

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    // PIXELS (1 or 4) output pixels per invocation, PIXELS * q ..: every weight load serves all.
    let p = PIXELS * ((wid.x + wid.z * nwg.x) * 64u + lid);
    if (p >= params.pixels) {
        return;
    }
    // Pixels past the last one repeat the first (computed, never stored).
    let px0 = pixel(p);
    let px1 = pixel(select(p, p + 1u, p + 1u < params.pixels));
    let px2 = pixel(select(p, p + 2u, p + 2u < params.pixels));
    let px3 = pixel(select(p, p + 3u, p + 3u < params.pixels));

    let co0 = wid.y * 16u;
    let r = popcount_block(px0, px1, px2, px3, co0);
    store16(co0, px0.out_base, r.a0, r.a1, r.a2, r.a3, r.ones.x);
    if (PIXELS == 4u) {
        if (p + 1u < params.pixels) {
            store16(co0, px1.out_base, r.b0, r.b1, r.b2, r.b3, r.ones.y);
        }
        if (p + 2u < params.pixels) {
            store16(co0, px2.out_base, r.c0, r.c1, r.c2, r.c3, r.ones.z);
        }
        if (p + 3u < params.pixels) {
            store16(co0, px3.out_base, r.d0, r.d1, r.d2, r.d3, r.ones.w);
        }
    }
}
