//! The `bitspike` command line (native): `gui` (the default), `train`, `ablate`, `eval`,
//! `summary`, `info`, `bench`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

use bitspike::checkpoint::{Checkpoint, CheckpointMeta};
use bitspike::data::{self, Dataset, EmbeddedSplit, FileSetKind};
use bitspike::gpu::GpuContext;
use bitspike::model::summary::Summary;
use bitspike::model::{AgmmMode, LossKind, ModelConfig, PRESETS};
use bitspike::train::run::{train_in_dir, RunEvent, RunStart};
use bitspike::train::run_dir::RunDir;
use bitspike::train::{EpochRecord, OptimizerKind, TrainConfig, Trainer};

/// Set once stdout is closed (`bitspike train ... | head`): later output is dropped.
static STDOUT_CLOSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Writes the CLI's results to stdout. A closed stdout (`bitspike info | head -1`) does not
/// panic (as `print!` does) and does not stop the command: a training run piped into `head`
/// goes on, logging and checkpointing; only its printing stops. Other write errors are logged.
fn write_stdout(text: std::fmt::Arguments) {
    use std::io::Write as _;
    use std::sync::atomic::Ordering;
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_fmt(text).and_then(|()| stdout.flush()) {
        STDOUT_CLOSED.store(true, Ordering::Relaxed);
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("error: writing to stdout: {e}");
        }
    }
}

