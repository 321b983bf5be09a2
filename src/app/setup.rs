//! The setup panel: data set (embedded MNIST, IDX or CIFAR files), model (preset or config
//! file), T, AGMM mode, optimizer and hyper-parameters, the run controls (start, pause, reset),
//! checkpoints (load, save) and the reference run for overlays. The settings become a
//! [`ModelConfig`] and a [`TrainConfig`] when a run is (re)built.

use crate::data::FileSetKind;
use crate::model::{AgmmMode, ModelConfig, PRESETS};
use crate::train::{OptimizerKind, TrainConfig};

/// What the user chose; defaults match `bitspike train` except a smaller batch, which keeps
/// each GPU submission (and so the frame that waits behind it) short on software rasterisers.
#[derive(Clone, Debug, PartialEq)]
pub struct Setup {
    pub preset: String,
    /// A model loaded from a config file or a checkpoint (`(source, config)`); replaces the
    /// preset while set. T and the AGMM mode still come from the fields below.
    pub config: Option<(String, ModelConfig)>,
    /// Classes of the loaded data; presets size their readout for it.
    pub classes: usize,
    pub timesteps: usize,
    pub agmm: AgmmMode,
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
            config: None,
            classes: 10,
            timesteps: 4,
            agmm: AgmmMode::default(),
            optimizer: OptimizerKind::default(),
            lr: OptimizerKind::default().default_lr(),
            // Smaller than the CLI's: steps come back faster, so the curves move on a CPU.
            batch: 32,
            epochs: 3,
            seed: TrainConfig::default().seed,
        }
    }
}

impl Setup {
    /// The model config: the preset with this setup's T and AGMM mode.
    pub fn model(&self) -> Result<ModelConfig, String> {
        let mut model = match &self.config {
            Some((_, config)) => config.clone(),
            None => ModelConfig::preset_for_classes(&self.preset, self.classes)
                .ok_or_else(|| format!("unknown preset '{}'", self.preset))?,
        };
        model.timesteps = self.timesteps.max(1);
        model.agmm.mode = self.agmm;
        Ok(model)
    }

    /// Uses `config` (from `source`) as the model; its T and AGMM mode become the settings.
    pub fn use_config(&mut self, source: String, config: ModelConfig) {
        self.timesteps = config.timesteps;
        self.agmm = config.agmm.mode;
        self.config = Some((source, config));
    }

    /// A short description for overlay legends, e.g. "AGMM full, Adam 0.001, T=4".
    pub fn label(&self) -> String {
        format!(
            "AGMM {:?}, {:?} {}, T={}",
            self.agmm, self.optimizer, self.lr, self.timesteps
        )
        .to_lowercase()
    }

