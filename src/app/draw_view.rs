//! Draw-a-digit: paint on a 28x28 canvas; the current network classifies the drawing live and
//! shows its spikes per timestep (the layers panel of the spikes view).
//!
//! The drawing is preprocessed the way MNIST digits were made (bounding box scaled to fit
//! 20x20, centre of mass moved to the centre of the 28x28 frame), so a digit drawn anywhere on
//! the canvas looks like the training data to the network.

use std::sync::Arc;

use egui::{Color32, TextureHandle, TextureOptions};
use egui_plot::{Bar, BarChart, Plot};

use crate::data::Dataset;
use crate::gpu::GpuContext;
use crate::train::TrainError;

use super::layers_panel::LayersPanel;
use super::probe::{Probe, ProbeResult};
use super::session::Session;
use super::spikes_view::{logits_grid, prediction_line};

/// Canvas side in cells (MNIST geometry).
pub const SIDE: usize = 28;
/// Brush radius in cells.
const BRUSH: f32 = 1.3;
/// On-screen size of one cell.
const CELL: f32 = 10.0;

/// State of the draw view.
pub struct DrawState {
    /// Ink per cell in [0, 1], row-major `[SIDE, SIDE]`.
    pub ink: Vec<f32>,
    /// The drawing changed since the last probe.
    dirty: bool,
    last_point: Option<egui::Pos2>,
    probe: Option<Probe>,
    pub result: Option<ProbeResult>,
    generation: u64,
    pub panel: LayersPanel,
    texture: Option<TextureHandle>,
    /// Where the canvas was drawn last frame (the browser test draws into it).
    pub canvas_rect: Option<egui::Rect>,
    /// Why the current model cannot classify drawings, if it cannot.
    pub unsupported: Option<String>,
    /// The user asked for the bundled demo model (the app loads it).
    pub load_demo: bool,
    /// Optimizer step of the weights the drawing was last classified with (training refreshes
    /// the prediction every few steps).
    pub classified_at_step: u64,
}

impl Default for DrawState {
    fn default() -> Self {
        Self {
            ink: vec![0.0; SIDE * SIDE],
            dirty: false,
            last_point: None,
            probe: None,
            result: None,
            generation: 0,
            panel: LayersPanel::default(),
            texture: None,
            canvas_rect: None,
            unsupported: None,
            load_demo: false,
            classified_at_step: 0,
        }
    }
}

impl DrawState {
    /// True while a classification is pending or in flight.
    pub fn busy(&self) -> bool {
        self.dirty || self.probe.is_some()
    }

    /// Wipes the canvas and the result.
    pub fn clear(&mut self) {
        self.ink.iter_mut().for_each(|v| *v = 0.0);
        self.result = None;
        self.dirty = false;
        self.texture = None;
    }

    /// Forgets the result (the network changed); the drawing is classified again.
    pub fn network_changed(&mut self) {
        self.probe = None;
        self.classified_at_step = 0;
        self.result = None;
        self.dirty = self.ink.iter().any(|&v| v > 0.0);
    }

    /// Classifies the drawing again with newer weights, keeping the current result on screen
    /// until the new one arrives.
    pub fn refresh(&mut self) {
        self.dirty = self.ink.iter().any(|&v| v > 0.0);
    }

    /// Stamps a line of ink from `a` to `b` (cell coordinates).
    pub fn stroke(&mut self, a: egui::Pos2, b: egui::Pos2) {
        let steps = ((b - a).length() / 0.25).ceil().max(1.0) as usize;
        for i in 0..=steps {
            let p = a + (b - a) * (i as f32 / steps as f32);
            self.stamp(p);
        }
        self.dirty = true;
        self.texture = None;
    }

    fn stamp(&mut self, p: egui::Pos2) {
        let reach = BRUSH + 1.0;
        let (x0, x1) = (
            (p.x - reach).floor().max(0.0) as usize,
            (p.x + reach).ceil() as usize,
        );
        let (y0, y1) = (
            (p.y - reach).floor().max(0.0) as usize,
            (p.y + reach).ceil() as usize,
        );
        for y in y0..y1.min(SIDE) {
            for x in x0..x1.min(SIDE) {
                let d = egui::pos2(x as f32 + 0.5, y as f32 + 0.5).distance(p);
                // Anti-aliased disc: full ink inside the radius, a one-cell soft edge.
                let v = (BRUSH + 0.5 - d).clamp(0.0, 1.0);
                let cell = &mut self.ink[y * SIDE + x];
                *cell = cell.max(v);
            }
        }
    }