/// `println!` through [`write_stdout`].
macro_rules! out {
    ($($arg:tt)*) => {
        write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

#[derive(Parser)]
#[command(
    name = "bitspike",
    version,
    about = "Binary Spiking Neural Networks with AGMM on wgpu"
)]
struct Cli {
    /// What to do; without one, the desktop app opens.
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ViewArg {
    Training,
    Spikes,
    Draw,
    Weights,
    Model,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum DatasetKind {
    /// The embedded MNIST-10k (8,000 train / 2,000 test), no download needed.
    Mnist10k,
    /// IDX files (MNIST and look-alikes, raw or .gz) in --data DIR.
    Idx,
    /// CIFAR-10 binary batches (data_batch_*.bin, test_batch.bin) in --data DIR.
    Cifar10,
    /// CIFAR-100 binary files (train.bin, test.bin) in --data DIR.
    Cifar100,
    /// N-MNIST event files (Train/<digit>/*.bin, Test/<digit>/*.bin) in --data DIR.
    Nmnist,
    /// DVS128 Gesture AEDAT 3.1 recordings, labels and trial lists in --data DIR.
    Dvsgesture,
    /// CIFAR10-DVS AEDAT 2.0 files, one folder per class, in --data DIR.
    Cifar10dvs,
}

impl DatasetKind {
    /// The event data set this is, if it is one.
    fn events(self) -> Option<data::events::EventKind> {
        use data::events::EventKind;
        match self {
            DatasetKind::Nmnist => Some(EventKind::NMnist),
            DatasetKind::Dvsgesture => Some(EventKind::DvsGesture),
            DatasetKind::Cifar10dvs => Some(EventKind::Cifar10Dvs),
            _ => None,
        }
    }
}

#[derive(clap::Args, Debug)]
struct DataArgs {
    /// Which data set.
    #[arg(long, value_enum, default_value = "mnist10k")]
    dataset: DatasetKind,
    /// Directory with the data set's files (for idx / cifar10 / cifar100 and the event sets).
    #[arg(long)]
    data: Option<PathBuf>,
    #[command(flatten)]
    events: EventArgs,
}

/// How event data (nmnist, dvsgesture, cifar10dvs) becomes frames.
#[derive(clap::Args, Debug)]
struct EventArgs {
    /// Event data: frames per sample, one per timestep (default: the model's T; sets T).
    #[arg(long)]
    frames: Option<usize>,
    /// Event data: frame side after downsampling, at most the sensor's; sets the model's input
    /// size too (default: the model's input size, e.g. 128 -> 32 for dvsgesture, 128 -> 48 for
    /// cifar10dvs).
    #[arg(long)]
    frame_size: Option<usize>,
    /// Event data: clip event counts to 0/1 (binary frames).
    #[arg(long)]
    clip: bool,
    /// CIFAR10-DVS: shuffle each class with this seed before the 9:1 split (default: file order).
    #[arg(long)]
    split_seed: Option<u64>,
    /// Event data: where the frames cache goes (default: the --data directory).
    #[arg(long)]
    cache_dir: Option<PathBuf>,
    /// Event data: neither read nor write the frames cache.
    #[arg(long)]
    no_cache: bool,
    /// Event data: rebuild the frames from the events and overwrite the cache.
    #[arg(long)]
    rebuild_cache: bool,
}

#[derive(clap::Args, Debug)]
struct ModelArgs {
    /// Built-in model preset: mnist, resnet19, vgg11.
    #[arg(long, default_value = "mnist")]
    preset: String,
    /// Model config file (JSON), overrides --preset.
    #[arg(long)]
    config: Option<PathBuf>,
}

/// The settings of a training run other than optimizer, AGMM mode and seed: those of `train`,
/// and the fixed settings of every run of an `ablate` grid.
#[derive(clap::Args, Debug)]
struct RunArgs {
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    model: ModelArgs,
    #[arg(long, default_value_t = TrainConfig::default().epochs)]
    epochs: usize,
    /// Stop after this many optimizer steps in total.
    #[arg(long)]
    steps: Option<usize>,
    #[arg(long, default_value_t = TrainConfig::default().batch)]
    batch: usize,
    /// Timesteps T (overrides the model's).
    #[arg(short = 'T', long)]
    timesteps: Option<usize>,
    /// Peak learning rate (default: 1e-3 for Adam, 0.1 for SGD).
    #[arg(long)]
    lr: Option<f32>,
    #[arg(long, default_value_t = TrainConfig::default().momentum)]
    momentum: f32,
    /// Weight decay on conv/linear weights (default: 0 for Adam, 1e-4 for SGD).
    #[arg(long)]
    weight_decay: Option<f32>,
    /// Loss (overrides the model's).
    #[arg(long, value_enum)]
    loss: Option<LossKind>,
    /// Keep file order (no shuffling).
    #[arg(long)]
    no_shuffle: bool,
    /// Disable CIFAR augmentation (crop + flip).
    #[arg(long)]
    no_augment: bool,
    /// Use only the first N training samples (after loading).
    #[arg(long)]
    limit_train: Option<usize>,
    /// Use only the first N test samples.
    #[arg(long)]
    limit_test: Option<usize>,
    /// Also evaluate the test set after every N optimizer steps (logged to evals.jsonl; the
    /// ablation report's step-level convergence). Training itself is unchanged.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    eval_every: Option<u64>,
}

#[derive(Subcommand)]
enum Command {
    /// Open the desktop app (the default): train and look inside the network.
    Gui {
        /// Train --after-steps steps, capture the window to this PNG and exit.
        #[arg(long)]
        screenshot: Option<PathBuf>,
        /// The view to show (and capture).
        #[arg(long, value_enum, default_value = "training")]
        view: ViewArg,
        /// Training steps before the screenshot.
        #[arg(long, default_value_t = 20)]
        after_steps: usize,
        /// Start from this checkpoint (its model config comes with it).
        #[arg(long)]
        checkpoint: Option<PathBuf>,
        /// Screenshot mode: first train a run with this AGMM mode and overlay it (dashed).
        #[arg(long, value_enum)]
        compare_agmm: Option<AgmmMode>,
        /// Start with these event frames (a `.frames` file a run wrote) instead of MNIST-10k.
        #[arg(long)]
        frames_file: Option<PathBuf>,
        /// Show an ablation (a `bitspike ablate` grid directory or its report.json) in the
        /// training view: its curves with 95 % confidence bands.
        #[arg(long, value_name = "DIR")]
        ablation: Option<PathBuf>,
    },
    /// Train a BSNN (default: the mnist preset on the embedded MNIST-10k).
    Train {
        #[command(flatten)]
        run: RunArgs,
        #[arg(long, value_enum, default_value_t = OptimizerKind::default())]
        optimizer: OptimizerKind,
        /// AGMM mode (overrides the model's).
        #[arg(long, value_enum)]
        agmm: Option<AgmmMode>,
        #[arg(long, default_value_t = TrainConfig::default().seed)]
        seed: u64,
        /// Output directory for metrics.jsonl and last.safetensors.
        #[arg(long, default_value = "runs/latest")]
        out: PathBuf,
        /// Start from this checkpoint (weights, optimizer state, step, epoch).
        #[arg(long)]
        init: Option<PathBuf>,
        /// Also save the final checkpoint here.
        #[arg(long)]
        save: Option<PathBuf>,
        /// Start a fresh run in an --out directory that already holds one (its checkpoint and
        /// metrics are deleted); without it such a directory is refused.
        #[arg(long)]
        overwrite: bool,
    },
    /// Train a grid of runs (AGMM modes x optimizers x seeds, every other setting fixed) and
    /// report means with 95 % confidence intervals, paired differences and plots.
    Ablate {
        #[command(flatten)]
        run: RunArgs,
        /// AGMM modes to compare (comma-separated).
        #[arg(
            long,
            value_enum,
            value_delimiter = ',',
            default_value = "full,detached,off"
        )]
        agmm: Vec<AgmmMode>,
        /// Optimizers (comma-separated).
        #[arg(long, value_enum, value_delimiter = ',', default_value = "adam")]
        optimizer: Vec<OptimizerKind>,
        /// Seeds: a count N (seeds 1 to N) or a comma-separated list (e.g. 3,7,11). Runs of one
        /// seed start from the same weights and see the same batches.
        #[arg(long, default_value = "3")]
        seeds: String,
        /// Grid directory: one run directory per optimizer, mode and seed, the report and the
        /// plots. Rerunning the same command continues an interrupted grid.
        #[arg(long, required_unless_present = "report")]
        out: Option<PathBuf>,
        /// Only aggregate the grid in DIR (report.json, report.md, PNG plots); trains nothing.
        #[arg(long, value_name = "DIR", conflicts_with = "out")]
        report: Option<PathBuf>,
        /// Paired differences are taken against this AGMM mode (same optimizer and seed).
        #[arg(long, value_enum, default_value = "off")]
        baseline: AgmmMode,
        /// Convergence speed: the first epoch whose test accuracy reaches this many percent.
        #[arg(long, default_value_t = 90.0)]
        target_accuracy: f64,
    },
    /// Evaluate a checkpoint; optionally dump mean-over-time logits as .npy.
    Eval {
        #[arg(long)]
        checkpoint: PathBuf,
        #[command(flatten)]
        data: DataArgs,
        /// Only the first N test samples.
        #[arg(long)]
        limit: Option<usize>,
        /// Write logits (mean over t of o[t]) as float32 [N, classes] to this .npy file.
        #[arg(long)]
        dump_logits: Option<PathBuf>,
        #[arg(long, default_value_t = 64)]
        batch: usize,
    },
    /// Per-layer parameters, bits, MACs/ACs, model size and energy estimate.
    Summary {
        #[command(flatten)]
        model: ModelArgs,
        /// Summarise the model stored in this checkpoint (uses its measured firing rates).
        #[arg(long)]
        checkpoint: Option<PathBuf>,
        /// Event models: measure the input's event rate on this data set (--dataset, --data).
        #[command(flatten)]
        data: DataArgs,
    },
    /// Print the adapter, backend, limits and features bitspike runs on.
    Info,
    /// Print a model config as JSON (a preset, or a config file checked and normalised):
    /// the same file `--config`, the Python peer and the checkpoint metadata use.
    Config {
        #[command(flatten)]
        model: ModelArgs,
        /// Timesteps T (overrides the model's).
        #[arg(short = 'T', long)]
        timesteps: Option<usize>,
    },
    /// Time every kernel at the `mnist` preset's shapes (B=64, T=4) and square GEMMs;
    /// `bench e2e`: whole training steps and inference batches of a model.
    Bench {
        #[command(subcommand)]
        what: Option<BenchWhat>,
        /// Repetitions per kernel (the median is reported).
        #[arg(long, default_value_t = 7)]
        reps: usize,
        /// Only kernels whose name contains this text.
        #[arg(long)]
        filter: Option<String>,
    },
}

