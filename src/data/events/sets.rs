//! The three data sets' folder layouts, labels and train/test splits, built into frames from
//! a folder (native, with the frames cache) or from files in memory (the browser's picker).
//!
//! - N-MNIST: `Train/<digit>/*.bin` and `Test/<digit>/*.bin` (the unzipped `Train.zip` and
//!   `Test.zip`), one sample per file, label = the digit folder; samples in file-name order (the
//!   names are MNIST indices), so the digits interleave.
//! - DVS128 Gesture: `trials_to_train.txt`, `trials_to_test.txt`, `userNN_<lighting>.aedat` and
//!   `userNN_<lighting>_labels.csv` (the unpacked `DvsGesture.tar.gz`, in the folder itself or in
//!   `DvsGesture/`); one sample per labelled gesture, events with `start <= t < end`.
//! - CIFAR10-DVS: `<class>/*.aedat` with the CIFAR-10 class names (`airplane` .. `truck`), or the
//!   original file names `cifar10_<class>_<n>.aedat` anywhere; split 9:1 per class like
//!   SpikingJelly's `split_to_train_test_set(0.9, ..)`: per class in file-name order (the order
//!   torchvision's `DatasetFolder` lists them), the first `ceil(0.9 n)` train, the rest test;
//!   with a split seed the files of each class are shuffled first (seeded, the same on every
//!   target). Each split then interleaves the classes (rank within class, then class).

use rand::seq::SliceRandom;
use rand::SeedableRng;

use super::{
    decode_aedat2_cifar10dvs, decode_aedat3, decode_nmnist, events_to_frames, parse_gesture_labels,
    parse_trial_list, Event, EventDataError, EventKind, FrameSettings, MAX_FRAME_BYTES,
};
use crate::data::{Dataset, NamedBytes};
use crate::rng::SeededRng;

/// CIFAR-10's class names, in label order (CIFAR10-DVS uses the same classes).
pub const CIFAR10_CLASSES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

/// Where the event files come from.
pub enum EventSource<'a> {
    /// A folder on disk, walked for the files (native only); files are read one at a time.
    #[cfg(not(target_arch = "wasm32"))]
    Dir(&'a std::path::Path),
    /// Files in memory, named by their path relative to the data set folder where known.
    Files(&'a [NamedBytes]),
}

/// How the frames cache is used (native folders only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CacheUse {
    /// Neither read nor write a cache.
    Off,
    /// Read the cache in this folder if present (checked against data and settings), else
    /// build the frames and write it.
    ReadWrite(std::path::PathBuf),
    /// Build the frames from the events and overwrite the cache in this folder.
    Rebuild(std::path::PathBuf),
}

/// Train and test frames of an event data set, and how they were obtained.
#[derive(Clone, Debug, PartialEq)]
pub struct EventData {
    pub train: Dataset,
    pub test: Dataset,
    /// One line for the user: built from N files, read from the cache, cache written.
    pub note: String,
}

/// The folder layout a loader for `kind` expects (messages and hover texts).
pub fn expected_layout(kind: EventKind) -> &'static str {
    match kind {
        EventKind::NMnist => "N-MNIST: Train/<digit>/*.bin and Test/<digit>/*.bin",
        EventKind::DvsGesture => {
            "DVS128 Gesture: trials_to_train.txt, trials_to_test.txt, user*_*.aedat and \
             user*_*_labels.csv (in the folder or in DvsGesture/)"
        }
        EventKind::Cifar10Dvs => {
            "CIFAR10-DVS: <class>/*.aedat, one folder per class (airplane, automobile, bird, cat, \
             deer, dog, frog, horse, ship, truck)"
        }
    }
}

/// The files of a source: names (relative paths with `/`), sizes, and a reader.
struct Catalog<'a> {
    entries: Vec<(String, u64)>,
    source: &'a EventSource<'a>,
}

