//! File dialogs that never block the UI thread, on the desktop and in the browser.
//!
//! Native: the rfd dialog runs on a helper thread and the chosen files are read there. Web:
//! rfd's async dialog (an `<input type=file>`) runs as a browser task and reads the files'
//! bytes. Either way the result arrives on a channel that the frame loop polls with
//! [`FileDialogs::poll`]. Saving: native writes atomically (temp file + rename) to the chosen
//! path; the web offers the bytes as a download.

use std::sync::mpsc::{channel, Receiver, Sender};

use crate::data::events::{EventData, EventKind};
use crate::data::{FileSetKind, NamedBytes};

/// What the chosen files are for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    Dataset(FileSetKind),
    /// An event data set: a folder natively (decoded on the dialog's thread, through the
    /// frames cache), the files themselves on the web.
    Events(EventKind),
    /// A bitspike frames file (the cache the CLI or the desktop app wrote).
    Frames,
    ModelConfig,
    Checkpoint,
    /// An ablation's `report.json`.
    Ablation,
}

/// Files a dialog delivered (empty when the user cancelled).
pub struct Picked {
    pub purpose: Purpose,
    pub files: Vec<NamedBytes>,
    /// Reading a chosen file failed.
    pub error: Option<String>,
}

/// A save that finished (or failed).
pub struct Saved {
    pub message: Result<String, String>,
}

/// An event data set decoded off the UI thread (native folders).
pub struct Loaded {
    pub kind: EventKind,
    pub result: Result<EventData, String>,
}

enum Event {
    Picked(Picked),
    Saved(Saved),
    // Sent by the native loader thread only; the web loads event data in its own task.
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    Loaded(Loaded),
}

/// What the frame loop gets from [`FileDialogs::poll`].
pub enum FileEvent {
    Picked(Picked),
    Saved(Saved),
    Loaded(Loaded),
}

/// Open dialogs and their results.
pub struct FileDialogs {
    tx: Sender<Event>,
    rx: Receiver<Event>,
    open: usize,
}

impl Default for FileDialogs {
    fn default() -> Self {
        let (tx, rx) = channel();
        Self { tx, rx, open: 0 }
    }
}

