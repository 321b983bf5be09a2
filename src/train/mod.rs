//! The trainer: epochs of seeded batches through the GPU network, cosine learning-rate
//! schedule, evaluation each epoch, per-epoch metrics (loss, accuracy, flip ratio per binary
//! layer, firing rate per spiking layer, gradient mean/variance, throughput).
//!
//! Only summaries are read back: the loss summary every `log_every` steps (for progress and
//! NaN detection) and the epoch summaries once per epoch. No host sync per timestep.

use serde::{Deserialize, Serialize};

use crate::checkpoint::Checkpoint;
use crate::data::{epoch_order, make_batch, Dataset, InputSpec};
use crate::gpu::GpuContext;
use crate::kernels::optim::{AdamConfig, SgdConfig};
use crate::model::ModelConfig;
use crate::snn::{EpochMetrics, Network, NetworkError, Optimizer};

/// Optimizer choice in a run config.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OptimizerKind {
    #[default]
    Sgd,
    Adam,
}

/// Training hyper-parameters (spec section 8 defaults, Adam for the small default net).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    pub epochs: usize,
    /// Stop after this many optimizer steps in total (None: run all epochs).
    pub max_steps: Option<usize>,
    pub batch: usize,
    pub optimizer: OptimizerKind,
    pub lr: f32,
    pub momentum: f32,
    pub weight_decay: f32,
    /// Cosine schedule from `lr` to 0 over the run; false keeps `lr` constant.
    pub cosine: bool,
    pub seed: u64,
    pub shuffle: bool,
    pub augment: bool,
    /// Read the loss summary every this many steps (progress display, NaN detection).
    pub log_every: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 5,
            max_steps: None,
            batch: 64,
            optimizer: OptimizerKind::Adam,
            lr: 1e-3,
            momentum: 0.9,
            weight_decay: 0.0,
            cosine: true,
            seed: 1,
            shuffle: true,
            augment: false,
            log_every: 10,
        }
    }
}

impl TrainConfig {
    /// The optimizer with this config's hyper-parameters.
    pub fn optimizer(&self) -> Optimizer {
        match self.optimizer {
            OptimizerKind::Sgd => Optimizer::Sgd(SgdConfig {
                lr: self.lr,
                momentum: self.momentum,
                weight_decay: self.weight_decay,
                nesterov: false,
            }),
            OptimizerKind::Adam => Optimizer::Adam(AdamConfig {
                lr: self.lr,
                weight_decay: self.weight_decay,
                ..AdamConfig::default()
            }),
        }
    }
}

/// One epoch's metrics (one line of `metrics.jsonl`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub step: u64,
    pub lr: f32,
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub test_loss: f64,
    pub test_accuracy: f64,
    /// `(layer, flip ratio)` per binary layer over this epoch.
    pub flip_ratio: Vec<(String, f64)>,
    pub flip_ratio_total: f64,
    pub firing_rate: Vec<(String, f64)>,
    /// `(layer, mean, variance)` of latent-weight gradients.
    pub grad_stats: Vec<(String, f64, f64)>,
    pub samples_per_second: f64,
    pub epoch_seconds: f64,
    pub eval_seconds: f64,
}

/// Wall-clock facts about an epoch that the GPU summaries do not hold.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct EpochTiming {
    /// Learning rate of the epoch's last step.
    pub lr: f32,
    /// Training samples processed.
    pub samples: usize,
    pub train_seconds: f64,
    pub eval_seconds: f64,
}

/// The record of epoch `epoch` (0-based) from its summaries.
fn record_from(epoch: usize, step: u64, m: &EpochMetrics, timing: EpochTiming) -> EpochRecord {
    EpochRecord {
        epoch: epoch + 1,
        step,
        lr: timing.lr,
        train_loss: m.train.mean_loss(),
        train_accuracy: m.train.accuracy(),
        test_loss: m.eval.mean_loss(),
        test_accuracy: m.eval.accuracy(),
        flip_ratio: m
            .flips
            .iter()
            .map(|(n, f, t)| (n.clone(), *f as f64 / (*t).max(1) as f64))
            .collect(),
        flip_ratio_total: m.flip_ratio_total(),
        firing_rate: m.firing_rates.clone(),
        grad_stats: m.grad_stats.clone(),
        samples_per_second: timing.samples as f64 / timing.train_seconds.max(1e-9),
        epoch_seconds: timing.train_seconds,
        eval_seconds: timing.eval_seconds,
    }
}

