//! How much memory a model needs at a batch size, estimated from the plan before anything is
//! allocated, so a run that cannot fit is refused with a message naming the setting instead of
//! dying half-way through allocating (on lavapipe GPU buffers are host memory, and the
//! allocator aborts the process when it runs out).
//!
//! The estimate counts what the layers keep per sample and timestep and what they share
//! (`snn::transients`). A training conv unit keeps at most five feature maps of its output size
//! (spikes, conv out, BN out and AGMM `E` where the AGMM gates, membrane; a downsampling
//! shortcut two more and a quarter of its input); a pooling layer two (output, argmax); the
//! readout one. Shared by all layers: two gradient maps of the largest layer, the largest
//! unit's gradient chain (three maps; a shortcut's three more, one of its input size) and the
//! im2col scratch. An eval-mode conv unit keeps two maps (conv out, spikes). Packed spikes (a popcount
//! unit's input, a max pool's for the packed eval hand-over) are a word per 32 channels. Every
//! parameter tensor
//! has about five copies (latent, binarised, gradient, two optimizer moments).
//! `tests/footprint.rs` checks that the estimate is above the buffers actually allocated and
//! not far above.

use super::bounds::mul;
use super::config::{Encoding, LayerConfig, ModelConfig, Shortcut};
use super::plan::{plan, spikes_after, ModelError};
use crate::kernels::popcount::SpikeArea;

/// Feature maps a training conv unit keeps per output value.
const TRAIN_MAPS_PER_CONV: u64 = 5;
/// A downsampling shortcut's (conv out, BN out; plus a quarter of the unit's input, pooled).
const MAPS_PER_SHORTCUT: u64 = 2;
/// Feature maps an eval-mode conv unit keeps per output value.
const EVAL_MAPS_PER_CONV: u64 = 2;
/// Feature maps a pooling layer keeps per output value (output, argmax).
const MAPS_PER_POOL: u64 = 2;
/// Shared gradient chain of the largest training unit (pre-LIF grad, BN-out grad, conv-out
/// grad; the fused training tail needs no shared forward intermediates).
const SHARED_UNIT_MAPS: u64 = 3;
/// Copies of every parameter (latent, effective, gradient, optimizer state).
const PARAM_COPIES: u64 = 5;

/// The estimated memory of a model at one batch size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Footprint {
    /// Parameter values of the model (one copy).
    pub parameters: u64,
    /// Bytes of parameters with their gradients and optimizer state.
    pub parameter_bytes: u64,
    /// Bytes of the per-batch workspace (activations, gradients, scratch, the input).
    pub workspace_bytes: u64,
    /// Bytes of one host-side input batch `[T, B, C, H, W]` f32.
    pub input_bytes: u64,
}

impl Footprint {
    /// Everything on the device.
    pub fn device_bytes(&self) -> u64 {
        self.parameter_bytes.saturating_add(self.workspace_bytes)
    }
}

