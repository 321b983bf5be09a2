// lif_agmm_backward: the LIF's BPTT and the AGMM gate's backward in one reverse-time pass
// (docs/method.md §2, §4): what lif_backward -> agmm_backward compute, operation for operation
// in f32, without writing dL/dI[t] and reading it back, except where the unit's shortcut reads
// it (STORE_PRE = 1). A unit with AGMM runs it in training; one without keeps lif_backward.
//
// Bindings:
//   0 uniform params    : LifAgmmParams (below: LifParams, then AgmmParams)
//   1 storage read      : membrane    [T, N] f32  h[t] saved by the forward
//   2 storage read      : grad_spikes [T, N] f32  dL/ds[t] from the layer above
//   3 storage read      : x           [T, N] f32  X[t], the BN output (the gate's input)
//   4 storage read      : e           [T, N] f32  E[t] saved by the forward
//   5 storage rw        : grad_x      [T, N] f32  dL/dX[t] (written)
//   6 storage rw        : grad_pre    [T, N] f32  dL/dI[t], the LIF input's gradient (written
//                                                when STORE_PRE = 1; any buffer otherwise)
// Dispatch: one invocation per neuron, workgroups of 64, folded 1-D (ceil(N / 64) groups).
//
// LIF (lif_backward): with gh = dL/dh[t+1] carried backwards and sg(h) = max(0, g - |h - v_th|) / g^2
//   hard: gs = dL/ds[t] - lambda * h[t] * gh (unless detached); gh' = gs * sg(h) + lambda * (1 - s[t]) * gh
//   soft: gs = dL/ds[t] - lambda * v_th * gh (unless detached); gh' = gs * sg(h) + lambda * gh
//   G[t] = dL/dI[t] = gh'
// AGMM (agmm_backward), q[t] = sigmoid(E[t]), gE[T+1] = 0, alpha[T+1] = 0:
//   full (MODE 0): gE[t] = G[t] X[t] q[t] (1 - q[t]) + (1 - alpha[t+1]) gE[t+1];
//                  dL/dX[t] = q[t] G[t] + alpha[t] gE[t]
//   detached (1): dL/dX[t] = q[t] G[t];  off (2): dL/dX[t] = G[t]
// The reset rule, detach_reset, the AGMM mode, STORE_PRE, CONST_ALPHA and STEPS are override
// constants (one pipeline per combination, `crate::gpu::Specialised`).

//!include common/flat_index.wgsl
//!include common/lif_grad.wgsl

struct LifAgmmParams {
    // LifParams (common/lif.wgsl)
    timesteps: u32,
    neurons: u32,
    soft_reset: u32,       // unused here: SOFT_RESET
    detach_reset: u32,     // unused here: DETACH_RESET
    decay: f32,
    v_th: f32,
    surrogate_width: f32,
    broadcast_input: u32,  // must be 0
    // AgmmParams (common/agmm.wgsl)
    agmm_timesteps: u32,
    elements: u32,
    mode: u32,             // unused here: MODE
    alpha_const: f32,      // 0 = running mean (alpha[t] = 1/t)
}

@group(0) @binding(0) var<uniform> params: LifAgmmParams;

override SOFT_RESET: u32 = 0u;
override DETACH_RESET: u32 = 0u;
override MODE: u32 = 0u;
override STORE_PRE: u32 = 0u;
override CONST_ALPHA: u32 = 0u;
// T when it is at most lif::MAX_UNROLLED_STEPS (one pipeline per T), else 0.
override STEPS: u32 = 0u;

@group(0) @binding(1) var<storage, read> membrane: array<f32>;
@group(0) @binding(2) var<storage, read> grad_spikes: array<f32>;
@group(0) @binding(3) var<storage, read> x: array<f32>;
@group(0) @binding(4) var<storage, read> e: array<f32>;
@group(0) @binding(5) var<storage, read_write> grad_x: array<f32>;
@group(0) @binding(6) var<storage, read_write> grad_pre: array<f32>;

// alpha[t] (t 1-based): the constant (CONST_ALPHA = 1) or 1/t. An override, not a comparison
// of the uniform: lavapipe 22.3 leaked host memory on every dispatch of this kernel while
// alpha came from a branch (or a select) on `params.alpha_const` (tests/soak.rs).
fn alpha_at(t: u32) -> f32 {
    if (CONST_ALPHA == 1u) {
        return params.alpha_const;
    }
    return 1.0 / f32(t);
}

// What the reverse-time pass carries from t+1 to t: dL/dh[t+1] and gE[t+1].
struct Carry {
    gh: f32,
    ge: f32,
}

// Step k of the reverse pass (t = steps - 1 - k) of neuron n.
fn back_step(n: u32, k: u32, steps: u32, carry: ptr<function, Carry>) {
    let t = steps - 1u - k;
    let i = t * params.neurons + n;
    let gh_t = lif_grad(membrane[i], grad_spikes[i], (*carry).gh);
    (*carry).gh = gh_t;
    if (STORE_PRE == 1u) {
        grad_pre[i] = gh_t;
    }
    if (MODE == 2u) {
        grad_x[i] = gh_t;
    } else {
        let q = 1.0 / (1.0 + exp(-e[i]));
        if (MODE == 1u) {
            grad_x[i] = q * gh_t;
        } else {
            // alpha[T+1] = 0 ends the recursion (k = 0 is t = T-1, 0-based).
            let next = select(alpha_at(t + 2u), 0.0, k == 0u);
            (*carry).ge = gh_t * x[i] * q * (1.0 - q) + (1.0 - next) * (*carry).ge;
            grad_x[i] = q * gh_t + alpha_at(t + 1u) * (*carry).ge;
        }
    }
}

@compute @workgroup_size(64) fn main(inv: FlatInvocation) {
    let n = flat_index(inv, 64u);
    if (n >= params.neurons) {
        return;
    }
    var carry = Carry(0.0, 0.0);
    // T as a pipeline constant (STEPS > 0): a loop of constant length, which lavapipe unrolls
    // (1.2x at conv2's shape); the uniform bound otherwise.
    if (STEPS > 0u) {
        for (var k = 0u; k < STEPS; k++) {
            back_step(n, k, STEPS, &carry);
        }
    } else {
        for (var k = 0u; k < params.timesteps; k++) {
            back_step(n, k, params.timesteps, &carry);
        }
    }
}
