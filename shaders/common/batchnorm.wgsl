// BatchNormParams: the uniform params (binding 0) of batchnorm_stats, batchnorm_apply,
// batchnorm_backward_reduce and batchnorm_backward_input.
// Mirrored by `crate::kernels::batchnorm::BatchNormParams`.

struct BatchNormParams {
    samples: u32,        // N = T*B
    channels: u32,       // C
    spatial: u32,        // HW = H*W
    from_variance: u32,  // batchnorm_apply only: 1 = `scale` holds a variance (eval)
    eps: f32,
    momentum: f32,
    _pad0: u32,
    _pad1: u32,
}
