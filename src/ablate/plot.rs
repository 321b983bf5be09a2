//! PNG curves of an ablation report with CI bands (native): test accuracy, total flip ratio,
//! train loss, and firing rate per spiking layer, per epoch, one colour per cell.
//!
//! Drawn with `plotters` into an RGB buffer and encoded with `png`; text uses egui's bundled
//! Ubuntu font through `ab_glyph`, so nothing depends on the system's fonts.

use std::path::{Path, PathBuf};

use plotters::prelude::*;
use plotters::style::FontStyle;

use super::grid::AblateError;
use super::report::{AblationReport, CellEpoch};
use super::stats::Estimate;

/// Image size of every plot, in pixels.
pub const PLOT_SIZE: (u32, u32) = (900, 560);

/// One colour per cell (cells beyond the palette reuse it).
const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

const FONT: &str = "sans-serif";

fn register_font() -> Result<(), String> {
    static REGISTERED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            plotters::style::register_font(
                FONT,
                FontStyle::Normal,
                epaint_default_fonts::UBUNTU_LIGHT,
            )
            .map_err(|_| "the bundled font did not parse".to_string())
        })
        .clone()
}

/// One panel of a figure: title, y-axis label, curves.
type Panel<'a> = (String, String, Vec<Curve<'a>>);

/// One curve: a cell's points `(epoch, estimate)`.
struct Curve<'a> {
    label: &'a str,
    points: Vec<(f64, Estimate)>,
}

/// Draws `curves` (mean line, CI band, error bars) into `area`.
fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    y_desc: &str,
    curves: &[Curve<'_>],
    legend: bool,
) -> Result<(), String> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let (mut x_max, mut y_min, mut y_max) = (1.0_f64, f64::INFINITY, f64::NEG_INFINITY);
    for c in curves {
        for (x, e) in &c.points {
            let (lo, hi) = e.band();
            x_max = x_max.max(*x);
            if lo.is_finite() && hi.is_finite() {
                y_min = y_min.min(lo);
                y_max = y_max.max(hi);
            }
        }
    }
    if !y_min.is_finite() {
        (y_min, y_max) = (0.0, 1.0);
    }
    let pad = ((y_max - y_min) * 0.08).max(1e-6 * y_max.abs().max(1e-9));
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FONT, 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(70)
        .build_cartesian_2d(0.7..x_max + 0.3, (y_min - pad)..(y_max + pad))
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc(y_desc)
        .x_labels(x_max as usize + 2)
        .x_label_formatter(&|x| {
            if (x - x.round()).abs() < 1e-9 && *x >= 1.0 {
                format!("{}", x.round())
            } else {
                String::new()
            }
        })
        .label_style((FONT, 14))
        .draw()
        .map_err(err)?;
    for (i, c) in curves.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        // The band: upper ends left to right, lower ends back.
        if c.points.len() > 1 {
            let mut outline: Vec<(f64, f64)> =
                c.points.iter().map(|(x, e)| (*x, e.band().1)).collect();
            outline.extend(c.points.iter().rev().map(|(x, e)| (*x, e.band().0)));
            chart
                .draw_series(std::iter::once(Polygon::new(
                    outline,
                    color.mix(0.18).filled(),
                )))
                .map_err(err)?;
        }
        for (x, e) in &c.points {
            let (lo, hi) = e.band();
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(*x, lo), (*x, hi)],
                    color.stroke_width(1),
                )))
                .map_err(err)?;
        }
        let line: Vec<(f64, f64)> = c.points.iter().map(|(x, e)| (*x, e.mean)).collect();
        chart
            .draw_series(LineSeries::new(line.clone(), color.stroke_width(2)))
            .map_err(err)?
            .label(c.label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3))
            });
        chart
            .draw_series(line.into_iter().map(|p| Circle::new(p, 3, color.filled())))
            .map_err(err)?;
    }
    if legend {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .label_font((FONT, 14))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .draw()
            .map_err(err)?;
    }
    Ok(())
}

