//! The spikes view: one test sample through the network in eval mode (batch 1): its input
//! image, the logits per timestep and the prediction, and the per-layer panel (rasters, feature
//! maps, membrane traces, AGMM gates). Browse, random, and "misclassified only" browsing.
//!
//! A probe records one forward pass and starts readbacks; the results are picked up on later
//! frames, so browsing samples never blocks the UI.

use egui::{TextureHandle, TextureOptions};

use crate::gpu::GpuContext;
use crate::train::TrainError;

use super::layers_panel::LayersPanel;
use super::probe::{argmax, Probe, ProbeResult};
use super::raster;
use super::session::Session;

/// Samples a misclassified-only search tries before giving up.
const SEARCH_BUDGET: usize = 300;

/// Which way a misclassified-only search walks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Direction {
    Forward,
    Backward,
}

/// State of the spikes view.
#[derive(Default)]
pub struct SpikesState {
    pub sample: usize,
    /// Browse only samples the network gets wrong.
    pub misclassified_only: bool,
    /// Sample whose probe should run next (when the session allows it).
    wanted: Option<usize>,
    probe: Option<Probe>,
    pub result: Option<ProbeResult>,
    /// Tries left and direction of a misclassified-only search.
    searching: Option<(usize, Direction)>,
    /// Set when a search ran out of tries.
    pub search_note: Option<String>,
    generation: u64,
    pub panel: LayersPanel,
    input: Option<InputPicture>,
    rng: u64,
}

/// The input texture, keyed by result generation and (event input) timestep, with the ON/OFF
/// event counts of an event frame.
type InputPicture = ((u64, usize), TextureHandle, Option<[u64; 2]>);

impl SpikesState {
    /// Asks for a probe of `sample` (runs on a later frame).
    pub fn request(&mut self, sample: usize) {
        self.sample = sample;
        self.wanted = Some(sample);
    }

    /// True while a probe is wanted or in flight.
    pub fn busy(&self) -> bool {
        self.wanted.is_some() || self.probe.is_some()
    }

    /// Drops the probe and result (the network they came from is gone).
    pub fn clear(&mut self) {
        *self = Self {
            sample: self.sample,
            misclassified_only: self.misclassified_only,
            rng: self.rng,
            ..Self::default()
        };
    }

    /// Starts a wanted probe and collects a finished one. Never waits.
    pub fn tick(&mut self, gpu: &GpuContext, session: &mut Session) -> Result<(), TrainError> {
        if let Some(result) = Probe::collect(&mut self.probe)? {
            self.finish(result, session.test.len());
        }
        if self.probe.is_none() && session.can_probe() && gpu.can_submit_without_waiting() {
            if let Some(sample) = self.wanted.take() {
                let test = session.test.clone();
                let label = test.labels.get(sample).map(|&l| l as usize);
                self.probe = Some(gpu.batch(|| Probe::start(gpu, session, test, sample, label))?);
            }
        }
        Ok(())
    }

    fn finish(&mut self, result: ProbeResult, test_len: usize) {
        // A search continues until it finds a wrong prediction or runs out of tries.
        if let Some((left, direction)) = self.searching {
            let correct = Some(result.prediction()) == result.label;
            if correct && left > 0 && test_len > 0 {
                self.searching = Some((left - 1, direction));
                self.request(step(result.sample, direction, test_len));
                return;
            }
            self.searching = None;
            if correct {
                self.search_note = Some(format!(
                    "no misclassified sample within {SEARCH_BUDGET} tries"
                ));
            }
        }
        self.generation += 1;
        self.result = Some(result);
    }

    /// Moves to the next/previous sample, or searches for a misclassified one.
    fn browse(&mut self, direction: Direction, test_len: usize) {
        self.search_note = None;
        let next = step(self.sample, direction, test_len);
        if self.misclassified_only {
            self.searching = Some((SEARCH_BUDGET, direction));
        }
        self.request(next);
    }

    fn random_sample(&mut self, len: usize) -> usize {
        // xorshift64*: enough to pick a sample, no generator state worth seeding.
        if self.rng == 0 {
            self.rng = 0x9E37_79B9_7F4A_7C15;
        }
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        (self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) % len.max(1) as u64) as usize
    }
}

fn step(sample: usize, direction: Direction, len: usize) -> usize {
    let len = len.max(1);
    match direction {
        Direction::Forward => (sample + 1) % len,
        Direction::Backward => (sample + len - 1) % len,
    }
}

