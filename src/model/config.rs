//! Model configuration as data (docs/method.md §7): a model is a list of layer specs plus neuron,
//! AGMM, encoding and loss settings. Presets are constructors returning a config, never code
//! paths; a JSON file with the same fields defines any other model.

use serde::{Deserialize, Serialize};

pub use crate::kernels::agmm::{AgmmAlpha, AgmmConfig, AgmmMode};
pub use crate::kernels::lif::{LifConfig, ResetMode};
pub use crate::kernels::loss::LossKind;

/// How static images become input currents (docs/method.md §6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// The normalised image at every timestep; the first FP conv is the encoder (default).
    #[default]
    Direct,
    /// Bernoulli spikes with probability = pixel intensity in [0, 1], fresh each timestep.
    Poisson,
    /// Event-camera frames: frame t of the sample (event counts per polarity, `(count - mean)
    /// / std`, no /255) is the input at timestep t, nothing repeated; the data set holds the
    /// T frames stacked as `T * C` channels (`crate::data::events`). The encoder runs per
    /// timestep (no single-frame path).
    Events,
}

/// Pooling flavour used by `pool` layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PoolKind {
    /// Max pooling (a logical OR on spikes, keeping binary layers' inputs binary). Default.
    #[default]
    Max,
    Avg,
}

/// Shortcut added before the LIF of a conv unit (Bi-Real style, docs/method.md §7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Shortcut {
    #[default]
    None,
    /// Add the unit's input (same shape).
    Identity,
    /// AvgPool 2 + binary 1x1 conv + BN of the unit's input (stride-2 units, channel change).
    Downsample,
}

/// One layer (or conv unit) of a model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum LayerConfig {
    /// Conv unit: conv -> BN -> [AGMM if binary] -> [+ shortcut] -> LIF.
    Conv {
        out_channels: usize,
        #[serde(default = "three")]
        kernel: usize,
        #[serde(default = "one")]
        stride: usize,
        #[serde(default = "one")]
        padding: usize,
        /// Binary (+-gamma) weights; false = full precision (the encoder).
        binary: bool,
        #[serde(default)]
        shortcut: Shortcut,
    },
    /// Pooling of size x size with stride = size, kind from the model's `pooling`.
    Pool { size: usize },
    /// Average over the whole feature map (resnet19, vgg11 heads).
    GlobalAvgPool,
    /// Fully connected readout applied at every timestep (flattens its input).
    Linear {
        out_features: usize,
        #[serde(default)]
        binary: bool,
        #[serde(default = "yes")]
        bias: bool,
    },
}

impl LayerConfig {
    /// A 3x3 conv unit with stride 1, padding 1 and no shortcut (the presets' plain unit).
    pub fn conv3(out_channels: usize, binary: bool) -> Self {
        LayerConfig::Conv {
            out_channels,
            kernel: 3,
            stride: 1,
            padding: 1,
            binary,
            shortcut: Shortcut::None,
        }
    }
}

fn one() -> usize {
    1
}
fn three() -> usize {
    3
}
fn yes() -> bool {
    true
}

/// A whole model: input geometry, timesteps, neuron/AGMM/encoding/loss settings, layers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    pub name: String,
    /// Input `[channels, height, width]`.
    pub input: [usize; 3],
    pub classes: usize,
    /// Timesteps T.
    pub timesteps: usize,
    #[serde(default)]
    pub neuron: LifConfig,
    #[serde(default)]
    pub agmm: AgmmConfig,
    #[serde(default)]
    pub encoding: Encoding,
    #[serde(default)]
    pub loss: LossKind,
    #[serde(default)]
    pub pooling: PoolKind,
    /// Per-channel normalisation `(x/255 - mean) / std` applied to input images.
    pub normalize_mean: Vec<f32>,
    pub normalize_std: Vec<f32>,
    pub layers: Vec<LayerConfig>,
}

/// Names of the built-in presets.
pub const PRESETS: &[&str] = &[
    "mnist",
    "resnet19",
    "vgg11",
    "nmnist",
    "dvsgesture",
    "cifar10dvs",
];

