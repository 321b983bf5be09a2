//! A BSNN built from a [`ModelConfig`]: parameters on the GPU, per-batch-size workspaces of
//! activations, and the recorded forward, backward and optimizer passes of one training step.
//!
//! Nothing here submits work or reads back by itself except where a method says so: the
//! trainer (CLI) and the UI decide when to submit and how to wait, so the UI never blocks.

use std::collections::HashMap;

use crate::rng::SeededRng;
use rand::SeedableRng;

use super::param::{Init, Param};
use crate::checkpoint::Checkpoint;
use crate::gpu::{GpuBuffer, GpuContext, GpuError, Readback};
use crate::kernels::agmm::{
    AgmmAlpha, AgmmBackward, AgmmConfig, AgmmForward, AgmmMode, AgmmParams,
};
use crate::kernels::batchnorm::{
    BatchNorm, BatchNormConfig, BatchNormSaved, BatchNormShape, BatchNormState,
};
use crate::kernels::binarize::{BinarizeBackward, BinarizeForward, BinarizeParams};
use crate::kernels::conv::{Conv2d, ConvShape};
use crate::kernels::elementwise::{Accumulate, ElementwiseParams, ResidualAdd};
use crate::kernels::flips::{FlipParams, PackSigns, PackSignsParams, SignFlipCount};
use crate::kernels::lif::{LifBackward, LifConfig, LifForward, LifParams, ResetMode};
use crate::kernels::linear::{Linear, LinearShape};
use crate::kernels::loss::{CrossEntropy, LossKind, LossParams, LossSummary};
use crate::kernels::optim::{AdamConfig, AdamParams, AdamStep, SgdConfig, SgdParams, SgdStep};
use crate::kernels::pool::{AvgPool2d, MaxPool2d, PoolWindow};
use crate::kernels::popcount::{
    BinaryConvPopcount, PackSpikes, PackSpikesParams, PackWeights, PackWeightsParams,
    PopcountConvParams,
};
use crate::kernels::stats::Moments;
use crate::model::{
    plan, AgmmModeConfig, LayerConfig, LossConfig, ModelConfig, ModelError, PoolKind, Reset,
    Shortcut,
};

/// Errors building or running a network.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Gpu(#[from] GpuError),
    #[error(transparent)]
    Checkpoint(#[from] crate::checkpoint::CheckpointError),
    #[error("batch: {0}")]
    Batch(String),
}

/// Which optimizer updates the latent weights (spec section 8).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Optimizer {
    Sgd(SgdConfig),
    Adam(AdamConfig),
}

/// The kernels a network uses, compiled once per device.
struct Kernels {
    conv: Conv2d,
    linear: Linear,
    bn: BatchNorm,
    lif_forward: LifForward,
    lif_backward: LifBackward,
    agmm_forward: AgmmForward,
    agmm_backward: AgmmBackward,
    add: ResidualAdd,
    accumulate: Accumulate,
    loss: CrossEntropy,
    sgd: SgdStep,
    adam: AdamStep,
    binarize_forward: BinarizeForward,
    binarize_backward: BinarizeBackward,
    pack_signs: PackSigns,
    flips: SignFlipCount,
    moments: Moments,
    pack_spikes: PackSpikes,
    pack_weights: PackWeights,
    popcount: BinaryConvPopcount,
}

impl Kernels {
    fn new(ctx: &GpuContext) -> Result<Self, GpuError> {
        Ok(Self {
            conv: Conv2d::new(ctx)?,
            linear: Linear::new(ctx)?,
            bn: BatchNorm::new(ctx, BatchNormConfig::default())?,
            lif_forward: LifForward::new(ctx)?,
            lif_backward: LifBackward::new(ctx)?,
            agmm_forward: AgmmForward::new(ctx)?,
            agmm_backward: AgmmBackward::new(ctx)?,
            add: ResidualAdd::new(ctx)?,
            accumulate: Accumulate::new(ctx)?,
            loss: CrossEntropy::new(ctx)?,
            sgd: SgdStep::new(ctx)?,
            adam: AdamStep::new(ctx)?,
            binarize_forward: BinarizeForward::new(ctx)?,
            binarize_backward: BinarizeBackward::new(ctx)?,
            pack_signs: PackSigns::new(ctx)?,
            flips: SignFlipCount::new(ctx)?,
            moments: Moments::new(ctx)?,
            pack_spikes: PackSpikes::new(ctx)?,
            pack_weights: PackWeights::new(ctx)?,
            popcount: BinaryConvPopcount::new(ctx)?,
        })
    }
}

/// Weights of a conv or linear layer: full precision, or latent weights binarized each step.
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
    /// Slot in the flip-count buffer and in the metrics summary (gradient moments).
    pub flip_slot: usize,
    pub grad_slot: usize,
}

impl Weight {
    fn new(
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
                flip_slot: slots.take_flip(name),
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

    /// The tensor the forward multiplies with.
    fn effective(&self) -> &GpuBuffer<f32> {
        match &self.binary {
            Some(b) => &b.weight_b,
            None => &self.param.value,
        }
    }

    /// Where the conv/linear weight gradient goes (before the STE for binary weights).
    fn grad_target(&self) -> &GpuBuffer<f32> {
        match &self.binary {
            Some(b) => &b.grad_b,
            None => &self.param.grad,
        }
    }

    /// Records `gamma * sign(W)` into `weight_b` (no-op for full-precision weights).
    fn binarize(
        &self,
        k: &Kernels,
        ctx: &GpuContext,
        enc: &mut wgpu::CommandEncoder,
    ) -> Result<(), GpuError> {
        match &self.binary {
            Some(b) => k.binarize_forward.dispatch(
                ctx,
                enc,
                &self.binarize_params(),
                &self.param.value,
                &b.weight_b,
                &b.gamma,
            ),
            None => Ok(()),
        }
    }

    fn binarize_params(&self) -> BinarizeParams {
        BinarizeParams::new(self.rows, self.cols)
    }
}

/// BN affine parameters and running statistics.
pub struct BnParams {
    pub weight: Param,
    pub bias: Param,
    pub running_mean: GpuBuffer<f32>,
    pub running_var: GpuBuffer<f32>,
    pub running_name: String,
    pub channels: usize,
}

impl BnParams {
    fn new(ctx: &GpuContext, prefix: &str, channels: usize) -> Result<Self, GpuError> {
        Ok(Self {
            weight: Param::new(
                ctx,
                format!("{prefix}.weight"),
                vec![channels],
                &vec![1.0; channels],
                false,
                false,
            )?,
            bias: Param::new(
                ctx,
                format!("{prefix}.bias"),
                vec![channels],
                &vec![0.0; channels],
                false,
                false,
            )?,
            running_mean: GpuBuffer::from_slice(ctx, &vec![0.0; channels], "running_mean")?,
            running_var: GpuBuffer::from_slice(ctx, &vec![1.0; channels], "running_var")?,
            running_name: prefix.to_string(),
            channels,
        })
    }

    fn state(&self) -> BatchNormState<'_> {
        BatchNormState {
            weight: &self.weight.value,
            bias: &self.bias.value,
            running_mean: &self.running_mean,
            running_var: &self.running_var,
        }
    }
}

/// The downsampling shortcut: AvgPool 2 + binary 1x1 conv + BN.
pub struct Downsample {
    pub pool: AvgPool2d,
    pub weight: Weight,
    pub bn: BnParams,
}

/// Conv unit: conv -> BN -> [AGMM] -> [+ shortcut] -> LIF.
pub struct ConvUnit {
    pub name: String,
    pub input: [usize; 3],
    pub output: [usize; 3],
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
    pub weight: Weight,
    pub bn: BnParams,
    /// AGMM after BN (binary units whose mode is not `off`).
    pub agmm: Option<AgmmConfig>,
    pub shortcut: Shortcut,
    pub downsample: Option<Downsample>,
    pub lif: LifConfig,
    /// Binary weights on binary (spike) input: the forward runs as bit-packed popcount, which
    /// gives the same integer counts as the float path at a fraction of the cost.
    pub popcount: Option<GpuBuffer<u32>>,
    /// Metrics slot of this layer's firing rate.
    pub rate_slot: usize,
}

