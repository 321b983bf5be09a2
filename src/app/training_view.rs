//! The training view: live curves (loss, accuracy, firing rate, sign-flip ratio, latent
//! gradient mean and variance, throughput, epoch progress) from the per-step and per-epoch
//! summaries the session collects. A finished or paused run can be kept as a reference and is
//! then drawn under the next run (e.g. AGMM full vs off), dashed. An opened ablation
//! ([`show_ablation`]) replaces the live curves with its per-epoch means and confidence bands.

use egui_plot::{Legend, Line, LineStyle, Plot, PlotPoints, PlotUi, Points, Polygon};

use crate::ablate::report::{AblationReport, CellEpoch};
use crate::ablate::stats::Estimate;
use crate::train::EpochRecord;

/// Everything plotted, appended as readbacks arrive. x is the global optimizer step.
#[derive(Clone, Default)]
pub struct History {
    pub step_loss: Vec<[f64; 2]>,
    pub step_accuracy: Vec<[f64; 2]>,
    pub samples_per_second: Vec<[f64; 2]>,
    /// `(layer, points)` firing rate per spiking layer, per step.
    pub firing: Vec<(String, Vec<[f64; 2]>)>,
    /// `(layer, points)` mean of the latent-weight gradient per binary layer, per step.
    pub grad_mean: Vec<(String, Vec<[f64; 2]>)>,
    /// `(layer, points)` log10 of the latent-weight gradient variance, per step.
    pub grad_log_var: Vec<(String, Vec<[f64; 2]>)>,
    pub epochs: Vec<EpochRecord>,
}

/// Appends `point` to the series named `layer` in `series`.
pub fn push_series(series: &mut Vec<(String, Vec<[f64; 2]>)>, layer: &str, point: [f64; 2]) {
    match series.iter_mut().find(|(name, _)| name == layer) {
        Some((_, points)) => points.push(point),
        None => series.push((layer.to_string(), vec![point])),
    }
}

impl History {
    /// Appends a firing-rate point for `layer`.
    pub fn push_firing(&mut self, layer: &str, point: [f64; 2]) {
        push_series(&mut self.firing, layer, point);
    }

    /// Epoch-end points `(step, value)` picked by `f`.
    fn epoch_points(&self, f: impl Fn(&EpochRecord) -> f64) -> Vec<[f64; 2]> {
        self.epochs.iter().map(|r| [r.step as f64, f(r)]).collect()
    }

    /// True before the first readback.
    pub fn is_empty(&self) -> bool {
        self.step_loss.is_empty() && self.epochs.is_empty()
    }
}

/// A run kept for comparison, with the label its curves get.
#[derive(Clone)]
pub struct Reference {
    pub label: String,
    pub history: History,
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
fn plot(ui: &mut egui::Ui, id: &str, title: &str, height: f32, add: impl FnOnce(&mut PlotUi<'_>)) {
    ui.label(egui::RichText::new(title).strong());
    Plot::new(id)
        .height(height)
        .legend(Legend::default())
        .x_axis_label("step")
        .allow_scroll(false)
        .show(ui, add);
}

/// Series colours: a layer keeps its colour in both runs, so a dashed reference line sits next
/// to the solid line of the same layer (and shares its legend entry, which toggles both).
const PALETTE: [egui::Color32; 8] = [
    egui::Color32::from_rgb(100, 170, 255),
    egui::Color32::from_rgb(255, 150, 60),
    egui::Color32::from_rgb(110, 210, 120),
    egui::Color32::from_rgb(230, 90, 110),
    egui::Color32::from_rgb(190, 140, 255),
    egui::Color32::from_rgb(240, 220, 90),
    egui::Color32::from_rgb(90, 220, 220),
    egui::Color32::from_rgb(200, 200, 200),
];

/// The current run (solid) or the reference (dashed, same names and colours).
struct Run<'a> {
    history: &'a History,
    reference: bool,
}

impl Run<'_> {
    fn style(&self) -> LineStyle {
        if self.reference {
            LineStyle::dashed_loose()
        } else {
            LineStyle::Solid
        }
    }

    fn line(
        &self,
        p: &mut PlotUi<'_>,
        name: &str,
        color: usize,
        points: Vec<[f64; 2]>,
        width: f32,
    ) {
        p.line(
            Line::new(name, PlotPoints::from(points))
                .width(width)
                .color(PALETTE[color % PALETTE.len()])
                .style(self.style()),
        );
    }

    fn dots(&self, p: &mut PlotUi<'_>, name: &str, color: usize, points: Vec<[f64; 2]>) {
        let c = PALETTE[color % PALETTE.len()];
        let dots = Points::new(name, PlotPoints::from(points)).radius(4.0);
        // Reference points are hollow.
        p.points(if self.reference {
            dots.filled(false).color(c)
        } else {
            dots.color(c)
        });
    }

