//! The grid of an ablation (native): axes and fixed settings ([`GridSpec`], saved as
//! `grid.json`), one run directory per [`RunKey`] with its resolved settings
//! (`settings.json`), the check that no existing run directory was made with other settings,
//! and [`run_grid`], which trains every unfinished run in-process through
//! [`crate::train::run::train_in_dir`], the code path of `bitspike train`.
//!
//! Resuming: a run whose checkpoint is at its last epoch is skipped; one with an earlier
//! checkpoint continues from it (its log cut back to the checkpoint's epoch); one without a
//! checkpoint starts over. A kill at any point therefore loses at most the epoch in progress.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::RunKey;
use crate::checkpoint::{write_atomically, Checkpoint, CheckpointMeta};
use crate::data::Dataset;
use crate::gpu::GpuContext;
use crate::model::{AgmmMode, ModelConfig};
use crate::train::run::{train_in_dir, RunError, RunEvent, RunStart};
use crate::train::run_dir::RunDir;
use crate::train::{EpochRecord, OptimizerKind, TrainConfig, TrainError, Trainer};

/// The grid's description inside the grid directory.
pub const GRID_FILE: &str = "grid.json";
/// A run's resolved settings inside its directory.
pub const SETTINGS_FILE: &str = "settings.json";

/// Which data the runs train and test on (recorded, and compared on resume).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DataSettings {
    /// The data set's CLI name (`mnist10k`, `idx`, ...).
    pub dataset: String,
    /// Directory of its files, for data sets read from disk.
    pub data_dir: Option<String>,
    pub limit_train: Option<usize>,
    pub limit_test: Option<usize>,
    /// Event data sets: the frame settings (T, size, clipping), as `Debug` prints them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frames: Option<String>,
}

/// An ablation: the axes and the settings every run shares.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GridSpec {
    pub agmm: Vec<AgmmMode>,
    pub optimizers: Vec<OptimizerKind>,
    pub seeds: Vec<u64>,
    /// Every run's model; its AGMM mode is replaced by the run's.
    pub model: ModelConfig,
    /// Every run's training settings; optimizer, seed, and (unless `lr` / `weight_decay` are
    /// set) learning rate and weight decay are replaced by the run's optimizer's defaults.
    pub train: TrainConfig,
    /// Learning rate for every optimizer (None: each optimizer's default).
    pub lr: Option<f32>,
    /// Weight decay for every optimizer (None: each optimizer's default).
    pub weight_decay: Option<f32>,
    pub data: DataSettings,
    /// `--eval-every`: test-set evaluations after every this many steps (`evals.jsonl`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_every: Option<u64>,
}

/// Everything that defines one run: compared with `settings.json` before a directory is
/// reused.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunSettings {
    pub model: ModelConfig,
    pub train: TrainConfig,
    pub data: DataSettings,
    /// `--eval-every` (absent when not set, as in grids made before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_every: Option<u64>,
}

/// What stops an ablation.
#[derive(Debug, thiserror::Error)]
pub enum AblateError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    Parse { path: String, reason: String },
    /// An axis is empty or repeats a value, or the baseline is not on the grid.
    #[error("ablation grid: {0}")]
    Grid(String),
    /// A run directory holds a run made with other settings.
    #[error(
        "{dir} was run with other settings ({differences}). A grid directory holds one \
         experiment: rerun with the settings it was started with, or choose another --out"
    )]
    ChangedSettings { dir: String, differences: String },
    #[error("run {run}: {source}")]
    Run { run: String, source: RunError },
    #[error("no finished epochs in {0}: train the grid first (bitspike ablate ... --out DIR)")]
    NoResults(String),
    #[error("plot {path}: {reason}")]
    Plot { path: String, reason: String },
}