/// Draws the view.
pub fn show(ui: &mut egui::Ui, state: &mut SpikesState, session: Option<&Session>) {
    let Some(session) = session else {
        ui.label("No network yet.");
        return;
    };
    let test_len = session.test.len();
    ui.horizontal(|ui| {
        let mut sample = state.sample;
        ui.label("Test sample");
        if ui
            .add(egui::Slider::new(
                &mut sample,
                0..=test_len.saturating_sub(1),
            ))
            .changed()
        {
            state.searching = None;
            state.request(sample);
        }
        if ui.button("<").on_hover_text("previous").clicked() {
            state.browse(Direction::Backward, test_len);
        }
        if ui.button(">").on_hover_text("next").clicked() {
            state.browse(Direction::Forward, test_len);
        }
        if ui.button("Random").clicked() {
            let s = state.random_sample(test_len);
            if state.misclassified_only {
                state.searching = Some((SEARCH_BUDGET, Direction::Forward));
            }
            state.request(s);
        }
        ui.checkbox(&mut state.misclassified_only, "misclassified only");
        if ui
            .button("Run again")
            .on_hover_text("Probe with the current weights")
            .clicked()
        {
            state.request(state.sample);
        }
        if state.busy() {
            ui.spinner();
        }
        if let Some(note) = &state.search_note {
            ui.label(note);
        }
    });
    let Some(result) = &state.result else {
        ui.label("Pick a sample to see its spikes.");
        return;
    };
    // Event input: frame t is the input at timestep t, so the picture follows the timestep
    // slider (and Play).
    let events = session.trainer.model().encoding == crate::model::Encoding::Events;
    state.panel.timestep_controls(ui, result.timesteps);
    let key = (
        state.generation,
        if events { state.panel.timestep } else { 0 },
    );
    if state.input.as_ref().is_none_or(|(k, _, _)| *k != key) {
        let (image, counts) = if events {
            let (image, counts) = raster::event_frame_image(&result.data, result.sample, key.1);
            (image, Some(counts))
        } else {
            (raster::input_image(&result.data, result.sample), None)
        };
        let texture = ui
            .ctx()
            .load_texture("input", image, TextureOptions::NEAREST);
        state.input = Some((key, texture, counts));
    }
    ui.separator();
    ui.horizontal_top(|ui| {
        if let Some((key, texture, counts)) = &state.input {
            ui.vertical(|ui| {
                ui.add(egui::Image::new(texture).fit_to_exact_size(egui::vec2(140.0, 140.0)));
                if let Some([on, off]) = counts {
                    ui.label(egui::RichText::new(format!("events at t = {}:", key.1)).small());
                    ui.horizontal(|ui| {
                        ui.label(
                            egui::RichText::new(format!("ON {on}"))
                                .small()
                                .color(raster::ON_COLOR),
                        );
                        ui.label(
                            egui::RichText::new(format!("OFF {off}"))
                                .small()
                                .color(raster::OFF_COLOR),
                        );
                    });
                }
            });
        }
        ui.vertical(|ui| {
            prediction_line(ui, result);
            ui.label("Logits per timestep (mean over time decides)");
            logits_grid(ui, result, state.panel.timestep);
        });
    });
    ui.separator();
    let generation = state.generation;
    egui::ScrollArea::vertical().show(ui, |ui| state.panel.show(ui, result, generation));
}

/// "label 3  predicted 3 (correct)" or, without a label, the prediction and its confidence.
pub fn prediction_line(ui: &mut egui::Ui, result: &ProbeResult) {
    let prediction = result.prediction();
    let confidence = result
        .probabilities()
        .get(prediction)
        .copied()
        .unwrap_or(0.0);
    let text = match result.label {
        Some(label) => {
            let verdict = if prediction == label {
                "correct"
            } else {
                "WRONG"
            };
            format!("label {label}  predicted {prediction}  ({verdict}, p = {confidence:.2})")
        }
        None => format!("predicted {prediction}  (p = {confidence:.2})"),
    };
    ui.label(egui::RichText::new(text).strong().size(16.0));
}

/// The logits `[T, classes]` as a table, the selected timestep highlighted.
pub fn logits_grid(ui: &mut egui::Ui, result: &ProbeResult, selected: usize) {
    egui::Grid::new("logits").striped(true).show(ui, |ui| {
        ui.label("t");
        for c in 0..result.classes {
            ui.label(c.to_string());
        }
        ui.end_row();
        for t in 0..result.timesteps {
            let row = &result.logits[t * result.classes..(t + 1) * result.classes];
            let best = argmax(row);
            ui.label(if t == selected {
                format!("[{t}]")
            } else {
                t.to_string()
            });
            for (c, v) in row.iter().enumerate() {
                let text = egui::RichText::new(format!("{v:.1}")).small();
                ui.label(if c == best {
                    text.strong().color(egui::Color32::LIGHT_GREEN)
                } else {
                    text
                });
            }
            ui.end_row();
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browsing_wraps_both_ways() {
        assert_eq!(step(0, Direction::Backward, 5), 4);
        assert_eq!(step(4, Direction::Forward, 5), 0);
        assert_eq!(step(2, Direction::Forward, 5), 3);
    }
}
