//! An ablation's report: per cell (optimizer x AGMM mode, over seeds) and epoch, the mean and
//! 95 % Student-t interval of every metric `metrics.jsonl` holds; paired differences against a
//! baseline mode (same optimizer and seed); the epoch each run first reaches a target test
//! accuracy. Built from records only ([`aggregate`]), so the app can read the `report.json`
//! it is saved as on every target.

use serde::{Deserialize, Serialize};

use super::stats::{Estimate, CONFIDENCE};
use super::{agmm_name, cell_name, RunKey};
use crate::model::AgmmMode;
use crate::train::{EpochRecord, OptimizerKind, StepEval};

/// The `format` field of `report.json`.
pub const FORMAT: &str = "bitspike-ablation-report/1";

/// A per-layer estimate (`{"layer": "conv1", "mean": ..., "ci_low": ..., ...}`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerEstimate {
    pub layer: String,
    #[serde(flatten)]
    pub estimate: Estimate,
}

/// One cell's metrics after one epoch, over the seeds that finished it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CellEpoch {
    /// 1-based.
    pub epoch: usize,
    /// Optimizer steps taken at the end of the epoch (mean over runs).
    pub step: f64,
    pub test_accuracy: Estimate,
    pub test_loss: Estimate,
    pub train_loss: Estimate,
    pub train_accuracy: Estimate,
    /// Weight sign flips over all binary layers during the epoch, as a fraction of weights.
    pub flip_ratio_total: Estimate,
    pub flip_ratio: Vec<LayerEstimate>,
    pub firing_rate: Vec<LayerEstimate>,
    /// Variance of the latent-weight gradients per binary layer.
    pub grad_variance: Vec<LayerEstimate>,
}

/// How fast a cell reaches the target test accuracy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Convergence {
    pub target_accuracy: f64,
    /// Runs with at least one finished epoch.
    pub runs: usize,
    /// Runs whose test accuracy reached the target at some epoch.
    pub reached: usize,
    /// First epoch reaching the target, over the runs that reached it.
    pub epoch: Option<Estimate>,
    /// The optimizer step at that epoch's end, over the same runs.
    pub step: Option<Estimate>,
}

/// How fast a cell reaches the target test accuracy between epoch ends: from the runs'
/// mid-training evaluations (`--eval-every`, `evals.jsonl`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepConvergence {
    pub target_accuracy: f64,
    /// The evaluation interval in steps.
    pub eval_every: u64,
    /// Runs with at least one evaluation.
    pub runs: usize,
    /// Runs whose test accuracy reached the target at some evaluation.
    pub reached: usize,
    /// First evaluated step reaching the target, over the runs that reached it.
    pub step: Option<Estimate>,
}

/// One cell: all seeds of one optimizer and AGMM mode.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CellReport {
    /// e.g. `adam/full`.
    pub name: String,
    pub optimizer: OptimizerKind,
    pub agmm: AgmmMode,
    pub seeds: Vec<u64>,
    /// Epochs finished per seed (same order as `seeds`).
    pub epochs_finished: Vec<usize>,
    pub epochs: Vec<CellEpoch>,
    pub convergence: Convergence,
    /// With `--eval-every`: convergence by step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_convergence: Option<StepConvergence>,
}

/// One paired difference `mode - baseline` after one epoch, over the seeds both finished.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairedEpoch {
    pub epoch: usize,
    pub test_accuracy: Estimate,
    pub train_loss: Estimate,
    pub flip_ratio_total: Estimate,
    /// `(mode - baseline) / baseline` of the total flip ratio, per seed.
    pub flip_ratio_total_relative: Option<Estimate>,
    pub flip_ratio: Vec<LayerEstimate>,
}

/// A mode against the baseline mode, with the same optimizer, seed by seed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairedReport {
    /// e.g. `adam: full - off`.
    pub name: String,
    pub optimizer: OptimizerKind,
    pub agmm: AgmmMode,
    pub baseline: AgmmMode,
    pub epochs: Vec<PairedEpoch>,
}

