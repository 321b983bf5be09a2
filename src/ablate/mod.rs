//! Ablations: a grid of training runs over AGMM modes, optimizers and seeds, aggregated into
//! means with 95 % Student-t confidence intervals (`bitspike ablate`).
//!
//! - [`grid`] (native): the grid's axes and fixed settings, one run directory per
//!   (optimizer, AGMM mode, seed) under the grid directory, the refusal of changed settings,
//!   and the loop that trains what is not finished through [`crate::train::run`] (the same
//!   code path as `bitspike train`), resuming from checkpoints.
//! - [`report`] (every target): aggregation of the runs' `metrics.jsonl` per cell and epoch,
//!   paired differences against a baseline mode, convergence speed; `report.json` and
//!   `report.md`. The app reads the same `report.json` to draw bands.
//! - [`stats`]: means, standard deviations and Student-t intervals.
//! - [`plot`] (native): PNG curves with CI bands next to the report.
//! - [`progress`] (native): the terminal view (runs done / total with ETA, the current run's
//!   bar).
//!
//! Pairing: a run's initial weights come from its seed only ([`crate::snn::Network::new`]
//! draws no random numbers for AGMM) and its batch order from (seed, epoch), so the runs of
//! one seed differ only in the axis being compared.

#[cfg(not(target_arch = "wasm32"))]
pub mod grid;
#[cfg(not(target_arch = "wasm32"))]
pub mod plot;
#[cfg(not(target_arch = "wasm32"))]
pub mod progress;
pub mod report;
pub mod stats;

use serde::{Deserialize, Serialize};

use crate::model::AgmmMode;
use crate::train::OptimizerKind;

/// The report's file names inside a grid directory.
pub const REPORT_JSON: &str = "report.json";
pub const REPORT_MD: &str = "report.md";

/// One run of a grid: which optimizer, AGMM mode and seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunKey {
    pub optimizer: OptimizerKind,
    pub agmm: AgmmMode,
    pub seed: u64,
}

impl RunKey {
    /// The run's directory name under the grid directory, e.g. `adam-full-seed1`.
    pub fn dir_name(&self) -> String {
        format!(
            "{}-{}-seed{}",
            optimizer_name(self.optimizer),
            agmm_name(self.agmm),
            self.seed
        )
    }

    /// The cell (all seeds of one optimizer and mode) this run belongs to, e.g. `adam/full`.
    pub fn cell_name(&self) -> String {
        cell_name(self.optimizer, self.agmm)
    }
}

/// A cell's name, e.g. `adam/full`.
pub fn cell_name(optimizer: OptimizerKind, agmm: AgmmMode) -> String {
    format!("{}/{}", optimizer_name(optimizer), agmm_name(agmm))
}

/// The CLI / config spelling of an optimizer (`adam`, `sgd`).
pub fn optimizer_name(kind: OptimizerKind) -> &'static str {
    match kind {
        OptimizerKind::Adam => "adam",
        OptimizerKind::Sgd => "sgd",
    }
}

/// The CLI / config spelling of an AGMM mode (`full`, `detached`, `off`).
pub fn agmm_name(mode: AgmmMode) -> &'static str {
    match mode {
        AgmmMode::Full => "full",
        AgmmMode::Detached => "detached",
        AgmmMode::Off => "off",
    }
}
