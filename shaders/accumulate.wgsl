// accumulate: dst += src element-wise (in-place gradient accumulation, e.g. summing the
// shortcut and main-path gradients). A separate kernel from residual_add because one dispatch
// cannot bind the same buffer both read-only and read-write.
//
// Bindings:
//   0 uniform params : ElementwiseParams (common/elementwise.wgsl)
//   1 storage read   : src [len] f32
//   2 storage rw     : dst [len] f32 (read and overwritten with dst + src)
// Dispatch: one invocation per element, workgroups of 256, folded 1-D (ceil(len / 256)).

//!include common/flat_index.wgsl
//!include common/elementwise.wgsl

@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(256) fn main(inv: FlatInvocation) {
    let i = flat_index(inv, 256u);
    if (i >= params.len) {
        return;
    }
    dst[i] = dst[i] + src[i];
}