/// `report.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AblationReport {
    pub format: String,
    pub confidence: f64,
    pub baseline_agmm: AgmmMode,
    pub target_accuracy: f64,
    /// The grid's fixed settings and axes (`grid.json`), for the record.
    #[serde(default)]
    pub grid: Option<serde_json::Value>,
    pub cells: Vec<CellReport>,
    pub paired: Vec<PairedReport>,
}

/// What [`aggregate`] compares against.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ReportOptions {
    /// Paired differences are `mode - baseline` (default `off`).
    pub baseline: AgmmMode,
    /// Convergence: first epoch with test accuracy at or above this (a fraction).
    pub target_accuracy: f64,
}

impl Default for ReportOptions {
    fn default() -> Self {
        Self {
            baseline: AgmmMode::Off,
            target_accuracy: 0.9,
        }
    }
}

/// Mean and CI of values known to be non-empty.
fn estimate(values: &[f64]) -> Estimate {
    Estimate::of(values).unwrap_or(Estimate {
        mean: f64::NAN,
        ci_low: None,
        ci_high: None,
        n: 0,
        std: None,
    })
}

/// Per-layer estimates over `records`, layers in first-seen order.
fn per_layer(
    records: &[&EpochRecord],
    values: impl Fn(&EpochRecord) -> Vec<(String, f64)>,
) -> Vec<LayerEstimate> {
    let mut layers: Vec<(String, Vec<f64>)> = Vec::new();
    for r in records {
        for (name, v) in values(r) {
            match layers.iter_mut().find(|(n, _)| *n == name) {
                Some((_, vs)) => vs.push(v),
                None => layers.push((name, vec![v])),
            }
        }
    }
    layers
        .into_iter()
        .map(|(layer, vs)| LayerEstimate {
            layer,
            estimate: estimate(&vs),
        })
        .collect()
}

/// The record of epoch `epoch` in a run's log.
fn at_epoch(records: &[EpochRecord], epoch: usize) -> Option<&EpochRecord> {
    records.iter().find(|r| r.epoch == epoch)
}

fn max_epoch<'a>(runs: impl Iterator<Item = &'a Vec<EpochRecord>>) -> usize {
    runs.flat_map(|rs| rs.iter().map(|r| r.epoch))
        .max()
        .unwrap_or(0)
}

fn cell_epoch(epoch: usize, records: &[&EpochRecord]) -> CellEpoch {
    let field =
        |f: fn(&EpochRecord) -> f64| estimate(&records.iter().map(|r| f(r)).collect::<Vec<_>>());
    CellEpoch {
        epoch,
        step: records.iter().map(|r| r.step as f64).sum::<f64>() / records.len().max(1) as f64,
        test_accuracy: field(|r| r.test_accuracy),
        test_loss: field(|r| r.test_loss),
        train_loss: field(|r| r.train_loss),
        train_accuracy: field(|r| r.train_accuracy),
        flip_ratio_total: field(|r| r.flip_ratio_total),
        flip_ratio: per_layer(records, |r| r.flip_ratio.clone()),
        firing_rate: per_layer(records, |r| r.firing_rate.clone()),
        grad_variance: per_layer(records, |r| {
            r.grad_stats
                .iter()
                .map(|(n, _, var)| (n.clone(), *var))
                .collect()
        }),
    }
}

fn convergence(runs: &[&Vec<EpochRecord>], target: f64) -> Convergence {
    let started: Vec<_> = runs.iter().filter(|rs| !rs.is_empty()).collect();
    let hits: Vec<&EpochRecord> = started
        .iter()
        .filter_map(|rs| {
            let mut sorted: Vec<&EpochRecord> = rs.iter().collect();
            sorted.sort_by_key(|r| r.epoch);
            sorted.into_iter().find(|r| r.test_accuracy >= target)
        })
        .collect();
    Convergence {
        target_accuracy: target,
        runs: started.len(),
        reached: hits.len(),
        epoch: Estimate::of(&hits.iter().map(|r| r.epoch as f64).collect::<Vec<_>>()),
        step: Estimate::of(&hits.iter().map(|r| r.step as f64).collect::<Vec<_>>()),
    }
}