    fn per_layer(&self, p: &mut PlotUi<'_>, series: &[(String, Vec<[f64; 2]>)], alpha: f64) {
        for (i, (name, points)) in series.iter().enumerate() {
            self.line(p, name, i, smoothed(points, alpha), 1.5);
        }
    }
}

/// Draws the view.
pub fn show(ui: &mut egui::Ui, history: &History, reference: Option<&Reference>) {
    if history.is_empty() {
        ui.label("No data yet: press Start in the setup panel.");
    }
    let mut runs = vec![Run {
        history,
        reference: false,
    }];
    if let Some(r) = reference {
        ui.label(format!(
            "Dashed lines and hollow points: the reference run ({}).",
            r.label
        ));
        runs.push(Run {
            history: &r.history,
            reference: true,
        });
    }
    let height = ((ui.available_height() - 110.0) / 4.0).clamp(80.0, 240.0);
    let half = (ui.available_width() - 16.0) / 2.0;
    let pair = |ui: &mut egui::Ui,
                left: &mut dyn FnMut(&mut egui::Ui),
                right: &mut dyn FnMut(&mut egui::Ui)| {
        ui.horizontal(|ui| {
            ui.vertical(|ui| {
                ui.set_width(half);
                left(ui);
            });
            ui.vertical(|ui| {
                ui.set_width(half);
                right(ui);
            });
        });
    };
    pair(
        ui,
        &mut |ui| {
            plot(
                ui,
                "loss",
                "Loss (train per batch, smoothed; test per epoch)",
                height,
                |p| {
                    for r in &runs {
                        if !r.reference {
                            r.line(p, "train (batch)", 7, r.history.step_loss.clone(), 1.0);
                        }
                        r.line(p, "train", 0, smoothed(&r.history.step_loss, 0.1), 2.0);
                        r.dots(p, "test", 1, r.history.epoch_points(|e| e.test_loss));
                    }
                },
            )
        },
        &mut |ui| {
            plot(
                ui,
                "accuracy",
                "Accuracy (train smoothed; test per epoch)",
                height,
                |p| {
                    for r in &runs {
                        r.line(p, "train", 0, smoothed(&r.history.step_accuracy, 0.1), 2.0);
                        r.dots(p, "test", 1, r.history.epoch_points(|e| e.test_accuracy));
                    }
                },
            )
        },
    );
    pair(
        ui,
        &mut |ui| {
            plot(ui, "firing", "Firing rate per spiking layer", height, |p| {
                for r in &runs {
                    r.per_layer(p, &r.history.firing, 0.2);
                }
            })
        },
        &mut |ui| {
            plot(
                ui,
                "flips",
                "Sign-flip ratio per binary layer (per epoch, first point after epoch 1)",
                height,
                |p| {
                    for r in &runs {
                        let layers: Vec<String> = r
                            .history
                            .epochs
                            .first()
                            .map(|e| e.flip_ratio.iter().map(|(n, _)| n.clone()).collect())
                            .unwrap_or_default();
                        for (i, name) in layers.iter().enumerate() {
                            let points = r
                                .history
                                .epoch_points(|e| e.flip_ratio.get(i).map_or(0.0, |f| f.1));
                            r.line(p, name, i, points.clone(), 1.5);
                            r.dots(p, name, i, points);
                        }
                    }
                },
            )
        },
    );
    pair(
        ui,
        &mut |ui| {
            plot(
                ui,
                "grad mean",
                "Latent-gradient mean per binary layer",
                height,
                |p| {
                    for r in &runs {
                        r.per_layer(p, &r.history.grad_mean, 0.2);
                    }
                },
            )
        },
        &mut |ui| {
            plot(
                ui,
                "grad var",
                "Latent-gradient variance per binary layer (log10)",
                height,
                |p| {
                    for r in &runs {
                        r.per_layer(p, &r.history.grad_log_var, 0.2);
                    }
                },
            )
        },
    );
    plot(ui, "throughput", "Samples per second", height * 0.7, |p| {
        for r in &runs {
            r.line(
                p,
                "samples/s",
                0,
                smoothed(&r.history.samples_per_second, 0.2),
                1.5,
            );
        }
    });
}

/// One band per cell: the CI as one quadrilateral per pair of neighbouring epochs (each
/// convex, which egui fills correctly; a whole band polygon may not be), the mean as a line
/// with points. Colours follow the cell order, as in the PNG plots.
fn banded(p: &mut PlotUi<'_>, series: &[(String, Vec<(f64, Estimate)>)], scale: f64) {
    for (i, (name, points)) in series.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let fill = color.gamma_multiply(0.25);
        for pair in points.windows(2) {
            let [(x0, a), (x1, b)] = [pair[0], pair[1]];
            let (a_lo, a_hi) = a.band();
            let (b_lo, b_hi) = b.band();
            let quad = vec![
                [x0, a_lo * scale],
                [x1, b_lo * scale],
                [x1, b_hi * scale],
                [x0, a_hi * scale],
            ];
            p.polygon(
                Polygon::new(name.as_str(), PlotPoints::from(quad))
                    .fill_color(fill)
                    .stroke(egui::Stroke::NONE)
                    .allow_hover(false),
            );
        }
        for (x, e) in points {
            let (lo, hi) = e.band();
            p.line(
                Line::new(
                    name.as_str(),
                    PlotPoints::from(vec![[*x, lo * scale], [*x, hi * scale]]),
                )
                .color(color)
                .width(1.0),
            );
        }
        let mean: Vec<[f64; 2]> = points.iter().map(|(x, e)| [*x, e.mean * scale]).collect();
        p.line(
            Line::new(name.as_str(), PlotPoints::from(mean.clone()))
                .color(color)
                .width(2.0),
        );
        p.points(
            Points::new(name.as_str(), PlotPoints::from(mean))
                .radius(3.0)
                .color(color),
        );
    }
}

