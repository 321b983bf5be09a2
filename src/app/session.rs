//! A training run driven from the UI thread, one bounded piece of GPU work per frame.
//!
//! The session is a small state machine (train steps, then the flip count and eval batches,
//! then the epoch summary) built on the trainer's step-wise API. Each submission is followed
//! by a non-blocking readback of the (tiny) metric summaries; those readbacks double as
//! completion signals, so at most [`MAX_IN_FLIGHT`] submissions are ever queued and the
//! renderer, which shares the queue, waits behind at most that much compute.

use std::collections::VecDeque;
use std::sync::Arc;
use web_time::Instant;

use crate::data::Dataset;
use crate::gpu::GpuContext;
use crate::kernels::loss::LossSummary;
use crate::model::ModelConfig;
use crate::snn::{MetricsReadback, MomentKind};
use crate::train::{EpochRecord, EpochTiming, TrainConfig, TrainError, Trainer};

use super::training_view::{push_series, History};

/// Submissions allowed in flight; more would make frames wait behind queued compute.
pub const MAX_IN_FLIGHT: usize = 2;

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
enum Pending {
    /// A train step: its global step number (1-based) and batch size.
    Step {
        step: u64,
        samples: usize,
    },
    EvalBatch,
    EpochEnd,
}

/// One training run: the trainer, its data, and the work in flight.
pub struct Session {
    pub trainer: Trainer,
    pub train: Arc<Dataset>,
    pub test: Arc<Dataset>,
    pub phase: Phase,
    /// True while steps are being submitted.
    pub running: bool,
    /// Stop submitting train steps once the network has taken this many (screenshot mode).
    pub step_limit: Option<u64>,
    in_flight: VecDeque<(Pending, MetricsReadback)>,
    /// Cumulative summaries at the last completed step (per-step values are differences).
    last_loss: LossSummary,
    last_moments: Vec<f32>,
    /// Start of the current throughput window and samples completed in it.
    throughput: Option<(Instant, usize)>,
    epoch_started: Option<Instant>,
    train_seconds: f64,
    eval_started: Option<Instant>,
    epoch_samples: usize,
    last_lr: f32,
}

impl Session {
    /// A fresh, idle run of `model` with `config` on `train` / `test`.
    pub fn new(
        gpu: &GpuContext,
        model: &ModelConfig,
        config: TrainConfig,
        train: Arc<Dataset>,
        test: Arc<Dataset>,
    ) -> Result<Self, TrainError> {
        let trainer = Trainer::new(gpu, model, config, train.len())?;
        let lr = trainer.config.lr;
        Ok(Self {
            trainer,
            train,
            test,
            phase: Phase::Training { step: 0 },
            running: false,
            step_limit: None,
            in_flight: VecDeque::new(),
            last_loss: LossSummary::default(),
            last_moments: Vec::new(),
            throughput: None,
            epoch_started: None,
            train_seconds: 0.0,
            eval_started: None,
            epoch_samples: 0,
            last_lr: lr,
        })
    }

    /// Starts or pauses submitting steps. Work already in flight still completes.
    pub fn set_running(&mut self, running: bool) {
        self.running = running && self.phase != Phase::Done;
        // The gap across a pause is not throughput.
        self.throughput = running.then(|| (Instant::now(), 0));
    }

    /// After a checkpoint was restored into this fresh session: continue with the next epoch
    /// (or stay done when the checkpoint already finished the configured epochs).
    pub fn after_restore(&mut self) {
        self.phase = if self.trainer.finished() {
            Phase::Done
        } else {
            Phase::Training { step: 0 }
        };
    }

    /// Ends the run where it is: weights, curves and the network stay for inspection and
    /// saving; work in flight still completes.
    pub fn stop(&mut self) {
        self.running = false;
        self.phase = Phase::Done;
    }

    /// Submissions not yet completed.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// True when nothing is queued on the GPU for this run.
    pub fn idle(&self) -> bool {
        self.in_flight.is_empty()
    }

    /// True while single-sample probes may run: not during the end-of-epoch evaluation,
    /// whose eval summary a probe's eval-mode forward would join.
    pub fn can_probe(&self) -> bool {
        matches!(self.phase, Phase::Training { .. } | Phase::Done)
    }

