// flat_index: the element an invocation handles in a dispatch made with
// `Workgroups::for_items` (one invocation per element, workgroups folded into y).
// For element-wise kernels WITHOUT workgroup barriers only: the entry point takes the builtins
// as one `FlatInvocation`, which WGSL's uniformity analysis does not treat as workgroup-uniform,
// so kernels with barriers take them one by one and call `group_index` (common/group_index.wgsl).

//!include common/group_index.wgsl

struct FlatInvocation {
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
}

// `per_group` is the elements per workgroup: the kernel's @workgroup_size, times the elements
// each invocation handles (a workgroup size apart) where that is more than one.
fn flat_index(inv: FlatInvocation, per_group: u32) -> u32 {
    return group_index(inv.wid, inv.nwg) * per_group + inv.lid;
}
