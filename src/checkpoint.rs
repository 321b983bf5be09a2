//! Checkpoints as safetensors: PyTorch layouts and names (conv `[out, in, kh, kw]`, linear
//! `[out, in]`, BN `weight/bias/running_mean/running_var`), latent f32 weights, optimizer state
//! under `optim.*`, and the full run configuration in the metadata. Files are written
//! atomically (temporary file in the same directory, then rename), so a crash never leaves a
//! half-written checkpoint where a good one was.

use std::collections::{BTreeMap, HashMap};

use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use thiserror::Error;

use crate::model::ModelConfig;

/// What can go wrong reading, writing or matching a checkpoint.
#[derive(Debug, Error)]
pub enum CheckpointError {
    #[error("{file}: cannot read or write: {source}")]
    Io {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}: not a valid safetensors file: {message}")]
    Format { file: String, message: String },
    #[error("{file}: tensor `{name}` has dtype {dtype}, expected F32")]
    Dtype {
        file: String,
        name: String,
        dtype: String,
    },
    #[error("checkpoint does not fit this model: first mismatch at tensor `{name}`: {problem}")]
    Mismatch { name: String, problem: String },
    #[error("tensor `{name}` holds {count} non-finite values (first at index {first}: {value}); refusing it")]
    NonFinite {
        name: String,
        count: usize,
        first: usize,
        value: f32,
    },
    #[error("{file}: {size} bytes is over the limit of {max} bytes for a checkpoint")]
    TooLarge { file: String, size: u64, max: u64 },
    #[error("{file}: metadata key `{key}` is malformed: {reason}")]
    Metadata {
        file: String,
        key: String,
        reason: String,
    },
}

/// One f32 tensor with its PyTorch-style name and shape.
#[derive(Clone, Debug, PartialEq)]
pub struct NamedTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// The run facts a checkpoint's metadata holds, typed: the one place that knows the key
/// names. Every save path writes it whole ([`CheckpointMeta::write_into`]); readers parse it
/// once ([`CheckpointMeta::read`]). Keys written by other tools are kept untouched.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CheckpointMeta {
    /// `model_config`: the model the tensors belong to (absent in foreign checkpoints).
    pub model: Option<ModelConfig>,
    /// `step`: optimizer steps taken.
    pub step: u64,
    /// `epoch`: epochs completed.
    pub epoch: usize,
    /// `seed` of the run.
    pub seed: Option<u64>,
    /// `train_config`: the run's training settings as JSON (parsed by `crate::train`).
    pub train_config: Option<String>,
    /// `firing_rates`: `(layer, rate)` measured in the last epoch (energy estimates).
    pub firing_rates: Vec<(String, f64)>,
}

/// Metadata key names, used only by [`CheckpointMeta`].
mod key {
    pub const FORMAT: &str = "format";
    pub const MODEL: &str = "model_config";
    pub const STEP: &str = "step";
    pub const EPOCH: &str = "epoch";
    pub const SEED: &str = "seed";
    pub const TIMESTEPS: &str = "timesteps";
    pub const TRAIN: &str = "train_config";
    pub const FIRING: &str = "firing_rates";
}

/// Largest checkpoint file read (checked from its size before reading): 4 GiB, about ten
/// times `resnet19` with optimizer state.
pub const MAX_CHECKPOINT_BYTES: u64 = 4 << 30;

/// The `format` value of bitspike checkpoints.
pub const FORMAT: &str = "bitspike-1";

