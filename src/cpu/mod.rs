//! CPU mirrors of every kernel in [`crate::kernels`], with the same names and argument order.
//! They are the reference the GPU kernels are tested against, written for clarity, not speed.

pub mod agmm;
pub mod batchnorm;
pub mod binarize;
pub mod conv;
pub mod elementwise;
pub mod finite;
pub mod flips;
pub mod fused;
pub mod gemm;
pub mod lif;
pub mod linear;
pub mod loss;
pub mod optim;
pub mod packed_grad;
pub mod pool;
pub mod popcount;
pub mod stats;
