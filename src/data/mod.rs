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
/// Largest data file read from disk (checked from its size before reading): 2 GiB. The
/// largest common set read this way, CIFAR-100's `train.bin`, is 154 MB.
pub const MAX_FILE_BYTES: u64 = 2 << 30;

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
    #[error("{file}: {size} bytes is over the limit of {max} bytes for a data file")]
    TooLarge { file: String, size: u64, max: u64 },
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

/// True when `bytes` start with the gzip magic.
pub fn is_gzip(bytes: &[u8]) -> bool {
    bytes.len() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b
}

/// Decompresses `bytes` if they start with the gzip magic (else borrows them), never past
/// [`MAX_DECOMPRESSED_BYTES`]. Loaders whose header states the size use
/// [`read_sized`] instead, which stops at the size the header promises.
pub fn maybe_gunzip<'a>(
    file: &str,
    bytes: &'a [u8],
) -> Result<std::borrow::Cow<'a, [u8]>, DataError> {
    if !is_gzip(bytes) {
        return Ok(std::borrow::Cow::Borrowed(bytes));
    }
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes)
        .take(MAX_DECOMPRESSED_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|e| gzip_error(file, e))?;
    if out.len() as u64 > MAX_DECOMPRESSED_BYTES {
        return Err(DataError::Gzip {
            file: file.to_string(),
            message: format!("decompresses to more than {MAX_DECOMPRESSED_BYTES} bytes"),
        });
    }
    Ok(std::borrow::Cow::Owned(out))
}

fn gzip_error(file: &str, e: std::io::Error) -> DataError {
    DataError::Gzip {
        file: file.to_string(),
        message: e.to_string(),
    }
}

/// Reads a file's header of `header_len` bytes, asks `payload_len` how many bytes of data the
/// header promises (it validates the header and errors on nonsense), then reads exactly that
/// many, raw or through gzip: memory grows only with data actually present, never past the
/// promise or [`MAX_DECOMPRESSED_BYTES`], and a short or long file is an error naming it.
/// Returns `(header, payload)`.
pub fn read_sized(
    file: &str,
    bytes: &[u8],
    header_len: usize,
    payload_len: impl FnOnce(&[u8]) -> Result<u64, DataError>,
) -> Result<(Vec<u8>, Vec<u8>), DataError> {
    use std::io::Read;
    let mut reader: Box<dyn Read + '_> = if is_gzip(bytes) {
        Box::new(flate2::read::MultiGzDecoder::new(bytes))
    } else {
        Box::new(bytes)
    };
    let io = |e: std::io::Error| {
        if is_gzip(bytes) {
            gzip_error(file, e)
        } else {
            DataError::Io {
                file: file.to_string(),
                source: e,
            }
        }
    };
    let mut header = Vec::with_capacity(header_len);
    (&mut reader)
        .take(header_len as u64)
        .read_to_end(&mut header)
        .map_err(io)?;
    let expected = payload_len(&header)?;
    if expected > MAX_DECOMPRESSED_BYTES {
        return Err(DataError::BadDimensions {
            file: file.to_string(),
            message: format!(
                "the header promises {expected} bytes of data, over the limit of \
                 {MAX_DECOMPRESSED_BYTES}"
            ),
        });
    }
    // Grow with the data actually read (a lying header does not reserve its promise).
    let mut payload = Vec::with_capacity(expected.min(64 << 20) as usize);
    (&mut reader)
        .take(expected + 1)
        .read_to_end(&mut payload)
        .map_err(io)?;
    let found = payload.len() as u64;
    if found < expected {
        return Err(DataError::Truncated {
            file: file.to_string(),
            expected,
            found,
        });
    }
    if found > expected {
        // Count the rest without keeping it (bounded by the compressed input).
        let rest = std::io::copy(&mut reader, &mut std::io::sink()).map_err(io)?;
        return Err(DataError::TrailingBytes {
            file: file.to_string(),
            expected,
            found: found - expected + rest,
        });
    }
    Ok((header, payload))
}

/// Reads a whole file (native only; the web passes bytes from a file picker).
#[cfg(not(target_arch = "wasm32"))]
/// Refuses files over [`MAX_FILE_BYTES`] before reading a byte of them.
#[cfg(not(target_arch = "wasm32"))]
pub fn read_file(path: &std::path::Path) -> Result<Vec<u8>, DataError> {
    let file = path.display().to_string();
    let io = |source| DataError::Io {
        file: file.clone(),
        source,
    };
    let size = std::fs::metadata(path).map_err(io)?.len();
    if size > MAX_FILE_BYTES {
        return Err(DataError::TooLarge {
            file: file.clone(),
            size,
            max: MAX_FILE_BYTES,
        });
    }
    std::fs::read(path).map_err(io)
}
