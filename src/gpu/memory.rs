//! GPU memory held by [`super::GpuBuffer`]s: bytes alive now and the peak since the last
//! reset, counted when buffers are created and dropped (per process, all devices together).
//! This is the sum of live buffers the benchmarks report, not the driver's own accounting
//! (staging buffers for readbacks and pipeline objects are not included).

use std::sync::atomic::{AtomicU64, Ordering};

static LIVE: AtomicU64 = AtomicU64::new(0);
static PEAK: AtomicU64 = AtomicU64::new(0);
static DROPS: AtomicU64 = AtomicU64::new(0);

pub(super) fn allocated(bytes: u64) {
    let live = LIVE.fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

pub(super) fn freed(bytes: u64) {
    LIVE.fetch_sub(bytes, Ordering::Relaxed);
    DROPS.fetch_add(1, Ordering::Relaxed);
}

/// How many owning buffers were dropped so far (the bind-group cache empties itself when this
/// moves, at the next dispatch or allocation).
pub fn owners_dropped() -> u64 {
    DROPS.load(Ordering::Relaxed)
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

/// Host memory this process may still use, in bytes: `BITSPIKE_MEMORY_LIMIT` when set (bytes,
/// or with a `K`/`M`/`G` suffix: a cap for shared machines and tests), else the kernel's
/// `MemAvailable` (Linux), else unknown. Used to refuse runs that cannot fit before anything
/// is allocated.
pub fn host_available_bytes() -> Option<u64> {
    #[cfg(not(target_arch = "wasm32"))]
    {
        if let Ok(text) = std::env::var("BITSPIKE_MEMORY_LIMIT") {
            return parse_bytes(&text);
        }
        let info = std::fs::read_to_string("/proc/meminfo").ok()?;
        let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        kib.checked_mul(1024)
    }
    #[cfg(target_arch = "wasm32")]
    None
}

/// `"123"`, `"64K"`, `"512M"`, `"8G"` (binary units) as bytes.
pub fn parse_bytes(text: &str) -> Option<u64> {
    let t = text.trim();
    let (digits, shift) = match t.chars().last()?.to_ascii_uppercase() {
        'K' => (&t[..t.len() - 1], 10),
        'M' => (&t[..t.len() - 1], 20),
        'G' => (&t[..t.len() - 1], 30),
        _ => (t, 0),
    };
    digits
        .trim()
        .parse::<u64>()
        .ok()?
        .checked_mul(1u64 << shift)
}

#[cfg(test)]
mod tests {
    use super::parse_bytes;

    #[test]
    fn byte_sizes_parse_with_suffixes() {
        assert_eq!(parse_bytes("123"), Some(123));
        assert_eq!(parse_bytes("64k"), Some(64 << 10));
        assert_eq!(parse_bytes("8G"), Some(8 << 30));
        assert_eq!(parse_bytes("lots"), None);
        assert_eq!(parse_bytes("99999999999999G"), None);
    }
}
