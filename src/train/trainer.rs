//! The one epoch driver. [`Trainer::submit_next`] records and submits the next piece of an
//! epoch (a training step, the end-of-epoch flip count, an eval batch, or the request for the
//! epoch summaries), each with a readback of the small metric summaries;
//! [`Trainer::poll`] collects the readbacks that have arrived and turns them into
//! [`Event`]s. Neither waits, so the app calls them once per frame; the CLI loops them in
//! [`Trainer::run_epoch`] and blocks on the device between polls.

use std::collections::VecDeque;

use web_time::Instant;

use crate::checkpoint::{Checkpoint, CheckpointMeta};
use crate::data::{epoch_order, make_batch, Dataset, InputSpec};
use crate::gpu::{GpuContext, Pending, Readback};
#[cfg(not(target_arch = "wasm32"))]
use crate::kernels::loss::LossSummary;
use crate::model::{footprint, ModelConfig};
use crate::snn::metrics::mean_and_variance;
use crate::snn::{
    LayerReadback, MetricsReadback, MomentKind, Network, NetworkError, Pass, PendingCheckpoint,
    RawMetrics, Workspaces,
};

use super::{record_from, EpochRecord, EpochTiming, StepEval, TrainConfig, TrainError};

/// Submissions allowed in flight: few enough that a UI sharing the queue never waits behind
/// much compute.
pub const MAX_IN_FLIGHT: usize = 2;

/// Mixed into the run seed with the step number: the augmentation / Poisson noise of a step
/// depends on `(seed, step)` only, so a resumed run continues exactly.
const STEP_SEED_MIX: u64 = 0xA24B_AED4_963E_E407;

/// Refuses a model and batch whose estimated memory ([`crate::model::footprint`]) exceeds what
/// the host has left, before anything is allocated. The device's own buffers count as host
/// memory on a CPU adapter (lavapipe); a discrete GPU's memory is not known to wgpu, so there
/// only the host-side input batch counts and running out shows up as a typed device error.
fn check_memory(ctx: &GpuContext, model: &ModelConfig, batch: usize) -> Result<(), TrainError> {
    let fp = footprint::estimate(model, batch, true).map_err(NetworkError::from)?;
    let device_is_host = ctx.adapter_info.device_type == wgpu::DeviceType::Cpu;
    let needed = fp
        .input_bytes
        .saturating_add(if device_is_host { fp.device_bytes() } else { 0 });
    match crate::gpu::memory::host_available_bytes() {
        Some(available) if needed > available => Err(TrainError::Memory(format!(
            "{} at batch {batch}, T = {} needs about {} ({} parameters, optimizer state \
             included: {}; activations and scratch: {}), but only {} of memory is available. \
             Lower the batch size (--batch) or the timesteps (-T).",
            model.name,
            model.timesteps,
            footprint::human_bytes(needed),
            fp.parameters,
            footprint::human_bytes(fp.parameter_bytes),
            footprint::human_bytes(fp.workspace_bytes),
            footprint::human_bytes(available),
        ))),
        _ => Ok(()),
    }
}

/// Where the run is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Next: train step `step` of the current epoch.
    Training { step: usize },
    /// Next: eval batch `batch` of the end-of-epoch evaluation.
    Evaluating { batch: usize },
    /// All eval batches submitted; waiting for the epoch summaries.
    Summarising,
    /// All epochs (or the step budget) done.
    Done,
}

/// What a readback in flight belongs to.
enum Work {
    /// A train step: its global step number (1-based), batch size and place in the epoch.
    Step {
        step: u64,
        samples: usize,
        step_in_epoch: usize,
        steps_in_epoch: usize,
    },
    EvalBatch,
    EpochEnd,
}

/// Mean and variance of one moment slot over one step.
#[derive(Clone, Debug, PartialEq)]
pub struct SlotMoments {
    pub name: String,
    pub kind: MomentKind,
    pub mean: f64,
    pub variance: f64,
}

