// BinarizeParams and the uniform `params` (binding 0) of binarize_forward and binarize_backward.
// Mirrored by `crate::kernels::binarize::BinarizeParams`.

struct BinarizeParams {
    out_channels: u32,
    fan_in: u32,        // K
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: BinarizeParams;
