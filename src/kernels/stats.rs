//! Statistics reductions for per-layer metrics (docs/method.md §4: firing rate per spiking layer,
//! gradient mean/variance per binary layer): `moments_partial` and `moments_final`
//! (`shaders/moments_*.wgsl`), wrapped in one [`Moments`].
//!
//! One epoch's summary of every layer lives in one `[3 * slots]` f32 buffer of
//! `[sum, sum_sq, count]` triples, filled with `accumulate = true` after each slot's first use
//! and read back once: `mean = sum / count`, `var = sum_sq / count - mean^2` ([`summarize`]).
//! All sums are f32; `count` is exact up to 2^24 elements per slot and then rounds (relative
//! error about 6e-8 per addition, harmless for these metrics).

use std::sync::Arc;

use bytemuck::{Pod, Zeroable};

use crate::gpu::{GpuBuffer, GpuContext, GpuError, KernelSource, Workgroups};

/// Elements reduced by one `moments_partial` workgroup.
pub const MOMENTS_CHUNK: usize = 4096;
/// Invocations per workgroup of both kernels (the CPU mirrors follow the same order).
pub const MOMENTS_WORKGROUP: usize = 64;

/// Mirrors `struct MomentsPartialParams` in `shaders/moments_partial.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct MomentsPartialParams {
    pub len: u32,
    pub chunk: u32,
    /// `ceil(len / chunk)`: workgroups, and `[sum, sum_sq]` pairs written.
    pub groups: u32,
    pub _pad0: u32,
}
const _: () = assert!(std::mem::size_of::<MomentsPartialParams>() == 16);

impl MomentsPartialParams {
    /// Params for an input of `len` elements.
    pub fn new(len: usize) -> Self {
        Self {
            len: len as u32,
            chunk: MOMENTS_CHUNK as u32,
            groups: len.div_ceil(MOMENTS_CHUNK) as u32,
            _pad0: 0,
        }
    }
}

/// Mirrors `struct MomentsFinalParams` in `shaders/moments_final.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct MomentsFinalParams {
    /// Partial pairs to reduce.
    pub groups: u32,
    /// Elements of the original input (the `count` written).
    pub len: u32,
    /// Triple index in the summary buffer.
    pub slot: u32,
    /// 1: add to the slot's current values; 0: overwrite.
    pub accumulate: u32,
}
const _: () = assert!(std::mem::size_of::<MomentsFinalParams>() == 16);

impl MomentsFinalParams {
    /// Params to reduce the partials of an input of `len` elements into `summary[3*slot..]`.
    pub fn new(len: usize, slot: usize, accumulate: bool) -> Self {
        Self {
            groups: len.div_ceil(MOMENTS_CHUNK) as u32,
            len: len as u32,
            slot: slot as u32,
            accumulate: accumulate as u32,
        }
    }
}

/// `[sum, sum_sq, count]` of one slot turned into `(mean, population variance, count)`.
pub fn summarize(triple: &[f32]) -> (f64, f64, f64) {
    let (sum, sq, count) = (triple[0] as f64, triple[1] as f64, triple[2] as f64);
    if count == 0.0 {
        return (0.0, 0.0, 0.0);
    }
    let mean = sum / count;
    (mean, (sq / count - mean * mean).max(0.0), count)
}

/// `moments_partial` + `moments_final`: `[sum, sum_sq, count]` of an f32 buffer into one slot
/// of a shared summary buffer.
pub struct Moments {
    partial: Arc<wgpu::ComputePipeline>,
    last: Arc<wgpu::ComputePipeline>,
}

impl Moments {
    /// First pass: per-chunk partial sums.
    pub const PARTIAL: KernelSource = kernel_source!("moments_partial", MomentsPartialParams);
    /// Second pass: the partials reduced into one summary slot.
    pub const FINAL: KernelSource = kernel_source!("moments_final", MomentsFinalParams);