/// What one training step measured.
#[derive(Clone, Debug, PartialEq)]
pub struct StepReport {
    /// 0-based epoch, steps done in it, steps in it, and the global step (1-based).
    pub epoch: usize,
    pub step_in_epoch: usize,
    pub steps_in_epoch: usize,
    pub global_step: u64,
    pub samples: usize,
    /// This step's mean loss and accuracy.
    pub loss: f64,
    pub accuracy: f64,
    /// Since the start of the epoch.
    pub epoch_loss: f64,
    pub epoch_accuracy: f64,
    pub epoch_samples_per_second: f64,
    /// This step's firing rates and latent-gradient moments, per slot.
    pub moments: Vec<SlotMoments>,
}

/// What [`Trainer::poll`] found.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    Step(StepReport),
    Epoch(EpochRecord),
}

/// Wall-clock of the epoch in progress.
#[derive(Default)]
struct EpochClock {
    started: Option<Instant>,
    /// Until the last collected train step.
    train_seconds: f64,
    eval_started: Option<Instant>,
    samples: usize,
}

/// Drives a network over a data set, one epoch after another.
pub struct Trainer {
    net: Network,
    config: TrainConfig,
    /// Epochs completed.
    epoch: usize,
    total_steps: u64,
    /// Stop submitting train steps once the network has taken this many (screenshots).
    step_limit: Option<u64>,
    workspaces: Workspaces,
    phase: Phase,
    in_flight: VecDeque<(Work, MetricsReadback)>,
    clock: EpochClock,
    /// Cumulative summaries at the last collected step (per-step values are differences).
    last: RawMetrics,
    last_lr: f32,
    /// Measured in the last finished epoch (written into checkpoints).
    firing_rates: Vec<(String, f64)>,
    /// An error found while collecting, returned by the next `poll` so the reports collected
    /// before it are not lost.
    deferred_error: Option<TrainError>,
    /// Evaluate the test set after every this many optimizer steps (native driver only).
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    eval_every: Option<u64>,
    /// The step of the last such evaluation (none is due at a run's first or resumed step).
    last_step_eval: u64,
    /// Evaluations not yet taken by the caller.
    step_evals: Vec<StepEval>,
}

impl Trainer {
    /// A fresh network for `model`, seeded by `config.seed`, for `train_len` training samples.
    pub fn new(
        ctx: &GpuContext,
        model: &ModelConfig,
        config: TrainConfig,
        train_len: usize,
    ) -> Result<Self, TrainError> {
        config.validate()?;
        check_memory(ctx, model, config.batch)?;
        let net = ctx.allocating("the model's parameters", || {
            Network::new(ctx, model, config.seed)
        })?;
        let total_steps = config.total_steps(train_len);
        let mut trainer = Self {
            net,
            last_lr: config.lr,
            config,
            epoch: 0,
            total_steps: total_steps.max(1),
            step_limit: None,
            workspaces: Workspaces::default(),
            phase: Phase::Training { step: 0 },
            in_flight: VecDeque::new(),
            clock: EpochClock::default(),
            last: RawMetrics::default(),
            firing_rates: Vec::new(),
            deferred_error: None,
            eval_every: None,
            last_step_eval: 0,
            step_evals: Vec::new(),
        };
        if trainer.finished() {
            trainer.phase = Phase::Done; // e.g. zero epochs
        }
        Ok(trainer)
    }

    /// The network (read-only: inspection, summaries).
    pub fn net(&self) -> &Network {
        &self.net
    }

    /// The model being trained.
    pub fn model(&self) -> &ModelConfig {
        self.net.config()
    }

    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// Epochs completed.
    pub fn epoch(&self) -> usize {
        self.epoch
    }

    /// Optimizer steps taken.
    pub fn step(&self) -> u64 {
        self.net.step()
    }

