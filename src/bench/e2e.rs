//! `bitspike bench e2e`: whole training steps and whole inference batches of a model, the
//! numbers to put next to PyTorch's (`scripts/compare_e2e.py` runs both interleaved).
//!
//! A training step is timed as the trainer runs it: host batch (normalise, encode), upload,
//! forward + loss + backward + optimizer in one submission, and the small metric readback the
//! driver makes per step, waited for. Inference is an eval-mode forward of `infer_batch`
//! samples including its upload. The breakdown then times each phase, and each layer's
//! forward and backward, as separate submissions (so the parts add up to a little more than
//! the whole: each waits for an idle device). Memory is the sum of live `GpuBuffer`s.

use std::time::Instant;

use serde::Serialize;

use crate::data::{embedded_mnist10k, make_batch, Dataset, EmbeddedSplit, InputSpec};
use crate::gpu::profile::KernelTime;
use crate::gpu::{memory, GpuContext, Pending};
use crate::kernels::optim::AdamConfig;
use crate::model::ModelConfig;
use crate::rng::SeededRng;
use crate::snn::{Network, NetworkError, Optimizer, Pass, Workspace};

/// What to run.
#[derive(Clone, Debug)]
pub struct E2eOptions {
    pub model: ModelConfig,
    pub batch: usize,
    pub infer_batch: usize,
    /// Timed repetitions (after `warmup` untimed ones).
    pub steps: usize,
    pub warmup: usize,
    /// Also time every kernel of training steps and inference batches on the GPU's clock
    /// (`gpu::profile`; medians of `steps`, at most 5).
    pub kernels: bool,
}

/// Median time and throughput of one kind of step.
#[derive(Clone, Debug, Serialize)]
pub struct Throughput {
    /// Median milliseconds per step (training) or per batch (inference).
    pub ms: f64,
    pub samples_per_s: f64,
    pub batch: usize,
    pub reps: usize,
}

/// Median milliseconds of one named part.
#[derive(Clone, Debug, Serialize)]
pub struct Part {
    pub name: String,
    pub ms: f64,
}

/// One layer's forward and backward (training mode), and its eval-mode forward at the
/// inference batch.
#[derive(Clone, Debug, Serialize)]
pub struct LayerTime {
    pub name: String,
    pub forward_ms: f64,
    pub backward_ms: f64,
    pub infer_ms: f64,
}

/// Everything `bench e2e` measured.
#[derive(Clone, Debug, Serialize)]
pub struct E2eReport {
    pub tool: &'static str,
    pub adapter: String,
    pub model: String,
    pub timesteps: usize,
    pub train: Throughput,
    pub infer: Throughput,
    /// The same inference batches through the unfused chain the probes keep
    /// ([`Pass::Inspect`]: BN, AGMM, shortcut and LIF as separate passes that also write the
    /// membranes and expectations), timed alternately with `infer` on consecutive batches of
    /// the same size: what the fusion buys.
    pub infer_unfused: Throughput,
    /// The fused eval with the spikes handed between layers as floats (no
    /// `layers::packed_flow`), timed alternately with `infer` as well: what the packed hand-over
    /// buys.
    pub infer_unpacked: Throughput,
    /// Training step by phase.
    pub phases: Vec<Part>,
    pub layers: Vec<LayerTime>,
    /// Peak bytes of live GPU buffers while training at `batch` / evaluating at
    /// `infer_batch` (parameters, optimizer state, activations, scratch).
    pub peak_train_bytes: u64,
    pub peak_infer_bytes: u64,
    /// Host time to record one training step (forward, backward, optimizer) into a command
    /// encoder, before it is submitted: the per-dispatch work a real GPU waits on.
    pub record_ms: f64,
    /// Bind groups the whole run took from the cache / created (`gpu::bind_cache`).
    pub bind_group_hits: u64,
    pub bind_group_misses: u64,
    /// GPU time per kernel of a training step (forward, loss, backward, optimizer) and of an
    /// inference batch (medians of up to 5 profiled ones), longest first; empty unless asked
    /// for (`E2eOptions::kernels`).
    pub train_kernels: Vec<KernelTime>,
    pub infer_kernels: Vec<KernelTime>,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// The data a model is timed on: the embedded MNIST-10k for 1x28x28 inputs with at most 10
/// classes, seeded random images of the model's input shape otherwise.
fn bench_data(model: &ModelConfig, split: EmbeddedSplit) -> Result<Dataset, NetworkError> {
    // Event models take T frames stacked as channels (`ModelConfig::data_shape`).
    let [c, h, w] = model.data_shape();
    if [c, h, w] == [1, 28, 28] && model.classes >= 10 {
        if let Ok(d) = embedded_mnist10k(split) {
            return Ok(d);
        }
    }
    use rand::{Rng, SeedableRng};
    let count = 512;
    let mut rng = SeededRng::seed_from_u64(7);
    let images = (0..count * c * h * w).map(|_| rng.random::<u8>()).collect();
    let labels = (0..count)
        .map(|_| rng.random_range(0..model.classes.min(256)) as u8)
        .collect();
    Ok(Dataset {
        images,
        labels,
        channels: c,
        height: h,
        width: w,
        classes: model.classes,
    })
}

/// Batches of `batch` consecutive samples, wrapping around.
struct Batches<'a> {
    data: &'a Dataset,
    spec: InputSpec,
    batch: usize,
    next: usize,
}

