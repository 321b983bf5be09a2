//! The weights view: per binary layer the sign map of sign(W) (+1 / -1 as colours, one row per
//! output channel), which weights flipped since the last epoch's sign snapshot, the latent
//! weight histogram and gamma (the per-output-channel scale) per channel.
//!
//! Weights are read back on request (the view opening, an epoch ending, the Refresh button),
//! never every frame: a conv layer's latent tensor is hundreds of KB.

use egui::{TextureHandle, TextureOptions};
use egui_plot::{Bar, BarChart, Plot};

use crate::gpu::GpuContext;
use crate::snn::{NetworkError, WeightReadback};

use super::raster;
use super::session::Session;

/// Widest sign/flip map texture; wider layers fold neighbouring inputs into one column
/// (textures must stay under the device's 2-D size limit).
const MAX_MAP_COLUMNS: usize = 2048;
/// Bins of the latent-weight histogram.
const HIST_BINS: usize = 41;

/// One binary layer as read back.
struct LayerWeights {
    name: String,
    rows: usize,
    cols: usize,
    latent: Vec<f32>,
    gamma: Vec<f32>,
    flipped: usize,
    signs: TextureHandle,
    flips: TextureHandle,
}

/// State of the weights view.
#[derive(Default)]
pub struct WeightsState {
    pending: Option<Vec<WeightReadback>>,
    layers: Vec<LayerWeights>,
    /// Optimizer step the shown weights are from.
    pub step: Option<u64>,
    wanted: bool,
    /// Epoch count at the last refresh: a finished epoch refreshes the view.
    seen_epochs: usize,
}

impl WeightsState {
    /// Asks for a fresh readback on a later frame.
    pub fn request(&mut self) {
        self.wanted = true;
    }

    /// True while a readback is wanted or in flight.
    pub fn busy(&self) -> bool {
        self.wanted || self.pending.is_some()
    }

    /// Forgets everything (the network is gone).
    pub fn clear(&mut self) {
        *self = Self::default();
    }

    /// Starts a wanted readback, turns a finished one into textures. Never waits.
    pub fn tick(
        &mut self,
        ctx: &egui::Context,
        gpu: &GpuContext,
        session: &Session,
        epochs_done: usize,
    ) -> Result<(), NetworkError> {
        if epochs_done != self.seen_epochs {
            self.seen_epochs = epochs_done;
            self.wanted = true;
        }
        if let Some(parts) = &mut self.pending {
            let mut ready: Result<bool, crate::gpu::GpuError> = Ok(true);
            for part in parts.iter_mut() {
                ready = ready.and_then(|r| Ok(part.poll()? && r));
            }
            match ready {
                // A failed readback ends this refresh (shown once); Refresh starts another.
                Err(e) => {
                    self.pending = None;
                    return Err(e.into());
                }
                Ok(false) => {}
                Ok(true) => {
                    let parts = self.pending.take().unwrap_or_default();
                    self.layers = parts
                        .into_iter()
                        .map(|mut part| {
                            let (name, rows, cols) = (part.name, part.rows, part.cols);
                            let latent = part.latent.take();
                            let snapshot = part.snapshot.take();
                            let (signs, flips, flipped) = raster::sign_and_flip_maps(
                                &latent,
                                &snapshot,
                                rows,
                                cols,
                                MAX_MAP_COLUMNS,
                            );
                            let nearest = TextureOptions::NEAREST;
                            LayerWeights {
                                signs: ctx.load_texture(format!("signs {name}"), signs, nearest),
                                flips: ctx.load_texture(format!("flips {name}"), flips, nearest),
                                name,
                                rows,
                                cols,
                                latent,
                                gamma: part.gamma.take(),
                                flipped,
                            }
                        })
                        .collect();
                }
            }
        }
        if self.wanted && self.pending.is_none() && gpu.can_submit_without_waiting() {
            self.wanted = false;
            let net = session.trainer.net();
            self.step = Some(net.step());
            let parts: Vec<WeightReadback> = gpu.batch(|| net.read_binary_weights(gpu));
            self.pending = Some(parts);
        }
        Ok(())
    }
}