    /// Starts a classification of a changed drawing, collects a finished one. Never waits.
    pub fn tick(&mut self, gpu: &GpuContext, session: &mut Session) -> Result<(), TrainError> {
        let model = session.trainer.model();
        self.unsupported = (model.input != [1, SIDE, SIDE]).then(|| {
            format!(
                "drawing needs a 1x28x28 model; '{}' takes {:?}",
                model.name, model.input
            )
        });
        if let Some(result) = Probe::collect(&mut self.probe)? {
            self.generation += 1;
            self.result = Some(result);
        }
        if self.dirty
            && self.probe.is_none()
            && self.unsupported.is_none()
            && session.can_probe()
            && gpu.can_submit_without_waiting()
        {
            self.dirty = false;
            let classes = session.trainer.model().classes;
            let data = Arc::new(Dataset {
                images: mnist_like(&self.ink),
                labels: vec![0],
                channels: 1,
                height: SIDE,
                width: SIDE,
                classes,
            });
            self.probe = Some(gpu.batch(|| Probe::start(gpu, session, data, 0, None))?);
        }
        Ok(())
    }
}

/// Draws a "7" (screenshots and demos without a mouse).
pub fn draw_sample_seven(state: &mut DrawState) {
    state.clear();
    state.stroke(egui::pos2(7.0, 6.0), egui::pos2(21.0, 6.0));
    state.stroke(egui::pos2(21.0, 6.0), egui::pos2(12.0, 23.0));
}

/// MNIST preprocessing of a drawing: crop to the ink's bounding box, scale it to fit 20x20
/// (keeping the aspect ratio, bilinear), and place it so the centre of mass sits at the centre
/// of the 28x28 frame. Returns bytes 0..255. An empty drawing stays empty.
pub fn mnist_like(ink: &[f32]) -> Vec<u8> {
    let mut out = vec![0u8; SIDE * SIDE];
    let on = |x: usize, y: usize| ink[y * SIDE + x] > 0.05;
    let (mut x0, mut y0, mut x1, mut y1) = (SIDE, SIDE, 0, 0);
    for y in 0..SIDE {
        for x in 0..SIDE {
            if on(x, y) {
                (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x + 1), y1.max(y + 1));
            }
        }
    }
    if x1 <= x0 || y1 <= y0 {
        return out;
    }
    let (w, h) = ((x1 - x0) as f32, (y1 - y0) as f32);
    let scale = 20.0 / w.max(h);
    let (sw, sh) = (
        (w * scale).round().max(1.0) as usize,
        (h * scale).round().max(1.0) as usize,
    );
    // Bilinear sample of the box into sw x sh.
    let sample = |fx: f32, fy: f32| -> f32 {
        let (fx, fy) = (fx - 0.5, fy - 0.5);
        let (ix, iy) = (fx.floor(), fy.floor());
        let (tx, ty) = (fx - ix, fy - iy);
        let get = |x: f32, y: f32| -> f32 {
            if x < 0.0 || y < 0.0 || x >= SIDE as f32 || y >= SIDE as f32 {
                0.0
            } else {
                ink[y as usize * SIDE + x as usize]
            }
        };
        let top = get(ix, iy) * (1.0 - tx) + get(ix + 1.0, iy) * tx;
        let bottom = get(ix, iy + 1.0) * (1.0 - tx) + get(ix + 1.0, iy + 1.0) * tx;
        top * (1.0 - ty) + bottom * ty
    };
    let mut small = vec![0.0f32; sw * sh];
    for y in 0..sh {
        for x in 0..sw {
            let fx = x0 as f32 + (x as f32 + 0.5) / scale;
            let fy = y0 as f32 + (y as f32 + 0.5) / scale;
            small[y * sw + x] = sample(fx, fy).clamp(0.0, 1.0);
        }
    }
    let mass: f32 = small.iter().sum();
    let (mut cx, mut cy) = (0.0f32, 0.0f32);
    for y in 0..sh {
        for x in 0..sw {
            cx += small[y * sw + x] * (x as f32 + 0.5);
            cy += small[y * sw + x] * (y as f32 + 0.5);
        }
    }
    let (cx, cy) = (cx / mass.max(1e-6), cy / mass.max(1e-6));
    let offset = |c: f32, size: usize| -> i64 {
        ((SIDE as f32 / 2.0 - c).round() as i64).clamp(0, (SIDE - size) as i64)
    };
    let (ox, oy) = (offset(cx, sw), offset(cy, sh));
    for y in 0..sh {
        for x in 0..sw {
            let (tx, ty) = (x as i64 + ox, y as i64 + oy);
            if (0..SIDE as i64).contains(&tx) && (0..SIDE as i64).contains(&ty) {
                out[ty as usize * SIDE + tx as usize] = (small[y * sw + x] * 255.0).round() as u8;
            }
        }
    }
    out
}

