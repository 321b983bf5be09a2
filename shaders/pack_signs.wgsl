// pack_signs: sign bits of a whole f32 tensor, flat, 32 per u32 (flip counting, docs/method.md §1).
//
// Bindings:
//   0 uniform params : PackSignsParams
//   1 storage read   : values [numel] f32            any layout, read flat
//   2 storage rw     : packed [ceil(numel / 32)] u32  bit i of word j set iff values[32j + i] >= 0
//                                                     (sign(0) = +1, -0.0 too); unused bits of
//                                                     the last word are zero
// Dispatch: one invocation per output word, workgroups of 64, folded 1-D (ceil(words / 64)).

//!include common/flat_index.wgsl

struct PackSignsParams {
    numel: u32,
    words: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: PackSignsParams;
@group(0) @binding(1) var<storage, read> values: array<f32>;
@group(0) @binding(2) var<storage, read_write> packed: array<u32>;

@compute @workgroup_size(64) fn main(inv: FlatInvocation) {
    let j = flat_index(inv, 64u);
    if (j >= params.words) {
        return;
    }
    let first = j * 32u;
    let count = min(32u, params.numel - first);
    var word = 0u;
    for (var i = 0u; i < count; i++) {
        word |= select(0u, 1u << i, values[first + i] >= 0.0);
    }
    packed[j] = word;
}
