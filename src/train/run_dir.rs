//! A run's output directory (native): `metrics.jsonl` (one line per finished epoch) and
//! `last.safetensors` (the checkpoint after the last finished epoch), kept consistent however
//! the process dies.
//!
//! Order of writes at an epoch end: the metrics line first (appended and fsynced), then the
//! checkpoint (atomic rename, file and directory fsynced). A kill between the two leaves one
//! line more than the checkpoint has epochs; resuming truncates the log to the checkpoint's
//! epoch ([`RunDir::resume`]), so the epoch is logged once, when it is trained again. A fresh
//! run refuses a directory that already holds a run unless told to overwrite it, so an old
//! checkpoint never ends up next to a new run's log.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::{EpochRecord, StepEval};
use crate::checkpoint::{remove_stale_temporaries, write_atomically};

/// File names inside a run directory.
pub const METRICS_FILE: &str = "metrics.jsonl";
pub const CHECKPOINT_FILE: &str = "last.safetensors";
/// The mid-training evaluations of `--eval-every`, one [`StepEval`] per line, appended with the
/// epoch's line of [`METRICS_FILE`] (and cut back with it on resume).
pub const EVALS_FILE: &str = "evals.jsonl";

/// What can go wrong with a run directory.
#[derive(Debug, thiserror::Error)]
pub enum RunDirError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "{dir} already holds a run ({what}). Continue it with --init {checkpoint}, start over \
         with --overwrite, or choose another --out"
    )]
    Used {
        dir: String,
        what: String,
        checkpoint: String,
    },
}

/// A run's output directory.
pub struct RunDir {
    dir: PathBuf,
}

impl RunDir {
    /// The directory `dir` (created if missing).
    pub fn open(dir: &Path) -> Result<Self, RunDirError> {
        std::fs::create_dir_all(dir).map_err(|source| RunDirError::Io {
            path: dir.display().to_string(),
            source,
        })?;
        // Leftovers of writers killed mid-save (both files are written atomically).
        for name in [METRICS_FILE, CHECKPOINT_FILE, EVALS_FILE] {
            remove_stale_temporaries(dir, name);
        }
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    pub fn metrics_path(&self) -> PathBuf {
        self.dir.join(METRICS_FILE)
    }

    pub fn checkpoint_path(&self) -> PathBuf {
        self.dir.join(CHECKPOINT_FILE)
    }

    pub fn evals_path(&self) -> PathBuf {
        self.dir.join(EVALS_FILE)
    }

    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RunDirError + '_ {
        move |source| RunDirError::Io {
            path: path.display().to_string(),
            source,
        }
    }

    /// Prepares for a fresh run: an empty directory is fine; one holding a run is refused
    /// unless `overwrite`, which removes the old checkpoint first and then the old log (a kill
    /// in between leaves a log without checkpoint, which is refused again, never mixed).
    pub fn start_fresh(&self, overwrite: bool) -> Result<(), RunDirError> {
        // Evaluations without a metrics line or checkpoint belong to no run (a kill between the
        // two appends of epoch 1): they go in any case.
        let evals = self.evals_path();
        if evals.exists() && !self.metrics_path().exists() && !self.checkpoint_path().exists() {
            std::fs::remove_file(&evals).map_err(Self::io(&evals))?;
        }
        let (metrics, checkpoint) = (self.metrics_path(), self.checkpoint_path());
        let present: Vec<&str> = [(&checkpoint, CHECKPOINT_FILE), (&metrics, METRICS_FILE)]
            .into_iter()
            .filter(|(p, _)| p.exists())
            .map(|(_, name)| name)
            .collect();
        if present.is_empty() {
            return Ok(());
        }
        if !overwrite {
            return Err(RunDirError::Used {
                dir: self.dir.display().to_string(),
                what: present.join(", "),
                checkpoint: checkpoint.display().to_string(),
            });
        }
        for path in [&checkpoint, &metrics, &self.evals_path()] {
            if path.exists() {
                std::fs::remove_file(path).map_err(Self::io(path))?;
            }
        }
        Ok(())
    }

    /// Prepares to continue a run whose checkpoint finished `epoch` epochs: keeps the log lines
    /// of epochs `1..=epoch` and drops later ones (written before a kill, after the last save)
    /// and any torn line. Returns how many lines were dropped.
    pub fn resume(&self, epoch: usize) -> Result<usize, RunDirError> {
        // Evaluations of an epoch the checkpoint does not hold are dropped with its line.
        Self::keep_lines(&self.evals_path(), |line| {
            serde_json::from_str::<StepEval>(line).is_ok_and(|e| e.epoch <= epoch)
        })?;
        Self::keep_lines(&self.metrics_path(), |line| {
            serde_json::from_str::<EpochRecord>(line).is_ok_and(|r| r.epoch <= epoch)
        })
    }

