// pack_spikes: binary activations [N, C, H, W] f32 -> channel bits [N, H, W, ceil(C / 32)] u32,
// the input of binary_conv_popcount (docs/method.md §3). With AREA > 1 the activations are
// means of AREA spikes (an average pool of spikes: k / AREA, k in 0..=AREA) and the output is
// the bit planes of the counts k, [N, H, W, PLANES, words]: bit i of plane p's word is bit p of
// k for channel 32 * word + i (k = round(x * AREA), exact for such means).
//
// Bindings:
//   0 uniform params : PackSpikesParams
//   1 storage read   : spikes [N, C, H, W] f32             N = T*B (time-major), values in {0, 1}
//                                                           (AREA = 1) or k / AREA
//   2 storage rw     : packed [N, H, W, PLANES, words] u32  words = ceil(C / 32); with AREA = 1
//                                                           bit i of word j at (n, y, x) is
//                                                           spikes[n, 32j + i, y, x] != 0; bits
//                                                           past C are zero
// Dispatch: one invocation per word of channels (all its planes), workgroups of 64, folded 1-D
// (ceil(N * H * W * words / 64)). Invocations are ordered (n, word, y, x) with x fastest so that
// neighbouring invocations read neighbouring floats; the 32 channel reads of one word are
// H*W apart.
//
// AREA and PLANES (the bit length of AREA) are override constants: one pipeline per area.

//!include common/flat_index.wgsl

struct PackSpikesParams {
    batch: u32,
    channels: u32,
    height: u32,
    width: u32,
    words: u32,          // ceil(channels / 32)
    total_words: u32,    // batch * height * width * words (the invocations)
    area: u32,           // AREA (the pipeline's override; kept for the CPU mirror)
    planes: u32,         // PLANES
}

@group(0) @binding(0) var<uniform> params: PackSpikesParams;
@group(0) @binding(1) var<storage, read> spikes: array<f32>;
@group(0) @binding(2) var<storage, read_write> packed: array<u32>;

override AREA: u32 = 1u;
override PLANES: u32 = 1u;

@compute @workgroup_size(64) fn main(inv: FlatInvocation) {
    let g = flat_index(inv, 64u);
    if (g >= params.total_words) {
        return;
    }
    let plane = params.height * params.width;
    let pix = g % plane;
    let rest = g / plane;
    let word = rest % params.words;
    let n = rest / params.words;
    let c0 = word * 32u;
    let count = min(32u, params.channels - c0);
    var src = (n * params.channels + c0) * plane + pix;
    let out = (n * plane + pix) * PLANES * params.words + word;
    if (AREA == 1u) {
        var bits = 0u;
        for (var i = 0u; i < count; i++) {
            bits |= select(0u, 1u << i, spikes[src] != 0.0);
            src += plane;
        }
        packed[out] = bits;
    } else {
        // The counts' bits, plane p in bits[p] (PLANES <= 8).
        var bits = array<u32, 8>(0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u);
        for (var i = 0u; i < count; i++) {
            let k = u32(round(spikes[src] * f32(AREA)));
            for (var p = 0u; p < PLANES; p++) {
                bits[p] |= ((k >> p) & 1u) << i;
            }
            src += plane;
        }
        for (var p = 0u; p < PLANES; p++) {
            packed[out + p * params.words] = bits[p];
        }
    }
}
