//! Turning read-back tensors into images: spike rasters, feature-map grids, input images.
//! Everything is drawn as one texture per panel rather than thousands of shapes, so a layer
//! with 25,000 neurons costs the same to draw as one with 100.

use egui::{Color32, ColorImage};

use crate::data::Dataset;

/// Background of empty raster cells and grid gaps.
const BACKGROUND: Color32 = Color32::from_rgb(16, 18, 24);
/// Gap colour between feature maps in a grid.
const GAP: Color32 = Color32::from_rgb(60, 64, 72);

/// Colour for a spike density in [0, 1]: dark blue through orange to white.
pub fn density_color(d: f32) -> Color32 {
    let d = d.clamp(0.0, 1.0);
    if d <= 0.0 {
        return BACKGROUND;
    }
    let lerp = |a: u8, b: u8, t: f32| (a as f32 + (b as f32 - a as f32) * t).round() as u8;
    if d < 0.5 {
        let t = d * 2.0;
        Color32::from_rgb(lerp(40, 240, t), lerp(60, 140, t), lerp(140, 40, t))
    } else {
        let t = (d - 0.5) * 2.0;
        Color32::from_rgb(lerp(240, 255, t), lerp(140, 255, t), lerp(40, 220, t))
    }
}

/// A spike raster of one sample: `spikes` is `[T, neurons]` (time-major, batch 1). One column
/// per neuron, one row per timestep. Past `max_columns` neurons, each column shows the
/// fraction of spiking neurons in a group of consecutive neurons (a density raster).
pub fn raster_image(spikes: &[f32], timesteps: usize, max_columns: usize) -> ColorImage {
    let neurons = spikes.len() / timesteps.max(1);
    let columns = neurons.clamp(1, max_columns.max(1));
    let group = neurons.div_ceil(columns).max(1);
    let columns = neurons.div_ceil(group).max(1);
    let mut pixels = vec![BACKGROUND; columns * timesteps.max(1)];
    for t in 0..timesteps {
        let row = &spikes[t * neurons..(t + 1) * neurons];
        for (col, chunk) in row.chunks(group).enumerate() {
            let fired = chunk.iter().filter(|&&s| s > 0.5).count();
            // sqrt: sparse groups (a few spikes in 25 neurons) stay visible.
            pixels[t * columns + col] = density_color((fired as f32 / chunk.len() as f32).sqrt());
        }
    }
    ColorImage::new([columns, timesteps.max(1)], pixels)
}

/// The channels of one timestep's feature maps (`[C, H, W]`) tiled in a near-square grid with
/// one-pixel gaps. Values are spikes (0/1) or any non-negative activation scaled by its max.
pub fn feature_grid(values: &[f32], shape: [usize; 3]) -> ColorImage {
    let [c, h, w] = shape;
    let cols = (c as f64).sqrt().ceil().max(1.0) as usize;
    let rows = c.div_ceil(cols).max(1);
    let (width, height) = (cols * (w + 1) + 1, rows * (h + 1) + 1);
    let mut pixels = vec![GAP; width * height];
    let max = values.iter().copied().fold(0.0f32, f32::max).max(1e-6);
    for ch in 0..c {
        let (gx, gy) = ((ch % cols) * (w + 1) + 1, (ch / cols) * (h + 1) + 1);
        for y in 0..h {
            for x in 0..w {
                let v = values.get((ch * h + y) * w + x).copied().unwrap_or(0.0);
                pixels[(gy + y) * width + gx + x] = density_color(v / max);
            }
        }
    }
    ColorImage::new([width, height], pixels)
}

/// Spikes per timestep of a `[T, neurons]` tensor.
pub fn spike_counts(spikes: &[f32], timesteps: usize) -> Vec<usize> {
    let neurons = spikes.len() / timesteps.max(1);
    (0..timesteps)
        .map(|t| {
            spikes[t * neurons..(t + 1) * neurons]
                .iter()
                .filter(|&&s| s > 0.5)
                .count()
        })
        .collect()
}