    /// Rewrites `path` (atomically) with only the lines `keep` accepts, and without a torn last
    /// line; returns how many lines were dropped. A missing file is empty.
    fn keep_lines(path: &Path, keep: impl Fn(&str) -> bool) -> Result<usize, RunDirError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(Self::io(path)(e)),
        };
        let lines: Vec<&str> = text.lines().collect();
        let kept: Vec<&str> = lines.iter().copied().filter(|line| keep(line)).collect();
        let dropped = lines.len() - kept.len();
        if dropped > 0 || (!text.is_empty() && !text.ends_with('\n')) {
            let mut body = kept.join("\n");
            if !body.is_empty() {
                body.push('\n');
            }
            write_atomically(path, body.as_bytes()).map_err(|e| RunDirError::Io {
                path: path.display().to_string(),
                source: std::io::Error::other(e.to_string()),
            })?;
        }
        Ok(dropped)
    }

    pub fn append(&self, record: &EpochRecord) -> Result<(), RunDirError> {
        Self::append_lines(&self.metrics_path(), std::slice::from_ref(record))
    }

    /// Appends an epoch's mid-training evaluations (before its line of `metrics.jsonl`).
    pub fn append_evals(&self, evals: &[StepEval]) -> Result<(), RunDirError> {
        if evals.is_empty() {
            return Ok(());
        }
        Self::append_lines(&self.evals_path(), evals)
    }

    /// Appends one JSON line per item and syncs the file.
    fn append_lines<T: serde::Serialize>(path: &Path, items: &[T]) -> Result<(), RunDirError> {
        let mut text = String::new();
        for item in items {
            let line = serde_json::to_string(item).map_err(|e| RunDirError::Io {
                path: path.display().to_string(),
                source: std::io::Error::other(e),
            })?;
            text.push_str(&line);
            text.push('\n');
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(Self::io(path))?;
        f.write_all(text.as_bytes()).map_err(Self::io(path))?;
        f.sync_data().map_err(Self::io(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(epoch: usize) -> EpochRecord {
        EpochRecord {
            epoch,
            step: 3 * epoch as u64,
            lr: 1e-3,
            train_loss: 1.0,
            train_accuracy: 0.5,
            test_loss: 1.0,
            test_accuracy: 0.5,
            flip_ratio: Vec::new(),
            flip_ratio_total: 0.0,
            firing_rate: Vec::new(),
            grad_stats: Vec::new(),
            samples_per_second: 1.0,
            epoch_seconds: 1.0,
            eval_seconds: 1.0,
        }
    }

    fn eval(epoch: usize, step: u64) -> StepEval {
        StepEval {
            epoch,
            step,
            test_loss: 1.0,
            test_accuracy: 0.5,
        }
    }

    /// Resuming from the checkpoint of epoch 1 cuts both logs back to it: epoch 2's line and
    /// evaluations (written before a kill, after the epoch-1 checkpoint) go, and a torn last line
    /// of the evaluations is dropped too.
    #[test]
    fn resume_cuts_metrics_and_evaluations_back_to_the_checkpoint_epoch() {
        let dir = std::env::temp_dir().join(format!("bitspike-run-dir-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let run = RunDir::open(&dir).unwrap();
        run.append_evals(&[eval(1, 2)]).unwrap();
        run.append(&record(1)).unwrap();
        run.append_evals(&[eval(2, 4), eval(2, 6)]).unwrap();
        run.append(&record(2)).unwrap();
        let mut torn = std::fs::read_to_string(run.evals_path()).unwrap();
        torn.push_str("{\"epoch\": 3, \"st");
        std::fs::write(run.evals_path(), torn).unwrap();

        assert_eq!(run.resume(1).unwrap(), 1, "one metrics line dropped");
        let evals: Vec<StepEval> = std::fs::read_to_string(run.evals_path())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(evals, [eval(1, 2)]);
        let metrics = std::fs::read_to_string(run.metrics_path()).unwrap();
        assert_eq!(metrics.lines().count(), 1);
        // A fresh start over the run removes the evaluations with the rest.
        run.start_fresh(true).unwrap();
        assert!(!run.evals_path().exists());
        // Evaluations a kill left without their epoch's line are no run: a fresh start (even
        // without --overwrite) drops them instead of appending after them.
        run.append_evals(&[eval(1, 2)]).unwrap();
        run.start_fresh(false).unwrap();
        assert!(!run.evals_path().exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