impl Batches<'_> {
    fn host(&mut self) -> crate::data::HostBatch {
        let idx: Vec<usize> = (0..self.batch)
            .map(|i| (self.next + i) % self.data.len())
            .collect();
        self.next += self.batch;
        make_batch(self.data, &idx, &self.spec, self.next as u64)
    }
}

/// Runs the benchmark.
pub fn run(ctx: &GpuContext, opts: &E2eOptions) -> Result<E2eReport, NetworkError> {
    if opts.kernels {
        // Refused now rather than after minutes of timing.
        ctx.can_profile()?;
    }
    let model = &opts.model;
    let spec = InputSpec::for_model(model, false);
    let train_data = bench_data(model, EmbeddedSplit::Train)?;
    let test_data = bench_data(model, EmbeddedSplit::Test)?;
    let base = memory::live_bytes();
    memory::reset_peak();
    let mut net = Network::new(ctx, model, 1)?;
    let optimizer = Optimizer::Adam(AdamConfig::default());
    let lr = 1e-3;

    // Whole training steps.
    let ws = net.workspace(ctx, opts.batch)?;
    let mut batches = Batches {
        data: &train_data,
        spec: spec.clone(),
        batch: opts.batch,
        next: 0,
    };
    let (mut step_ms, mut record_ms) = (Vec::new(), Vec::new());
    for rep in 0..opts.warmup + opts.steps {
        let start = Instant::now();
        let host = batches.host();
        net.upload(ctx, &ws, &host.input, &host.labels)?;
        let record = Instant::now();
        let mut enc = ctx.encoder("bench step");
        net.record_forward(ctx, &mut enc, &ws, Pass::Train)?;
        net.record_backward(ctx, &mut enc, &ws)?;
        net.record_optimizer(ctx, &mut enc, &optimizer, lr)?;
        let recorded = record.elapsed().as_secs_f64() * 1e3;
        ctx.submit(enc);
        net.read_metrics(ctx).block(ctx)?;
        if rep >= opts.warmup {
            step_ms.push(start.elapsed().as_secs_f64() * 1e3);
            record_ms.push(recorded);
        }
    }
    let train_ms = median(step_ms);
    let record_ms = median(record_ms);

    // The same step, phase by phase.
    let mut phase_ms: Vec<Vec<f64>> = vec![Vec::new(); 6];
    for _ in 0..opts.steps.max(1) {
        let start = Instant::now();
        let host = batches.host();
        phase_ms[0].push(start.elapsed().as_secs_f64() * 1e3);
        let time = |f: &mut dyn FnMut(&mut wgpu::CommandEncoder) -> Result<(), NetworkError>| {
            let start = Instant::now();
            let mut enc = ctx.encoder("bench phase");
            f(&mut enc)?;
            ctx.submit(enc);
            ctx.wait_idle()?;
            Ok::<f64, NetworkError>(start.elapsed().as_secs_f64() * 1e3)
        };
        phase_ms[1].push(time(&mut |_| {
            net.upload(ctx, &ws, &host.input, &host.labels)
        })?);
        phase_ms[2].push(time(&mut |enc| {
            net.record_forward(ctx, enc, &ws, Pass::Train)
        })?);
        phase_ms[3].push(time(&mut |enc| net.record_backward(ctx, enc, &ws))?);
        let start = Instant::now();
        let mut enc = ctx.encoder("bench optimizer");
        net.record_optimizer(ctx, &mut enc, &optimizer, lr)?;
        ctx.submit(enc);
        ctx.wait_idle()?;
        phase_ms[4].push(start.elapsed().as_secs_f64() * 1e3);
        let start = Instant::now();
        net.read_metrics(ctx).block(ctx)?;
        phase_ms[5].push(start.elapsed().as_secs_f64() * 1e3);
    }
    let names = [
        "host batch",
        "upload",
        "forward + loss",
        "backward",
        "optimizer",
        "readback",
    ];
    let phases = names
        .iter()
        .zip(phase_ms)
        .map(|(name, ms)| Part {
            name: name.to_string(),
            ms: median(ms),
        })
        .collect();
    let mut layers = layer_times(ctx, &net, &ws, opts.steps.clamp(1, 5))?;
    let train_kernels = profile_runs(ctx, profile_reps(opts), &mut |enc| {
        let host = batches.host();
        net.upload(ctx, &ws, &host.input, &host.labels)?;
        net.record_forward(ctx, enc, &ws, Pass::Train)?;
        net.record_backward(ctx, enc, &ws)?;
        net.record_optimizer(ctx, enc, &optimizer, lr)
    })?;
    let peak_train_bytes = memory::peak_bytes().saturating_sub(base);
    drop(ws);

    // Whole inference batches (the peak restarts from the parameters alone).
    memory::reset_peak();
    let ws = net.inference_workspace(ctx, opts.infer_batch)?;
    let mut batches = Batches {
        data: &test_data,
        spec,
        batch: opts.infer_batch,
        next: 0,
    };
    // The peak of plain eval, before the first inspection allocates the chain's buffers.
    let host = batches.host();
    net.upload(ctx, &ws, &host.input, &host.labels)?;
    let mut enc = ctx.encoder("bench eval");
    net.record_forward(ctx, &mut enc, &ws, Pass::Eval)?;
    ctx.submit(enc);
    ctx.wait_idle()?;
    let peak_infer_bytes = memory::peak_bytes().saturating_sub(base);
    let (mut infer_ms, mut unfused_ms, mut unpacked_ms) = (Vec::new(), Vec::new(), Vec::new());
    for rep in 0..opts.warmup.min(2) + opts.steps {
        for (pass, packed, times) in [
            (Pass::Eval, true, &mut infer_ms),
            (Pass::Eval, false, &mut unpacked_ms),
            (Pass::Inspect, false, &mut unfused_ms),
        ] {
            net.set_packed_spikes(packed);
            let start = Instant::now();
            let host = batches.host();
            net.upload(ctx, &ws, &host.input, &host.labels)?;
            let mut enc = ctx.encoder("bench eval");
            net.record_forward(ctx, &mut enc, &ws, pass)?;
            ctx.submit(enc);
            ctx.wait_idle()?;
            if rep >= opts.warmup.min(2) {
                times.push(start.elapsed().as_secs_f64() * 1e3);
            }
        }
    }
    let infer = median(infer_ms);
    let unfused = median(unfused_ms);
    let unpacked = median(unpacked_ms);
    net.set_packed_spikes(true);
    infer_layer_times(ctx, &net, &ws, opts.steps.clamp(1, 5), &mut layers)?;
    let infer_kernels = profile_runs(ctx, profile_reps(opts), &mut |enc| {
        let host = batches.host();
        net.upload(ctx, &ws, &host.input, &host.labels)?;
        net.record_forward(ctx, enc, &ws, Pass::Eval)
    })?;
    Ok(E2eReport {
        tool: "bitspike",
        adapter: ctx.describe(),
        model: model.name.clone(),
        timesteps: model.timesteps,
        train: Throughput {
            ms: train_ms,
            samples_per_s: opts.batch as f64 / (train_ms / 1e3),
            batch: opts.batch,
            reps: opts.steps,
        },
        infer: Throughput {
            ms: infer,
            samples_per_s: opts.infer_batch as f64 / (infer / 1e3),
            batch: opts.infer_batch,
            reps: opts.steps,
        },
        infer_unfused: Throughput {
            ms: unfused,
            samples_per_s: opts.infer_batch as f64 / (unfused / 1e3),
            batch: opts.infer_batch,
            reps: opts.steps,
        },
        infer_unpacked: Throughput {
            ms: unpacked,
            samples_per_s: opts.infer_batch as f64 / (unpacked / 1e3),
            batch: opts.infer_batch,
            reps: opts.steps,
        },
        phases,
        layers,
        peak_train_bytes,
        peak_infer_bytes,
        record_ms,
        bind_group_hits: ctx.bind_group_stats().0,
        bind_group_misses: ctx.bind_group_stats().1,
        train_kernels,
        infer_kernels,
    })
}