#[derive(Subcommand)]
enum BenchWhat {
    /// Whole training steps and inference batches of a model, with a breakdown by phase and
    /// by layer and the peak GPU memory (what `scripts/compare_e2e.py` puts next to PyTorch).
    E2e {
        #[command(flatten)]
        model: ModelArgs,
        /// Timesteps T (overrides the model's).
        #[arg(short = 'T', long)]
        timesteps: Option<usize>,
        /// Training batch size.
        #[arg(long, default_value_t = 64)]
        batch: usize,
        /// Inference batch size.
        #[arg(long, default_value_t = 256)]
        infer_batch: usize,
        /// Timed steps (the median is reported).
        #[arg(long, default_value_t = 10)]
        steps: usize,
        /// Untimed steps first.
        #[arg(long, default_value_t = 3)]
        warmup: usize,
        /// Also time every kernel of a training step and an inference batch on the GPU's own
        /// clock (timestamp queries, medians of up to 5; adapters without them refuse).
        #[arg(long)]
        kernels: bool,
        /// One JSON object instead of tables.
        #[arg(long)]
        json: bool,
    },
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    if let Err(e) = run(Cli::parse()) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let command = cli.command.unwrap_or(Command::Gui {
        screenshot: None,
        view: ViewArg::Training,
        after_steps: 20,
        checkpoint: None,
        compare_agmm: None,
        frames_file: None,
        ablation: None,
    });
    match command {
        Command::Gui {
            screenshot,
            view,
            after_steps,
            checkpoint,
            compare_agmm,
            frames_file,
            ablation,
        } => {
            let view = match view {
                ViewArg::Training => bitspike::app::View::Training,
                ViewArg::Spikes => bitspike::app::View::Spikes,
                ViewArg::Draw => bitspike::app::View::Draw,
                ViewArg::Weights => bitspike::app::View::Weights,
                ViewArg::Model => bitspike::app::View::Model,
            };
            bitspike::app::run(bitspike::app::AppOptions {
                screenshot,
                view,
                after_steps,
                checkpoint,
                compare_agmm,
                frames_file,
                ablation,
                ..Default::default()
            })?;
            Ok(())
        }
        Command::Info => info(),
        Command::Config { model, timesteps } => {
            let config = load_model_with(&model, timesteps)?;
            bitspike::model::plan(&config)?;
            out!("{}", config.to_json());
            Ok(())
        }
        Command::Bench {
            what:
                Some(BenchWhat::E2e {
                    model,
                    timesteps,
                    batch,
                    infer_batch,
                    steps,
                    warmup,
                    kernels,
                    json,
                }),
            ..
        } => {
            let config = load_model_with(&model, timesteps)?;
            let ctx = open_gpu()?;
            let options = bitspike::bench::e2e::E2eOptions {
                model: config,
                batch: batch.max(1),
                infer_batch: infer_batch.max(1),
                steps: steps.max(1),
                warmup,
                kernels,
            };
            let report = bitspike::bench::e2e::run(&ctx, &options)?;
            if json {
                out!("{}", serde_json::to_string(&report)?);
            } else {
                write_stdout(format_args!(
                    "{}",
                    bitspike::bench::e2e::format_report(&report)
                ));
            }
            Ok(())
        }
        Command::Bench {
            what: None,
            reps,
            filter,
        } => {
            let ctx = open_gpu()?;
            out!("adapter: {}", ctx.describe());
            let rows = bitspike::bench::run_all(&ctx, reps.max(1), filter.as_deref())?;
            out!("{}", bitspike::bench::format_table(&rows));
            Ok(())
        }
        Command::Summary {
            model,
            checkpoint,
            data,
        } => summary(&model, checkpoint.as_deref(), &data),
        Command::Eval {
            checkpoint,
            data,
            limit,
            dump_logits,
            batch,
        } => eval(&checkpoint, &data, limit, dump_logits.as_deref(), batch),
        Command::Train {
            run,
            optimizer,
            agmm,
            seed,
            out,
            init,
            save,
            overwrite,
        } => {
            // Every setting is checked before any data is read or memory allocated: the event
            // options first (they set T and the input size), then the model and the run.
            let (mut config, events) = run.model()?;
            if let Some(mode) = agmm {
                config.agmm.mode = mode;
            }
            let train_config = run.train_config(optimizer, seed);
            bitspike::model::plan(&config)?;
            train_config.validate()?;
            let (train_set, test_set) = run.datasets(events.as_ref())?;
            train(
                config,
                train_config,
                &train_set,
                &test_set,
                &out,
                init.as_deref(),
                save.as_deref(),
                overwrite,
                run.eval_every,
            )
        }
        Command::Ablate {
            run,
            agmm,
            optimizer,
            seeds,
            out,
            report,
            baseline,
            target_accuracy,
        } => {
            if !(0.0..=100.0).contains(&target_accuracy) {
                bail!("--target-accuracy {target_accuracy} is outside 0..=100 (percent)");
            }
            let options = bitspike::ablate::report::ReportOptions {
                baseline,
                target_accuracy: target_accuracy / 100.0,
            };
            match (report, out) {
                (Some(dir), _) => ablate_report(&dir, options),
                (None, Some(out)) => {
                    let seeds = parse_seeds(&seeds)?;
                    ablate(&run, agmm, optimizer, seeds, &out, options)
                }
                (None, None) => bail!("--out DIR (or --report DIR) is required"),
            }
        }
    }
}