/// A pooling layer (max, average or global average).
pub struct PoolLayer {
    pub name: String,
    /// Metrics slot of the output's mean (the firing rate after max pooling of spikes).
    pub rate_slot: usize,
    pub input: [usize; 3],
    pub output: [usize; 3],
    pub max: Option<MaxPool2d>,
    pub avg: Option<AvgPool2d>,
}

/// The linear readout, applied at every timestep.
pub struct LinearLayer {
    pub name: String,
    pub in_features: usize,
    pub out_features: usize,
    pub weight: Weight,
    pub bias: Option<Param>,
}

/// One layer of the network.
#[allow(clippy::large_enum_variant)] // a handful per network, never moved in hot paths
pub enum Layer {
    Conv(ConvUnit),
    Pool(PoolLayer),
    Linear(LinearLayer),
}

impl Layer {
    /// The layer's name (`conv1`, `pool1`, `fc`, ...), as in checkpoints and metrics.
    pub fn name(&self) -> &str {
        match self {
            Layer::Conv(c) => &c.name,
            Layer::Pool(p) => &p.name,
            Layer::Linear(l) => &l.name,
        }
    }

    /// True for layers whose output is spikes (conv units and the pools after them); the
    /// readout's output is logits.
    pub fn is_spiking(&self) -> bool {
        !matches!(self, Layer::Linear(_))
    }

    /// Output shape `[C, H, W]` per sample and timestep (`[classes, 1, 1]` for the readout).
    pub fn output_shape(&self) -> [usize; 3] {
        self.output()
    }

    fn output(&self) -> [usize; 3] {
        match self {
            Layer::Conv(c) => c.output,
            Layer::Pool(p) => p.output,
            Layer::Linear(l) => [l.out_features, 1, 1],
        }
    }
}

/// What a metrics-summary slot measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MomentKind {
    /// Spikes of a spiking layer: the mean is the firing rate.
    FiringRate,
    /// Latent-weight gradient of a binary layer: mean and variance.
    Gradient,
}

/// Allocation of metric slots while building the network.
#[derive(Default)]
struct Slots {
    moments: Vec<(String, MomentKind)>,
    flips: Vec<String>,
}

impl Slots {
    fn take_moment(&mut self, name: &str, kind: MomentKind) -> usize {
        self.moments.push((name.to_string(), kind));
        self.moments.len() - 1
    }
    fn take_flip(&mut self, name: &str) -> usize {
        self.flips.push(name.to_string());
        self.flips.len() - 1
    }
}

/// Activations and gradients of one conv unit for one batch size.
struct ConvWs {
    shape: ConvShape,
    conv_out: GpuBuffer<f32>,
    bn_out: GpuBuffer<f32>,
    mean: GpuBuffer<f32>,
    invstd: GpuBuffer<f32>,
    agmm_out: Option<(GpuBuffer<f32>, GpuBuffer<f32>)>,
    /// Sum before the LIF when there is a shortcut.
    pre: Option<GpuBuffer<f32>>,
    membrane: GpuBuffer<f32>,
    g_pre: GpuBuffer<f32>,
    g_bn_out: Option<GpuBuffer<f32>>,
    g_conv_out: GpuBuffer<f32>,
    down: Option<DownWs>,
    /// Input spikes packed 32 channels per word (popcount forward).
    packed_input: Option<GpuBuffer<u32>>,
}

struct DownWs {
    shape: ConvShape,
    pooled: GpuBuffer<f32>,
    conv_out: GpuBuffer<f32>,
    bn_out: GpuBuffer<f32>,
    mean: GpuBuffer<f32>,
    invstd: GpuBuffer<f32>,
    g_conv_out: GpuBuffer<f32>,
    g_pooled: GpuBuffer<f32>,
    g_input: GpuBuffer<f32>,
}

struct FrameWs {
    input: GpuBuffer<f32>,
    conv_out: GpuBuffer<f32>,
    bn_out: GpuBuffer<f32>,
    /// True when the uploaded batch really repeats one frame over time.
    valid: std::cell::Cell<bool>,
}

enum LayerWs {
    Conv(Box<ConvWs>),
    Pool { argmax: Option<GpuBuffer<u32>> },
    Linear,
}

/// Everything that depends on the batch size.
struct Workspace {
    batch: usize,
    input: GpuBuffer<f32>,
    /// Direct encoding feeds the same frame at every timestep, so in eval mode the encoder conv
    /// and its BN run once on `[B, ...]` and the LIF reads that frame at every t (4x less work
    /// at T = 4, bit-identical results). `None` when the first layer cannot use it.
    frame: Option<FrameWs>,
    labels: GpuBuffer<u32>,
    /// Output of each layer (`[T*B, C, H, W]`; logits `[T, B, classes]` for the readout).
    outputs: Vec<GpuBuffer<f32>>,
    /// dL/d(output) of each layer.
    grads: Vec<GpuBuffer<f32>>,
    layers: Vec<LayerWs>,
    cols: GpuBuffer<f32>,
    sample_loss: GpuBuffer<f32>,
    moment_partials: GpuBuffer<f32>,
}

/// Summaries accumulated on the GPU and read back once per epoch.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EpochMetrics {
    pub train: LossSummary,
    pub eval: LossSummary,
    /// `(layer, firing rate)` per spiking layer (train mode, averaged over the epoch).
    pub firing_rates: Vec<(String, f64)>,
    /// `(layer, mean, variance)` of latent-weight gradients per binary layer.
    pub grad_stats: Vec<(String, f64, f64)>,
    /// `(layer, flipped, total)` sign flips since the previous count, per binary layer.
    pub flips: Vec<(String, u64, u64)>,
}

impl EpochMetrics {
    /// Total flip ratio over all binary layers.
    pub fn flip_ratio_total(&self) -> f64 {
        let (f, n) = self
            .flips
            .iter()
            .fold((0u64, 0u64), |(f, n), (_, a, b)| (f + a, n + b));
        if n == 0 {
            0.0
        } else {
            f as f64 / n as f64
        }
    }
}

/// The raw summary buffers in flight from [`Network::read_metrics_async`].
pub struct MetricsReadback {
    loss: (Readback<LossSummary>, Option<Vec<LossSummary>>),
    moments: (Readback<f32>, Option<Vec<f32>>),
    flips: (Readback<u32>, Option<Vec<u32>>),
}

/// One tensor of a [`PendingCheckpoint`]: name, shape, readback, data once arrived.
type PendingTensor = (String, Vec<usize>, Readback<f32>, Option<Vec<f32>>);

/// A checkpoint whose tensors are still being read back ([`Network::checkpoint_async`]).
pub struct PendingCheckpoint {
    parts: Vec<PendingTensor>,
    pub metadata: std::collections::BTreeMap<String, String>,
}

impl PendingCheckpoint {
    /// Non-blocking: `Some` once every tensor has arrived.
    pub fn try_take(&mut self) -> Option<Result<Checkpoint, GpuError>> {
        let mut ready = true;
        for (_, _, readback, data) in &mut self.parts {
            if data.is_none() {
                match readback.try_take() {
                    Some(Ok(v)) => *data = Some(v),
                    Some(Err(e)) => return Some(Err(e)),
                    None => ready = false,
                }
            }
        }
        if !ready {
            return None;
        }
        let mut ck = Checkpoint {
            metadata: std::mem::take(&mut self.metadata),
            ..Checkpoint::default()
        };
        for (name, shape, _, data) in self.parts.drain(..) {
            ck.tensors.push(crate::checkpoint::NamedTensor {
                name,
                shape,
                data: data.unwrap_or_default(),
            });
        }
        Some(Ok(ck))
    }
}

