//! The readout loss (docs/method.md §6): `cross_entropy` (`shaders/cross_entropy.wgsl`) turns
//! time-major logits `[T, B, C]` and labels into dL/do, per-sample losses and a small summary
//! (loss sum, correct count) that training accumulates on the GPU for a whole epoch.

use bytemuck::{Pod, Zeroable};
use serde::{Deserialize, Serialize};

use crate::gpu::{check_lens, GpuError, Specialised, Workgroups};

/// Which cross-entropy the readout uses (docs/method.md §6): a model's `loss` field and the
/// CLI's `--loss`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(not(target_arch = "wasm32"), derive(clap::ValueEnum))]
pub enum LossKind {
    /// `L = (1/T) sum_t CE(o[t], y)`, averaged over the batch (default).
    #[default]
    MeanOverTime,
    /// `L = CE(mean_t o[t], y)`, averaged over the batch.
    MeanLogits,
}

/// Mirrors `struct LossParams` in `shaders/cross_entropy.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct LossParams {
    pub timesteps: u32,
    pub batch: u32,
    pub classes: u32,
    /// 0 = mean over time, 1 = mean logits.
    pub kind: u32,
    /// Index of the [`LossSummary`] entry this dispatch updates.
    pub slot: u32,
    /// 0 = overwrite the slot, 1 = add to it.
    pub accumulate: u32,
    pub _pad0: u32,
    pub _pad1: u32,
}
const _: () = assert!(std::mem::size_of::<LossParams>() == 32);

impl LossParams {
    /// Params for logits `[timesteps, batch, classes]`, overwriting summary slot 0.
    pub fn new(kind: LossKind, timesteps: usize, batch: usize, classes: usize) -> Self {
        Self {
            timesteps: timesteps as u32,
            batch: batch as u32,
            classes: classes as u32,
            kind: match kind {
                LossKind::MeanOverTime => 0,
                LossKind::MeanLogits => 1,
            },
            slot: 0,
            accumulate: 0,
            _pad0: 0,
            _pad1: 0,
        }
    }

    /// Targets summary entry `slot`; with `accumulate` the batch is added to it (an epoch's
    /// running totals), otherwise the entry is overwritten.
    pub fn with_slot(mut self, slot: usize, accumulate: bool) -> Self {
        self.slot = slot as u32;
        self.accumulate = accumulate as u32;
        self
    }

    fn check(
        &self,
        logits: usize,
        labels: usize,
        grad: usize,
        sample_loss: usize,
        summary: usize,
    ) -> Result<(), GpuError> {
        const K: &str = "cross_entropy";
        let (t, b, c) = (
            self.timesteps as usize,
            self.batch as usize,
            self.classes as usize,
        );
        if t == 0 || b == 0 || c == 0 {
            return Err(GpuError::shape(
                K,
                format!("T = {t}, B = {b}, C = {c}: all must be at least 1"),
            ));
        }
        if self.kind > 1 || self.accumulate > 1 {
            return Err(GpuError::shape(
                K,
                format!(
                    "kind {} / accumulate {} must be 0 or 1",
                    self.kind, self.accumulate
                ),
            ));
        }
        let tbc = format!("T*B*C = {t}*{b}*{c}");
        check_lens(K, &tbc, t * b * c, &[("logits", logits), ("grad", grad)])?;
        check_lens(
            K,
            "B",
            b,
            &[("labels", labels), ("sample_loss", sample_loss)],
        )?;
        if self.slot as usize >= summary {
            return Err(GpuError::shape(
                K,
                format!(
                    "summary slot {} out of range: `summary` has {summary} entries",
                    self.slot
                ),
            ));
        }
        Ok(())
    }
}

/// One summary entry; mirrors `struct LossSummary` in `shaders/cross_entropy.wgsl`.
/// Zero it (`GpuBuffer::zeros`) or dispatch with `accumulate = false` to start an epoch.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct LossSummary {
    /// Sum of per-sample losses (f32, reduced in a fixed order: reproducible).
    pub loss_sum: f32,
    /// Samples whose prediction (argmax of the mean logits) equals the label.
    pub correct: u32,
    /// Samples seen.
    pub samples: u32,
    /// Dispatches folded into this entry.
    pub batches: u32,
}
const _: () = assert!(std::mem::size_of::<LossSummary>() == 16);

impl LossSummary {
    /// Mean loss per sample (0 when empty).
    pub fn mean_loss(&self) -> f64 {
        if self.samples == 0 {
            0.0
        } else {
            self.loss_sum as f64 / self.samples as f64
        }
    }

    /// Fraction of samples predicted correctly (0 when empty).
    pub fn accuracy(&self) -> f64 {
        if self.samples == 0 {
            0.0
        } else {
            self.correct as f64 / self.samples as f64
        }
    }
}

/// `cross_entropy`: logits `[T, B, C]`, labels `[B]` -> dL/do `[T, B, C]` (batch-mean loss),
/// per-sample loss `[B]`, and an update of `summary[slot]`. One workgroup per dispatch.
///
/// One pipeline per loss kind (the shader's `override KIND`, see [`Specialised`] for why).
pub struct CrossEntropy {
    pipelines: [std::sync::Arc<wgpu::ComputePipeline>; 2],
}

impl CrossEntropy {
    pub const NAME: &'static str = "cross_entropy";
    pub const SOURCE: crate::gpu::KernelSource = kernel_source!("cross_entropy", LossParams);
    const SPECIALISED: Specialised = Specialised::new(Self::SOURCE, &["KIND"]);

    /// Compiles (or fetches from the context's cache) both specialised pipelines, indexed by
    /// `LossParams::kind`.
    pub fn new(ctx: &crate::gpu::GpuContext) -> Result<Self, GpuError> {
        Ok(Self {
            pipelines: [
                Self::SPECIALISED.pipeline(ctx, &[0])?,
                Self::SPECIALISED.pipeline(ctx, &[1])?,
            ],
        })
    }

    /// Records the loss; `summary` needs more than `params.slot` entries.
    #[allow(clippy::too_many_arguments)]
    pub fn dispatch(
        &self,
        ctx: &crate::gpu::GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        params: &LossParams,
        logits: &crate::gpu::GpuBuffer<f32>,
        labels: &crate::gpu::GpuBuffer<u32>,
        grad: &crate::gpu::GpuBuffer<f32>,
        sample_loss: &crate::gpu::GpuBuffer<f32>,
        summary: &crate::gpu::GpuBuffer<LossSummary>,
    ) -> Result<(), GpuError> {
        params.check(
            logits.len(),
            labels.len(),
            grad.len(),
            sample_loss.len(),
            summary.len(),
        )?;
        ctx.dispatch(
            encoder,
            &self.pipelines[params.kind as usize],
            Self::NAME,
            bytemuck::bytes_of(params),
            &[
                logits.binding(),
                labels.binding(),
                grad.binding(),
                sample_loss.binding(),
                summary.binding(),
            ],
            Workgroups::Linear(1),
        )
    }
}