    /// The training config.
    pub fn train_config(&self) -> TrainConfig {
        TrainConfig {
            epochs: self.epochs.max(1),
            batch: self.batch.max(1),
            lr: self.lr,
            seed: self.seed,
            ..TrainConfig::for_optimizer(self.optimizer)
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
    /// End the run, keeping its weights and curves.
    Stop,
    /// Drop the run and build an idle one from the setup.
    Reset,
    /// Back to the embedded MNIST-10k.
    UseEmbedded,
    /// Open a file dialog for a data set.
    LoadData(FileSetKind),
    /// An event data set (a folder natively, its files on the web).
    LoadEvents(crate::data::events::EventKind),
    /// A bitspike frames file.
    LoadFrames,
    /// Open a file dialog for a model config (JSON).
    LoadConfig,
    /// Forget a loaded config; back to the preset.
    UsePreset,
    LoadCheckpoint,
    SaveCheckpoint,
    /// Keep the current run's curves to overlay the next run on.
    KeepReference,
    ClearReference,
    /// Open an ablation's `report.json` (`bitspike ablate`) to show its curves with bands.
    LoadAblation,
    CloseAblation,
}

/// Facts the panel shows but does not own.
pub struct PanelInfo<'a> {
    pub state: RunState,
    pub data_label: &'a str,
    pub has_reference: Option<&'a str>,
    /// The label of the ablation shown in the training view, if any.
    pub ablation: Option<&'a str>,
    /// A file dialog or checkpoint save is in progress.
    pub busy: bool,
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
pub fn show(ui: &mut egui::Ui, setup: &mut Setup, info: PanelInfo<'_>) -> Action {
    let state = info.state;
    let editable = matches!(state, RunState::Fresh | RunState::Done);
    let mut action = Action::None;
    ui.heading("Setup");
    ui.add_enabled_ui(editable, |ui| {
        ui.label(egui::RichText::new("Data").strong());
        ui.label(info.data_label);
        ui.horizontal_wrapped(|ui| {
            if ui.small_button("embedded MNIST").clicked() {
                action = Action::UseEmbedded;
            }
            if ui
                .small_button("IDX files…")
                .on_hover_text(crate::data::expected_files(FileSetKind::Idx))
                .clicked()
            {
                action = Action::LoadData(FileSetKind::Idx);
            }
            if ui
                .small_button("CIFAR-10…")
                .on_hover_text(crate::data::expected_files(FileSetKind::Cifar10))
                .clicked()
            {
                action = Action::LoadData(FileSetKind::Cifar10);
            }
            if ui
                .small_button("CIFAR-100…")
                .on_hover_text(crate::data::expected_files(FileSetKind::Cifar100))
                .clicked()
            {
                action = Action::LoadData(FileSetKind::Cifar100);
            }
        });
        ui.horizontal_wrapped(|ui| {
            use crate::data::events::{expected_layout, EventKind};
            for (label, kind) in [
                ("N-MNIST…", EventKind::NMnist),
                ("DVS Gesture…", EventKind::DvsGesture),
                ("CIFAR10-DVS…", EventKind::Cifar10Dvs),
            ] {
                let hint = if cfg!(target_arch = "wasm32") {
                    format!(
                        "choose the files ({}); N-MNIST needs its folders: load a frames file",
                        expected_layout(kind)
                    )
                } else {
                    format!("choose the folder ({})", expected_layout(kind))
                };
                if ui.small_button(label).on_hover_text(hint).clicked() {
                    action = Action::LoadEvents(kind);
                }
            }
            if ui
                .small_button("frames file…")
                .on_hover_text(
                    "event frames a run saved (bitspike-<set>-T<T>-<H>x<W>-<counts|binary>.frames)",
                )
                .clicked()
            {
                action = Action::LoadFrames;
            }
        });
        ui.separator();
        egui::Grid::new("setup grid").num_columns(2).show(ui, |ui| {
            ui.label("Model");
            ui.horizontal(|ui| {
                match &setup.config {
                    Some((source, _)) => {
                        ui.label(short_name(source)).on_hover_text(source.as_str());
                        if ui.small_button("preset").clicked() {
                            action = Action::UsePreset;
                        }
                    }
                    None => {
                        egui::ComboBox::from_id_salt("preset")
                            .selected_text(setup.preset.clone())
                            .show_ui(ui, |ui| {
                                for p in PRESETS {
                                    ui.selectable_value(&mut setup.preset, p.to_string(), *p);
                                }
                            });
                    }
                }
                if ui
                    .small_button("file…")
                    .on_hover_text("load a model config (JSON)")
                    .clicked()
                {
                    action = Action::LoadConfig;
                }
            });
            ui.end_row();
            ui.label("Timesteps T");
            ui.add(egui::DragValue::new(&mut setup.timesteps).range(1..=16));
            ui.end_row();
            ui.label("AGMM");
            ui.horizontal(|ui| {
                ui.selectable_value(&mut setup.agmm, AgmmMode::Full, "full");
                ui.selectable_value(&mut setup.agmm, AgmmMode::Detached, "detached");
                ui.selectable_value(&mut setup.agmm, AgmmMode::Off, "off");
            });
            ui.end_row();
            ui.label("Optimizer");
            ui.horizontal(|ui| {
                if ui
                    .selectable_value(&mut setup.optimizer, OptimizerKind::Adam, "Adam")
                    .clicked()
                {
                    setup.lr = OptimizerKind::Adam.default_lr();
                }
                if ui
                    .selectable_value(&mut setup.optimizer, OptimizerKind::Sgd, "SGD")
                    .clicked()
                {
                    setup.lr = OptimizerKind::Sgd.default_lr();
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
        if matches!(state, RunState::Running | RunState::Paused)
            && ui
                .button("Stop")
                .on_hover_text("End the run, keep its weights and curves")
                .clicked()
        {
            action = Action::Stop;
        }
        if ui
            .button("Reset")
            .on_hover_text("Stop and discard the run")
            .clicked()
        {
            action = Action::Reset;
        }
    });
    ui.separator();
    ui.label(egui::RichText::new("Checkpoint").strong());
    ui.horizontal(|ui| {
        let idle = state != RunState::Running && !info.busy;
        if ui
            .add_enabled(idle, egui::Button::new("Load…"))
            .on_hover_text("a .safetensors checkpoint (or drop one on the window)")
            .clicked()
        {
            action = Action::LoadCheckpoint;
        }
        if ui
            .add_enabled(!info.busy, egui::Button::new("Save…"))
            .on_hover_text("weights, optimizer state and config as .safetensors")
            .clicked()
        {
            action = Action::SaveCheckpoint;
        }
        if info.busy {
            ui.spinner();
        }
    });
    ui.separator();
    ui.label(egui::RichText::new("Compare runs").strong());
    match info.has_reference {
        Some(label) => {
            ui.label(format!("reference (dashed): {label}"));
            if ui.small_button("clear reference").clicked() {
                action = Action::ClearReference;
            }
        }
        None => {
            if ui
                .small_button("keep this run as reference")
                .on_hover_text("its curves stay, dashed, under the next run")
                .clicked()
            {
                action = Action::KeepReference;
            }
        }
    }
    match info.ablation {
        Some(label) => {
            ui.label(format!("ablation: {label}"));
            if ui.small_button("close ablation").clicked() {
                action = Action::CloseAblation;
            }
        }
        None => {
            if ui
                .add_enabled(!info.busy, egui::Button::new("Open ablation…").small())
                .on_hover_text(
                    "the report.json of a `bitspike ablate` grid directory: its curves with \
                     95 % confidence bands, in the training view",
                )
                .clicked()
            {
                action = Action::LoadAblation;
            }
        }
    }
    action
}

fn short_name(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setup_overrides_preset_timesteps_and_agmm() {
        let setup = Setup {
            timesteps: 2,
            agmm: AgmmMode::Off,
            ..Setup::default()
        };
        let model = setup.model().expect("mnist preset");
        assert_eq!(model.timesteps, 2);
        assert_eq!(model.agmm.mode, AgmmMode::Off);
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
