//! The `bitspike` command line (native). Subcommands: `info`, `bench`.

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use bitspike::gpu::GpuContext;

#[derive(Parser)]
#[command(
    name = "bitspike",
    version,
    about = "Binary Spiking Neural Networks with AGMM on wgpu"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the adapter, backend, limits and features bitspike runs on.
    Info,
    /// Time every kernel at the `mnist` preset's shapes (B=64, T=4) and square GEMMs.
    Bench {
        /// Repetitions per kernel (the median is reported).
        #[arg(long, default_value_t = 7)]
        reps: usize,
        /// Only kernels whose name contains this text.
        #[arg(long)]
        filter: Option<String>,
    },
}

fn main() -> anyhow::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = Cli::parse();
    match cli.command {
        Command::Info => {
            let ctx = GpuContext::new_blocking().context("opening the GPU")?;
            println!("adapter:  {}", ctx.describe());
            println!("features: {:?}", ctx.features);
            let l = &ctx.limits;
            println!("limits (requested WebGPU defaults):");
            println!(
                "  max_storage_buffer_binding_size    {}",
                l.max_storage_buffer_binding_size
            );
            println!("  max_buffer_size                    {}", l.max_buffer_size);
            println!(
                "  max_storage_buffers_per_shader_stage {}",
                l.max_storage_buffers_per_shader_stage
            );
            println!(
                "  max_compute_invocations_per_workgroup {}",
                l.max_compute_invocations_per_workgroup
            );
            println!(
                "  max_compute_workgroup_storage_size {}",
                l.max_compute_workgroup_storage_size
            );
            println!(
                "  max_compute_workgroups_per_dimension {}",
                l.max_compute_workgroups_per_dimension
            );
        }
        Command::Bench { reps, filter } => {
            let ctx = GpuContext::new_blocking().context("opening the GPU")?;
            println!("adapter: {}", ctx.describe());
            let rows = bitspike::bench::run_all(&ctx, reps.max(1), filter.as_deref())?;
            println!("{}", bitspike::bench::format_table(&rows));
        }
    }
    Ok(())
}