/// Adds each cell's step-level convergence from the runs' mid-training evaluations
/// (`evals` in the order of [`aggregate`]'s runs; runs without evaluations count as not
/// started). Cells whose runs have no evaluation at all get none.
pub fn add_step_convergence(
    report: &mut AblationReport,
    evals: &[(RunKey, Vec<StepEval>)],
    eval_every: u64,
) {
    for cell in &mut report.cells {
        let runs: Vec<&Vec<StepEval>> = evals
            .iter()
            .filter(|(k, es)| {
                k.optimizer == cell.optimizer && k.agmm == cell.agmm && !es.is_empty()
            })
            .map(|(_, es)| es)
            .collect();
        if runs.is_empty() {
            continue;
        }
        let target = report.target_accuracy;
        let hits: Vec<f64> = runs
            .iter()
            .filter_map(|es| {
                let mut sorted: Vec<&StepEval> = es.iter().collect();
                sorted.sort_by_key(|e| e.step);
                sorted.into_iter().find(|e| e.test_accuracy >= target)
            })
            .map(|e| e.step as f64)
            .collect();
        cell.step_convergence = Some(StepConvergence {
            target_accuracy: target,
            eval_every,
            runs: runs.len(),
            reached: hits.len(),
            step: Estimate::of(&hits),
        });
    }
}

/// Paired differences `value(mode) - value(baseline)` per seed for one epoch.
fn paired_epoch(epoch: usize, pairs: &[(&EpochRecord, &EpochRecord)]) -> PairedEpoch {
    let diff = |f: fn(&EpochRecord) -> f64| {
        estimate(&pairs.iter().map(|(m, b)| f(m) - f(b)).collect::<Vec<_>>())
    };
    let relative: Vec<f64> = pairs
        .iter()
        .filter(|(_, b)| b.flip_ratio_total > 0.0)
        .map(|(m, b)| (m.flip_ratio_total - b.flip_ratio_total) / b.flip_ratio_total)
        .collect();
    let mut layers: Vec<(String, Vec<f64>)> = Vec::new();
    for (m, b) in pairs {
        for (name, v) in &m.flip_ratio {
            let Some((_, base)) = b.flip_ratio.iter().find(|(n, _)| n == name) else {
                continue;
            };
            match layers.iter_mut().find(|(n, _)| n == name) {
                Some((_, vs)) => vs.push(v - base),
                None => layers.push((name.clone(), vec![v - base])),
            }
        }
    }
    PairedEpoch {
        epoch,
        test_accuracy: diff(|r| r.test_accuracy),
        train_loss: diff(|r| r.train_loss),
        flip_ratio_total: diff(|r| r.flip_ratio_total),
        flip_ratio_total_relative: Estimate::of(&relative),
        flip_ratio: layers
            .into_iter()
            .map(|(layer, vs)| LayerEstimate {
                layer,
                estimate: estimate(&vs),
            })
            .collect(),
    }
}

