// lif_backward: BPTT through multi-step LIF in reverse time, one dispatch (docs/method.md §2).
//
// Bindings:
//   0 uniform params    : LifParams (common/lif.wgsl)
//   1 storage read      : membrane     [T, N] f32  h[t] saved by lif_forward
//   2 storage read      : grad_spikes  [T, N] f32  dL/ds[t] from the layer above
//   3 storage rw        : grad_current [T, N] f32  dL/dI[t] (written), or [N] when
//                                                 broadcast_input = 1: the forward read one
//                                                 frame at every t, so its gradient is the sum
//                                                 of dL/dI[t] over t (summed from t = T-1 down)
// Dispatch: one invocation per neuron, workgroups of 64, folded 1-D (ceil(N / 64) groups).
//
// With gh = dL/dh[t+1] carried backwards and sg(h) = max(0, g - |h - v_th|) / g^2:
//   hard: gs[t] = dL/ds[t] - lambda * h[t] * gh        (term dropped when detach_reset)
//         gh'   = gs[t] * sg(h[t]) + lambda * (1 - s[t]) * gh
//   soft: gs[t] = dL/ds[t] - lambda * v_th * gh        (term dropped when detach_reset)
//         gh'   = gs[t] * sg(h[t]) + lambda * gh
//   dL/dI[t] = gh'
//
// The reset rule, detach_reset, broadcast_input and T (STEPS, below) come in as override
// constants (one pipeline per combination, `crate::gpu::Specialised`), not from the uniform's
// fields of the same names:
// lavapipe leaked host memory on every dispatch while all modes' code sat behind uniform branches.

//!include common/flat_index.wgsl
//!include common/lif.wgsl
//!include common/lif_grad.wgsl

override SOFT_RESET: u32 = 0u;
override DETACH_RESET: u32 = 0u;
override BROADCAST_INPUT: u32 = 0u;
// T when it is at most lif::MAX_UNROLLED_STEPS (one pipeline per T), else 0.
override STEPS: u32 = 0u;

@group(0) @binding(1) var<storage, read> membrane: array<f32>;
@group(0) @binding(2) var<storage, read> grad_spikes: array<f32>;
@group(0) @binding(3) var<storage, read_write> grad_current: array<f32>;

// What the reverse-time pass carries from t+1 to t: dL/dh[t+1], and the frame's gradient
// summed so far (BROADCAST_INPUT = 1).
struct Carry {
    gh: f32,
    frame: f32,
}

// Step k of the reverse pass (t = steps - 1 - k) of neuron n.
fn back_step(n: u32, k: u32, steps: u32, carry: ptr<function, Carry>) {
    let t = steps - 1u - k;
    let i = t * params.neurons + n;
    let gh_t = lif_grad(membrane[i], grad_spikes[i], (*carry).gh);
    (*carry).gh = gh_t;
    if (BROADCAST_INPUT == 1u) {
        (*carry).frame += gh_t;
    } else {
        grad_current[i] = gh_t;
    }
}

@compute @workgroup_size(64) fn main(inv: FlatInvocation) {
    let n = flat_index(inv, 64u);
    if (n >= params.neurons) {
        return;
    }
    var carry = Carry(0.0, 0.0);
    // T as a pipeline constant (STEPS > 0): a loop of constant length, which lavapipe unrolls;
    // the uniform bound otherwise.
    if (STEPS > 0u) {
        for (var k = 0u; k < STEPS; k++) {
            back_step(n, k, STEPS, &carry);
        }
    } else {
        for (var k = 0u; k < params.timesteps; k++) {
            back_step(n, k, params.timesteps, &carry);
        }
    }
    if (BROADCAST_INPUT == 1u) {
        grad_current[n] = carry.frame;
    }
}
