//! Event-camera (neuromorphic) data sets: N-MNIST, DVS128 Gesture and CIFAR10-DVS, read from
//! their original files and integrated into T frames of 2 polarity channels per sample.
//!
//! - `nmnist.rs`: the N-MNIST binary files (5 bytes per event, 34 x 34);
//! - `aedat3.rs`: AEDAT 3.1 (DVS128 Gesture), its `*_labels.csv` and trial lists;
//! - `aedat2.rs`: jAER AEDAT 2.0 (CIFAR10-DVS);
//! - `frames.rs`: events to frames (SpikingJelly's `split_by='number'`), downsampling;
//! - `cache.rs`: the compact frames file written next to the data, checked against the data and
//!   the settings before it is used;
//! - `sets.rs`: the folder layouts, labels and train/test splits of the three sets;
//! - `synthetic.rs`: N-MNIST-shaped events made from static digits (tests, the README run).
//!
//! The frames land in an ordinary [`Dataset`](super::Dataset) whose `channels` are the T frames
//! of 2 polarities stacked frame-major (`[T, 2, H, W]` per sample, counts as `u8`), which the
//! `events` encoding (`Encoding::Events`) unstacks into one frame per timestep.
//!
//! Every decoder validates sizes against the bytes present before allocating and reports a
//! malformed file as an [`EventDataError`] naming the file and the problem; none panics.

mod aedat2;
mod aedat3;
mod cache;
mod frames;
mod nmnist;
mod sets;
pub mod synthetic;

pub use aedat2::decode_aedat2_cifar10dvs;
pub use aedat2::encode_aedat2_cifar10dvs;
pub use aedat3::encode_aedat3;
pub use aedat3::{decode_aedat3, parse_gesture_labels, parse_trial_list, GestureSegment};
pub use cache::{cache_file_name, decode_frames_file, encode_frames_file, FramesFile};
pub use frames::{events_to_frames, slice_bounds, FrameSettings};
pub use nmnist::decode_nmnist;
pub use nmnist::encode_nmnist;
#[cfg(not(target_arch = "wasm32"))]
pub use sets::load_event_datasets;
pub use sets::{
    event_datasets_from_files, expected_layout, CacheUse, EventData, EventSource, CIFAR10_CLASSES,
};

use thiserror::Error;

/// One address event: time in microseconds, pixel, polarity (true = ON, brighter).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    pub t: u64,
    pub x: u16,
    pub y: u16,
    pub on: bool,
}

/// Largest event file we read (a DVS Gesture recording is about 100 MB): 2 GiB.
pub const MAX_EVENT_FILE_BYTES: u64 = 2 << 30;
/// Most frames per sample.
pub const MAX_FRAMES: usize = 1024;
/// Largest frame data set held in memory (all samples, `T * 2 * H * W` bytes each): 6 GiB.
/// N-MNIST at T = 10 is 1.6 GB; DVS128 sets at 128 x 128 want downsampling or fewer frames.
pub const MAX_FRAME_BYTES: u64 = 6 << 30;

/// Which event data set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// N-MNIST: 10 digits, 34 x 34, `Train/<digit>/*.bin`, `Test/<digit>/*.bin`.
    NMnist,
    /// DVS128 Gesture: 11 gestures, 128 x 128, AEDAT 3.1 with `*_labels.csv`.
    DvsGesture,
    /// CIFAR10-DVS: 10 classes, 128 x 128, jAER AEDAT 2.0, one folder per class.
    Cifar10Dvs,
}

impl EventKind {
    /// The sensor `(width, height)`.
    pub fn sensor(self) -> (usize, usize) {
        match self {
            EventKind::NMnist => (34, 34),
            EventKind::DvsGesture | EventKind::Cifar10Dvs => (128, 128),
        }
    }

    /// Number of classes.
    pub fn classes(self) -> usize {
        match self {
            EventKind::NMnist | EventKind::Cifar10Dvs => 10,
            EventKind::DvsGesture => 11,
        }
    }

    /// The name used on the command line, in presets and in cache file names.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::NMnist => "nmnist",
            EventKind::DvsGesture => "dvsgesture",
            EventKind::Cifar10Dvs => "cifar10dvs",
        }
    }

    /// The kind named `name` (`nmnist`, `dvsgesture`, `cifar10dvs`).
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::NMnist, Self::DvsGesture, Self::Cifar10Dvs]
            .into_iter()
            .find(|k| k.name() == name)
    }

    fn code(self) -> u8 {
        match self {
            EventKind::NMnist => 1,
            EventKind::DvsGesture => 2,
            EventKind::Cifar10Dvs => 3,
        }
    }
}

/// A malformed event file, folder or frames file. Always names the file (or folder).
#[derive(Debug, Error)]
pub enum EventDataError {
    #[error("{file}: cannot read: {source}")]
    Io {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}: truncated: {message}")]
    Truncated { file: String, message: String },
    #[error("{file}: bad header: {message}")]
    BadHeader { file: String, message: String },
    #[error("{file}: event {index} at ({x}, {y}) lies outside the {width}x{height} sensor")]
    OutsideSensor {
        file: String,
        index: usize,
        x: u32,
        y: u32,
        width: usize,
        height: usize,
    },
    #[error("{file}: timestamps go backwards at event {index}: {found} us after {previous} us")]
    TimeBackwards {
        file: String,
        index: usize,
        previous: u64,
        found: u64,
    },
    #[error("{file}: {what} is {found}, the limit is {limit}")]
    Limit {
        file: String,
        what: &'static str,
        found: u64,
        limit: u64,
    },
    #[error("{file}, line {line}: {message}")]
    Labels {
        file: String,
        line: usize,
        message: String,
    },
    #[error("{0}")]
    Layout(String),
    #[error("{file}: {message}")]
    Cache { file: String, message: String },
    #[error("{0}")]
    Settings(String),
}

#[cfg(not(target_arch = "wasm32"))]
fn io_error(file: &str, source: std::io::Error) -> EventDataError {
    EventDataError::Io {
        file: file.to_string(),
        source,
    }
}

/// Refuses files over [`MAX_EVENT_FILE_BYTES`] before they are read or decoded.
fn check_file_size(file: &str, len: u64) -> Result<(), EventDataError> {
    if len > MAX_EVENT_FILE_BYTES {
        return Err(EventDataError::Limit {
            file: file.to_string(),
            what: "the file size in bytes",
            found: len,
            limit: MAX_EVENT_FILE_BYTES,
        });
    }
    Ok(())
}

/// Checks that `events` lie on a `width x height` sensor and that time never goes backwards.
fn check_events(
    file: &str,
    events: &[Event],
    width: usize,
    height: usize,
) -> Result<(), EventDataError> {
    let mut previous = 0u64;
    for (index, e) in events.iter().enumerate() {
        if e.x as usize >= width || e.y as usize >= height {
            return Err(EventDataError::OutsideSensor {
                file: file.to_string(),
                index,
                x: e.x as u32,
                y: e.y as u32,
                width,
                height,
            });
        }
        if e.t < previous {
            return Err(EventDataError::TimeBackwards {
                file: file.to_string(),
                index,
                previous,
                found: e.t,
            });
        }
        previous = e.t;
    }
    Ok(())
}
