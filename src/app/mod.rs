//! The desktop app (`bitspike gui`): an eframe window on the wgpu renderer whose device also
//! runs the training kernels. Train and watch the curves ([`training_view`]), look at one
//! sample's spikes layer by layer ([`spikes_view`]).
//!
//! Every frame does a bounded amount of GPU work (at most one submission, at most
//! [`session::MAX_IN_FLIGHT`] queued) and only collects readbacks that have already arrived:
//! the UI thread never waits for the GPU.

pub mod model_view;
pub mod raster;
pub mod screenshot;
pub mod session;
pub mod setup;
pub mod spikes_view;
pub mod training_view;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::data::{embedded_mnist10k, Dataset, EmbeddedSplit};
use crate::gpu::{limits, GpuContext};

use screenshot::{ScreenshotPlan, Stage};
use session::{Phase, Session};
use setup::{Action, RunState, Setup};
use spikes_view::SpikesState;
use training_view::History;

/// The views in the central panel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum View {
    #[default]
    Training,
    Spikes,
    /// The model summary: layers, bits, operations, size, energy.
    Model,
}

impl View {
    /// Parses a `--view` value.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "training" => Some(View::Training),
            "spikes" => Some(View::Spikes),
            "model" => Some(View::Model),
            _ => None,
        }
    }
}