pub(crate) fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> AblateError + '_ {
    move |source| AblateError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn check_axis<T: PartialEq + std::fmt::Debug>(name: &str, values: &[T]) -> Result<(), AblateError> {
    if values.is_empty() {
        return Err(AblateError::Grid(format!(
            "--{name} needs at least one value"
        )));
    }
    for (i, v) in values.iter().enumerate() {
        if values[..i].contains(v) {
            return Err(AblateError::Grid(format!("--{name} lists {v:?} twice")));
        }
    }
    Ok(())
}

impl GridSpec {
    /// Refuses empty or repeated axes and settings no run could use.
    pub fn validate(&self) -> Result<(), AblateError> {
        check_axis("agmm", &self.agmm)?;
        check_axis("optimizer", &self.optimizers)?;
        check_axis("seeds", &self.seeds)?;
        for (key, settings) in self.runs() {
            settings
                .train
                .validate()
                .map_err(|e| AblateError::Grid(format!("{}: {e}", key.dir_name())))?;
        }
        Ok(())
    }

    /// The runs, seed by seed (so that paired results accumulate early), each with its
    /// resolved settings.
    pub fn runs(&self) -> Vec<(RunKey, RunSettings)> {
        let mut runs = Vec::new();
        for &seed in &self.seeds {
            for &optimizer in &self.optimizers {
                for &agmm in &self.agmm {
                    let key = RunKey {
                        optimizer,
                        agmm,
                        seed,
                    };
                    runs.push((key, self.settings(key)));
                }
            }
        }
        runs
    }

    /// The settings of run `key`.
    pub fn settings(&self, key: RunKey) -> RunSettings {
        let defaults = TrainConfig::for_optimizer(key.optimizer);
        let mut model = self.model.clone();
        model.agmm.mode = key.agmm;
        RunSettings {
            model,
            train: TrainConfig {
                optimizer: key.optimizer,
                seed: key.seed,
                lr: self.lr.unwrap_or(defaults.lr),
                weight_decay: self.weight_decay.unwrap_or(defaults.weight_decay),
                ..self.train.clone()
            },
            data: self.data.clone(),
            eval_every: self.eval_every,
        }
    }
}

/// Reads and parses a JSON file.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, AblateError> {
    let text = std::fs::read_to_string(path).map_err(io_error(path))?;
    serde_json::from_str(&text).map_err(|e| AblateError::Parse {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

pub(crate) fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), AblateError> {
    let mut text = serde_json::to_string_pretty(value).map_err(|e| AblateError::Parse {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    text.push('\n');
    write_atomically(path, text.as_bytes()).map_err(|e| AblateError::Io {
        path: path.display().to_string(),
        source: std::io::Error::other(e.to_string()),
    })
}

/// The leaves of a JSON value as `(path, value)`, e.g. `("train.lr", 0.001)`.
fn leaves(prefix: &str, value: &serde_json::Value, out: &mut Vec<(String, String)>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                leaves(&path, v, out);
            }
        }
        serde_json::Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                leaves(&format!("{prefix}[{i}]"), v, out);
            }
        }
        // f32 settings (lr, momentum) arrive widened to f64: show them as the f32 they are.
        serde_json::Value::Number(n) if n.is_f64() => {
            let v = n.as_f64().unwrap_or_default();
            let text = if (v as f32) as f64 == v {
                (v as f32).to_string()
            } else {
                v.to_string()
            };
            out.push((prefix.to_string(), text));
        }
        other => out.push((prefix.to_string(), other.to_string())),
    }
}

/// The settings that differ between `there` (a directory's) and `now`, as
/// `train.lr 0.001 there, 0.01 now`; empty when equal.
pub fn differences(there: &RunSettings, now: &RunSettings) -> Vec<String> {
    let (mut a, mut b) = (Vec::new(), Vec::new());
    leaves("", &serde_json::to_value(there).unwrap_or_default(), &mut a);
    leaves("", &serde_json::to_value(now).unwrap_or_default(), &mut b);
    let mut diffs = Vec::new();
    for (path, old) in &a {
        match b.iter().find(|(p, _)| p == path) {
            Some((_, new)) if new != old => diffs.push(format!("{path} {old} there, {new} now")),
            None => diffs.push(format!("{path} {old} there, absent now")),
            _ => {}
        }
    }
    for (path, new) in &b {
        if !a.iter().any(|(p, _)| p == path) {
            diffs.push(format!("{path} absent there, {new} now"));
        }
    }
    diffs
}

