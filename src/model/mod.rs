//! Models as data: configs and presets ([`config`]), shape inference ([`plan`]) and the
//! parameter/operation summary ([`summary`]); size bounds and physical ranges ([`bounds`]) and
//! the memory a model needs at a batch size ([`footprint`]), both checked before allocating.

pub mod bounds;
pub mod config;
pub mod footprint;
pub mod plan;
pub mod summary;

pub use config::*;
pub use plan::{plan, spikes_after, ModelError, PlannedLayer};
