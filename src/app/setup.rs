//! The setup panel: model preset, T, AGMM mode, optimizer and hyper-parameters, and the run
//! controls (start, pause, reset). The settings become a [`ModelConfig`] and a
//! [`TrainConfig`] when a run is (re)built.

use crate::model::{AgmmModeConfig, ModelConfig, PRESETS};
use crate::train::{OptimizerKind, TrainConfig};

/// What the user chose; defaults match `bitspike train` except a smaller batch, which keeps
/// each GPU submission (and so the frame that waits behind it) short on software rasterisers.
#[derive(Clone, Debug, PartialEq)]
pub struct Setup {
    pub preset: String,
    pub timesteps: usize,
    pub agmm: AgmmModeConfig,
    pub optimizer: OptimizerKind,
    pub lr: f32,
    pub batch: usize,
    pub epochs: usize,
    pub seed: u64,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            preset: "mnist".into(),
            timesteps: 4,
            agmm: AgmmModeConfig::Full,
            optimizer: OptimizerKind::Adam,
            lr: 1e-3,
            batch: 32,
            epochs: 3,
            seed: 1,
        }
    }
}

impl Setup {
    /// The model config: the preset with this setup's T and AGMM mode.
    pub fn model(&self) -> Result<ModelConfig, String> {
        let mut model = ModelConfig::preset(&self.preset)
            .ok_or_else(|| format!("unknown preset '{}'", self.preset))?;
        model.timesteps = self.timesteps.max(1);
        model.agmm.mode = self.agmm;
        Ok(model)
    }

    /// The training config.
    pub fn train_config(&self) -> TrainConfig {
        TrainConfig {
            epochs: self.epochs.max(1),
            batch: self.batch.max(1),
            optimizer: self.optimizer,
            lr: self.lr,
            weight_decay: match self.optimizer {
                OptimizerKind::Adam => 0.0,
                OptimizerKind::Sgd => 1e-4,
            },
            seed: self.seed,
            // Readbacks happen per step in the app; the trainer's own logging is unused.
            log_every: 1,
            ..TrainConfig::default()
        }
    }
}

/// What the user asked for this frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    None,
    /// Build a fresh run from the setup and start it.
    Start,
    Pause,
    Resume,
    /// Drop the run and build an idle one from the setup.
    Reset,
}

/// The run's state as the controls need it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunState {
    /// Built, never started (settings may change).
    Fresh,
    Running,
    Paused,
    Done,
}

/// Draws the panel; returns the requested action.
pub fn show(ui: &mut egui::Ui, setup: &mut Setup, state: RunState) -> Action {
    let editable = matches!(state, RunState::Fresh | RunState::Done);
    ui.heading("Setup");
    ui.label("Data: embedded MNIST-10k (8,000 train / 2,000 test)");
    ui.add_enabled_ui(editable, |ui| {
        egui::Grid::new("setup grid").num_columns(2).show(ui, |ui| {
            ui.label("Preset");
            egui::ComboBox::from_id_salt("preset")
                .selected_text(setup.preset.clone())
                .show_ui(ui, |ui| {
                    // Only presets whose input fits the embedded MNIST data.
                    for p in PRESETS.iter().filter(|p| **p == "mnist") {
                        ui.selectable_value(&mut setup.preset, p.to_string(), *p);
                    }
                });
            ui.end_row();
            ui.label("Timesteps T");
            ui.add(egui::DragValue::new(&mut setup.timesteps).range(1..=16));
            ui.end_row();
            ui.label("AGMM");
            ui.horizontal(|ui| {
                ui.selectable_value(&mut setup.agmm, AgmmModeConfig::Full, "full");
                ui.selectable_value(&mut setup.agmm, AgmmModeConfig::Detached, "detached");
                ui.selectable_value(&mut setup.agmm, AgmmModeConfig::Off, "off");
            });
            ui.end_row();
            ui.label("Optimizer");
            ui.horizontal(|ui| {
                if ui
                    .selectable_value(&mut setup.optimizer, OptimizerKind::Adam, "Adam")
                    .clicked()
                {
                    setup.lr = 1e-3;
                }
                if ui
                    .selectable_value(&mut setup.optimizer, OptimizerKind::Sgd, "SGD")
                    .clicked()
                {
                    setup.lr = 0.1;
                }
            });
            ui.end_row();
            ui.label("Learning rate");
            ui.add(
                egui::DragValue::new(&mut setup.lr)
                    .speed(1e-4)
                    .range(1e-6..=1.0)
                    .max_decimals(5),
            );
            ui.end_row();
            ui.label("Batch");
            ui.add(egui::DragValue::new(&mut setup.batch).range(1..=256));
            ui.end_row();
            ui.label("Epochs");
            ui.add(egui::DragValue::new(&mut setup.epochs).range(1..=100));
            ui.end_row();
            ui.label("Seed");
            ui.add(egui::DragValue::new(&mut setup.seed));
            ui.end_row();
        });
    });
    ui.separator();
    let mut action = Action::None;
    ui.horizontal(|ui| {
        match state {
            RunState::Fresh | RunState::Done => {
                if ui.button("Start").clicked() {
                    action = Action::Start;
                }
            }
            RunState::Running => {
                if ui.button("Pause").clicked() {
                    action = Action::Pause;
                }
            }
            RunState::Paused => {
                if ui.button("Resume").clicked() {
                    action = Action::Resume;
                }
            }
        }
        if ui
            .button("Reset")
            .on_hover_text("Stop and discard the run")
            .clicked()
        {
            action = Action::Reset;
        }
    });
    action
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setup_overrides_preset_timesteps_and_agmm() {
        let setup = Setup {
            timesteps: 2,
            agmm: AgmmModeConfig::Off,
            ..Setup::default()
        };
        let model = setup.model().expect("mnist preset");
        assert_eq!(model.timesteps, 2);
        assert_eq!(model.agmm.mode, AgmmModeConfig::Off);
        assert_eq!(setup.train_config().batch, 32);
    }

    #[test]
    fn unknown_preset_is_an_error_not_a_panic() {
        let setup = Setup {
            preset: "nope".into(),
            ..Setup::default()
        };
        assert!(setup.model().is_err());
    }
}
