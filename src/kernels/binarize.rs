//! Binary weights (docs/method.md §3): `binarize_forward` (per-channel `gamma = mean |W|` and
//! `W_b = gamma * sign(W)`) and `binarize_backward` (clipped straight-through estimator),
//! `shaders/binarize_*.wgsl`.

use bytemuck::{Pod, Zeroable};

use crate::gpu::{GpuError, Workgroups};

/// Invocations per workgroup of both kernels; `binarize_forward` reduces one output channel per
/// workgroup, the CPU mirror follows the same summation order.
pub const BINARIZE_WORKGROUP: usize = 64;

/// Mirrors `struct BinarizeParams` in `shaders/common/binarize.wgsl` (forward and backward).
/// The latent weight is viewed as `[out_channels, fan_in]`
/// (conv `[C_out, C_in, kH, kW]` with `fan_in = C_in*kH*kW`, linear `[N_out, N_in]`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct BinarizeParams {
    pub out_channels: u32,
    pub fan_in: u32,
    pub _pad0: u32,
    pub _pad1: u32,
}
const _: () = assert!(std::mem::size_of::<BinarizeParams>() == 16);

impl BinarizeParams {
    /// Params for a weight of `out_channels` rows of `fan_in` elements.
    pub fn new(out_channels: usize, fan_in: usize) -> Self {
        Self {
            out_channels: out_channels as u32,
            fan_in: fan_in as u32,
            _pad0: 0,
            _pad1: 0,
        }
    }

    /// `out_channels * fan_in`.
    pub fn numel(&self) -> usize {
        self.out_channels as usize * self.fan_in as usize
    }

    fn check(&self, kernel: &'static str) -> Result<(), GpuError> {
        if self.fan_in == 0 {
            return Err(GpuError::shape(
                kernel,
                "fan_in is 0 (gamma = mean |W| would divide by zero)",
            ));
        }
        if (self.out_channels as u64) * (self.fan_in as u64) > u32::MAX as u64 {
            return Err(GpuError::shape(
                kernel,
                "out_channels * fan_in overflows u32 indexing",
            ));
        }
        Ok(())
    }
}

kernel! {
    /// `binarize_forward`: latent `[C_out, K]` -> `W_b` `[C_out, K]` and `gamma` `[C_out]`, with
    /// `sign(w) = +1` iff `w >= 0` (also for `-0.0`).
    pub struct BinarizeForward("binarize_forward", BinarizeParams);

    /// Records the dispatch: one workgroup per output channel.
    fn dispatch(params, latent: f32, weight_b: f32, gamma: f32) -> Workgroups {
        params.check(Self::NAME)?;
        latent.expect_len(Self::NAME, "latent", params.numel())?;
        weight_b.expect_len(Self::NAME, "weight_b", params.numel())?;
        gamma.expect_len(Self::NAME, "gamma", params.out_channels as usize)?;
        Workgroups::Linear(params.out_channels as u64)
    }
}

kernel! {
    /// `binarize_backward`: latent `[C_out, K]`, gamma `[C_out]`, dL/dW_b `[C_out, K]` ->
    /// dL/dW `[C_out, K]` = `gamma[c] * dL/dW_b * 1{|W| <= 1}` (no gradient into gamma).
    pub struct BinarizeBackward("binarize_backward", BinarizeParams);

    /// Records the dispatch: one invocation per weight.
    fn dispatch(params, latent: f32, gamma: f32, grad_wb: f32, grad_latent: f32) -> Workgroups {
        params.check(Self::NAME)?;
        latent.expect_len(Self::NAME, "latent", params.numel())?;
        gamma.expect_len(Self::NAME, "gamma", params.out_channels as usize)?;
        grad_wb.expect_len(Self::NAME, "grad_wb", params.numel())?;
        grad_latent.expect_len(Self::NAME, "grad_latent", params.numel())?;
        Workgroups::for_items(params.numel() as u64, BINARIZE_WORKGROUP as u32)
    }
}
