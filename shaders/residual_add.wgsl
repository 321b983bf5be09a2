// residual_add: out = a + b element-wise (the shortcut add before the LIF, docs/method.md §7).
//
// Bindings:
//   0 uniform params : ElementwiseParams (common/elementwise.wgsl)
//   1 storage read   : a   [len] f32 (any layout; element-wise)
//   2 storage read   : b   [len] f32
//   3 storage rw     : out [len] f32 (written; must be a buffer distinct from a and b)
// Dispatch: one invocation per element, workgroups of 256, folded 1-D (ceil(len / 256)).

//!include common/flat_index.wgsl
//!include common/elementwise.wgsl

@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256) fn main(inv: FlatInvocation) {
    let i = flat_index(inv, 256u);
    if (i >= params.len) {
        return;
    }
    out[i] = a[i] + b[i];
}
