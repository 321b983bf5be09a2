//! A BSNN built from a [`ModelConfig`]: its layers in order, the kernels they record with, the
//! epoch summaries, and the recorded forward, backward and optimizer passes of a training step.
//! Reads like the model: each pass walks the layers and lets each kind record its own work.
//!
//! Nothing here submits work or reads back by itself except where a method says so: the
//! trainer (CLI) and the UI decide when to submit and how to wait, so the UI never blocks.

use std::sync::atomic::{AtomicU64, Ordering};

use rand::SeedableRng;

use crate::gpu::{GpuBuffer, GpuContext, GpuError};
use crate::kernels::agmm::AgmmMode;
use crate::kernels::finite::FiniteParams;
use crate::kernels::loss::LossParams;
use crate::kernels::optim::{AdamConfig, AdamParams, SgdConfig, SgdParams};
use crate::model::{plan, ModelConfig, ModelError};
use crate::rng::SeededRng;

use super::layers::{Backward, BuildSettings, Forward, Layer, Pass};
use super::metrics::{MetricsReadback, MomentKind, Slots, Summaries, EVAL_SLOT, TRAIN_SLOT};
use super::param::Param;
use super::recorder::{Kernels, Recorder};
use super::weight::{BnParams, Weight};
use super::workspace::Workspace;

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

/// Which optimizer updates the latent weights (docs/method.md §8).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Optimizer {
    Sgd(SgdConfig),
    Adam(AdamConfig),
}

/// Gives every network an id its workspaces carry.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A BSNN on the GPU.
pub struct Network {
    id: u64,
    config: ModelConfig,
    layers: Vec<Layer>,
    kernels: Kernels,
    summaries: Summaries,
    /// Optimizer steps taken (Adam's bias correction; the checkpoint's `step`).
    step: u64,
    /// Use the single-frame encoder path in eval mode when possible (default on).
    frame_broadcast: bool,
    /// Eval hands spikes bit-packed between layers where it can (`layers::packed_flow`).
    packed_spikes: bool,
}

impl Network {
    /// Builds the network for `config`, initialising parameters from `seed` (Kaiming normal
    /// fan_out for convs, PyTorch's default for the readout, BN weight 1 bias 0).
    pub fn new(ctx: &GpuContext, config: &ModelConfig, seed: u64) -> Result<Self, NetworkError> {
        let planned = plan(config)?;
        let kernels = Kernels::new(ctx)?;
        let mut rng = SeededRng::seed_from_u64(seed);
        let mut slots = Slots::default();
        let settings = BuildSettings {
            // `off` is the identity: its units skip the AGMM kernels entirely.
            agmm: (config.agmm.mode != AgmmMode::Off).then_some(config.agmm),
            lif: config.neuron,
            pooling: config.pooling,
        };
        // Whether the current layer's input is spikes in {0, 1}, or means of spikes.
        let mut spike_input = (config.encoding == crate::model::Encoding::Poisson)
            .then_some(crate::kernels::popcount::SpikeArea::SPIKES);
        let mut layers = Vec::with_capacity(planned.len());
        for l in &planned {
            layers.push(Layer::new(
                ctx,
                l,
                &settings,
                spike_input,
                &mut rng,
                &mut slots,
            )?);
            spike_input = crate::model::spikes_after(&l.config, config.pooling, spike_input);
        }
        let mut net = Self {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            config: config.clone(),
            layers,
            kernels,
            summaries: Summaries::new(ctx, slots)?,
            step: 0,
            frame_broadcast: true,
            packed_spikes: true,
        };
        let names = net.tensor_specs(true).into_iter().map(|(n, _)| n).collect();
        net.summaries.track_tensors(ctx, names)?;
        net.snapshot_signs(ctx)?;
        Ok(net)
    }

    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// The model this network was built from.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// The layers in forward order.
    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    /// Optimizer steps taken.
    pub fn step(&self) -> u64 {
        self.step
    }

