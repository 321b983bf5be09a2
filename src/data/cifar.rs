//! CIFAR-10 / CIFAR-100 binary format: fixed-size records of label byte(s) followed by a
//! 3x32x32 channel-planar image. CIFAR-10: `data_batch_{1..5}.bin` / `test_batch.bin`, one
//! label byte. CIFAR-100: `train.bin` / `test.bin`, a coarse and a fine label byte (we use fine).

use super::{DataError, Dataset};

const IMAGE_BYTES: usize = 3 * 32 * 32;

/// Which CIFAR variant a file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CifarKind {
    Cifar10,
    Cifar100,
}

impl CifarKind {
    fn label_bytes(self) -> usize {
        match self {
            CifarKind::Cifar10 => 1,
            CifarKind::Cifar100 => 2,
        }
    }

    /// Number of classes.
    pub fn classes(self) -> usize {
        match self {
            CifarKind::Cifar10 => 10,
            CifarKind::Cifar100 => 100,
        }
    }
}

/// Decodes and concatenates CIFAR binary files given as `(file name, bytes)`.
pub fn load_cifar(kind: CifarKind, files: &[(String, Vec<u8>)]) -> Result<Dataset, DataError> {
    if files.is_empty() {
        return Err(DataError::Missing(format!(
            "{kind:?}: no batch files given"
        )));
    }
    let record = kind.label_bytes() + IMAGE_BYTES;
    let classes = kind.classes();
    let total: usize = files.iter().map(|(_, b)| b.len() / record).sum();
    let mut images = Vec::with_capacity(total * IMAGE_BYTES);
    let mut labels = Vec::with_capacity(total);
    for (file, bytes) in files {
        if bytes.is_empty() || bytes.len() % record != 0 {
            return Err(DataError::RecordSize {
                file: file.clone(),
                size: bytes.len() as u64,
                record: record as u64,
                what: if kind == CifarKind::Cifar10 {
                    "CIFAR-10: 1 label + 3072 pixels"
                } else {
                    "CIFAR-100: 2 labels + 3072 pixels"
                },
            });
        }
        for (index, rec) in bytes.chunks_exact(record).enumerate() {
            let label = rec[kind.label_bytes() - 1];
            if label as usize >= classes {
                return Err(DataError::BadLabel {
                    file: file.clone(),
                    index,
                    label,
                    classes,
                });
            }
            labels.push(label);
            images.extend_from_slice(&rec[kind.label_bytes()..]);
        }
    }
    Ok(Dataset {
        images,
        labels,
        channels: 3,
        height: 32,
        width: 32,
        classes,
    })
}
