// pack_weights: sign bits of conv/linear weights [C_out, C_in, kH, kW] f32 -> packed
// [C_out, kH, kW, ceil(C_in / 32)] u32, the weight operand of binary_conv_popcount
// (spec section 3). Linear weights [N_out, N_in] are the kH = kW = 1 case.
//
// Bindings:
//   0 uniform params : PackWeightsParams
//   1 storage read   : weights [C_out, C_in, kH, kW] f32   latent (or binarized) weights
//   2 storage rw     : packed  [C_out, kH, kW, words] u32  words = ceil(C_in / 32); bit i of word
//                                                          j is set iff W[co, 32j + i, kh, kw] >= 0
//                                                          (sign(0) = +1); bits past C_in are zero
// Dispatch: one invocation per output word, workgroups of 64, folded 1-D
// (ceil(C_out * kH * kW * words / 64)).

struct PackWeightsParams {
    out_channels: u32,
    in_channels: u32,
    kernel_h: u32,
    kernel_w: u32,
    words: u32,          // ceil(in_channels / 32)
    total_words: u32,    // out_channels * kernel_h * kernel_w * words
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: PackWeightsParams;
@group(0) @binding(1) var<storage, read> weights: array<f32>;
@group(0) @binding(2) var<storage, read_write> packed: array<u32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let g = (wid.x + wid.y * nwg.x) * 64u + lid;
    if (g >= params.total_words) {
        return;
    }
    let taps = params.kernel_h * params.kernel_w;
    let word = g % params.words;
    let rest = g / params.words;
    let tap = rest % taps;
    let co = rest / taps;
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