/// Profiled runs per kind of work: up to 5 with `--kernels`, none without.
fn profile_reps(opts: &E2eOptions) -> usize {
    if opts.kernels {
        opts.steps.clamp(1, 5)
    } else {
        0
    }
}

/// Each kernel's median GPU time over `runs` profiled submissions of what `record` records
/// (it may upload first: uploads are not dispatches).
fn profile_runs(
    ctx: &GpuContext,
    runs: usize,
    record: &mut dyn FnMut(&mut wgpu::CommandEncoder) -> Result<(), NetworkError>,
) -> Result<Vec<KernelTime>, NetworkError> {
    let mut all = Vec::with_capacity(runs);
    for _ in 0..runs {
        all.push(profiled(ctx, record)?);
    }
    Ok(median_profile(all))
}

/// Each kernel's median time over `runs` (profiles of the same work; a kernel missing from a
/// run counts 0 there), longest first.
fn median_profile(runs: Vec<Vec<KernelTime>>) -> Vec<KernelTime> {
    let Some(first) = runs.first() else {
        return Vec::new();
    };
    let mut rows: Vec<KernelTime> = first
        .iter()
        .map(|k| KernelTime {
            ms: median(
                runs.iter()
                    .map(|run| {
                        run.iter()
                            .find(|r| r.kernel == k.kernel)
                            .map_or(0.0, |r| r.ms)
                    })
                    .collect(),
            ),
            ..k.clone()
        })
        .collect();
    rows.sort_by(|a, b| b.ms.total_cmp(&a.ms));
    rows
}