/// An event data set's kind and the frame settings its options ask for.
type EventData = (data::events::EventKind, data::events::FrameSettings);

impl RunArgs {
    /// The model with `-T`, `--loss` and the event options applied, and for an event data set
    /// its kind and frame settings (checked here, before any event file is read).
    fn model(&self) -> anyhow::Result<(ModelConfig, Option<EventData>)> {
        if let (Some(t), Some(f)) = (self.timesteps, self.data.events.frames) {
            if t != f {
                bail!("-T {t} and --frames {f} disagree: event frame t is the input at timestep t");
            }
        }
        let mut config = load_model_with(&self.model, self.timesteps)?;
        if let Some(loss) = self.loss {
            config.loss = loss;
        }
        let events = self
            .data
            .dataset
            .events()
            .map(|kind| event_settings(&self.data, kind, &mut config).map(|s| (kind, s)))
            .transpose()?;
        Ok((config, events))
    }

    /// The run's training settings with `optimizer` (and its default learning rate and weight
    /// decay unless given) and `seed`.
    fn train_config(&self, optimizer: OptimizerKind, seed: u64) -> TrainConfig {
        let defaults = TrainConfig::for_optimizer(optimizer);
        TrainConfig {
            epochs: self.epochs,
            max_steps: self.steps,
            batch: self.batch,
            lr: self.lr.unwrap_or(defaults.lr),
            momentum: self.momentum,
            weight_decay: self.weight_decay.unwrap_or(defaults.weight_decay),
            seed,
            shuffle: !self.no_shuffle,
            augment: !self.no_augment
                && matches!(
                    self.data.dataset,
                    DatasetKind::Cifar10 | DatasetKind::Cifar100
                ),
            log_every: 5,
            ..defaults
        }
    }

    /// Train and test sets (event frames with `events` from [`RunArgs::model`]), cut to
    /// `--limit-train` / `--limit-test`.
    fn datasets(&self, events: Option<&EventData>) -> anyhow::Result<(Dataset, Dataset)> {
        let (mut train_set, mut test_set) = match events {
            Some((kind, settings)) => load_event_data(&self.data, *kind, settings)?,
            None => load_data(&self.data)?,
        };
        if let Some(n) = self.limit_train {
            train_set = train_set.truncated(n);
        }
        if let Some(n) = self.limit_test {
            test_set = test_set.truncated(n);
        }
        Ok((train_set, test_set))
    }

    /// The data options as an ablation records them.
    fn data_settings(&self, events: Option<&EventData>) -> bitspike::ablate::grid::DataSettings {
        bitspike::ablate::grid::DataSettings {
            dataset: format!("{:?}", self.data.dataset).to_lowercase(),
            data_dir: self.data.data.as_ref().map(|d| d.display().to_string()),
            limit_train: self.limit_train,
            limit_test: self.limit_test,
            frames: events.map(|(_, settings)| format!("{settings:?}")),
        }
    }
}

