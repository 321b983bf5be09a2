//! One training run into a run directory (native): what `bitspike train` does after parsing
//! its options, shared with `bitspike ablate`, which runs it once per grid cell and seed.
//!
//! Fresh or resumed from a checkpoint (the directory's log is cut back to the checkpoint's
//! epoch), then epoch after epoch: the metrics line, then the checkpoint (the order
//! [`super::run_dir`] relies on). What to show while it runs is the caller's: it receives
//! [`RunEvent`]s.

use crate::checkpoint::{Checkpoint, CheckpointError};
use crate::data::Dataset;
use crate::gpu::{GpuContext, GpuError, Pending};

use super::run_dir::{RunDir, RunDirError};
use super::{EpochRecord, StepEval, StepReport, TrainError, Trainer};

/// How the run begins.
pub enum RunStart<'a> {
    /// From the trainer's fresh weights; a directory that already holds a run is refused
    /// unless `overwrite`.
    Fresh { overwrite: bool },
    /// From this checkpoint (weights, optimizer state, step, epoch).
    Resume(&'a Checkpoint),
}

/// What happens during a run, in order.
pub enum RunEvent<'a> {
    /// The checkpoint was restored; `dropped` log lines after its epoch were removed.
    Resumed {
        epoch: usize,
        step: u64,
        dropped: usize,
    },
    /// Epoch `epoch` (1-based) of `epochs` starts, `steps` optimizer steps long.
    EpochStarted {
        epoch: usize,
        epochs: usize,
        steps: usize,
    },
    Step(&'a StepReport),
    /// The epoch's mid-training evaluations (`--eval-every`), logged to `evals.jsonl`.
    StepEvals(&'a [StepEval]),
    /// Logged and checkpointed.
    EpochFinished(&'a EpochRecord),
}

/// What a run did.
pub struct RunOutcome {
    /// The epochs trained by this call.
    pub records: Vec<EpochRecord>,
    /// True when the checkpoint was already at the end of the run (nothing trained or written).
    pub already_finished: bool,
}

/// Errors of a run in a directory.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Train(#[from] TrainError),
    #[error(transparent)]
    Dir(#[from] RunDirError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("reading the checkpoint from the GPU: {0}")]
    Gpu(#[from] GpuError),
}

/// Trains `trainer` to the end of its run, logging each epoch to `run` (first the evaluations
/// of [`Trainer::set_eval_every`], if any, then the epoch's line) and checkpointing after it.
/// Blocks on the device (native).
pub fn train_in_dir(
    ctx: &GpuContext,
    trainer: &mut Trainer,
    train_set: &Dataset,
    test_set: &Dataset,
    run: &RunDir,
    start: RunStart<'_>,
    on_event: &mut dyn FnMut(RunEvent<'_>),
) -> Result<RunOutcome, RunError> {
    match start {
        RunStart::Resume(ck) => {
            trainer.restore(ctx, ck)?;
            let dropped = run.resume(trainer.epoch())?;
            on_event(RunEvent::Resumed {
                epoch: trainer.epoch(),
                step: trainer.step(),
                dropped,
            });
            if trainer.finished() {
                return Ok(RunOutcome {
                    records: Vec::new(),
                    already_finished: true,
                });
            }
        }
        RunStart::Fresh { overwrite } => run.start_fresh(overwrite)?,
    }
    let last = run.checkpoint_path();
    let epochs = trainer.config().epochs;
    let mut records = Vec::new();
    while !trainer.finished() {
        let steps = trainer
            .steps_per_epoch(train_set.len())
            .min((trainer.total_steps() - trainer.step()) as usize);
        on_event(RunEvent::EpochStarted {
            epoch: trainer.epoch() + 1,
            epochs,
            steps,
        });
        let record = trainer.run_epoch(ctx, train_set, test_set, &mut |p| {
            on_event(RunEvent::Step(p))
        })?;
        // The log lines first, then the checkpoint (see super::run_dir).
        let evals = trainer.take_step_evals();
        run.append_evals(&evals)?;
        if !evals.is_empty() {
            on_event(RunEvent::StepEvals(&evals));
        }
        run.append(&record)?;
        trainer.checkpoint(ctx).block(ctx)?.save(&last)?;
        on_event(RunEvent::EpochFinished(&record));
        records.push(record);
    }
    Ok(RunOutcome {
        records,
        already_finished: false,
    })
}
