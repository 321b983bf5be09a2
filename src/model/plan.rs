//! Shape inference: resolves a [`ModelConfig`] into layers with concrete input/output shapes,
//! rejecting inconsistent configs with a message that names the layer.

use thiserror::Error;

use super::bounds::{self, mul, size};
use super::config::{LayerConfig, ModelConfig, PoolKind, Shortcut};
use crate::kernels::popcount::SpikeArea;

/// A config that cannot describe a working network.
#[derive(Debug, Error, PartialEq)]
pub enum ModelError {
    #[error("layer {index} ({kind}): {message}")]
    Layer {
        index: usize,
        kind: &'static str,
        message: String,
    },
    #[error("model: {0}")]
    Model(String),
    /// A neuron, AGMM or normalisation value out of its physical range.
    #[error("model setting `{setting}`: {message}")]
    Setting { setting: String, message: String },
}

/// A layer with its resolved per-sample shapes `[C, H, W]` (per timestep).
#[derive(Clone, Debug, PartialEq)]
pub struct PlannedLayer {
    pub index: usize,
    /// Stable name used for checkpoint tensors and metrics, e.g. `conv2`, `fc`.
    pub name: String,
    pub config: LayerConfig,
    pub input: [usize; 3],
    pub output: [usize; 3],
}

impl PlannedLayer {
    /// Short kind label.
    pub fn kind(&self) -> &'static str {
        kind_of(&self.config)
    }
}

fn kind_of(layer: &LayerConfig) -> &'static str {
    match layer {
        LayerConfig::Conv { .. } => "conv",
        LayerConfig::Pool { .. } => "pool",
        LayerConfig::GlobalAvgPool => "global_avg_pool",
        LayerConfig::Linear { .. } => "linear",
    }
}

