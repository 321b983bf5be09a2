//! The per-layer inspection panel shared by the spikes view and the draw view: for each
//! spiking layer a spike raster (neurons x timesteps), the feature maps at the chosen timestep
//! (click one to pick a neuron), the membrane trace of the picked neuron against V_th, and the
//! AGMM gate sigmoid(E[t]) distribution; above them a timestep slider with a play button.
//! Rasters and grids are textures, not shapes.

use egui::{TextureHandle, TextureOptions};
use egui_plot::{Bar, BarChart, HLine, Legend, Line, Plot, PlotPoints, Points};

use super::probe::ProbeResult;
use super::raster;

/// Most raster columns per layer (one texture column per neuron, or per group of neurons).
const RASTER_COLUMNS: usize = 1024;
/// Seconds per timestep while playing.
const PLAY_STEP_SECONDS: f64 = 0.6;
/// Bins of the AGMM gate histogram over [0, 1].
const GATE_BINS: usize = 20;

/// Textures for one result and timestep.
struct Textures {
    key: (u64, usize),
    rasters: Vec<TextureHandle>,
    grids: Vec<TextureHandle>,
}

/// Timestep, playback, picked neuron and cached textures.
#[derive(Default)]
pub struct LayersPanel {
    pub timestep: usize,
    pub playing: bool,
    last_advance: f64,
    /// `(layer index, neuron)` whose membrane trace is shown.
    pub picked: Option<(usize, usize)>,
    textures: Option<Textures>,
}

impl LayersPanel {
    /// The timestep slider and play button. Advances while playing.
    pub fn timestep_controls(&mut self, ui: &mut egui::Ui, timesteps: usize) {
        let last = timesteps.saturating_sub(1);
        self.timestep = self.timestep.min(last);
        ui.horizontal(|ui| {
            ui.label("Timestep");
            ui.add(egui::Slider::new(&mut self.timestep, 0..=last));
            let label = if self.playing { "Pause" } else { "Play" };
            if ui.button(label).clicked() {
                self.playing = !self.playing;
                self.last_advance = ui.input(|i| i.time);
            }
        });
        if self.playing {
            let now = ui.input(|i| i.time);
            if now - self.last_advance >= PLAY_STEP_SECONDS {
                self.timestep = if self.timestep >= last {
                    0
                } else {
                    self.timestep + 1
                };
                self.last_advance = now;
            }
            ui.ctx()
                .request_repaint_after(std::time::Duration::from_secs_f64(PLAY_STEP_SECONDS / 4.0));
        }
    }

    /// Picks a neuron worth showing in the first layer with a membrane: one that fires at some
    /// but not all timesteps and charges highest (screenshots and first looks).
    pub fn pick_interesting(&mut self, result: &ProbeResult) {
        let Some((index, layer)) = result
            .layers
            .iter()
            .enumerate()
            .find(|(_, l)| !l.membrane.is_empty())
        else {
            return;
        };
        let n = layer.neurons();
        let t = result.timesteps;
        let best = (0..n)
            .filter(|&i| {
                let fired = (0..t).filter(|&s| layer.spikes[s * n + i] > 0.5).count();
                fired > 0 && fired < t
            })
            .max_by(|&a, &b| {
                let peak = |i: usize| {
                    (0..t)
                        .map(|s| layer.membrane[s * n + i])
                        .fold(f32::MIN, f32::max)
                };
                peak(a).total_cmp(&peak(b))
            });
        if let Some(neuron) = best {
            self.picked = Some((index, neuron));
        }
    }