/// `--seeds`: a count N means seeds 1..=N; a comma-separated list means those seeds.
fn parse_seeds(text: &str) -> anyhow::Result<Vec<u64>> {
    let parse = |s: &str| {
        s.trim()
            .parse::<u64>()
            .with_context(|| format!("--seeds: '{}' is not a whole number", s.trim()))
    };
    if text.contains(',') {
        return text
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .map(parse)
            .collect();
    }
    let n = parse(text)?;
    if n == 0 {
        bail!("--seeds 0: at least one seed is needed");
    }
    Ok((1..=n).collect())
}

/// `bitspike ablate --out DIR`: trains the grid's unfinished runs, then writes the report.
fn ablate(
    run: &RunArgs,
    agmm: Vec<AgmmMode>,
    optimizers: Vec<OptimizerKind>,
    seeds: Vec<u64>,
    out: &Path,
    options: bitspike::ablate::report::ReportOptions,
) -> anyhow::Result<()> {
    use bitspike::ablate::grid;
    let (model, events) = run.model()?;
    let spec = grid::GridSpec {
        agmm,
        optimizers,
        seeds,
        train: run.train_config(OptimizerKind::default(), TrainConfig::default().seed),
        model,
        lr: run.lr,
        weight_decay: run.weight_decay,
        data: run.data_settings(events.as_ref()),
        eval_every: run.eval_every,
    };
    // Every setting, and every existing run directory, is checked before data or GPU.
    bitspike::model::plan(&spec.model)?;
    spec.validate()?;
    grid::check_existing(&spec, out)?;
    let (train_set, test_set) = run.datasets(events.as_ref())?;
    let ctx = open_gpu()?;
    let runs = spec.runs();
    let total_steps: u64 = runs
        .iter()
        .map(|(_, s)| s.train.total_steps(train_set.len()))
        .sum();
    eprintln!("adapter: {}", ctx.describe());
    eprintln!(
        "grid: {} runs ({} AGMM modes x {} optimizers x {} seeds), model {} (T = {}), {} train / \
         {} test samples, batch {}, {} steps in all, into {}",
        runs.len(),
        spec.agmm.len(),
        spec.optimizers.len(),
        spec.seeds.len(),
        spec.model.name,
        spec.model.timesteps,
        train_set.len(),
        test_set.len(),
        spec.train.batch,
        total_steps,
        out.display()
    );
    let mut progress = bitspike::ablate::progress::GridProgress::new(runs.len(), total_steps);
    let result = grid::run_grid(&ctx, &spec, &train_set, &test_set, out, &mut |event| {
        progress.handle(event)
    });
    progress.finish();
    result?;
    ablate_report(out, options)
}

/// `bitspike ablate --report DIR` (and the end of every grid): aggregates and writes.
fn ablate_report(
    dir: &Path,
    options: bitspike::ablate::report::ReportOptions,
) -> anyhow::Result<()> {
    let (report, files) = bitspike::ablate::grid::write_report(dir, options)?;
    out!("{}", report.to_markdown());
    for file in files {
        out!("written: {}", file.display());
    }
    Ok(())
}

fn open_gpu() -> anyhow::Result<GpuContext> {
    GpuContext::new_blocking().context("opening the GPU")
}

fn info() -> anyhow::Result<()> {
    let ctx = open_gpu()?;
    out!("adapter:  {}", ctx.describe());
    out!("features: {:?}", ctx.features);
    let l = &ctx.limits;
    out!("limits (the WebGPU defaults; natively the adapter's buffer sizes, unless BITSPIKE_LIMITS=webgpu):");
    for (name, value) in [
        (
            "max_storage_buffer_binding_size",
            l.max_storage_buffer_binding_size as u64,
        ),
        ("max_buffer_size", l.max_buffer_size),
        (
            "max_storage_buffers_per_shader_stage",
            l.max_storage_buffers_per_shader_stage as u64,
        ),
        (
            "max_compute_invocations_per_workgroup",
            l.max_compute_invocations_per_workgroup as u64,
        ),
        (
            "max_compute_workgroup_storage_size",
            l.max_compute_workgroup_storage_size as u64,
        ),
        (
            "max_compute_workgroups_per_dimension",
            l.max_compute_workgroups_per_dimension as u64,
        ),
    ] {
        out!("  {name:<40} {value}");
    }
    Ok(())
}

/// The model of `args` with its timesteps overridden by `-T` when given.
fn load_model_with(args: &ModelArgs, timesteps: Option<usize>) -> anyhow::Result<ModelConfig> {
    let mut config = load_model(args)?;
    if let Some(t) = timesteps {
        config.timesteps = t;
    }
    Ok(config)
}

fn load_model(args: &ModelArgs) -> anyhow::Result<ModelConfig> {
    if let Some(path) = &args.config {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        return ModelConfig::from_json(&text)
            .with_context(|| format!("parsing model config {}", path.display()));
    }
    ModelConfig::preset(&args.preset).with_context(|| {
        format!(
            "unknown preset '{}' (available: {})",
            args.preset,
            PRESETS.join(", ")
        )
    })
}

