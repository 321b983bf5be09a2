//! The layer kinds of a BSNN, one module each: [`conv_unit`] (conv -> BN -> [AGMM] ->
//! [+ shortcut] -> LIF), [`pool`] (max / average / global average) and [`linear`] (the
//! readout). Each kind owns its parameters, its workspace type and its recorded forward and
//! backward; [`Layer`] only dispatches to them.

pub mod conv_unit;
pub mod gather;
pub mod linear;
pub mod pool;

use crate::gpu::{GpuBuffer, GpuContext, GpuError};
use crate::kernels::agmm::AgmmConfig;
use crate::kernels::lif::LifConfig;
use crate::kernels::pool::{AvgPool2d, MaxPool2d, PoolWindow};
use crate::kernels::popcount::SpikeArea;
use crate::model::{LayerConfig, PlannedLayer, PoolKind};
use crate::rng::SeededRng;

use super::metrics::{MomentKind, Slots};
use super::param::Param;
use super::recorder::Recorder;
use super::weight::{BnParams, Weight};

pub use conv_unit::{ConvSpec, ConvUnit, ConvWs, Downsample};
pub use linear::LinearLayer;
pub use pool::{PoolLayer, PoolWs, Pooling};

/// One layer of the network.
#[allow(clippy::large_enum_variant)] // a handful per network, never moved in hot paths
pub enum Layer {
    Conv(ConvUnit),
    Pool(PoolLayer),
    Linear(LinearLayer),
}

/// A layer's activations for one batch size; built by [`Layer::workspace`], so its kind
/// always matches the layer's.
pub enum LayerWs {
    Conv(Box<ConvWs>),
    Pool(PoolWs),
    Linear,
}

/// Buffers one forward or backward shares between all layers.
pub struct Scratch {
    /// im2col columns (sized for the largest conv, chunked under the binding limit).
    pub cols: GpuBuffer<f32>,
    /// Partial sums of the moments kernel.
    pub moment_partials: GpuBuffer<f32>,
    /// Gradients and forward intermediates live only within one layer's pass.
    pub transients: super::transients::Transients,
    /// Copies for time-looped passes over tensors larger than one binding ([`gather`]).
    pub gather: gather::GatherScratch,
    /// Per-channel partial sums of a batch norm split across bindings: `[C_max]` and
    /// `[2 C_max]` (the statistics' shift and sums; the backward's two gradient sums).
    pub bn_sums: (GpuBuffer<f32>, GpuBuffer<f32>),
}

impl Scratch {
    /// [`Scratch::bn_sums`] for `channels` channels: `[C]` and `[2C]`.
    pub fn bn_parts(&self, channels: usize) -> Result<(GpuBuffer<f32>, GpuBuffer<f32>), GpuError> {
        Ok((
            self.bn_sums.0.alias(channels)?,
            self.bn_sums.1.alias(2 * channels)?,
        ))
    }
}

/// What a forward pass records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pass {
    /// Batch statistics, running-stat updates, firing-rate moments and every intermediate the
    /// backward reads.
    Train,
    /// Running statistics, and only what the next layer and the loss read: a conv unit's BN,
    /// AGMM, shortcut and LIF run as one fused pass writing the spikes alone.
    Eval,
    /// Eval that also keeps each conv unit's membranes and AGMM expectations for the app's
    /// probes (the unfused chain; same spikes and logits as [`Pass::Eval`]).
    Inspect,
}

/// A layer's forward inputs.
#[derive(Clone, Copy)]
pub struct Forward<'a> {
    pub input: &'a GpuBuffer<f32>,
    pub output: &'a GpuBuffer<f32>,
    pub timesteps: usize,
    pub batch: usize,
    /// Batch statistics, running-stat updates and moments (training) or running stats.
    pub train: bool,
    /// The eval-mode single-frame encoder path may be used.
    pub single_frame: bool,
    /// Eval only: keep the intermediates an inspection reads ([`Pass::Inspect`]).
    pub inspect: bool,
    /// [`Pass::Eval`] only: the next layer reads this layer's spikes bit-packed (32 channels a
    /// word) from this buffer; they go there instead of `output`, which is left as it was.
    pub packed_output: Option<&'a GpuBuffer<u32>>,
    /// [`Pass::Eval`] only: the previous layer wrote this layer's input packed into the buffer
    /// this layer packs its input into (a popcount conv) or pools from (a max pool).
    pub packed_input: bool,
}

