// group_index: the flat workgroup index of a dispatch made with `Workgroups::for_items` or
// `Workgroups::Linear`, which fold more than 65535 workgroups into y (x * y >= groups).
// It takes the builtins one by one rather than as a struct so that, under WGSL's uniformity
// analysis, the result stays workgroup-uniform (kernels return early on it before barriers).

fn group_index(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.x + wid.y * nwg.x;
}