/// Draws the view.
pub fn show(ui: &mut egui::Ui, state: &mut WeightsState, session: Option<&Session>) {
    if session.is_none() {
        ui.label("No network yet.");
        return;
    }
    ui.horizontal(|ui| {
        if ui.button("Refresh").clicked() {
            state.request();
        }
        match state.step {
            Some(step) => ui.label(format!("weights after step {step}")),
            None => ui.label("reading weights..."),
        };
        if state.busy() {
            ui.spinner();
        }
    });
    ui.horizontal(|ui| {
        ui.colored_label(raster::PLUS, "+1");
        ui.colored_label(raster::MINUS, "-1");
        ui.label("(sign of the latent weight; rows = output channels, columns = inputs x kernel)");
    });
    if state.layers.is_empty() && !state.busy() {
        ui.label("This model has no binary layers.");
    }
    egui::ScrollArea::vertical().show(ui, |ui| {
        for layer in &state.layers {
            let total = layer.rows * layer.cols;
            ui.separator();
            ui.label(
                egui::RichText::new(format!(
                    "{}: {} x {} binary weights, {} flipped since the last epoch ({:.3} %)",
                    layer.name,
                    layer.rows,
                    layer.cols,
                    layer.flipped,
                    100.0 * layer.flipped as f64 / total.max(1) as f64
                ))
                .strong(),
            );
            let width = (ui.available_width() - 12.0) / 2.0;
            // Squash wide maps to the half width, but keep at least 2 px per output channel.
            let height = (layer.rows as f32 * 2.0).clamp(40.0, 220.0);
            ui.horizontal_top(|ui| {
                ui.vertical(|ui| {
                    ui.small("sign(W)");
                    ui.add(
                        egui::Image::new(&layer.signs)
                            .maintain_aspect_ratio(false)
                            .fit_to_exact_size(egui::vec2(width, height)),
                    );
                });
                ui.vertical(|ui| {
                    ui.small("flipped since the last epoch (white)");
                    ui.add(
                        egui::Image::new(&layer.flips)
                            .maintain_aspect_ratio(false)
                            .fit_to_exact_size(egui::vec2(width, height)),
                    );
                });
            });
            ui.horizontal_top(|ui| {
                ui.vertical(|ui| {
                    ui.set_width(width);
                    histogram_plot(ui, layer);
                });
                ui.vertical(|ui| {
                    ui.set_width(width);
                    ui.small("gamma = mean |W| per output channel");
                    let bars: Vec<Bar> = layer
                        .gamma
                        .iter()
                        .enumerate()
                        .map(|(c, &g)| Bar::new(c as f64, g as f64).width(0.9))
                        .collect();
                    Plot::new(format!("gamma {}", layer.name))
                        .height(110.0)
                        .x_axis_label("output channel")
                        .allow_scroll(false)
                        .show(ui, |p| p.bar_chart(BarChart::new("gamma", bars)));
                });
            });
        }
    });
}

fn histogram_plot(ui: &mut egui::Ui, layer: &LayerWeights) {
    let (lo, hi) = layer
        .latent
        .iter()
        .filter(|v| v.is_finite())
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    let (lo, hi) = if lo < hi { (lo, hi) } else { (-1.0, 1.0) };
    let counts = raster::histogram(layer.latent.iter().copied(), lo, hi, HIST_BINS);
    let width = (hi - lo) as f64 / HIST_BINS as f64;
    let near_zero = layer.latent.iter().filter(|v| v.abs() < 1e-3).count();
    ui.small(format!(
        "latent W histogram ({near_zero} within 1e-3 of zero, where signs flip)"
    ));
    let bars: Vec<Bar> = counts
        .iter()
        .enumerate()
        .map(|(b, &c)| Bar::new(lo as f64 + (b as f64 + 0.5) * width, c as f64).width(width))
        .collect();
    Plot::new(format!("latent {}", layer.name))
        .height(110.0)
        .x_axis_label("W")
        .allow_scroll(false)
        .show(ui, |p| p.bar_chart(BarChart::new("weights", bars)));
}
