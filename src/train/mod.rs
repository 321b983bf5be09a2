//! Training: the run's settings ([`TrainConfig`]), the one epoch driver ([`Trainer`]: seeded
//! batches through the GPU network, cosine learning-rate schedule, evaluation each epoch) and
//! what it reports ([`StepReport`] per step, [`EpochRecord`] per epoch: loss, accuracy, flip
//! ratio per binary layer, firing rate per spiking layer, gradient mean/variance, throughput).
//!
//! The driver is step-wise and never waits: the desktop and web app poll it once per frame,
//! the CLI loops it and blocks only where it chooses to ([`Trainer::run_epoch`]). Only small
//! summaries are read back, once per submission; never per timestep.

#[cfg(not(target_arch = "wasm32"))]
pub mod run;
#[cfg(not(target_arch = "wasm32"))]
pub mod run_dir;
mod trainer;

pub use trainer::{Event, Phase, SlotMoments, StepReport, Trainer, MAX_IN_FLIGHT};

use serde::{Deserialize, Serialize};

use crate::kernels::optim::{AdamConfig, SgdConfig};
use crate::snn::{EpochMetrics, NetworkError, Optimizer};

/// Largest batch a run may ask for (memory is checked separately, per model).
pub const MAX_BATCH: usize = 65_536;
/// Largest number of epochs.
pub const MAX_EPOCHS: usize = 1_000_000;

/// Optimizer choice in a run config and on the CLI (`--optimizer adam`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(not(target_arch = "wasm32"), derive(clap::ValueEnum))]
pub enum OptimizerKind {
    Sgd,
    #[default]
    Adam,
}

impl OptimizerKind {
    /// The learning rate this optimizer starts from unless told otherwise.
    pub fn default_lr(self) -> f32 {
        match self {
            OptimizerKind::Sgd => SgdConfig::DEFAULT_LR,
            OptimizerKind::Adam => AdamConfig::DEFAULT_LR,
        }
    }

    /// Weight decay on conv/linear weights unless told otherwise.
    pub fn default_weight_decay(self) -> f32 {
        match self {
            OptimizerKind::Sgd => SgdConfig::default().weight_decay,
            OptimizerKind::Adam => AdamConfig::default().weight_decay,
        }
    }
}

/// Training hyper-parameters: the one home of the run defaults (Adam for the small default
/// net; docs/method.md §8). The CLI and the app start from these.
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
    /// Refresh the CLI's progress line every this many steps (NaN is checked at every step).
    pub log_every: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self::for_optimizer(OptimizerKind::default())
    }
}

impl TrainConfig {
    /// The defaults with `optimizer` and its learning rate and weight decay.
    pub fn for_optimizer(optimizer: OptimizerKind) -> Self {
        Self {
            epochs: 5,
            max_steps: None,
            batch: 64,
            optimizer,
            lr: optimizer.default_lr(),
            momentum: SgdConfig::default().momentum,
            weight_decay: optimizer.default_weight_decay(),
            cosine: true,
            seed: 1,
            shuffle: true,
            augment: false,
            log_every: 10,
        }
    }

    /// Refuses sizes and hyper-parameters no run can use (checked before anything is
    /// allocated): the message names the setting, its value and the allowed range.
    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |setting: &str, message: String| {
            Err(TrainError::Config(format!("`{setting}`: {message}")))
        };
        if self.batch == 0 || self.batch > MAX_BATCH {
            return bad(
                "batch",
                format!("{} is outside 1..={MAX_BATCH}", self.batch),
            );
        }
        if self.epochs > MAX_EPOCHS {
            return bad(
                "epochs",
                format!("{} is over the limit of {MAX_EPOCHS}", self.epochs),
            );
        }
        let ranges: [(&str, f32, f32, f32); 3] = [
            ("lr", self.lr, f32::MIN_POSITIVE, 10.0),
            ("momentum", self.momentum, 0.0, 0.999),
            ("weight_decay", self.weight_decay, 0.0, 1.0),
        ];
        for (setting, value, lo, hi) in ranges {
            if !(value.is_finite() && (lo..=hi).contains(&value)) {
                return bad(setting, format!("{value} is outside [{lo:e}, {hi}]"));
            }
        }
        Ok(())
    }

    /// Optimizer steps in one epoch over `train_len` samples, as the run's length counts them.
    pub fn steps_per_epoch(&self, train_len: usize) -> u64 {
        (train_len / self.batch.max(1)).max(1) as u64
    }

    /// Optimizer steps in the whole run over `train_len` samples: epochs x steps per epoch,
    /// capped by `max_steps` (at least 1).
    pub fn total_steps(&self, train_len: usize) -> u64 {
        let mut total = self.steps_per_epoch(train_len) * self.epochs as u64;
        if let Some(m) = self.max_steps {
            total = total.min(m as u64);
        }
        total.max(1)
    }

    /// Epochs the run will log over `train_len` samples (a `max_steps` budget that ends
    /// mid-epoch ends that epoch early, which still counts).
    pub fn planned_epochs(&self, train_len: usize) -> usize {
        let per_epoch = self.steps_per_epoch(train_len);
        (self.total_steps(train_len).div_ceil(per_epoch) as usize).min(self.epochs)
    }

    /// The optimizer with this config's hyper-parameters.
    pub fn optimizer(&self) -> Optimizer {
        match self.optimizer {
            OptimizerKind::Sgd => Optimizer::Sgd(SgdConfig {
                momentum: self.momentum,
                weight_decay: self.weight_decay,
                nesterov: false,
            }),
            OptimizerKind::Adam => Optimizer::Adam(AdamConfig {
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

/// A test-set evaluation in the middle of training (`--eval-every N`: after every N optimizer
/// steps; one line of `evals.jsonl`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepEval {
    /// The epoch in progress (1-based, as in [`EpochRecord::epoch`]).
    pub epoch: usize,
    /// Optimizer steps taken before the evaluation.
    pub step: u64,
    pub test_loss: f64,
    pub test_accuracy: f64,
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
pub(crate) fn record_from(
    epoch: usize,
    step: u64,
    m: &EpochMetrics,
    timing: EpochTiming,
) -> EpochRecord {
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
    #[error("training setting {0}")]
    Config(String),
    /// The run would need more memory than there is: refused before allocating.
    #[error("{0}")]
    Memory(String),
    /// Parameters (or optimizer state) hold NaN or infinity: the run stops before saving them.
    #[error(
        "training diverged: non-finite values in {tensors} after epoch {epoch} (step {step}). \
         Stopped; the last good checkpoint (if any) was kept. Try a lower learning rate."
    )]
    NonFiniteParameters {
        tensors: String,
        epoch: usize,
        step: u64,
    },
}
