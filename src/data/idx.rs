//! IDX files (the MNIST format): big-endian header `magic, dims...`, then u8 data.
//! Images: magic 0x00000803 with count, rows, cols. Labels: magic 0x00000801 with count.

use super::{read_sized, DataError, Dataset};

const IMAGES_MAGIC: u32 = 0x0000_0803;
const LABELS_MAGIC: u32 = 0x0000_0801;

fn be_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// Reads an IDX file (raw or gzip): checks the magic and the dimensions in the header, then
/// reads exactly the bytes the dimensions promise. Returns `(dims, data)`.
fn read_idx(
    file: &str,
    bytes: &[u8],
    magic: u32,
    dims: usize,
    what: &'static str,
) -> Result<(Vec<u64>, Vec<u8>), DataError> {
    let header_len = 4 + 4 * dims;
    let mut parsed = Vec::new();
    let (_, data) = read_sized(file, bytes, header_len, |header| {
        // The magic first: a swapped or foreign file should say so, not "truncated".
        if header.len() >= 4 && be_u32(header, 0) != magic {
            return Err(DataError::WrongMagic {
                file: file.into(),
                found: be_u32(header, 0),
                expected: magic,
                what,
            });
        }
        if header.len() < header_len {
            return Err(DataError::Truncated {
                file: file.into(),
                expected: header_len as u64,
                found: header.len() as u64,
            });
        }
        parsed = (0..dims).map(|d| be_u32(header, 4 + 4 * d) as u64).collect();
        // Three u32 dimensions multiply to at most 2^96: checked, then capped by read_sized.
        parsed
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| DataError::BadDimensions {
                file: file.into(),
                message: format!("dimensions {parsed:?} overflow"),
            })
    })?;
    Ok((parsed, data))
}

/// Decodes an IDX image file (raw or gzip). Returns `(count, rows, cols, pixels)`.
pub fn decode_idx_images(
    file: &str,
    bytes: &[u8],
) -> Result<(usize, usize, usize, Vec<u8>), DataError> {
    let (dims, pixels) = read_idx(file, bytes, IMAGES_MAGIC, 3, "IDX images: u8, 3 dimensions")?;
    let (count, rows, cols) = (dims[0] as usize, dims[1] as usize, dims[2] as usize);
    if rows == 0 || cols == 0 || rows > 4096 || cols > 4096 {
        return Err(DataError::BadDimensions {
            file: file.into(),
            message: format!("{rows}x{cols} images"),
        });
    }
    Ok((count, rows, cols, pixels))
}

/// Decodes an IDX label file (raw or gzip).
pub fn decode_idx_labels(file: &str, bytes: &[u8]) -> Result<Vec<u8>, DataError> {
    Ok(read_idx(file, bytes, LABELS_MAGIC, 1, "IDX labels: u8, 1 dimension")?.1)
}

/// Builds a data set from an IDX image file and an IDX label file (bytes already read).
/// Labels must lie in `0..classes`.
pub fn load_idx_pair(
    images_file: &str,
    images: &[u8],
    labels_file: &str,
    labels: &[u8],
    classes: usize,
) -> Result<Dataset, DataError> {
    let (count, rows, cols, pixels) = decode_idx_images(images_file, images)?;
    let labels = decode_idx_labels(labels_file, labels)?;
    if labels.len() != count {
        return Err(DataError::CountMismatch {
            images_file: images_file.into(),
            images: count,
            labels_file: labels_file.into(),
            labels: labels.len(),
        });
    }
    if let Some((index, &label)) = labels
        .iter()
        .enumerate()
        .find(|(_, &l)| l as usize >= classes)
    {
        return Err(DataError::BadLabel {
            file: labels_file.into(),
            index,
            label,
            classes,
        });
    }
    Ok(Dataset {
        images: pixels,
        labels,
        channels: 1,
        height: rows,
        width: cols,
        classes,
    })
}
