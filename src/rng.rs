//! The seeded generator behind weight init, data shuffles and spike encodings.
//!
//! Xoshiro256++ seeded through SplitMix64: on 64-bit targets this is exactly what rand's
//! `SmallRng::seed_from_u64` produced (so earlier seeded results are unchanged), and unlike
//! `SmallRng` it is the same algorithm on wasm32, so the browser reproduces the desktop's runs.

/// The project's seeded random number generator.
pub type SeededRng = rand_xoshiro::Xoshiro256PlusPlus;
