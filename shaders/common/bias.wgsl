// BiasParams and the uniform `params` (binding 0) of bias_add and bias_grad.
// Mirrored by `crate::kernels::linear::BiasParams`.

struct BiasParams {
    rows: u32,
    cols: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: BiasParams;