/// Raw summaries: the loss slots, the moment sums and the flip counts.
pub type RawMetrics = (Vec<LossSummary>, Vec<f32>, Vec<u32>);

impl MetricsReadback {
    /// Non-blocking: `Some` once all three buffers have arrived. Turn the result into
    /// [`EpochMetrics`] with [`Network::metrics_from`].
    pub fn try_take(&mut self) -> Option<Result<RawMetrics, GpuError>> {
        fn poll<T: bytemuck::Pod>(
            slot: &mut (Readback<T>, Option<Vec<T>>),
        ) -> Result<bool, GpuError> {
            if slot.1.is_none() {
                match slot.0.try_take() {
                    Some(Ok(v)) => slot.1 = Some(v),
                    Some(Err(e)) => return Err(e),
                    None => return Ok(false),
                }
            }
            Ok(true)
        }
        let ready = (|| -> Result<bool, GpuError> {
            let a = poll(&mut self.loss)?;
            let b = poll(&mut self.moments)?;
            let c = poll(&mut self.flips)?;
            Ok(a && b && c)
        })();
        match ready {
            Err(e) => Some(Err(e)),
            Ok(false) => None,
            Ok(true) => Some(Ok((
                self.loss.1.take().unwrap_or_default(),
                self.moments.1.take().unwrap_or_default(),
                self.flips.1.take().unwrap_or_default(),
            ))),
        }
    }
}

/// Loss-summary slots.
const TRAIN_SLOT: usize = 0;
const EVAL_SLOT: usize = 1;

/// A BSNN on the GPU.
pub struct Network {
    pub config: ModelConfig,
    pub layers: Vec<Layer>,
    kernels: Kernels,
    workspaces: HashMap<usize, Workspace>,
    loss_summary: GpuBuffer<LossSummary>,
    moment_summary: GpuBuffer<f32>,
    flip_counts: GpuBuffer<u32>,
    slots: Slots,
    /// Optimizer steps taken (Adam's bias correction; the checkpoint's `step`).
    pub step: u64,
    /// Use the single-frame encoder path in eval mode when possible (default on).
    frame_broadcast: bool,
}

fn lif_config(config: &ModelConfig) -> LifConfig {
    LifConfig {
        decay: config.neuron.decay,
        v_th: config.neuron.v_th,
        reset: match config.neuron.reset {
            Reset::Hard => ResetMode::Hard,
            Reset::Soft => ResetMode::Soft,
        },
        detach_reset: config.neuron.detach_reset,
        surrogate_width: config.neuron.surrogate_width,
    }
}

fn agmm_config(config: &ModelConfig) -> Option<AgmmConfig> {
    let mode = match config.agmm.mode {
        AgmmModeConfig::Full => AgmmMode::Full,
        AgmmModeConfig::Detached => AgmmMode::Detached,
        // `off` is the identity: skip the kernels entirely.
        AgmmModeConfig::Off => return None,
    };
    let alpha = match config.agmm.alpha {
        None => AgmmAlpha::RunningMean,
        Some(a) => AgmmAlpha::Constant(a),
    };
    Some(AgmmConfig { mode, alpha })
}

impl Network {
    /// Builds the network for `config`, initialising parameters from `seed` (Kaiming normal
    /// fan_out for convs, PyTorch's default for the readout, BN weight 1 bias 0).
    pub fn new(ctx: &GpuContext, config: &ModelConfig, seed: u64) -> Result<Self, NetworkError> {
        let planned = plan(config)?;
        let kernels = Kernels::new(ctx)?;
        let mut rng = SeededRng::seed_from_u64(seed);
        let mut slots = Slots::default();
        let mut layers = Vec::with_capacity(planned.len());
        // Whether the current layer's input is spikes in {0, 1}.
        let mut spike_input = config.encoding == crate::model::Encoding::Poisson;
        for l in &planned {
            let layer = match &l.config {
                LayerConfig::Conv {
                    out_channels,
                    kernel,
                    stride,
                    padding,
                    binary,
                    shortcut,
                } => {
                    let ci = l.input[0];
                    let shape = vec![*out_channels, ci, *kernel, *kernel];
                    let init = Init::KaimingNormalFanOut {
                        fan_out: out_channels * kernel * kernel,
                    };
                    let weight =
                        Weight::new(ctx, &l.name, shape, init, *binary, &mut rng, &mut slots)?;
                    let popcount = if *binary && spike_input {
                        let len = PackWeightsParams::new(*out_channels, ci, *kernel, *kernel)
                            .total_words as usize;
                        Some(GpuBuffer::zeros(ctx, len, "packed weights")?)
                    } else {
                        None
                    };
                    spike_input = true;
                    let downsample = if *shortcut == Shortcut::Downsample {
                        let name = format!("{}.shortcut", l.name);
                        let init = Init::KaimingNormalFanOut {
                            fan_out: *out_channels,
                        };
                        Some(Downsample {
                            pool: AvgPool2d::new(ctx, PoolWindow::square(2, 2))?,
                            weight: Weight::new(
                                ctx,
                                &name,
                                vec![*out_channels, ci, 1, 1],
                                init,
                                true,
                                &mut rng,
                                &mut slots,
                            )?,
                            bn: BnParams::new(ctx, &format!("{name}.bn"), *out_channels)?,
                        })
                    } else {
                        None
                    };
                    Layer::Conv(ConvUnit {
                        name: l.name.clone(),
                        input: l.input,
                        output: l.output,
                        kernel: *kernel,
                        stride: *stride,
                        padding: *padding,
                        weight,
                        bn: BnParams::new(ctx, &format!("{}.bn", l.name), *out_channels)?,
                        agmm: if *binary { agmm_config(config) } else { None },
                        shortcut: *shortcut,
                        downsample,
                        lif: lif_config(config),
                        popcount,
                        rate_slot: slots.take_moment(&l.name, MomentKind::FiringRate),
                    })
                }
                LayerConfig::Pool { size } => {
                    // Max pooling of spikes is an OR: still spikes. Averaging is not.
                    spike_input &= config.pooling == PoolKind::Max;
                    let window = PoolWindow::square(*size, *size);
                    let (max, avg) = match config.pooling {
                        PoolKind::Max => (Some(MaxPool2d::new(ctx, window)?), None),
                        PoolKind::Avg => (None, Some(AvgPool2d::new(ctx, window)?)),
                    };
                    Layer::Pool(PoolLayer {
                        name: l.name.clone(),
                        rate_slot: slots.take_moment(&l.name, MomentKind::FiringRate),
                        input: l.input,
                        output: l.output,
                        max,
                        avg,
                    })
                }
                LayerConfig::GlobalAvgPool => {
                    spike_input = false;
                    let window = PoolWindow::global(l.input[1], l.input[2]);
                    Layer::Pool(PoolLayer {
                        name: l.name.clone(),
                        rate_slot: slots.take_moment(&l.name, MomentKind::FiringRate),
                        input: l.input,
                        output: l.output,
                        max: None,
                        avg: Some(AvgPool2d::new(ctx, window)?),
                    })
                }
                LayerConfig::Linear {
                    out_features,
                    binary,
                    bias,
                } => {
                    let in_features: usize = l.input.iter().product();
                    let init = Init::UniformFanIn {
                        fan_in: in_features,
                    };
                    let weight = Weight::new(
                        ctx,
                        &l.name,
                        vec![*out_features, in_features],
                        init,
                        *binary,
                        &mut rng,
                        &mut slots,
                    )?;
                    let bias = if *bias {
                        let values = init.sample(*out_features, &mut rng);
                        Some(Param::new(
                            ctx,
                            format!("{}.bias", l.name),
                            vec![*out_features],
                            &values,
                            false,
                            false,
                        )?)
                    } else {
                        None
                    };
                    Layer::Linear(LinearLayer {
                        name: l.name.clone(),
                        in_features,
                        out_features: *out_features,
                        weight,
                        bias,
                    })
                }
            };
            layers.push(layer);
        }
        let net = Self {
            config: config.clone(),
            layers,
            kernels,
            workspaces: HashMap::new(),
            loss_summary: GpuBuffer::zeros(ctx, 2, "loss summary")?,
            moment_summary: GpuBuffer::zeros(
                ctx,
                3 * slots.moments.len().max(1),
                "moment summary",
            )?,
            flip_counts: GpuBuffer::zeros(ctx, slots.flips.len().max(1), "flip counts")?,
            slots,
            step: 0,
            frame_broadcast: true,
        };
        let mut enc = ctx.encoder("sign snapshot");
        net.snapshot_signs(ctx, &mut enc)?;
        ctx.submit(enc);
        Ok(net)
    }

