//! Sane bounds on every number a model config may hold, checked before anything is allocated.
//!
//! Sizes come from JSON files and checkpoint metadata that may lie. [`super::plan`] checks each
//! size against the bounds here with checked arithmetic, so no later product of sizes can wrap
//! around and no allocation is ever sized by an unchecked number; [`check_settings`] refuses
//! non-physical neuron, AGMM and normalisation values (non-finite or out of range) that would
//! otherwise keep the loss finite while writing NaN into the weights. The bounds are far above
//! every model in the BSNN literature; each error names the setting, its value and the limit.

use super::config::ModelConfig;
use super::plan::ModelError;
use crate::kernels::agmm::AgmmAlpha;

/// Channels of any layer or of the input.
pub const MAX_CHANNELS: usize = 16_384;
/// Height or width of the input (and so of every feature map).
pub const MAX_SIDE: usize = 4_096;
/// Conv kernel side.
pub const MAX_KERNEL: usize = 15;
/// Conv stride.
pub const MAX_STRIDE: usize = 16;
/// Conv padding (per side); more than the kernel only adds rows of pure padding.
pub const MAX_PADDING: usize = MAX_KERNEL;
/// Pooling window side.
pub const MAX_POOL: usize = 64;
/// Outputs of a linear layer (and classes).
pub const MAX_FEATURES: usize = 65_536;
/// Timesteps T.
pub const MAX_TIMESTEPS: usize = 1_024;
/// Layers in a model.
pub const MAX_LAYERS: usize = 512;
/// Elements of one parameter tensor: it must fit one storage binding (WebGPU's 128 MiB).
pub const MAX_TENSOR_ELEMENTS: u64 = crate::gpu::limits::MAX_STORAGE_BINDING_BYTES / 4;
/// Elements of one sample's feature map per timestep (`C * H * W`) at any layer.
pub const MAX_FEATURE_MAP: u64 = 1 << 28;

/// Errors unless `value` lies in `1..=max` for the setting `what`.
pub(super) fn size(what: &str, value: usize, max: usize) -> Result<usize, String> {
    if value == 0 {
        Err(format!("{what} must be at least 1"))
    } else if value > max {
        Err(format!("{what} = {value} is over the limit of {max}"))
    } else {
        Ok(value)
    }
}

/// `a * b` or an error naming what overflowed.
pub(super) fn mul(what: &str, a: u64, b: u64) -> Result<u64, String> {
    a.checked_mul(b)
        .ok_or_else(|| format!("{what} overflows ({a} x {b})"))
}

fn finite_in(setting: &str, value: f32, lo: f32, hi: f32, why: &str) -> Result<(), ModelError> {
    if value.is_finite() && (lo..=hi).contains(&value) {
        Ok(())
    } else {
        Err(ModelError::Setting {
            setting: setting.to_string(),
            message: format!("{value} is outside [{lo}, {hi}] ({why})"),
        })
    }
}

/// Refuses non-physical neuron, AGMM and normalisation settings.
pub fn check_settings(config: &ModelConfig) -> Result<(), ModelError> {
    let n = &config.neuron;
    finite_in(
        "neuron.decay",
        n.decay,
        0.0,
        1.0,
        "a membrane decay factor; above 1 the potential grows without bound",
    )?;
    finite_in(
        "neuron.v_th",
        n.v_th,
        1e-3,
        1e3,
        "a positive firing threshold",
    )?;
    finite_in(
        "neuron.surrogate_width",
        n.surrogate_width,
        1e-3,
        1e3,
        "the surrogate divides by its square",
    )?;
    if let AgmmAlpha::Constant(a) = config.agmm.alpha {
        if !(a.is_finite() && a > 0.0 && a <= 1.0) {
            return Err(ModelError::Setting {
                setting: "agmm.alpha".into(),
                message: format!("{a} is outside (0, 1] (an averaging factor)"),
            });
        }
    }
    for (i, &m) in config.normalize_mean.iter().enumerate() {
        finite_in(
            &format!("normalize_mean[{i}]"),
            m,
            -1e3,
            1e3,
            "pixels are normalised from [0, 1]",
        )?;
    }
    for (i, &s) in config.normalize_std.iter().enumerate() {
        finite_in(
            &format!("normalize_std[{i}]"),
            s,
            1e-3,
            1e3,
            "the input is divided by it",
        )?;
    }
    Ok(())
}
