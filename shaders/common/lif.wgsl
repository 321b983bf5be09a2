// LifParams and the uniform `params` (binding 0) of lif_forward and lif_backward.
// Mirrored by `crate::kernels::lif::LifParams`.

struct LifParams {
    timesteps: u32,
    neurons: u32,
    soft_reset: u32,     // 0 = hard, 1 = soft
    detach_reset: u32,   // forward ignores it; kept so both passes share one struct
    decay: f32,          // lambda
    v_th: f32,
    surrogate_width: f32,
    broadcast_input: u32, // 1: the input is one [N] frame reused at every t (direct encoding)
}

@group(0) @binding(0) var<uniform> params: LifParams;