fn filter(purpose: Purpose) -> (&'static str, &'static [&'static str]) {
    match purpose {
        Purpose::Dataset(FileSetKind::Idx) => {
            ("IDX files", &["gz", "idx3-ubyte", "idx1-ubyte", "ubyte"])
        }
        Purpose::Dataset(_) => ("CIFAR binary batches", &["bin"]),
        Purpose::Events(_) => ("event files", &["aedat", "bin", "csv", "txt"]),
        Purpose::Frames => ("bitspike frames file", &["frames"]),
        Purpose::ModelConfig => ("model config (JSON)", &["json"]),
        Purpose::Checkpoint => ("checkpoint (safetensors)", &["safetensors"]),
        Purpose::Ablation => ("ablation report (report.json)", &["json"]),
    }
}

/// How the app frames an event data set: the frames and size of the data set's preset
/// (`nmnist`: 10 x 34 x 34, `dvsgesture`: 16 x 32 x 32, `cifar10dvs`: 10 x 48 x 48), counts.
pub fn event_frame_settings(kind: EventKind) -> crate::data::events::FrameSettings {
    let sensor = kind.sensor();
    match crate::model::ModelConfig::preset(kind.name()) {
        Some(m) => crate::data::events::FrameSettings {
            frames: m.timesteps,
            height: m.input[1],
            width: m.input[2],
            clip: false,
        },
        None => crate::data::events::FrameSettings::full(10, sensor),
    }
}

impl FileDialogs {
    /// True while a dialog is open or its files are being read.
    pub fn busy(&self) -> bool {
        self.open > 0
    }

    /// The next finished dialog, if any. Never waits.
    pub fn poll(&mut self) -> Option<FileEvent> {
        let event = self.rx.try_recv().ok()?;
        self.open = self.open.saturating_sub(1);
        Some(match event {
            Event::Picked(p) => FileEvent::Picked(p),
            Event::Saved(s) => FileEvent::Saved(s),
            Event::Loaded(l) => FileEvent::Loaded(l),
        })
    }

    /// Opens a file dialog for `purpose`; data sets allow several files.
    pub fn pick(&mut self, purpose: Purpose) {
        let (name, extensions) = filter(purpose);
        let multiple = matches!(purpose, Purpose::Dataset(_) | Purpose::Events(_));
        let tx = self.tx.clone();
        self.open += 1;
        #[cfg(not(target_arch = "wasm32"))]
        if let Purpose::Events(kind) = purpose {
            // A folder: walked, decoded and integrated here, off the UI thread.
            std::thread::spawn(move || {
                let dialog = rfd::FileDialog::new().set_title(format!(
                    "bitspike: choose the {} folder ({})",
                    kind.name(),
                    crate::data::events::expected_layout(kind)
                ));
                let Some(dir) = dialog.pick_folder() else {
                    let _ = tx.send(Event::Picked(Picked {
                        purpose,
                        files: Vec::new(),
                        error: None,
                    }));
                    return;
                };
                let result = crate::data::events::load_event_datasets(
                    kind,
                    &dir,
                    &event_frame_settings(kind),
                    None,
                    &crate::data::events::CacheUse::ReadWrite(dir.clone()),
                )
                .map_err(|e| e.to_string());
                let _ = tx.send(Event::Loaded(Loaded { kind, result }));
            });
            return;
        }
        #[cfg(not(target_arch = "wasm32"))]
        std::thread::spawn(move || {
            let mut dialog = rfd::FileDialog::new().set_title(format!("bitspike: choose {name}"));
            // IDX files often have no extension; a filter would hide them.
            if !matches!(purpose, Purpose::Dataset(FileSetKind::Idx)) {
                dialog = dialog.add_filter(name, extensions);
            }
            let paths = if multiple {
                dialog.pick_files().unwrap_or_default()
            } else {
                dialog.pick_file().into_iter().collect()
            };
            let mut picked = Picked {
                purpose,
                files: Vec::new(),
                error: None,
            };
            for path in paths {
                match crate::data::read_file(&path) {
                    Ok(bytes) => picked.files.push((path.display().to_string(), bytes)),
                    Err(e) => {
                        picked.error = Some(e.to_string());
                        break;
                    }
                }
            }
            let _ = tx.send(Event::Picked(picked));
        });
        #[cfg(target_arch = "wasm32")]
        wasm_bindgen_futures::spawn_local(async move {
            let mut dialog =
                rfd::AsyncFileDialog::new().set_title(format!("bitspike: choose {name}"));
            if !matches!(purpose, Purpose::Dataset(FileSetKind::Idx)) {
                dialog = dialog.add_filter(name, extensions);
            }
            let handles = if multiple {
                dialog.pick_files().await.unwrap_or_default()
            } else {
                dialog.pick_file().await.into_iter().collect()
            };
            let mut files = Vec::new();
            for h in handles {
                files.push((h.file_name(), h.read().await));
            }
            let _ = tx.send(Event::Picked(Picked {
                purpose,
                files,
                error: None,
            }));
        });
    }

    /// Reads a file dropped on the window (off the UI thread / as a browser task).
    pub fn read_dropped(&mut self, purpose: Purpose, file: egui::DroppedFileHandle) {
        let tx = self.tx.clone();
        self.open += 1;
        let name = file.path().display().to_string();
        let send = move |result: Result<Vec<u8>, String>| {
            let (files, error) = match result {
                Ok(bytes) => (vec![(name.clone(), bytes)], None),
                Err(e) => (Vec::new(), Some(format!("{name}: {e}"))),
            };
            let _ = tx.send(Event::Picked(Picked {
                purpose,
                files,
                error,
            }));
        };
        #[cfg(not(target_arch = "wasm32"))]
        std::thread::spawn(move || send(file.bytes()));
        #[cfg(target_arch = "wasm32")]
        wasm_bindgen_futures::spawn_local(async move {
            let result = file.bytes_async().await;
            send(result);
        });
    }

    /// Saves `bytes` under a name the user picks (native) or as a download (web).
    pub fn save(&mut self, suggested_name: &str, bytes: Vec<u8>) {
        let tx = self.tx.clone();
        self.open += 1;
        #[cfg(not(target_arch = "wasm32"))]
        {
            let name = suggested_name.to_string();
            std::thread::spawn(move || {
                let message = match rfd::FileDialog::new()
                    .set_title("bitspike: save checkpoint")
                    .set_file_name(&name)
                    .add_filter("checkpoint (safetensors)", &["safetensors"])
                    .save_file()
                {
                    None => Err("save cancelled".to_string()),
                    Some(path) => crate::checkpoint::write_atomically(&path, &bytes)
                        .map(|()| format!("saved {}", path.display()))
                        .map_err(|e| e.to_string()),
                };
                let _ = tx.send(Event::Saved(Saved { message }));
            });
        }
        #[cfg(target_arch = "wasm32")]
        {
            let message = super::web::download(suggested_name, &bytes)
                .map(|()| format!("downloaded {suggested_name}"));
            let _ = tx.send(Event::Saved(Saved { message }));
        }
    }
}