    /// Steps per epoch and eval batches, for progress bars.
    pub fn epoch_shape(&self) -> (usize, usize) {
        (
            self.trainer.steps_per_epoch(self.train.len()),
            self.trainer.eval_batches(self.test.len()),
        )
    }

    /// Collects finished readbacks into `history`. Never waits.
    pub fn tick(&mut self, gpu: &GpuContext, history: &mut History) -> Result<(), TrainError> {
        // Non-blocking poll so map callbacks fire even when nothing else polls the device.
        let _ = gpu.device.poll(wgpu::PollType::Poll);
        let collected = self.collect(history);
        if collected.is_err() {
            // A failed readback or a failed epoch summary ends the run (shown once): nothing
            // stays queued to fail again on the next frame, and the phase cannot get stuck.
            self.in_flight.clear();
            self.running = false;
            self.phase = Phase::Done;
        }
        collected
    }

    /// Submits at most one piece of work (a step with its metric readback, in one submission)
    /// when running, below [`MAX_IN_FLIGHT`], and when submitting will not block this thread
    /// ([`GpuContext::can_submit_without_waiting`]). Returns whether it submitted.
    pub fn submit(&mut self, gpu: &GpuContext) -> Result<bool, TrainError> {
        if !self.running
            || self.in_flight.len() >= MAX_IN_FLIGHT
            || !gpu.can_submit_without_waiting()
        {
            return Ok(false);
        }
        gpu.batch(|| self.submit_next(gpu))?;
        Ok(true)
    }

    fn collect(&mut self, history: &mut History) -> Result<(), TrainError> {
        while let Some((_, readback)) = self.in_flight.front_mut() {
            let Some(result) = readback.try_take() else {
                break;
            };
            let (loss, moments, flips) = result.map_err(crate::snn::NetworkError::from)?;
            let Some((pending, _)) = self.in_flight.pop_front() else {
                break;
            };
            match pending {
                Pending::Step { step, samples } => {
                    self.on_step(history, &loss, &moments, step, samples)?
                }
                Pending::EvalBatch => {}
                Pending::EpochEnd => {
                    let metrics = self.trainer.net.metrics_from(&loss, &moments, &flips);
                    let timing = EpochTiming {
                        lr: self.last_lr,
                        samples: self.epoch_samples,
                        train_seconds: self.train_seconds,
                        eval_seconds: self
                            .eval_started
                            .map(|t| t.elapsed().as_secs_f64())
                            .unwrap_or(0.0),
                    };
                    let record: EpochRecord = self.trainer.finish_epoch(&metrics, timing)?;
                    log::info!(
                        "epoch {}: test accuracy {:.2}%",
                        record.epoch,
                        100.0 * record.test_accuracy
                    );
                    history.epochs.push(record);
                    self.epoch_started = None;
                    self.phase = if self.trainer.finished() {
                        self.running = false;
                        Phase::Done
                    } else {
                        Phase::Training { step: 0 }
                    };
                }
            }
        }
        Ok(())
    }