/// Progress reported during an epoch.
#[derive(Clone, Debug, PartialEq)]
pub struct Progress {
    pub epoch: usize,
    pub step_in_epoch: usize,
    pub steps_in_epoch: usize,
    pub global_step: u64,
    pub loss: f64,
    pub accuracy: f64,
    pub samples_per_second: f64,
}

/// Errors that stop training.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Network(#[from] NetworkError),
    #[error(
        "training diverged: the loss became {value} at epoch {epoch}, step {step}. Stopped; the last good \
         checkpoint (if any) was kept. Try a lower learning rate."
    )]
    NonFinite { value: f64, epoch: usize, step: u64 },
    #[error("data: {0}")]
    Data(String),
}

/// Drives a network over a data set.
pub struct Trainer {
    pub net: Network,
    pub config: TrainConfig,
    pub model: ModelConfig,
    /// Epochs completed.
    pub epoch: usize,
    total_steps: u64,
}

impl Trainer {
    /// A fresh network for `model`, seeded by `config.seed`.
    pub fn new(
        ctx: &GpuContext,
        model: &ModelConfig,
        config: TrainConfig,
        train_len: usize,
    ) -> Result<Self, TrainError> {
        if config.batch == 0 {
            return Err(TrainError::Data("batch size must be at least 1".into()));
        }
        let net = Network::new(ctx, model, config.seed)?;
        let per_epoch = (train_len / config.batch).max(1) as u64;
        let mut total_steps = per_epoch * config.epochs as u64;
        if let Some(m) = config.max_steps {
            total_steps = total_steps.min(m as u64);
        }
        Ok(Self {
            net,
            config,
            model: model.clone(),
            epoch: 0,
            total_steps: total_steps.max(1),
        })
    }