fn load_data(args: &DataArgs) -> anyhow::Result<(Dataset, Dataset)> {
    let kind = match args.dataset {
        DatasetKind::Mnist10k => {
            return Ok((
                data::embedded_mnist10k(EmbeddedSplit::Train)?,
                data::embedded_mnist10k(EmbeddedSplit::Test)?,
            ))
        }
        DatasetKind::Idx => FileSetKind::Idx,
        DatasetKind::Cifar10 => FileSetKind::Cifar10,
        DatasetKind::Cifar100 => FileSetKind::Cifar100,
        DatasetKind::Nmnist | DatasetKind::Dvsgesture | DatasetKind::Cifar10dvs => {
            bail!("event data sets are loaded by load_event_data")
        }
    };
    let dir = args
        .data
        .clone()
        .context("--data DIR is required for this --dataset")?;
    // Read only the files the loader can use (a data directory may hold archives too).
    let wanted = [
        "images",
        "labels",
        "data_batch",
        "test_batch",
        "train.bin",
        "test.bin",
    ];
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        if path.is_file() && wanted.iter().any(|w| name.contains(w)) {
            files.push((path.display().to_string(), data::read_file(&path)?));
        }
    }
    data::datasets_from_files(kind, &files).with_context(|| {
        format!(
            "loading {kind:?} from {} (expects {})",
            dir.display(),
            data::expected_files(kind)
        )
    })
}

/// Applies the event options to `model` and returns the frame settings, checked before any
/// file is read: `--frames T` sets the model's T and `--frame-size S` its input to S x S (the
/// defaults are the model's own), the model must take event frames (`"encoding": "events"`,
/// 2 polarity channels) of at most the sensor's size, and have room for the set's classes.
fn event_settings(
    args: &DataArgs,
    kind: data::events::EventKind,
    model: &mut ModelConfig,
) -> anyhow::Result<data::events::FrameSettings> {
    let e = &args.events;
    if model.encoding != bitspike::model::Encoding::Events || model.input[0] != 2 {
        bail!(
            "--dataset {} gives event frames (2 polarity channels, one frame per timestep), but \
             model '{}' takes {:?} input {:?}: use --preset {} or a config with \"encoding\": \
             \"events\" and 2 input channels",
            kind.name(),
            model.name,
            model.encoding,
            model.input,
            kind.name()
        );
    }
    if kind.classes() > model.classes {
        bail!(
            "{} has {} classes, model '{}' only {}",
            kind.name(),
            kind.classes(),
            model.name,
            model.classes
        );
    }
    if let Some(frames) = e.frames {
        model.timesteps = frames;
    }
    if let Some(side) = e.frame_size {
        model.input = [2, side, side];
    }
    let [_, height, width] = model.input;
    let settings = data::events::FrameSettings {
        frames: model.timesteps,
        height,
        width,
        clip: e.clip,
    };
    settings.check(kind.sensor())?;
    Ok(settings)
}

/// [`event_settings`] for a trained model (eval, summary of a checkpoint): `--frames` and
/// `--frame-size` may only repeat what the checkpoint was trained with.
fn checkpoint_event_settings(
    args: &DataArgs,
    kind: data::events::EventKind,
    model: &ModelConfig,
    path: &Path,
) -> anyhow::Result<data::events::FrameSettings> {
    let mut asked = model.clone();
    let settings = event_settings(args, kind, &mut asked)?;
    if asked.timesteps != model.timesteps || asked.input != model.input {
        bail!(
            "--frames {} / --frame-size {} differ from {}: trained with T = {} on {:?} frames",
            asked.timesteps,
            asked.input[1],
            path.display(),
            model.timesteps,
            model.input
        );
    }
    Ok(settings)
}

/// Loads an event data set as frames (`settings` from [`event_settings`]), through the
/// frames cache.
fn load_event_data(
    args: &DataArgs,
    kind: data::events::EventKind,
    settings: &data::events::FrameSettings,
) -> anyhow::Result<(Dataset, Dataset)> {
    use data::events::{load_event_datasets, CacheUse};
    let e = &args.events;
    let dir = args
        .data
        .clone()
        .context("--data DIR is required for this --dataset")?;
    let cache_dir = e.cache_dir.clone().unwrap_or_else(|| dir.clone());
    let cache = if e.no_cache {
        CacheUse::Off
    } else if e.rebuild_cache {
        CacheUse::Rebuild(cache_dir)
    } else {
        CacheUse::ReadWrite(cache_dir)
    };
    let start = std::time::Instant::now();
    let loaded =
        load_event_datasets(kind, &dir, settings, e.split_seed, &cache).with_context(|| {
            format!(
                "loading {} from {} (expects {})",
                kind.name(),
                dir.display(),
                data::events::expected_layout(kind)
            )
        })?;
    eprintln!(
        "{}: {} train / {} test samples, {} frames of 2x{}x{}{} ({}, {:.1}s)",
        kind.name(),
        loaded.train.len(),
        loaded.test.len(),
        settings.frames,
        settings.height,
        settings.width,
        if settings.clip { " clipped to 0/1" } else { "" },
        loaded.note,
        start.elapsed().as_secs_f64()
    );
    Ok((loaded.train, loaded.test))
}

