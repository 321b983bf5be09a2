// BatchNormParams and the uniform `params` (binding 0) of batchnorm_stats, batchnorm_apply,
// batchnorm_backward_reduce and batchnorm_backward_input.
// Mirrored by `crate::kernels::batchnorm::BatchNormParams`.

struct BatchNormParams {
    samples: u32,        // N = T*B
    channels: u32,       // C
    spatial: u32,        // HW = H*W
    from_variance: u32,  // batchnorm_apply only: 1 = `scale` holds a variance (eval)
    eps: f32,
    momentum: f32,
    repeats: u32,        // batchnorm_stats only: the batch stands for this many copies (0 = 1)
    run: u32,            // apply / backward_input: values per invocation (0 = 1), see plane_run
    per_channel: u32,    // backward_input: M, the values per channel of the whole batch when
                         // this dispatch covers a range of its samples (0 = samples * spatial)
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: BatchNormParams;

//!include common/plane_run.wgsl

// The run of invocation `g` in batchnorm_apply and batchnorm_backward_input (plane_run.wgsl).
fn plane_run(g: u32) -> PlaneRun {
    return plane_run_of(g, params.spatial, params.samples * params.channels, params.channels, params.run);
}

// Walking the values of one channel `step` apart without a division per value: the walk
// divides once at the start, then each step advances the position by `step % HW` and the
// sample by `step / HW`, carrying once when the position wraps.

// Over the M = N * HW values of one channel (batchnorm_stats, batchnorm_backward_reduce), from
// the channel's value `first` as (n, p).
struct SampleWalk {
    n: u32,
    p: u32,
    dn: u32,
    dp: u32,
}

fn sample_walk(first: u32, step: u32) -> SampleWalk {
    let hw = params.spatial;
    return SampleWalk(first / hw, first % hw, step / hw, step % hw);
}

// The flat index of the walk's current value in channel `c`.
fn sample_walk_index(w: SampleWalk, c: u32) -> u32 {
    return (w.n * params.channels + c) * params.spatial + w.p;
}

fn sample_walk_next(w: ptr<function, SampleWalk>) {
    (*w).p += (*w).dp;
    (*w).n += (*w).dn;
    if ((*w).p >= params.spatial) {
        (*w).p -= params.spatial;
        (*w).n += 1u;
    }
}
