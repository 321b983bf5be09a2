// Browser test: serves web/dist on 127.0.0.1, opens it in headless Chromium (the Debian
// package, no browser download) with WebGPU, trains K steps in the page, draws a digit with the
// mouse on the draw canvas, and checks the app's JSON report:
//   - WebGPU was found (an adapter is reported),
//   - K training steps ran and the loss fell,
//   - the drawing got a prediction (and a spike raster per layer).
// Saves a screenshot (web/test/out/browser.png) and prints the timings as JSON.
// Usage: node browser-test.mjs [K]   (env CHROMIUM=/path overrides the browser)
import { chromium } from "playwright-core";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, statSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, "..", "dist");
const out = join(here, "out");
const steps = Number(process.argv[2] || 8);
const port = 8000 + Math.floor(Math.random() * 1000);
const fail = (msg) => { console.error(`browser test FAILED: ${msg}`); process.exitCode = 1; };

mkdirSync(out, { recursive: true });
const wasmBytes = statSync(join(dist, "pkg", "bitspike_bg.wasm")).size;
const server = spawn("python3", ["-m", "http.server", "--bind", "127.0.0.1", String(port),
  "--directory", dist], { stdio: "ignore" });
await new Promise((r) => setTimeout(r, 800));

const common = ["--headless=new", "--no-sandbox", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"];
// playwright gives each browser a fresh temporary profile.
const launch = (args) => chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium", args: [...common, ...args] });
const url = (query) => `http://127.0.0.1:${port}/index.html${query}`;
let summary = { steps, wasm_bytes: wasmBytes };

// Row `row` of a 2-D little-endian float32 .npy file (what `bitspike eval --dump-logits` writes).
function readNpyRow(path, row) {
  const buf = readFileSync(path);
  const headerLen = buf.readUInt16LE(8);
  const header = buf.toString("latin1", 10, 10 + headerLen);
  const shape = header.match(/'shape': \((\d+), (\d+)\)/).slice(1).map(Number);
  const data = new Float32Array(buf.buffer.slice(buf.byteOffset + 10 + headerLen, buf.byteOffset + buf.length));
  return Array.from(data.subarray(row * shape[1], (row + 1) * shape[1]));
}

// Draws a "7" with the mouse into the draw canvas at rect [x, y, w, h] (CSS pixels = egui
// points at zoom 1) and waits for the app's prediction; returns the report.
async function drawSeven(page, [x, y, w, h]) {
  const at = (u, v) => [x + u * w, y + v * h];
  await page.mouse.move(...at(0.25, 0.22));
  await page.mouse.down();
  await page.mouse.move(...at(0.75, 0.22), { steps: 12 });
  await page.mouse.move(...at(0.42, 0.82), { steps: 16 });
  await page.mouse.up();
  await page.waitForFunction(() => {
    const r = JSON.parse(document.getElementById("bitspike-report").textContent || "{}");
    return r.error || (r.draw_ink > 0 && r.prediction !== null && r.prediction !== undefined);
  }, null, { timeout: 180_000, polling: 250 });
  const r = await report(page);
  if (r.error) throw new Error(`app error: ${r.error}`);
  return r;
}

// 1. Without WebGPU the page must say so (not a blank canvas).
{
  const browser = await launch(["--disable-features=WebGPU"]);
  try {
    const page = await browser.newPage();
    await page.goto(url(""));
    await page.waitForFunction(() => document.body.dataset.state, null, { timeout: 60_000 });
    const state = await page.evaluate(() => document.body.dataset.state);
    const text = await page.textContent("#bitspike-status");
    summary.without_webgpu = text;
    if (state !== "failed" || !/WebGPU/.test(text)) fail(`no clear message without WebGPU: ${state} '${text}'`);
  } finally {
    await browser.close();
  }
}

const browser = await launch(["--enable-unsafe-webgpu", "--enable-features=Vulkan",
  "--use-angle=vulkan", "--use-vulkan=swiftshader"]);
const report = async (page) => JSON.parse((await page.textContent("#bitspike-report")) || "{}");
try {
  // 2. First load to a ready UI (network built, pipelines compiled), no training.
  {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const t = Date.now();
    await page.goto(url(""));
    await page.waitForFunction(() => document.body.dataset.state, null, { timeout: 180_000 });
    summary.first_load_ms = Date.now() - t;
    summary.first_load_times_ms = await page.evaluate(() => window.bitspikeTimes);
    if ((await page.evaluate(() => document.body.dataset.state)) !== "ready") {
      throw new Error(`page did not start: ${await page.textContent("#bitspike-status")}`);
    }
    await page.close();
  }
  // 3. Train K steps in the page, then draw.
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const logs = [];
  page.on("console", (m) => logs.push(`${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => logs.push(`pageerror: ${e.message}`));
  const t0 = Date.now();
  await page.goto(url(`?autotest=${steps}`));
  await page.waitForFunction(() => document.body.dataset.state, null, { timeout: 180_000 });
  const state = await page.evaluate(() => document.body.dataset.state);
  if (state !== "ready") {
    throw new Error(`page did not start: ${await page.textContent("#bitspike-status")}\n${logs.join("\n")}`);
  }
  summary.times_ms = await page.evaluate(() => window.bitspikeTimes);
  let r = await report(page);
  summary.adapter = r.adapter;
  summary.pipelines = r.pipelines;
  summary.boot_seconds = r.boot_seconds;
  if (!r.adapter) fail("no WebGPU adapter reported");
  // Training runs by itself (autotest); wait for K steps and the switch to the draw view.
  const trainStart = Date.now();
  await page.waitForFunction(() => {
    const r = JSON.parse(document.getElementById("bitspike-report").textContent || "{}");
    return r.error || (r.step >= r.losses.length && r.losses.length > 0 && r.idle && r.draw_rect);
  }, null, { timeout: 600_000, polling: 500 });
  r = await report(page);
  if (r.error) throw new Error(`app error: ${r.error}`);
  summary.train_seconds = (Date.now() - trainStart) / 1000;
  summary.step = r.step;
  summary.losses = r.losses;
  summary.samples_per_second = r.samples_per_second;
  const l = r.losses;
  const head = (l[0] + l[1]) / 2, tail = (l[l.length - 1] + l[l.length - 2]) / 2;
  if (r.step < steps) fail(`trained ${r.step} steps, wanted ${steps}`);
  if (!(l.length >= 4 && tail < head)) fail(`loss did not fall: ${l.map((x) => x.toFixed(3)).join(" ")}`);
  r = await drawSeven(page, r.draw_rect);
  summary.prediction = r.prediction;
  summary.probabilities = r.probabilities;
  summary.draw_layers = r.draw_layers;
  if (!(r.prediction >= 0 && r.prediction < 10)) fail(`no prediction for the drawing`);
  if (!(r.draw_layers > 0)) fail(`no spike rasters for the drawing`);
  await page.close();

  // 4. A checkpoint dropped on the page (the demo model, trained 2 epochs natively) is loaded
  //    and reads a drawn 7 as 7.
  {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await page.goto(url("?view=draw"));
    await page.waitForFunction(() => {
      const r = JSON.parse(document.getElementById("bitspike-report").textContent || "{}");
      return r.error || (r.ready && r.draw_rect);
    }, null, { timeout: 180_000, polling: 250 });
    const b64 = readFileSync(join(here, "..", "..", "assets", "demo", "mnist-demo.safetensors"))
      .toString("base64");
    await page.evaluate((b64) => {
      const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const dt = new DataTransfer();
      dt.items.add(new File([bytes], "mnist-demo.safetensors"));
      const canvas = document.getElementById("bitspike-canvas");
      for (const type of ["dragenter", "dragover", "drop"]) {
        canvas.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }));
      }
    }, b64);
    await page.waitForFunction(() => {
      const r = JSON.parse(document.getElementById("bitspike-report").textContent || "{}");
      return r.error || (r.step > 0 && r.draw_rect);
    }, null, { timeout: 180_000, polling: 250 });
    let d = await report(page);
    if (d.error) throw new Error(`app error after the drop: ${d.error}`);
    summary.dropped_checkpoint = d.notice;
    d = await drawSeven(page, d.draw_rect);
    summary.demo_prediction = d.prediction;
    summary.demo_confidence = d.probabilities[d.prediction];
    if (d.prediction !== 7) fail(`demo model read the drawn 7 as ${d.prediction}`);
    await page.waitForTimeout(1500);
    await page.screenshot({ path: join(out, "browser.png") });
  }
  // 5. Same kernels, same numbers: when the native app's results are at hand (.ci/run writes
  //    them with the desktop binary), the page must reproduce them: the 8 training losses
  //    (same seed, same batches) and the demo model's logits for test sample 0.
  const nativeReport = join(out, "native-report.json");
  const nativeLogits = join(out, "native-logits.npy");
  if (existsSync(nativeReport) && existsSync(nativeLogits)) {
    const native = JSON.parse(readFileSync(nativeReport, "utf8").split("\n").find((l) => l.startsWith("{")));
    const diff = (a, b) => Math.max(...a.map((x, i) => Math.abs(x - b[i]) / Math.max(1, Math.abs(b[i]))));
    summary.losses_vs_native = diff(summary.losses, native.losses.slice(0, summary.losses.length));
    if (native.losses.length < summary.losses.length || !(summary.losses_vs_native <= 1e-4)) {
      fail(`in-page losses differ from native: ${summary.losses} vs ${native.losses}`);
    }
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await page.goto(url("?demo=1&probe=0"));
    await page.waitForFunction(() => {
      const r = JSON.parse(document.getElementById("bitspike-report").textContent || "{}");
      return r.error || (r.probe && r.step > 0);
    }, null, { timeout: 180_000, polling: 250 });
    const p = (await report(page)).probe;
    const want = readNpyRow(nativeLogits, 0);
    summary.probe_logits_vs_native = diff(p.mean_logits, want);
    if (!(summary.probe_logits_vs_native <= 1e-4)) {
      fail(`page logits ${p.mean_logits} differ from bitspike eval ${want}`);
    }
    await page.close();
  } else {
    console.log("(no native results in web/test/out: skipping the page-vs-native comparison)");
  }
  summary.total_seconds = (Date.now() - t0) / 1000;
  if (process.exitCode) console.error(logs.slice(-30).join("\n"));
} catch (e) {
  fail(e.message);
} finally {
  await browser.close();
  server.kill();
}
console.log(JSON.stringify(summary, null, 1));
if (!process.exitCode) console.log("browser test OK");