/// Draws the view.
pub fn show(ui: &mut egui::Ui, state: &mut DrawState, session: Option<&Session>) {
    if session.is_none() {
        ui.label("No network yet.");
        return;
    }
    if let Some(why) = &state.unsupported {
        ui.colored_label(Color32::from_rgb(255, 110, 100), why);
        return;
    }
    ui.label(
        "Draw a digit with the mouse (or a finger). The current network classifies it as you \
         draw: train a little first, or load a checkpoint.",
    );
    ui.horizontal_top(|ui| {
        ui.vertical(|ui| {
            canvas(ui, state);
            ui.horizontal(|ui| {
                if ui.button("Clear").clicked() {
                    state.clear();
                }
                if ui
                    .button("Load demo model")
                    .on_hover_text(super::DEMO_CHECKPOINT_NOTE)
                    .clicked()
                {
                    state.load_demo = true;
                }
                if state.busy() {
                    ui.spinner();
                }
            });
        });
        ui.vertical(|ui| match &state.result {
            Some(result) => {
                ui.label(
                    egui::RichText::new(format!("{}", result.prediction()))
                        .size(64.0)
                        .strong()
                        .color(Color32::LIGHT_GREEN),
                );
                prediction_line(ui, result);
                let bars: Vec<Bar> = result
                    .probabilities()
                    .iter()
                    .enumerate()
                    .map(|(c, &p)| Bar::new(c as f64, p as f64).width(0.8))
                    .collect();
                Plot::new("draw probabilities")
                    .height(120.0)
                    .width(320.0)
                    .include_y(1.0)
                    .x_axis_label("class (softmax of mean logits)")
                    .allow_scroll(false)
                    .allow_drag(false)
                    .show(ui, |p| p.bar_chart(BarChart::new("p", bars)));
                logits_grid(ui, result, state.panel.timestep);
            }
            None => {
                ui.label("No prediction yet: draw something.");
            }
        });
    });
    let Some(result) = &state.result else {
        return;
    };
    ui.separator();
    state.panel.timestep_controls(ui, result.timesteps);
    let generation = state.generation;
    egui::ScrollArea::vertical().show(ui, |ui| state.panel.show(ui, result, generation));
}

/// The paintable canvas: a texture of the ink, strokes from pointer drags.
fn canvas(ui: &mut egui::Ui, state: &mut DrawState) {
    let size = egui::vec2(SIDE as f32 * CELL, SIDE as f32 * CELL);
    let (rect, response) = ui.allocate_exact_size(size, egui::Sense::drag());
    state.canvas_rect = Some(rect);
    let to_cells = |p: egui::Pos2| ((p - rect.min) / CELL).to_pos2();
    if let Some(pos) = response.interact_pointer_pos() {
        if response.is_pointer_button_down_on() {
            let p = to_cells(pos);
            let from = state.last_point.unwrap_or(p);
            state.stroke(from, p);
            state.last_point = Some(p);
        }
    }
    if !response.is_pointer_button_down_on() {
        state.last_point = None;
    }
    let texture = state.texture.get_or_insert_with(|| {
        let pixels = state
            .ink
            .iter()
            .map(|&v| Color32::from_gray((v * 255.0).round() as u8))
            .collect();
        ui.ctx().load_texture(
            "drawing",
            egui::ColorImage::new([SIDE, SIDE], pixels),
            TextureOptions::LINEAR,
        )
    });
    ui.painter().image(
        texture.id(),
        rect,
        egui::Rect::from_min_max(egui::pos2(0.0, 0.0), egui::pos2(1.0, 1.0)),
        Color32::WHITE,
    );
    ui.painter().rect_stroke(
        rect,
        0.0,
        egui::Stroke::new(1.0, Color32::GRAY),
        egui::StrokeKind::Outside,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_drawing_stays_empty() {
        assert!(mnist_like(&[0.0; SIDE * SIDE]).iter().all(|&b| b == 0));
    }

    #[test]
    fn a_small_corner_blob_is_scaled_to_20_pixels_and_centred() {
        let mut state = DrawState::default();
        // A vertical bar in the top-left corner, 2 cells wide, 8 tall.
        state.stroke(egui::pos2(2.0, 2.0), egui::pos2(2.0, 9.0));
        let img = mnist_like(&state.ink);
        let rows: Vec<usize> = (0..SIDE)
            .filter(|y| (0..SIDE).any(|x| img[y * SIDE + x] > 0))
            .collect();
        let cols: Vec<usize> = (0..SIDE)
            .filter(|x| (0..SIDE).any(|y| img[y * SIDE + x] > 0))
            .collect();
        let height = rows.last().unwrap() - rows.first().unwrap() + 1;
        // The long side becomes 20 pixels (the soft edge may add one).
        assert!((19..=21).contains(&height), "height {height}");
        // Centre of mass near the middle.
        let (mut m, mut cx, mut cy) = (0.0, 0.0, 0.0);
        for y in 0..SIDE {
            for x in 0..SIDE {
                let v = img[y * SIDE + x] as f64;
                m += v;
                cx += v * (x as f64 + 0.5);
                cy += v * (y as f64 + 0.5);
            }
        }
        assert!((cx / m - 14.0).abs() < 1.0 && (cy / m - 14.0).abs() < 1.0);
        assert!(cols.len() < rows.len());
    }

    #[test]
    fn strokes_mark_the_drawing_dirty() {
        let mut state = DrawState::default();
        assert!(!state.busy());
        state.stroke(egui::pos2(14.0, 14.0), egui::pos2(15.0, 14.0));
        assert!(state.busy());
        assert!(state.ink[14 * SIDE + 14] > 0.9);
        state.clear();
        assert!(!state.busy() && state.ink.iter().all(|&v| v == 0.0));
    }
}
