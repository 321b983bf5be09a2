//! The app, on the desktop (`bitspike gui`, eframe window) and in the browser (`index.html`,
//! eframe web runner): one [`BitspikeApp`] whose wgpu device (eframe's) also runs the training
//! kernels. Train and watch the curves ([`training_view`]), look at one sample's spikes layer
//! by layer ([`spikes_view`]), draw a digit and watch the network classify it
//! ([`draw_view`]), inspect binary weights ([`weights_view`]) and the model ([`model_view`]).
//!
//! Every frame does a bounded amount of GPU work (at most one training submission, at most
//! [`session::MAX_IN_FLIGHT`] queued, plus small probes) and only collects readbacks that have
//! already arrived: the UI thread never waits for the GPU. File dialogs run off the UI thread
//! ([`files`]).

pub mod draw_view;
pub mod files;
pub mod layers_panel;
pub mod model_view;
pub mod probe;
pub mod raster;
pub mod screenshot;
pub mod session;
pub mod setup;
pub mod spikes_view;
pub mod training_view;
#[cfg(target_arch = "wasm32")]
pub mod web;
pub mod weights_view;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::checkpoint::{Checkpoint, CheckpointMeta};
use crate::data::{datasets_from_files, embedded_mnist10k, Dataset, EmbeddedSplit, NamedBytes};
use crate::gpu::{GpuContext, Pending};
use crate::model::ModelConfig;
use crate::snn::PendingCheckpoint;

use crate::train::Phase;
use draw_view::DrawState;
use files::{FileDialogs, FileEvent, Purpose};
use screenshot::{ScreenshotPlan, Stage};
use session::Session;
use setup::{Action, PanelInfo, RunState, Setup};
use spikes_view::SpikesState;
use training_view::{History, Reference};
use weights_view::WeightsState;

/// A small trained model shipped with the app, so the draw view works before any training:
/// the `mnist` preset after 2 epochs on the embedded MNIST-10k (weights and BN statistics, no
/// optimizer state; see `assets/demo/README.md`).
pub const DEMO_CHECKPOINT: &[u8] = include_bytes!("../../assets/demo/mnist-demo.safetensors");
/// What the demo model is, for tooltips.
pub const DEMO_CHECKPOINT_NOTE: &str =
    "the mnist preset trained 2 epochs on the embedded MNIST-10k (bundled with the app)";

/// The views in the central panel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum View {
    #[default]
    Training,
    Spikes,
    /// Draw a digit, see it classified and its spikes.
    Draw,
    /// Binary weights: sign maps, flips, latent histogram, gamma.
    Weights,
    /// The model summary: layers, bits, operations, size, energy.
    Model,
}

impl View {
    /// Every view, in tab order, with its name.
    pub const ALL: [(View, &'static str); 5] = [
        (View::Training, "training"),
        (View::Spikes, "spikes"),
        (View::Draw, "draw"),
        (View::Weights, "weights"),
        (View::Model, "model"),
    ];

    /// Parses a `--view` value.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.iter().find(|(_, n)| *n == name).map(|(v, _)| *v)
    }

    /// The view's name (as `--view` takes it).
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(v, _)| *v == self)
            .map_or("training", |(_, n)| n)
    }
}

/// How to start the app.
#[derive(Clone, Debug, Default)]
pub struct AppOptions {
    /// Capture the window to this PNG and exit (native).
    pub screenshot: Option<PathBuf>,
    /// The view to show first (and to capture).
    pub view: View,
    /// Training steps before the capture (screenshot mode) or the step budget (`auto_start`).
    pub after_steps: usize,
    /// Start training at once and stop after `after_steps` steps, then show `then_view`
    /// (the browser test drives the page this way).
    pub auto_start: bool,
    pub then_view: Option<View>,
    /// A checkpoint file to start from (native `--checkpoint`).
    pub checkpoint: Option<PathBuf>,
    /// Start from the bundled demo model (web `?demo=1`).
    pub load_demo: bool,
    /// Probe this test sample once the network is ready (web `?probe=N`; the report then
    /// carries its mean logits, which the browser test compares with `bitspike eval`).
    pub probe_sample: Option<usize>,
    /// Screenshot mode: first train a run with this AGMM mode, keep it as the reference, then
    /// train the configured run over it (`--compare-agmm off` shows full vs off). While that
    /// runs it holds the mode of the second run.
    pub compare_agmm: Option<crate::model::AgmmMode>,
    /// Event frames to start with instead of the embedded MNIST (native `--frames-file`).
    pub frames_file: Option<PathBuf>,
    /// An ablation to show in the training view (native `--ablation DIR`: the grid directory
    /// of `bitspike ablate`, or its `report.json`).
    pub ablation: Option<PathBuf>,
}

/// Errors that end the app.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("window: {0}")]
    Window(String),
    #[error("screenshot: {0}")]
    Screenshot(String),
}

/// Window size; fixed in screenshot mode so captures are comparable.
pub const WINDOW_SIZE: [f32; 2] = [1280.0, 800.0];

