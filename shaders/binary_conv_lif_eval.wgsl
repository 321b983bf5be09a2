// binary_conv_lif_eval: a binary conv unit's eval forward from packed input spikes to float
// output spikes in one pass (popcount conv -> BN running statistics -> [AGMM gate] ->
// [+ shortcut] -> LIF; docs/method.md §3-§5, §7), for a next layer that reads floats (a
// float linear readout). Exactly binary_conv_popcount then bn_agmm_lif_eval: see
// common/binary_conv_lif.wgsl for the bindings 0-4, the arithmetic and the dispatch.
//
//   5 storage rw : output [T, B, C_out, OH, OW] f32  s[t] in {0, 1}, every element written

//!include common/binary_conv_lif.wgsl

@group(0) @binding(5) var<storage, read_write> output: array<f32>;

// Writes timestep t's spikes of the site q's channels co0.. (bit j: channel co0 + j).
fn store_spikes(t: u32, q: u32, co0: u32, bits: u32) {
    let at = site_at(t, q, co0);
    let plane = params.out_h * params.out_w;
    for (var j = 0u; j < 16u; j++) {
        if (co0 + j < params.out_channels) {
            output[at + j * plane] = f32((bits >> j) & 1u);
        }
    }
}
