//! The network on the GPU: parameters ([`param`]) and the BSNN built from a model config with
//! its recorded forward, backward and optimizer passes ([`network`]).

pub mod network;
pub mod param;

pub use network::{
    EpochMetrics, Layer, MetricsReadback, MomentKind, Network, NetworkError, Optimizer,
    PendingCheckpoint, RawMetrics, Weight,
};