/// The device descriptor eframe opens its device with: the limits our kernels need (the
/// WebGPU defaults: 8 storage buffers per stage, ...; natively the adapter's buffer sizes, see
/// `gpu::limits`), and large textures for big surfaces where the adapter has them.
pub fn device_descriptor(adapter: &wgpu::Adapter) -> wgpu::DeviceDescriptor<'static> {
    let adapter_limits = adapter.limits();
    let max_texture = adapter_limits.max_texture_dimension_2d.min(8192);
    wgpu::DeviceDescriptor {
        label: Some("bitspike app device"),
        required_limits: wgpu::Limits {
            max_texture_dimension_2d: max_texture,
            ..crate::gpu::limits::device_limits(&adapter_limits)
        },
        ..Default::default()
    }
}

/// eframe options: the wgpu renderer with [`device_descriptor`].
#[cfg(not(target_arch = "wasm32"))]
pub fn native_options(options: &AppOptions) -> eframe::NativeOptions {
    use eframe::egui_wgpu::{WgpuConfiguration, WgpuSetup, WgpuSetupCreateNew};
    let mut create = WgpuSetupCreateNew::without_display_handle();
    create.device_descriptor = Arc::new(device_descriptor);
    let mut viewport = egui::ViewportBuilder::default()
        .with_title("bitspike")
        .with_inner_size(WINDOW_SIZE)
        .with_drag_and_drop(true);
    if options.screenshot.is_some() {
        viewport = viewport.with_resizable(false);
    }
    eframe::NativeOptions {
        viewport,
        renderer: eframe::Renderer::Wgpu,
        wgpu_options: WgpuConfiguration {
            wgpu_setup: WgpuSetup::CreateNew(create),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// Opens the window and runs until it is closed (or the screenshot is written).
#[cfg(not(target_arch = "wasm32"))]
pub fn run(options: AppOptions) -> Result<(), AppError> {
    let outcome: Arc<Mutex<Option<String>>> = Arc::default();
    let outcome_app = outcome.clone();
    let native = native_options(&options);
    eframe::run_native(
        "bitspike",
        native,
        Box::new(move |cc| Ok(Box::new(BitspikeApp::new(cc, options, outcome_app)))),
    )
    .map_err(|e| AppError::Window(e.to_string()))?;
    let failure = outcome.lock().ok().and_then(|mut o| o.take());
    match failure {
        Some(message) => Err(AppError::Screenshot(message)),
        None => Ok(()),
    }
}

/// The compute context: eframe's device, except on adapters whose queue submission blocks
/// until earlier work finishes (lavapipe, see [`GpuContext::submit_blocks`]). There every
/// frame's render submission would wait behind a whole training step (one frame per step), so
/// compute gets its own device on the same adapter and runs beside the renderer. Nothing is
/// shared between the two devices: compute results reach the UI as CPU readbacks.
fn compute_context(shared: GpuContext) -> GpuContext {
    #[cfg(not(target_arch = "wasm32"))]
    if shared.submit_blocks() {
        match GpuContext::new_blocking() {
            Ok(own) if own.adapter_info.name == shared.adapter_info.name => {
                log::info!("compute on its own device: {}", own.describe());
                return own;
            }
            Ok(other) => log::warn!(
                "a separate compute device found '{}' instead of '{}'; sharing the renderer's",
                other.adapter_info.name,
                shared.adapter_info.name
            ),
            Err(e) => log::warn!("no separate compute device ({e}); sharing the renderer's"),
        }
    }
    shared
}

/// The app state.
pub struct BitspikeApp {
    gpu: Option<Arc<GpuContext>>,
    data: Option<(Arc<Dataset>, Arc<Dataset>)>,
    data_label: String,
    setup: Setup,
    session: Option<Session>,
    started: bool,
    history: History,
    reference: Option<Reference>,
    /// An ablation report shown in the training view instead of the live curves, with its
    /// label (the file it came from).
    ablation: Option<(String, crate::ablate::report::AblationReport)>,
    spikes: SpikesState,
    draw: DrawState,
    weights: WeightsState,
    view: View,
    files: FileDialogs,
    /// A checkpoint being read back for saving, and the file name it will be offered under.
    saving: Option<(PendingCheckpoint, String)>,
    /// The last error, shown in the window until dismissed.
    error: Option<String>,
    /// The last informational message (saved, loaded).
    notice: Option<String>,
    options: AppOptions,
    /// Frames drawn; the network is built on frame 1 so frame 0 can show "compiling".
    frames: u64,
    /// The setup panel is shown (hidden by default on narrow screens, e.g. phones).
    show_setup: bool,
    /// Time to build the first network (all pipelines compiled), for the status line.
    pub boot_seconds: Option<f64>,
    screenshot: Option<ScreenshotPlan>,
    /// Screenshot-mode failure reported to [`run`] after the window closes.
    outcome: Arc<Mutex<Option<String>>>,
}

impl BitspikeApp {
    /// Builds the app on eframe's creation context (shares its wgpu device).
    pub fn new(
        cc: &eframe::CreationContext<'_>,
        options: AppOptions,
        outcome: Arc<Mutex<Option<String>>>,
    ) -> Self {
        let gpu = cc.wgpu_render_state.as_ref().map(|rs| {
            let shared =
                GpuContext::from_device(rs.device.clone(), rs.queue.clone(), rs.adapter.get_info());
            Arc::new(compute_context(shared))
        });
        // One look everywhere (the browser would follow the system theme).
        cc.egui_ctx.set_theme(egui::Theme::Dark);
        let mut app = Self::with_gpu(gpu, options, outcome);
        if app.gpu.is_none() {
            app.error = Some("eframe did not start the wgpu renderer".into());
        }
        app
    }

    /// The app on an existing device, without a window (tests drive it this way). Nothing
    /// is built until the first frames ([`BitspikeApp::boot`]).
    pub fn with_gpu(
        gpu: Option<Arc<GpuContext>>,
        options: AppOptions,
        outcome: Arc<Mutex<Option<String>>>,
    ) -> Self {
        let mut app = Self {
            gpu,
            data: None,
            data_label: "embedded MNIST-10k (8,000 train / 2,000 test)".into(),
            setup: Setup::default(),
            session: None,
            started: false,
            history: History::default(),
            reference: None,
            ablation: None,
            spikes: SpikesState::default(),
            draw: DrawState::default(),
            weights: WeightsState::default(),
            view: options.view,
            files: FileDialogs::default(),
            saving: None,
            error: None,
            notice: None,
            frames: 0,
            show_setup: true,
            boot_seconds: None,
            screenshot: options
                .screenshot
                .clone()
                .map(|p| ScreenshotPlan::new(p, options.view, options.after_steps)),
            options,
            outcome,
        };
        if let Some(gpu) = &app.gpu {
            log::info!("bitspike app on {}", gpu.describe());
        }
        match (
            embedded_mnist10k(EmbeddedSplit::Train),
            embedded_mnist10k(EmbeddedSplit::Test),
        ) {
            (Ok(train), Ok(test)) => app.data = Some((Arc::new(train), Arc::new(test))),
            (Err(e), _) | (_, Err(e)) => app.error = Some(format!("embedded data: {e}")),
        }
        app
    }

    /// The error shown in the window, if any.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// The current run.
    pub fn session(&self) -> Option<&Session> {
        self.session.as_ref()
    }

    /// The curves collected so far.
    pub fn history(&self) -> &History {
        &self.history
    }

    /// The spikes view's state (probe requests and results).
    pub fn spikes_mut(&mut self) -> &mut SpikesState {
        &mut self.spikes
    }

    /// The draw view's state (the canvas and its classification).
    pub fn draw_mut(&mut self) -> &mut DrawState {
        &mut self.draw
    }

    /// The data set description shown in the setup panel.
    pub fn data_label(&self) -> &str {
        &self.data_label
    }

    /// Frame 1: build the first network (compiles every pipeline), start scripted runs.
    pub fn boot(&mut self) {
        let started = web_time::Instant::now();
        if let (Some(mode), Some(_)) = (self.options.compare_agmm, &self.screenshot) {
            // The reference run trains with `mode` first; the configured mode comes second.
            self.options.compare_agmm = Some(std::mem::replace(&mut self.setup.agmm, mode));
        }
        #[cfg(not(target_arch = "wasm32"))]
        if let Some(path) = self.options.frames_file.clone() {
            let name = path.display().to_string();
            match crate::data::read_file(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| {
                    crate::data::events::decode_frames_file(&name, &b).map_err(|e| e.to_string())
                }) {
                Ok(f) => self.set_event_data(f.kind, f.train, f.test, &format!("from {name}")),
                Err(e) => self.error = Some(format!("frames not loaded: {e}")),
            }
        }
        self.rebuild();
        self.boot_seconds = Some(started.elapsed().as_secs_f64());
        #[cfg(not(target_arch = "wasm32"))]
        if let Some(path) = self.options.checkpoint.clone() {
            match crate::data::read_file(&path) {
                Ok(bytes) => self.open_files(
                    Purpose::Checkpoint,
                    vec![(path.display().to_string(), bytes)],
                ),
                Err(e) => self.error = Some(format!("checkpoint not loaded: {e}")),
            }
        }
        #[cfg(not(target_arch = "wasm32"))]
        if let Some(path) = self.options.ablation.clone() {
            let file = if path.is_dir() {
                path.join(crate::ablate::REPORT_JSON)
            } else {
                path
            };
            match crate::data::read_file(&file) {
                Ok(bytes) => {
                    self.open_files(Purpose::Ablation, vec![(file.display().to_string(), bytes)])
                }
                Err(e) => {
                    self.error = Some(format!(
                        "ablation not opened: {e} (write the report with \
                         `bitspike ablate --report DIR`)"
                    ))
                }
            }
        }
        if self.options.load_demo {
            self.draw.load_demo = true;
        }
        if let Some(sample) = self
            .options
            .probe_sample
            .filter(|_| !self.options.load_demo)
        {
            self.spikes.request(sample);
        }
        let scripted = self.screenshot.is_some() || self.options.auto_start;
        if let Some(s) = self.session.as_mut().filter(|_| scripted) {
            s.set_running(true);
            self.started = true;
        }
    }

    /// A session for `model` on the current data and setup, or why not.
    fn build_session(&self, model: &ModelConfig) -> Result<Session, String> {
        let (Some(gpu), Some((train, test))) = (&self.gpu, &self.data) else {
            return Err("no GPU device or no data".into());
        };
        let data_shape = [train.channels, train.height, train.width];
        if model.data_shape() != data_shape {
            return Err(format!(
                "model '{}' takes input {:?} but the data is {:?}: choose a model for this \
                 input (mnist: 1x28x28, resnet19: 3x32x32) or other data",
                model.name, model.input, data_shape
            ));
        }
        if model.classes < train.classes {
            return Err(format!(
                "model '{}' has {} classes but the data has {}",
                model.name, model.classes, train.classes
            ));
        }
        let mut session = Session::new(
            gpu,
            model,
            self.setup.train_config(),
            train.clone(),
            test.clone(),
        )
        .map_err(|e| format!("building the network: {e}"))?;
        let limit = if self.screenshot.is_some() || self.options.auto_start {
            Some(self.options.after_steps as u64)
        } else {
            None
        };
        session.set_step_limit(limit);
        Ok(session)
    }

    /// Drops the run and builds an idle one from the setup.
    fn rebuild(&mut self) {
        self.session = None;
        self.started = false;
        self.history = History::default();
        self.spikes.clear();
        self.draw.network_changed();
        self.weights.clear();
        let built = self
            .setup
            .model()
            .and_then(|model| self.build_session(&model));
        match built {
            Ok(s) => self.session = Some(s),
            Err(e) => self.error = Some(e),
        }
    }

    fn start(&mut self) {
        self.rebuild();
        if let Some(s) = &mut self.session {
            s.set_running(true);
            self.started = true;
        }
    }

    fn run_state(&self) -> RunState {
        match &self.session {
            None => RunState::Fresh,
            Some(s) if s.phase() == Phase::Done => RunState::Done,
            Some(s) if s.running() => RunState::Running,
            Some(_) if self.started => RunState::Paused,
            Some(_) => RunState::Fresh,
        }
    }

    /// The frame's GPU work: session first, then the probes. Errors stop the run and are
    /// shown; nothing panics. Never waits for the GPU (tests call it without a window).
    pub fn tick(&mut self, ctx: &egui::Context) {
        // A save finishes even if the run it came from has been replaced since.
        if let (Some(gpu), Some(_)) = (&self.gpu, &self.saving) {
            let _ = gpu.device.poll(wgpu::PollType::Poll);
        }
        if let Some((pending, name)) = &mut self.saving {
            if let Some(result) = pending.try_take() {
                let name = name.clone();
                self.saving = None;
                match result.map_err(|e| e.to_string()).and_then(|ck| {
                    ck.check_finite()
                        .and_then(|()| ck.to_bytes())
                        .map_err(|e| e.to_string())
                }) {
                    Ok(bytes) => self.files.save(&name, bytes),
                    Err(e) => self.error = Some(format!("saving the checkpoint: {e}")),
                }
            }
        }
        let (Some(gpu), Some(session)) = (&self.gpu, &mut self.session) else {
            return;
        };
        if let Err(e) = session.tick(gpu, &mut self.history) {
            session.set_running(false);
            self.error = Some(format!("training stopped: {e}"));
        }
        // Probes first: on adapters whose submissions block (lavapipe) work only starts while
        // the GPU is idle, and a running session would otherwise always get there first.
        if let Err(e) = self.spikes.tick(gpu, session) {
            self.error = Some(format!("spikes probe: {e}"));
        }
        // A drawing is classified again with the newest weights every few steps.
        let step = session.trainer.step();
        if self.view == View::Draw && step >= self.draw.classified_at_step + 10 {
            self.draw.refresh();
            self.draw.classified_at_step = step;
        }
        if let Err(e) = self.draw.tick(gpu, session) {
            self.error = Some(format!("draw probe: {e}"));
        }
        if self.view == View::Weights || self.weights.busy() {
            if self.weights.step.is_none() {
                self.weights.request();
            }
            if let Err(e) = self
                .weights
                .tick(ctx, gpu, session, self.history.epochs.len())
            {
                self.error = Some(format!("weights readback: {e}"));
            }
        }
        if let Err(e) = session.submit(gpu) {
            session.set_running(false);
            self.error = Some(format!("training stopped: {e}"));
        }
    }

    /// Results of file dialogs and files dropped on the window.
    fn handle_files(&mut self, ctx: &egui::Context) {
        while let Some(event) = self.files.poll() {
            match event {
                FileEvent::Saved(s) => match s.message {
                    Ok(m) => self.notice = Some(m),
                    Err(e) => self.error = Some(e),
                },
                FileEvent::Loaded(l) => match l.result {
                    Ok(d) => self.use_event_data(l.kind, d.train, d.test, &d.note),
                    Err(e) => self.error = Some(format!("data not loaded: {e}")),
                },
                FileEvent::Picked(p) => {
                    if let Some(e) = p.error {
                        self.error = Some(e);
                    } else if p.files.is_empty() {
                        // Cancelled, or no dialog could open (Linux needs xdg-desktop-portal
                        // or zenity): say what else works.
                        self.notice =
                            Some("no file chosen (files can also be dropped on the window)".into());
                    } else {
                        self.open_files(p.purpose, p.files);
                    }
                }
            }
        }
        let dropped = ctx.input(|i| i.raw.dropped_files.clone());
        for file in dropped {
            let name = file.path().display().to_string();
            if name.ends_with(".safetensors") {
                self.files.read_dropped(Purpose::Checkpoint, file);
            } else if name.ends_with(crate::ablate::REPORT_JSON) {
                self.files.read_dropped(Purpose::Ablation, file);
            } else if name.ends_with(".json") {
                self.files.read_dropped(Purpose::ModelConfig, file);
            } else {
                self.error = Some(format!(
                    "{name}: drop a .safetensors checkpoint or a .json model config \
                     (data sets: the Data buttons)"
                ));
            }
        }
    }

    /// Applies chosen files. Each step validates before anything is replaced, so a bad file
    /// leaves the current data, model and run as they were.
    pub fn open_files(&mut self, purpose: Purpose, files: Vec<NamedBytes>) {
        match purpose {
            Purpose::Dataset(kind) => match datasets_from_files(kind, &files) {
                Ok((train, test)) => {
                    self.data_label = format!(
                        "{kind:?} files: {} train / {} test, {}x{}x{}",
                        train.len(),
                        test.len(),
                        train.channels,
                        train.height,
                        train.width
                    );
                    self.setup.classes = train.classes;
                    if self.setup.config.is_none() {
                        // The preset that takes this input, if one does.
                        let shape = [train.channels, train.height, train.width];
                        if let Some(p) = crate::model::PRESETS.iter().find(|p| {
                            ModelConfig::preset(p).is_some_and(|m| m.data_shape() == shape)
                        }) {
                            self.setup.preset = p.to_string();
                        }
                    }
                    self.data = Some((Arc::new(train), Arc::new(test)));
                    self.notice = Some(format!("loaded {}", self.data_label));
                    self.rebuild();
                }
                Err(e) => self.error = Some(format!("data not loaded: {e}")),
            },
            Purpose::Events(kind) => {
                let settings = files::event_frame_settings(kind);
                match crate::data::events::event_datasets_from_files(kind, &files, &settings, None)
                {
                    Ok(d) => self.use_event_data(kind, d.train, d.test, &d.note),
                    Err(e) => self.error = Some(format!("data not loaded: {e}")),
                }
            }
            Purpose::Frames => {
                let Some((name, bytes)) = files.into_iter().next() else {
                    return;
                };
                match crate::data::events::decode_frames_file(&name, &bytes) {
                    Ok(f) => self.use_event_data(f.kind, f.train, f.test, &format!("from {name}")),
                    Err(e) => self.error = Some(format!("frames not loaded: {e}")),
                }
            }
            Purpose::ModelConfig => {
                let Some((name, bytes)) = files.into_iter().next() else {
                    return;
                };
                let parsed = std::str::from_utf8(&bytes)
                    .map_err(|e| e.to_string())
                    .and_then(|text| ModelConfig::from_json(text).map_err(|e| e.to_string()))
                    .and_then(|config| {
                        crate::model::summary::Summary::new(&config)
                            .map(|_| config)
                            .map_err(|e| e.to_string())
                    });
                match parsed {
                    Ok(config) => {
                        self.setup.use_config(name.clone(), config);
                        self.notice = Some(format!("model config {name} loaded"));
                        self.rebuild();
                    }
                    Err(e) => self.error = Some(format!("{name}: not a valid model config: {e}")),
                }
            }
            Purpose::Checkpoint => {
                let Some((name, bytes)) = files.into_iter().next() else {
                    return;
                };
                if let Err(e) = self.load_checkpoint(&name, &bytes) {
                    self.error = Some(format!("checkpoint not loaded: {e}"));
                }
            }
            Purpose::Ablation => {
                let Some((name, bytes)) = files.into_iter().next() else {
                    return;
                };
                let parsed = std::str::from_utf8(&bytes)
                    .map_err(|e| e.to_string())
                    .and_then(crate::ablate::report::AblationReport::from_json);
                match parsed {
                    Ok(report) => {
                        self.notice = Some(format!(
                            "ablation {name}: {} cells, shown in the training view",
                            report.cells.len()
                        ));
                        self.ablation = Some((name, report));
                        self.view = View::Training;
                    }
                    Err(e) => self.error = Some(format!("{name}: not an ablation report: {e}")),
                }
            }
        }
    }

    /// Installs decoded event frames (validated already) as the data: T becomes the number of
    /// frames, and the data set's preset is chosen when no model file is loaded and its input
    /// size fits.
    fn use_event_data(
        &mut self,
        kind: crate::data::events::EventKind,
        train: Dataset,
        test: Dataset,
        note: &str,
    ) {
        self.set_event_data(kind, train, test, note);
        self.rebuild();
    }

    /// [`Self::use_event_data`] without rebuilding the run.
    fn set_event_data(
        &mut self,
        kind: crate::data::events::EventKind,
        train: Dataset,
        test: Dataset,
        note: &str,
    ) {
        let frames = train.channels / 2;
        self.data_label = format!(
            "{}: {} train / {} test, {frames} event frames of 2x{}x{}",
            kind.name(),
            train.len(),
            test.len(),
            train.height,
            train.width
        );
        self.setup.classes = train.classes;
        self.setup.timesteps = frames.max(1);
        // The event presets' largest batches under the 128 MiB binding limit (conv1's output
        // is T * C * H * W floats per sample): dvsgesture 16, cifar10dvs (vgg11) 11.
        let most = match kind {
            crate::data::events::EventKind::NMnist => usize::MAX,
            crate::data::events::EventKind::DvsGesture => 16,
            crate::data::events::EventKind::Cifar10Dvs => 8,
        };
        self.setup.batch = self.setup.batch.min(most);
        if self.setup.config.is_none() {
            if let Some(m) = ModelConfig::preset(kind.name()) {
                if m.input == [2, train.height, train.width] {
                    self.setup.preset = kind.name().to_string();
                }
            }
        }
        self.data = Some((Arc::new(train), Arc::new(test)));
        self.notice = Some(format!("loaded {} ({note})", self.data_label));
    }

    /// Builds a session for the checkpoint's model, restores it, and only then replaces the
    /// current run. The run is left paused at the checkpoint's step.
    fn load_checkpoint(&mut self, name: &str, bytes: &[u8]) -> Result<(), String> {
        let gpu = self.gpu.clone().ok_or("no GPU device")?;
        let ck = Checkpoint::from_bytes(name, bytes).map_err(|e| e.to_string())?;
        let meta = CheckpointMeta::read(name, &ck).map_err(|e| e.to_string())?;
        let model = match meta.model {
            Some(model) => model,
            None => self.setup.model()?,
        };
        let mut session = self.build_session(&model)?;
        session
            .trainer
            .restore(&gpu, &ck)
            .map_err(|e| format!("{name}: {e}"))?;
        self.setup.use_config(name.to_string(), model);
        self.session = Some(session);
        self.started = true;
        self.history = History::default();
        self.spikes.clear();
        self.draw.network_changed();
        self.weights.clear();
        self.error = None;
        self.notice = Some(format!("loaded {name}"));
        Ok(())
    }

    /// Carries out a setup-panel action (start, pause, load, ...).
    pub fn apply(&mut self, action: Action) {
        match action {
            Action::Start => self.start(),
            Action::Pause => {
                if let Some(s) = &mut self.session {
                    s.set_running(false);
                }
            }
            Action::Resume => {
                if let Some(s) = &mut self.session {
                    s.set_running(true);
                }
            }
            Action::Reset => self.rebuild(),
            Action::Stop => {
                if let Some(s) = &mut self.session {
                    s.stop();
                }
            }
            Action::UseEmbedded => {
                match (
                    embedded_mnist10k(EmbeddedSplit::Train),
                    embedded_mnist10k(EmbeddedSplit::Test),
                ) {
                    (Ok(train), Ok(test)) => {
                        self.data = Some((Arc::new(train), Arc::new(test)));
                        self.data_label = "embedded MNIST-10k (8,000 train / 2,000 test)".into();
                        self.setup.classes = 10;
                        if self.setup.config.is_none() {
                            self.setup.preset = "mnist".into();
                        }
                        self.rebuild();
                    }
                    (Err(e), _) | (_, Err(e)) => self.error = Some(format!("embedded data: {e}")),
                }
            }
            Action::LoadData(kind) => self.files.pick(Purpose::Dataset(kind)),
            Action::LoadEvents(kind) => self.files.pick(Purpose::Events(kind)),
            Action::LoadFrames => self.files.pick(Purpose::Frames),
            Action::LoadConfig => self.files.pick(Purpose::ModelConfig),
            Action::UsePreset => {
                self.setup.config = None;
                self.rebuild();
            }
            Action::LoadCheckpoint => self.files.pick(Purpose::Checkpoint),
            Action::SaveCheckpoint => match (&self.gpu, &self.session) {
                (Some(gpu), Some(s)) => {
                    let name = format!(
                        "bitspike-{}-step{}.safetensors",
                        s.trainer.model().name,
                        s.trainer.step()
                    );
                    self.saving = Some((gpu.batch(|| s.trainer.checkpoint(gpu)), name))
                }
                _ => self.error = Some("no network to save".into()),
            },
            Action::KeepReference => {
                self.reference = Some(Reference {
                    label: self.setup.label(),
                    history: self.history.clone(),
                });
            }
            Action::ClearReference => self.reference = None,
            Action::LoadAblation => self.files.pick(Purpose::Ablation),
            Action::CloseAblation => self.ablation = None,
            Action::None => {}
        }
    }

    fn status_line(&self) -> String {
        let Some(s) = &self.session else {
            return if self.frames < 2 {
                "compiling GPU pipelines…".into()
            } else {
                "no run".into()
            };
        };
        let (steps, evals) = s.epoch_shape();
        let epochs = s.trainer.config().epochs;
        let epoch = (s.trainer.epoch() + 1).min(epochs);
        let phase = match s.phase() {
            Phase::Training { step } => format!("epoch {epoch}/{epochs}, step {step}/{steps}"),
            Phase::Evaluating { batch } => {
                format!("epoch {epoch}/{epochs}, evaluating {batch}/{evals}")
            }
            Phase::Summarising => format!("epoch {epoch}/{epochs}, summarising"),
            Phase::Done => format!("done: {} epochs", s.trainer.epoch()),
        };
        format!(
            "{phase}  ·  global step {}  ·  {} in flight",
            s.trainer.step(),
            s.in_flight()
        )
    }

    fn progress(&self) -> f32 {
        let Some(s) = &self.session else {
            return 0.0;
        };
        let (steps, evals) = s.epoch_shape();
        let within = match s.phase() {
            Phase::Training { step } => step as f32 / (steps + evals).max(1) as f32,
            Phase::Evaluating { batch } => (steps + batch) as f32 / (steps + evals).max(1) as f32,
            Phase::Summarising | Phase::Done => 1.0,
        };
        within.clamp(0.0, 1.0)
    }

    /// True once a scripted run (screenshot, browser test) has taken its steps.
    fn scripted_training_done(&self) -> bool {
        self.session.as_ref().is_some_and(|s| {
            (s.trainer.step() >= self.options.after_steps as u64 || s.phase() == Phase::Done)
                && s.idle()
        })
    }

    /// Drives a `--screenshot` run one frame further.
    fn drive_screenshot(&mut self, ctx: &egui::Context) {
        let mut trained = self.scripted_training_done();
        if trained && self.screenshot.is_some() {
            // `--compare-agmm`: the first finished run becomes the reference, then the
            // configured run trains over it.
            if let Some(mode) = self.options.compare_agmm.take() {
                self.reference = Some(Reference {
                    label: self.setup.label(),
                    history: self.history.clone(),
                });
                self.setup.agmm = mode;
                self.start();
                trained = false;
            }
        }
        let capturing = self
            .screenshot
            .as_ref()
            .is_some_and(|p| p.stage == Stage::Requested);
        let report = capturing.then(|| self.report());
        let Some(plan) = &mut self.screenshot else {
            return;
        };
        if plan.timed_out() {
            self.fail_screenshot(ctx, "timed out before the capture");
            return;
        }
        if let Some(err) = &self.error {
            let message = err.clone();
            self.fail_screenshot(ctx, &message);
            return;
        }
        if self.session.is_none() {
            if self.frames > 2 {
                self.fail_screenshot(ctx, "no training session");
            }
            return;
        }
        match plan.stage {
            Stage::Training => {
                if trained {
                    match plan.view {
                        View::Spikes => self.spikes.request(0),
                        View::Draw => draw_view::draw_sample_seven(&mut self.draw),
                        View::Weights => self.weights.request(),
                        _ => {}
                    }
                    plan.stage = Stage::Probing;
                }
            }
            Stage::Probing => {
                let ready = match plan.view {
                    View::Spikes => !self.spikes.busy() && self.spikes.result.is_some(),
                    View::Draw => !self.draw.busy() && self.draw.result.is_some(),
                    View::Weights => !self.weights.busy() && self.weights.step.is_some(),
                    _ => true,
                };
                if ready {
                    // Show a membrane trace without a click.
                    match plan.view {
                        View::Spikes => {
                            if let Some(r) = &self.spikes.result {
                                self.spikes.panel.pick_interesting(r);
                            }
                        }
                        View::Draw => {
                            if let Some(r) = &self.draw.result {
                                self.draw.panel.pick_interesting(r);
                            }
                        }
                        _ => {}
                    }
                    plan.stage = Stage::Settling(0);
                }
            }
            Stage::Settling(n) if n >= screenshot::SETTLE_FRAMES => plan.request(ctx),
            Stage::Settling(n) => plan.stage = Stage::Settling(n + 1),
            Stage::Requested => {
                if let Some(image) = plan.take_image() {
                    let saved = screenshot::save_png(&plan.path, &image);
                    plan.stage = Stage::Finished;
                    match saved {
                        Ok(()) => {
                            log::info!("screenshot written to {}", plan.path.display());
                            // Machine-readable facts of the run (step times for the README).
                            if let Some(r) = &report {
                                println!("{r}");
                            }
                            ctx.send_viewport_cmd(egui::ViewportCommand::Close);
                        }
                        Err(e) => self.fail_screenshot(ctx, &e),
                    }
                }
            }
            Stage::Finished => {}
        }
    }

    fn fail_screenshot(&mut self, ctx: &egui::Context, message: &str) {
        if let Ok(mut o) = self.outcome.lock() {
            *o = Some(message.to_string());
        }
        if let Some(plan) = &mut self.screenshot {
            plan.stage = Stage::Finished;
        }
        ctx.send_viewport_cmd(egui::ViewportCommand::Close);
    }

    /// The app's state as JSON, for the browser test and anyone scripting the page.
    pub fn report(&self) -> serde_json::Value {
        let session = self.session.as_ref();
        let rect = self.draw.canvas_rect.filter(|_| self.view == View::Draw);
        serde_json::json!({
            "adapter": self.gpu.as_ref().map(|g| g.describe()),
            "ready": session.is_some(),
            "boot_seconds": self.boot_seconds,
            "pipelines": self.gpu.as_ref().map(|g| g.cached_pipelines()),
            "view": self.view.name(),
            "step": session.map(|s| s.trainer.step()),
            "running": session.is_some_and(|s| s.running()),
            "idle": session.is_none_or(|s| s.idle()),
            "losses": self.history.step_loss.iter().map(|p| p[1]).collect::<Vec<_>>(),
            "samples_per_second": self.history.samples_per_second.last().map(|p| p[1]),
            "draw_rect": rect.map(|r| [r.min.x, r.min.y, r.width(), r.height()]),
            "draw_ink": self.draw.ink.iter().filter(|&&v| v > 0.0).count(),
            "prediction": self.draw.result.as_ref().map(|r| r.prediction()),
            "probabilities": self.draw.result.as_ref().map(|r| r.probabilities()),
            "draw_layers": self.draw.result.as_ref().map(|r| r.layers.len()),
            "model": session.map(|s| s.trainer.model().name.clone()),
            "probe": self.spikes.result.as_ref().map(|r| serde_json::json!({
                "sample": r.sample,
                "label": r.label,
                "mean_logits": r.mean_logits(),
                "spikes": r.layers.iter().map(|l| raster::spike_counts(&l.spikes, r.timesteps)).collect::<Vec<_>>(),
            })),
            "notice": self.notice,
            "error": self.error,
        })
    }
}

impl eframe::App for BitspikeApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        let ctx = ui.ctx().clone();
        self.frames += 1;
        if self.frames == 2 {
            self.boot();
        }
        if self.frames == 1 && ctx.content_rect().width() < 800.0 {
            self.show_setup = false;
        }
        self.tick(&ctx);
        self.handle_files(&ctx);
        if self.options.auto_start {
            if let Some(view) = self.options.then_view {
                if self.scripted_training_done() && self.view != view {
                    self.view = view;
                }
            }
        }

        egui::Panel::top("top bar").show(ui, |ui| {
            ui.horizontal_wrapped(|ui| {
                ui.heading("bitspike");
                ui.separator();
                ui.toggle_value(&mut self.show_setup, "Setup");
                ui.separator();
                ui.selectable_value(&mut self.view, View::Training, "Training");
                ui.selectable_value(&mut self.view, View::Spikes, "Spikes");
                ui.selectable_value(&mut self.view, View::Draw, "Draw");
                ui.selectable_value(&mut self.view, View::Weights, "Weights");
                ui.selectable_value(&mut self.view, View::Model, "Model");
                ui.separator();
                ui.add(
                    egui::ProgressBar::new(self.progress())
                        .desired_width(160.0)
                        .show_percentage(),
                );
                ui.label(self.status_line());
            });
            if let Some(gpu) = &self.gpu {
                ui.small(format!("device: {}", gpu.describe()));
            }
        });

        if self.error.is_some() || self.notice.is_some() {
            egui::Panel::bottom("message bar").show(ui, |ui| {
                if let Some(message) = self.error.clone() {
                    ui.horizontal(|ui| {
                        ui.colored_label(egui::Color32::from_rgb(255, 110, 100), message);
                        if ui.button("Dismiss").clicked() {
                            self.error = None;
                        }
                    });
                }
                if let Some(message) = self.notice.clone() {
                    ui.horizontal(|ui| {
                        ui.label(message);
                        if ui.small_button("x").clicked() {
                            self.notice = None;
                        }
                    });
                }
            });
        }

        let info = PanelInfo {
            state: self.run_state(),
            data_label: &self.data_label,
            has_reference: self.reference.as_ref().map(|r| r.label.as_str()),
            ablation: self.ablation.as_ref().map(|(label, _)| label.as_str()),
            busy: self.files.busy() || self.saving.is_some(),
        };
        let action = if self.show_setup {
            egui::Panel::left("setup")
                .default_size(250.0)
                .show(ui, |ui| {
                    egui::ScrollArea::vertical()
                        .show(ui, |ui| setup::show(ui, &mut self.setup, info))
                        .inner
                })
                .inner
        } else {
            Action::None
        };
        self.apply(action);

        egui::CentralPanel::default().show(ui, |ui| {
            if self.frames < 2 {
                ui.heading("Compiling GPU pipelines…");
                return;
            }
            match self.view {
                View::Training => match &self.ablation {
                    Some((label, report)) => training_view::show_ablation(ui, label, report),
                    None => training_view::show(ui, &self.history, self.reference.as_ref()),
                },
                View::Spikes => spikes_view::show(ui, &mut self.spikes, self.session.as_ref()),
                View::Draw => draw_view::show(ui, &mut self.draw, self.session.as_ref()),
                View::Weights => weights_view::show(ui, &mut self.weights, self.session.as_ref()),
                View::Model => model_view::show(ui, self.setup.model(), &self.history),
            }
        });

        if std::mem::take(&mut self.draw.load_demo) {
            self.open_files(
                Purpose::Checkpoint,
                vec![(
                    "demo mnist-demo.safetensors".into(),
                    DEMO_CHECKPOINT.to_vec(),
                )],
            );
            // A probe asked for at start runs on the demo model (loading cleared the views).
            if let Some(sample) = self.options.probe_sample.take() {
                self.spikes.request(sample);
            }
        }
        self.drive_screenshot(&ctx);
        #[cfg(target_arch = "wasm32")]
        web::publish(self);
        let busy = self.frames < 3
            || self
                .session
                .as_ref()
                .is_some_and(|s| s.running() || !s.idle())
            || self.spikes.busy()
            || self.draw.busy()
            || self.weights.busy()
            || self.files.busy()
            || self.saving.is_some()
            || self.screenshot.is_some();
        if busy {
            // Keep ticking while work is queued; readbacks arrive without input events. On a
            // CPU adapter the renderer and the kernels share the same cores: unprompted
            // frames come 4 per second there (input still repaints at once), which keeps
            // ~70 % of the training throughput instead of ~50 % at 60 fps (lavapipe, 2 cores).
            let cpu = self.gpu.as_ref().is_some_and(|g| g.submit_blocks());
            ctx.request_repaint_after(std::time::Duration::from_millis(if cpu { 250 } else { 16 }));
        }
    }
}