/// Resolves every layer's shapes and checks the model is trainable as specified: every size
/// within [`bounds`], every product of sizes computed with checked arithmetic, every parameter
/// tensor small enough for one GPU binding, every setting physical.
pub fn plan(config: &ModelConfig) -> Result<Vec<PlannedLayer>, ModelError> {
    let model = ModelError::Model;
    let [c0, h0, w0] = config.input;
    size("input channels", c0, bounds::MAX_CHANNELS).map_err(model)?;
    size("input height", h0, bounds::MAX_SIDE).map_err(model)?;
    size("input width", w0, bounds::MAX_SIDE).map_err(model)?;
    size("timesteps", config.timesteps, bounds::MAX_TIMESTEPS).map_err(model)?;
    size("classes", config.classes, bounds::MAX_FEATURES).map_err(model)?;
    size(
        "the number of layers",
        config.layers.len(),
        bounds::MAX_LAYERS,
    )
    .map_err(model)?;
    if config.normalize_mean.len() != c0 || config.normalize_std.len() != c0 {
        return Err(ModelError::Model(format!(
            "normalize_mean/normalize_std need {c0} entries (one per input channel), got {}/{}",
            config.normalize_mean.len(),
            config.normalize_std.len()
        )));
    }
    bounds::check_settings(config)?;
    let mut shape = config.input;
    let mut layers = Vec::with_capacity(config.layers.len());
    let (mut convs, mut linears) = (0, 0);
    for (index, layer) in config.layers.iter().enumerate() {
        let kind = kind_of(layer);
        let err = |message: String| ModelError::Layer {
            index,
            kind,
            message,
        };
        let [c, h, w] = shape;
        if linears > 0 {
            return Err(err(
                "only the final layer may follow a linear readout".into()
            ));
        }
        let (output, name, weights) = match layer {
            LayerConfig::Conv {
                out_channels,
                kernel,
                stride,
                padding,
                shortcut,
                ..
            } => {
                let co = size("out_channels", *out_channels, bounds::MAX_CHANNELS).map_err(err)?;
                let k = size("kernel", *kernel, bounds::MAX_KERNEL).map_err(err)?;
                let s = size("stride", *stride, bounds::MAX_STRIDE).map_err(err)?;
                let p = *padding;
                if p > bounds::MAX_PADDING {
                    return Err(err(format!(
                        "padding = {p} is over the limit of {}",
                        bounds::MAX_PADDING
                    )));
                }
                // All small after the bounds above: no overflow from here on.
                if h + 2 * p < k || w + 2 * p < k {
                    return Err(err(format!(
                        "kernel {k} larger than the padded {h}x{w} input"
                    )));
                }
                let ho = (h + 2 * p - k) / s + 1;
                let wo = (w + 2 * p - k) / s + 1;
                let out = [co, ho, wo];
                match shortcut {
                    Shortcut::Identity if out != shape => {
                        return Err(err(format!("identity shortcut needs equal shapes, {shape:?} -> {out:?}")))
                    }
                    Shortcut::Downsample if s != 2 || ho != h / 2 || wo != w / 2 => {
                        return Err(err("downsample shortcut (AvgPool 2 + 1x1 conv) needs stride 2 halving H and W".into()))
                    }
                    _ => {}
                }
                convs += 1;
                let weights = mul("weights", (co * c) as u64, (k * k) as u64).map_err(err)?;
                (out, format!("conv{convs}"), weights)
            }
            LayerConfig::Pool { size: window } => {
                let p = size("pool size", *window, bounds::MAX_POOL).map_err(err)?;
                if h < p || w < p {
                    return Err(err(format!("pool size {p} does not fit {h}x{w}")));
                }
                ([c, h / p, w / p], format!("pool{index}"), 0)
            }
            LayerConfig::GlobalAvgPool => ([c, 1, 1], format!("gap{index}"), 0),
            LayerConfig::Linear { out_features, .. } => {
                let o = size("out_features", *out_features, bounds::MAX_FEATURES).map_err(err)?;
                linears += 1;
                let inputs = feature_map(shape).map_err(err)?;
                let weights = mul("weights", inputs, o as u64).map_err(err)?;
                ([o, 1, 1], "fc".to_string(), weights)
            }
        };
        if weights > bounds::MAX_TENSOR_ELEMENTS {
            return Err(err(format!(
                "{weights} weights need {} bytes, over the {} bytes one GPU buffer binding holds \
                 (max_storage_buffer_binding_size)",
                weights * 4,
                bounds::MAX_TENSOR_ELEMENTS * 4
            )));
        }
        feature_map(output).map_err(err)?;
        layers.push(PlannedLayer {
            index,
            name,
            config: layer.clone(),
            input: shape,
            output,
        });
        shape = output;
    }
    match layers.last() {
        Some(l)
            if matches!(l.config, LayerConfig::Linear { .. }) && l.output[0] == config.classes =>
        {
            Ok(layers)
        }
        Some(l) if matches!(l.config, LayerConfig::Linear { .. }) => {
            Err(ModelError::Model(format!(
                "readout has {} outputs but the model has {} classes",
                l.output[0], config.classes
            )))
        }
        _ => Err(ModelError::Model(
            "the last layer must be a linear readout".into(),
        )),
    }
}

/// `C * H * W` of a shape, refused above [`bounds::MAX_FEATURE_MAP`].
fn feature_map([c, h, w]: [usize; 3]) -> Result<u64, String> {
    let n = mul(
        "feature map",
        mul("feature map", c as u64, h as u64)?,
        w as u64,
    )?;
    if n > bounds::MAX_FEATURE_MAP {
        return Err(format!(
            "a {c}x{h}x{w} feature map ({n} values per sample and timestep) is over the limit of {}",
            bounds::MAX_FEATURE_MAP
        ));
    }
    Ok(n)
}

/// What the layer after `layer` reads, given what `layer` reads (`input`): spikes (`Some`
/// of [`SpikeArea::SPIKES`]), means of spikes (`Some` larger area: an average pool of spikes)
/// or other floats (`None`). A conv unit fires spikes; a max pool passes its input's kind on;
/// an average pool multiplies the area by its window's (floats past [`SpikeArea::MAX`]). The
/// network (which runs a binary conv on spikes or their means as popcounts) and the footprint
/// estimate both follow this.
pub fn spikes_after(
    layer: &LayerConfig,
    pooling: PoolKind,
    input: Option<SpikeArea>,
) -> Option<SpikeArea> {
    match layer {
        LayerConfig::Conv { .. } => Some(SpikeArea::SPIKES),
        LayerConfig::Pool { .. } if pooling == PoolKind::Max => input,
        LayerConfig::Pool { size } => input.and_then(|a| a.pooled(size * size)),
        LayerConfig::GlobalAvgPool | LayerConfig::Linear { .. } => None,
    }
}