/// A layer's backward inputs.
#[derive(Clone, Copy)]
pub struct Backward<'a> {
    /// The layer's forward input.
    pub input: &'a GpuBuffer<f32>,
    pub g_output: &'a GpuBuffer<f32>,
    /// Where dL/d(input) goes; `None` for the first layer.
    pub g_input: Option<&'a GpuBuffer<f32>>,
    pub timesteps: usize,
    pub batch: usize,
}

/// Model-wide settings a layer is built with.
pub struct BuildSettings {
    pub agmm: Option<AgmmConfig>,
    pub lif: LifConfig,
    pub pooling: PoolKind,
}

impl Layer {
    /// Builds the layer planned as `planned`. `spike_input` says whether its input is spikes
    /// in {0, 1} or the mean of a few (`Some(area)`; see [`crate::model::spikes_after`]).
    pub fn new(
        ctx: &GpuContext,
        planned: &PlannedLayer,
        settings: &BuildSettings,
        spike_input: Option<SpikeArea>,
        rng: &mut SeededRng,
        slots: &mut Slots,
    ) -> Result<Self, GpuError> {
        let name = planned.name.as_str();
        Ok(match &planned.config {
            LayerConfig::Conv {
                kernel,
                stride,
                padding,
                binary,
                shortcut,
                ..
            } => {
                let spec = ConvSpec {
                    name,
                    input: planned.input,
                    output: planned.output,
                    kernel: *kernel,
                    stride: *stride,
                    padding: *padding,
                    binary: *binary,
                    shortcut: *shortcut,
                    spike_area: spike_input,
                    agmm: settings.agmm,
                    lif: settings.lif,
                };
                Layer::Conv(ConvUnit::new(ctx, spec, rng, slots)?)
            }
            LayerConfig::Pool { size } => {
                let window = PoolWindow::square(*size, *size);
                let pooling = match settings.pooling {
                    PoolKind::Max => Pooling::Max(MaxPool2d::new(ctx, window)?),
                    // Averaging spikes gives fractions, k / area (model::spikes_after).
                    PoolKind::Avg => Pooling::Avg(AvgPool2d::new(ctx, window)?),
                };
                Layer::Pool(pool_layer(planned, pooling, slots))
            }
            LayerConfig::GlobalAvgPool => {
                let window = PoolWindow::global(planned.input[1], planned.input[2]);
                let pooling = Pooling::Avg(AvgPool2d::new(ctx, window)?);
                Layer::Pool(pool_layer(planned, pooling, slots))
            }
            LayerConfig::Linear {
                out_features,
                binary,
                bias,
            } => {
                let in_features = planned.input.iter().product();
                Layer::Linear(LinearLayer::new(
                    ctx,
                    name,
                    (in_features, *out_features),
                    *binary,
                    *bias,
                    rng,
                    slots,
                )?)
            }
        })
    }

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
        match self {
            Layer::Conv(c) => c.output,
            Layer::Pool(p) => p.output,
            Layer::Linear(l) => [l.out_features, 1, 1],
        }
    }

    /// Every trainable tensor, in checkpoint order.
    pub fn params(&self) -> Vec<&Param> {
        match self {
            Layer::Conv(c) => c.params(),
            Layer::Pool(_) => Vec::new(),
            Layer::Linear(l) => l.params(),
        }
    }

    /// Conv and linear weights, binary or not.
    pub fn weights(&self) -> Vec<&Weight> {
        match self {
            Layer::Conv(c) => c.weights(),
            Layer::Pool(_) => Vec::new(),
            Layer::Linear(l) => vec![&l.weight],
        }
    }

    pub fn batch_norms(&self) -> Vec<&BnParams> {
        match self {
            Layer::Conv(c) => c.batch_norms(),
            _ => Vec::new(),
        }
    }

    /// The layer's workspace for `timesteps * batch` samples and the im2col scratch it needs;
    /// `first_direct`: the first layer under direct encoding (single-frame encoder buffers);
    /// `training`: with what a backward reads; `packed_input`: a max pool that receives its
    /// input bit-packed in eval (see [`packed_flow`]). Shared buffers are declared in
    /// `transients`.
    #[allow(clippy::too_many_arguments)]
    pub fn workspace(
        &self,
        ctx: &GpuContext,
        timesteps: usize,
        batch: usize,
        first_direct: bool,
        training: bool,
        packed_input: bool,
        transients: &mut super::transients::Transients,
    ) -> Result<(LayerWs, usize), GpuError> {
        Ok(match self {
            Layer::Conv(c) => {
                let (ws, cols) =
                    c.workspace(ctx, timesteps, batch, first_direct, training, transients)?;
                (LayerWs::Conv(Box::new(ws)), cols)
            }
            Layer::Pool(p) => (
                LayerWs::Pool(p.workspace(ctx, timesteps * batch, packed_input)?),
                1,
            ),
            Layer::Linear(_) => (LayerWs::Linear, 1),
        })
    }

    pub fn forward(
        &self,
        rec: &mut Recorder,
        ws: &LayerWs,
        scratch: &Scratch,
        io: Forward,
    ) -> Result<(), GpuError> {
        match (self, ws) {
            (Layer::Conv(c), LayerWs::Conv(w)) => c.forward(rec, w, scratch, io),
            (Layer::Pool(p), LayerWs::Pool(w)) => p.forward(rec, w, scratch, io),
            (Layer::Linear(l), LayerWs::Linear) => l.forward(rec, io),
            _ => Err(foreign_workspace(self.name())),
        }
    }

    pub fn backward(
        &self,
        rec: &mut Recorder,
        ws: &LayerWs,
        scratch: &Scratch,
        io: Backward,
    ) -> Result<(), GpuError> {
        match (self, ws) {
            (Layer::Conv(c), LayerWs::Conv(w)) => c.backward(rec, w, scratch, io),
            (Layer::Pool(p), LayerWs::Pool(w)) => p.backward(rec, w, io),
            (Layer::Linear(l), LayerWs::Linear) => l.backward(rec, scratch, io),
            _ => Err(foreign_workspace(self.name())),
        }
    }
}