/// Refuses the grid if any existing run directory was made with other settings (or holds a
/// run that `bitspike ablate` did not make). Checked for all runs before any trains.
pub fn check_existing(spec: &GridSpec, out: &Path) -> Result<(), AblateError> {
    for (key, settings) in spec.runs() {
        let dir = out.join(key.dir_name());
        let path = dir.join(SETTINGS_FILE);
        if path.exists() {
            let there: RunSettings = read_json(&path)?;
            let diffs = differences(&there, &settings);
            if !diffs.is_empty() {
                return Err(AblateError::ChangedSettings {
                    dir: dir.display().to_string(),
                    differences: diffs.join("; "),
                });
            }
        } else {
            let holds_run = [
                crate::train::run_dir::METRICS_FILE,
                crate::train::run_dir::CHECKPOINT_FILE,
            ]
            .iter()
            .any(|f| dir.join(f).exists());
            if holds_run {
                return Err(AblateError::ChangedSettings {
                    dir: dir.display().to_string(),
                    differences: format!("it holds a run without {SETTINGS_FILE}"),
                });
            }
        }
    }
    Ok(())
}

/// What [`run_grid`] reports while it works.
pub enum GridEvent<'a> {
    /// Run `index` (0-based) of `total` begins; `resume_epoch` is the checkpoint's epoch when
    /// it continues one.
    RunStarted {
        index: usize,
        total: usize,
        key: RunKey,
        resume_epoch: Option<usize>,
        /// Optimizer steps the run has in all.
        steps: u64,
    },
    /// Run `index` was already finished.
    RunSkipped {
        index: usize,
        total: usize,
        key: RunKey,
        steps: u64,
    },
    Run(RunEvent<'a>),
    RunFinished {
        index: usize,
        total: usize,
        key: RunKey,
    },
}

/// The epochs finished by each run of a grid directory (an empty list for a run not started).
pub fn read_runs(
    spec: &GridSpec,
    out: &Path,
) -> Result<Vec<(RunKey, Vec<EpochRecord>)>, AblateError> {
    read_run_lines(spec, out, crate::train::run_dir::METRICS_FILE)
}

/// The mid-training evaluations of each run of a grid directory (`evals.jsonl`, from
/// `--eval-every`; an empty list for a run without).
pub fn read_evals(
    spec: &GridSpec,
    out: &Path,
) -> Result<Vec<(RunKey, Vec<crate::train::StepEval>)>, AblateError> {
    read_run_lines(spec, out, crate::train::run_dir::EVALS_FILE)
}

/// The JSON lines of `file` in each run directory, in grid order. A torn last line (a kill
/// mid-append) is skipped; a missing file is empty.
fn read_run_lines<T: serde::de::DeserializeOwned>(
    spec: &GridSpec,
    out: &Path,
    file: &str,
) -> Result<Vec<(RunKey, Vec<T>)>, AblateError> {
    let mut runs = Vec::new();
    for (key, _) in spec.runs() {
        let path = out.join(key.dir_name()).join(file);
        let items = match std::fs::read_to_string(&path) {
            Ok(text) => text
                .lines()
                .filter_map(|line| serde_json::from_str::<T>(line).ok())
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io_error(&path)(e)),
        };
        runs.push((key, items));
    }
    Ok(runs)
}

/// Reads `grid.json` of a grid directory.
pub fn read_spec(out: &Path) -> Result<GridSpec, AblateError> {
    let path = out.join(GRID_FILE);
    if !path.exists() {
        return Err(AblateError::NoResults(format!(
            "{} (no {GRID_FILE})",
            out.display()
        )));
    }
    read_json(&path)
}