#[allow(clippy::too_many_arguments)]
fn train(
    model: ModelConfig,
    config: TrainConfig,
    train_set: &Dataset,
    test_set: &Dataset,
    out: &Path,
    init: Option<&Path>,
    save: Option<&Path>,
    overwrite: bool,
    eval_every: Option<u64>,
) -> anyhow::Result<()> {
    // The checkpoint is read and checked against the model before the run directory changes.
    let init = init
        .map(|path| Ok::<_, anyhow::Error>((path, Checkpoint::load(path)?)))
        .transpose()?;
    let ctx = open_gpu()?;
    eprintln!("adapter: {}", ctx.describe());
    eprintln!(
        "model {} (T = {}, AGMM {:?}), {} train / {} test samples, batch {}, {:?} lr {}, seed {}",
        model.name,
        model.timesteps,
        model.agmm.mode,
        train_set.len(),
        test_set.len(),
        config.batch,
        config.optimizer,
        config.lr,
        config.seed
    );
    let mut trainer = Trainer::new(&ctx, &model, config.clone(), train_set.len())?;
    trainer.set_eval_every(eval_every);
    let run = RunDir::open(out)?;
    let start = match &init {
        Some((_, ck)) => RunStart::Resume(ck),
        None => RunStart::Fresh { overwrite },
    };
    let init_path = init.as_ref().map(|(path, _)| path.display().to_string());
    let every = config.log_every.max(1);
    let mut bar: Option<ProgressBar> = None;
    let outcome = train_in_dir(
        &ctx,
        &mut trainer,
        train_set,
        test_set,
        &run,
        start,
        &mut |event| match event {
            RunEvent::Resumed {
                epoch,
                step,
                dropped,
            } => eprintln!(
                "resumed from {} at epoch {epoch}, step {step}{}",
                init_path.as_deref().unwrap_or_default(),
                if dropped > 0 {
                    format!(" ({dropped} metrics lines after that epoch dropped)")
                } else {
                    String::new()
                }
            ),
            RunEvent::EpochStarted {
                epoch,
                epochs,
                steps,
            } => {
                let b = ProgressBar::new(steps as u64);
                b.set_style(
                    ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> "),
                );
                b.set_prefix(format!("{epoch}/{epochs}"));
                bar = Some(b);
            }
            RunEvent::Step(p) => {
                if let Some(b) = &bar {
                    if p.step_in_epoch % every == 0 || p.step_in_epoch == p.steps_in_epoch {
                        b.set_position(p.step_in_epoch as u64);
                        b.set_message(format!(
                            "step {} loss {:.4} acc {:.2}% {:.1} samples/s",
                            p.global_step,
                            p.epoch_loss,
                            100.0 * p.epoch_accuracy,
                            p.epoch_samples_per_second
                        ));
                    }
                }
            }
            RunEvent::StepEvals(evals) => {
                if let Some(b) = bar.take() {
                    b.finish_and_clear();
                }
                for e in evals {
                    out!(
                        "  step {:>6}  test loss {:.4} acc {:6.2}%",
                        e.step,
                        e.test_loss,
                        100.0 * e.test_accuracy
                    );
                }
            }
            RunEvent::EpochFinished(record) => {
                if let Some(b) = bar.take() {
                    b.finish_and_clear();
                }
                out!(
                    "epoch {:>3}  train loss {:.4} acc {:6.2}%  test loss {:.4} acc {:6.2}%  flips {:.4}%  {:.1} samples/s  {:.1}s",
                    record.epoch,
                    record.train_loss,
                    100.0 * record.train_accuracy,
                    record.test_loss,
                    100.0 * record.test_accuracy,
                    100.0 * record.flip_ratio_total,
                    record.samples_per_second,
                    record.epoch_seconds
                );
            }
        },
    );
    if let Some(b) = bar.take() {
        b.finish_and_clear();
    }
    let outcome = match &init {
        Some((path, _)) => outcome.with_context(|| format!("continuing {}", path.display()))?,
        None => outcome?,
    };
    if outcome.already_finished {
        out!(
            "nothing to train: {} is at epoch {}, step {}, already at the requested \
             --epochs {} / --steps; no checkpoint written",
            init_path.as_deref().unwrap_or_default(),
            trainer.epoch(),
            trainer.step(),
            config.epochs
        );
        return Ok(());
    }
    let (metrics_path, last) = (run.metrics_path(), run.checkpoint_path());
    let records = outcome.records;
    if let Some(path) = save {
        std::fs::copy(&last, path).with_context(|| format!("saving {}", path.display()))?;
    }
    print_summary_table(&records);
    out!(
        "metrics: {}  checkpoint: {}",
        metrics_path.display(),
        last.display()
    );
    Ok(())
}

fn print_summary_table(records: &[EpochRecord]) {
    let Some(last) = records.last() else { return };
    out!("\n| epoch | train loss | train acc | test loss | test acc | flip ratio | samples/s | s/epoch |");
    out!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in records {
        out!(
            "| {} | {:.4} | {:.2}% | {:.4} | {:.2}% | {:.4}% | {:.1} | {:.1} |",
            r.epoch,
            r.train_loss,
            100.0 * r.train_accuracy,
            r.test_loss,
            100.0 * r.test_accuracy,
            100.0 * r.flip_ratio_total,
            r.samples_per_second,
            r.epoch_seconds
        );
    }
    out!("\nlast epoch per layer:");
    for (name, rate) in &last.firing_rate {
        out!("  {name:<8} firing rate {rate:.4}");
    }
    for ((name, flip), (_, mean, var)) in last.flip_ratio.iter().zip(&last.grad_stats) {
        out!(
            "  {name:<8} flip ratio {:.4}%  grad mean {mean:.3e} var {var:.3e}",
            100.0 * flip
        );
    }
}