impl CheckpointMeta {
    /// Parses the metadata of `ck` (read from `file`); a present but malformed value is an
    /// error naming its key and why, an absent one takes its default. Firing rates only feed
    /// the energy estimate: malformed ones are logged and dropped rather than making the
    /// checkpoint unusable.
    pub fn read(file: &str, ck: &Checkpoint) -> Result<Self, CheckpointError> {
        let bad = |key: &str, reason: String| CheckpointError::Metadata {
            file: file.into(),
            key: key.into(),
            reason,
        };
        let get = |key: &str| ck.metadata.get(key);
        let model = match get(key::MODEL) {
            Some(json) => {
                Some(ModelConfig::from_json(json).map_err(|e| bad(key::MODEL, e.to_string()))?)
            }
            None => None,
        };
        let number = |key: &str| -> Result<Option<u64>, CheckpointError> {
            get(key)
                .map(|v| {
                    v.parse()
                        .map_err(|_| bad(key, format!("`{v}` is not a whole number")))
                })
                .transpose()
        };
        let firing_rates = match get(key::FIRING).map(|json| serde_json::from_str(json)) {
            Some(Ok(rates)) => rates,
            Some(Err(e)) => {
                log::warn!("{file}: ignoring malformed firing_rates metadata: {e}");
                Vec::new()
            }
            None => Vec::new(),
        };
        Ok(Self {
            model,
            step: number(key::STEP)?.unwrap_or(0),
            epoch: number(key::EPOCH)?.unwrap_or(0) as usize,
            seed: number(key::SEED)?,
            train_config: get(key::TRAIN).cloned(),
            firing_rates,
        })
    }

    /// Writes every field into `metadata` (plus `format`, and `timesteps` for readers that
    /// do not parse the model JSON).
    pub fn write_into(&self, metadata: &mut BTreeMap<String, String>) {
        let mut put = |k: &str, v: String| {
            metadata.insert(k.to_string(), v);
        };
        put(key::FORMAT, FORMAT.into());
        if let Some(model) = &self.model {
            put(key::MODEL, model.to_json());
            put(key::TIMESTEPS, model.timesteps.to_string());
        }
        put(key::STEP, self.step.to_string());
        put(key::EPOCH, self.epoch.to_string());
        if let Some(seed) = self.seed {
            put(key::SEED, seed.to_string());
        }
        if let Some(train) = &self.train_config {
            put(key::TRAIN, train.clone());
        }
        put(
            key::FIRING,
            serde_json::to_string(&self.firing_rates).unwrap_or_else(|_| "[]".into()),
        );
    }
}

/// Tensors plus string metadata (see [`CheckpointMeta`] for what bitspike writes).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Checkpoint {
    pub tensors: Vec<NamedTensor>,
    pub metadata: BTreeMap<String, String>,
}