/// Aggregates the runs of a grid: `runs` holds each run's finished epochs (possibly none).
/// Cells come in the order their first run appears; paired differences for every mode other
/// than the baseline whose optimizer also ran the baseline.
pub fn aggregate(runs: &[(RunKey, Vec<EpochRecord>)], options: ReportOptions) -> AblationReport {
    let mut cell_keys: Vec<(OptimizerKind, AgmmMode)> = Vec::new();
    for (key, _) in runs {
        if !cell_keys.contains(&(key.optimizer, key.agmm)) {
            cell_keys.push((key.optimizer, key.agmm));
        }
    }
    let in_cell = |optimizer, agmm| -> Vec<&(RunKey, Vec<EpochRecord>)> {
        runs.iter()
            .filter(|(k, _)| k.optimizer == optimizer && k.agmm == agmm)
            .collect()
    };
    let mut cells = Vec::new();
    for &(optimizer, agmm) in &cell_keys {
        let members = in_cell(optimizer, agmm);
        let logs: Vec<&Vec<EpochRecord>> = members.iter().map(|(_, rs)| rs).collect();
        let epochs = (1..=max_epoch(logs.iter().copied()))
            .filter_map(|epoch| {
                let at: Vec<&EpochRecord> =
                    logs.iter().filter_map(|rs| at_epoch(rs, epoch)).collect();
                (!at.is_empty()).then(|| cell_epoch(epoch, &at))
            })
            .collect();
        cells.push(CellReport {
            name: cell_name(optimizer, agmm),
            optimizer,
            agmm,
            seeds: members.iter().map(|(k, _)| k.seed).collect(),
            epochs_finished: logs.iter().map(|rs| rs.len()).collect(),
            epochs,
            convergence: convergence(&logs, options.target_accuracy),
            step_convergence: None,
        });
    }
    let mut paired = Vec::new();
    for &(optimizer, agmm) in &cell_keys {
        if agmm == options.baseline || !cell_keys.contains(&(optimizer, options.baseline)) {
            continue;
        }
        let members = in_cell(optimizer, agmm);
        let baseline = in_cell(optimizer, options.baseline);
        let pairs_of_seeds: Vec<(&Vec<EpochRecord>, &Vec<EpochRecord>)> = members
            .iter()
            .filter_map(|(k, rs)| {
                baseline
                    .iter()
                    .find(|(b, _)| b.seed == k.seed)
                    .map(|(_, bs)| (rs, bs))
            })
            .collect();
        let last = max_epoch(pairs_of_seeds.iter().map(|(m, _)| *m));
        let epochs = (1..=last)
            .filter_map(|epoch| {
                let pairs: Vec<(&EpochRecord, &EpochRecord)> = pairs_of_seeds
                    .iter()
                    .filter_map(|(m, b)| Some((at_epoch(m, epoch)?, at_epoch(b, epoch)?)))
                    .collect();
                (!pairs.is_empty()).then(|| paired_epoch(epoch, &pairs))
            })
            .collect();
        paired.push(PairedReport {
            name: format!(
                "{}: {} - {}",
                super::optimizer_name(optimizer),
                agmm_name(agmm),
                agmm_name(options.baseline)
            ),
            optimizer,
            agmm,
            baseline: options.baseline,
            epochs,
        });
    }
    AblationReport {
        format: FORMAT.to_string(),
        confidence: CONFIDENCE,
        baseline_agmm: options.baseline,
        target_accuracy: options.target_accuracy,
        grid: None,
        cells,
        paired,
    }
}