/// Writes the RGB buffer as a PNG.
fn save_png(path: &Path, rgb: &[u8], (w, h): (u32, u32)) -> Result<(), String> {
    let mut bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut bytes, w, h);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
        writer.write_image_data(rgb).map_err(|e| e.to_string())?;
    }
    crate::checkpoint::write_atomically(path, &bytes).map_err(|e| e.to_string())
}

/// Renders one figure of `panels` (title, y label, curves) side by side into `path`.
fn figure(path: &Path, panels: &[Panel<'_>]) -> Result<(), String> {
    register_font()?;
    let cols = panels.len().clamp(1, 3);
    let rows = panels.len().div_ceil(cols).max(1);
    let size = (
        PLOT_SIZE.0 * cols.min(2) as u32,
        PLOT_SIZE.1 * rows.min(2) as u32,
    );
    let mut rgb = vec![0u8; (size.0 * size.1 * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let areas = root.split_evenly((rows, cols));
        for (i, (area, (title, y_desc, curves))) in areas.iter().zip(panels).enumerate() {
            draw_panel(area, title, y_desc, curves, i == 0)?;
        }
        root.present().map_err(|e| e.to_string())?;
    }
    save_png(path, &rgb, size)
}

/// A curve per cell of `f(epoch)`, scaled by `scale`.
fn curves<'a>(
    report: &'a AblationReport,
    scale: f64,
    f: impl Fn(&CellEpoch) -> Option<Estimate>,
) -> Vec<Curve<'a>> {
    report
        .cells
        .iter()
        .map(|cell| Curve {
            label: &cell.name,
            points: cell
                .epochs
                .iter()
                .filter_map(|e| {
                    let est = f(e)?;
                    Some((
                        e.epoch as f64,
                        Estimate {
                            mean: est.mean * scale,
                            ci_low: est.ci_low.map(|v| v * scale),
                            ci_high: est.ci_high.map(|v| v * scale),
                            ..est
                        },
                    ))
                })
                .collect(),
        })
        .collect()
}

/// Writes `accuracy.png`, `flips.png`, `loss.png` and `firing.png` into `dir`; returns their
/// paths.
pub fn write_plots(report: &AblationReport, dir: &Path) -> Result<Vec<PathBuf>, AblateError> {
    let ci = format!("mean, {:.0} % CI over seeds", 100.0 * report.confidence);
    let mut figures: Vec<(&str, Vec<Panel<'_>>)> = vec![
        (
            "accuracy.png",
            vec![(
                format!("Test accuracy ({ci})"),
                "test accuracy (%)".into(),
                curves(report, 100.0, |e| Some(e.test_accuracy)),
            )],
        ),
        (
            "flips.png",
            vec![(
                format!("Weight sign flips per epoch, all binary layers ({ci})"),
                "flip ratio (%)".into(),
                curves(report, 100.0, |e| Some(e.flip_ratio_total)),
            )],
        ),
        (
            "loss.png",
            vec![(
                format!("Train loss ({ci})"),
                "train loss".into(),
                curves(report, 1.0, |e| Some(e.train_loss)),
            )],
        ),
    ];
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
    let firing = layers
        .iter()
        .map(|layer| {
            (
                format!("Firing rate, {layer}"),
                "spikes per neuron and step".into(),
                curves(report, 1.0, |e| {
                    e.firing_rate
                        .iter()
                        .find(|l| &l.layer == layer)
                        .map(|l| l.estimate)
                }),
            )
        })
        .collect();
    figures.push(("firing.png", firing));
    let mut written = Vec::new();
    for (name, panels) in figures {
        if panels.is_empty() {
            continue;
        }
        let path = dir.join(name);
        figure(&path, &panels).map_err(|reason| AblateError::Plot {
            path: path.display().to_string(),
            reason,
        })?;
        written.push(path);
    }
    Ok(written)
}
