//! The GPU runtime: device acquisition, typed buffers, the pipeline cache, dispatch geometry and
//! device limits. Kernels (`crate::kernels`) are built on these and nothing else.

mod bind_cache;
mod buffer;
mod context;
mod dispatch;
mod error;
mod kernel;
pub mod limits;
pub mod memory;
mod pending;
pub mod profile;
pub mod split;

pub use buffer::{Binding, GpuBuffer, Readback};
pub use context::{GpuContext, KernelVariant, PackedBackward};
pub use dispatch::Workgroups;
pub use error::GpuError;
pub use kernel::{check_lens, KernelSource, Specialised};
pub use limits::MAX_LOOP_ITERATIONS;
pub use pending::{Pending, ReadbackSet, Slot};