    /// Evaluates the test set after every `every` optimizer steps of [`Trainer::run_epoch`]
    /// (`None` or 0: only at epoch ends), not at the current step (nor at the step of a
    /// checkpoint restored later); the results wait in [`Trainer::take_step_evals`]. The
    /// evaluations change nothing in the training: the same steps see the same batches and
    /// reach the same weights.
    pub fn set_eval_every(&mut self, every: Option<u64>) {
        self.eval_every = every.filter(|&n| n > 0);
        self.last_step_eval = self.net.step();
    }

    /// The mid-training evaluations made since the last call, in step order.
    pub fn take_step_evals(&mut self) -> Vec<StepEval> {
        std::mem::take(&mut self.step_evals)
    }

    /// True when `--eval-every` asks for an evaluation at the current step.
    #[cfg(not(target_arch = "wasm32"))]
    fn step_eval_due(&self) -> bool {
        let step = self.net.step();
        matches!(self.phase, Phase::Training { .. })
            && step != self.last_step_eval
            && self.eval_every.is_some_and(|n| step.is_multiple_of(n))
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Pauses submitting train steps once `limit` steps are taken (`None`: no limit).
    pub fn set_step_limit(&mut self, limit: Option<u64>) {
        self.step_limit = limit;
    }

    /// Batch sizes whose workspaces exist.
    pub fn workspace_batches(&self) -> Vec<usize> {
        self.workspaces.batches()
    }

    /// True when the batch uploaded last at `batch` repeats one frame over time and the
    /// single-frame encoder path is on, i.e. a forward at `batch` takes that path.
    pub fn uses_single_frame_encoder(&self, batch: usize) -> bool {
        self.workspaces
            .find(batch)
            .is_some_and(|ws| self.net.uses_single_frame_encoder(ws))
    }

    /// Turns the single-frame encoder path (training and eval) on or off (tests compare both).
    pub fn set_frame_broadcast(&mut self, enabled: bool) {
        self.net.set_frame_broadcast(enabled);
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
        InputSpec::for_model(self.net.config(), train && self.config.augment)
    }

    fn check_data(&self, data: &Dataset) -> Result<(), TrainError> {
        let model = self.net.config();
        // Event data holds its T frames stacked as channels (`ModelConfig::data_shape`).
        let [c, h, w] = model.data_shape();
        if [data.channels, data.height, data.width] != [c, h, w] {
            return Err(TrainError::Data(format!(
                "data set samples are {}x{}x{}, the model expects {c}x{h}x{w}{}",
                data.channels,
                data.height,
                data.width,
                if model.encoding == crate::model::Encoding::Events {
                    format!(" ({} event frames of {:?})", model.timesteps, model.input)
                } else {
                    String::new()
                }
            )));
        }
        if data.classes > model.classes {
            return Err(TrainError::Data(format!(
                "data set has {} classes, the model {}",
                data.classes, model.classes
            )));
        }
        Ok(())
    }

    /// True once all epochs or `max_steps` are done.
    pub fn finished(&self) -> bool {
        self.net.step() >= self.total_steps || self.epoch >= self.config.epochs
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

    /// Submissions whose readbacks have not been collected.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Drops everything in flight and ends the run (after a failure, or a Stop).
    pub fn stop(&mut self) {
        self.in_flight.clear();
        self.phase = Phase::Done;
    }

    /// Records and submits the next piece of the epoch with its summary readback. Returns
    /// false when there is nothing to submit now (step limit reached, summaries pending, run
    /// done). Never waits.
    pub fn submit_next(
        &mut self,
        ctx: &GpuContext,
        train: &Dataset,
        test: &Dataset,
    ) -> Result<bool, TrainError> {
        // A device that ran out of memory or was lost since the last submission ends the run.
        ctx.check_fault().map_err(NetworkError::from)?;
        match self.phase {
            Phase::Training { step } => {
                if self.step_limit.is_some_and(|l| self.net.step() >= l) {
                    return Ok(false);
                }
                if step == 0 && self.clock.started.is_none() {
                    self.begin_epoch(ctx, train, test)?;
                }
                let steps = self.steps_per_epoch(train.len());
                if step >= steps || self.net.step() >= self.total_steps {
                    // The end-of-epoch flip count and check for non-finite parameters; the
                    // eval summary restarts so the
                    // evaluation is not mixed with earlier eval-mode forwards (probes).
                    let mut enc = ctx.encoder("flip count");
                    self.net.record_flip_count(ctx, &mut enc)?;
                    self.net.record_nonfinite_count(ctx, &mut enc)?;
                    ctx.submit(enc);
                    self.net.reset_eval_summary(ctx);
                    // Training time ends here (later step reports arrive during the eval).
                    self.clock.train_seconds = self.elapsed_in_epoch();
                    self.clock.eval_started = Some(Instant::now());
                    self.phase = Phase::Evaluating { batch: 0 };
                    return Ok(true);
                }
                let samples = self.record_train_step(ctx, train, step)?;
                let work = Work::Step {
                    step: self.net.step(),
                    samples,
                    step_in_epoch: step + 1,
                    steps_in_epoch: steps,
                };
                self.in_flight.push_back((work, self.net.read_metrics(ctx)));
                self.phase = Phase::Training { step: step + 1 };
            }
            Phase::Evaluating { batch } => {
                if batch >= self.eval_batches(test.len()) {
                    let readback = self.net.read_metrics(ctx);
                    self.in_flight.push_back((Work::EpochEnd, readback));
                    self.phase = Phase::Summarising;
                    return Ok(true);
                }
                self.record_eval_batch(ctx, test, batch)?;
                self.in_flight
                    .push_back((Work::EvalBatch, self.net.read_metrics(ctx)));
                self.phase = Phase::Evaluating { batch: batch + 1 };
            }
            Phase::Summarising | Phase::Done => return Ok(false),
        }
        Ok(true)
    }

    fn begin_epoch(
        &mut self,
        ctx: &GpuContext,
        train: &Dataset,
        test: &Dataset,
    ) -> Result<(), TrainError> {
        self.check_data(train)?;
        self.check_data(test)?;
        if train.is_empty() {
            return Err(TrainError::Data("the training set is empty".into()));
        }
        self.net.reset_metrics(ctx)?;
        self.clock = EpochClock {
            started: Some(Instant::now()),
            ..EpochClock::default()
        };
        self.last = RawMetrics::default();
        Ok(())
    }

    /// Uploads batch `step_in_epoch` of the current epoch, records forward, backward and the
    /// optimizer step, and submits. Returns the batch size.
    fn record_train_step(
        &mut self,
        ctx: &GpuContext,
        train: &Dataset,
        step_in_epoch: usize,
    ) -> Result<usize, TrainError> {
        let batch = self.config.batch.min(train.len());
        // Recomputing the permutation per step costs a shuffle of the index list (8,000
        // entries for MNIST-10k), negligible next to a GPU step, and keeps the order a pure
        // function of (seed, epoch).
        let order = epoch_order(
            train.len(),
            self.config.seed,
            self.epoch,
            self.config.shuffle,
        );
        let idx = &order[step_in_epoch * batch..(step_in_epoch + 1) * batch];
        let seed = self.config.seed ^ (self.net.step() + 1).wrapping_mul(STEP_SEED_MIX);
        let host = make_batch(train, idx, &self.input_spec(true), seed);
        let lr = self.lr_at(self.net.step());
        let optimizer = self.config.optimizer();
        let ws = self.workspaces.get(ctx, &self.net, batch, true)?;
        self.net.upload(ctx, ws, &host.input, &host.labels)?;
        let mut enc = ctx.encoder("train step");
        self.net.record_forward(ctx, &mut enc, ws, Pass::Train)?;
        self.net.record_backward(ctx, &mut enc, ws)?;
        self.net.record_optimizer(ctx, &mut enc, &optimizer, lr)?;
        ctx.submit(enc);
        self.last_lr = lr;
        Ok(batch)
    }

    /// Uploads eval batch `index` of `test`, records an eval-mode forward (loss and accuracy
    /// into the eval summary) and submits. Returns the batch size.
    fn record_eval_batch(
        &mut self,
        ctx: &GpuContext,
        test: &Dataset,
        index: usize,
    ) -> Result<usize, TrainError> {
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
        let ws = self.workspaces.get(ctx, &self.net, idx.len(), false)?;
        self.net.upload(ctx, ws, &host.input, &host.labels)?;
        let mut enc = ctx.encoder("eval step");
        self.net.record_forward(ctx, &mut enc, ws, Pass::Eval)?;
        ctx.submit(enc);
        Ok(idx.len())
    }

    /// Collects the readbacks that have arrived, oldest first. Never waits. An error (a
    /// failed readback, a non-finite loss) ends the run.
    pub fn poll(&mut self) -> Result<Vec<Event>, TrainError> {
        if let Some(e) = self.deferred_error.take() {
            return Err(e);
        }
        let mut events = Vec::new();
        match self.collect(&mut events) {
            Ok(()) => Ok(events),
            // Reports collected before the error still reach the caller; the error comes with
            // the next poll.
            Err(e) if !events.is_empty() => {
                self.stop();
                self.deferred_error = Some(e);
                Ok(events)
            }
            Err(e) => {
                self.stop();
                Err(e)
            }
        }
    }

    fn collect(&mut self, events: &mut Vec<Event>) -> Result<(), TrainError> {
        while let Some((_, readback)) = self.in_flight.front_mut() {
            let Some(result) = readback.try_take() else {
                break;
            };
            let raw = result.map_err(NetworkError::from)?;
            let Some((work, _)) = self.in_flight.pop_front() else {
                break;
            };
            match work {
                Work::Step {
                    step,
                    samples,
                    step_in_epoch,
                    steps_in_epoch,
                } => {
                    let mut report = self.step_report(raw, step, samples)?;
                    report.step_in_epoch = step_in_epoch;
                    report.steps_in_epoch = steps_in_epoch;
                    events.push(Event::Step(report));
                }
                Work::EvalBatch => {}
                Work::EpochEnd => events.push(Event::Epoch(self.finish_epoch(&raw)?)),
            }
        }
        Ok(())
    }

    /// Turns the cumulative summaries after a step into that step's values.
    fn step_report(
        &mut self,
        now: RawMetrics,
        step: u64,
        samples: usize,
    ) -> Result<StepReport, TrainError> {
        let (train, before) = (now.train(), self.last.train());
        let d_samples = train.samples.saturating_sub(before.samples);
        let loss = (train.loss_sum - before.loss_sum) as f64 / d_samples.max(1) as f64;
        if !loss.is_finite() {
            return Err(TrainError::NonFinite {
                value: loss,
                epoch: self.epoch,
                step,
            });
        }
        let accuracy =
            train.correct.saturating_sub(before.correct) as f64 / d_samples.max(1) as f64;
        let moments = now
            .slots
            .moments
            .iter()
            .enumerate()
            .filter_map(|(slot, (name, kind))| {
                let (sum, sumsq, count) = now.moment(slot)?;
                let (s0, q0, c0) = self.last.moment(slot).unwrap_or_default();
                let (mean, variance) = mean_and_variance(sum - s0, sumsq - q0, count - c0);
                (count > c0).then(|| SlotMoments {
                    name: name.clone(),
                    kind: *kind,
                    mean,
                    variance,
                })
            })
            .collect();
        self.clock.samples += samples;
        if self.clock.eval_started.is_none() {
            self.clock.train_seconds = self.elapsed_in_epoch();
        }
        let report = StepReport {
            epoch: self.epoch,
            step_in_epoch: 0,
            steps_in_epoch: 0,
            global_step: step,
            samples,
            loss,
            accuracy,
            epoch_loss: train.mean_loss(),
            epoch_accuracy: train.accuracy(),
            epoch_samples_per_second: self.clock.samples as f64
                / self.clock.train_seconds.max(1e-9),
            moments,
        };
        self.last = now;
        Ok(report)
    }

    fn elapsed_in_epoch(&self) -> f64 {
        self.clock
            .started
            .map(|t| t.elapsed().as_secs_f64())
            .unwrap_or(0.0)
    }

    /// Ends the epoch from the summaries read after its last eval batch.
    fn finish_epoch(&mut self, raw: &RawMetrics) -> Result<EpochRecord, TrainError> {
        let metrics = raw.epoch_metrics();
        let bad = raw.nonfinite_tensors();
        if !bad.is_empty() {
            let tensors: Vec<String> = bad.iter().map(|(n, c)| format!("{n} ({c})")).collect();
            return Err(TrainError::NonFiniteParameters {
                tensors: tensors.join(", "),
                epoch: self.epoch + 1,
                step: self.net.step(),
            });
        }
        if !metrics.train.mean_loss().is_finite() {
            return Err(TrainError::NonFinite {
                value: metrics.train.mean_loss(),
                epoch: self.epoch,
                step: self.net.step(),
            });
        }
        let timing = EpochTiming {
            lr: self.last_lr,
            samples: self.clock.samples,
            train_seconds: self.clock.train_seconds,
            eval_seconds: self
                .clock
                .eval_started
                .map(|t| t.elapsed().as_secs_f64())
                .unwrap_or(0.0),
        };
        let record = record_from(self.epoch, self.net.step(), &metrics, timing);
        self.epoch += 1;
        self.firing_rates = record.firing_rate.clone();
        self.clock = EpochClock::default();
        self.phase = if self.finished() {
            Phase::Done
        } else {
            Phase::Training { step: 0 }
        };
        Ok(record)
    }

    /// Trains the rest of the current epoch and evaluates on `test`, keeping up to
    /// [`MAX_IN_FLIGHT`] submissions queued and blocking on the device between polls
    /// (native). `on_step` sees every step's report.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn run_epoch(
        &mut self,
        ctx: &GpuContext,
        train: &Dataset,
        test: &Dataset,
        on_step: &mut dyn FnMut(&StepReport),
    ) -> Result<EpochRecord, TrainError> {
        if self.phase == Phase::Done {
            return Err(TrainError::Data(
                "the run has finished all its steps".into(),
            ));
        }
        loop {
            let events = match self.advance(ctx, train, test) {
                Ok(events) => events,
                Err(e) => {
                    self.stop();
                    return Err(e);
                }
            };
            for event in events {
                match event {
                    Event::Step(report) => on_step(&report),
                    Event::Epoch(record) => return Ok(record),
                }
            }
        }
    }

    /// One round of [`Trainer::run_epoch`]: submits while fewer than [`MAX_IN_FLIGHT`] are
    /// queued, then waits for the device and collects. Waiting for the whole queue rather than
    /// its oldest submission costs only the host's batch preparation (under a millisecond).
    #[cfg(not(target_arch = "wasm32"))]
    fn advance(
        &mut self,
        ctx: &GpuContext,
        train: &Dataset,
        test: &Dataset,
    ) -> Result<Vec<Event>, TrainError> {
        // An error found after reports were collected comes with the next poll.
        if let Some(e) = self.deferred_error.take() {
            return Err(e);
        }
        // A due evaluation waits until the steps in flight are collected, so it sees exactly
        // the weights after its step.
        while self.in_flight.len() < MAX_IN_FLIGHT
            && !self.step_eval_due()
            && self.submit_next(ctx, train, test)?
        {}
        if self.in_flight.is_empty() {
            if self.step_eval_due() {
                let summary = self.evaluate(ctx, test, None)?;
                self.last_step_eval = self.net.step();
                self.step_evals.push(StepEval {
                    epoch: self.epoch + 1,
                    step: self.net.step(),
                    test_loss: summary.mean_loss(),
                    test_accuracy: summary.accuracy(),
                });
                return Ok(Vec::new());
            }
            return Err(TrainError::Data(
                "nothing to run: the step limit is reached".into(),
            ));
        }
        ctx.wait_idle().map_err(NetworkError::from)?;
        self.poll()
    }

    /// Runs `data` through the network in eval mode and returns its loss summary; with
    /// `logits_out`, also collects `mean_t o[t]` per sample (data order). Native, blocking:
    /// the same eval batches the epoch driver records.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn evaluate(
        &mut self,
        ctx: &GpuContext,
        data: &Dataset,
        mut logits_out: Option<&mut Vec<f32>>,
    ) -> Result<LossSummary, TrainError> {
        self.check_data(data)?;
        self.check_not_evaluating()?;
        self.net.reset_eval_summary(ctx);
        let (t, classes) = (self.model().timesteps, self.model().classes);
        for index in 0..self.eval_batches(data.len()) {
            let b = self.record_eval_batch(ctx, data, index)?;
            if let Some(out) = logits_out.as_deref_mut() {
                let ws = self.workspaces.get(ctx, &self.net, b, false)?;
                let logits = self
                    .net
                    .logits(ws)?
                    .read_back(ctx)
                    .block(ctx)
                    .map_err(NetworkError::from)?;
                for bi in 0..b {
                    for c in 0..classes {
                        let sum: f32 = (0..t).map(|ti| logits[(ti * b + bi) * classes + c]).sum();
                        out.push(sum / t as f32);
                    }
                }
            }
        }
        let raw = self
            .net
            .read_metrics(ctx)
            .block(ctx)
            .map_err(NetworkError::from)?;
        Ok(raw.eval())
    }

