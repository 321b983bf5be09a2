// cross_entropy: readout loss over time-major logits, its gradient, and an epoch summary
// (docs/method.md §6).
//
// Bindings:
//   0 uniform params : LossParams
//   1 storage read   : logits      [T, B, C] f32  o[t] (time-major)
//   2 storage read   : labels      [B] u32        class index y (must be < C)
//   3 storage rw     : grad        [T, B, C] f32  dL/do for the batch-mean loss (written)
//   4 storage rw     : sample_loss [B] f32        per-sample loss (written)
//   5 storage rw     : summary     [slots] LossSummary; slot `params.slot` is updated
// Dispatch: exactly ONE workgroup of 256 invocations; invocation i handles samples
// i, i + 256, ... (one invocation per sample for B <= 256).
//
//   mean_over_time: loss_b = (1/T) sum_t CE(o[t, b], y_b),  dL/do[t,b,c] = (softmax(o[t,b])_c - [c = y_b]) / (T B)
//   mean_logits:    loss_b = CE(m_b, y_b), m_b = (1/T) sum_t o[t,b],  dL/do[t,b,c] = (softmax(m_b)_c - [c = y_b]) / (T B)
//   correct_b = (argmax_c sum_t o[t,b,c] == y_b), ties -> lowest index (sum_t in t order, in f32)
//   L = (1/B) sum_b loss_b
//
// Why one workgroup and no atomics: B is 64-256, so one invocation per sample already fits one
// workgroup, and a single workgroup can reduce the batch in a fixed order (one barrier, then
// invocation 0 sums the 256 partials in lane order) and update the summary without atomics. The loss sum is then bit-reproducible run to run (float atomics
// would add in a scheduling-dependent order), as docs/method.md §8 asks (same seed, same numbers).
// Larger batches (evaluation) just loop; the work is tiny next to the classifier GEMM.
//
// An out-of-range label (>= C) matches no class: its target term is dropped (loss_b is the
// log-sum-exp, the gradient has no -1), and it is never counted correct. Nothing reads out of
// bounds.

struct LossParams {
    timesteps: u32,
    batch: u32,
    classes: u32,
    kind: u32,        // 0 = mean_over_time, 1 = mean_logits (selects the pipeline: KIND)
    slot: u32,        // summary entry to update
    accumulate: u32,  // 0 = overwrite the slot, 1 = add to it
    _pad0: u32,
    _pad1: u32,
}

struct LossSummary {
    loss_sum: f32,    // sum of per-sample losses
    correct: u32,     // samples whose prediction equals the label
    samples: u32,     // samples seen
    batches: u32,     // dispatches accumulated
}

const WG: u32 = 256u;

// The loss kind, fixed per pipeline (0 = mean_over_time, 1 = mean_logits; equal to
// params.kind, which the host checks). A pipeline constant rather than a branch on the uniform
// so each pipeline compiles only its own path: with both paths in one shader, Mesa's lavapipe
// 22.3 leaks ~0.7 MB of host memory per dispatch (tests/soak.rs).
override KIND: u32 = 0u;

@group(0) @binding(0) var<uniform> params: LossParams;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<u32>;
@group(0) @binding(3) var<storage, read_write> grad: array<f32>;
@group(0) @binding(4) var<storage, read_write> sample_loss: array<f32>;
@group(0) @binding(5) var<storage, read_write> summary: array<LossSummary>;

var<workgroup> part_loss: array<f32, WG>;
var<workgroup> part_correct: array<u32, WG>;

// o[t, b, c]
fn logit(t: u32, b: u32, c: u32) -> f32 {
    return logits[(t * params.batch + b) * params.classes + c];
}

// sum_t o[t, b, c] in t order (the same order the CPU mirror uses, so argmax agrees exactly)
fn time_sum(b: u32, c: u32) -> f32 {
    var s = 0.0;
    for (var t = 0u; t < params.timesteps; t++) {
        s += logit(t, b, c);
    }
    return s;
}

// Loss of sample b; writes its gradient rows. Returns (loss, correct) packed as vec2.
fn sample(b: u32) -> vec2<f32> {
    let nt = params.timesteps;
    let nc = params.classes;
    let y = labels[b];
    let inv_t = 1.0 / f32(nt);
    let scale = inv_t / f32(params.batch);

    // Prediction: argmax of sum_t o[t] (same argmax as the mean), ties to the lowest index.
    var best = time_sum(b, 0u);
    var arg = 0u;
    for (var c = 1u; c < nc; c++) {
        let s = time_sum(b, c);
        if (s > best) {
            best = s;
            arg = c;
        }
    }
    let correct = select(0.0, 1.0, arg == y);

    var loss = 0.0;
    if (KIND == 1u) {
        // CE of the mean logits m = sum_t o[t] / T; its maximum is best / T.
        let m = best * inv_t;
        var z = 0.0;
        for (var c = 0u; c < nc; c++) {
            z += exp(time_sum(b, c) * inv_t - m);
        }
        let lse = m + log(z);
        for (var c = 0u; c < nc; c++) {
            let mc = time_sum(b, c) * inv_t;
            let p = exp(mc - lse);
            let hit = c == y;
            if (hit) {
                loss = lse - mc;
            }
            let g = (p - select(0.0, 1.0, hit)) * scale;
            for (var t = 0u; t < nt; t++) {
                grad[(t * params.batch + b) * nc + c] = g;
            }
        }
        if (y >= nc) {
            loss = lse;
        }
    } else {
        for (var t = 0u; t < nt; t++) {
            let row = (t * params.batch + b) * nc;
            var m = logits[row];
            for (var c = 1u; c < nc; c++) {
                m = max(m, logits[row + c]);
            }
            var z = 0.0;
            for (var c = 0u; c < nc; c++) {
                z += exp(logits[row + c] - m);
            }
            let lse = m + log(z);
            var ce = lse;
            for (var c = 0u; c < nc; c++) {
                let o = logits[row + c];
                let hit = c == y;
                if (hit) {
                    ce = lse - o;
                }
                grad[row + c] = (exp(o - lse) - select(0.0, 1.0, hit)) * scale;
            }
            loss += ce;
        }
        loss *= inv_t;
    }
    sample_loss[b] = loss;
    return vec2<f32>(loss, correct);
}

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32) {
    var loss = 0.0;
    var correct = 0u;
    for (var b = lid; b < params.batch; b += WG) {
        let r = sample(b);
        loss += r.x;
        correct += u32(r.y);
    }
    part_loss[lid] = loss;
    part_correct[lid] = correct;
    workgroupBarrier();
    if (lid == 0u) {
        // One barrier, then a serial sum in lane order: deterministic and, on CPU rasterisers
        // where every barrier is a context switch per invocation, cheaper than a tree.
        var loss_sum = 0.0;
        var correct_sum = 0u;
        for (var i = 0u; i < WG; i++) {
            loss_sum += part_loss[i];
            correct_sum += part_correct[i];
        }
        var s = LossSummary(loss_sum, correct_sum, params.batch, 1u);
        if (params.accumulate == 1u) {
            let old = summary[params.slot];
            s = LossSummary(old.loss_sum + s.loss_sum, old.correct + s.correct,
                            old.samples + s.samples, old.batches + 1u);
        }
        summary[params.slot] = s;
    }
}
