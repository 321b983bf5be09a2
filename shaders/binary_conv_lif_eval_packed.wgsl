// binary_conv_lif_eval_packed: a binary conv unit's eval forward from packed input spikes to
// packed output spikes in one pass (popcount conv -> BN running statistics -> [AGMM gate] ->
// [+ shortcut] -> LIF; docs/method.md §3-§5, §7), for a next layer that reads them packed (a
// popcount conv, directly or through maxpool_packed). Exactly binary_conv_popcount then
// bn_agmm_lif_eval_packed: see common/binary_conv_lif.wgsl for the bindings 0-4, the
// arithmetic and the dispatch.
//
//   5 storage rw : packed [T*B, OH, OW, ceil(C_out / 32)] u32, pack_spikes' layout: bit i of
//                  word j is channel 32j + i; zeroed by the caller. The 16 channels of an
//                  invocation are half a word (the other half is another workgroup's), set with
//                  one atomicOr per timestep, none where no channel spiked.

//!include common/binary_conv_lif.wgsl

@group(0) @binding(5) var<storage, read_write> packed: array<atomic<u32>>;

// Sets timestep t's spike bits of site q's channels co0.. (bit j: channel co0 + j).
fn store_spikes(t: u32, q: u32, co0: u32, bits: u32) {
    if (bits != 0u) {
        let words = (params.out_channels + 31u) / 32u;
        atomicOr(&packed[(t * params.sites + q) * words + co0 / 32u], bits << (co0 % 32u));
    }
}
