//! CPU mirrors of the fused kernels in [`crate::kernels::fused`] (same names, same argument
//! order), written as the shader computes, in f32.

use crate::kernels::conv::ConvShape;
use crate::kernels::fused::BnAgmmLifSpec;
use crate::kernels::lif::ResetMode;
use crate::kernels::popcount::{PackSpikesParams, PopcountConvParams};

/// The BN running statistics and affine parameters, `[C]` each.
pub struct BnEval<'a> {
    pub running_mean: &'a [f32],
    pub running_var: &'a [f32],
    pub weight: &'a [f32],
    pub bias: &'a [f32],
}

/// Mirror of `shaders/bn_agmm_lif_eval.wgsl`.
pub fn bn_agmm_lif_eval(
    spec: &BnAgmmLifSpec,
    x: &[f32],
    bn: &BnEval,
    residual: Option<&[f32]>,
    spikes: &mut [f32],
) {
    let coefficients = |c: usize| {
        let invstd = 1.0 / (bn.running_var[c] + spec.eps).sqrt();
        (bn.running_mean[c], invstd * bn.weight[c], bn.bias[c])
    };
    tail(spec, x, coefficients, residual, |step| {
        spikes[step.i] = step.s
    });
}

/// One neuron and timestep of a fused tail: its index in `[T, N]`, the BN output `X[t]`, the
/// AGMM expectation `E[t]` (0 when the gate is off), the membrane `h[t]` and the spike.
struct TailStep {
    i: usize,
    x: f32,
    e: f32,
    h: f32,
    s: f32,
}

/// The neuron arithmetic the fused tails share, in the shaders' order: BN as
/// `(x - mean) * k + bias` with `coefficients(c) = (mean, k, bias)`, the gate where it is on,
/// the shortcut, the LIF; `visit` sees every (neuron, t).
fn tail(
    spec: &BnAgmmLifSpec,
    x: &[f32],
    coefficients: impl Fn(usize) -> (f32, f32, f32),
    residual: Option<&[f32]>,
    mut visit: impl FnMut(TailStep),
) {
    let params = spec.params();
    let n_len = spec.elements();
    for n in 0..n_len {
        let (mean, k, bias) = coefficients((n / spec.spatial) % spec.channels);
        let (mut run, mut u, mut s) = (0.0f32, 0.0f32, 0.0f32);
        for t in 0..spec.timesteps {
            let i = t * n_len + n;
            let normalised = (x[if spec.broadcast { n } else { i }] - mean) * k + bias;
            let mut cur = normalised;
            if spec.gated() {
                let a = if params.alpha_const > 0.0 {
                    params.alpha_const
                } else {
                    1.0 / (t + 1) as f32
                };
                run = (1.0 - a) * run + a * cur;
                cur /= 1.0 + (-run).exp();
            }
            if let Some(r) = residual {
                cur += r[i];
            }
            let h = match spec.lif.reset {
                ResetMode::Soft => spec.lif.decay * (u - spec.lif.v_th * s) + cur,
                ResetMode::Hard => spec.lif.decay * u * (1.0 - s) + cur,
            };
            s = if h >= spec.lif.v_th { 1.0 } else { 0.0 };
            u = h;
            visit(TailStep {
                i,
                x: normalised,
                e: run,
                h,
                s,
            });
        }
    }
}

/// Mirror of `shaders/bn_agmm_lif_eval_packed.wgsl`: [`bn_agmm_lif_eval`]'s spikes packed as
/// `pack_spikes` packs `[T*B, C, H, W]` (only `H*W` matters for the layout).
pub fn bn_agmm_lif_eval_packed(
    spec: &BnAgmmLifSpec,
    x: &[f32],
    bn: &BnEval,
    residual: Option<&[f32]>,
    packed: &mut [u32],
) {
    let mut spikes = vec![0.0; spec.timesteps * spec.elements()];
    bn_agmm_lif_eval(spec, x, bn, residual, &mut spikes);
    let params = PackSpikesParams::new(spec.timesteps * spec.batch, spec.channels, spec.spatial, 1);
    super::popcount::pack_spikes(&params, &spikes, packed);
}

/// The batch statistics and affine parameters of a training BN, `[C]` each.
pub struct BnTrain<'a> {
    pub mean: &'a [f32],
    pub invstd: &'a [f32],
    pub weight: &'a [f32],
    pub bias: &'a [f32],
}

