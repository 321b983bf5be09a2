// GemmParams and the uniform `params` (binding 0) of gemm_register and gemm_tiled.
// Mirrored by `crate::kernels::gemm::GemmParams`.

struct GemmParams {
    m: u32,
    n: u32,
    k: u32,
    batch: u32,
    stride_a: u32,
    stride_b: u32,
    stride_c: u32,
    trans_a: u32,
    offset_a: u32,
    offset_b: u32,
    offset_c: u32,
    trans_b: u32,
    accumulate: u32,
    reduce_batch: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: GemmParams;