/// Trains every unfinished run of `spec` under `out` (checked first with
/// [`check_existing`]), one after another on `ctx`.
pub fn run_grid(
    ctx: &GpuContext,
    spec: &GridSpec,
    train_set: &Dataset,
    test_set: &Dataset,
    out: &Path,
    on_event: &mut dyn FnMut(GridEvent<'_>),
) -> Result<(), AblateError> {
    spec.validate()?;
    std::fs::create_dir_all(out).map_err(io_error(out))?;
    check_existing(spec, out)?;
    write_json(&out.join(GRID_FILE), spec)?;
    let runs = spec.runs();
    let total = runs.len();
    for (index, (key, settings)) in runs.into_iter().enumerate() {
        let dir: PathBuf = out.join(key.dir_name());
        let run_error = |source: RunError| AblateError::Run {
            run: dir.display().to_string(),
            source,
        };
        let train_error = |e: TrainError| run_error(RunError::Train(e));
        let run = RunDir::open(&dir).map_err(|e| run_error(e.into()))?;
        let steps = settings.train.total_steps(train_set.len());
        let planned = settings.train.planned_epochs(train_set.len());
        let checkpoint_path = run.checkpoint_path();
        let checkpoint = if checkpoint_path.exists() {
            let ck = Checkpoint::load(&checkpoint_path).map_err(|e| run_error(e.into()))?;
            let meta = CheckpointMeta::read(&checkpoint_path.display().to_string(), &ck)
                .map_err(|e| run_error(e.into()))?;
            if meta.epoch >= planned {
                on_event(GridEvent::RunSkipped {
                    index,
                    total,
                    key,
                    steps,
                });
                continue;
            }
            Some((ck, meta.epoch))
        } else {
            write_json(&dir.join(SETTINGS_FILE), &settings)?;
            None
        };
        on_event(GridEvent::RunStarted {
            index,
            total,
            key,
            resume_epoch: checkpoint.as_ref().map(|(_, epoch)| *epoch),
            steps,
        });
        let mut trainer = Trainer::new(
            ctx,
            &settings.model,
            settings.train.clone(),
            train_set.len(),
        )
        .map_err(train_error)?;
        trainer.set_eval_every(settings.eval_every);
        let start = match &checkpoint {
            Some((ck, _)) => RunStart::Resume(ck),
            // Settings matched (or were just written): a log without checkpoint is an epoch 1
            // that was killed, started over.
            None => RunStart::Fresh { overwrite: true },
        };
        train_in_dir(
            ctx,
            &mut trainer,
            train_set,
            test_set,
            &run,
            start,
            &mut |event| on_event(GridEvent::Run(event)),
        )
        .map_err(run_error)?;
        on_event(GridEvent::RunFinished { index, total, key });
    }
    Ok(())
}

/// Aggregates the grid in `out` (`grid.json` and the runs' logs, finished or not) and writes
/// `report.json`, `report.md` and the plots next to them. Returns the report and the files
/// written.
pub fn write_report(
    out: &Path,
    options: super::report::ReportOptions,
) -> Result<(super::report::AblationReport, Vec<PathBuf>), AblateError> {
    let spec = read_spec(out)?;
    let runs = read_runs(&spec, out)?;
    if runs.iter().all(|(_, records)| records.is_empty()) {
        return Err(AblateError::NoResults(out.display().to_string()));
    }
    let mut report = super::report::aggregate(&runs, options);
    if let Some(every) = spec.eval_every {
        super::report::add_step_convergence(&mut report, &read_evals(&spec, out)?, every);
    }
    report.grid = serde_json::to_value(&spec).ok();
    let json = out.join(super::REPORT_JSON);
    write_json(&json, &report)?;
    let md = out.join(super::REPORT_MD);
    write_atomically(&md, report.to_markdown().as_bytes()).map_err(|e| AblateError::Io {
        path: md.display().to_string(),
        source: std::io::Error::other(e.to_string()),
    })?;
    let mut written = vec![json, md];
    written.extend(super::plot::write_plots(&report, out)?);
    Ok((report, written))
}
