//! The memory estimate that refuses runs up front (`model::footprint`) against the buffers a
//! network and its workspace really allocate: never below (a run it lets through must fit),
//! and not far above (it must not refuse runs that fit). One test function: the live-byte
//! counter is per process, so nothing else may allocate meanwhile.

mod common;

use bitspike::gpu::memory;
use bitspike::model::{footprint, ModelConfig};
use bitspike::snn::Network;
use common::*;

#[test]
fn estimate_covers_what_is_allocated_and_not_far_more() {
    let Some(ctx) = gpu() else { return };
    for (config, batch) in [
        (ModelConfig::mnist(), 16),
        (ModelConfig::mnist(), 5),
        (residual_model(), 8),
    ] {
        for training in [true, false] {
            let before = memory::live_bytes();
            let net = Network::new(&ctx, &config, 1).unwrap();
            let net_bytes = memory::live_bytes() - before;
            let ws = if training {
                net.workspace(&ctx, batch).unwrap()
            } else {
                net.inference_workspace(&ctx, batch).unwrap()
            };
            let actual = memory::live_bytes() - before;
            let estimate = footprint::estimate(&config, batch, training)
                .unwrap()
                .device_bytes();
            let ratio = estimate as f64 / actual as f64;
            let fp = footprint::estimate(&config, batch, training).unwrap();
            println!(
                "{} B={batch} training={training}: allocated {actual} (network {net_bytes}), \
                 estimated {estimate} (parameters {}) ({ratio:.2}x)",
                config.name, fp.parameter_bytes
            );
            assert!(ratio >= 1.0, "estimate below the allocation: {ratio:.3}");
            assert!(
                ratio <= 1.6,
                "estimate far above the allocation: {ratio:.3}"
            );
            drop(ws);
            drop(net);
        }
    }
}