    pub(crate) fn set_step(&mut self, step: u64) {
        self.step = step;
    }

    fn recorder<'a>(
        &'a self,
        ctx: &'a GpuContext,
        enc: &'a mut wgpu::CommandEncoder,
    ) -> Recorder<'a> {
        Recorder {
            ctx,
            enc,
            k: &self.kernels,
            summaries: &self.summaries,
        }
    }

    /// All conv and linear weights in forward order (binary and full precision).
    pub fn weights(&self) -> Vec<&Weight> {
        self.layers.iter().flat_map(Layer::weights).collect()
    }

    /// Every binary weight with its latent tensor, gamma and sign snapshot.
    pub fn binary_weights(&self) -> Vec<&Weight> {
        self.weights()
            .into_iter()
            .filter(|w| w.binary.is_some())
            .collect()
    }

    /// Every trainable tensor, in a stable order.
    pub fn params(&self) -> Vec<&Param> {
        self.layers.iter().flat_map(Layer::params).collect()
    }

    /// A trainable tensor by checkpoint name (tests and inspection).
    pub fn param(&self, name: &str) -> Option<&Param> {
        self.params().into_iter().find(|p| p.name == name)
    }

    pub(crate) fn batch_norms(&self) -> Vec<&BnParams> {
        self.layers.iter().flat_map(Layer::batch_norms).collect()
    }

    /// A workspace for training batches of `batch` samples (hold one per batch size you use,
    /// e.g. in a [`super::Workspaces`] cache).
    pub fn workspace(&self, ctx: &GpuContext, batch: usize) -> Result<Workspace, NetworkError> {
        Workspace::new(ctx, self, batch, true)
    }

    /// A workspace for inference only (eval-mode forwards): no gradient buffers.
    pub fn inference_workspace(
        &self,
        ctx: &GpuContext,
        batch: usize,
    ) -> Result<Workspace, NetworkError> {
        Workspace::new(ctx, self, batch, false)
    }

    fn check_owner(&self, ws: &Workspace) -> Result<(), NetworkError> {
        if ws.owner != self.id {
            return Err(NetworkError::Batch(
                "this workspace was built for another network".into(),
            ));
        }
        Ok(())
    }

    /// Uploads a batch (`input` `[T, B, C, H, W]`, `labels` `[B]`) into `ws`.
    pub fn upload(
        &self,
        ctx: &GpuContext,
        ws: &Workspace,
        input: &[f32],
        labels: &[u32],
    ) -> Result<(), NetworkError> {
        self.check_owner(ws)?;
        if input.len() != ws.input.len() || labels.len() != ws.batch {
            return Err(NetworkError::Batch(format!(
                "{} inputs and {} labels; a batch of {} at T = {} with input {:?} needs {} and {}",
                input.len(),
                labels.len(),
                ws.batch,
                self.config.timesteps,
                self.config.input,
                ws.input.len(),
                ws.batch
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
        if let Some(frame) = ws.frame() {
            let per = frame.input.len();
            let repeats = input.chunks_exact(per).all(|c| c == &input[..per]);
            frame.valid.set(repeats);
            if repeats {
                frame.input.write(ctx, &input[..per])?;
            }
        }
        Ok(())
    }

    /// Records the forward pass (and the loss) for the batch uploaded into `ws`.
    /// [`Pass::Train`]: batch statistics for BN (running stats updated), loss into the train
    /// slot, firing rates accumulated; otherwise running statistics and the eval slot.
    pub fn record_forward(
        &self,
        ctx: &GpuContext,
        enc: &mut wgpu::CommandEncoder,
        ws: &Workspace,
        pass: Pass,
    ) -> Result<(), NetworkError> {
        for index in 0..self.layers.len() {
            self.record_layer_forward(ctx, enc, ws, index, pass)?;
        }
        self.record_loss(ctx, enc, ws, pass == Pass::Train)
    }

    /// Records the forward of layer `index` alone (the layers before it must have run, in the
    /// same pass: in [`Pass::Eval`] a layer may read its input from where the previous layer
    /// wrote it packed).
    pub fn record_layer_forward(
        &self,
        ctx: &GpuContext,
        enc: &mut wgpu::CommandEncoder,
        ws: &Workspace,
        index: usize,
        pass: Pass,
    ) -> Result<(), NetworkError> {
        self.check_owner(ws)?;
        let layer = self.layer_at(index)?;
        let train = pass == Pass::Train;
        let packed = pass == Pass::Eval && self.packed_spikes;
        let io = Forward {
            input: ws.layer_input(index),
            output: &ws.outputs[index],
            timesteps: self.config.timesteps,
            batch: ws.batch,
            train,
            single_frame: self.frame_broadcast,
            inspect: pass == Pass::Inspect,
            packed_output: ws.packed_output(index).filter(|_| packed),
            packed_input: packed && index > 0 && ws.packed_output(index - 1).is_some(),
        };
        let mut rec = self.recorder(ctx, enc);
        Ok(layer.forward(&mut rec, &ws.layers[index], &ws.scratch, io)?)
    }

    /// Records the readout loss and its gradient (after the forward).
    pub fn record_loss(
        &self,
        ctx: &GpuContext,
        enc: &mut wgpu::CommandEncoder,
        ws: &Workspace,
        train: bool,
    ) -> Result<(), NetworkError> {
        self.check_owner(ws)?;
        let last = self.layers.len() - 1;
        let slot = if train { TRAIN_SLOT } else { EVAL_SLOT };
        let kind = self.config.loss;
        let t = self.config.timesteps;
        let params = LossParams::new(kind, t, ws.batch, self.config.classes).with_slot(slot, true);
        self.kernels.loss.dispatch(
            ctx,
            enc,
            &params,
            &ws.outputs[last],
            &ws.labels,
            ws.grad(last)?,
            &ws.sample_loss,
            &self.summaries.loss,
        )?;
        Ok(())
    }

    /// Records the backward pass for the batch whose training forward was recorded in `ws`.
    pub fn record_backward(
        &self,
        ctx: &GpuContext,
        enc: &mut wgpu::CommandEncoder,
        ws: &Workspace,
    ) -> Result<(), NetworkError> {
        for index in (0..self.layers.len()).rev() {
            self.record_layer_backward(ctx, enc, ws, index)?;
        }
        Ok(())
    }

    /// Records the backward of layer `index` alone (the layers after it must have run).
    pub fn record_layer_backward(
        &self,
        ctx: &GpuContext,
        enc: &mut wgpu::CommandEncoder,
        ws: &Workspace,
        index: usize,
    ) -> Result<(), NetworkError> {
        self.check_owner(ws)?;
        let layer = self.layer_at(index)?;
        let io = Backward {
            input: ws.layer_input(index),
            g_output: ws.grad(index)?,
            // The gradient of this layer's input is the previous layer's output gradient.
            g_input: if index == 0 {
                None
            } else {
                Some(ws.grad(index - 1)?)
            },
            timesteps: self.config.timesteps,
            batch: ws.batch,
        };
        let mut rec = self.recorder(ctx, enc);
        Ok(layer.backward(&mut rec, &ws.layers[index], &ws.scratch, io)?)
    }

    fn layer_at(&self, index: usize) -> Result<&Layer, NetworkError> {
        self.layers
            .get(index)
            .ok_or_else(|| NetworkError::Batch(format!("no layer {index}")))
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
                    let params = SgdParams::new(cfg, p.len(), lr, wd);
                    k.sgd
                        .dispatch(ctx, enc, &params, &p.value, &p.grad, &p.state_a)?;
                }
                Optimizer::Adam(cfg) => {
                    let wd = if p.decay { cfg.weight_decay } else { 0.0 };
                    let step = self.step.min(u32::MAX as u64) as u32;
                    let params = AdamParams::new(cfg, p.len(), step, lr, wd);
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
        let mut rec = self.recorder(ctx, enc);
        for weight in self.weights() {
            weight.count_flips(&mut rec)?;
        }
        Ok(())
    }

    /// Records a count of the NaN and infinite values of every tensor a checkpoint holds
    /// (parameters, BN statistics, optimizer state) into the summaries; the trainer checks
    /// the counts at each epoch end ([`crate::snn::RawMetrics::nonfinite_tensors`]).
    pub fn record_nonfinite_count(
        &self,
        ctx: &GpuContext,
        enc: &mut wgpu::CommandEncoder,
    ) -> Result<(), NetworkError> {
        for (slot, buffer) in self.tensor_buffers(true).into_iter().enumerate() {
            let params = FiniteParams::new(buffer.len(), slot);
            self.kernels.nonfinite.dispatch(
                ctx,
                enc,
                &params,
                buffer,
                &self.summaries.nonfinite,
            )?;
        }
        Ok(())
    }

    /// Submits a snapshot of every binary weight's signs (after building or loading).
    pub(crate) fn snapshot_signs(&self, ctx: &GpuContext) -> Result<(), NetworkError> {
        let mut enc = ctx.encoder("sign snapshot");
        let mut rec = self.recorder(ctx, &mut enc);
        for weight in self.weights() {
            weight.snapshot_signs(&mut rec)?;
        }
        ctx.submit(enc);
        Ok(())
    }

    /// Zeroes the epoch summaries (loss, moments, flip counts).
    pub fn reset_metrics(&self, ctx: &GpuContext) -> Result<(), NetworkError> {
        Ok(self.summaries.reset(ctx)?)
    }

    /// Zeroes only the eval loss summary, so an evaluation pass is not mixed with eval-mode
    /// forwards recorded earlier in the epoch (e.g. the desktop app's single-sample probes).
    pub fn reset_eval_summary(&self, ctx: &GpuContext) {
        self.summaries.reset_eval(ctx);
    }

    /// Starts reading the epoch summaries back: poll the result with `try_take` on later
    /// frames, or `block` on it (native).
    pub fn read_metrics(&self, ctx: &GpuContext) -> MetricsReadback {
        self.summaries.read(ctx)
    }

    /// Names of the moment slots and what each measures, in slot order.
    pub fn moment_slots(&self) -> &[(String, MomentKind)] {
        &self.summaries.slots.moments
    }

    /// The logits buffer `[T, B, classes]` of the last forward recorded in `ws`.
    pub fn logits<'w>(&self, ws: &'w Workspace) -> Result<&'w GpuBuffer<f32>, NetworkError> {
        ws.outputs
            .last()
            .ok_or_else(|| NetworkError::Batch("network has no layers".into()))
    }

    /// True when an eval forward in `ws` takes the single-frame encoder path for the batch
    /// uploaded last.
    pub fn uses_single_frame_encoder(&self, ws: &Workspace) -> bool {
        self.frame_broadcast && ws.frame().is_some_and(|f| f.valid.get())
    }

    /// Turns the bit-packed hand-over between layers in [`Pass::Eval`] on or off
    /// (`layers::packed_flow`; tests and `bench e2e` compare both).
    pub fn set_packed_spikes(&mut self, enabled: bool) {
        self.packed_spikes = enabled;
    }

    /// Where layer `index` writes its spikes packed in [`Pass::Eval`], if the next layer reads
    /// them so (tests compare these words with the floats of [`Pass::Inspect`]).
    pub fn packed_output<'w>(&self, ws: &'w Workspace, index: usize) -> Option<&'w GpuBuffer<u32>> {
        ws.packed_output(index).filter(|_| self.packed_spikes)
    }

    /// Turns the single-frame encoder path (training and eval) on or off (tests compare both).
    pub fn set_frame_broadcast(&mut self, enabled: bool) {
        self.frame_broadcast = enabled;
    }
}
