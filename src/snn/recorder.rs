//! The kernels a network records with, compiled once per device, and [`Recorder`]: the context,
//! the open command encoder, those kernels and the epoch summaries, handed to every layer's
//! forward and backward so a layer records its dispatches without reaching into the network.

use crate::gpu::{GpuBuffer, GpuContext, GpuError};
use crate::kernels::agmm::AgmmForward;
use crate::kernels::batchnorm::{BatchNorm, BatchNormConfig};
use crate::kernels::binarize::{BinarizeBackward, BinarizeForward};
use crate::kernels::conv::Conv2d;
use crate::kernels::conv_lif::{BinaryConvLif, ConvDirectLif};
use crate::kernels::elementwise::{Accumulate, ResidualAdd};
use crate::kernels::finite::CountNonFinite;
use crate::kernels::flips::{PackSigns, SignFlipCount};
use crate::kernels::fused::{BnAgmmLifEval, BnAgmmLifEvalPacked, BnAgmmLifTrain, LifAgmmBackward};
use crate::kernels::lif::{LifBackward, LifForward};
use crate::kernels::linear::Linear;
use crate::kernels::loss::CrossEntropy;
use crate::kernels::optim::{AdamStep, SgdStep};
use crate::kernels::packed_grad::{PackedConvInputGrad, PackedConvWeightGrad};
use crate::kernels::popcount::{BinaryConvPopcount, PackSpikes, PackWeights};
use crate::kernels::stats::Moments;

use super::metrics::Summaries;

/// Every kernel a network uses.
pub struct Kernels {
    pub conv: Conv2d,
    pub linear: Linear,
    pub bn: BatchNorm,
    pub lif_forward: LifForward,
    pub lif_backward: LifBackward,
    pub agmm_forward: AgmmForward,
    /// Eval without inspection: BN + AGMM + shortcut + LIF in one pass.
    pub bn_agmm_lif_eval: BnAgmmLifEval,
    pub bn_agmm_lif_eval_packed: BnAgmmLifEvalPacked,
    /// Training: BN apply + AGMM + shortcut + LIF + the spike count in one pass.
    pub bn_agmm_lif_train: BnAgmmLifTrain,
    /// Training backward of a unit with AGMM: LIF + AGMM backward in one pass.
    pub lif_agmm_backward: LifAgmmBackward,
    pub add: ResidualAdd,
    pub accumulate: Accumulate,
    pub loss: CrossEntropy,
    pub sgd: SgdStep,
    pub adam: AdamStep,
    pub binarize_forward: BinarizeForward,
    pub binarize_backward: BinarizeBackward,
    pub pack_signs: PackSigns,
    pub flips: SignFlipCount,
    pub nonfinite: CountNonFinite,
    pub moments: Moments,
    pub pack_spikes: PackSpikes,
    pub pack_weights: PackWeights,
    pub popcount: BinaryConvPopcount,
    /// Eval without inspection of a popcount conv unit: the conv and its tail in one pass.
    pub conv_lif: BinaryConvLif,
    /// Eval without inspection of the encoder: its direct conv and tail in one pass.
    pub conv_direct_lif: ConvDirectLif,
    pub packed_weight_grad: PackedConvWeightGrad,
    /// Where the packed input gradient runs (`GpuContext::packed_backward`; not in the browser).
    pub packed_input_grad: Option<PackedConvInputGrad>,
}

impl Kernels {
    /// Compiles (or fetches from the context's cache) every pipeline.
    pub fn new(ctx: &GpuContext) -> Result<Self, GpuError> {
        Ok(Self {
            conv: Conv2d::new(ctx)?,
            linear: Linear::new(ctx)?,
            bn: BatchNorm::new(ctx, BatchNormConfig::default())?,
            lif_forward: LifForward::new(ctx)?,
            lif_backward: LifBackward::new(ctx)?,
            agmm_forward: AgmmForward::new(ctx)?,
            bn_agmm_lif_eval: BnAgmmLifEval::new(ctx)?,
            bn_agmm_lif_eval_packed: BnAgmmLifEvalPacked::new(ctx)?,
            bn_agmm_lif_train: BnAgmmLifTrain::new(ctx)?,
            lif_agmm_backward: LifAgmmBackward::new(ctx)?,
            add: ResidualAdd::new(ctx)?,
            accumulate: Accumulate::new(ctx)?,
            loss: CrossEntropy::new(ctx)?,
            sgd: SgdStep::new(ctx)?,
            adam: AdamStep::new(ctx)?,
            binarize_forward: BinarizeForward::new(ctx)?,
            binarize_backward: BinarizeBackward::new(ctx)?,
            pack_signs: PackSigns::new(ctx)?,
            flips: SignFlipCount::new(ctx)?,
            nonfinite: CountNonFinite::new(ctx)?,
            moments: Moments::new(ctx)?,
            pack_spikes: PackSpikes::new(ctx)?,
            pack_weights: PackWeights::new(ctx)?,
            popcount: BinaryConvPopcount::new(ctx)?,
            conv_lif: BinaryConvLif::new(ctx)?,
            conv_direct_lif: ConvDirectLif::new(ctx)?,
            packed_weight_grad: PackedConvWeightGrad::new(ctx)?,
            packed_input_grad: if ctx.packed_backward.input_grad {
                Some(PackedConvInputGrad::new(ctx)?)
            } else {
                None
            },
        })
    }
}

/// What a layer needs to record its work.
pub struct Recorder<'a> {
    pub ctx: &'a GpuContext,
    pub enc: &'a mut wgpu::CommandEncoder,
    pub k: &'a Kernels,
    pub summaries: &'a Summaries,
}

impl Recorder<'_> {
    /// Adds `values`' sum, sum of squares and count into moment slot `slot` of the epoch
    /// summary (`partials` is the workspace's scratch).
    pub fn moments(
        &mut self,
        values: &GpuBuffer<f32>,
        partials: &GpuBuffer<f32>,
        slot: usize,
    ) -> Result<(), GpuError> {
        self.k.moments.dispatch(
            self.ctx,
            self.enc,
            values,
            partials,
            &self.summaries.moments,
            slot,
            true,
        )
    }
}
