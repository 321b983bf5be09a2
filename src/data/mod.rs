//! Data sets: IDX (MNIST and look-alikes, raw or gzip), CIFAR-10/100 binary batches, and the
//! embedded MNIST-10k default. Loaders validate every header against the bytes actually present
//! before allocating, and report malformed input as a [`DataError`] naming the file.

mod batch;
mod cifar;
mod embedded;
pub mod events;
mod files;
mod idx;

pub use batch::{epoch_order, make_batch, HostBatch, InputSpec};
pub use cifar::{load_cifar, CifarKind};
pub use embedded::{embedded_mnist10k, EmbeddedSplit};
pub use files::{datasets_from_files, expected_files, FileSetKind, NamedBytes};
pub use idx::{decode_idx_images, decode_idx_labels, load_idx_pair};

use thiserror::Error;

/// Largest decompressed file we accept (a gzip bomb guard): 2 GiB.
pub const MAX_DECOMPRESSED_BYTES: u64 = 2 << 30;

/// A malformed or unreadable data file. Always names the file.
#[derive(Debug, Error)]
pub enum DataError {
    #[error("{file}: cannot read: {source}")]
    Io {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}: not a valid gzip stream: {message}")]
    Gzip { file: String, message: String },
    #[error("{file}: wrong magic number 0x{found:08x}, expected 0x{expected:08x} ({what})")]
    WrongMagic {
        file: String,
        found: u32,
        expected: u32,
        what: &'static str,
    },
    #[error("{file}: truncated: header promises {expected} bytes of data, file has {found}")]
    Truncated {
        file: String,
        expected: u64,
        found: u64,
    },
    #[error("{file}: {found} trailing bytes after the {expected} bytes the header describes")]
    TrailingBytes {
        file: String,
        expected: u64,
        found: u64,
    },
    #[error("{file}: bad dimensions: {message}")]
    BadDimensions { file: String, message: String },
    #[error("images ({images_file}: {images}) and labels ({labels_file}: {labels}) disagree on the sample count")]
    CountMismatch {
        images_file: String,
        images: usize,
        labels_file: String,
        labels: usize,
    },
    #[error("{file}: label {label} at sample {index} is outside 0..{classes}")]
    BadLabel {
        file: String,
        index: usize,
        label: u8,
        classes: usize,
    },
    #[error("{file}: size {size} bytes is not a whole number of {record}-byte records ({what})")]
    RecordSize {
        file: String,
        size: u64,
        record: u64,
        what: &'static str,
    },
    #[error("no data files found: {0}")]
    Missing(String),
}

/// An image classification data set held as raw bytes (`[count, channels, height, width]`,
/// channel-planar like PyTorch tensors) plus labels.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    pub images: Vec<u8>,
    pub labels: Vec<u8>,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub classes: usize,
}

impl Dataset {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when there are no samples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Bytes per image (`channels * height * width`).
    pub fn image_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// The raw bytes of sample `i`.
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.image_len();
        &self.images[i * n..(i + 1) * n]
    }

    /// The first `n` samples (all if `n >= len`).
    pub fn truncated(mut self, n: usize) -> Self {
        let n = n.min(self.len());
        self.images.truncate(n * self.image_len());
        self.labels.truncate(n);
        self
    }
}

/// Decompresses `bytes` if they start with the gzip magic, with the size guard.
pub fn maybe_gunzip(file: &str, bytes: &[u8]) -> Result<Vec<u8>, DataError> {
    if bytes.len() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b {
        use std::io::Read;
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(bytes)
            .take(MAX_DECOMPRESSED_BYTES + 1)
            .read_to_end(&mut out)
            .map_err(|e| DataError::Gzip {
                file: file.to_string(),
                message: e.to_string(),
            })?;
        if out.len() as u64 > MAX_DECOMPRESSED_BYTES {
            return Err(DataError::Gzip {
                file: file.to_string(),
                message: format!("decompresses to more than {MAX_DECOMPRESSED_BYTES} bytes"),
            });
        }
        Ok(out)
    } else {
        Ok(bytes.to_vec())
    }
}

/// Reads a whole file (native only; the web passes bytes from a file picker).
#[cfg(not(target_arch = "wasm32"))]
pub fn read_file(path: &std::path::Path) -> Result<Vec<u8>, DataError> {
    std::fs::read(path).map_err(|source| DataError::Io {
        file: path.display().to_string(),
        source,
    })
}