impl Catalog<'_> {
    fn new<'a>(source: &'a EventSource<'a>) -> Result<Catalog<'a>, EventDataError> {
        let mut entries = Vec::new();
        match source {
            #[cfg(not(target_arch = "wasm32"))]
            EventSource::Dir(dir) => walk(dir, dir, 0, &mut entries)?,
            EventSource::Files(files) => {
                for (name, bytes) in files.iter() {
                    entries.push((name.replace('\\', "/"), bytes.len() as u64));
                }
            }
        }
        entries.sort();
        Ok(Catalog { entries, source })
    }

    fn read(&self, name: &str) -> Result<Vec<u8>, EventDataError> {
        match self.source {
            #[cfg(not(target_arch = "wasm32"))]
            EventSource::Dir(dir) => {
                let path = dir.join(name);
                let file = path.display().to_string();
                let len = std::fs::metadata(&path)
                    .map_err(|e| super::io_error(&file, e))?
                    .len();
                super::check_file_size(&file, len)?;
                std::fs::read(&path).map_err(|e| super::io_error(&file, e))
            }
            EventSource::Files(files) => files
                .iter()
                .find(|(n, _)| n.replace('\\', "/") == name)
                .map(|(_, b)| b.clone())
                .ok_or_else(|| EventDataError::Layout(format!("{name}: not among the files"))),
        }
    }

    /// Display name of a file (the full path for folders).
    fn display(&self, name: &str) -> String {
        match self.source {
            #[cfg(not(target_arch = "wasm32"))]
            EventSource::Dir(dir) => dir.join(name).display().to_string(),
            EventSource::Files(_) => name.to_string(),
        }
    }

    fn where_(&self) -> String {
        match self.source {
            #[cfg(not(target_arch = "wasm32"))]
            EventSource::Dir(dir) => dir.display().to_string(),
            EventSource::Files(f) => format!("the {} chosen files", f.len()),
        }
    }
}

/// Folder depth walked below the data set folder (`Train/<digit>/x.bin` is depth 2).
#[cfg(not(target_arch = "wasm32"))]
const MAX_DEPTH: usize = 4;

#[cfg(not(target_arch = "wasm32"))]
fn walk(
    root: &std::path::Path,
    dir: &std::path::Path,
    depth: usize,
    out: &mut Vec<(String, u64)>,
) -> Result<(), EventDataError> {
    let file = dir.display().to_string();
    for entry in std::fs::read_dir(dir).map_err(|e| super::io_error(&file, e))? {
        let entry = entry.map_err(|e| super::io_error(&file, e))?;
        let path = entry.path();
        let meta = entry.metadata().map_err(|e| super::io_error(&file, e))?;
        if meta.is_dir() && depth < MAX_DEPTH {
            walk(root, &path, depth + 1, out)?;
        } else if meta.is_file() {
            if let Ok(rel) = path.strip_prefix(root) {
                let rel: Vec<String> = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                out.push((rel.join("/"), meta.len()));
            }
        }
    }
    Ok(())
}

/// FNV-1a over the names and sizes of the files a data set was built from.
#[cfg(not(target_arch = "wasm32"))]
fn fingerprint<'a>(files: impl Iterator<Item = &'a (String, u64)>) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    for (name, size) in files {
        eat(name.as_bytes());
        eat(&[0]);
        eat(&size.to_le_bytes());
    }
    h
}

fn components(name: &str) -> Vec<&str> {
    name.split('/').filter(|c| !c.is_empty()).collect()
}

