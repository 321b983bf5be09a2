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

use super::EpochRecord;
use crate::checkpoint::{remove_stale_temporaries, write_atomically};

/// File names inside a run directory.
pub const METRICS_FILE: &str = "metrics.jsonl";
pub const CHECKPOINT_FILE: &str = "last.safetensors";

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
        for name in [METRICS_FILE, CHECKPOINT_FILE] {
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
        for path in [&checkpoint, &metrics] {
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
        let path = self.metrics_path();
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(Self::io(&path)(e)),
        };
        let lines: Vec<&str> = text.lines().collect();
        let kept: Vec<&str> = lines
            .iter()
            .copied()
            .filter(|line| {
                serde_json::from_str::<EpochRecord>(line).is_ok_and(|r| r.epoch <= epoch)
            })
            .collect();
        let dropped = lines.len() - kept.len();
        if dropped > 0 || (!text.is_empty() && !text.ends_with('\n')) {
            let mut body = kept.join("\n");
            if !body.is_empty() {
                body.push('\n');
            }
            write_atomically(&path, body.as_bytes()).map_err(|e| RunDirError::Io {
                path: path.display().to_string(),
                source: std::io::Error::other(e.to_string()),
            })?;
        }
        Ok(dropped)
    }

    /// Appends one epoch's line and forces it to disk before the checkpoint is written.
    pub fn append(&self, record: &EpochRecord) -> Result<(), RunDirError> {
        let path = self.metrics_path();
        let line = serde_json::to_string(record).map_err(|e| RunDirError::Io {
            path: path.display().to_string(),
            source: std::io::Error::other(e),
        })?;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(Self::io(&path))?;
        writeln!(f, "{line}").map_err(Self::io(&path))?;
        f.sync_data().map_err(Self::io(&path))
    }
}
