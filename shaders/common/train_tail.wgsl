// train_tail: what bn_agmm_lif_train and bn_agmm_lif_train_vec4 share around their neuron
// loops: binding 2 (the BN values), binding 8 (the spike-count partials), the channel's BN
// coefficients and the workgroup's count. The including kernel declares `params`
// (BnAgmmLifParams) and includes common/workgroup_sum2.wgsl.

@group(0) @binding(2) var<storage, read> bn: array<f32>;
@group(0) @binding(8) var<storage, read_write> partials: array<f32>;

// Channel c's BN as (x - m) * k + b: the batch mean, invstd * gamma, beta ([4C]: mean |
// invstd | gamma | beta).
struct TailBn {
    m: f32,
    k: f32,
    b: f32,
}

fn tail_bn(c: u32) -> TailBn {
    let channels = params.channels;
    return TailBn(bn[c], bn[channels + c] * bn[2u * channels + c], bn[3u * channels + c]);
}

// Sums the workgroup's spike counts (a barrier: every invocation calls it) and stores the
// [count, count] pair of workgroup g, where the buffer holds it.
fn store_count(g: u32, lid: u32, count: f32) {
    let total = workgroup_sum2(lid, count, count);
    if (lid == 0u && 2u * g + 1u < arrayLength(&partials)) {
        partials[2u * g] = total.x;
        partials[2u * g + 1u] = total.y;
    }
}
