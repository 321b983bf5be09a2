// agmm_forward: the Adaptive Gradient Modulation Mechanism gate, the whole time loop in one
// dispatch (docs/method.md §4).
//
// Bindings:
//   0 uniform params : AgmmParams (common/agmm.wgsl)
//   1 storage read   : x [T, N] f32   BN output X[t] (N = B*C*H*W, time-major)
//   2 storage rw     : y [T, N] f32   gated output Y[t]
//   3 storage rw     : e [T, N] f32   running expectation E[t] (saved for agmm_backward)
// Dispatch: one invocation per element, workgroups of 64, folded 1-D (ceil(N / 64) groups).
//
//   E[0] = 0,  E[t] = (1 - alpha[t]) * E[t-1] + alpha[t] * X[t]   (t = 1..T)
//   alpha[t] = 1/t when alpha_const == 0 (E = running mean), else alpha_const (EMA)
//   full / detached: Y[t] = sigmoid(E[t]) * X[t];   off: Y[t] = X[t]
// E is written in every mode so a layer can run the kernels uniformly.

//!include common/flat_index.wgsl
//!include common/agmm.wgsl

@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> e: array<f32>;

fn alpha_at(t: u32) -> f32 {
    // t is 1-based here, as in docs/method.md §4.
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
    var run = 0.0;
    for (var t = 0u; t < params.timesteps; t++) {
        let i = t * params.elements + n;
        let xt = x[i];
        let a = alpha_at(t + 1u);
        run = (1.0 - a) * run + a * xt;
        e[i] = run;
        if (params.mode == 2u) {
            y[i] = xt;
        } else {
            y[i] = xt / (1.0 + exp(-run));
        }
    }
}
