// bn_grad_input: the per-channel coefficients and the formula of batchnorm_backward_input and
// batchnorm_backward_input_vec4 (bindings 3-7, read once per run), one home for both:
//   dx = weight * invstd * (dy - (grad_bias + xhat * grad_weight) / M), xhat = (x - mean) * invstd.
// Four values at a time (the scalar kernel uses one lane); the same operations per value.

@group(0) @binding(3) var<storage, read> save_mean: array<f32>;
@group(0) @binding(4) var<storage, read> save_invstd: array<f32>;
@group(0) @binding(5) var<storage, read> weight: array<f32>;
@group(0) @binding(6) var<storage, read> grad_weight: array<f32>;
@group(0) @binding(7) var<storage, read> grad_bias: array<f32>;

struct BnGradCoefficients {
    mean: f32,
    invstd: f32,
    scale: f32,   // weight * invstd
    inv_m: f32,   // 1 / M
    gb: f32,
    gw: f32,
}

fn bn_grad_coefficients(c: u32) -> BnGradCoefficients {
    let m = select(params.samples * params.spatial, params.per_channel, params.per_channel != 0u);
    let invstd = save_invstd[c];
    return BnGradCoefficients(save_mean[c], invstd, weight[c] * invstd, 1.0 / f32(m),
                              grad_bias[c], grad_weight[c]);
}

fn bn_grad_input(k: BnGradCoefficients, x: vec4<f32>, dy: vec4<f32>) -> vec4<f32> {
    let xhat = (x - k.mean) * k.invstd;
    return k.scale * (dy - k.inv_m * (k.gb + xhat * k.gw));
}