impl AblationReport {
    /// Parses `report.json`.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let report: Self = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if report.format != FORMAT {
            return Err(format!(
                "not a bitspike ablation report (format '{}', expected '{FORMAT}')",
                report.format
            ));
        }
        Ok(report)
    }

    /// The report as Markdown: final-epoch table per cell, paired differences per epoch,
    /// convergence.
    pub fn to_markdown(&self) -> String {
        let mut md = String::new();
        let pct = |e: &Estimate| match (e.ci_low, e.ci_high) {
            (Some(lo), Some(hi)) => format!(
                "{:.2} [{:.2}, {:.2}]",
                100.0 * e.mean,
                100.0 * lo,
                100.0 * hi
            ),
            _ => format!("{:.2}", 100.0 * e.mean),
        };
        let pct3 = |e: &Estimate| match (e.ci_low, e.ci_high) {
            (Some(lo), Some(hi)) => format!(
                "{:.3} [{:.3}, {:.3}]",
                100.0 * e.mean,
                100.0 * lo,
                100.0 * hi
            ),
            _ => format!("{:.3}", 100.0 * e.mean),
        };
        let num = |e: &Estimate| match (e.ci_low, e.ci_high) {
            (Some(lo), Some(hi)) => format!("{:.4} [{:.4}, {:.4}]", e.mean, lo, hi),
            _ => format!("{:.4}", e.mean),
        };
        md.push_str("# AGMM ablation\n\n");
        md.push_str(&format!(
            "Mean over seeds with the {:.0} % Student-t confidence interval in brackets. \
             Accuracies and flip ratios in %.\n\n",
            100.0 * self.confidence
        ));
        md.push_str("## Per cell and epoch\n\n");
        md.push_str("| cell | epoch | n | test acc % | train loss | flip ratio % (total) | mean firing rate |\n");
        md.push_str("|---|---:|---:|---:|---:|---:|---:|\n");
        for cell in &self.cells {
            for e in &cell.epochs {
                let firing = if e.firing_rate.is_empty() {
                    f64::NAN
                } else {
                    e.firing_rate.iter().map(|l| l.estimate.mean).sum::<f64>()
                        / e.firing_rate.len() as f64
                };
                md.push_str(&format!(
                    "| {} | {} | {} | {} | {} | {} | {:.4} |\n",
                    cell.name,
                    e.epoch,
                    e.test_accuracy.n,
                    pct(&e.test_accuracy),
                    num(&e.train_loss),
                    pct3(&e.flip_ratio_total),
                    firing
                ));
            }
        }
        if !self.paired.is_empty() {
            md.push_str(&format!(
                "\n## Paired differences against AGMM {} (same optimizer and seed)\n\n\
                 Differences in percentage points; the relative flip change is \
                 (mode - baseline) / baseline per seed. `*`: the interval excludes 0.\n\n",
                agmm_name(self.baseline_agmm)
            ));
            md.push_str("| comparison | epoch | n | test acc (pp) | train loss | flip ratio (pp) | flip ratio relative % |\n");
            md.push_str("|---|---:|---:|---:|---:|---:|---:|\n");
            let star = |e: &Estimate| if e.excludes_zero() { " *" } else { "" };
            for p in &self.paired {
                for e in &p.epochs {
                    let relative = e
                        .flip_ratio_total_relative
                        .as_ref()
                        .map(|r| format!("{}{}", pct(r), star(r)))
                        .unwrap_or_else(|| "-".into());
                    md.push_str(&format!(
                        "| {} | {} | {} | {}{} | {}{} | {}{} | {} |\n",
                        p.name,
                        e.epoch,
                        e.test_accuracy.n,
                        pct(&e.test_accuracy),
                        star(&e.test_accuracy),
                        num(&e.train_loss),
                        star(&e.train_loss),
                        pct3(&e.flip_ratio_total),
                        star(&e.flip_ratio_total),
                        relative
                    ));
                }
            }
        }
        md.push_str(&format!(
            "\n## Convergence: first epoch with test accuracy >= {:.1} %\n\n",
            100.0 * self.target_accuracy
        ));
        md.push_str("| cell | runs reaching it | first epoch (over those runs) | step |\n|---|---:|---:|---:|\n");
        for cell in &self.cells {
            let c = &cell.convergence;
            let show = |e: &Option<Estimate>| match e {
                Some(e) => match (e.ci_low, e.ci_high) {
                    (Some(lo), Some(hi)) => format!("{:.2} [{:.2}, {:.2}]", e.mean, lo, hi),
                    _ => format!("{:.2}", e.mean),
                },
                None => "-".into(),
            };
            md.push_str(&format!(
                "| {} | {}/{} | {} | {} |\n",
                cell.name,
                c.reached,
                c.runs,
                show(&c.epoch),
                show(&c.step)
            ));
        }
        let stepped: Vec<(&CellReport, &StepConvergence)> = self
            .cells
            .iter()
            .filter_map(|c| c.step_convergence.as_ref().map(|s| (c, s)))
            .collect();
        if let Some((_, first)) = stepped.first() {
            md.push_str(&format!(
                "\n## Convergence by step: first evaluation (every {} steps) with test accuracy >= {:.1} %\n\n",
                first.eval_every,
                100.0 * self.target_accuracy
            ));
            md.push_str(
                "| cell | runs reaching it | first step (over those runs) |\n|---|---:|---:|\n",
            );
            for (cell, s) in stepped {
                let step = match &s.step {
                    Some(e) => match (e.ci_low, e.ci_high) {
                        (Some(lo), Some(hi)) => format!("{:.1} [{:.1}, {:.1}]", e.mean, lo, hi),
                        _ => format!("{:.1}", e.mean),
                    },
                    None => "-".into(),
                };
                md.push_str(&format!(
                    "| {} | {}/{} | {} |\n",
                    cell.name, s.reached, s.runs, step
                ));
            }
        }
        md
    }
}
