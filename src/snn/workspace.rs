//! Everything that depends on the batch size: the input, each layer's output and gradient,
//! each layer's own workspace, and the scratch the layers share. The caller holds a
//! [`Workspace`] per batch size it uses (a [`Workspaces`] cache) and passes it to every
//! recording call.

use crate::gpu::{GpuBuffer, GpuContext};
use crate::kernels::fused::BnAgmmLifTrain;
use crate::kernels::stats::Moments;

use super::layers::gather::GatherScratch;
use super::layers::{LayerWs, Scratch};
use super::network::{Network, NetworkError};
use super::transients::{Transient, Transients};

/// The activations of one batch size.
pub struct Workspace {
    /// The [`Network`] that built it (a workspace fits only its own network).
    pub(crate) owner: u64,
    pub(crate) batch: usize,
    pub(crate) input: GpuBuffer<f32>,
    pub(crate) labels: GpuBuffer<u32>,
    /// Output of each layer (`[T*B, C, H, W]`; logits `[T, B, classes]` for the readout).
    pub(crate) outputs: Vec<GpuBuffer<f32>>,
    /// dL/d(output) of each layer: in training, aliases of the two shared
    /// [`Transient::LayerGrad`] buffers (layer `i` reads its own and writes layer `i - 1`'s, so
    /// parity alternates); inference workspaces keep only the readout's (the loss kernel
    /// writes it).
    pub(crate) grads: Vec<Option<GpuBuffer<f32>>>,
    /// Built with gradient buffers (training) or without (inference only).
    pub(crate) training: bool,
    pub(crate) layers: Vec<LayerWs>,
    /// Layer `i` hands its spikes to layer `i + 1` packed in eval (`layers::packed_flow`).
    packed_flow: Vec<bool>,
    pub(crate) scratch: Scratch,
    pub(crate) sample_loss: GpuBuffer<f32>,
}

impl Workspace {
    /// Builds the workspace of `net` for batches of `batch` samples; `training`: with the
    /// gradient buffers a backward needs (an inference workspace holds roughly half).
    pub(crate) fn new(
        ctx: &GpuContext,
        net: &Network,
        batch: usize,
        training: bool,
    ) -> Result<Self, NetworkError> {
        if batch == 0 {
            return Err(NetworkError::Batch("batch size must be at least 1".into()));
        }
        let config = net.config();
        let t = config.timesteps;
        let n = t * batch;
        let [c0, h0, w0] = config.input;
        let direct = config.encoding == crate::model::Encoding::Direct;
        let mut outputs = Vec::new();
        let mut layers = Vec::new();
        let mut transients = Transients::default();
        let mut cols_len = 1usize;
        // Moments run over layer outputs (firing rates) and weight gradients.
        let mut moment_max = net.params().iter().map(|p| p.len()).max().unwrap_or(1);
        let last = net.layers().len().saturating_sub(1);
        let grad_slot = |i: usize| Transient::LayerGrad((i % 2) as u8);
        let mut lens = Vec::new();
        // Conv units whose tensors exceed one binding run their tails on gathered copies
        // (`layers::gather`), which hand spikes over as floats.
        let gather_len = net
            .layers()
            .iter()
            .filter(|l| matches!(l, super::layers::Layer::Conv(_)))
            .map(|l| {
                let per_sample = t * l.output_shape().iter().product::<usize>();
                GatherScratch::len_for(ctx, batch, per_sample)
            })
            .max()
            .unwrap_or(0);
        let max_channels = net
            .layers()
            .iter()
            .map(|l| l.output_shape()[0])
            .max()
            .unwrap_or(1);
        let mut packed_flow = super::layers::packed_flow(net.layers());
        if gather_len > 0 {
            packed_flow.iter_mut().for_each(|f| *f = false);
        }
        for (i, layer) in net.layers().iter().enumerate() {
            let len = n * layer.output_shape().iter().product::<usize>();
            outputs.push(GpuBuffer::zeros(ctx, len, "layer output")?);
            if training {
                transients.declare(grad_slot(i), len);
            }
            lens.push(len);
            moment_max = moment_max.max(len);
            let first = i == 0 && direct;
            let packed_in = i > 0 && packed_flow[i - 1];
            let (ws, cols) =
                layer.workspace(ctx, t, batch, first, training, packed_in, &mut transients)?;
            cols_len = cols_len.max(cols);
            layers.push(ws);
        }
        // Training allocates the backward's shared buffers now (recording a step never
        // allocates); the forward ones wait for a first inspection (training and plain eval
        // run fused passes and need none).
        if training {
            transients.allocate(ctx, false)?;
        }
        let mut grads = Vec::new();
        for (i, &len) in lens.iter().enumerate() {
            grads.push(if training {
                Some(transients.get(ctx, grad_slot(i), len)?)
            } else if i == last {
                Some(GpuBuffer::zeros(ctx, len, "readout grad")?)
            } else {
                None
            });
        }
        Ok(Self {
            owner: net.id(),
            batch,
            input: GpuBuffer::zeros(ctx, n * c0 * h0 * w0, "input")?,
            labels: GpuBuffer::zeros(ctx, batch, "labels")?,
            outputs,
            grads,
            training,
            layers,
            packed_flow,
            scratch: Scratch {
                cols: GpuBuffer::zeros(ctx, cols_len, "im2col scratch")?,
                moment_partials: GpuBuffer::zeros(
                    ctx,
                    // The fused training tail writes a pair per workgroup of 64 neurons.
                    Moments::partials_len(moment_max).max(BnAgmmLifTrain::partials_len(moment_max)),
                    "moment partials",
                )?,
                transients,
                gather: GatherScratch::new(ctx, gather_len)?,
                bn_sums: (
                    GpuBuffer::zeros(ctx, max_channels, "batch-norm partial sums")?,
                    GpuBuffer::zeros(ctx, 2 * max_channels, "batch-norm partial sums")?,
                ),
            },
            sample_loss: GpuBuffer::zeros(ctx, batch, "sample loss")?,
        })
    }

