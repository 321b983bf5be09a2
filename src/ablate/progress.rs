//! The terminal view of a running grid (native): an overall bar (runs done / total, optimizer
//! steps, ETA from this session's pace) and the current run's bar (epoch, step, loss,
//! accuracy), with one line per finished epoch and run above them.

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use web_time::Instant;

use super::grid::GridEvent;
use super::RunKey;
use crate::train::run::RunEvent;

/// Formats seconds as `1h 02m`, `4m 10s` or `12s`.
pub fn human_duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// Progress of a grid; feed it every [`GridEvent`].
pub struct GridProgress {
    multi: MultiProgress,
    overall: ProgressBar,
    current: Option<ProgressBar>,
    key: Option<RunKey>,
    /// Optimizer steps of the whole grid, and of the runs already finished or skipped.
    steps_total: u64,
    steps_finished_runs: u64,
    /// Steps of the current run: in all, and the last one reported.
    run_steps: u64,
    run_step: u64,
    /// Steps trained by this process, and since when (the ETA's pace).
    session_steps: u64,
    started: Option<Instant>,
}

impl GridProgress {
    /// A view for a grid of `total_steps` optimizer steps in all.
    pub fn new(total_runs: usize, total_steps: u64) -> Self {
        let multi = MultiProgress::new();
        let overall = multi.add(ProgressBar::new(total_runs as u64));
        overall.set_style(
            ProgressStyle::with_template("grid  [{bar:30}] {pos}/{len} runs  {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        Self {
            multi,
            overall,
            current: None,
            key: None,
            steps_total: total_steps,
            steps_finished_runs: 0,
            run_steps: 0,
            run_step: 0,
            session_steps: 0,
            started: None,
        }
    }

    fn update_overall(&self) {
        let done = self.steps_finished_runs + self.run_step;
        let eta = match (self.started, self.session_steps) {
            (Some(t), n) if n > 0 => {
                let pace = t.elapsed().as_secs_f64() / n as f64;
                format!(
                    "ETA {}",
                    human_duration(pace * self.steps_total.saturating_sub(done) as f64)
                )
            }
            _ => "ETA -".into(),
        };
        self.overall
            .set_message(format!("step {done}/{}  {eta}", self.steps_total));
    }

    fn println(&self, line: String) {
        // Falls back to stderr when the terminal is not drawn (e.g. output piped).
        if self.multi.println(&line).is_err() || self.multi.is_hidden() {
            eprintln!("{line}");
        }
    }

    /// Updates the view.
    pub fn handle(&mut self, event: GridEvent<'_>) {
        match event {
            GridEvent::RunSkipped {
                index,
                total,
                key,
                steps,
            } => {
                self.steps_finished_runs += steps;
                self.overall.inc(1);
                self.println(format!(
                    "[{}/{total}] {}: finished earlier, skipped",
                    index + 1,
                    key.dir_name()
                ));
                self.update_overall();
            }
            GridEvent::RunStarted {
                index,
                total,
                key,
                resume_epoch,
                steps,
            } => {
                self.started.get_or_insert_with(Instant::now);
                self.key = Some(key);
                self.run_steps = steps;
                self.run_step = 0;
                let bar = self.multi.add(ProgressBar::new(0));
                bar.set_style(
                    ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> "),
                );
                self.current = Some(bar);
                self.println(format!(
                    "[{}/{total}] {}{}",
                    index + 1,
                    key.dir_name(),
                    resume_epoch
                        .map(|e| format!(": resuming after epoch {e}"))
                        .unwrap_or_default()
                ));
                self.update_overall();
            }
            GridEvent::Run(RunEvent::Resumed { step, .. }) => {
                self.run_step = step;
                self.update_overall();
            }
            GridEvent::Run(RunEvent::EpochStarted {
                epoch,
                epochs,
                steps,
            }) => {
                if let (Some(bar), Some(key)) = (&self.current, &self.key) {
                    bar.reset();
                    bar.set_length(steps as u64);
                    bar.set_prefix(format!("{} epoch {epoch}/{epochs}", key.dir_name()));
                }
            }
            GridEvent::Run(RunEvent::Step(p)) => {
                self.session_steps += 1;
                self.run_step = p.global_step;
                if let Some(bar) = &self.current {
                    bar.set_position(p.step_in_epoch as u64);
                    bar.set_message(format!(
                        "loss {:.4} acc {:.2}% {:.1} samples/s",
                        p.epoch_loss,
                        100.0 * p.epoch_accuracy,
                        p.epoch_samples_per_second
                    ));
                }
                self.update_overall();
            }
            GridEvent::Run(RunEvent::StepEvals(evals)) => {
                if let Some(last) = evals.last() {
                    let name = self.key.map(|k| k.dir_name()).unwrap_or_default();
                    self.println(format!(
                        "    {name} step {}: test acc {:.2}% ({} evaluations this epoch)",
                        last.step,
                        100.0 * last.test_accuracy,
                        evals.len()
                    ));
                }
            }
            GridEvent::Run(RunEvent::EpochFinished(r)) => {
                let name = self.key.map(|k| k.dir_name()).unwrap_or_default();
                self.println(format!(
                    "    {name} epoch {}: train loss {:.4}, test acc {:.2}%, flips {:.4}%, {:.1}s",
                    r.epoch,
                    r.train_loss,
                    100.0 * r.test_accuracy,
                    100.0 * r.flip_ratio_total,
                    r.epoch_seconds + r.eval_seconds
                ));
            }
            GridEvent::RunFinished { .. } => {
                if let Some(bar) = self.current.take() {
                    bar.finish_and_clear();
                    self.multi.remove(&bar);
                }
                self.steps_finished_runs += self.run_steps;
                self.run_step = 0;
                self.overall.inc(1);
                self.update_overall();
            }
        }
    }

    /// Clears the bars.
    pub fn finish(&self) {
        if let Some(bar) = &self.current {
            bar.finish_and_clear();
        }
        self.overall.finish_and_clear();
    }
}
