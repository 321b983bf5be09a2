//! The network on the GPU. [`network`] builds a BSNN from a model config and records its
//! forward, backward and optimizer passes by walking [`layers`], where each layer kind (conv
//! unit, pooling, linear) owns its parameters, workspace and recording. Around it:
//! [`param`] and [`weight`] (trainable tensors and the weight/BN blocks), [`recorder`] (the
//! kernels and the encoder a layer records into), [`workspace`] (activations per batch size) with [`transients`] (the buffers layers share),
//! [`metrics`] (epoch summaries on the GPU), [`checkpoint_io`] and [`inspect`] (reading the
//! network out without waiting).

pub mod checkpoint_io;
pub mod inspect;
pub mod layers;
pub mod metrics;
pub mod network;
pub mod param;
pub mod recorder;
pub mod transients;
pub mod weight;
pub mod workspace;

pub use checkpoint_io::PendingCheckpoint;
pub use inspect::{LayerReadback, WeightReadback};
pub use layers::{Layer, Pass};
pub use metrics::{EpochMetrics, MetricsReadback, MomentKind, RawMetrics};
pub use network::{Network, NetworkError, Optimizer};
pub use weight::Weight;
pub use workspace::{Workspace, Workspaces};
