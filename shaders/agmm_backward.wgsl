// agmm_backward: exact gradient of the AGMM gate in reverse time, one dispatch (docs/method.md §4).
//
// Bindings:
//   0 uniform params : AgmmParams (common/agmm.wgsl)
//   1 storage read   : x      [T, N] f32  X[t] (the forward input)
//   2 storage read   : e      [T, N] f32  E[t] saved by agmm_forward
//   3 storage read   : grad_y [T, N] f32  G[t] = dL/dY[t]
//   4 storage rw     : grad_x [T, N] f32  dL/dX[t] (written)
// Dispatch: one invocation per element, workgroups of 64, folded 1-D (ceil(N / 64) groups).
//
// With q[t] = sigmoid(E[t]), gE[T+1] = 0, alpha[T+1] = 0 (t = T..1):
//   full:     gE[t] = G[t] * X[t] * q[t] * (1 - q[t]) + (1 - alpha[t+1]) * gE[t+1]
//             dL/dX[t] = q[t] * G[t] + alpha[t] * gE[t]
//   detached: dL/dX[t] = q[t] * G[t]            (E treated as a constant)
//   off:      dL/dX[t] = G[t]                   (identity)

//!include common/flat_index.wgsl
//!include common/agmm.wgsl

@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> e: array<f32>;
@group(0) @binding(3) var<storage, read> grad_y: array<f32>;
@group(0) @binding(4) var<storage, read_write> grad_x: array<f32>;

fn alpha_at(t: u32) -> f32 {
    // t is 1-based; alpha[T+1] = 0 ends the recursion.
    if (t > params.timesteps) {
        return 0.0;
    }
    if (params.alpha_const > 0.0) {
        return params.alpha_const;
    }
    return 1.0 / f32(t);
}

@compute @workgroup_size(64) fn main(inv: FlatInvocation) {
    let n = flat_index(inv, 64u);
    if (n >= params.elements) {
        return;
    }
    var ge = 0.0; // gE[t+1]
    for (var k = 0u; k < params.timesteps; k++) {
        let t = params.timesteps - 1u - k; // 0-based; docs/method.md §4 counts steps from 1
        let i = t * params.elements + n;
        let g = grad_y[i];
        // Every binding is read in every mode (auto layout keeps only used bindings).
        let xt = x[i];
        let q = 1.0 / (1.0 + exp(-e[i]));
        if (params.mode == 2u) {
            grad_x[i] = g;
        } else if (params.mode == 1u) {
            grad_x[i] = q * g;
        } else {
            ge = g * xt * q * (1.0 - q) + (1.0 - alpha_at(t + 2u)) * ge;
            grad_x[i] = q * g + alpha_at(t + 1u) * ge;
        }
    }
}
