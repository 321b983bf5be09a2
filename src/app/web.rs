//! The browser entry point (`index.html` calls [`start`]) and the page glue: the app's state
//! published as JSON for scripts and the browser test ([`publish`]), checkpoint downloads
//! ([`download`]).

use std::sync::Arc;

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::{AppOptions, BitspikeApp, View};

/// Id of the element that holds [`BitspikeApp::report`] as JSON text.
pub const REPORT_ID: &str = "bitspike-report";

/// Starts the app on the canvas with id `canvas_id`. URL parameters: `view=NAME` (first view),
/// `demo=1` (start from the bundled demo model), `probe=N` (probe test sample N), `autotest=K` (train K steps at once, then show
/// the draw view: the browser test).
/// Rejects with a readable message when the browser has no usable WebGPU.
#[wasm_bindgen]
pub async fn start(canvas_id: String) -> Result<(), JsValue> {
    let _ = eframe::WebLogger::init(log::LevelFilter::Warn);
    let window = web_sys::window().ok_or("no window")?;
    let document = window.document().ok_or("no document")?;
    let canvas = document
        .get_element_by_id(&canvas_id)
        .ok_or_else(|| format!("no element #{canvas_id}"))?
        .dyn_into::<web_sys::HtmlCanvasElement>()
        .map_err(|_| format!("#{canvas_id} is not a canvas"))?;
    let query = window.location().search().unwrap_or_default();
    let param = |key: &str| -> Option<String> {
        query
            .trim_start_matches('?')
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.to_string())
    };
    let mut options = AppOptions::default();
    if let Some(view) = param("view").as_deref().and_then(View::parse) {
        options.view = view;
    }
    options.load_demo = param("demo").is_some_and(|v| v == "1");
    options.probe_sample = param("probe").and_then(|v| v.parse().ok());
    if let Some(steps) = param("autotest").and_then(|k| k.parse::<usize>().ok()) {
        options.auto_start = true;
        options.after_steps = steps;
        options.then_view = Some(View::Draw);
    }

    use eframe::egui_wgpu::{WgpuConfiguration, WgpuSetup, WgpuSetupCreateNew};
    let mut create = WgpuSetupCreateNew::without_display_handle();
    // WebGPU only: the compute kernels have no WebGL path.
    create.instance_descriptor.backends = wgpu::Backends::BROWSER_WEBGPU;
    create.device_descriptor = Arc::new(super::device_descriptor);
    let web_options = eframe::WebOptions {
        wgpu_options: WgpuConfiguration {
            wgpu_setup: WgpuSetup::CreateNew(create),
            ..Default::default()
        },
        ..Default::default()
    };
    eframe::WebRunner::new()
        .start(
            canvas,
            web_options,
            Box::new(move |cc| Ok(Box::new(BitspikeApp::new(cc, options, Arc::default())))),
        )
        .await
}

/// Writes the app's report into `#bitspike-report`: every frame while starting (the page
/// measures its time to ready), then every 10th (cheap, fresh enough).
pub fn publish(app: &BitspikeApp) {
    if app.frames > 100 && app.frames % 10 != 1 {
        return;
    }
    let Some(element) = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.get_element_by_id(REPORT_ID))
    else {
        return;
    };
    element.set_text_content(Some(&app.report().to_string()));
}

/// Offers `bytes` as a file download named `name`.
pub fn download(name: &str, bytes: &[u8]) -> Result<(), String> {
    let js = |e: JsValue| format!("download failed: {e:?}");
    let array = js_sys::Uint8Array::from(bytes);
    let parts = js_sys::Array::of1(&array);
    let options = web_sys::BlobPropertyBag::new();
    options.set_type("application/octet-stream");
    let blob =
        web_sys::Blob::new_with_u8_array_sequence_and_options(&parts, &options).map_err(js)?;
    let url = web_sys::Url::create_object_url_with_blob(&blob).map_err(js)?;
    let document = web_sys::window()
        .and_then(|w| w.document())
        .ok_or("no document")?;
    let anchor = document
        .create_element("a")
        .map_err(js)?
        .dyn_into::<web_sys::HtmlAnchorElement>()
        .map_err(|_| "no anchor element".to_string())?;
    anchor.set_href(&url);
    anchor.set_download(name);
    anchor.click();
    let _ = web_sys::Url::revoke_object_url(&url);
    Ok(())
}
