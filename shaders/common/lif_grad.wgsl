// lif_grad: one step of the LIF's BPTT (docs/method.md §2), shared by lif_backward and
// lif_agmm_backward. The including kernel declares `params` with the LIF's decay, v_th and
// surrogate_width, and the SOFT_RESET and DETACH_RESET override constants.
//
// With gh = dL/dh[t+1] carried backwards and sg(h) = max(0, g - |h - v_th|) / g^2:
//   hard: gs = dL/ds[t] - lambda * h[t] * gh (unless detached); gh' = gs * sg(h) + lambda * (1 - s[t]) * gh
//   soft: gs = dL/ds[t] - lambda * v_th * gh (unless detached); gh' = gs * sg(h) + lambda * gh
// and dL/dI[t] = gh', s[t] = h[t] >= v_th.

// dL/dI[t] (the next gh) from h[t], dL/ds[t] and gh = dL/dh[t+1].
fn lif_grad(h: f32, grad_spike: f32, gh: f32) -> f32 {
    let g = params.surrogate_width;
    let s = select(0.0, 1.0, h >= params.v_th);
    var gs = grad_spike;
    var keep: f32;
    if (SOFT_RESET == 1u) {
        if (DETACH_RESET == 0u) {
            gs -= params.decay * params.v_th * gh;
        }
        keep = params.decay * gh;
    } else {
        if (DETACH_RESET == 0u) {
            gs -= params.decay * h * gh;
        }
        keep = params.decay * (1.0 - s) * gh;
    }
    let surrogate = max(0.0, g - abs(h - params.v_th)) / (g * g);
    return gs * surrogate + keep;
}
