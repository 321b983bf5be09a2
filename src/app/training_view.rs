//! The training view: live curves (loss, accuracy, flip ratio, firing rate, throughput) from
//! the per-step and per-epoch summaries the session collects.

use egui_plot::{Legend, Line, Plot, PlotPoints, Points};

use crate::train::EpochRecord;

/// Everything plotted, appended as readbacks arrive. x is the global optimizer step.
#[derive(Default)]
pub struct History {
    pub step_loss: Vec<[f64; 2]>,
    pub step_accuracy: Vec<[f64; 2]>,
    pub samples_per_second: Vec<[f64; 2]>,
    /// `(layer, points)` firing rate per spiking layer, per step.
    pub firing: Vec<(String, Vec<[f64; 2]>)>,
    pub epochs: Vec<EpochRecord>,
}

impl History {
    /// Appends a firing-rate point for `layer`.
    pub fn push_firing(&mut self, layer: &str, point: [f64; 2]) {
        match self.firing.iter_mut().find(|(name, _)| name == layer) {
            Some((_, points)) => points.push(point),
            None => self.firing.push((layer.to_string(), vec![point])),
        }
    }

    /// Epoch-end points `(step, value)` picked by `f`.
    fn epoch_points(&self, f: impl Fn(&EpochRecord) -> f64) -> Vec<[f64; 2]> {
        self.epochs.iter().map(|r| [r.step as f64, f(r)]).collect()
    }
}

/// Exponential moving average, so a noisy per-batch curve shows its trend.
fn smoothed(points: &[[f64; 2]], alpha: f64) -> Vec<[f64; 2]> {
    let mut out = Vec::with_capacity(points.len());
    let mut acc: Option<f64> = None;
    for &[x, y] in points {
        let v = match acc {
            Some(a) => a + alpha * (y - a),
            None => y,
        };
        acc = Some(v);
        out.push([x, v]);
    }
    out
}

/// One plot with a legend, a fixed height and step on the x axis.
fn plot(
    ui: &mut egui::Ui,
    id: &str,
    title: &str,
    height: f32,
    add: impl FnOnce(&mut egui_plot::PlotUi<'_>),
) {
    ui.label(egui::RichText::new(title).strong());
    Plot::new(id)
        .height(height)
        .legend(Legend::default())
        .x_axis_label("step")
        .allow_scroll(false)
        .show(ui, add);
}

/// Draws the view.
pub fn show(ui: &mut egui::Ui, history: &History) {
    if history.step_loss.is_empty() && history.epochs.is_empty() {
        ui.label("No data yet: press Start in the setup panel.");
    }
    let height = ((ui.available_height() - 80.0) / 3.0).clamp(90.0, 260.0);
    let half = (ui.available_width() - 16.0) / 2.0;
    ui.horizontal(|ui| {
        ui.vertical(|ui| {
            ui.set_width(half);
            plot(ui, "loss", "Loss", height, |p| {
                p.line(
                    Line::new("train (batch)", PlotPoints::from(history.step_loss.clone()))
                        .width(1.0),
                );
                p.line(
                    Line::new(
                        "train (smoothed)",
                        PlotPoints::from(smoothed(&history.step_loss, 0.1)),
                    )
                    .width(2.0),
                );
                p.points(
                    Points::new(
                        "test (epoch)",
                        PlotPoints::from(history.epoch_points(|r| r.test_loss)),
                    )
                    .radius(4.0),
                );
            });
        });
        ui.vertical(|ui| {
            ui.set_width(half);
            plot(ui, "accuracy", "Accuracy", height, |p| {
                p.line(
                    Line::new(
                        "train (smoothed)",
                        PlotPoints::from(smoothed(&history.step_accuracy, 0.1)),
                    )
                    .width(2.0),
                );
                p.points(
                    Points::new(
                        "train (epoch)",
                        PlotPoints::from(history.epoch_points(|r| r.train_accuracy)),
                    )
                    .radius(4.0),
                );
                p.points(
                    Points::new(
                        "test (epoch)",
                        PlotPoints::from(history.epoch_points(|r| r.test_accuracy)),
                    )
                    .radius(4.0),
                );
            });
        });
    });
    ui.horizontal(|ui| {
        ui.vertical(|ui| {
            ui.set_width(half);
            plot(ui, "firing", "Firing rate per spiking layer", height, |p| {
                for (name, points) in &history.firing {
                    p.line(Line::new(
                        name.clone(),
                        PlotPoints::from(smoothed(points, 0.2)),
                    ));
                }
            });
        });
        ui.vertical(|ui| {
            ui.set_width(half);
            plot(
                ui,
                "flips",
                "Sign-flip ratio per binary layer (per epoch)",
                height,
                |p| {
                    let layers: Vec<String> = history
                        .epochs
                        .first()
                        .map(|r| r.flip_ratio.iter().map(|(n, _)| n.clone()).collect())
                        .unwrap_or_default();
                    for (i, name) in layers.iter().enumerate() {
                        let points =
                            history.epoch_points(|r| r.flip_ratio.get(i).map_or(0.0, |f| f.1));
                        p.line(Line::new(name.clone(), PlotPoints::from(points.clone())));
                        p.points(Points::new(name.clone(), PlotPoints::from(points)).radius(3.0));
                    }
                },
            );
        });
    });
    plot(ui, "throughput", "Samples per second", height * 0.7, |p| {
        p.line(Line::new(
            "samples/s",
            PlotPoints::from(smoothed(&history.samples_per_second, 0.2)),
        ));
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smoothing_starts_at_first_value_and_moves_towards_later_ones() {
        let s = smoothed(&[[0.0, 1.0], [1.0, 3.0]], 0.5);
        assert_eq!(s, vec![[0.0, 1.0], [1.0, 2.0]]);
    }

    #[test]
    fn firing_points_are_grouped_per_layer() {
        let mut h = History::default();
        h.push_firing("conv1", [1.0, 0.1]);
        h.push_firing("conv2", [1.0, 0.2]);
        h.push_firing("conv1", [2.0, 0.3]);
        assert_eq!(h.firing.len(), 2);
        assert_eq!(h.firing[0].1, vec![[1.0, 0.1], [2.0, 0.3]]);
    }
}
