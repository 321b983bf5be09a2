// ElementwiseParams and the uniform `params` (binding 0) of residual_add and accumulate.
// Mirrored by `crate::kernels::elementwise::ElementwiseParams`.

struct ElementwiseParams {
    len: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: ElementwiseParams;
