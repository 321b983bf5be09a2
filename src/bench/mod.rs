//! `bitspike bench`: per-kernel timings at the `mnist` preset's shapes (B = 64, T = 4) plus
//! square GEMMs, printed as a table. Medians over repeated submissions.

use std::time::Instant;

use crate::gpu::{GpuContext, GpuError};

/// One row of the benchmark table.
#[derive(Clone, Debug)]
pub struct BenchRow {
    /// Kernel (or composite operation) name.
    pub kernel: String,
    /// Shape in words, e.g. `M=N=K=512`.
    pub shape: String,
    /// Median seconds per call.
    pub seconds: f64,
    /// Useful floating-point (or binary) operations per call, if meaningful.
    pub flops: Option<f64>,
    /// Bytes moved per call (read + written), if the kernel is memory-bound.
    pub bytes: Option<f64>,
}

impl BenchRow {
    /// A row for `kernel` on `shape` taking `seconds` per call.
    pub fn timed(kernel: impl Into<String>, shape: impl Into<String>, seconds: f64) -> Self {
        Self {
            kernel: kernel.into(),
            shape: shape.into(),
            seconds,
            flops: None,
            bytes: None,
        }
    }

    /// Compute-bound: `flops` useful operations per call.
    pub fn flops(self, flops: f64) -> Self {
        Self {
            flops: Some(flops),
            ..self
        }
    }

    /// Memory-bound: `bytes` read and written per call.
    pub fn bytes(self, bytes: f64) -> Self {
        Self {
            bytes: Some(bytes),
            ..self
        }
    }

    /// GFLOP/s (or Gop/s for binary ops) when `flops` is known.
    pub fn gflops(&self) -> Option<f64> {
        self.flops.map(|f| f / self.seconds / 1e9)
    }

    /// GB/s when `bytes` is known.
    pub fn gbytes(&self) -> Option<f64> {
        self.bytes.map(|b| b / self.seconds / 1e9)
    }
}

/// Deterministic, non-trivial test data in `[lo, lo + span)` (no RNG in the benchmarks, so
/// every run times the same values).
pub(crate) fn pattern(len: usize, salt: usize, lo: f32, span: f32) -> Vec<f32> {
    (0..len)
        .map(|i| (((i + salt) * 7919) % 1000) as f32 / 1000.0 * span + lo)
        .collect()
}

/// Median wall time of `record` (one call = what `record` puts into one encoder), measured by
/// submitting and waiting `reps` times after one warm-up. Includes submit latency, as a real
/// training step would.
pub fn time_gpu(
    ctx: &GpuContext,
    reps: usize,
    mut record: impl FnMut(&mut wgpu::CommandEncoder) -> Result<(), GpuError>,
) -> Result<f64, GpuError> {
    let mut samples = Vec::with_capacity(reps);
    for rep in 0..=reps {
        let mut encoder = ctx.encoder("bench");
        record(&mut encoder)?;
        let start = Instant::now();
        ctx.submit(encoder);
        ctx.wait_idle()?;
        if rep > 0 {
            samples.push(start.elapsed().as_secs_f64());
        }
    }
    samples.sort_by(f64::total_cmp);
    Ok(samples[samples.len() / 2])
}

/// Formats rows as a Markdown table (the README embeds it as printed).
pub fn format_table(rows: &[BenchRow]) -> String {
    let mut out =
        String::from("| kernel | shape | median ms | GFLOP/s | GB/s |\n|---|---|---:|---:|---:|\n");
    for r in rows {
        let f = |v: Option<f64>| v.map(|x| format!("{x:.2}")).unwrap_or_else(|| "-".into());
        out.push_str(&format!(
            "| {} | {} | {:.3} | {} | {} |\n",
            r.kernel,
            r.shape,
            r.seconds * 1e3,
            f(r.gflops()),
            f(r.gbytes())
        ));
    }
    out
}

mod agmm_loss_optim;
mod binary;
pub mod e2e;
mod gemm;
mod lif;
mod norm_pool;

/// Runs every benchmark family whose kernel name contains `filter` (all when `None`).
pub fn run_all(
    ctx: &GpuContext,
    reps: usize,
    filter: Option<&str>,
) -> Result<Vec<BenchRow>, GpuError> {
    type Family = fn(&GpuContext, usize) -> Result<Vec<BenchRow>, GpuError>;
    let families: &[(&str, Family)] = &[
        ("gemm conv linear", gemm::rows),
        ("binarize pack popcount flip moments", binary::rows),
        ("batchnorm maxpool residual", norm_pool::rows),
        ("lif", lif::rows),
        ("agmm cross_entropy sgd adam", agmm_loss_optim::rows),
    ];
    let mut rows = Vec::new();
    for (name, family) in families {
        if filter.is_none_or(|f| name.contains(f) || f.contains(name)) {
            rows.extend(family(ctx, reps)?);
        }
    }
    if let Some(f) = filter {
        rows.retain(|r| r.kernel.contains(f) || f.contains(r.kernel.as_str()));
    }
    Ok(rows)
}