    /// Compiles (or fetches from the cache) both pipelines.
    pub fn new(ctx: &GpuContext) -> Result<Self, GpuError> {
        let partial = ctx.kernel(&Self::PARTIAL)?;
        let last = ctx.kernel(&Self::FINAL)?;
        Ok(Self { partial, last })
    }

    /// Elements the `partials_scratch` buffer needs for an input of `len` elements
    /// (two per chunk of [`MOMENTS_CHUNK`]); a larger scratch buffer is fine.
    pub fn partials_len(len: usize) -> usize {
        2 * len.div_ceil(MOMENTS_CHUNK)
    }

    /// Records both passes: `summary[3*slot .. 3*slot+3] (+)= [sum, sum_sq, len]` of `input`.
    /// `summary` is `[3 * slots]` f32; `partials_scratch` at least [`Moments::partials_len`].
    #[allow(clippy::too_many_arguments)]
    pub fn dispatch(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        input: &GpuBuffer<f32>,
        partials_scratch: &GpuBuffer<f32>,
        summary: &GpuBuffer<f32>,
        slot: usize,
        accumulate: bool,
    ) -> Result<(), GpuError> {
        const KERNEL: &str = "moments";
        let len = input.len();
        if len > u32::MAX as usize {
            return Err(GpuError::shape(
                KERNEL,
                format!("input of {len} elements overflows u32 indexing"),
            ));
        }
        if partials_scratch.len() < Self::partials_len(len) {
            return Err(GpuError::shape(
                KERNEL,
                format!(
                    "`partials_scratch` has {} elements, needs {}",
                    partials_scratch.len(),
                    Self::partials_len(len)
                ),
            ));
        }
        if 3 * slot + 3 > summary.len() {
            return Err(GpuError::shape(
                KERNEL,
                format!(
                    "slot {slot} outside `summary` of {} elements (3 per slot)",
                    summary.len()
                ),
            ));
        }
        let first = MomentsPartialParams::new(len);
        ctx.dispatch(
            encoder,
            &self.partial,
            "moments_partial",
            bytemuck::bytes_of(&first),
            &[input.binding(), partials_scratch.binding()],
            Workgroups::Linear(first.groups as u64),
        )?;
        let second = MomentsFinalParams::new(len, slot, accumulate);
        self.record_final(ctx, encoder, &second, partials_scratch, summary)
    }

    /// The second pass alone, over `groups` `[sum, sum_sq]` pairs another kernel wrote into
    /// `partials` (`bn_agmm_lif_train` counts its spikes so): `summary[3*slot ..] (+)= [sum,
    /// sum_sq, len]`.
    #[allow(clippy::too_many_arguments)]
    pub fn finish(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        partials: &GpuBuffer<f32>,
        groups: u64,
        len: usize,
        summary: &GpuBuffer<f32>,
        slot: usize,
        accumulate: bool,
    ) -> Result<(), GpuError> {
        const KERNEL: &str = "moments_final";
        if groups > u32::MAX as u64 || len > u32::MAX as usize {
            return Err(GpuError::shape(KERNEL, "groups or length overflow u32"));
        }
        if partials.len() < 2 * groups as usize || 3 * slot + 3 > summary.len() {
            return Err(GpuError::shape(
                KERNEL,
                format!(
                    "{groups} pairs in `partials` of {} elements, slot {slot} in `summary` of {}",
                    partials.len(),
                    summary.len()
                ),
            ));
        }
        let params = MomentsFinalParams {
            groups: groups as u32,
            ..MomentsFinalParams::new(len, slot, accumulate)
        };
        self.record_final(ctx, encoder, &params, partials, summary)
    }

    fn record_final(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        params: &MomentsFinalParams,
        partials: &GpuBuffer<f32>,
        summary: &GpuBuffer<f32>,
    ) -> Result<(), GpuError> {
        ctx.dispatch(
            encoder,
            &self.last,
            "moments_final",
            bytemuck::bytes_of(params),
            &[partials.binding(), summary.binding()],
            Workgroups::Linear(1),
        )
    }
}