    /// All weights in forward order (binary and full precision).
    fn weights(&self) -> Vec<&Weight> {
        let mut out = Vec::new();
        for layer in &self.layers {
            match layer {
                Layer::Conv(c) => {
                    out.push(&c.weight);
                    if let Some(d) = &c.downsample {
                        out.push(&d.weight);
                    }
                }
                Layer::Linear(l) => out.push(&l.weight),
                Layer::Pool(_) => {}
            }
        }
        out
    }

    /// Every trainable tensor, in a stable order.
    pub fn params(&self) -> Vec<&Param> {
        let mut out = Vec::new();
        for layer in &self.layers {
            match layer {
                Layer::Conv(c) => {
                    out.push(&c.weight.param);
                    out.push(&c.bn.weight);
                    out.push(&c.bn.bias);
                    if let Some(d) = &c.downsample {
                        out.push(&d.weight.param);
                        out.push(&d.bn.weight);
                        out.push(&d.bn.bias);
                    }
                }
                Layer::Linear(l) => {
                    out.push(&l.weight.param);
                    if let Some(b) = &l.bias {
                        out.push(b);
                    }
                }
                Layer::Pool(_) => {}
            }
        }
        out
    }

    fn batch_norms(&self) -> Vec<&BnParams> {
        let mut out = Vec::new();
        for layer in &self.layers {
            if let Layer::Conv(c) = layer {
                out.push(&c.bn);
                if let Some(d) = &c.downsample {
                    out.push(&d.bn);
                }
            }
        }
        out
    }

    fn workspace(&mut self, ctx: &GpuContext, batch: usize) -> Result<(), NetworkError> {
        if batch == 0 {
            return Err(NetworkError::Batch("batch size must be at least 1".into()));
        }
        if self.workspaces.contains_key(&batch) {
            return Ok(());
        }
        let t = self.config.timesteps;
        let n = t * batch;
        let [c0, h0, w0] = self.config.input;
        let input = GpuBuffer::zeros(ctx, n * c0 * h0 * w0, "input")?;
        let frame = match self.layers.first() {
            Some(Layer::Conv(u))
                if self.config.encoding == crate::model::Encoding::Direct
                    && u.agmm.is_none()
                    && u.shortcut == Shortcut::None
                    && u.popcount.is_none() =>
            {
                let out = batch * u.output.iter().product::<usize>();
                Some(FrameWs {
                    input: GpuBuffer::zeros(ctx, batch * c0 * h0 * w0, "frame input")?,
                    conv_out: GpuBuffer::zeros(ctx, out, "frame conv out")?,
                    bn_out: GpuBuffer::zeros(ctx, out, "frame bn out")?,
                    valid: std::cell::Cell::new(false),
                })
            }
            _ => None,
        };
        let labels = GpuBuffer::zeros(ctx, batch, "labels")?;
        let mut outputs = Vec::new();
        let mut grads = Vec::new();
        let mut layers = Vec::new();
        let mut cols_len = 1usize;
        // Moments run over layer outputs (firing rates) and weight gradients.
        let mut moment_max = self
            .weights()
            .iter()
            .map(|w| w.param.len())
            .max()
            .unwrap_or(1);
        for layer in &self.layers {
            let [c, h, w] = layer.output();
            let len = n * c * h * w;
            outputs.push(GpuBuffer::zeros(ctx, len, "layer output")?);
            grads.push(GpuBuffer::zeros(ctx, len, "layer output grad")?);
            moment_max = moment_max.max(len);
            let ws = match layer {
                Layer::Conv(u) => {
                    let [ci, hi, wi] = u.input;
                    let shape = ConvShape::new(n, ci, c, hi, wi, u.kernel, u.stride, u.padding);
                    cols_len = cols_len.max(Conv2d::cols_scratch_len(&shape)?);
                    let z = |label: &str| GpuBuffer::<f32>::zeros(ctx, len, label);
                    let down = match &u.downsample {
                        Some(_) => {
                            let dshape = ConvShape::new(n, ci, c, hi / 2, wi / 2, 1, 1, 0);
                            cols_len = cols_len.max(Conv2d::cols_scratch_len(&dshape)?);
                            let pooled = n * ci * (hi / 2) * (wi / 2);
                            Some(DownWs {
                                shape: dshape,
                                pooled: GpuBuffer::zeros(ctx, pooled, "shortcut pooled")?,
                                conv_out: z("shortcut conv")?,
                                bn_out: z("shortcut bn")?,
                                mean: GpuBuffer::zeros(ctx, c, "mean")?,
                                invstd: GpuBuffer::zeros(ctx, c, "invstd")?,
                                g_conv_out: z("shortcut conv grad")?,
                                g_pooled: GpuBuffer::zeros(ctx, pooled, "shortcut pooled grad")?,
                                g_input: GpuBuffer::zeros(
                                    ctx,
                                    n * ci * hi * wi,
                                    "shortcut input grad",
                                )?,
                            })
                        }
                        None => None,
                    };
                    let packed_input = match u.popcount {
                        Some(_) => Some(GpuBuffer::zeros(
                            ctx,
                            PopcountConvParams::new(&shape).packed_spikes_len(),
                            "packed spikes",
                        )?),
                        None => None,
                    };
                    LayerWs::Conv(Box::new(ConvWs {
                        shape,
                        packed_input,
                        conv_out: z("conv out")?,
                        bn_out: z("bn out")?,
                        mean: GpuBuffer::zeros(ctx, c, "mean")?,
                        invstd: GpuBuffer::zeros(ctx, c, "invstd")?,
                        agmm_out: match u.agmm {
                            Some(_) => Some((z("agmm out")?, z("agmm E")?)),
                            None => None,
                        },
                        pre: match u.shortcut {
                            Shortcut::None => None,
                            _ => Some(z("pre-LIF sum")?),
                        },
                        membrane: z("membrane")?,
                        g_pre: z("pre-LIF grad")?,
                        g_bn_out: match u.agmm {
                            Some(_) => Some(z("bn out grad")?),
                            None => None,
                        },
                        g_conv_out: z("conv out grad")?,
                        down,
                    }))
                }
                Layer::Pool(p) => LayerWs::Pool {
                    argmax: match p.max {
                        Some(_) => Some(GpuBuffer::zeros(ctx, len, "argmax")?),
                        None => None,
                    },
                },
                Layer::Linear(_) => LayerWs::Linear,
            };
            layers.push(ws);
        }
        let ws = Workspace {
            batch,
            input,
            frame,
            labels,
            outputs,
            grads,
            layers,
            cols: GpuBuffer::zeros(ctx, cols_len, "im2col scratch")?,
            sample_loss: GpuBuffer::zeros(ctx, batch, "sample loss")?,
            moment_partials: GpuBuffer::zeros(
                ctx,
                Moments::partials_len(moment_max),
                "moment partials",
            )?,
        };
        self.workspaces.insert(batch, ws);
        Ok(())
    }

