//! The Model view: the Larq-style summary of the configured model (layers, binary or fp32,
//! parameters, bits, MACs/ACs), model size at 1 bit vs fp32, and the synaptic-operation energy
//! estimate, from measured firing rates once an epoch has finished.

use crate::model::summary::{Summary, E_AC_PJ, E_MAC_PJ};
use crate::model::ModelConfig;

use super::training_view::History;

/// Input firing rate of each summary row: the measured rate of the row before it (the spikes
/// that enter it), from the last finished epoch.
pub fn input_rates(summary: &Summary, history: &History) -> Option<Vec<f64>> {
    let rates = &history.epochs.last()?.firing_rate;
    Some(
        summary
            .rows
            .iter()
            .enumerate()
            .map(|(i, _)| {
                i.checked_sub(1)
                    .and_then(|p| rates.iter().find(|(n, _)| *n == summary.rows[p].name))
                    .map_or(1.0, |(_, r)| *r)
            })
            .collect(),
    )
}

/// Draws the view.
pub fn show(ui: &mut egui::Ui, model: Result<ModelConfig, String>, history: &History) {
    let model = match model {
        Ok(m) => m,
        Err(e) => {
            ui.colored_label(ui.visuals().error_fg_color, e);
            return;
        }
    };
    let summary = match Summary::new(&model) {
        Ok(s) => s,
        Err(e) => {
            ui.colored_label(ui.visuals().error_fg_color, e.to_string());
            return;
        }
    };
    ui.heading(format!(
        "{} (T = {}, input {}x{}x{}, {} classes)",
        model.name, model.timesteps, model.input[0], model.input[1], model.input[2], model.classes
    ));
    egui::Grid::new("summary")
        .striped(true)
        .num_columns(7)
        .show(ui, |ui| {
            for h in [
                "layer",
                "kind",
                "weights",
                "output",
                "params",
                "bits",
                "ops/sample (T steps)",
            ] {
                ui.strong(h);
            }
            ui.end_row();
            for r in &summary.rows {
                ui.label(&r.name);
                ui.label(r.kind);
                ui.label(if r.params() == 0 {
                    "-"
                } else if r.binary {
                    "binary"
                } else {
                    "fp32"
                });
                ui.label(format!("{}x{}x{}", r.output[0], r.output[1], r.output[2]));
                ui.label(r.params().to_string());
                ui.label(r.bits().to_string());
                ui.label(match (r.ops, r.spike_input) {
                    (0, _) => "-".to_string(),
                    (ops, true) => format!("{ops} AC"),
                    (ops, false) => format!("{ops} MAC"),
                });
                ui.end_row();
            }
        });
    ui.separator();
    let (b, f) = (summary.size_bytes_binary(), summary.size_bytes_fp32());
    ui.label(format!(
        "model size: {:.1} KiB at 1 bit per binary weight vs {:.1} KiB all-fp32 ({:.1}x smaller)",
        b / 1024.0,
        f / 1024.0,
        f / b.max(1.0)
    ));
    let rates = input_rates(&summary, history);
    let (acs, macs, joules) = summary.energy_joules(rates.as_deref());
    ui.label(format!(
        "energy per sample: {acs:.3e} AC + {macs:.3e} MAC = {:.2} uJ ({})",
        joules * 1e6,
        if rates.is_some() {
            "measured firing rates of the last epoch"
        } else {
            "dense upper bound until an epoch finishes"
        }
    ));
    ui.small(format!(
        "45 nm figures: E_AC = {E_AC_PJ} pJ, E_MAC = {E_MAC_PJ} pJ"
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_rates_come_from_the_previous_layer() {
        let summary = Summary::new(&ModelConfig::mnist()).unwrap();
        let mut history = History::default();
        assert!(input_rates(&summary, &history).is_none());
        let record: crate::train::EpochRecord = serde_json::from_value(serde_json::json!({
            "epoch": 1, "step": 1, "lr": 0.001, "train_loss": 1.0, "train_accuracy": 0.5,
            "test_loss": 1.0, "test_accuracy": 0.5, "flip_ratio": [], "flip_ratio_total": 0.0,
            "firing_rate": [["conv1", 0.1], ["pool1", 0.2], ["conv2", 0.3], ["pool3", 0.4], ["conv3", 0.5]],
            "grad_stats": [], "samples_per_second": 1.0, "epoch_seconds": 1.0, "eval_seconds": 1.0
        }))
        .unwrap();
        history.epochs.push(record);
        let rates = input_rates(&summary, &history).unwrap();
        assert_eq!(rates, vec![1.0, 0.1, 0.2, 0.3, 0.4, 0.5]);
    }
}