    /// Draws every spiking layer of `result`; `generation` changes whenever `result` does.
    pub fn show(&mut self, ui: &mut egui::Ui, result: &ProbeResult, generation: u64) {
        let timesteps = result.timesteps;
        let t = self.timestep.min(timesteps.saturating_sub(1));
        let key = (generation, t);
        if self.textures.as_ref().is_none_or(|x| x.key != key) {
            let ctx = ui.ctx();
            let nearest = TextureOptions::NEAREST;
            self.textures = Some(Textures {
                key,
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
                        let n = l.neurons();
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
        let Some(textures) = &self.textures else {
            return;
        };
        let mut picked = self.picked;
        for (i, layer) in result.layers.iter().enumerate() {
            let counts = raster::spike_counts(&layer.spikes, timesteps);
            let [c, h, w] = layer.shape;
            let neurons = layer.neurons();
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
                let response = ui
                    .add(
                        egui::Image::new(grid)
                            .fit_to_exact_size(size * scale)
                            .sense(egui::Sense::click()),
                    )
                    .on_hover_text(format!(
                        "feature maps at t = {t}; click a neuron for its membrane trace"
                    ));
                if response.clicked() {
                    if let Some(pos) = response.interact_pointer_pos() {
                        let local = (pos - response.rect.min) / scale;
                        if let Some(n) =
                            raster::grid_neuron(layer.shape, local.x as usize, local.y as usize)
                        {
                            picked = Some((i, n));
                        }
                    }
                }
                if let Some((_, n)) = picked.filter(|(l, _)| *l == i) {
                    // Outline the picked neuron's pixel.
                    if let Some((gx, gy)) = raster::grid_position(layer.shape, n) {
                        let min = response.rect.min + egui::vec2(gx as f32, gy as f32) * scale;
                        ui.painter().rect_stroke(
                            egui::Rect::from_min_size(min, egui::vec2(scale, scale)),
                            0.0,
                            egui::Stroke::new(1.5, egui::Color32::from_rgb(80, 255, 120)),
                            egui::StrokeKind::Outside,
                        );
                    }
                }
                let width = (ui.available_width() - 8.0).max(100.0);
                let row = 14.0;
                let response = ui.add(
                    egui::Image::new(&textures.rasters[i])
                        .maintain_aspect_ratio(false)
                        .fit_to_exact_size(egui::vec2(width, row * timesteps as f32)),
                );
                // Mark the selected timestep's row.
                let r = response.rect;
                let y = r.top() + row * t as f32;
                ui.painter().rect_stroke(
                    egui::Rect::from_min_size(egui::pos2(r.left(), y), egui::vec2(r.width(), row)),
                    0.0,
                    egui::Stroke::new(1.5, egui::Color32::WHITE),
                    egui::StrokeKind::Inside,
                );
            });
            let has_trace =
                !layer.membrane.is_empty() && picked.is_some_and(|(l, n)| l == i && n < neurons);
            if has_trace || !layer.expectation.is_empty() {
                ui.horizontal_top(|ui| {
                    let half = (ui.available_width() - 12.0) / 2.0;
                    if let Some((_, n)) = picked.filter(|_| has_trace) {
                        ui.vertical(|ui| {
                            ui.set_width(half);
                            membrane_plot(ui, layer, n, t);
                        });
                    }
                    if !layer.expectation.is_empty() {
                        ui.vertical(|ui| {
                            ui.set_width(half);
                            gate_plot(ui, layer, t);
                        });
                    }
                });
            }
            ui.add_space(6.0);
        }
        self.picked = picked;
    }
}

/// Membrane potential h[t] of one neuron with V_th and the spikes it fired.
fn membrane_plot(ui: &mut egui::Ui, layer: &super::probe::LayerSpikes, neuron: usize, t: usize) {
    let [_, h, w] = layer.shape;
    let (ch, y, x) = (neuron / (h * w), (neuron / w) % h, neuron % w);
    ui.label(format!(
        "{} neuron c{ch} ({y}, {x}): membrane h[t] vs V_th = {}",
        layer.name, layer.v_th
    ));
    let trace = layer.membrane_trace(neuron);
    let n = layer.neurons();
    let points: Vec<[f64; 2]> = trace
        .iter()
        .enumerate()
        .map(|(ti, v)| [ti as f64, *v as f64])
        .collect();
    let spikes: Vec<[f64; 2]> = (0..trace.len())
        .filter(|ti| layer.spikes[ti * n + neuron] > 0.5)
        .map(|ti| [ti as f64, trace[ti] as f64])
        .collect();
    Plot::new(format!("membrane {}", layer.name))
        .height(110.0)
        .include_y(0.0)
        .include_y(layer.v_th as f64 * 1.25)
        .legend(Legend::default())
        .x_axis_label("t")
        .allow_scroll(false)
        .show(ui, |p| {
            p.hline(HLine::new("V_th", layer.v_th as f64).color(egui::Color32::LIGHT_RED));
            p.line(
                Line::new("h[t]", PlotPoints::from(points))
                    .width(2.0)
                    .color(egui::Color32::from_rgb(120, 190, 255)),
            );
            p.points(
                Points::new("spike", PlotPoints::from(spikes))
                    .radius(5.0)
                    .color(egui::Color32::from_rgb(255, 220, 80)),
            );
            p.vline(egui_plot::VLine::new("selected t", t as f64).color(egui::Color32::GRAY));
        });
}

/// Histogram of the AGMM gate sigmoid(E[t]) over the layer's neurons at timestep `t`.
fn gate_plot(ui: &mut egui::Ui, layer: &super::probe::LayerSpikes, t: usize) {
    let n = layer.neurons();
    let e = layer.expectation.get(t * n..(t + 1) * n).unwrap_or(&[]);
    let counts = raster::histogram(e.iter().map(|&v| sigmoid(v)), 0.0, 1.0, GATE_BINS);
    let mean = e.iter().map(|&v| sigmoid(v) as f64).sum::<f64>() / e.len().max(1) as f64;
    ui.label(format!(
        "{}: AGMM gate sigmoid(E[{t}]) over {n} neurons (mean {mean:.3})",
        layer.name
    ));
    let width = 1.0 / GATE_BINS as f64;
    let bars: Vec<Bar> = counts
        .iter()
        .enumerate()
        .map(|(b, &c)| Bar::new((b as f64 + 0.5) * width, c as f64).width(width * 0.95))
        .collect();
    Plot::new(format!("gate {}", layer.name))
        .height(110.0)
        .x_axis_label("sigmoid(E)")
        .allow_scroll(false)
        .show(ui, |p| p.bar_chart(BarChart::new("neurons", bars)));
}

fn sigmoid(v: f32) -> f32 {
    1.0 / (1.0 + (-v).exp())
}
