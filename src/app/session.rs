//! A training run driven from the UI thread, one bounded piece of GPU work per frame.
//!
//! The epoch itself is the trainer's ([`Trainer::submit_next`] / [`Trainer::poll`], the same
//! driver the CLI loops); the session adds what only a UI needs: pause and resume, submitting
//! only when the queue is idle on CPU adapters, and turning each step's report into the
//! plotted [`History`].

use std::sync::Arc;
use web_time::Instant;

use crate::data::Dataset;
use crate::gpu::GpuContext;
use crate::model::ModelConfig;
use crate::snn::MomentKind;
use crate::train::{Event, Phase, StepReport, TrainConfig, TrainError, Trainer, MAX_IN_FLIGHT};

use super::training_view::{push_series, History};

/// One training run: the trainer, its data, and whether it is running.
pub struct Session {
    pub trainer: Trainer,
    pub train: Arc<Dataset>,
    pub test: Arc<Dataset>,
    /// True while steps are being submitted.
    running: bool,
    /// Start of the current throughput window and samples completed in it.
    throughput: Option<(Instant, usize)>,
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
        Ok(Self {
            trainer: Trainer::new(gpu, model, config, train.len())?,
            train,
            test,
            running: false,
            throughput: None,
        })
    }

    /// Where the epoch is.
    pub fn phase(&self) -> Phase {
        self.trainer.phase()
    }

    /// True while steps are being submitted.
    pub fn running(&self) -> bool {
        self.running
    }

    /// Starts or pauses submitting steps. Work already in flight still completes.
    pub fn set_running(&mut self, running: bool) {
        self.running = running && self.phase() != Phase::Done;
        // The gap across a pause is not throughput.
        self.throughput = running.then(|| (Instant::now(), 0));
    }

    /// Stops submitting train steps once the network has taken `limit` (screenshot mode).
    pub fn set_step_limit(&mut self, limit: Option<u64>) {
        self.trainer.set_step_limit(limit);
    }

    /// Ends the run where it is: weights, curves and the network stay for inspection and
    /// saving.
    pub fn stop(&mut self) {
        self.running = false;
        self.trainer.stop();
    }

    /// Submissions not yet completed.
    pub fn in_flight(&self) -> usize {
        self.trainer.in_flight()
    }

    /// True when nothing is queued on the GPU for this run.
    pub fn idle(&self) -> bool {
        self.trainer.in_flight() == 0
    }

    /// True while single-sample probes may run: not during the end-of-epoch evaluation,
    /// whose eval summary a probe's eval-mode forward would join.
    pub fn can_probe(&self) -> bool {
        matches!(self.phase(), Phase::Training { .. } | Phase::Done)
    }

    /// Steps per epoch and eval batches, for progress bars.
    pub fn epoch_shape(&self) -> (usize, usize) {
        (
            self.trainer.steps_per_epoch(self.train.len()),
            self.trainer.eval_batches(self.test.len()),
        )
    }

    /// Collects finished readbacks into `history`. Never waits. An error ends the run.
    pub fn tick(&mut self, gpu: &GpuContext, history: &mut History) -> Result<(), TrainError> {
        // Non-blocking poll so map callbacks fire even when nothing else polls the device.
        let _ = gpu.device.poll(wgpu::PollType::Poll);
        let events = self.trainer.poll();
        if events.is_err() {
            self.running = false;
        }
        for event in events? {
            match event {
                Event::Step(report) => self.on_step(history, &report),
                Event::Epoch(record) => {
                    log::info!(
                        "epoch {}: test accuracy {:.2}%",
                        record.epoch,
                        100.0 * record.test_accuracy
                    );
                    history.epochs.push(record);
                    if self.phase() == Phase::Done {
                        self.running = false;
                    }
                }
            }
        }
        Ok(())
    }

    /// Submits at most one piece of work (with its metric readback, in one submission) when
    /// running, below [`MAX_IN_FLIGHT`], and when submitting will not block this thread
    /// ([`GpuContext::can_submit_without_waiting`]). Returns whether it submitted.
    pub fn submit(&mut self, gpu: &GpuContext) -> Result<bool, TrainError> {
        if !self.running
            || self.trainer.in_flight() >= MAX_IN_FLIGHT
            || !gpu.can_submit_without_waiting()
        {
            return Ok(false);
        }
        let (train, test) = (self.train.clone(), self.test.clone());
        let submitted = gpu.batch(|| self.trainer.submit_next(gpu, &train, &test));
        if submitted.is_err() {
            self.running = false;
            self.trainer.stop();
        }
        submitted
    }

    /// Adds one step's points to the curves.
    fn on_step(&mut self, history: &mut History, report: &StepReport) {
        let step = report.global_step as f64;
        history.step_loss.push([step, report.loss]);
        history.step_accuracy.push([step, report.accuracy]);
        for m in &report.moments {
            match m.kind {
                MomentKind::FiringRate => history.push_firing(&m.name, [step, m.mean]),
                MomentKind::Gradient => {
                    let var = m.variance.max(f64::MIN_POSITIVE);
                    push_series(&mut history.grad_mean, &m.name, [step, m.mean]);
                    push_series(&mut history.grad_log_var, &m.name, [step, var.log10()]);
                }
            }
        }
        // Throughput since the run last (re)started: completions arrive in bursts (two
        // readbacks can land in one frame), so per-completion gaps would be noise.
        let (since, done) = self.throughput.get_or_insert((Instant::now(), 0));
        *done += report.samples;
        let elapsed = since.elapsed().as_secs_f64();
        if elapsed > 0.5 {
            history
                .samples_per_second
                .push([step, *done as f64 / elapsed]);
        }
    }
}
