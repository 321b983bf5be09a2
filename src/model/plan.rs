//! Shape inference: resolves a [`ModelConfig`] into layers with concrete input/output shapes,
//! rejecting inconsistent configs with a message that names the layer.

use thiserror::Error;

use super::config::{LayerConfig, ModelConfig, Shortcut};

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

/// Resolves every layer's shapes and checks the model is trainable as specified.
pub fn plan(config: &ModelConfig) -> Result<Vec<PlannedLayer>, ModelError> {
    let [c0, h0, w0] = config.input;
    if c0 == 0 || h0 == 0 || w0 == 0 {
        return Err(ModelError::Model(format!(
            "input shape {:?} has a zero dimension",
            config.input
        )));
    }
    if config.timesteps == 0 {
        return Err(ModelError::Model("timesteps must be at least 1".into()));
    }
    if config.normalize_mean.len() != c0 || config.normalize_std.len() != c0 {
        return Err(ModelError::Model(format!(
            "normalize_mean/normalize_std need {c0} entries (one per input channel), got {}/{}",
            config.normalize_mean.len(),
            config.normalize_std.len()
        )));
    }
    if config.normalize_std.iter().any(|&s| s.is_nan() || s <= 0.0) {
        return Err(ModelError::Model(
            "normalize_std entries must be positive".into(),
        ));
    }
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
        let (output, name) = match layer {
            LayerConfig::Conv {
                out_channels,
                kernel,
                stride,
                padding,
                shortcut,
                ..
            } => {
                if *out_channels == 0 || *kernel == 0 || *stride == 0 {
                    return Err(err(
                        "out_channels, kernel and stride must be positive".into()
                    ));
                }
                if h + 2 * padding < *kernel || w + 2 * padding < *kernel {
                    return Err(err(format!(
                        "kernel {kernel} larger than the padded {h}x{w} input"
                    )));
                }
                let ho = (h + 2 * padding - kernel) / stride + 1;
                let wo = (w + 2 * padding - kernel) / stride + 1;
                let out = [*out_channels, ho, wo];
                match shortcut {
                    Shortcut::Identity if out != shape => {
                        return Err(err(format!("identity shortcut needs equal shapes, {shape:?} -> {out:?}")))
                    }
                    Shortcut::Downsample if *stride != 2 || ho != h / 2 || wo != w / 2 => {
                        return Err(err("downsample shortcut (AvgPool 2 + 1x1 conv) needs stride 2 halving H and W".into()))
                    }
                    _ => {}
                }
                convs += 1;
                (out, format!("conv{convs}"))
            }
            LayerConfig::Pool { size } => {
                if *size == 0 || h < *size || w < *size {
                    return Err(err(format!("pool size {size} does not fit {h}x{w}")));
                }
                ([c, h / size, w / size], format!("pool{index}"))
            }
            LayerConfig::GlobalAvgPool => ([c, 1, 1], format!("gap{index}")),
            LayerConfig::Linear { out_features, .. } => {
                if *out_features == 0 {
                    return Err(err("out_features must be positive".into()));
                }
                linears += 1;
                ([*out_features, 1, 1], "fc".to_string())
            }
        };
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