/// Estimates the memory of `config` at `batch` samples, for training (`training`) or eval.
pub fn estimate(
    config: &ModelConfig,
    batch: usize,
    training: bool,
) -> Result<Footprint, ModelError> {
    let layers = plan(config)?;
    let model = ModelError::Model;
    let samples =
        mul("samples x timesteps", batch as u64, config.timesteps as u64).map_err(model)?;
    let mut parameters = 0u64;
    // Per sample and timestep: values kept by all layers, the largest im2col scratch, and
    // the largest maps the shared buffers are sized for.
    let mut per_sample = 0u64;
    let mut cols = 0u64;
    // Scratch of the passes over tensors larger than one binding (`snn::layers::gather`), and
    // the batch norms' partial sums.
    let mut gather = 0u64;
    let mut channels = 1u64;
    let (mut max_layer, mut max_unit, mut max_shortcut) = (0u64, 0u64, 0u64);
    let [c0, h0, w0] = config.input;
    let input = (c0 * h0 * w0) as u64; // bounded by plan()
    per_sample += input;
    // Whether a layer's input is spikes or means of spikes (a binary conv on them runs the
    // popcount forward, which needs no im2col scratch in eval), as the network decides.
    let mut spike_input = (config.encoding == Encoding::Poisson).then_some(SpikeArea::SPIKES);
    for l in &layers {
        // plan() bounded every feature map and weight tensor: these products cannot overflow.
        let [ci, hi, wi] = l.input;
        let [co, ho, wo] = l.output;
        let out = (co * ho * wo) as u64;
        max_layer = max_layer.max(out);
        channels = channels.max(co as u64);
        match &l.config {
            LayerConfig::Conv {
                kernel,
                shortcut,
                binary,
                ..
            } => {
                parameters += (co * ci * kernel * kernel) as u64 + 4 * co as u64;
                gather = gather.max(crate::snn::layers::gather::GatherScratch::len_under(
                    crate::gpu::limits::MAX_STORAGE_BINDING_BYTES,
                    batch,
                    config.timesteps * co * ho * wo,
                ) as u64);
                let downsample = *shortcut == Shortcut::Downsample;
                if downsample {
                    parameters += (co * ci) as u64 + 4 * co as u64;
                }
                // The packed input spikes (32 channels a word) and, for a direct-encoded
                // first layer, the single-frame encoder's [B, ...] input, conv and BN outputs.
                let planes = spike_input.map_or(1, |a| a.planes()) as usize;
                per_sample += (planes * ci.div_ceil(32) * hi * wi) as u64;
                if l.index == 0 && config.encoding == Encoding::Direct {
                    per_sample += ((ci * hi * wi) as u64 + 4 * out) / config.timesteps as u64 + 1;
                }
                if downsample {
                    per_sample += MAPS_PER_SHORTCUT * out + (ci * hi * wi) as u64 / 4;
                    // Its conv's input as bit planes of means of 4 spikes (popcount shortcut).
                    if let Some(area) = spike_input.and_then(|a| a.pooled(4)) {
                        let pooled = ci.div_ceil(32) * (hi / 2) * (wi / 2);
                        per_sample += (area.planes() as usize * pooled) as u64;
                    }
                }
                per_sample += if training {
                    max_unit = max_unit.max(out);
                    if downsample {
                        // Shared: its conv grad, input grad and pooled-input grad.
                        max_shortcut = max_shortcut.max(out + (ci * hi * wi) as u64 * 5 / 4);
                    }
                    TRAIN_MAPS_PER_CONV * out
                } else {
                    EVAL_MAPS_PER_CONV * out
                };
                if training || !(*binary && spike_input.is_some()) {
                    cols = cols.max((ho * wo * ci * kernel * kernel) as u64);
                }
            }
            LayerConfig::Pool { .. } | LayerConfig::GlobalAvgPool => {
                // A max pool between conv units also keeps its input packed for eval.
                per_sample += MAPS_PER_POOL * out + (ci.div_ceil(32) * hi * wi) as u64;
            }
            LayerConfig::Linear { .. } => {
                parameters += (l.input.iter().product::<usize>() * co + co) as u64;
                per_sample += out;
            }
        }
        spike_input = spikes_after(&l.config, config.pooling, spike_input);
    }
    per_sample += if training {
        2 * max_layer + SHARED_UNIT_MAPS * max_unit + max_shortcut
    } else {
        max_layer
    };
    let workspace_values = mul("workspace", samples, per_sample + cols).map_err(model)?
        + crate::snn::layers::gather::GATHER_BUFFERS as u64 * gather
        + 3 * channels;
    Ok(Footprint {
        parameters,
        parameter_bytes: parameters * 4 * PARAM_COPIES,
        workspace_bytes: mul("workspace bytes", workspace_values, 4).map_err(model)?,
        input_bytes: mul("input bytes", samples, input * 4).map_err(model)?,
    })
}

/// Bytes as `12.3 MiB` / `4.5 GiB`.
pub fn human_bytes(bytes: u64) -> String {
    const GIB: f64 = (1u64 << 30) as f64;
    const MIB: f64 = (1u64 << 20) as f64;
    let b = bytes as f64;
    if b >= GIB {
        format!("{:.1} GiB", b / GIB)
    } else {
        format!("{:.1} MiB", b / MIB)
    }
}