    /// Uploads one sample (`input` `[T, 1, C, H, W]`), records an eval-mode forward and starts
    /// reading every spiking layer and the logits. Must not run during the end-of-epoch
    /// evaluation (its eval summary would count the sample).
    pub fn probe(
        &mut self,
        ctx: &GpuContext,
        input: &[f32],
        label: u32,
    ) -> Result<(Vec<LayerReadback>, Readback<f32>), TrainError> {
        self.check_not_evaluating()?;
        let ws = self.workspaces.get(ctx, &self.net, 1, false)?;
        self.net.upload(ctx, ws, input, &[label])?;
        let mut enc = ctx.encoder("probe");
        self.net.record_forward(ctx, &mut enc, ws, Pass::Inspect)?;
        ctx.submit(enc);
        let layers = self.net.read_spiking_layers(ctx, ws)?;
        Ok((layers, self.net.logits(ws)?.read_back(ctx)))
    }

    /// Eval-mode forwards outside the epoch's evaluation would join its eval summary.
    fn check_not_evaluating(&self) -> Result<(), TrainError> {
        match self.phase {
            Phase::Evaluating { .. } | Phase::Summarising => Err(TrainError::Data(
                "the end-of-epoch evaluation is running; try again when it is done".into(),
            )),
            _ => Ok(()),
        }
    }

