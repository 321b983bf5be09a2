//! One Rust struct per WGSL kernel. Each struct compiles its pipeline once (through the
//! context's cache) in `new(&GpuContext)` and records work with `dispatch(...)` into a caller's
//! command encoder; it never creates adapters, devices or submits.
//!
//! Convention shared by all kernels: binding 0 is a uniform `*Params` struct (mirrored here as a
//! `#[repr(C)]` Pod type), bindings 1.. are storage buffers in the order `dispatch` takes them.

pub mod agmm;
pub mod batchnorm;
pub mod binarize;
pub mod conv;
pub mod elementwise;
pub mod flips;
pub mod gemm;
pub mod lif;
pub mod linear;
pub mod loss;
pub mod optim;
pub mod pool;
pub mod popcount;
pub mod stats;