/// Mirror of `shaders/bn_agmm_lif_train.wgsl`: writes the spikes, the membrane and, where the
/// AGMM gates (`spec.gated()`; `agmm` must then be given), the BN output and `E`; returns the
/// number of spikes (what the shader's partials sum to).
///
/// # Panics
/// A test oracle: when `agmm` is given though the gate is off, or missing though it is on.
pub fn bn_agmm_lif_train(
    spec: &BnAgmmLifSpec,
    x: &[f32],
    bn: &BnTrain,
    residual: Option<&[f32]>,
    mut agmm: Option<(&mut [f32], &mut [f32])>,
    membrane: &mut [f32],
    spikes: &mut [f32],
) -> u64 {
    assert_eq!(
        spec.gated(),
        agmm.is_some(),
        "the BN output and E are given exactly when the AGMM gates"
    );
    let coefficients = |c: usize| (bn.mean[c], bn.invstd[c] * bn.weight[c], bn.bias[c]);
    let mut count = 0u64;
    tail(spec, x, coefficients, residual, |step| {
        if let Some((bn_out, e)) = agmm.as_mut() {
            bn_out[step.i] = step.x;
            e[step.i] = step.e;
        }
        membrane[step.i] = step.h;
        spikes[step.i] = step.s;
        count += step.s as u64;
    });
    count
}

/// Mirror of `shaders/lif_agmm_backward.wgsl`: the LIF backward into `grad_pre` (given when the
/// shader stores it; a scratch otherwise), then the AGMM backward into `grad_x`, exactly as the
/// two mirrors compute them one after the other.
#[allow(clippy::too_many_arguments)]
pub fn lif_agmm_backward(
    params: &crate::kernels::fused::LifAgmmParams,
    membrane: &[f32],
    grad_spikes: &[f32],
    x: &[f32],
    e: &[f32],
    grad_x: &mut [f32],
    grad_pre: Option<&mut [f32]>,
) {
    let mut scratch = Vec::new();
    let pre = match grad_pre {
        Some(g) => g,
        None => {
            scratch.resize(grad_x.len(), 0.0);
            scratch.as_mut_slice()
        }
    };
    super::lif::lif_backward(&params.lif, membrane, grad_spikes, pre);
    super::agmm::agmm_backward(&params.agmm, x, e, pre, grad_x);
}

/// Mirror of `shaders/binary_conv_lif_eval.wgsl`: [`super::popcount::binary_conv_popcount`]
/// over the `T * B` images of `conv` (`spikes`, `weights`: packed), then [`bn_agmm_lif_eval`].
#[allow(clippy::too_many_arguments)]
pub fn binary_conv_lif_eval(
    conv: &PopcountConvParams,
    spec: &BnAgmmLifSpec,
    (spikes, weights, gamma): (&[u32], &[u32], &[f32]),
    bn: &BnEval,
    residual: Option<&[f32]>,
    out: &mut [f32],
) {
    let mut x = vec![0.0; conv.output_len()];
    super::popcount::binary_conv_popcount(conv, spikes, weights, gamma, &mut x);
    bn_agmm_lif_eval(spec, &x, bn, residual, out);
}

/// Mirror of `shaders/binary_conv_lif_eval_packed.wgsl`: [`binary_conv_lif_eval`]'s spikes
/// packed as [`bn_agmm_lif_eval_packed`] packs them.
pub fn binary_conv_lif_eval_packed(
    conv: &PopcountConvParams,
    spec: &BnAgmmLifSpec,
    operands: (&[u32], &[u32], &[f32]),
    bn: &BnEval,
    residual: Option<&[f32]>,
    packed: &mut [u32],
) {
    let mut spikes = vec![0.0; spec.timesteps * spec.elements()];
    binary_conv_lif_eval(conv, spec, operands, bn, residual, &mut spikes);
    let params = PackSpikesParams::new(spec.timesteps * spec.batch, spec.channels, spec.spatial, 1);
    super::popcount::pack_spikes(&params, &spikes, packed);
}

/// Mirror of `shaders/conv_direct_lif_eval_packed.wgsl`: the conv of the `B` frames as
/// `conv_direct` sums it ([`super::conv::conv_direct`]), then [`bn_agmm_lif_eval_packed`] on
/// the broadcast frame (`spec.broadcast`).
pub fn conv_direct_lif_eval_packed(
    shape: &ConvShape,
    spec: &BnAgmmLifSpec,
    (input, weight): (&[f32], &[f32]),
    bn: &BnEval,
    packed: &mut [u32],
) {
    let mut frame = vec![0.0; shape.output_len()];
    super::conv::conv_direct(shape, input, weight, &mut frame);
    bn_agmm_lif_eval_packed(spec, &frame, bn, None, packed);
}