    /// Uploads a batch (`input` `[T, B, C, H, W]`, `labels` `[B]`) into the workspace for its
    /// batch size, creating the workspace on first use.
    pub fn upload(
        &mut self,
        ctx: &GpuContext,
        input: &[f32],
        labels: &[u32],
    ) -> Result<usize, NetworkError> {
        let batch = labels.len();
        self.workspace(ctx, batch)?;
        let ws = &self.workspaces[&batch];
        if input.len() != ws.input.len() {
            return Err(NetworkError::Batch(format!(
                "input has {} values, a batch of {batch} at T = {} with input {:?} needs {}",
                input.len(),
                self.config.timesteps,
                self.config.input,
                ws.input.len()
            )));
        }
        if let Some(bad) = labels.iter().find(|&&l| l as usize >= self.config.classes) {
            return Err(NetworkError::Batch(format!(
                "label {bad} outside 0..{}",
                self.config.classes
            )));
        }
        ws.input.write(ctx, input)?;
        ws.labels.write(ctx, labels)?;
        if let Some(frame) = &ws.frame {
            let per = frame.input.len();
            let repeats = input.chunks_exact(per).all(|c| c == &input[..per]);
            frame.valid.set(repeats);
            if repeats {
                frame.input.write(ctx, &input[..per])?;
            }
        }
        Ok(batch)
    }

    /// Records the forward pass (and the loss) for the uploaded batch of size `batch`.
    /// `train`: batch statistics for BN (running stats updated), loss into the train slot,
    /// firing rates accumulated; otherwise running statistics and the eval slot.
    pub fn record_forward(
        &self,
        ctx: &GpuContext,
        enc: &mut wgpu::CommandEncoder,
        batch: usize,
        train: bool,
    ) -> Result<(), NetworkError> {
        let ws = self.ws(batch)?;
        let k = &self.kernels;
        let t = self.config.timesteps;
        let n = t * batch;
        for (i, layer) in self.layers.iter().enumerate() {
            let input = if i == 0 {
                &ws.input
            } else {
                &ws.outputs[i - 1]
            };
            let output = &ws.outputs[i];
            match (layer, &ws.layers[i]) {
                (Layer::Conv(u), LayerWs::Conv(cw)) => match (&ws.frame, i == 0 && !train) {
                    (Some(frame), true) if frame.valid.get() && self.frame_broadcast => {
                        self.forward_encoder_frame(ctx, enc, u, cw, frame, output, t, batch)?
                    }
                    _ => self.forward_conv(ctx, enc, u, cw, input, output, t, batch, train)?,
                },
                (Layer::Pool(p), LayerWs::Pool { argmax }) => {
                    let [c, h, w] = p.input;
                    match (&p.max, &p.avg, argmax) {
                        (Some(max), _, Some(argmax)) => {
                            max.forward(ctx, enc, [n, c, h, w], input, output, argmax)?
                        }
                        (_, Some(avg), _) => avg.forward(ctx, enc, [n, c, h, w], input, output)?,
                        _ => {
                            return Err(
                                GpuError::shape("network", "pool layer without kernel").into()
                            )
                        }
                    }
                    if train {
                        k.moments.dispatch(
                            ctx,
                            enc,
                            output,
                            &ws.moment_partials,
                            &self.moment_summary,
                            p.rate_slot,
                            true,
                        )?;
                    }
                }
                (Layer::Linear(l), LayerWs::Linear) => {
                    l.weight.binarize(k, ctx, enc)?;
                    let shape = LinearShape::new(n, l.in_features, l.out_features);
                    k.linear.forward(
                        ctx,
                        enc,
                        &shape,
                        input,
                        l.weight.effective(),
                        l.bias.as_ref().map(|b| &b.value),
                        output,
                    )?;
                }
                _ => {
                    return Err(
                        GpuError::shape("network", "workspace does not match the layers").into(),
                    )
                }
            }
        }
        let kind = match self.config.loss {
            LossConfig::MeanOverTime => LossKind::MeanOverTime,
            LossConfig::MeanLogits => LossKind::MeanLogits,
        };
        let last = self.layers.len() - 1;
        let params = LossParams::new(kind, t, batch, self.config.classes)
            .with_slot(if train { TRAIN_SLOT } else { EVAL_SLOT }, true);
        k.loss.dispatch(
            ctx,
            enc,
            &params,
            &ws.outputs[last],
            &ws.labels,
            &ws.grads[last],
            &ws.sample_loss,
            &self.loss_summary,
        )?;
        Ok(())
    }

    /// Eval-mode encoder conv on one frame per sample: conv and BN on `[B, ...]`, then the LIF
    /// reads the same frame at every timestep (see [`Workspace::frame`]).
    #[allow(clippy::too_many_arguments)]
    fn forward_encoder_frame(
        &self,
        ctx: &GpuContext,
        enc: &mut wgpu::CommandEncoder,
        u: &ConvUnit,
        cw: &ConvWs,
        frame: &FrameWs,
        spikes: &GpuBuffer<f32>,
        t: usize,
        batch: usize,
    ) -> Result<(), NetworkError> {
        let k = &self.kernels;
        let [c, h, w] = u.output;
        u.weight.binarize(k, ctx, enc)?;
        let shape = ConvShape { batch, ..cw.shape };
        let cols = ws_cols(self, batch)?;
        k.conv.forward(
            ctx,
            enc,
            &shape,
            &frame.input,
            u.weight.effective(),
            cols,
            &frame.conv_out,
        )?;
        let bn_shape = BatchNormShape::new(batch, c, h * w);
        k.bn.forward_eval(
            ctx,
            enc,
            bn_shape,
            &frame.conv_out,
            &u.bn.state(),
            &frame.bn_out,
        )?;
        let lif = LifParams {
            broadcast_input: 1,
            ..LifParams::new(&u.lif, t, batch * c * h * w)
        };
        k.lif_forward
            .dispatch(ctx, enc, &lif, &frame.bn_out, spikes, &cw.membrane)?;
        Ok(())
    }

    /// True when an eval forward at `batch` takes the single-frame encoder path for the batch
    /// uploaded last.
    pub fn uses_single_frame_encoder(&self, batch: usize) -> bool {
        self.frame_broadcast
            && self
                .workspaces
                .get(&batch)
                .and_then(|ws| ws.frame.as_ref())
                .is_some_and(|f| f.valid.get())
    }

    /// Turns the eval-mode single-frame encoder path on or off (tests compare both).
    pub fn set_frame_broadcast(&mut self, enabled: bool) {
        self.frame_broadcast = enabled;
    }