impl ModelConfig {
    /// A preset by name (`mnist`, `resnet19`, `vgg11`).
    pub fn preset(name: &str) -> Option<Self> {
        match name {
            "mnist" => Some(Self::mnist()),
            "resnet19" => Some(Self::resnet19(10)),
            "vgg11" => Some(Self::vgg11(10)),
            "nmnist" => Some(Self::nmnist()),
            "dvsgesture" => Some(Self::dvsgesture()),
            "cifar10dvs" => Some(Self::cifar10dvs()),
            _ => None,
        }
    }

    /// A preset with its readout sized for `classes` (`mnist` stays at 10: its data has 10).
    pub fn preset_for_classes(name: &str, classes: usize) -> Option<Self> {
        match name {
            "resnet19" => Some(Self::resnet19(classes)),
            "vgg11" => Some(Self::vgg11(classes)),
            _ => Self::preset(name),
        }
    }

    /// `mnist` (docs/method.md §7): FPConv 1->32 + BN + LIF; MaxPool 2; BConv 32->64 + BN + AGMM + LIF;
    /// MaxPool 2; BConv 64->64 + BN + AGMM + LIF; flatten; FP Linear 64*7*7 -> 10. T = 4.
    pub fn mnist() -> Self {
        let conv = LayerConfig::conv3;
        Self {
            name: "mnist".into(),
            input: [1, 28, 28],
            classes: 10,
            timesteps: 4,
            neuron: LifConfig::default(),
            agmm: AgmmConfig::default(),
            encoding: Encoding::Direct,
            loss: LossKind::MeanOverTime,
            pooling: PoolKind::Max,
            normalize_mean: vec![0.1307],
            normalize_std: vec![0.3081],
            layers: vec![
                conv(32, false),
                LayerConfig::Pool { size: 2 },
                conv(64, true),
                LayerConfig::Pool { size: 2 },
                conv(64, true),
                LayerConfig::Linear {
                    out_features: 10,
                    binary: false,
                    bias: true,
                },
            ],
        }
    }

    /// `resnet19` for CIFAR (docs/method.md §7): FPConv 3->128 stem, basic blocks [3, 3, 2] at 128/256/512
    /// (stride 2 at stages 2 and 3), every binary conv with its own Bi-Real shortcut (identity,
    /// or AvgPool 2 + binary 1x1 conv + BN where the shape changes), global average pool,
    /// FP Linear. T = 2.
    pub fn resnet19(classes: usize) -> Self {
        let mut layers = vec![LayerConfig::Conv {
            out_channels: 128,
            kernel: 3,
            stride: 1,
            padding: 1,
            binary: false,
            shortcut: Shortcut::None,
        }];
        for (stage, (&blocks, &channels)) in
            [3usize, 3, 2].iter().zip(&[128usize, 256, 512]).enumerate()
        {
            for block in 0..blocks {
                for conv in 0..2 {
                    let downsample = stage > 0 && block == 0 && conv == 0;
                    layers.push(LayerConfig::Conv {
                        out_channels: channels,
                        kernel: 3,
                        stride: if downsample { 2 } else { 1 },
                        padding: 1,
                        binary: true,
                        shortcut: if downsample {
                            Shortcut::Downsample
                        } else {
                            Shortcut::Identity
                        },
                    });
                }
            }
        }
        layers.push(LayerConfig::GlobalAvgPool);
        layers.push(LayerConfig::Linear {
            out_features: classes,
            binary: false,
            bias: true,
        });
        Self {
            name: "resnet19".into(),
            input: [3, 32, 32],
            classes,
            timesteps: 2,
            neuron: LifConfig::default(),
            agmm: AgmmConfig::default(),
            encoding: Encoding::Direct,
            loss: LossKind::MeanOverTime,
            pooling: PoolKind::Avg,
            normalize_mean: vec![0.4914, 0.4822, 0.4465],
            normalize_std: vec![0.2470, 0.2435, 0.2616],
            layers,
        }
    }

