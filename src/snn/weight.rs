//! Parameter blocks shared by the layer kinds: [`Weight`] (a conv or linear weight, full
//! precision or latent weights binarized each step, docs/method.md §3) and [`BnParams`] (batch
//! norm affine parameters and running statistics, §5).

use crate::gpu::{GpuBuffer, GpuContext, GpuError};
use crate::kernels::batchnorm::BatchNormState;
use crate::kernels::binarize::BinarizeParams;
use crate::kernels::flips::{FlipParams, PackSignsParams};
use crate::rng::SeededRng;

use super::metrics::{MomentKind, Slots};
use super::param::{Init, Param};
use super::recorder::Recorder;

/// Weights of a conv or linear layer.
pub struct Weight {
    pub param: Param,
    pub binary: Option<BinaryState>,
    /// `[C_out, K]` view used by binarization.
    pub rows: usize,
    pub cols: usize,
}

/// What a binary weight needs beyond its latent tensor.
pub struct BinaryState {
    /// `gamma * sign(W)`, the weights the forward uses.
    pub weight_b: GpuBuffer<f32>,
    /// Per-output-channel `gamma = mean |W|`.
    pub gamma: GpuBuffer<f32>,
    /// dL/dW_b before the straight-through estimator.
    pub grad_b: GpuBuffer<f32>,
    /// Packed signs at the last flip count, and scratch for the current ones.
    pub snapshot: GpuBuffer<u32>,
    pub current: GpuBuffer<u32>,
    /// Slot in the flip-count buffer and in the moment summary (gradient moments).
    pub flip_slot: usize,
    pub grad_slot: usize,
}

impl Weight {
    /// A weight named `{name}.weight` of `shape` drawn from `init`; binary weights take a
    /// flip slot and a gradient-moment slot.
    pub fn new(
        ctx: &GpuContext,
        name: &str,
        shape: Vec<usize>,
        init: Init,
        binary: bool,
        rng: &mut SeededRng,
        slots: &mut Slots,
    ) -> Result<Self, GpuError> {
        let rows = shape[0];
        let numel: usize = shape.iter().product();
        let values = init.sample(numel, rng);
        let param = Param::new(ctx, format!("{name}.weight"), shape, &values, true, binary)?;
        let binary = if binary {
            let words = numel.div_ceil(32);
            Some(BinaryState {
                weight_b: GpuBuffer::zeros(ctx, numel, "weight_b")?,
                gamma: GpuBuffer::zeros(ctx, rows, "gamma")?,
                grad_b: GpuBuffer::zeros(ctx, numel, "grad_b")?,
                snapshot: GpuBuffer::zeros(ctx, words, "sign snapshot")?,
                current: GpuBuffer::zeros(ctx, words, "signs")?,
                flip_slot: slots.take_flip(name, numel),
                grad_slot: slots.take_moment(name, MomentKind::Gradient),
            })
        } else {
            None
        };
        Ok(Self {
            param,
            binary,
            rows,
            cols: numel / rows,
        })
    }

    /// The layer name (`conv2`, `conv2.shortcut`), without `.weight`.
    pub fn layer_name(&self) -> &str {
        self.param.name.trim_end_matches(".weight")
    }

    /// The tensor the forward multiplies with.
    pub fn effective(&self) -> &GpuBuffer<f32> {
        match &self.binary {
            Some(b) => &b.weight_b,
            None => &self.param.value,
        }
    }

    /// Where the conv/linear weight gradient goes (before the STE for binary weights).
    pub fn grad_target(&self) -> &GpuBuffer<f32> {
        match &self.binary {
            Some(b) => &b.grad_b,
            None => &self.param.grad,
        }
    }

    fn binarize_params(&self) -> BinarizeParams {
        BinarizeParams::new(self.rows, self.cols)
    }

    /// Records `gamma * sign(W)` into `weight_b` (nothing for full-precision weights).
    pub fn binarize(&self, rec: &mut Recorder) -> Result<(), GpuError> {
        match &self.binary {
            Some(b) => rec.k.binarize_forward.dispatch(
                rec.ctx,
                rec.enc,
                &self.binarize_params(),
                &self.param.value,
                &b.weight_b,
                &b.gamma,
            ),
            None => Ok(()),
        }
    }

    /// Records the clipped STE from dL/dW_b into the latent gradient, plus its moments
    /// (nothing for full-precision weights, whose gradient is already in place).
    pub fn straight_through(
        &self,
        rec: &mut Recorder,
        partials: &GpuBuffer<f32>,
    ) -> Result<(), GpuError> {
        let Some(b) = &self.binary else {
            return Ok(());
        };
        rec.k.binarize_backward.dispatch(
            rec.ctx,
            rec.enc,
            &self.binarize_params(),
            &self.param.value,
            &b.gamma,
            &b.grad_b,
            &self.param.grad,
        )?;
        rec.moments(&self.param.grad, partials, b.grad_slot)
    }

    /// Records the latent weights' sign bits into `into`.
    fn pack_signs(&self, rec: &mut Recorder, into: &GpuBuffer<u32>) -> Result<(), GpuError> {
        let params = PackSignsParams::new(self.param.len());
        rec.k
            .pack_signs
            .dispatch(rec.ctx, rec.enc, &params, &self.param.value, into)
    }

    /// Records the packed signs into the snapshot (the reference of the next flip count).
    pub fn snapshot_signs(&self, rec: &mut Recorder) -> Result<(), GpuError> {
        match &self.binary {
            Some(b) => self.pack_signs(rec, &b.snapshot),
            None => Ok(()),
        }
    }

    /// Records the count of signs flipped since the snapshot, then takes a new snapshot.
    pub fn count_flips(&self, rec: &mut Recorder) -> Result<(), GpuError> {
        let Some(b) = &self.binary else {
            return Ok(());
        };
        self.pack_signs(rec, &b.current)?;
        rec.k.flips.dispatch(
            rec.ctx,
            rec.enc,
            &FlipParams::new(self.param.len(), b.flip_slot),
            &b.snapshot,
            &b.current,
            &rec.summaries.flips,
        )?;
        b.current.copy_to(rec.enc, &b.snapshot, 0)?;
        Ok(())
    }
}

/// Batch-norm affine parameters and running statistics.
pub struct BnParams {
    pub weight: Param,
    pub bias: Param,
    pub running_mean: GpuBuffer<f32>,
    pub running_var: GpuBuffer<f32>,
    /// Checkpoint prefix (`conv2.bn`).
    pub prefix: String,
    pub channels: usize,
}

impl BnParams {
    /// Weight 1, bias 0, running mean 0, running variance 1.
    pub fn new(ctx: &GpuContext, prefix: &str, channels: usize) -> Result<Self, GpuError> {
        let constant = |name: &str, value: f32| {
            Param::new(
                ctx,
                format!("{prefix}.{name}"),
                vec![channels],
                &vec![value; channels],
                false,
                false,
            )
        };
        Ok(Self {
            weight: constant("weight", 1.0)?,
            bias: constant("bias", 0.0)?,
            running_mean: GpuBuffer::from_slice(ctx, &vec![0.0; channels], "running_mean")?,
            running_var: GpuBuffer::from_slice(ctx, &vec![1.0; channels], "running_var")?,
            prefix: prefix.to_string(),
            channels,
        })
    }

    pub fn state(&self) -> BatchNormState<'_> {
        BatchNormState {
            weight: &self.weight.value,
            bias: &self.bias.value,
            running_mean: &self.running_mean,
            running_var: &self.running_var,
        }
    }
}