/// Image `index` of `data` (grey or RGB, channel-major bytes) as a colour image.
pub fn input_image(data: &Dataset, index: usize) -> ColorImage {
    let (c, h, w) = (data.channels, data.height, data.width);
    let bytes = data.image(index);
    let plane = h * w;
    let pixels = (0..plane)
        .map(|i| {
            if c >= 3 {
                Color32::from_rgb(bytes[i], bytes[plane + i], bytes[2 * plane + i])
            } else {
                Color32::from_gray(bytes[i])
            }
        })
        .collect();
    ColorImage::new([w, h], pixels)
}

/// Colour of ON events (brighter) in event frames.
pub const ON_COLOR: Color32 = Color32::from_rgb(255, 170, 40);
/// Colour of OFF events (darker) in event frames.
pub const OFF_COLOR: Color32 = Color32::from_rgb(60, 160, 255);

/// Frame `t` of event sample `index` (`data` holds `[T, 2, H, W]` counts as `2T` channels,
/// channel 0 = OFF, 1 = ON) as one image: ON in orange, OFF in blue, both mixed, brightness
/// by count (sqrt-scaled against the frame's largest count). Returns the image and the
/// (ON, OFF) event counts of the frame.
pub fn event_frame_image(data: &Dataset, index: usize, t: usize) -> (ColorImage, [u64; 2]) {
    let (h, w) = (data.height, data.width);
    let plane = h * w;
    let frame = data
        .image(index)
        .get(t * 2 * plane..(t + 1) * 2 * plane)
        .unwrap_or(&[]);
    let count = |ch: usize, i: usize| frame.get(ch * plane + i).copied().unwrap_or(0);
    let max = frame.iter().copied().max().unwrap_or(0).max(1) as f32;
    let mut totals = [0u64; 2];
    let pixels = (0..plane)
        .map(|i| {
            let (on, off) = (count(1, i), count(0, i));
            totals[0] += on as u64;
            totals[1] += off as u64;
            let (a, b) = ((on as f32 / max).sqrt(), (off as f32 / max).sqrt());
            let mix = |bg: u8, on_c: u8, off_c: u8| {
                (bg as f32
                    + a * (on_c as f32 - bg as f32)
                    + b * (off_c as f32 - bg as f32) * (1.0 - a / 2.0))
                    .clamp(0.0, 255.0) as u8
            };
            if on == 0 && off == 0 {
                BACKGROUND
            } else {
                Color32::from_rgb(
                    mix(BACKGROUND.r(), ON_COLOR.r(), OFF_COLOR.r()),
                    mix(BACKGROUND.g(), ON_COLOR.g(), OFF_COLOR.g()),
                    mix(BACKGROUND.b(), ON_COLOR.b(), OFF_COLOR.b()),
                )
            }
        })
        .collect();
    (ColorImage::new([w, h], pixels), totals)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_frames_show_on_and_off_in_their_colours() {
        // T = 2 frames of 2x2: frame 1 has ON at pixel 0 and OFF at pixel 3.
        let mut images = vec![0u8; 2 * 2 * 4];
        images[8 + 4] = 3; // t = 1, ON, pixel 0
        images[8 + 3] = 3; // t = 1, OFF, pixel 3
        let data = Dataset {
            images,
            labels: vec![0],
            channels: 4,
            height: 2,
            width: 2,
            classes: 10,
        };
        let (img, totals) = event_frame_image(&data, 0, 1);
        assert_eq!(totals, [3, 3]);
        assert_eq!(img.pixels[0], ON_COLOR);
        assert_eq!(img.pixels[3], OFF_COLOR);
        assert_eq!(img.pixels[1], BACKGROUND);
        let (empty, totals) = event_frame_image(&data, 0, 0);
        assert_eq!(totals, [0, 0]);
        assert!(empty.pixels.iter().all(|&p| p == BACKGROUND));
    }

    #[test]
    fn raster_has_one_row_per_timestep_and_marks_spikes() {
        // T = 2, 3 neurons: neuron 1 fires at t = 0, neuron 2 at t = 1.
        let spikes = [0.0, 1.0, 0.0, 0.0, 0.0, 1.0];
        let img = raster_image(&spikes, 2, 100);
        assert_eq!(img.size, [3, 2]);
        assert_eq!(img.pixels[0], BACKGROUND);
        assert_eq!(img.pixels[1], density_color(1.0));
        assert_eq!(img.pixels[3 + 2], density_color(1.0));
    }

    #[test]
    fn raster_groups_neurons_past_the_column_budget() {
        let spikes = vec![1.0; 10];
        let img = raster_image(&spikes, 1, 4);
        // 10 neurons in groups of 3: 4 columns, all fully dense.
        assert_eq!(img.size, [4, 1]);
        assert!(img.pixels.iter().all(|&p| p == density_color(1.0)));
    }

    #[test]
    fn grid_tiles_channels_with_gaps() {
        let img = feature_grid(&[1.0; 4 * 2 * 2], [4, 2, 2]);
        // 2 x 2 tiles of 2 x 2 pixels, one-pixel gaps around them.
        assert_eq!(img.size, [7, 7]);
        assert_eq!(img.pixels[0], GAP);
        assert_eq!(img.pixels[7 + 1], density_color(1.0));
    }

    #[test]
    fn counts_per_timestep() {
        assert_eq!(spike_counts(&[1.0, 1.0, 0.0, 1.0], 2), vec![2, 1]);
    }
}