    /// Turns the cumulative summaries after a step into per-step points.
    fn on_step(
        &mut self,
        history: &mut History,
        loss: &[LossSummary],
        moments: &[f32],
        step: u64,
        samples: usize,
    ) -> Result<(), TrainError> {
        let Some(now) = loss.first().copied() else {
            return Ok(());
        };
        let prev = self.last_loss;
        let step = step as f64;
        // The train slot restarts at zero each epoch; a smaller sample count means a new epoch.
        let (d_loss, d_correct, d_samples) = if now.samples >= prev.samples {
            (
                now.loss_sum - prev.loss_sum,
                now.correct - prev.correct,
                now.samples - prev.samples,
            )
        } else {
            (now.loss_sum, now.correct, now.samples)
        };
        if d_samples > 0 {
            let mean = d_loss as f64 / d_samples as f64;
            if !mean.is_finite() {
                self.running = false;
                return Err(TrainError::NonFinite {
                    value: mean,
                    epoch: self.trainer.epoch,
                    step: self.trainer.net.step,
                });
            }
            history.step_loss.push([step, mean]);
            history
                .step_accuracy
                .push([step, d_correct as f64 / d_samples as f64]);
        }
        let fresh = self.last_moments.len() != moments.len()
            || moments
                .iter()
                .zip(&self.last_moments)
                .any(|(now, before)| now < before);
        for (slot, (name, kind)) in self.trainer.net.moment_slots().iter().enumerate() {
            if 3 * slot + 2 >= moments.len() {
                continue;
            }
            let before = |i: usize| {
                if fresh {
                    0.0
                } else {
                    self.last_moments[i] as f64
                }
            };
            // This step's part of the cumulative (sum, sum of squares, count).
            let delta = |i: usize| moments[3 * slot + i] as f64 - before(3 * slot + i);
            let (sum, sumsq, count) = (delta(0), delta(1), delta(2));
            if count <= 0.0 {
                continue;
            }
            let mean = sum / count;
            match kind {
                MomentKind::FiringRate => history.push_firing(name, [step, mean]),
                MomentKind::Gradient => {
                    let var = (sumsq / count - mean * mean).max(f64::MIN_POSITIVE);
                    push_series(&mut history.grad_mean, name, [step, mean]);
                    push_series(&mut history.grad_log_var, name, [step, var.log10()]);
                }
            }
        }
        self.last_loss = now;
        self.last_moments = moments.to_vec();
        // Throughput since the run last (re)started: completions arrive in bursts (two
        // readbacks can land in one frame), so per-completion gaps would be noise.
        let (since, done) = self.throughput.get_or_insert((Instant::now(), 0));
        *done += samples;
        let elapsed = since.elapsed().as_secs_f64();
        if elapsed > 0.5 {
            history
                .samples_per_second
                .push([step, *done as f64 / elapsed]);
        }
        Ok(())
    }

    fn submit_next(&mut self, gpu: &GpuContext) -> Result<(), TrainError> {
        let (steps, eval_batches) = self.epoch_shape();
        match self.phase {
            Phase::Training { step } => {
                if self
                    .step_limit
                    .is_some_and(|limit| self.trainer.net.step >= limit)
                {
                    return Ok(());
                }
                if step == 0 && self.epoch_started.is_none() {
                    self.trainer.begin_epoch(gpu, &self.train)?;
                    self.epoch_started = Some(Instant::now());
                    self.train_seconds = 0.0;
                    self.epoch_samples = 0;
                    self.last_loss = LossSummary::default();
                    self.last_moments.clear();
                }
                let budget_spent = self.trainer.net.step >= self.trainer.total_steps();
                if step >= steps || budget_spent {
                    self.train_seconds = self
                        .epoch_started
                        .map(|t| t.elapsed().as_secs_f64())
                        .unwrap_or(0.0);
                    self.trainer.record_flip_count(gpu)?;
                    self.eval_started = Some(Instant::now());
                    self.phase = Phase::Evaluating { batch: 0 };
                    return Ok(());
                }
                self.last_lr = self.trainer.record_train_step(gpu, &self.train, step)?;
                let samples = self.trainer.config.batch.min(self.train.len());
                self.epoch_samples += samples;
                self.in_flight.push_back((
                    Pending::Step {
                        step: self.trainer.net.step,
                        samples,
                    },
                    self.trainer.net.read_metrics_async(gpu),
                ));
                self.phase = Phase::Training { step: step + 1 };
            }
            Phase::Evaluating { batch } => {
                if batch >= eval_batches {
                    self.in_flight
                        .push_back((Pending::EpochEnd, self.trainer.net.read_metrics_async(gpu)));
                    self.phase = Phase::Summarising;
                    return Ok(());
                }
                self.trainer.record_eval_batch(gpu, &self.test, batch)?;
                self.in_flight
                    .push_back((Pending::EvalBatch, self.trainer.net.read_metrics_async(gpu)));
                self.phase = Phase::Evaluating { batch: batch + 1 };
            }
            Phase::Summarising | Phase::Done => {}
        }
        Ok(())
    }
}