    /// Starts reading a checkpoint of the network with optimizer state and the run's
    /// metadata (epoch, seed, training settings, last measured firing rates).
    pub fn checkpoint(&self, ctx: &GpuContext) -> PendingCheckpoint {
        let meta = CheckpointMeta {
            epoch: self.epoch,
            seed: Some(self.config.seed),
            train_config: serde_json::to_string(&self.config).ok(),
            firing_rates: self.firing_rates.clone(),
            ..CheckpointMeta::default()
        };
        self.net.checkpoint(ctx, true, meta)
    }

    /// Restores network, optimizer state, step, epoch and firing rates from a checkpoint;
    /// the run continues with the next epoch (or is done).
    pub fn restore(&mut self, ctx: &GpuContext, ck: &Checkpoint) -> Result<(), TrainError> {
        let meta = self.net.load_checkpoint(ctx, ck)?;
        self.epoch = meta.epoch;
        // The checkpoint's step was evaluated (or not) by the run that saved it.
        self.last_step_eval = self.net.step();
        self.firing_rates = meta.firing_rates;
        self.in_flight.clear();
        self.clock = EpochClock::default();
        self.phase = if self.finished() {
            Phase::Done
        } else {
            Phase::Training { step: 0 }
        };
        Ok(())
    }
}
