// sign_flip_count: number of weights whose sign changed between two packed-sign snapshots of
// one binary layer (docs/method.md §1), added into that layer's slot of a shared counts buffer.
//
// Bindings:
//   0 uniform params : FlipParams
//   1 storage read   : snapshot [words] u32   pack_signs of the earlier weights
//   2 storage read   : current  [words] u32   pack_signs of the current weights
//   3 storage rw     : counts   [layers] atomic<u32>  counts[slot] += popcount(snapshot ^ current)
// Dispatch: workgroups of 64, each invocation XORs WORDS_PER_INVOCATION (4) consecutive words,
// folded 1-D (ceil(words / 256) groups). A workgroup atomic gathers the group's total so there
// is one global atomicAdd per workgroup rather than per invocation.
// Flip ratio pi = counts[slot] / numel of the layer (not / 32 * words).

//!include common/group_index.wgsl

struct FlipParams {
    words: u32,
    slot: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: FlipParams;
@group(0) @binding(1) var<storage, read> snapshot: array<u32>;
@group(0) @binding(2) var<storage, read> current: array<u32>;
@group(0) @binding(3) var<storage, read_write> counts: array<atomic<u32>>;

var<workgroup> group_total: atomic<u32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let group = group_index(wid, nwg);
    if (lid == 0u) {
        atomicStore(&group_total, 0u);
    }
    workgroupBarrier();
    // Consecutive invocations read consecutive words (stride 64 inside the group's 256 words).
    let base = group * 256u + lid;
    var flips = 0u;
    for (var r = 0u; r < 4u; r++) {
        let j = base + r * 64u;
        if (j < params.words) {
            flips += countOneBits(snapshot[j] ^ current[j]);
        }
    }
    if (flips != 0u) {
        atomicAdd(&group_total, flips);
    }
    workgroupBarrier();
    if (lid == 0u) {
        let total = atomicLoad(&group_total);
        if (total != 0u) {
            atomicAdd(&counts[params.slot], total);
        }
    }
}