fn base(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

/// One sample to build: which file, which label, and (gestures) which time window.
struct Plan {
    file: String,
    label: u8,
    window: Option<(u64, u64)>,
}

/// The samples of each split and the files they read, in order.
struct SetPlan {
    train: Vec<Plan>,
    test: Vec<Plan>,
    /// The catalog entries the set is built from (fingerprinted).
    used: Vec<(String, u64)>,
}

fn plan_nmnist(cat: &Catalog) -> Result<SetPlan, EventDataError> {
    let (mut train, mut test, mut used) = (Vec::new(), Vec::new(), Vec::new());
    for entry in &cat.entries {
        let parts = components(&entry.0);
        let n = parts.len();
        if n < 3 || !parts[n - 1].to_lowercase().ends_with(".bin") {
            continue;
        }
        let split = parts[n - 3].to_lowercase();
        let digit = parts[n - 2];
        let label = match digit.parse::<u8>() {
            Ok(d) if d < 10 && digit.len() == 1 => d,
            _ => continue,
        };
        let plan = Plan {
            file: entry.0.clone(),
            label,
            window: None,
        };
        match split.as_str() {
            "train" => train.push(plan),
            "test" => test.push(plan),
            _ => continue,
        }
        used.push(entry.clone());
    }
    // File-name order (the names are MNIST indices, unique across digits), so the classes
    // interleave as in MNIST and `--limit-train N` keeps all ten.
    for plans in [&mut train, &mut test] {
        plans.sort_by(|a: &Plan, b: &Plan| {
            base(&a.file).cmp(base(&b.file)).then(a.label.cmp(&b.label))
        });
    }
    if train.is_empty() || test.is_empty() {
        return Err(EventDataError::Layout(format!(
            "{}: found {} train and {} test N-MNIST files; expected {}",
            cat.where_(),
            train.len(),
            test.len(),
            expected_layout(EventKind::NMnist)
        )));
    }
    Ok(SetPlan { train, test, used })
}

fn plan_gesture(cat: &Catalog) -> Result<SetPlan, EventDataError> {
    let find = |base_name: &str| {
        cat.entries
            .iter()
            .filter(|(n, _)| base(n).eq_ignore_ascii_case(base_name))
            .min_by_key(|(n, _)| components(n).len())
    };
    let mut used = Vec::new();
    let mut split = |list: &str| -> Result<Vec<Plan>, EventDataError> {
        let entry = find(list).ok_or_else(|| {
            EventDataError::Layout(format!(
                "{}: no {list}; expected {}",
                cat.where_(),
                expected_layout(EventKind::DvsGesture)
            ))
        })?;
        used.push(entry.clone());
        let trials = parse_trial_list(&cat.display(&entry.0), &cat.read(&entry.0)?)?;
        let mut plans = Vec::new();
        for trial in trials {
            let recording = find(&trial).ok_or_else(|| {
                EventDataError::Layout(format!(
                    "{}: {list} names {trial}, which is not there",
                    cat.where_()
                ))
            })?;
            let stem = trial.trim_end_matches(".aedat");
            let labels_name = format!("{stem}_labels.csv");
            let labels = find(&labels_name).ok_or_else(|| {
                EventDataError::Layout(format!(
                    "{}: no {labels_name} for the recording {trial}",
                    cat.where_()
                ))
            })?;
            used.push(recording.clone());
            used.push(labels.clone());
            let segments = parse_gesture_labels(&cat.display(&labels.0), &cat.read(&labels.0)?)?;
            plans.extend(segments.into_iter().map(|s| Plan {
                file: recording.0.clone(),
                label: s.class,
                window: Some((s.start, s.end)),
            }));
        }
        Ok(plans)
    };
    let train = split("trials_to_train.txt")?;
    let test = split("trials_to_test.txt")?;
    Ok(SetPlan { train, test, used })
}

/// The CIFAR10-DVS class of a file: its folder, else its `cifar10_<class>_<n>.aedat` name.
fn cifar10dvs_class(name: &str) -> Option<u8> {
    let parts = components(name);
    let folder = parts.len().checked_sub(2).map(|i| parts[i].to_lowercase());
    let by_name = |c: &&str| {
        folder.as_deref() == Some(*c)
            || base(name)
                .to_lowercase()
                .starts_with(&format!("cifar10_{c}_"))
    };
    CIFAR10_CLASSES.iter().position(by_name).map(|i| i as u8)
}

fn plan_cifar10dvs(cat: &Catalog, split_seed: Option<u64>) -> Result<SetPlan, EventDataError> {
    let mut per_class: Vec<Vec<&(String, u64)>> = vec![Vec::new(); CIFAR10_CLASSES.len()];
    for entry in &cat.entries {
        if !entry.0.to_lowercase().ends_with(".aedat") {
            continue;
        }
        if let Some(c) = cifar10dvs_class(&entry.0) {
            per_class[c as usize].push(entry);
        }
    }
    if per_class.iter().all(|c| c.is_empty()) {
        return Err(EventDataError::Layout(format!(
            "{}: no CIFAR10-DVS .aedat files; expected {}",
            cat.where_(),
            expected_layout(EventKind::Cifar10Dvs)
        )));
    }
    let (mut train, mut test, mut used) = (Vec::new(), Vec::new(), Vec::new());
    for (class, files) in per_class.iter_mut().enumerate() {
        // File-name order within the class (as torchvision's DatasetFolder lists them).
        files.sort_by(|a, b| base(&a.0).cmp(base(&b.0)).then(a.0.cmp(&b.0)));
        if let Some(seed) = split_seed {
            let mut rng = SeededRng::seed_from_u64(seed ^ (class as u64).wrapping_mul(0x9E37_79B9));
            files.shuffle(&mut rng);
        }
        let n_train = (files.len() * 9).div_ceil(10);
        for (i, entry) in files.iter().enumerate() {
            let plan = (
                if i < n_train { i } else { i - n_train },
                Plan {
                    file: entry.0.clone(),
                    label: class as u8,
                    window: None,
                },
            );
            if i < n_train {
                train.push(plan);
            } else {
                test.push(plan);
            }
            used.push((*entry).clone());
        }
    }
    // Interleave the classes (rank within class, then class), so the first N samples of a
    // split cover every class (`--limit-train N`); training shuffles each epoch anyway.
    let order = |mut v: Vec<(usize, Plan)>| {
        v.sort_by_key(|(rank, p)| (*rank, p.label));
        v.into_iter().map(|(_, p)| p).collect::<Vec<_>>()
    };
    Ok(SetPlan {
        train: order(train),
        test: order(test),
        used,
    })
}

fn decode(kind: EventKind, file: &str, bytes: &[u8]) -> Result<Vec<Event>, EventDataError> {
    match kind {
        EventKind::NMnist => decode_nmnist(file, bytes),
        EventKind::DvsGesture => {
            let (w, h) = kind.sensor();
            decode_aedat3(file, bytes, w, h)
        }
        EventKind::Cifar10Dvs => decode_aedat2_cifar10dvs(file, bytes),
    }
}

/// Decodes and integrates the planned samples (each file read and decoded once).
fn build_split(
    kind: EventKind,
    cat: &Catalog,
    plans: &[Plan],
    settings: &FrameSettings,
) -> Result<Dataset, EventDataError> {
    let per = settings.sample_bytes();
    let mut images = Vec::with_capacity(plans.len() * per);
    let mut labels = Vec::with_capacity(plans.len());
    let mut current: Option<(String, Vec<Event>)> = None;
    let mut empty = 0usize;
    for plan in plans {
        if current.as_ref().map(|(n, _)| n) != Some(&plan.file) {
            let display = cat.display(&plan.file);
            let events = decode(kind, &display, &cat.read(&plan.file)?)?;
            current = Some((plan.file.clone(), events));
        }
        let events = current.as_ref().map(|(_, e)| e.as_slice()).unwrap_or(&[]);
        let events = match plan.window {
            // Timestamps are checked to be non-decreasing, so the window is a range.
            Some((start, end)) => {
                let a = events.partition_point(|e| e.t < start);
                let b = events.partition_point(|e| e.t < end);
                &events[a..b]
            }
            None => events,
        };
        if events.is_empty() {
            empty += 1;
        }
        images.extend_from_slice(&events_to_frames(events, kind.sensor(), settings));
        labels.push(plan.label);
    }
    if empty > 0 {
        log::warn!(
            "{}: {empty} of {} samples have no events (all-zero frames)",
            cat.where_(),
            plans.len()
        );
    }
    Ok(Dataset {
        images,
        labels,
        channels: 2 * settings.frames,
        height: settings.height,
        width: settings.width,
        classes: kind.classes(),
    })
}

fn plan_set(
    kind: EventKind,
    cat: &Catalog,
    settings: &FrameSettings,
    split_seed: Option<u64>,
) -> Result<SetPlan, EventDataError> {
    settings.check(kind.sensor())?;
    let plan = match kind {
        EventKind::NMnist => plan_nmnist(cat)?,
        EventKind::DvsGesture => plan_gesture(cat)?,
        EventKind::Cifar10Dvs => plan_cifar10dvs(cat, split_seed)?,
    };
    // The frames must fit in memory: check before anything is allocated.
    let samples = (plan.train.len() + plan.test.len()) as u64;
    let bytes = samples.saturating_mul(settings.sample_bytes() as u64);
    if bytes > MAX_FRAME_BYTES {
        return Err(EventDataError::Settings(format!(
            "{samples} samples of {} frames of 2x{}x{} need {bytes} bytes, over the \
             {MAX_FRAME_BYTES}-byte limit: use fewer frames or a smaller frame size",
            settings.frames, settings.height, settings.width
        )));
    }
    Ok(plan)
}

fn build(
    kind: EventKind,
    cat: &Catalog,
    plan: &SetPlan,
    settings: &FrameSettings,
) -> Result<(Dataset, Dataset), EventDataError> {
    Ok((
        build_split(kind, cat, &plan.train, settings)?,
        build_split(kind, cat, &plan.test, settings)?,
    ))
}

/// Builds the frames of `kind` from files in memory (the browser's picker, tests). N-MNIST
/// needs the names to carry its folders (`Train/3/x.bin`).
pub fn event_datasets_from_files(
    kind: EventKind,
    files: &[NamedBytes],
    settings: &FrameSettings,
    split_seed: Option<u64>,
) -> Result<EventData, EventDataError> {
    let source = EventSource::Files(files);
    let cat = Catalog::new(&source)?;
    let plan = plan_set(kind, &cat, settings, split_seed)?;
    let (train, test) = build(kind, &cat, &plan, settings)?;
    let note = format!("built from {} files", plan.used.len());
    Ok(EventData { train, test, note })
}

/// Loads `kind` from the folder `dir`: from the frames cache when it matches the files and the
/// settings, else by decoding the events (and then writing the cache). A cache that does not
/// match is an error that says what differs, never silently used or overwritten.
#[cfg(not(target_arch = "wasm32"))]
pub fn load_event_datasets(
    kind: EventKind,
    dir: &std::path::Path,
    settings: &FrameSettings,
    split_seed: Option<u64>,
    cache: &CacheUse,
) -> Result<EventData, EventDataError> {
    use super::{cache_file_name, decode_frames_file, encode_frames_file, FramesFile};
    let source = EventSource::Dir(dir);
    let cat = Catalog::new(&source)?;
    let plan = plan_set(kind, &cat, settings, split_seed)?;
    let print = fingerprint(plan.used.iter());
    let cache_path = match cache {
        CacheUse::Off => None,
        CacheUse::ReadWrite(d) | CacheUse::Rebuild(d) => {
            Some(d.join(cache_file_name(kind, settings, split_seed)))
        }
    };
    if let (CacheUse::ReadWrite(_), Some(path)) = (cache, &cache_path) {
        if path.exists() {
            let file = path.display().to_string();
            let len = std::fs::metadata(path)
                .map_err(|e| super::io_error(&file, e))?
                .len();
            super::check_file_size(&file, len)?;
            let bytes = std::fs::read(path).map_err(|e| super::io_error(&file, e))?;
            let f = decode_frames_file(&file, &bytes).map_err(|e| EventDataError::Cache {
                file: file.clone(),
                message: format!(
                    "unreadable frames cache ({e}); delete it or rebuild it (`--rebuild-cache`)"
                ),
            })?;
            let mismatch = |what: String| EventDataError::Cache {
                file: file.clone(),
                message: format!(
                    "{what}; delete it or rebuild it (`--rebuild-cache`), or choose another \
                     `--cache-dir`"
                ),
            };
            if f.kind != kind || f.settings != *settings || f.split_seed != split_seed {
                return Err(mismatch(format!(
                    "holds {} frames {:?} (split seed {:?}) but {} with {:?} (split seed {:?}) \
                     was asked for",
                    f.kind.name(),
                    f.settings,
                    f.split_seed,
                    kind.name(),
                    settings,
                    split_seed
                )));
            }
            if f.fingerprint != print
                || f.train.len() != plan.train.len()
                || f.test.len() != plan.test.len()
            {
                return Err(mismatch(format!(
                    "was built from other event files than the {} in {} (files added, removed \
                     or changed size: {} + {} samples cached, {} + {} now)",
                    plan.used.len(),
                    dir.display(),
                    f.train.len(),
                    f.test.len(),
                    plan.train.len(),
                    plan.test.len()
                )));
            }
            return Ok(EventData {
                train: f.train,
                test: f.test,
                note: format!("frames read from {file}"),
            });
        }
    }
    let (train, test) = build(kind, &cat, &plan, settings)?;
    let mut note = format!("built from {} files in {}", plan.used.len(), dir.display());
    if let Some(path) = cache_path {
        let file = FramesFile {
            kind,
            settings: *settings,
            split_seed,
            fingerprint: print,
            train,
            test,
        };
        match write_atomically(&path, &encode_frames_file(&file)) {
            Ok(()) => note.push_str(&format!(", frames cached in {}", path.display())),
            Err(e) => log::warn!("frames not cached: {e}"),
        }
        return Ok(EventData {
            train: file.train,
            test: file.test,
            note,
        });
    }
    Ok(EventData { train, test, note })
}

/// Writes `bytes` to a temporary file next to `path`, then renames it over `path`, so an
/// interrupted write never leaves a half cache behind.
#[cfg(not(target_arch = "wasm32"))]
fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> Result<(), EventDataError> {
    let file = path.display().to_string();
    let tmp = path.with_extension("frames.partial");
    std::fs::write(&tmp, bytes).map_err(|e| super::io_error(&file, e))?;
    std::fs::rename(&tmp, path).map_err(|e| super::io_error(&file, e))
}
