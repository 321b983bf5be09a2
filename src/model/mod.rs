//! Models as data: configs and presets ([`config`]), shape inference ([`plan`]) and the
//! parameter/operation summary ([`summary`]).

pub mod config;
pub mod plan;
pub mod summary;

pub use config::*;
pub use plan::{plan, ModelError, PlannedLayer};
