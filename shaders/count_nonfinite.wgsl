// count_nonfinite: the number of NaN and infinite values in one f32 tensor, added into that
// tensor's slot of a shared counts buffer. Training runs it over every parameter and optimizer
// tensor at each epoch end, so a diverged run stops before its weights are saved
// (docs/method.md §8).
//
// Bindings:
//   0 uniform params : FiniteParams
//   1 storage read   : values [len] f32
//   2 storage rw     : counts [tensors] atomic<u32>   counts[slot] += #non-finite in values
// Dispatch: workgroups of 64, each invocation checks 4 values (stride 64 inside the group's
// 256), folded 1-D (ceil(len / 256) groups); one global atomicAdd per workgroup.
//
// The test is on the bit pattern (exponent all ones), not `x != x`: shader compilers may assume
// floats are never NaN and fold such comparisons away.

//!include common/group_index.wgsl

struct FiniteParams {
    len: u32,
    slot: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: FiniteParams;
@group(0) @binding(1) var<storage, read> values: array<u32>;
@group(0) @binding(2) var<storage, read_write> counts: array<atomic<u32>>;

var<workgroup> group_total: atomic<u32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let group = group_index(wid, nwg);
    if (lid == 0u) {
        atomicStore(&group_total, 0u);
    }
    workgroupBarrier();
    let base = group * 256u + lid;
    var bad = 0u;
    for (var r = 0u; r < 4u; r++) {
        let i = base + r * 64u;
        if (i < params.len && (values[i] & 0x7f800000u) == 0x7f800000u) {
            bad += 1u;
        }
    }
    if (bad != 0u) {
        atomicAdd(&group_total, bad);
    }
    workgroupBarrier();
    if (lid == 0u) {
        let total = atomicLoad(&group_total);
        if (total != 0u) {
            atomicAdd(&counts[params.slot], total);
        }
    }
}