    #[allow(clippy::too_many_arguments)]
    fn forward_conv(
        &self,
        ctx: &GpuContext,
        enc: &mut wgpu::CommandEncoder,
        u: &ConvUnit,
        cw: &ConvWs,
        input: &GpuBuffer<f32>,
        spikes: &GpuBuffer<f32>,
        t: usize,
        batch: usize,
        train: bool,
    ) -> Result<(), NetworkError> {
        let k = &self.kernels;
        let [c, h, w] = u.output;
        let n = t * batch;
        let bn_shape = BatchNormShape::new(n, c, h * w);
        u.weight.binarize(k, ctx, enc)?;
        match (&u.popcount, &cw.packed_input, &u.weight.binary) {
            (Some(packed_w), Some(packed_s), Some(b)) => {
                k.pack_weights.dispatch(
                    ctx,
                    enc,
                    &PackWeightsParams::for_conv(&cw.shape),
                    &u.weight.param.value,
                    packed_w,
                )?;
                k.pack_spikes.dispatch(
                    ctx,
                    enc,
                    &PackSpikesParams::for_conv(&cw.shape),
                    input,
                    packed_s,
                )?;
                k.popcount.dispatch(
                    ctx,
                    enc,
                    &PopcountConvParams::new(&cw.shape),
                    packed_s,
                    packed_w,
                    &b.gamma,
                    &cw.conv_out,
                )?;
            }
            _ => k.conv.forward(
                ctx,
                enc,
                &cw.shape,
                input,
                u.weight.effective(),
                ws_cols(self, batch)?,
                &cw.conv_out,
            )?,
        }
        let saved = BatchNormSaved {
            mean: &cw.mean,
            invstd: &cw.invstd,
        };
        if train {
            k.bn.forward_train(
                ctx,
                enc,
                bn_shape,
                &cw.conv_out,
                &u.bn.state(),
                &saved,
                &cw.bn_out,
            )?;
        } else {
            k.bn.forward_eval(ctx, enc, bn_shape, &cw.conv_out, &u.bn.state(), &cw.bn_out)?;
        }
        let gated = match (&u.agmm, &cw.agmm_out) {
            (Some(a), Some((y, e))) => {
                k.agmm_forward.dispatch(
                    ctx,
                    enc,
                    &AgmmParams::new(a, t, batch * c * h * w),
                    &cw.bn_out,
                    y,
                    e,
                )?;
                y
            }
            _ => &cw.bn_out,
        };
        let elements = ElementwiseParams::new(n * c * h * w);
        let lif_in = match (u.shortcut, &cw.pre, &u.downsample, &cw.down) {
            (Shortcut::Identity, Some(pre), _, _) => {
                k.add.dispatch(ctx, enc, &elements, gated, input, pre)?;
                pre
            }
            (Shortcut::Downsample, Some(pre), Some(d), Some(dw)) => {
                let [ci, hi, wi] = u.input;
                d.pool
                    .forward(ctx, enc, [n, ci, hi, wi], input, &dw.pooled)?;
                d.weight.binarize(k, ctx, enc)?;
                k.conv.forward(
                    ctx,
                    enc,
                    &dw.shape,
                    &dw.pooled,
                    d.weight.effective(),
                    ws_cols(self, batch)?,
                    &dw.conv_out,
                )?;
                let saved = BatchNormSaved {
                    mean: &dw.mean,
                    invstd: &dw.invstd,
                };
                if train {
                    k.bn.forward_train(
                        ctx,
                        enc,
                        bn_shape,
                        &dw.conv_out,
                        &d.bn.state(),
                        &saved,
                        &dw.bn_out,
                    )?;
                } else {
                    k.bn.forward_eval(ctx, enc, bn_shape, &dw.conv_out, &d.bn.state(), &dw.bn_out)?;
                }
                k.add
                    .dispatch(ctx, enc, &elements, gated, &dw.bn_out, pre)?;
                pre
            }
            _ => gated,
        };
        let lif = LifParams::new(&u.lif, t, batch * c * h * w);
        k.lif_forward
            .dispatch(ctx, enc, &lif, lif_in, spikes, &cw.membrane)?;
        if train {
            k.moments.dispatch(
                ctx,
                enc,
                spikes,
                &self.ws(batch)?.moment_partials,
                &self.moment_summary,
                u.rate_slot,
                true,
            )?;
        }
        Ok(())
    }

    fn ws(&self, batch: usize) -> Result<&Workspace, NetworkError> {
        self.workspaces.get(&batch).ok_or_else(|| {
            NetworkError::Batch(format!("no batch of {batch} uploaded before recording"))
        })
    }

