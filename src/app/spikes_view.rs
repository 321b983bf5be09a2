//! The spikes view: one test sample through the network in eval mode (batch 1), its input
//! image, a spike raster and a feature-map grid per spiking layer, spike counts and logits per
//! timestep, and the prediction.
//!
//! A probe records one forward pass and starts readbacks of every layer's output; the results
//! are picked up on later frames, so browsing samples never blocks the UI.

use egui::{TextureHandle, TextureOptions};

use crate::data::{make_batch, InputSpec};
use crate::gpu::{GpuContext, Readback};
use crate::snn::NetworkError;
use crate::train::TrainError;

use super::raster;
use super::session::Session;

/// Most raster columns per layer (one texture column per neuron, or per group of neurons).
const RASTER_COLUMNS: usize = 1024;
/// Samples a "next misclassified" search tries before giving up.
const SEARCH_BUDGET: usize = 200;

/// One layer's output for the probed sample.
pub struct LayerSpikes {
    pub name: String,
    /// `[C, H, W]` per timestep.
    pub shape: [usize; 3],
    /// `[T, C*H*W]`.
    pub spikes: Vec<f32>,
}

/// What a finished probe shows.
pub struct ProbeResult {
    pub sample: usize,
    pub label: usize,
    pub layers: Vec<LayerSpikes>,
    /// `[T, classes]`.
    pub logits: Vec<f32>,
    pub timesteps: usize,
    pub classes: usize,
}

impl ProbeResult {
    /// Argmax of the mean-over-time logits (the network's prediction).
    pub fn prediction(&self) -> usize {
        let mean: Vec<f32> = (0..self.classes)
            .map(|c| {
                (0..self.timesteps)
                    .map(|t| self.logits[t * self.classes + c])
                    .sum()
            })
            .collect();
        argmax(&mean)
    }
}

fn argmax(v: &[f32]) -> usize {
    v.iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, &x)| {
            if x > best.1 {
                (i, x)
            } else {
                best
            }
        })
        .0
}

/// A probe in flight: the readback of each layer output (last one: logits).
struct Probe {
    sample: usize,
    label: usize,
    parts: Vec<ProbePart>,
}

/// One layer's readback in a probe: name, shape, the readback, and its data once arrived.
type ProbePart = (String, [usize; 3], Readback<f32>, Option<Vec<f32>>);

/// Textures for the current result and timestep.
struct Textures {
    key: (usize, usize, u64),
    input: TextureHandle,
    rasters: Vec<TextureHandle>,
    grids: Vec<TextureHandle>,
}

