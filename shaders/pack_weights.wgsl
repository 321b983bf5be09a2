// pack_weights: sign bits of conv/linear weights [C_out, C_in, kH, kW] f32 -> packed
// [kH, kW, ceil(C_in / 32), C_out_pad] u32, the weight operand of binary_conv_popcount
// (docs/method.md §3), output channel fastest so that binary_conv_popcount fetches 4 channels per
// vec4 load. C_out_pad = C_out rounded up to 16; the padding channels are zero words.
// Linear weights [N_out, N_in] are the kH = kW = 1 case.
//
// Bindings:
//   0 uniform params : PackWeightsParams
//   1 storage read   : weights [C_out, C_in, kH, kW] f32   latent (or binarized) weights
//   2 storage rw     : packed  [kH, kW, words, C_out_pad] u32  words = ceil(C_in / 32); bit i of
//                                                          word (kh, kw, j, co) is set iff
//                                                          W[co, 32j + i, kh, kw] >= 0 (sign(0) =
//                                                          +1); bits past C_in and channels past
//                                                          C_out are zero
// Dispatch: one invocation per output word, workgroups of 64, folded 1-D
// (ceil(kH * kW * words * C_out_pad / 64)).

//!include common/flat_index.wgsl

struct PackWeightsParams {
    out_channels: u32,
    in_channels: u32,
    kernel_h: u32,
    kernel_w: u32,
    words: u32,          // ceil(in_channels / 32)
    total_words: u32,    // kernel_h * kernel_w * words * out_pad
    out_pad: u32,        // out_channels rounded up to 16
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: PackWeightsParams;
@group(0) @binding(1) var<storage, read> weights: array<f32>;
@group(0) @binding(2) var<storage, read_write> packed: array<u32>;

@compute @workgroup_size(64) fn main(inv: FlatInvocation) {
    let g = flat_index(inv, 64u);
    if (g >= params.total_words) {
        return;
    }
    let taps = params.kernel_h * params.kernel_w;
    let co = g % params.out_pad;
    let rest = g / params.out_pad;
    let word = rest % params.words;
    let tap = rest / params.words;
    if (co >= params.out_channels) {
        packed[g] = 0u;
        return;
    }
    let c0 = word * 32u;
    let count = min(32u, params.in_channels - c0);
    var src = (co * params.in_channels + c0) * taps + tap;
    var bits = 0u;
    for (var i = 0u; i < count; i++) {
        bits |= select(0u, 1u << i, weights[src] >= 0.0);
        src += taps;
    }
    packed[g] = bits;
}