    /// `vgg11` for event data (docs/method.md §7): 64C3-128C3-AP2-256C3-256C3-AP2-512C3-512C3-AP2-
    /// 512C3-512C3-GAP-FC, T = 10, 2 polarity channels at 48x48.
    pub fn vgg11(classes: usize) -> Self {
        let conv = LayerConfig::conv3;
        let pool = LayerConfig::Pool { size: 2 };
        Self {
            name: "vgg11".into(),
            input: [2, 48, 48],
            classes,
            timesteps: 10,
            neuron: LifConfig::default(),
            agmm: AgmmConfig::default(),
            encoding: Encoding::Direct,
            loss: LossKind::MeanOverTime,
            pooling: PoolKind::Avg,
            normalize_mean: vec![0.0, 0.0],
            normalize_std: vec![1.0, 1.0],
            layers: vec![
                conv(64, false),
                conv(128, true),
                pool.clone(),
                conv(256, true),
                conv(256, true),
                pool.clone(),
                conv(512, true),
                conv(512, true),
                pool,
                conv(512, true),
                conv(512, true),
                LayerConfig::GlobalAvgPool,
                LayerConfig::Linear {
                    out_features: classes,
                    binary: false,
                    bias: true,
                },
            ],
        }
    }

    /// `nmnist` (event input, docs/method.md §6): the `mnist` network on 2 polarity channels at
    /// 34 x 34, T = 10 event frames (N-MNIST as SpikingJelly/tonic users frame it): FPConv
    /// 2->32 + BN + LIF; MaxPool 2; BConv 32->64 + AGMM; MaxPool 2; BConv 64->64 + AGMM;
    /// FP Linear 64*8*8 -> 10.
    pub fn nmnist() -> Self {
        Self {
            name: "nmnist".into(),
            input: [2, 34, 34],
            timesteps: 10,
            encoding: Encoding::Events,
            normalize_mean: vec![0.0, 0.0],
            normalize_std: vec![1.0, 1.0],
            ..Self::mnist()
        }
    }

    /// `dvsgesture` (event input): DVS128 Gesture downsampled 4x to 32 x 32 (as SLAYER and
    /// DECOLLE feed it), T = 16 frames, the PLIF-net style stack of 128-channel 3x3 convs each
    /// followed by MaxPool 2 (Fang et al. 2021), 32 -> 16 -> 8 -> 4 -> 2: FPConv 2->128 + BN +
    /// LIF, then three BConv 128->128 + BN + AGMM + LIF, each conv followed by MaxPool 2; FP
    /// Linear 128*2*2 -> 11. At 64 x 64 a batch would stop at 3 samples under the 128 MiB
    /// WebGPU binding limit (conv1's output is T * 128 * H * W floats per sample); at 32 x 32
    /// it holds 16.
    pub fn dvsgesture() -> Self {
        let conv = LayerConfig::conv3;
        let pool = || LayerConfig::Pool { size: 2 };
        let mut layers = vec![conv(128, false), pool()];
        for _ in 0..3 {
            layers.push(conv(128, true));
            layers.push(pool());
        }
        layers.push(LayerConfig::Linear {
            out_features: 11,
            binary: false,
            bias: true,
        });
        Self {
            name: "dvsgesture".into(),
            input: [2, 32, 32],
            classes: 11,
            timesteps: 16,
            neuron: LifConfig::default(),
            agmm: AgmmConfig::default(),
            encoding: Encoding::Events,
            loss: LossKind::MeanOverTime,
            pooling: PoolKind::Max,
            normalize_mean: vec![0.0, 0.0],
            normalize_std: vec![1.0, 1.0],
            layers,
        }
    }

    /// `cifar10dvs` (event input): the `vgg11` network (2 polarity channels at 48 x 48, the
    /// 128 x 128 sensor downsampled, T = 10), fed event frames: the common BSNN/SNN setup for
    /// CIFAR10-DVS.
    pub fn cifar10dvs() -> Self {
        Self {
            name: "cifar10dvs".into(),
            encoding: Encoding::Events,
            ..Self::vgg11(10)
        }
    }

    /// The per-sample shape `[C, H, W]` a data set must have for this model: the input, or
    /// under event encoding its T frames stacked as `T * C` channels.
    pub fn data_shape(&self) -> [usize; 3] {
        let [c, h, w] = self.input;
        match self.encoding {
            Encoding::Events => [self.timesteps * c, h, w],
            Encoding::Direct | Encoding::Poisson => [c, h, w],
        }
    }

    /// Parses a JSON model config.
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// Pretty JSON (the format `from_json` reads).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}