/// The GPU time of each kernel `record` dispatches, as one submission.
fn profiled(
    ctx: &GpuContext,
    record: &mut dyn FnMut(&mut wgpu::CommandEncoder) -> Result<(), NetworkError>,
) -> Result<Vec<KernelTime>, NetworkError> {
    ctx.wait_idle()?;
    ctx.start_profile()?;
    let mut enc = ctx.encoder("bench kernels");
    let recorded = record(&mut enc);
    ctx.submit(enc);
    // Close the profile whether or not recording failed.
    let times = ctx.finish_profile();
    recorded?;
    Ok(times?)
}

/// Each layer's training forward and backward as separate submissions (median of `reps`).
fn layer_times(
    ctx: &GpuContext,
    net: &Network,
    ws: &Workspace,
    reps: usize,
) -> Result<Vec<LayerTime>, NetworkError> {
    let count = net.layers().len();
    let mut fwd = vec![Vec::new(); count];
    let mut bwd = vec![Vec::new(); count];
    let timed = |record: &dyn Fn(&mut wgpu::CommandEncoder) -> Result<(), NetworkError>| {
        let mut enc = ctx.encoder("bench layer");
        record(&mut enc)?;
        let start = Instant::now();
        ctx.submit(enc);
        ctx.wait_idle()?;
        Ok::<f64, NetworkError>(start.elapsed().as_secs_f64() * 1e3)
    };
    for _ in 0..reps {
        for (i, times) in fwd.iter_mut().enumerate() {
            times.push(timed(&|enc| {
                net.record_layer_forward(ctx, enc, ws, i, Pass::Train)
            })?);
        }
        timed(&|enc| net.record_loss(ctx, enc, ws, true))?;
        for (i, times) in bwd.iter_mut().enumerate().rev() {
            times.push(timed(&|enc| net.record_layer_backward(ctx, enc, ws, i))?);
        }
    }
    Ok(net
        .layers()
        .iter()
        .zip(fwd.into_iter().zip(bwd))
        .map(|(layer, (f, b))| LayerTime {
            name: layer.name().to_string(),
            forward_ms: median(f),
            backward_ms: median(b),
            infer_ms: 0.0,
        })
        .collect())
}

