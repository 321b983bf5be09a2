//! The frames file: a data set's integrated frames, written next to the event data (or in a
//! chosen cache directory) so later runs skip parsing events, and loadable by itself (the web
//! app, which cannot walk folders, takes it from the file picker).
//!
//! Layout (little-endian): magic `BSFRAMES`, version (u32), data set kind (u8), clip (u8), has
//! split seed (u8), pad (u8), frames T, height, width, classes (u32 each), split seed (u64),
//! source fingerprint (u64: file names and sizes of the events it was built from), train and
//! test sample counts (u64 each), then one gzip stream: train labels (u8), train frames
//! (`[N, T, 2, H, W]` u8), test labels, test frames. Every size is checked against the header
//! before anything is allocated, and the stream must decompress to exactly that size.

use std::io::{Read, Write};

use super::{EventDataError, EventKind, FrameSettings, MAX_FRAMES, MAX_FRAME_BYTES};
use crate::data::Dataset;

const MAGIC: &[u8; 8] = b"BSFRAMES";
const VERSION: u32 = 1;
const HEADER_BYTES: usize = 64;

/// A decoded frames file.
#[derive(Clone, Debug, PartialEq)]
pub struct FramesFile {
    pub kind: EventKind,
    pub settings: FrameSettings,
    /// The seed of the train/test split (None: file order, SpikingJelly's default).
    pub split_seed: Option<u64>,
    /// Fingerprint of the event files the frames came from (names and sizes).
    pub fingerprint: u64,
    pub train: Dataset,
    pub test: Dataset,
}

/// The cache file name for a data set and its settings, e.g.
/// `bitspike-nmnist-T10-34x34-counts.frames`.
pub fn cache_file_name(
    kind: EventKind,
    settings: &FrameSettings,
    split_seed: Option<u64>,
) -> String {
    format!(
        "bitspike-{}-T{}-{}x{}-{}{}.frames",
        kind.name(),
        settings.frames,
        settings.height,
        settings.width,
        if settings.clip { "binary" } else { "counts" },
        split_seed.map(|s| format!("-split{s}")).unwrap_or_default()
    )
}

/// Serialises frames (gzip, fast: event frames are mostly zeros and compress 10-50x).
pub fn encode_frames_file(f: &FramesFile) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_BYTES);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&[
        f.kind.code(),
        f.settings.clip as u8,
        f.split_seed.is_some() as u8,
        0,
    ]);
    for v in [
        f.settings.frames,
        f.settings.height,
        f.settings.width,
        f.train.classes,
    ] {
        out.extend_from_slice(&(v as u32).to_le_bytes());
    }
    for v in [
        f.split_seed.unwrap_or(0),
        f.fingerprint,
        f.train.len() as u64,
        f.test.len() as u64,
    ] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    debug_assert_eq!(out.len(), HEADER_BYTES);
    let mut gz = flate2::write::GzEncoder::new(out, flate2::Compression::fast());
    let write = |gz: &mut flate2::write::GzEncoder<Vec<u8>>| -> std::io::Result<()> {
        for d in [&f.train, &f.test] {
            gz.write_all(&d.labels)?;
            gz.write_all(&d.images)?;
        }
        Ok(())
    };
    // Writing into a Vec cannot fail.
    let _ = write(&mut gz);
    gz.finish().unwrap_or_default()
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// Decodes a frames file, validating the header before allocating.
pub fn decode_frames_file(file: &str, bytes: &[u8]) -> Result<FramesFile, EventDataError> {
    let bad = |message: String| EventDataError::Cache {
        file: file.to_string(),
        message,
    };
    if bytes.len() < HEADER_BYTES || &bytes[..8] != MAGIC {
        return Err(bad(format!(
            "not a bitspike frames file (no `BSFRAMES` header of {HEADER_BYTES} bytes)"
        )));
    }
    let version = le_u32(bytes, 8);
    if version != VERSION {
        return Err(bad(format!(
            "frames file version {version}, this bitspike reads version {VERSION}"
        )));
    }
    let kind = [
        EventKind::NMnist,
        EventKind::DvsGesture,
        EventKind::Cifar10Dvs,
    ]
    .into_iter()
    .find(|k| k.code() == bytes[12])
    .ok_or_else(|| bad(format!("unknown data set code {}", bytes[12])))?;
    let (clip, has_seed) = (bytes[13] != 0, bytes[14] != 0);
    let (frames, height, width, classes) = (
        le_u32(bytes, 16) as usize,
        le_u32(bytes, 20) as usize,
        le_u32(bytes, 24) as usize,
        le_u32(bytes, 28) as usize,
    );
    let seed = le_u64(bytes, 32);
    let fingerprint = le_u64(bytes, 40);
    let (n_train, n_test) = (le_u64(bytes, 48), le_u64(bytes, 56));
    let settings = FrameSettings {
        frames,
        height,
        width,
        clip,
    };
    settings
        .check(kind.sensor())
        .map_err(|e| bad(format!("header: {e}")))?;
    if classes != kind.classes() {
        return Err(bad(format!(
            "header says {classes} classes, {} has {}",
            kind.name(),
            kind.classes()
        )));
    }
    let per = settings.sample_bytes() as u64 + 1;
    let expected = n_train
        .checked_add(n_test)
        .and_then(|n| n.checked_mul(per))
        .filter(|&b| b <= MAX_FRAME_BYTES)
        .ok_or_else(|| {
            bad(format!(
                "header promises {n_train} + {n_test} samples of {per} bytes, over the \
                 {MAX_FRAME_BYTES}-byte limit"
            ))
        })?;
    debug_assert!(frames <= MAX_FRAMES);
    let mut payload = Vec::new();
    flate2::read::GzDecoder::new(&bytes[HEADER_BYTES..])
        .take(expected + 1)
        .read_to_end(&mut payload)
        .map_err(|e| bad(format!("frames stream is not valid gzip: {e}")))?;
    if payload.len() as u64 != expected {
        return Err(bad(format!(
            "truncated or padded: the header promises {expected} bytes of labels and frames, \
             the stream holds {}{}",
            payload.len().min(expected as usize),
            if payload.len() as u64 > expected {
                "+"
            } else {
                ""
            }
        )));
    }
    let mut at = 0usize;
    let mut take = |count: u64, what: &str| -> Result<Dataset, EventDataError> {
        let count = count as usize;
        let labels = payload[at..at + count].to_vec();
        at += count;
        let len = count * settings.sample_bytes();
        let images = payload[at..at + len].to_vec();
        at += len;
        if let Some((i, l)) = labels
            .iter()
            .enumerate()
            .find(|(_, &l)| l as usize >= classes)
        {
            return Err(bad(format!(
                "{what} label {l} at sample {i} outside 0..{classes}"
            )));
        }
        Ok(Dataset {
            images,
            labels,
            channels: 2 * frames,
            height,
            width,
            classes,
        })
    };
    let train = take(n_train, "train")?;
    let test = take(n_test, "test")?;
    Ok(FramesFile {
        kind,
        settings,
        split_seed: has_seed.then_some(seed),
        fingerprint,
        train,
        test,
    })
}
