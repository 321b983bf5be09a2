//! GPU time per kernel from timestamp queries (`bitspike bench e2e --kernels`).
//!
//! While a profile is open ([`GpuContext::start_profile`]), every dispatch writes a timestamp
//! at the beginning and the end of its compute pass (each dispatch has its own pass), and
//! [`GpuContext::finish_profile`] resolves them into milliseconds per kernel name. The times
//! are the device's own, so they hold on a real GPU, where host-side timing of separate
//! submissions would mostly measure submission latency. Native only, and only where the
//! adapter offers `TIMESTAMP_QUERY` (the context asks for it natively when offered).
//!
//! [`GpuContext::start_profile`]: super::GpuContext::start_profile
//! [`GpuContext::finish_profile`]: super::GpuContext::finish_profile

use serde::Serialize;

/// Passes per query set: two timestamps each, in a set of wgpu's maximum size.
const PASSES_PER_SET: u32 = wgpu::QUERY_SET_MAX_QUERIES / 2;

/// GPU time of one kernel over the profiled work.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct KernelTime {
    /// The dispatch label: the kernel's name (`shaders/<name>.wgsl`).
    pub kernel: String,
    pub calls: usize,
    pub ms: f64,
}

/// The query sets of an open profile and the label of every pass that writes to them.
pub(super) struct Profiler {
    sets: Vec<wgpu::QuerySet>,
    labels: Vec<String>,
}

impl Profiler {
    pub(super) fn new() -> Self {
        Self {
            sets: Vec::new(),
            labels: Vec::new(),
        }
    }

    /// The query set and the first of the two indices the next pass (a dispatch of `label`)
    /// writes its timestamps to; a new set once the last one is full.
    pub(super) fn next_pass(
        &mut self,
        device: &wgpu::Device,
        label: &str,
    ) -> (wgpu::QuerySet, u32) {
        let pass = self.labels.len() as u32;
        let slot = pass % PASSES_PER_SET;
        if slot == 0 {
            self.sets
                .push(device.create_query_set(&wgpu::QuerySetDescriptor {
                    label: Some("kernel profile"),
                    ty: wgpu::QueryType::Timestamp,
                    count: PASSES_PER_SET * 2,
                }));
        }
        self.labels.push(label.to_string());
        (self.sets[self.sets.len() - 1].clone(), slot * 2)
    }

    /// Records the resolution of every set into one buffer, copied into `staging`
    /// (`passes * 16` bytes: begin and end of each pass, in order). Returns the passes' labels.
    pub(super) fn resolve(
        self,
        device: &wgpu::Device,
        encoder: &mut wgpu::CommandEncoder,
    ) -> (Vec<String>, Option<wgpu::Buffer>) {
        let passes = self.labels.len() as u64;
        if passes == 0 {
            return (self.labels, None);
        }
        let bytes = passes * 16;
        // Each set resolves at a multiple of PASSES_PER_SET * 16 = 32 KiB, which keeps
        // QUERY_RESOLVE_BUFFER_ALIGNMENT (256).
        let resolved = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("kernel profile resolve"),
            size: bytes,
            usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let staging = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("kernel profile readback"),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        for (i, set) in self.sets.iter().enumerate() {
            let first = i as u64 * PASSES_PER_SET as u64;
            let used = (passes - first).min(PASSES_PER_SET as u64) as u32;
            encoder.resolve_query_set(set, 0..used * 2, &resolved, first * 16);
        }
        encoder.copy_buffer_to_buffer(&resolved, 0, &staging, 0, bytes);
        (self.labels, Some(staging))
    }
}

/// Sums each label's pass times (`ticks`: begin and end of each pass, in `labels`' order;
/// `period`: nanoseconds per tick), kernels by total time, longest first. A pass whose end
/// reads before its begin (a counter that wrapped or was reset) counts as 0.
pub fn per_kernel(labels: &[String], ticks: &[u64], period: f64) -> Vec<KernelTime> {
    let mut rows: Vec<KernelTime> = Vec::new();
    for (label, pair) in labels.iter().zip(ticks.chunks_exact(2)) {
        let ms = pair[1].saturating_sub(pair[0]) as f64 * period / 1e6;
        match rows.iter_mut().find(|r| &r.kernel == label) {
            Some(row) => {
                row.calls += 1;
                row.ms += ms;
            }
            None => rows.push(KernelTime {
                kernel: label.clone(),
                calls: 1,
                ms,
            }),
        }
    }
    rows.sort_by(|a, b| b.ms.total_cmp(&a.ms));
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_kernel_sums_calls_and_sorts_by_time() {
        let labels: Vec<String> = ["a", "b", "a", "c"].iter().map(|s| s.to_string()).collect();
        // a: 10 + 30 ticks, b: 5, c: end before begin (0).
        let ticks = [0, 10, 10, 15, 20, 50, 60, 55];
        let rows = per_kernel(&labels, &ticks, 1e6); // 1 ms per tick
        assert_eq!(
            rows,
            vec![
                KernelTime {
                    kernel: "a".into(),
                    calls: 2,
                    ms: 40.0
                },
                KernelTime {
                    kernel: "b".into(),
                    calls: 1,
                    ms: 5.0
                },
                KernelTime {
                    kernel: "c".into(),
                    calls: 1,
                    ms: 0.0
                },
            ]
        );
    }
}