    /// Samples per batch.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// What layer `index` reads: the uploaded input, or the previous layer's output.
    pub(crate) fn layer_input(&self, index: usize) -> &GpuBuffer<f32> {
        match index.checked_sub(1) {
            Some(previous) => &self.outputs[previous],
            None => &self.input,
        }
    }

    /// Where layer `index` writes its spikes bit-packed for the next layer in eval: the next
    /// conv's packed input or the next max pool's.
    pub(crate) fn packed_output(&self, index: usize) -> Option<&GpuBuffer<u32>> {
        if !self.packed_flow.get(index).copied().unwrap_or(false) {
            return None;
        }
        match self.layers.get(index + 1)? {
            LayerWs::Conv(c) => c.packed_input(),
            LayerWs::Pool(p) => p.packed_input.as_ref(),
            LayerWs::Linear => None,
        }
    }

    /// True when built with gradient buffers.
    pub fn training(&self) -> bool {
        self.training
    }

    /// dL/d(output) of layer `index` (training workspaces, and the readout's in any).
    pub(crate) fn grad(&self, index: usize) -> Result<&GpuBuffer<f32>, NetworkError> {
        self.grads
            .get(index)
            .and_then(Option::as_ref)
            .ok_or_else(|| {
                NetworkError::Batch(format!(
                    "layer {index}: an inference workspace has no gradient buffers"
                ))
            })
    }

    /// The single-frame encoder buffers, when the first layer has them.
    pub(crate) fn frame(&self) -> Option<&super::layers::conv_unit::FrameWs> {
        match self.layers.first() {
            Some(LayerWs::Conv(c)) => c.frame.as_ref(),
            _ => None,
        }
    }

    /// The conv-unit workspace of layer `index`.
    pub(crate) fn conv(&self, index: usize) -> Option<&super::layers::ConvWs> {
        match self.layers.get(index) {
            Some(LayerWs::Conv(c)) => Some(c),
            _ => None,
        }
    }
}

/// One workspace per batch size used so far (the training batch, an evaluation's remainder
/// batch, the app's single-sample probes).
#[derive(Default)]
pub struct Workspaces {
    built: Vec<Workspace>,
}

impl Workspaces {
    /// A workspace for `batch`, built on first use: `training` asks for gradient buffers;
    /// inference also takes a training workspace of the same batch when there is one.
    pub fn get(
        &mut self,
        ctx: &GpuContext,
        net: &Network,
        batch: usize,
        training: bool,
    ) -> Result<&Workspace, NetworkError> {
        let fits =
            |w: &Workspace| w.batch == batch && w.owner == net.id() && (w.training || !training);
        let index = match self.built.iter().position(fits) {
            Some(i) => i,
            None => {
                // Workspaces of other networks are stale; an inference workspace of this batch is
                // replaced by the training one (which also serves inference).
                self.built
                    .retain(|w| w.owner == net.id() && !(training && w.batch == batch));
                let ws = ctx.allocating(&format!("the workspace for batch {batch}"), || {
                    Workspace::new(ctx, net, batch, training)
                })?;
                self.built.push(ws);
                self.built.len() - 1
            }
        };
        Ok(&self.built[index])
    }

    /// A workspace for `batch` if one was built.
    pub fn find(&self, batch: usize) -> Option<&Workspace> {
        self.built.iter().find(|w| w.batch == batch)
    }

    /// Batch sizes built so far, ascending.
    pub fn batches(&self) -> Vec<usize> {
        let mut b: Vec<usize> = self.built.iter().map(|w| w.batch).collect();
        b.sort();
        b
    }
}