fn model_from_checkpoint(path: &Path, ck: &Checkpoint) -> anyhow::Result<ModelConfig> {
    CheckpointMeta::read(&path.display().to_string(), ck)?
        .model
        .with_context(|| {
            format!(
                "{}: no model_config in the checkpoint metadata",
                path.display()
            )
        })
}

fn eval(
    path: &Path,
    data_args: &DataArgs,
    limit: Option<usize>,
    dump: Option<&Path>,
    batch: usize,
) -> anyhow::Result<()> {
    let ck = Checkpoint::load(path)?;
    let model = model_from_checkpoint(path, &ck)?;
    bitspike::model::plan(&model).with_context(|| format!("{}: model_config", path.display()))?;
    let (_, mut test) = match data_args.dataset.events() {
        Some(kind) => {
            let settings = checkpoint_event_settings(data_args, kind, &model, path)?;
            load_event_data(data_args, kind, &settings)?
        }
        None => load_data(data_args)?,
    };
    if let Some(n) = limit {
        test = test.truncated(n);
    }
    if test.is_empty() {
        bail!("no test samples to evaluate");
    }
    let ctx = open_gpu()?;
    let config = TrainConfig {
        batch,
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(&ctx, &model, config, test.len())?;
    trainer
        .restore(&ctx, &ck)
        .with_context(|| format!("loading {}", path.display()))?;
    let start = std::time::Instant::now();
    let mut logits = Vec::new();
    let eval = trainer.evaluate(&ctx, &test, dump.is_some().then_some(&mut logits))?;
    let secs = start.elapsed().as_secs_f64();
    out!(
        "{} samples: accuracy {:.2}% ({} correct), loss {:.4}, {:.1} samples/s",
        eval.samples,
        100.0 * eval.accuracy(),
        eval.correct,
        eval.mean_loss(),
        test.len() as f64 / secs
    );
    if let Some(out) = dump {
        write_npy_f32(out, &logits, &[test.len(), model.classes])?;
        out!(
            "logits [{}, {}] written to {}",
            test.len(),
            model.classes,
            out.display()
        );
    }
    Ok(())
}

/// Writes a float32 little-endian C-order NumPy `.npy` (format 1.0).
fn write_npy_f32(path: &Path, data: &[f32], shape: &[usize]) -> anyhow::Result<()> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_text = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape_text}, }}");
    // Pad so that magic (6) + version (2) + length (2) + header + '\n' is a multiple of 64.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = Vec::with_capacity(10 + header.len() + 4 * data.len());
    bytes.extend_from_slice(b"\x93NUMPY\x01\x00");
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    for v in data {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

fn summary(
    args: &ModelArgs,
    checkpoint: Option<&Path>,
    data_args: &DataArgs,
) -> anyhow::Result<()> {
    let (mut model, mut rates) = match checkpoint {
        Some(path) => {
            let ck = Checkpoint::load(path)?;
            let meta = CheckpointMeta::read(&path.display().to_string(), &ck)?;
            let rates = Some(meta.firing_rates).filter(|r| !r.is_empty());
            (model_from_checkpoint(path, &ck)?, rates)
        }
        None => (load_model(args)?, None),
    };
    // Event input: the first layer does one accumulate per event and synapse; its rate is the
    // mean event count per input element and timestep, measured on the data when given.
    let mut event_rate = None;
    if let (Some(kind), Some(_)) = (data_args.dataset.events(), &data_args.data) {
        let settings = match checkpoint {
            Some(path) => checkpoint_event_settings(data_args, kind, &model, path)?,
            None => event_settings(data_args, kind, &mut model)?,
        };
        bitspike::model::plan(&model)?;
        let (train, _) = load_event_data(data_args, kind, &settings)?;
        let total: u64 = train.images.iter().map(|&v| v as u64).sum();
        let rate = total as f64 / train.images.len().max(1) as f64;
        out!(
            "event input: {rate:.4} events per input element and timestep ({} samples)",
            train.len()
        );
        event_rate = Some(rate);
        if rates.is_none() {
            out!("(no checkpoint: the other layers are counted at the dense bound, rate 1)");
            rates = Some(Vec::new());
        }
    }
    let s = Summary::new(&model)?;
    // The spikes entering row i are the outputs of row i-1 (measured per layer during training).
    let input_rates: Option<Vec<f64>> = rates.map(|rates| {
        s.rows
            .iter()
            .enumerate()
            .map(|(i, _)| {
                if i == 0 {
                    event_rate.unwrap_or(1.0)
                } else {
                    let prev = &s.rows[i - 1].name;
                    rates
                        .iter()
                        .find(|(n, _)| n == prev)
                        .map(|(_, r)| *r)
                        .unwrap_or(1.0)
                }
            })
            .collect()
    });
    out!(
        "model {} (T = {}, input {:?}, {} classes)\n",
        model.name,
        model.timesteps,
        model.input,
        model.classes
    );
    write_stdout(format_args!("{}", s.to_markdown(input_rates.as_deref())));
    Ok(())
}
