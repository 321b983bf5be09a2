//! Binary weights (spec section 3): `binarize_forward` (per-channel `gamma = mean |W|` and
//! `W_b = gamma * sign(W)`) and `binarize_backward` (clipped straight-through estimator),
//! `shaders/binarize_*.wgsl`.

use bytemuck::{Pod, Zeroable};

use crate::gpu::{GpuBuffer, GpuContext, GpuError, Workgroups};

/// Invocations per workgroup of both kernels; `binarize_forward` reduces one output channel per
/// workgroup, the CPU mirror follows the same summation order.
pub const BINARIZE_WORKGROUP: usize = 64;

/// Mirrors `struct BinarizeParams` in `shaders/common/binarize.wgsl` (forward and backward). The latent weight is viewed as `[out_channels, fan_in]`
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
}

impl BinarizeForward {
    /// Records the dispatch: one workgroup per output channel.
    pub fn dispatch(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        params: &BinarizeParams,
        latent: &GpuBuffer<f32>,
        weight_b: &GpuBuffer<f32>,
        gamma: &GpuBuffer<f32>,
    ) -> Result<(), GpuError> {
        params.check(Self::NAME)?;
        latent.expect_len(Self::NAME, "latent", params.numel())?;
        weight_b.expect_len(Self::NAME, "weight_b", params.numel())?;
        gamma.expect_len(Self::NAME, "gamma", params.out_channels as usize)?;
        self.record(
            ctx,
            encoder,
            params,
            &[latent.raw(), weight_b.raw(), gamma.raw()],
            Workgroups::Linear(params.out_channels as u64),
        )
    }
}

kernel! {
    /// `binarize_backward`: latent `[C_out, K]`, gamma `[C_out]`, dL/dW_b `[C_out, K]` ->
    /// dL/dW `[C_out, K]` = `gamma[c] * dL/dW_b * 1{|W| <= 1}` (no gradient into gamma).
    pub struct BinarizeBackward("binarize_backward", BinarizeParams);
}

impl BinarizeBackward {
    /// Records the dispatch: one invocation per weight.
    #[allow(clippy::too_many_arguments)]
    pub fn dispatch(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        params: &BinarizeParams,
        latent: &GpuBuffer<f32>,
        gamma: &GpuBuffer<f32>,
        grad_wb: &GpuBuffer<f32>,
        grad_latent: &GpuBuffer<f32>,
    ) -> Result<(), GpuError> {
        params.check(Self::NAME)?;
        latent.expect_len(Self::NAME, "latent", params.numel())?;
        gamma.expect_len(Self::NAME, "gamma", params.out_channels as usize)?;
        grad_wb.expect_len(Self::NAME, "grad_wb", params.numel())?;
        grad_latent.expect_len(Self::NAME, "grad_latent", params.numel())?;
        self.record(
            ctx,
            encoder,
            params,
            &[latent.raw(), gamma.raw(), grad_wb.raw(), grad_latent.raw()],
            Workgroups::for_items(params.numel() as u64, BINARIZE_WORKGROUP as u32),
        )
    }
}
