// AgmmParams and the uniform `params` (binding 0) of agmm_forward and agmm_backward.
// Mirrored by `crate::kernels::agmm::AgmmParams`.

struct AgmmParams {
    timesteps: u32,
    elements: u32,
    mode: u32,         // 0 = full, 1 = detached, 2 = off
    alpha_const: f32,  // 0 = running mean (alpha[t] = 1/t)
}

@group(0) @binding(0) var<uniform> params: AgmmParams;
