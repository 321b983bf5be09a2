// lif_forward: multi-step LIF neurons, the whole time loop in one dispatch (docs/method.md §2).
//
// Bindings:
//   0 uniform params : LifParams (common/lif.wgsl)
//   1 storage read   : current  [T, N] f32   input current I[t] (N = B*C*H*W, time-major),
//                                           or [N] when broadcast_input = 1 (same I at every t)
//   2 storage rw     : spikes   [T, N] f32   s[t] in {0, 1}
//   3 storage rw     : membrane [T, N] f32   h[t] (charged potential, saved for the backward)
// Dispatch: one invocation per neuron, workgroups of 64, folded 1-D (ceil(N / 64) groups).
//
//   hard: h[t] = lambda * u[t-1] * (1 - s[t-1]) + I[t]
//   soft: h[t] = lambda * (u[t-1] - v_th * s[t-1]) + I[t]
//   s[t] = (h[t] >= v_th),  u[t] = h[t],  u[0] = s[0] = 0

//!include common/flat_index.wgsl
//!include common/lif.wgsl

@group(0) @binding(1) var<storage, read> current: array<f32>;
@group(0) @binding(2) var<storage, read_write> spikes: array<f32>;
@group(0) @binding(3) var<storage, read_write> membrane: array<f32>;

@compute @workgroup_size(64) fn main(inv: FlatInvocation) {
    let n = flat_index(inv, 64u);
    if (n >= params.neurons) {
        return;
    }
    var u = 0.0;
    var s = 0.0;
    for (var t = 0u; t < params.timesteps; t++) {
        let i = t * params.neurons + n;
        var h: f32;
        if (params.soft_reset == 1u) {
            h = params.decay * (u - params.v_th * s) + current[select(i, n, params.broadcast_input == 1u)];
        } else {
            h = params.decay * u * (1.0 - s) + current[select(i, n, params.broadcast_input == 1u)];
        }
        s = select(0.0, 1.0, h >= params.v_th);
        u = h;
        spikes[i] = s;
        membrane[i] = h;
    }
}