/// Each layer's eval-mode forward as a separate submission (median of `reps`), in `layers`.
fn infer_layer_times(
    ctx: &GpuContext,
    net: &Network,
    ws: &Workspace,
    reps: usize,
    layers: &mut [LayerTime],
) -> Result<(), NetworkError> {
    let mut times = vec![Vec::new(); layers.len()];
    for _ in 0..reps {
        for (i, t) in times.iter_mut().enumerate() {
            let start = Instant::now();
            let mut enc = ctx.encoder("bench layer");
            net.record_layer_forward(ctx, &mut enc, ws, i, Pass::Eval)?;
            ctx.submit(enc);
            ctx.wait_idle()?;
            t.push(start.elapsed().as_secs_f64() * 1e3);
        }
    }
    for (layer, t) in layers.iter_mut().zip(times) {
        layer.infer_ms = median(t);
    }
    Ok(())
}

/// The report as Markdown tables.
pub fn format_report(r: &E2eReport) -> String {
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    let mut out = format!(
        "model {} (T = {}) on {}\n\n| | batch | median ms | samples/s |\n|---|---:|---:|---:|\n",
        r.model, r.timesteps, r.adapter
    );
    for (name, t) in [
        ("training step", &r.train),
        ("inference batch", &r.infer),
        (
            "inference batch, spikes as floats between layers",
            &r.infer_unpacked,
        ),
        ("inference batch, unfused chain", &r.infer_unfused),
    ] {
        out.push_str(&format!(
            "| {name} | {} | {:.1} | {:.1} |\n",
            t.batch, t.ms, t.samples_per_s
        ));
    }
    out.push_str("\n| training phase | median ms | share |\n|---|---:|---:|\n");
    let total: f64 = r.phases.iter().map(|p| p.ms).sum();
    for p in &r.phases {
        out.push_str(&format!(
            "| {} | {:.2} | {:.0} % |\n",
            p.name,
            p.ms,
            100.0 * p.ms / total.max(1e-9)
        ));
    }
    out.push_str(&format!(
        "\n| layer | training forward ms | backward ms | inference forward ms (B = {}) |\n|---|---:|---:|---:|\n",
        r.infer.batch
    ));
    for l in &r.layers {
        out.push_str(&format!(
            "| {} | {:.2} | {:.2} | {:.2} |\n",
            l.name, l.forward_ms, l.backward_ms, l.infer_ms
        ));
    }
    out.push_str(&format!(
        "\npeak GPU memory (live buffers): training {:.1} MiB, inference {:.1} MiB\n\
         host time recording a training step: {:.2} ms (bind groups: {} from the cache, {} created)\n",
        mib(r.peak_train_bytes),
        mib(r.peak_infer_bytes),
        r.record_ms,
        r.bind_group_hits,
        r.bind_group_misses
    ));
    for (what, rows) in [
        (
            format!("a training step (B = {}), medians", r.train.batch),
            &r.train_kernels,
        ),
        (
            format!("an inference batch (B = {}), medians", r.infer.batch),
            &r.infer_kernels,
        ),
    ] {
        if !rows.is_empty() {
            out.push_str(&kernel_table(&what, rows));
        }
    }
    out
}

/// Kernels by GPU time over `what`, with their share of the dispatches' total.
fn kernel_table(what: &str, rows: &[KernelTime]) -> String {
    let total: f64 = rows.iter().map(|k| k.ms).sum();
    let calls: usize = rows.iter().map(|k| k.calls).sum();
    let mut out = format!(
        "\nGPU time by kernel, {what}: {total:.2} ms in {calls} dispatches\n\n\
         | kernel | dispatches | ms | share |\n|---|---:|---:|---:|\n"
    );
    for k in rows {
        out.push_str(&format!(
            "| {} | {} | {:.2} | {:.1} % |\n",
            k.kernel,
            k.calls,
            k.ms,
            100.0 * k.ms / total.max(1e-9)
        ));
    }
    out
}