/// How to start the app.
#[derive(Clone, Debug, Default)]
pub struct AppOptions {
    /// Capture the window to this PNG and exit.
    pub screenshot: Option<PathBuf>,
    /// The view to show first (and to capture).
    pub view: View,
    /// Training steps before the capture.
    pub after_steps: usize,
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

/// eframe options: the wgpu renderer, its device opened with the limits our kernels need
/// (the WebGPU defaults: 8 storage buffers per stage, 128 MiB bindings, ...).
pub fn native_options(options: &AppOptions) -> eframe::NativeOptions {
    use eframe::egui_wgpu::{WgpuConfiguration, WgpuSetup, WgpuSetupCreateNew};
    let mut create = WgpuSetupCreateNew::without_display_handle();
    create.device_descriptor = Arc::new(|_adapter| eframe::wgpu::DeviceDescriptor {
        label: Some("bitspike gui device"),
        required_limits: eframe::wgpu::Limits {
            // egui wants large textures for big (4k) surfaces; the rest is what compute needs.
            max_texture_dimension_2d: 8192,
            ..limits::required_limits()
        },
        ..Default::default()
    });
    let mut viewport = egui::ViewportBuilder::default()
        .with_title("bitspike")
        .with_inner_size(WINDOW_SIZE);
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

/// The app state.
pub struct BitspikeApp {
    gpu: Option<Arc<GpuContext>>,
    data: Option<(Arc<Dataset>, Arc<Dataset>)>,
    setup: Setup,
    session: Option<Session>,
    started: bool,
    history: History,
    spikes: SpikesState,
    view: View,
    /// The last error, shown in the window until dismissed.
    error: Option<String>,
    screenshot: Option<ScreenshotPlan>,
    /// Screenshot-mode failure reported to [`run`] after the window closes.
    outcome: Arc<Mutex<Option<String>>>,
}

impl BitspikeApp {
    fn new(
        cc: &eframe::CreationContext<'_>,
        options: AppOptions,
        outcome: Arc<Mutex<Option<String>>>,
    ) -> Self {
        let mut app = Self {
            gpu: None,
            data: None,
            setup: Setup::default(),
            session: None,
            started: false,
            history: History::default(),
            spikes: SpikesState::default(),
            view: options.view,
            error: None,
            screenshot: options
                .screenshot
                .clone()
                .map(|p| ScreenshotPlan::new(p, options.view, options.after_steps)),
            outcome,
        };
        match &cc.wgpu_render_state {
            Some(rs) => {
                let gpu = GpuContext::from_device(
                    rs.device.clone(),
                    rs.queue.clone(),
                    rs.adapter.get_info(),
                );
                log::info!("bitspike gui on {}", gpu.describe());
                app.gpu = Some(Arc::new(gpu));
            }
            None => app.error = Some("eframe did not start the wgpu renderer".into()),
        }
        match (
            embedded_mnist10k(EmbeddedSplit::Train),
            embedded_mnist10k(EmbeddedSplit::Test),
        ) {
            (Ok(train), Ok(test)) => app.data = Some((Arc::new(train), Arc::new(test))),
            (Err(e), _) | (_, Err(e)) => app.error = Some(format!("embedded data: {e}")),
        }
        app.rebuild();
        if app.screenshot.is_some() && app.session.is_some() {
            app.start();
        }
        app
    }

    /// Drops the run and builds an idle one from the setup.
    fn rebuild(&mut self) {
        self.session = None;
        self.started = false;
        self.history = History::default();
        self.spikes = SpikesState::default();
        let (Some(gpu), Some((train, test))) = (&self.gpu, &self.data) else {
            return;
        };
        let built = self.setup.model().and_then(|model| {
            Session::new(
                gpu,
                &model,
                self.setup.train_config(),
                train.clone(),
                test.clone(),
            )
            .map_err(|e| e.to_string())
        });
        match built {
            Ok(mut s) => {
                if let Some(plan) = &self.screenshot {
                    s.step_limit = Some(plan.after_steps as u64);
                }
                self.session = Some(s);
            }
            Err(e) => self.error = Some(format!("building the network: {e}")),
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
            Some(s) if s.phase == Phase::Done => RunState::Done,
            Some(s) if s.running => RunState::Running,
            Some(_) if self.started => RunState::Paused,
            Some(_) => RunState::Fresh,
        }
    }

    /// The frame's GPU work: session first, then the spikes probe. Errors stop the run and
    /// are shown; nothing panics.
    fn tick(&mut self) {
        let (Some(gpu), Some(session)) = (&self.gpu, &mut self.session) else {
            return;
        };
        if let Err(e) = session.tick(gpu, &mut self.history) {
            session.set_running(false);
            self.error = Some(format!("training stopped: {e}"));
        }
        if let Err(e) = self.spikes.tick(gpu, session) {
            self.error = Some(format!("spikes probe: {e}"));
        }
    }

    fn status_line(&self) -> String {
        let Some(s) = &self.session else {
            return "no run".into();
        };
        let (steps, evals) = s.epoch_shape();
        let epochs = s.trainer.config.epochs;
        let epoch = (s.trainer.epoch + 1).min(epochs);
        let phase = match s.phase {
            Phase::Training { step } => format!("epoch {epoch}/{epochs}, step {step}/{steps}"),
            Phase::Evaluating { batch } => {
                format!("epoch {epoch}/{epochs}, evaluating {batch}/{evals}")
            }
            Phase::Summarising => format!("epoch {epoch}/{epochs}, summarising"),
            Phase::Done => format!("done: {} epochs", s.trainer.epoch),
        };
        format!(
            "{phase}  ·  global step {}  ·  {} in flight",
            s.trainer.net.step,
            s.in_flight()
        )
    }

    fn progress(&self) -> f32 {
        let Some(s) = &self.session else {
            return 0.0;
        };
        let (steps, evals) = s.epoch_shape();
        let within = match s.phase {
            Phase::Training { step } => step as f32 / (steps + evals).max(1) as f32,
            Phase::Evaluating { batch } => (steps + batch) as f32 / (steps + evals).max(1) as f32,
            Phase::Summarising | Phase::Done => 1.0,
        };
        within.clamp(0.0, 1.0)
    }

    /// Drives a `--screenshot` run one frame further.
    fn drive_screenshot(&mut self, ctx: &egui::Context) {
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
        let Some(session) = &self.session else {
            self.fail_screenshot(ctx, "no training session");
            return;
        };
        match plan.stage {
            Stage::Training => {
                let trained = session.trainer.net.step >= plan.after_steps as u64
                    || session.phase == Phase::Done;
                if trained && session.idle() {
                    if plan.view == View::Spikes {
                        self.spikes.request(0);
                        plan.stage = Stage::Probing;
                    } else {
                        plan.stage = Stage::Settling(0);
                    }
                }
            }
            Stage::Probing => {
                if !self.spikes.busy() && self.spikes.result.is_some() {
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
}

impl eframe::App for BitspikeApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.tick();
        let ctx = ui.ctx().clone();

        egui::Panel::top("top bar").show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.heading("bitspike");
                ui.separator();
                ui.selectable_value(&mut self.view, View::Training, "Training");
                ui.selectable_value(&mut self.view, View::Spikes, "Spikes");
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

        if let Some(message) = self.error.clone() {
            egui::Panel::bottom("error bar").show(ui, |ui| {
                ui.horizontal(|ui| {
                    ui.colored_label(egui::Color32::from_rgb(255, 110, 100), message);
                    if ui.button("Dismiss").clicked() {
                        self.error = None;
                    }
                });
            });
        }

        let state = self.run_state();
        let action = egui::Panel::left("setup")
            .default_size(250.0)
            .show(ui, |ui| setup::show(ui, &mut self.setup, state))
            .inner;
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
            Action::None => {}
        }

        egui::CentralPanel::default().show(ui, |ui| match self.view {
            View::Training => training_view::show(ui, &self.history),
            View::Spikes => spikes_view::show(ui, &mut self.spikes, self.session.as_ref()),
            View::Model => model_view::show(ui, self.setup.model(), &self.history),
        });

        self.drive_screenshot(&ctx);
        let busy = self
            .session
            .as_ref()
            .is_some_and(|s| s.running || !s.idle())
            || self.spikes.busy()
            || self.screenshot.is_some();
        if busy {
            // Keep ticking while work is queued; readbacks arrive without input events.
            ctx.request_repaint_after(std::time::Duration::from_millis(16));
        }
    }
}