    /// Records the backward pass for the batch whose forward was recorded with `train = true`.
    pub fn record_backward(
        &self,
        ctx: &GpuContext,
        enc: &mut wgpu::CommandEncoder,
        batch: usize,
    ) -> Result<(), NetworkError> {
        let ws = self.ws(batch)?;
        let k = &self.kernels;
        let t = self.config.timesteps;
        let n = t * batch;
        for i in (0..self.layers.len()).rev() {
            let input = if i == 0 {
                &ws.input
            } else {
                &ws.outputs[i - 1]
            };
            // Gradient w.r.t. this layer's input lives in the previous layer's grad buffer.
            let g_input = if i == 0 { None } else { Some(&ws.grads[i - 1]) };
            let g_output = &ws.grads[i];
            match (&self.layers[i], &ws.layers[i]) {
                (Layer::Linear(l), LayerWs::Linear) => {
                    let shape = LinearShape::new(n, l.in_features, l.out_features);
                    k.linear.backward_weight(
                        ctx,
                        enc,
                        &shape,
                        input,
                        g_output,
                        l.weight.grad_target(),
                        l.bias.as_ref().map(|b| &b.grad),
                    )?;
                    self.straight_through(ctx, enc, &l.weight, &ws.moment_partials)?;
                    if let Some(g_in) = g_input {
                        k.linear.backward_input(
                            ctx,
                            enc,
                            &shape,
                            g_output,
                            l.weight.effective(),
                            g_in,
                        )?;
                    }
                }
                (Layer::Pool(p), LayerWs::Pool { argmax }) => {
                    let Some(g_in) = g_input else { continue };
                    let [c, h, w] = p.input;
                    match (&p.max, &p.avg, argmax) {
                        (Some(max), _, Some(argmax)) => {
                            max.backward(ctx, enc, [n, c, h, w], argmax, g_output, g_in)?
                        }
                        (_, Some(avg), _) => {
                            avg.backward(ctx, enc, [n, c, h, w], g_output, g_in)?
                        }
                        _ => {
                            return Err(
                                GpuError::shape("network", "pool layer without kernel").into()
                            )
                        }
                    }
                }
                (Layer::Conv(u), LayerWs::Conv(cw)) => {
                    self.backward_conv(ctx, enc, u, cw, input, g_output, g_input, t, batch)?;
                }
                _ => {
                    return Err(
                        GpuError::shape("network", "workspace does not match the layers").into(),
                    )
                }
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn backward_conv(
        &self,
        ctx: &GpuContext,
        enc: &mut wgpu::CommandEncoder,
        u: &ConvUnit,
        cw: &ConvWs,
        input: &GpuBuffer<f32>,
        g_spikes: &GpuBuffer<f32>,
        g_input: Option<&GpuBuffer<f32>>,
        t: usize,
        batch: usize,
    ) -> Result<(), NetworkError> {
        let k = &self.kernels;
        let [c, h, w] = u.output;
        let n = t * batch;
        let cols = ws_cols(self, batch)?;
        let bn_shape = BatchNormShape::new(n, c, h * w);
        let lif = LifParams::new(&u.lif, t, batch * c * h * w);
        k.lif_backward
            .dispatch(ctx, enc, &lif, &cw.membrane, g_spikes, &cw.g_pre)?;
        let g_bn_out = match (&u.agmm, &cw.agmm_out, &cw.g_bn_out) {
            (Some(a), Some((_, e)), Some(g)) => {
                k.agmm_backward.dispatch(
                    ctx,
                    enc,
                    &AgmmParams::new(a, t, batch * c * h * w),
                    &cw.bn_out,
                    e,
                    &cw.g_pre,
                    g,
                )?;
                g
            }
            _ => &cw.g_pre,
        };
        let saved = BatchNormSaved {
            mean: &cw.mean,
            invstd: &cw.invstd,
        };
        k.bn.backward(
            ctx,
            enc,
            bn_shape,
            &cw.conv_out,
            g_bn_out,
            &saved,
            &u.bn.weight.value,
            &u.bn.weight.grad,
            &u.bn.bias.grad,
            &cw.g_conv_out,
        )?;
        k.conv.backward_weight(
            ctx,
            enc,
            &cw.shape,
            input,
            &cw.g_conv_out,
            cols,
            u.weight.grad_target(),
        )?;
        self.straight_through(ctx, enc, &u.weight, &self.ws(batch)?.moment_partials)?;
        let Some(g_in) = g_input else { return Ok(()) };
        k.conv.backward_input(
            ctx,
            enc,
            &cw.shape,
            &cw.g_conv_out,
            u.weight.effective(),
            cols,
            g_in,
        )?;
        let [ci, hi, wi] = u.input;
        let in_elements = ElementwiseParams::new(n * ci * hi * wi);
        match (u.shortcut, &u.downsample, &cw.down) {
            (Shortcut::Identity, _, _) => {
                k.accumulate
                    .dispatch(ctx, enc, &in_elements, &cw.g_pre, g_in)?
            }
            (Shortcut::Downsample, Some(d), Some(dw)) => {
                let saved = BatchNormSaved {
                    mean: &dw.mean,
                    invstd: &dw.invstd,
                };
                k.bn.backward(
                    ctx,
                    enc,
                    bn_shape,
                    &dw.conv_out,
                    &cw.g_pre,
                    &saved,
                    &d.bn.weight.value,
                    &d.bn.weight.grad,
                    &d.bn.bias.grad,
                    &dw.g_conv_out,
                )?;
                k.conv.backward_weight(
                    ctx,
                    enc,
                    &dw.shape,
                    &dw.pooled,
                    &dw.g_conv_out,
                    cols,
                    d.weight.grad_target(),
                )?;
                self.straight_through(ctx, enc, &d.weight, &self.ws(batch)?.moment_partials)?;
                k.conv.backward_input(
                    ctx,
                    enc,
                    &dw.shape,
                    &dw.g_conv_out,
                    d.weight.effective(),
                    cols,
                    &dw.g_pooled,
                )?;
                d.pool
                    .backward(ctx, enc, [n, ci, hi, wi], &dw.g_pooled, &dw.g_input)?;
                k.accumulate
                    .dispatch(ctx, enc, &in_elements, &dw.g_input, g_in)?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Clipped STE from dL/dW_b into the latent gradient, plus its gradient moments.
    fn straight_through(
        &self,
        ctx: &GpuContext,
        enc: &mut wgpu::CommandEncoder,
        weight: &Weight,
        partials: &GpuBuffer<f32>,
    ) -> Result<(), NetworkError> {
        let Some(b) = &weight.binary else {
            return Ok(());
        };
        let k = &self.kernels;
        k.binarize_backward.dispatch(
            ctx,
            enc,
            &weight.binarize_params(),
            &weight.param.value,
            &b.gamma,
            &b.grad_b,
            &weight.param.grad,
        )?;
        k.moments.dispatch(
            ctx,
            enc,
            &weight.param.grad,
            partials,
            &self.moment_summary,
            b.grad_slot,
            true,
        )?;
        Ok(())
    }

    /// Records one optimizer step on every parameter at learning rate `lr`.
    pub fn record_optimizer(
        &mut self,
        ctx: &GpuContext,
        enc: &mut wgpu::CommandEncoder,
        optimizer: &Optimizer,
        lr: f32,
    ) -> Result<(), NetworkError> {
        self.step += 1;
        let k = &self.kernels;
        for p in self.params() {
            match optimizer {
                Optimizer::Sgd(cfg) => {
                    let wd = if p.decay { cfg.weight_decay } else { 0.0 };
                    k.sgd.dispatch(
                        ctx,
                        enc,
                        &SgdParams::new(cfg, p.len(), lr, wd),
                        &p.value,
                        &p.grad,
                        &p.state_a,
                    )?;
                }
                Optimizer::Adam(cfg) => {
                    let wd = if p.decay { cfg.weight_decay } else { 0.0 };
                    let params = AdamParams::new(
                        cfg,
                        p.len(),
                        self.step.min(u32::MAX as u64) as u32,
                        lr,
                        wd,
                    );
                    k.adam
                        .dispatch(ctx, enc, &params, &p.value, &p.grad, &p.state_a, &p.state_b)?;
                }
            }
        }
        Ok(())
    }

    /// Records the sign-flip count since the last snapshot and takes a new snapshot.
    pub fn record_flip_count(
        &self,
        ctx: &GpuContext,
        enc: &mut wgpu::CommandEncoder,
    ) -> Result<(), NetworkError> {
        let k = &self.kernels;
        for weight in self.weights() {
            let Some(b) = &weight.binary else { continue };
            k.pack_signs.dispatch(
                ctx,
                enc,
                &PackSignsParams::new(weight.param.len()),
                &weight.param.value,
                &b.current,
            )?;
            k.flips.dispatch(
                ctx,
                enc,
                &FlipParams::new(weight.param.len(), b.flip_slot),
                &b.snapshot,
                &b.current,
                &self.flip_counts,
            )?;
            enc.copy_buffer_to_buffer(
                b.current.raw(),
                0,
                b.snapshot.raw(),
                0,
                b.current.raw().size(),
            );
        }
        Ok(())
    }

    fn snapshot_signs(
        &self,
        ctx: &GpuContext,
        enc: &mut wgpu::CommandEncoder,
    ) -> Result<(), NetworkError> {
        for weight in self.weights() {
            if let Some(b) = &weight.binary {
                self.kernels.pack_signs.dispatch(
                    ctx,
                    enc,
                    &PackSignsParams::new(weight.param.len()),
                    &weight.param.value,
                    &b.snapshot,
                )?;
            }
        }
        Ok(())
    }

    /// Zeroes the epoch summaries (loss, moments, flip counts).
    pub fn reset_metrics(&self, ctx: &GpuContext) -> Result<(), NetworkError> {
        self.loss_summary.write(ctx, &[LossSummary::default(); 2])?;
        self.moment_summary
            .write(ctx, &vec![0.0; self.moment_summary.len()])?;
        self.flip_counts
            .write(ctx, &vec![0; self.flip_counts.len()])?;
        Ok(())
    }

    /// Zeroes only the eval loss summary, so an evaluation pass is not mixed with eval-mode
    /// forwards recorded earlier in the epoch (e.g. the desktop app's single-sample probes).
    pub fn reset_eval_summary(&self, ctx: &GpuContext) {
        let offset = (EVAL_SLOT * std::mem::size_of::<LossSummary>()) as u64;
        ctx.queue.write_buffer(
            self.loss_summary.raw(),
            offset,
            bytemuck::bytes_of(&LossSummary::default()),
        );
    }

    /// Starts a non-blocking readback of the epoch summaries (loss, moments, flip counts);
    /// poll it with [`MetricsReadback::try_take`] on later frames.
    pub fn read_metrics_async(&self, ctx: &GpuContext) -> MetricsReadback {
        MetricsReadback {
            loss: (self.loss_summary.read_back(ctx), None),
            moments: (self.moment_summary.read_back(ctx), None),
            flips: (self.flip_counts.read_back(ctx), None),
        }
    }

    /// Names of the metric-summary moment slots and what each measures, in slot order.
    pub fn moment_slots(&self) -> &[(String, MomentKind)] {
        &self.slots.moments
    }

    /// Reads the epoch summaries (native; blocks on the device).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn read_metrics(&self, ctx: &GpuContext) -> Result<EpochMetrics, NetworkError> {
        let loss = self.loss_summary.read_blocking(ctx)?;
        let moments = self.moment_summary.read_blocking(ctx)?;
        let flips = self.flip_counts.read_blocking(ctx)?;
        Ok(self.metrics_from(&loss, &moments, &flips))
    }

    /// Builds [`EpochMetrics`] from the raw summary buffers.
    pub fn metrics_from(
        &self,
        loss: &[LossSummary],
        moments: &[f32],
        flips: &[u32],
    ) -> EpochMetrics {
        let mut m = EpochMetrics {
            train: loss[TRAIN_SLOT],
            eval: loss[EVAL_SLOT],
            ..Default::default()
        };
        for (slot, (name, kind)) in self.slots.moments.iter().enumerate() {
            let (sum, sumsq, count) = (
                moments[3 * slot] as f64,
                moments[3 * slot + 1] as f64,
                moments[3 * slot + 2] as f64,
            );
            let mean = if count > 0.0 { sum / count } else { 0.0 };
            match kind {
                MomentKind::FiringRate => m.firing_rates.push((name.clone(), mean)),
                MomentKind::Gradient => {
                    let var = if count > 0.0 {
                        (sumsq / count - mean * mean).max(0.0)
                    } else {
                        0.0
                    };
                    m.grad_stats.push((name.clone(), mean, var));
                }
            }
        }
        for weight in self.weights() {
            if let Some(b) = &weight.binary {
                let name = self.slots.flips[b.flip_slot].clone();
                m.flips
                    .push((name, flips[b.flip_slot] as u64, weight.param.len() as u64));
            }
        }
        m
    }

    /// Names and shapes of every tensor a checkpoint of this network holds.
    pub fn tensor_specs(&self, with_optimizer: bool) -> Vec<(String, Vec<usize>)> {
        let mut out: Vec<(String, Vec<usize>)> = self
            .params()
            .iter()
            .map(|p| (p.name.clone(), p.shape.clone()))
            .collect();
        for bn in self.batch_norms() {
            out.push((
                format!("{}.running_mean", bn.running_name),
                vec![bn.channels],
            ));
            out.push((
                format!("{}.running_var", bn.running_name),
                vec![bn.channels],
            ));
        }
        if with_optimizer {
            for p in self.params() {
                out.push((format!("optim.{}.a", p.name), p.shape.clone()));
                out.push((format!("optim.{}.b", p.name), p.shape.clone()));
            }
        }
        out
    }

    /// All tensors with their buffers, in [`Network::tensor_specs`] order.
    fn tensor_buffers(&self, with_optimizer: bool) -> Vec<&GpuBuffer<f32>> {
        let mut out: Vec<&GpuBuffer<f32>> = self.params().iter().map(|p| &p.value).collect();
        for bn in self.batch_norms() {
            out.push(&bn.running_mean);
            out.push(&bn.running_var);
        }
        if with_optimizer {
            for p in self.params() {
                out.push(&p.state_a);
                out.push(&p.state_b);
            }
        }
        out
    }

    /// Reads every tensor into a checkpoint (native; blocks). Metadata: config, step.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn to_checkpoint(
        &self,
        ctx: &GpuContext,
        with_optimizer: bool,
    ) -> Result<Checkpoint, NetworkError> {
        let mut ck = Checkpoint::default();
        for ((name, shape), buffer) in self
            .tensor_specs(with_optimizer)
            .into_iter()
            .zip(self.tensor_buffers(with_optimizer))
        {
            ck.tensors.push(crate::checkpoint::NamedTensor {
                name,
                shape,
                data: buffer.read_blocking(ctx)?,
            });
        }
        ck.metadata
            .insert("model_config".into(), self.config.to_json());
        ck.metadata.insert("step".into(), self.step.to_string());
        ck.metadata.insert("format".into(), "bitspike-1".into());
        Ok(ck)
    }

    /// Loads parameters (and optimizer state when present) from a checkpoint, refusing one that
    /// does not fit this model with the first mismatching tensor named.
    pub fn load_checkpoint(
        &mut self,
        ctx: &GpuContext,
        ck: &Checkpoint,
    ) -> Result<(), NetworkError> {
        let with_optimizer = ck.tensors.iter().any(|t| t.name.starts_with("optim."));
        ck.check_fits(&self.tensor_specs(with_optimizer))?;
        for ((name, _), buffer) in self
            .tensor_specs(with_optimizer)
            .into_iter()
            .zip(self.tensor_buffers(with_optimizer))
        {
            if let Some(t) = ck.get(&name) {
                buffer.write(ctx, &t.data)?;
            }
        }
        if let Some(step) = ck.metadata.get("step").and_then(|s| s.parse().ok()) {
            self.step = step;
        }
        let mut enc = ctx.encoder("sign snapshot");
        self.snapshot_signs(ctx, &mut enc)?;
        ctx.submit(enc);
        Ok(())
    }

    /// The logits buffer `[T, B, classes]` of the last recorded forward at batch size `batch`.
    pub fn logits(&self, batch: usize) -> Result<&GpuBuffer<f32>, NetworkError> {
        let ws = self.ws(batch)?;
        ws.outputs
            .last()
            .ok_or_else(|| NetworkError::Batch("network has no layers".into()))
    }

    /// The output buffer of layer `index` (spikes for conv units) at batch size `batch`.
    pub fn layer_output(
        &self,
        batch: usize,
        index: usize,
    ) -> Result<&GpuBuffer<f32>, NetworkError> {
        self.ws(batch)?
            .outputs
            .get(index)
            .ok_or_else(|| NetworkError::Batch(format!("no layer {index}")))
    }

    /// The conv unit at layer `index` and its workspace at batch size `batch`.
    fn conv_ws(&self, batch: usize, index: usize) -> Result<&ConvWs, NetworkError> {
        match self.ws(batch)?.layers.get(index) {
            Some(LayerWs::Conv(cw)) => Ok(cw),
            _ => Err(NetworkError::Batch(format!(
                "layer {index} is not a spiking conv unit"
            ))),
        }
    }

    /// Membrane potential `h[t]` (`[T*B, C, H, W]`, charged, before the reset) of the spiking
    /// layer `index` in the last recorded forward at batch size `batch`.
    pub fn layer_membrane(
        &self,
        batch: usize,
        index: usize,
    ) -> Result<&GpuBuffer<f32>, NetworkError> {
        Ok(&self.conv_ws(batch, index)?.membrane)
    }

    /// AGMM running expectation `E[t]` (`[T*B, C, H, W]`) of layer `index`; `None` when the
    /// layer has no AGMM (full-precision layers, or mode `off`).
    pub fn layer_agmm_expectation(
        &self,
        batch: usize,
        index: usize,
    ) -> Result<Option<&GpuBuffer<f32>>, NetworkError> {
        let has_agmm = matches!(self.layers.get(index), Some(Layer::Conv(u)) if u.agmm.is_some());
        if !has_agmm {
            return Ok(None);
        }
        Ok(match &self.conv_ws(batch, index)?.agmm_out {
            Some((_, e)) => Some(e),
            _ => None,
        })
    }

    /// Every binary weight with its latent tensor, gamma and sign snapshot (inspection).
    pub fn binary_weights(&self) -> Vec<&Weight> {
        self.weights()
            .into_iter()
            .filter(|w| w.binary.is_some())
            .collect()
    }

    /// Starts reading every tensor for a checkpoint without waiting (the UI and the web use
    /// this; [`Network::to_checkpoint`] is the blocking native form).
    pub fn checkpoint_async(&self, ctx: &GpuContext, with_optimizer: bool) -> PendingCheckpoint {
        let mut metadata = std::collections::BTreeMap::new();
        metadata.insert("model_config".into(), self.config.to_json());
        metadata.insert("step".into(), self.step.to_string());
        metadata.insert("format".into(), "bitspike-1".into());
        PendingCheckpoint {
            parts: self
                .tensor_specs(with_optimizer)
                .into_iter()
                .zip(self.tensor_buffers(with_optimizer))
                .map(|((name, shape), buffer)| (name, shape, buffer.read_back(ctx), None))
                .collect(),
            metadata,
        }
    }

    /// Gradient buffer of a parameter (tests and inspection).
    pub fn param(&self, name: &str) -> Option<&Param> {
        self.params().into_iter().find(|p| p.name == name)
    }

    /// Batch size of each workspace built so far.
    pub fn workspace_batches(&self) -> Vec<usize> {
        let mut b: Vec<usize> = self.workspaces.values().map(|w| w.batch).collect();
        b.sort();
        b
    }
}

fn ws_cols(net: &Network, batch: usize) -> Result<&GpuBuffer<f32>, NetworkError> {
    Ok(&net.ws(batch)?.cols)
}