/// Inverse of [`feature_grid`]'s layout: the neuron (`(c * H + y) * W + x`) under grid pixel
/// `(px, py)`, or `None` on a gap or outside.
pub fn grid_neuron(shape: [usize; 3], px: usize, py: usize) -> Option<usize> {
    let [c, h, w] = shape;
    let cols = (c as f64).sqrt().ceil().max(1.0) as usize;
    let (tx, ty) = (px / (w + 1), py / (h + 1));
    let (x, y) = (
        (px % (w + 1)).checked_sub(1)?,
        (py % (h + 1)).checked_sub(1)?,
    );
    let ch = ty * cols + tx;
    (tx < cols && ch < c).then_some((ch * h + y) * w + x)
}

/// Grid pixel of `neuron` in [`feature_grid`]'s layout.
pub fn grid_position(shape: [usize; 3], neuron: usize) -> Option<(usize, usize)> {
    let [c, h, w] = shape;
    if neuron >= c * h * w {
        return None;
    }
    let cols = (c as f64).sqrt().ceil().max(1.0) as usize;
    let (ch, y, x) = (neuron / (h * w), (neuron / w) % h, neuron % w);
    Some(((ch % cols) * (w + 1) + 1 + x, (ch / cols) * (h + 1) + 1 + y))
}

/// Counts of `values` in `bins` equal bins over `[lo, hi]` (values outside are clamped in).
pub fn histogram(values: impl Iterator<Item = f32>, lo: f32, hi: f32, bins: usize) -> Vec<usize> {
    let bins = bins.max(1);
    let mut counts = vec![0; bins];
    let span = (hi - lo).max(f32::MIN_POSITIVE);
    for v in values.filter(|v| v.is_finite()) {
        let b = (((v - lo) / span) * bins as f32).floor();
        counts[(b.max(0.0) as usize).min(bins - 1)] += 1;
    }
    counts
}

/// Grey image from raw bytes (`[h, w]`).
pub fn gray_image(bytes: &[u8], width: usize, height: usize) -> ColorImage {
    ColorImage::new(
        [width, height],
        bytes
            .iter()
            .take(width * height)
            .map(|&b| Color32::from_gray(b))
            .collect(),
    )
}

/// Colour of a +1 weight in sign maps.
pub const PLUS: Color32 = Color32::from_rgb(230, 120, 40);
/// Colour of a -1 weight in sign maps.
pub const MINUS: Color32 = Color32::from_rgb(40, 110, 220);

