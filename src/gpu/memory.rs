//! GPU memory held by [`super::GpuBuffer`]s: bytes alive now and the peak since the last
//! reset, counted when buffers are created and dropped (per process, all devices together).
//! This is the sum of live buffers the benchmarks report, not the driver's own accounting
//! (staging buffers for readbacks and pipeline objects are not included).

use std::sync::atomic::{AtomicU64, Ordering};

static LIVE: AtomicU64 = AtomicU64::new(0);
static PEAK: AtomicU64 = AtomicU64::new(0);

pub(super) fn allocated(bytes: u64) {
    let live = LIVE.fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

pub(super) fn freed(bytes: u64) {
    LIVE.fetch_sub(bytes, Ordering::Relaxed);
}

/// Bytes in live buffers now.
pub fn live_bytes() -> u64 {
    LIVE.load(Ordering::Relaxed)
}

/// The most bytes live at once since the last [`reset_peak`].
pub fn peak_bytes() -> u64 {
    PEAK.load(Ordering::Relaxed)
}

/// Starts a new peak measurement from what is live now.
pub fn reset_peak() {
    PEAK.store(LIVE.load(Ordering::Relaxed), Ordering::Relaxed);
}