impl Checkpoint {
    /// Serialises to safetensors bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, CheckpointError> {
        let fmt = |e: safetensors::SafeTensorError| CheckpointError::Format {
            file: "<memory>".into(),
            message: e.to_string(),
        };
        let mut views = Vec::with_capacity(self.tensors.len());
        for t in &self.tensors {
            let bytes: &[u8] = bytemuck::cast_slice(&t.data);
            views.push((
                t.name.clone(),
                TensorView::new(Dtype::F32, t.shape.clone(), bytes).map_err(fmt)?,
            ));
        }
        let meta: HashMap<String, String> = self.metadata.clone().into_iter().collect();
        safetensors::serialize(views, Some(meta)).map_err(fmt)
    }

    /// Parses safetensors bytes (`file` names the source in errors). Tensors keep file order
    /// sorted by name; use [`Checkpoint::get`] to look one up.
    pub fn from_bytes(file: &str, bytes: &[u8]) -> Result<Self, CheckpointError> {
        let fmt = |e: safetensors::SafeTensorError| CheckpointError::Format {
            file: file.into(),
            message: e.to_string(),
        };
        let st = SafeTensors::deserialize(bytes).map_err(fmt)?;
        let (_, meta) = SafeTensors::read_metadata(bytes).map_err(fmt)?;
        let mut tensors = Vec::new();
        for (name, view) in st.tensors() {
            if view.dtype() != Dtype::F32 {
                return Err(CheckpointError::Dtype {
                    file: file.into(),
                    name,
                    dtype: format!("{:?}", view.dtype()),
                });
            }
            // safetensors data may be unaligned: copy via from_le_bytes, not a cast.
            let data = view
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            tensors.push(NamedTensor {
                name,
                shape: view.shape().to_vec(),
                data,
            });
        }
        tensors.sort_by(|a, b| a.name.cmp(&b.name));
        let metadata = meta
            .metadata()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        Ok(Self { tensors, metadata })
    }

    /// The tensor called `name`.
    pub fn get(&self, name: &str) -> Option<&NamedTensor> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// Checks that every expected `(name, shape)` is present with that shape and nothing else
    /// is; the error names the first mismatching tensor.
    pub fn check_fits(&self, expected: &[(String, Vec<usize>)]) -> Result<(), CheckpointError> {
        for (name, shape) in expected {
            match self.get(name) {
                None => {
                    return Err(CheckpointError::Mismatch {
                        name: name.clone(),
                        problem: "missing from the checkpoint".into(),
                    })
                }
                Some(t) if &t.shape != shape => {
                    return Err(CheckpointError::Mismatch {
                        name: name.clone(),
                        problem: format!(
                            "shape {:?} in the checkpoint, {:?} in the model",
                            t.shape, shape
                        ),
                    })
                }
                Some(_) => {}
            }
        }
        if let Some(extra) = self
            .tensors
            .iter()
            .find(|t| !expected.iter().any(|(n, _)| n == &t.name))
        {
            return Err(CheckpointError::Mismatch {
                name: extra.name.clone(),
                problem: "not part of this model".into(),
            });
        }
        Ok(())
    }

    /// Errors on the first tensor holding NaN or infinity, naming it: such a tensor is never
    /// loaded into a network and never saved.
    pub fn check_finite(&self) -> Result<(), CheckpointError> {
        for t in &self.tensors {
            if let Some(first) = t.data.iter().position(|v| !v.is_finite()) {
                return Err(CheckpointError::NonFinite {
                    name: t.name.clone(),
                    count: t.data.iter().filter(|v| !v.is_finite()).count(),
                    first,
                    value: t.data[first],
                });
            }
        }
        Ok(())
    }

    /// Writes atomically ([`write_atomically`]) after checking every tensor is finite.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn save(&self, path: &std::path::Path) -> Result<(), CheckpointError> {
        self.check_finite()?;
        write_atomically(path, &self.to_bytes()?)
    }

    /// Reads a checkpoint file, refusing one over [`MAX_CHECKPOINT_BYTES`] before reading it.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn load(path: &std::path::Path) -> Result<Self, CheckpointError> {
        let file = path.display().to_string();
        let io = |source| CheckpointError::Io {
            file: file.clone(),
            source,
        };
        let size = std::fs::metadata(path).map_err(io)?.len();
        if size > MAX_CHECKPOINT_BYTES {
            return Err(CheckpointError::TooLarge {
                file: file.clone(),
                size,
                max: MAX_CHECKPOINT_BYTES,
            });
        }
        let bytes = std::fs::read(path).map_err(io)?;
        Self::from_bytes(&file, &bytes)
    }
}

/// Writes `bytes` to `path` atomically: a temporary file next to it, written and fsynced, then
/// renamed over it, then the directory fsynced, so a crash, a kill or a full disk never leaves a
/// half-written file where a good one was, and a finished save survives a power cut. Temporary
/// files that earlier, killed writers left behind are removed first.
#[cfg(not(target_arch = "wasm32"))]
pub fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> Result<(), CheckpointError> {
    use std::io::Write;
    let io = |source| CheckpointError::Io {
        file: path.display().to_string(),
        source,
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(dir).map_err(io)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "checkpoint".into());
    remove_stale_temporaries(dir, &name);
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(io)
}

/// Removes the temporaries `.<name>.tmp-<pid>` of [`write_atomically`] in `dir` whose writer
/// process is gone (on Linux, no `/proc/<pid>`; elsewhere any other pid's file). Best effort:
/// a file that cannot be removed is left for the next save.
#[cfg(not(target_arch = "wasm32"))]
pub fn remove_stale_temporaries(dir: &std::path::Path, name: &str) {
    let prefix = format!(".{name}.tmp-");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let proc_fs = std::path::Path::new("/proc/self").exists();
    for entry in entries.flatten() {
        let file = entry.file_name().to_string_lossy().to_string();
        let Some(pid) = file.strip_prefix(&prefix).and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        let alive = pid == std::process::id()
            || (proc_fs && std::path::Path::new(&format!("/proc/{pid}")).exists());
        if !alive {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Makes a rename in `dir` durable (Unix: fsync of the directory; elsewhere a no-op).
#[cfg(not(target_arch = "wasm32"))]
fn sync_dir(dir: &std::path::Path) -> std::io::Result<()> {
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}