/// `(cell, [(epoch, estimate)])` of the metric `f` picks.
fn cell_series(
    report: &AblationReport,
    f: impl Fn(&CellEpoch) -> Option<Estimate>,
) -> Vec<(String, Vec<(f64, Estimate)>)> {
    report
        .cells
        .iter()
        .map(|cell| {
            let points = cell
                .epochs
                .iter()
                .filter_map(|e| Some((e.epoch as f64, f(e)?)))
                .collect();
            (cell.name.clone(), points)
        })
        .collect()
}

/// Draws an ablation (`bitspike ablate`'s report.json): per-epoch means over seeds with their
/// 95 % confidence bands, one colour per cell (optimizer / AGMM mode), the curves of the PNG
/// plots next to the report.
pub fn show_ablation(ui: &mut egui::Ui, label: &str, report: &AblationReport) {
    let seeds = report
        .cells
        .iter()
        .map(|c| c.seeds.len())
        .max()
        .unwrap_or(0);
    ui.label(format!(
        "Ablation {label}: {} cells, up to {seeds} seeds each; lines are means, bands and bars \
         the {:.0} % Student-t confidence intervals over seeds.",
        report.cells.len(),
        100.0 * report.confidence
    ));
    let layers: Vec<String> = report
        .cells
        .iter()
        .flat_map(|c| c.epochs.first())
        .flat_map(|e| e.firing_rate.iter().map(|l| l.layer.clone()))
        .fold(Vec::new(), |mut acc, name| {
            if !acc.contains(&name) {
                acc.push(name);
            }
            acc
        });
    let layer_id = ui.scope_id().with("ablation firing layer");
    let mut layer: usize = ui.data_mut(|d| *d.get_temp_mut_or_default(layer_id));
    let height = ((ui.available_height() - 90.0) / 2.0).clamp(80.0, 320.0);
    let half = (ui.available_width() - 16.0) / 2.0;
    let epoch_plot = |ui: &mut egui::Ui, id: &str, title: &str, add: &dyn Fn(&mut PlotUi<'_>)| {
        ui.vertical(|ui| {
            ui.set_width(half);
            ui.label(egui::RichText::new(title).strong());
            Plot::new(id)
                .height(height)
                .legend(Legend::default())
                .x_axis_label("epoch")
                .allow_scroll(false)
                .show(ui, |p| add(p));
        });
    };
    ui.horizontal(|ui| {
        epoch_plot(ui, "ablation accuracy", "Test accuracy (%)", &|p| {
            banded(p, &cell_series(report, |e| Some(e.test_accuracy)), 100.0)
        });
        epoch_plot(
            ui,
            "ablation flips",
            "Sign-flip ratio per epoch, all binary layers (%)",
            &|p| banded(p, &cell_series(report, |e| Some(e.flip_ratio_total)), 100.0),
        );
    });
    ui.horizontal(|ui| {
        epoch_plot(ui, "ablation loss", "Train loss", &|p| {
            banded(p, &cell_series(report, |e| Some(e.train_loss)), 1.0)
        });
        ui.vertical(|ui| {
            ui.set_width(half);
            ui.horizontal(|ui| {
                ui.label(egui::RichText::new("Firing rate, layer").strong());
                egui::ComboBox::from_id_salt("ablation firing layer")
                    .selected_text(layers.get(layer).map_or("-", |s| s.as_str()))
                    .show_ui(ui, |ui| {
                        for (i, name) in layers.iter().enumerate() {
                            ui.selectable_value(&mut layer, i, name);
                        }
                    });
            });
            let name = layers.get(layer).cloned().unwrap_or_default();
            Plot::new("ablation firing")
                .height(height - 8.0)
                .legend(Legend::default())
                .x_axis_label("epoch")
                .allow_scroll(false)
                .show(ui, |p| {
                    let series = cell_series(report, |e| {
                        e.firing_rate
                            .iter()
                            .find(|l| l.layer == name)
                            .map(|l| l.estimate)
                    });
                    banded(p, &series, 1.0)
                });
        });
    });
    ui.data_mut(|d| d.insert_temp(layer_id, layer));
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
