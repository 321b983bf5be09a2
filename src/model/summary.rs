//! Larq-style model summary (docs/method.md §10): per layer parameters, bits, MACs/ACs; model size
//! at 1 bit per binary weight vs all-fp32; a synaptic-operation energy estimate with the
//! commonly used 45 nm figures E_AC = 0.9 pJ and E_MAC = 4.6 pJ.

use super::config::{Encoding, LayerConfig, ModelConfig, PoolKind, Shortcut};
use super::plan::{plan, ModelError};

/// Energy of one accumulate at 45 nm (pJ).
pub const E_AC_PJ: f64 = 0.9;
/// Energy of one multiply-accumulate at 45 nm (pJ).
pub const E_MAC_PJ: f64 = 4.6;

/// One row of the summary.
#[derive(Clone, Debug, PartialEq)]
pub struct SummaryRow {
    pub name: String,
    pub kind: &'static str,
    pub binary: bool,
    pub output: [usize; 3],
    /// Binary (1-bit) weights.
    pub binary_params: u64,
    /// Full-precision (32-bit) parameters: FP weights, biases, BN affine.
    pub fp_params: u64,
    /// Synaptic operations per sample over all T timesteps, dense (every input active).
    pub ops: u64,
    /// True when the layer's input is spikes (operations are accumulates, scaled by firing).
    pub spike_input: bool,
}

impl SummaryRow {
    pub fn params(&self) -> u64 {
        self.binary_params + self.fp_params
    }
    pub fn bits(&self) -> u64 {
        self.binary_params + 32 * self.fp_params
    }
}

/// The whole summary.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    pub rows: Vec<SummaryRow>,
    pub timesteps: usize,
}

impl Summary {
    /// Builds the summary of a model config.
    pub fn new(config: &ModelConfig) -> Result<Self, ModelError> {
        let layers = plan(config)?;
        let t = config.timesteps as u64;
        // Poisson spikes and events drive the first layer with accumulates (one per event and
        // synapse), scaled by the input's event rate; direct (analog) input needs MACs.
        let mut spikes = matches!(config.encoding, Encoding::Poisson | Encoding::Events);
        let mut rows = Vec::new();
        for l in &layers {
            let [ci, _, _] = l.input;
            let [co, ho, wo] = l.output;
            let row = match &l.config {
                LayerConfig::Conv {
                    kernel,
                    binary,
                    shortcut,
                    ..
                } => {
                    let weights = (co * ci * kernel * kernel) as u64;
                    let mut ops = weights * (ho * wo) as u64 * t;
                    let mut bin = if *binary { weights } else { 0 };
                    let mut fp = if *binary { 0 } else { weights } + 2 * co as u64; // BN affine
                    if *shortcut == Shortcut::Downsample {
                        let sc = (co * ci) as u64;
                        bin += sc;
                        fp += 2 * co as u64;
                        ops += sc * (ho * wo) as u64 * t;
                    }
                    let row = SummaryRow {
                        name: l.name.clone(),
                        kind: "conv",
                        binary: *binary,
                        output: l.output,
                        binary_params: bin,
                        fp_params: fp,
                        ops,
                        spike_input: spikes,
                    };
                    spikes = true;
                    row
                }
                LayerConfig::Pool { .. } | LayerConfig::GlobalAvgPool => {
                    let avg = matches!(l.config, LayerConfig::GlobalAvgPool)
                        || config.pooling == PoolKind::Avg;
                    let row = SummaryRow {
                        name: l.name.clone(),
                        kind: l.kind(),
                        binary: false,
                        output: l.output,
                        binary_params: 0,
                        fp_params: 0,
                        ops: 0,
                        spike_input: spikes,
                    };
                    // Averaging spikes gives real values; max of spikes stays binary.
                    spikes = spikes && !avg;
                    row
                }
                LayerConfig::Linear { binary, bias, .. } => {
                    let inputs = l.input.iter().product::<usize>();
                    let weights = (co * inputs) as u64;
                    SummaryRow {
                        name: l.name.clone(),
                        kind: "linear",
                        binary: *binary,
                        output: l.output,
                        binary_params: if *binary { weights } else { 0 },
                        fp_params: if *binary { 0 } else { weights }
                            + if *bias { co as u64 } else { 0 },
                        ops: weights * t,
                        spike_input: spikes,
                    }
                }
            };
            rows.push(row);
        }
        Ok(Self {
            rows,
            timesteps: config.timesteps,
        })
    }

    /// Model size in bytes with binary weights at 1 bit and everything else at 32 bits.
    pub fn size_bytes_binary(&self) -> f64 {
        self.rows.iter().map(|r| r.bits()).sum::<u64>() as f64 / 8.0
    }

    /// Model size in bytes if every parameter were fp32.
    pub fn size_bytes_fp32(&self) -> f64 {
        self.rows.iter().map(|r| r.params()).sum::<u64>() as f64 * 4.0
    }

    /// Energy estimate per sample (joules). `input_rates[i]` is the measured firing rate of the
    /// spikes entering row `i` (None: dense upper bound, every spike present).
    pub fn energy_joules(&self, input_rates: Option<&[f64]>) -> (f64, f64, f64) {
        let (mut acs, mut macs) = (0.0, 0.0);
        for (i, r) in self.rows.iter().enumerate() {
            if r.spike_input {
                let rate = input_rates.and_then(|rs| rs.get(i).copied()).unwrap_or(1.0);
                acs += r.ops as f64 * rate;
            } else {
                macs += r.ops as f64;
            }
        }
        (acs, macs, (acs * E_AC_PJ + macs * E_MAC_PJ) * 1e-12)
    }

    /// The table as Markdown.
    pub fn to_markdown(&self, input_rates: Option<&[f64]>) -> String {
        let mut s = String::from("| layer | kind | weights | output | params | bits | ops/sample (T steps) |\n|---|---|---|---|---:|---:|---:|\n");
        for r in &self.rows {
            let op = if r.ops == 0 {
                "-".to_string()
            } else if r.spike_input {
                format!("{} AC", r.ops)
            } else {
                format!("{} MAC", r.ops)
            };
            s.push_str(&format!(
                "| {} | {} | {} | {}x{}x{} | {} | {} | {} |\n",
                r.name,
                r.kind,
                if r.params() == 0 {
                    "-"
                } else if r.binary {
                    "binary"
                } else {
                    "fp32"
                },
                r.output[0],
                r.output[1],
                r.output[2],
                r.params(),
                r.bits(),
                op
            ));
        }
        let (b, f) = (self.size_bytes_binary(), self.size_bytes_fp32());
        s.push_str(&format!(
            "\nmodel size: {:.1} KiB at 1 bit per binary weight vs {:.1} KiB all-fp32 ({:.1}x smaller)\n",
            b / 1024.0,
            f / 1024.0,
            f / b.max(1.0)
        ));
        let (acs, macs, joules) = self.energy_joules(input_rates);
        s.push_str(&format!(
            "energy per sample ({}): {:.3e} AC + {:.3e} MAC = {:.2} uJ (45 nm: E_AC = {E_AC_PJ} pJ, E_MAC = {E_MAC_PJ} pJ)\n",
            if input_rates.is_some() { "measured firing rates" } else { "dense upper bound, every input spiking" },
            acs,
            macs,
            joules * 1e6
        ));
        s
    }
}