/// Which layers hand their spikes to the next layer bit-packed in [`Pass::Eval`]: a conv
/// unit followed by a popcount conv unit, or by a max pool and then a popcount conv unit (the
/// pool then ORs packed words), where that conv has no shortcut (a shortcut reads its input
/// as floats). The unit writes 1 bit per spike instead of an f32, the pool reads and writes
/// 32x less, and the conv skips `pack_spikes`: the same bits `pack_spikes` would have made.
pub fn packed_flow(layers: &[Layer]) -> Vec<bool> {
    let reads_packed = |l: Option<&Layer>| matches!(l, Some(Layer::Conv(c)) if c.popcount.is_some() && c.input_area == SpikeArea::SPIKES && c.shortcut == crate::model::Shortcut::None);
    let max_pool = |l: Option<&Layer>| matches!(l, Some(Layer::Pool(p)) if matches!(p.pooling, Pooling::Max(_)));
    let mut flow = vec![false; layers.len()];
    for i in 0..layers.len() {
        if !matches!(layers[i], Layer::Conv(_)) {
            continue;
        }
        if reads_packed(layers.get(i + 1)) {
            flow[i] = true;
        } else if max_pool(layers.get(i + 1)) && reads_packed(layers.get(i + 2)) {
            flow[i] = true;
            flow[i + 1] = true;
        }
    }
    flow
}

/// Workspaces carry their network's id and are checked before recording, so this only
/// guards against a bug, never user input.
fn foreign_workspace(layer: &str) -> GpuError {
    GpuError::shape(
        "network",
        format!("{layer}: workspace of another layer kind"),
    )
}

fn pool_layer(planned: &PlannedLayer, pooling: Pooling, slots: &mut Slots) -> PoolLayer {
    PoolLayer {
        name: planned.name.clone(),
        pooling,
        rate_slot: slots.take_moment(&planned.name, MomentKind::FiringRate),
        input: planned.input,
        output: planned.output,
    }
}
