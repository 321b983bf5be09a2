//! How much memory a model needs at a batch size, estimated from the plan before anything is
//! allocated, so a run that cannot fit is refused with a message naming the setting instead of
//! dying half-way through allocating (on lavapipe GPU buffers are host memory, and the
//! allocator aborts the process when it runs out).
//!
//! The estimate counts what the layers keep per sample and timestep: a training conv unit
//! holds about eight feature maps of its output size (conv out, BN out, AGMM out, spikes and
//! their gradients), a pooling layer three, an eval-mode conv unit four; the im2col scratch is
//! shared by all layers (the largest one counts); every parameter tensor has about five copies
//! (latent, binarised, gradient, two optimizer moments). `tests/footprint.rs` checks that the
//! estimate is above the buffers actually allocated and not far above.

use super::bounds::mul;
use super::config::{LayerConfig, ModelConfig};
use super::plan::{plan, ModelError};

/// Feature maps a training conv unit holds per output value.
const TRAIN_MAPS_PER_CONV: u64 = 8;
/// Feature maps an eval-mode conv unit holds per output value.
const EVAL_MAPS_PER_CONV: u64 = 4;
/// Feature maps a pooling layer holds per output value (output, argmax, gradient).
const MAPS_PER_POOL: u64 = 3;
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
pub fn estimate(config: &ModelConfig, batch: usize, training: bool) -> Result<Footprint, ModelError> {
    let layers = plan(config)?;
    let model = ModelError::Model;
    let samples = mul("samples x timesteps", batch as u64, config.timesteps as u64).map_err(model)?;
    let mut parameters = 0u64;
    // Per sample and timestep: values kept by all layers, and the largest im2col scratch.
    let mut per_sample = 0u64;
    let mut cols = 0u64;
    let [c0, h0, w0] = config.input;
    let input = (c0 * h0 * w0) as u64; // bounded by plan()
    per_sample += input;
    for l in &layers {
        // plan() bounded every feature map and weight tensor: these products cannot overflow.
        let [ci, _, _] = l.input;
        let [co, ho, wo] = l.output;
        let out = (co * ho * wo) as u64;
        match &l.config {
            LayerConfig::Conv { kernel, .. } => {
                parameters += (co * ci * kernel * kernel) as u64 + 4 * co as u64;
                let maps = if training {
                    TRAIN_MAPS_PER_CONV
                } else {
                    EVAL_MAPS_PER_CONV
                };
                per_sample += maps * out;
                cols = cols.max((ho * wo * ci * kernel * kernel) as u64);
            }
            LayerConfig::Pool { .. } | LayerConfig::GlobalAvgPool => {
                per_sample += MAPS_PER_POOL * out;
            }
            LayerConfig::Linear { .. } => {
                parameters += (l.input.iter().product::<usize>() * co + co) as u64;
                per_sample += 3 * out;
            }
        }
    }
    let workspace_values = mul("workspace", samples, per_sample + cols).map_err(model)?;
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