/// State of the spikes view.
#[derive(Default)]
pub struct SpikesState {
    pub sample: usize,
    pub timestep: usize,
    /// Sample whose probe should run next (when the session allows it).
    wanted: Option<usize>,
    probe: Option<Probe>,
    pub result: Option<ProbeResult>,
    /// Tries left in a "next misclassified" search.
    searching: Option<usize>,
    generation: u64,
    textures: Option<Textures>,
    rng: u64,
}

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

    /// Starts a wanted probe and collects a finished one. Never waits.
    pub fn tick(&mut self, gpu: &GpuContext, session: &mut Session) -> Result<(), TrainError> {
        if let Some(probe) = &mut self.probe {
            let mut ready = true;
            for (_, _, readback, data) in &mut probe.parts {
                if data.is_none() {
                    match readback.try_take() {
                        Some(result) => *data = Some(result.map_err(NetworkError::from)?),
                        None => ready = false,
                    }
                }
            }
            if ready {
                if let Some(probe) = self.probe.take() {
                    self.finish(probe, session);
                }
            }
        }
        if self.probe.is_none() && session.can_probe() {
            if let Some(sample) = self.wanted.take() {
                self.probe = Some(start_probe(gpu, session, sample)?);
            }
        }
        Ok(())
    }

    fn finish(&mut self, probe: Probe, session: &Session) {
        let model = &session.trainer.model;
        let (timesteps, classes) = (model.timesteps, model.classes);
        let mut parts: Vec<(String, [usize; 3], Vec<f32>)> = probe
            .parts
            .into_iter()
            .map(|(name, shape, _, data)| (name, shape, data.unwrap_or_default()))
            .collect();
        let logits = parts.pop().map(|p| p.2).unwrap_or_default();
        let result = ProbeResult {
            sample: probe.sample,
            label: probe.label,
            layers: parts
                .into_iter()
                .map(|(name, shape, spikes)| LayerSpikes {
                    name,
                    shape,
                    spikes,
                })
                .collect(),
            logits,
            timesteps,
            classes,
        };
        // A search continues until it finds a wrong prediction or runs out of tries.
        if let Some(left) = self.searching {
            let test_len = session.test.len();
            if result.prediction() == result.label && left > 0 && test_len > 0 {
                self.searching = Some(left - 1);
                self.request((probe.sample + 1) % test_len);
            } else {
                self.searching = None;
            }
        }
        self.generation += 1;
        self.timestep = self.timestep.min(timesteps.saturating_sub(1));
        self.result = Some(result);
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

/// Uploads `sample` as a batch of 1, records an eval-mode forward and starts the readbacks.
fn start_probe(
    gpu: &GpuContext,
    session: &mut Session,
    sample: usize,
) -> Result<Probe, TrainError> {
    let test = session.test.clone();
    if sample >= test.len() {
        return Err(TrainError::Data(format!("no test sample {sample}")));
    }
    let model = session.trainer.model.clone();
    let spec = InputSpec {
        timesteps: model.timesteps,
        encoding: model.encoding,
        mean: model.normalize_mean.clone(),
        std: model.normalize_std.clone(),
        augment: false,
    };
    let host = make_batch(&test, &[sample], &spec, 0);
    let net = &mut session.trainer.net;
    net.upload(gpu, &host.input, &host.labels)?;
    let mut enc = gpu.encoder("spikes probe");
    net.record_forward(gpu, &mut enc, 1, false)?;
    gpu.submit(enc);
    let last = net.layers.len().saturating_sub(1);
    let mut parts = Vec::new();
    for (i, layer) in net.layers.iter().enumerate() {
        if layer.is_spiking() || i == last {
            let buffer = net.layer_output(1, i)?;
            parts.push((
                layer.name().to_string(),
                layer.output_shape(),
                buffer.read_back(gpu),
                None,
            ));
        }
    }
    Ok(Probe {
        sample,
        label: test.labels[sample] as usize,
        parts,
    })
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
        let slider = ui.add(egui::Slider::new(
            &mut sample,
            0..=test_len.saturating_sub(1),
        ));
        if slider.changed() {
            state.request(sample);
        }
        if ui.button("Random").clicked() {
            let s = state.random_sample(test_len);
            state.request(s);
        }
        if ui.button("Next misclassified").clicked() {
            state.searching = Some(SEARCH_BUDGET);
            state.request((state.sample + 1) % test_len.max(1));
        }
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
    });
    let Some(result) = &state.result else {
        ui.label("Pick a sample to see its spikes.");
        return;
    };
    let timesteps = result.timesteps;
    ui.horizontal(|ui| {
        ui.label("Timestep");
        ui.add(egui::Slider::new(
            &mut state.timestep,
            0..=timesteps.saturating_sub(1),
        ));
    });
    let key = (result.sample, state.timestep, state.generation);
    if state.textures.as_ref().is_none_or(|t| t.key != key) {
        let ctx = ui.ctx();
        let nearest = TextureOptions::NEAREST;
        let t = state.timestep;
        state.textures = Some(Textures {
            key,
            input: ctx.load_texture(
                "input",
                raster::input_image(&session.test, result.sample),
                nearest,
            ),
            rasters: result
                .layers
                .iter()
                .map(|l| {
                    ctx.load_texture(
                        format!("raster {}", l.name),
                        raster::raster_image(&l.spikes, timesteps, RASTER_COLUMNS),
                        nearest,
                    )
                })
                .collect(),
            grids: result
                .layers
                .iter()
                .map(|l| {
                    let n = l.shape.iter().product::<usize>();
                    let slice = l.spikes.get(t * n..(t + 1) * n).unwrap_or(&[]);
                    ctx.load_texture(
                        format!("grid {}", l.name),
                        raster::feature_grid(slice, l.shape),
                        nearest,
                    )
                })
                .collect(),
        });
    }
    let Some(textures) = &state.textures else {
        return;
    };
    let prediction = result.prediction();
    ui.separator();
    // Input and logits on top, the layers below at full width (rasters want the width).
    ui.horizontal_top(|ui| {
        ui.add(egui::Image::new(&textures.input).fit_to_exact_size(egui::vec2(140.0, 140.0)));
        ui.vertical(|ui| {
            let verdict = if prediction == result.label {
                "correct"
            } else {
                "WRONG"
            };
            ui.label(
                egui::RichText::new(format!(
                    "label {}  predicted {}  ({verdict})",
                    result.label, prediction
                ))
                .strong(),
            );
            ui.label("Logits per timestep (mean over time decides)");
            logits_grid(ui, result, state.timestep);
        });
    });
    ui.separator();
    {
        egui::ScrollArea::vertical().show(ui, |ui| {
            for (i, layer) in result.layers.iter().enumerate() {
                let counts = raster::spike_counts(&layer.spikes, timesteps);
                let [c, h, w] = layer.shape;
                let neurons = c * h * w;
                ui.label(
                    egui::RichText::new(format!(
                        "{}  ({c}x{h}x{w} = {neurons} neurons)   spikes per timestep: {}",
                        layer.name,
                        counts
                            .iter()
                            .map(|n| n.to_string())
                            .collect::<Vec<_>>()
                            .join(" / ")
                    ))
                    .strong(),
                );
                ui.horizontal_top(|ui| {
                    let grid = &textures.grids[i];
                    let size = grid.size_vec2();
                    let scale = (200.0 / size.x.max(size.y)).max(1.0);
                    ui.add(egui::Image::new(grid).fit_to_exact_size(size * scale))
                        .on_hover_text(format!("feature maps at t = {}", state.timestep));
                    let width = (ui.available_width() - 8.0).max(100.0);
                    let row = 14.0;
                    let response = ui.add(
                        egui::Image::new(&textures.rasters[i])
                            .maintain_aspect_ratio(false)
                            .fit_to_exact_size(egui::vec2(width, row * timesteps as f32)),
                    );
                    // Mark the selected timestep's row.
                    let r = response.rect;
                    let y = r.top() + row * state.timestep as f32;
                    ui.painter().rect_stroke(
                        egui::Rect::from_min_size(
                            egui::pos2(r.left(), y),
                            egui::vec2(r.width(), row),
                        ),
                        0.0,
                        egui::Stroke::new(1.5, egui::Color32::WHITE),
                        egui::StrokeKind::Inside,
                    );
                });
                ui.add_space(6.0);
            }
        });
    }
}

/// The logits `[T, classes]` as a table, the selected timestep highlighted, the mean row last.
fn logits_grid(ui: &mut egui::Ui, result: &ProbeResult, selected: usize) {
    egui::Grid::new("logits").striped(true).show(ui, |ui| {
        ui.label("t");
        for c in 0..result.classes {
            ui.label(c.to_string());
        }
        ui.end_row();
        for t in 0..result.timesteps {
            let row = &result.logits[t * result.classes..(t + 1) * result.classes];
            let best = argmax(row);
            let label = if t == selected {
                format!("[{t}]")
            } else {
                t.to_string()
            };
            ui.label(label);
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
    fn prediction_is_argmax_of_mean_logits() {
        let result = ProbeResult {
            sample: 0,
            label: 1,
            layers: Vec::new(),
            // t = 0 prefers class 0 slightly, t = 1 prefers class 1 strongly.
            logits: vec![1.0, 0.9, 0.0, 3.0],
            timesteps: 2,
            classes: 2,
        };
        assert_eq!(result.prediction(), 1);
    }
}