    /// Learning rate at optimizer step `step` (0-based): cosine from `lr` to 0 over the run.
    pub fn lr_at(&self, step: u64) -> f32 {
        if !self.config.cosine {
            return self.config.lr;
        }
        let progress = (step as f64 / self.total_steps as f64).min(1.0);
        (self.config.lr as f64 * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())) as f32
    }

    fn input_spec(&self, train: bool) -> InputSpec {
        InputSpec {
            timesteps: self.model.timesteps,
            encoding: self.model.encoding,
            mean: self.model.normalize_mean.clone(),
            std: self.model.normalize_std.clone(),
            augment: train && self.config.augment,
        }
    }

    fn check_data(&self, data: &Dataset) -> Result<(), TrainError> {
        let [c, h, w] = self.model.input;
        if [data.channels, data.height, data.width] != [c, h, w] {
            return Err(TrainError::Data(format!(
                "data set images are {}x{}x{}, the model expects {c}x{h}x{w}",
                data.channels, data.height, data.width
            )));
        }
        if data.classes > self.model.classes {
            return Err(TrainError::Data(format!(
                "data set has {} classes, the model {}",
                data.classes, self.model.classes
            )));
        }
        Ok(())
    }

    /// True once `max_steps` is reached.
    pub fn finished(&self) -> bool {
        self.net.step >= self.total_steps || self.epoch >= self.config.epochs
    }

    /// Optimizer steps in one epoch over `train_len` samples (drop-last batches).
    pub fn steps_per_epoch(&self, train_len: usize) -> usize {
        let batch = self.config.batch.min(train_len).max(1);
        train_len / batch
    }

    /// Evaluation batches over `test_len` samples (the last one may be partial).
    pub fn eval_batches(&self, test_len: usize) -> usize {
        test_len.div_ceil(self.config.batch.max(1))
    }

    /// Optimizer steps in the whole run (epochs x steps, capped by `max_steps`).
    pub fn total_steps(&self) -> u64 {
        self.total_steps
    }

    /// Step-wise API, start of an epoch: zeroes the epoch summaries (queued, no wait).
    /// Then call [`Trainer::record_train_step`] for each step, [`Trainer::record_flip_count`]
    /// and [`Trainer::record_eval_batch`] for each eval batch, read the summaries with
    /// [`Network::read_metrics_async`] and finish with [`Trainer::finish_epoch`]. Nothing here
    /// waits for the GPU, so a UI can spread an epoch over many frames.
    pub fn begin_epoch(&mut self, ctx: &GpuContext, train: &Dataset) -> Result<(), TrainError> {
        self.check_data(train)?;
        if train.is_empty() {
            return Err(TrainError::Data("the training set is empty".into()));
        }
        self.net.reset_metrics(ctx)?;
        Ok(())
    }

    /// Uploads batch `step_in_epoch` of the current epoch (same order and augmentation seed
    /// as [`Trainer::run_epoch`]), records forward, backward and the optimizer step, and
    /// submits without waiting. Returns the learning rate used.
    pub fn record_train_step(
        &mut self,
        ctx: &GpuContext,
        train: &Dataset,
        step_in_epoch: usize,
    ) -> Result<f32, TrainError> {
        let batch = self.config.batch.min(train.len());
        let steps = self.steps_per_epoch(train.len());
        if batch == 0 || step_in_epoch >= steps {
            return Err(TrainError::Data(format!(
                "step {step_in_epoch} is outside the epoch's {steps} steps"
            )));
        }
        // Recomputing the permutation per step costs a shuffle of the index list (8,000
        // entries for MNIST-10k), negligible next to a GPU step, and keeps the trainer free of
        // per-epoch state.
        let order = epoch_order(
            train.len(),
            self.config.seed,
            self.epoch,
            self.config.shuffle,
        );
        let idx = &order[step_in_epoch * batch..(step_in_epoch + 1) * batch];
        let seed = self.config.seed ^ (self.net.step + 1).wrapping_mul(0xA24B_AED4_963E_E407);
        let host = make_batch(train, idx, &self.input_spec(true), seed);
        self.net.upload(ctx, &host.input, &host.labels)?;
        let lr = self.lr_at(self.net.step);
        let optimizer = self.config.optimizer();
        let mut enc = ctx.encoder("train step");
        self.net.record_forward(ctx, &mut enc, batch, true)?;
        self.net.record_backward(ctx, &mut enc, batch)?;
        self.net.record_optimizer(ctx, &mut enc, &optimizer, lr)?;
        ctx.submit(enc);
        Ok(lr)
    }

    /// Records and submits the end-of-epoch sign-flip count (no wait), and zeroes the eval
    /// summary so the evaluation that follows is not mixed with earlier eval-mode forwards.
    pub fn record_flip_count(&mut self, ctx: &GpuContext) -> Result<(), TrainError> {
        let mut enc = ctx.encoder("flip count");
        self.net.record_flip_count(ctx, &mut enc)?;
        ctx.submit(enc);
        self.net.reset_eval_summary(ctx);
        Ok(())
    }

    /// Uploads eval batch `index` of `test`, records an eval-mode forward (loss and accuracy
    /// into the eval summary) and submits without waiting. Returns the batch size.
    pub fn record_eval_batch(
        &mut self,
        ctx: &GpuContext,
        test: &Dataset,
        index: usize,
    ) -> Result<usize, TrainError> {
        self.check_data(test)?;
        let batch = self.config.batch.max(1);
        let first = index * batch;
        if first >= test.len() {
            return Err(TrainError::Data(format!(
                "eval batch {index} starts past the {} test samples",
                test.len()
            )));
        }
        let idx: Vec<usize> = (first..(first + batch).min(test.len())).collect();
        let host = make_batch(test, &idx, &self.input_spec(false), 0);
        let b = self.net.upload(ctx, &host.input, &host.labels)?;
        let mut enc = ctx.encoder("eval step");
        self.net.record_forward(ctx, &mut enc, b, false)?;
        ctx.submit(enc);
        Ok(b)
    }

    /// Ends the epoch from summaries read back after the last eval batch: checks the loss is
    /// finite, counts the epoch and builds its record. Timings come from the caller, which
    /// knows how the epoch was spread over time.
    pub fn finish_epoch(
        &mut self,
        metrics: &EpochMetrics,
        timing: EpochTiming,
    ) -> Result<EpochRecord, TrainError> {
        let epoch = self.epoch;
        if !metrics.train.mean_loss().is_finite() {
            return Err(TrainError::NonFinite {
                value: metrics.train.mean_loss(),
                epoch,
                step: self.net.step,
            });
        }
        self.epoch += 1;
        Ok(record_from(epoch, self.net.step, metrics, timing))
    }

    /// Trains one epoch (drop-last batches), evaluates on `test`, and returns the metrics.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn run_epoch(
        &mut self,
        ctx: &GpuContext,
        train: &Dataset,
        test: &Dataset,
        progress: &mut dyn FnMut(&Progress),
    ) -> Result<EpochRecord, TrainError> {
        use std::time::Instant;
        self.check_data(train)?;
        self.check_data(test)?;
        let epoch = self.epoch;
        let batch = self.config.batch.min(train.len());
        if batch == 0 {
            return Err(TrainError::Data("the training set is empty".into()));
        }
        self.net.reset_metrics(ctx)?;
        let order = epoch_order(train.len(), self.config.seed, epoch, self.config.shuffle);
        let steps = train.len() / batch;
        let spec = self.input_spec(true);
        let optimizer = self.config.optimizer();
        let start = Instant::now();
        let mut done_samples = 0usize;
        let mut lr = self.config.lr;
        for s in 0..steps {
            if self.net.step >= self.total_steps {
                break;
            }
            let idx = &order[s * batch..(s + 1) * batch];
            let seed = self.config.seed ^ (self.net.step + 1).wrapping_mul(0xA24B_AED4_963E_E407);
            let host = make_batch(train, idx, &spec, seed);
            self.net.upload(ctx, &host.input, &host.labels)?;
            lr = self.lr_at(self.net.step);
            let mut enc = ctx.encoder("train step");
            self.net.record_forward(ctx, &mut enc, batch, true)?;
            self.net.record_backward(ctx, &mut enc, batch)?;
            self.net.record_optimizer(ctx, &mut enc, &optimizer, lr)?;
            ctx.submit(enc);
            done_samples += batch;
            let last = s + 1 == steps || self.net.step >= self.total_steps;
            if (s + 1) % self.config.log_every.max(1) == 0 || last {
                let m = self.net.read_metrics(ctx)?;
                let loss = m.train.mean_loss();
                if !loss.is_finite() {
                    return Err(TrainError::NonFinite {
                        value: loss,
                        epoch,
                        step: self.net.step,
                    });
                }
                progress(&Progress {
                    epoch,
                    step_in_epoch: s + 1,
                    steps_in_epoch: steps,
                    global_step: self.net.step,
                    loss,
                    accuracy: m.train.accuracy(),
                    samples_per_second: done_samples as f64 / start.elapsed().as_secs_f64(),
                });
            }
        }
        let mut enc = ctx.encoder("flip count");
        self.net.record_flip_count(ctx, &mut enc)?;
        ctx.submit(enc);
        ctx.wait_idle().map_err(NetworkError::from)?;
        let train_seconds = start.elapsed().as_secs_f64();
        let eval_start = Instant::now();
        self.evaluate(ctx, test, None)?;
        let eval_seconds = eval_start.elapsed().as_secs_f64();
        let m = self.net.read_metrics(ctx)?;
        if !m.train.mean_loss().is_finite() {
            return Err(TrainError::NonFinite {
                value: m.train.mean_loss(),
                epoch,
                step: self.net.step,
            });
        }
        self.epoch += 1;
        Ok(EpochRecord {
            epoch: epoch + 1,
            step: self.net.step,
            lr,
            train_loss: m.train.mean_loss(),
            train_accuracy: m.train.accuracy(),
            test_loss: m.eval.mean_loss(),
            test_accuracy: m.eval.accuracy(),
            flip_ratio: m
                .flips
                .iter()
                .map(|(n, f, t)| (n.clone(), *f as f64 / (*t).max(1) as f64))
                .collect(),
            flip_ratio_total: m.flip_ratio_total(),
            firing_rate: m.firing_rates.clone(),
            grad_stats: m.grad_stats.clone(),
            samples_per_second: done_samples as f64 / train_seconds,
            epoch_seconds: train_seconds,
            eval_seconds,
        })
    }

    /// Runs `data` through the network in eval mode, accumulating loss/accuracy into the eval
    /// summary. With `logits_out`, also collects `mean_t o[t]` per sample (data order).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn evaluate(
        &mut self,
        ctx: &GpuContext,
        data: &Dataset,
        mut logits_out: Option<&mut Vec<f32>>,
    ) -> Result<(), TrainError> {
        self.check_data(data)?;
        let spec = self.input_spec(false);
        let batch = self.config.batch.max(1);
        let (t, classes) = (self.model.timesteps, self.model.classes);
        let mut first = 0;
        while first < data.len() {
            let idx: Vec<usize> = (first..(first + batch).min(data.len())).collect();
            let host = make_batch(data, &idx, &spec, 0);
            let b = self.net.upload(ctx, &host.input, &host.labels)?;
            let mut enc = ctx.encoder("eval step");
            self.net.record_forward(ctx, &mut enc, b, false)?;
            ctx.submit(enc);
            if let Some(out) = logits_out.as_deref_mut() {
                let logits = self
                    .net
                    .logits(b)?
                    .read_blocking(ctx)
                    .map_err(NetworkError::from)?;
                for bi in 0..b {
                    for c in 0..classes {
                        let mean = (0..t)
                            .map(|ti| logits[(ti * b + bi) * classes + c])
                            .sum::<f32>()
                            / t as f32;
                        out.push(mean);
                    }
                }
            }
            first += b;
        }
        Ok(())
    }

    /// A checkpoint of the network with optimizer state and the run's metadata.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn checkpoint(&self, ctx: &GpuContext) -> Result<Checkpoint, TrainError> {
        let mut ck = self.net.to_checkpoint(ctx, true)?;
        ck.metadata.insert(
            "train_config".into(),
            serde_json::to_string(&self.config).unwrap_or_default(),
        );
        ck.metadata.insert("epoch".into(), self.epoch.to_string());
        ck.metadata
            .insert("seed".into(), self.config.seed.to_string());
        ck.metadata
            .insert("timesteps".into(), self.model.timesteps.to_string());
        Ok(ck)
    }

    /// [`Trainer::checkpoint`] without waiting: the tensors arrive on later frames.
    pub fn checkpoint_async(&self, ctx: &GpuContext) -> crate::snn::PendingCheckpoint {
        let mut pending = self.net.checkpoint_async(ctx, true);
        pending.metadata.insert(
            "train_config".into(),
            serde_json::to_string(&self.config).unwrap_or_default(),
        );
        pending
            .metadata
            .insert("epoch".into(), self.epoch.to_string());
        pending
            .metadata
            .insert("seed".into(), self.config.seed.to_string());
        pending
            .metadata
            .insert("timesteps".into(), self.model.timesteps.to_string());
        pending
    }

    /// Restores network, optimizer state, step and epoch from a checkpoint.
    pub fn restore(&mut self, ctx: &GpuContext, ck: &Checkpoint) -> Result<(), TrainError> {
        self.net.load_checkpoint(ctx, ck)?;
        if let Some(e) = ck.metadata.get("epoch").and_then(|s| s.parse().ok()) {
            self.epoch = e;
        }
        Ok(())
    }
}