/// Sign map of a `[rows, cols]` latent weight (`sign(0) = +1`, as the binarize kernel), and
/// beside it which weights flipped against `snapshot` (packed signs, bit = 1 for >= 0). Flipped
/// weights are white, the rest dark. Past `max_columns` columns, each pixel covers a group of
/// neighbouring inputs: the majority sign, and white if any of them flipped. Returns
/// `(sign map, flip map, flipped count)`.
pub fn sign_and_flip_maps(
    latent: &[f32],
    snapshot: &[u32],
    rows: usize,
    cols: usize,
    max_columns: usize,
) -> (ColorImage, ColorImage, usize) {
    let group = cols.div_ceil(max_columns.max(1)).max(1);
    let width = cols.div_ceil(group).max(1);
    let mut plus = vec![0usize; rows * width];
    let mut total = vec![0usize; rows * width];
    let mut flipped_px = vec![false; rows * width];
    let mut flipped = 0;
    for (i, &v) in latent.iter().take(rows * cols).enumerate() {
        let px = (i / cols) * width + (i % cols) / group;
        let now = v >= 0.0;
        total[px] += 1;
        plus[px] += usize::from(now);
        let before = snapshot
            .get(i / 32)
            .is_some_and(|w| (w >> (i % 32)) & 1 == 1);
        if now != before {
            flipped += 1;
            flipped_px[px] = true;
        }
    }
    let signs = plus
        .iter()
        .zip(&total)
        .map(|(&p, &t)| if 2 * p >= t { PLUS } else { MINUS })
        .collect();
    let flips = flipped_px
        .iter()
        .map(|&f| if f { Color32::WHITE } else { BACKGROUND })
        .collect();
    (
        ColorImage::new([width, rows.max(1)], signs),
        ColorImage::new([width, rows.max(1)], flips),
        flipped,
    )
}

#[cfg(test)]
mod more_tests {
    use super::*;

    #[test]
    fn grid_neuron_inverts_grid_position() {
        let shape = [5, 3, 4];
        for n in 0..60 {
            let (x, y) = grid_position(shape, n).unwrap();
            assert_eq!(grid_neuron(shape, x, y), Some(n), "neuron {n}");
        }
        // Gaps and the empty 6th tile are not neurons.
        assert_eq!(grid_neuron(shape, 0, 0), None);
        assert_eq!(grid_neuron(shape, 5, 5), None);
        assert_eq!(grid_neuron(shape, 11, 5), None);
    }

    #[test]
    fn histogram_clamps_into_edge_bins() {
        let h = histogram(
            [-1.0, 0.0, 0.49, 0.5, 1.0, 2.0, f32::NAN].into_iter(),
            0.0,
            1.0,
            2,
        );
        assert_eq!(h, vec![3, 3]);
    }

    #[test]
    fn flips_are_sign_changes_against_the_snapshot() {
        // Snapshot: element 0 was +, element 1 was -, element 2 was +.
        let snapshot = [0b101u32];
        let (signs, flips, n) = sign_and_flip_maps(&[1.0, 0.5, -0.1], &snapshot, 1, 3, 100);
        assert_eq!(n, 2);
        assert_eq!(signs.pixels, vec![PLUS, PLUS, MINUS]);
        assert_eq!(
            flips.pixels,
            vec![BACKGROUND, Color32::WHITE, Color32::WHITE]
        );
        // Folded to 2 columns, (+, +) and (-): majority signs; only the second group flipped.
        let (signs, flips, n) = sign_and_flip_maps(&[1.0, 0.5, -0.1], &[0b111], 1, 3, 2);
        assert_eq!(n, 1);
        assert_eq!(signs.size, [2, 1]);
        assert_eq!(signs.pixels, vec![PLUS, MINUS]);
        assert_eq!(flips.pixels, vec![BACKGROUND, Color32::WHITE]);
    }
}
