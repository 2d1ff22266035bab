// The generator page: the form, reference images, live progress and the results grid.

import { api, newIdempotencyKey, requireSession, showImage } from "./api.js";
import { readEvents } from "./events.js";
import {
  getJob,
  imageInfo,
  jobAttempts,
  jobCost,
  jobError,
  jobImages,
  jobParams,
  loadModels,
  TERMINAL,
} from "./jobs.js";
import { ModelPicker } from "./picker.js";
import { References } from "./references.js";
import {
  $,
  clearError,
  el,
  formatCost,
  formatSeconds,
  initHeader,
  noteSynthetic,
  providerName,
  showError,
  warningText,
} from "./ui.js";
import { Viewer } from "./viewer.js";

const POLL_MS = 1000;

const form = $("#gen-form");
const errorBox = $("#gen-error");
const generateBtn = $("#generate");
const cancelBtn = $("#cancel");
const progress = $("#progress");
const stateLabel = $("#progress-state");
const elapsedLabel = $("#elapsed");
const attemptsList = $("#attempts");
const fallbackNote = $("#fallback-note");
const streamText = $("#stream-text");
const progressLink = $("#progress-link");
const cancelNote = $("#cancel-note");
const results = $("#results");
const resultMeta = $("#result-meta");
const emptyState = $("#empty-state");

const viewer = new Viewer();
const refs = new References({
  list: $("#ref-list"),
  input: $("#ref-input"),
  pick: $("#ref-pick"),
  zone: $("#drop-zone"),
  errorBox: $("#ref-error"),
  hint: $("#refs-hint"),
});

let picker = null;
/** The run in progress: {id, controller, started, timer}. */
let run = null;
/** Image URLs already in the results grid (events and the final record both name them). */
const shown = new Set();

// ------------------------------------------------------------------------------ form

function readForm() {
  const seedText = $("#seed").value.trim();
  const body = {
    prompt: $("#prompt").value.trim(),
    provider: $("#provider").value,
    model: $("#model").value || undefined,
    aspect_ratio: $("#aspect_ratio").value || undefined,
    image_size: $("#image_size").value || undefined,
    num_images: Number($("#num_images").value) || 1,
  };
  const negative = $("#negative_prompt").value.trim();
  if (negative) body.negative_prompt = negative;
  if (seedText) body.seed = Number(seedText);
  if ($("#thinking").value) body.thinking = $("#thinking").value;
  if ($("#google_search").checked && !$("#google_search").disabled) body.google_search = true;
  const options = readOptions();
  if (options && Object.keys(options).length) body.image_options = options;
  const images = refs.ids();
  if (images.length) body.images = images;
  return body;
}

/** The model options field as an object; `null` when it is not a JSON object. */
function readOptions() {
  const text = $("#image_options").value.trim();
  if (!text) return {};
  try {
    const value = JSON.parse(text);
    return value && typeof value === "object" && !Array.isArray(value) ? value : null;
  } catch {
    return null;
  }
}

function validate(body) {
  if (!body.prompt) return ["Write a prompt first: describe the image you want.", $("#prompt")];
  if (readOptions() === null) {
    return ['Model options are a JSON object, such as {"style": "Photorealism"}, or empty.', $("#image_options")];
  }
  if ($("#seed").value.trim() && !/^\d{1,10}$/.test($("#seed").value.trim())) {
    return ["The seed is a whole number (0 or more).", $("#seed")];
  }
  if (refs.busy()) return ["Wait until the reference images have finished uploading.", $("#ref-pick")];
  return null;
}

function fillForm(params) {
  $("#prompt").value = params.prompt || "";
  $("#negative_prompt").value = params.negative_prompt || "";
  $("#num_images").value = String(Math.min(4, Math.max(1, params.num_images || 1)));
  $("#seed").value = params.seed !== undefined && params.seed !== null ? String(params.seed) : "";
  if (params.seed !== undefined && params.seed !== null) $("details.more").open = true;
  if (picker) picker.set(params);
  wantedThinking = params.thinking || "";
  fillThinking(picker && picker.model);
  $("#google_search").checked = !!params.google_search;
  const options = params.image_options && Object.keys(params.image_options).length ? params.image_options : null;
  $("#image_options").value = options ? JSON.stringify(options) : "";
  if (wantedThinking || params.google_search || options) $("details.more").open = true;
}

/** The levels every model may be asked for (the service's `thinking` values). */
const THINKING_LEVELS = ["minimal", "low", "medium", "high"];
/** The level last chosen or reused: kept while models change, sent when the model takes it. */
let wantedThinking = "";

/** Offer the levels the model takes: all of them when not known, none when it takes none. */
function fillThinking(model) {
  const select = $("#thinking");
  const levels = model && Array.isArray(model.thinking_levels) ? model.thinking_levels : THINKING_LEVELS;
  select.replaceChildren(new Option("Model default", ""));
  for (const level of levels) select.add(new Option(level[0].toUpperCase() + level.slice(1), level));
  select.value = levels.includes(wantedThinking) ? wantedThinking : "";
  select.disabled = levels.length === 0;
}

function describeModel(model) {
  const info = $("#model-info");
  if (!model) {
    info.textContent = "";
    return;
  }
  const parts = [model.description || ""];
  const price = model.price_per_image && model.price_per_image[$("#image_size").value];
  if (price) parts.push(`About ${formatCost(price)} per image.`);
  if (model.shutdown) {
    const instead = model.replaced_by ? `; use ${model.replaced_by}` : "";
    const past = model.shutdown <= new Date().toISOString().slice(0, 10);
    parts.push(
      past
        ? `Past its announced shutdown date (${model.shutdown}): it may be refused at any time${instead}.`
        : `Retires on ${model.shutdown}${instead}.`,
    );
  }
  info.textContent = parts.filter(Boolean).join(" ");
  refs.setLimit(model.accepts_images === false ? 0 : model.max_input_images || 3);
  fillThinking(model);
  // A model known not to search Google cannot be asked to.
  $("#google_search").disabled = model.google_search === false;
}

// -------------------------------------------------------------------------- progress

function setRunning(on) {
  generateBtn.disabled = on;
  generateBtn.textContent = on ? "Generating…" : "Generate";
  cancelBtn.hidden = !on;
  form.setAttribute("aria-busy", on ? "true" : "false");
}

function resetOutput() {
  clearError(errorBox);
  cancelNote.hidden = true;
  attemptsList.replaceChildren();
  fallbackNote.hidden = true;
  streamText.hidden = true;
  streamText.textContent = "";
  results.replaceChildren();
  shown.clear();
  resultMeta.hidden = true;
  emptyState.hidden = true;
  progress.hidden = false;
  progressLink.hidden = true;
  // On a narrow screen the output sits below the form: bring the progress into view.
  const box = progress.getBoundingClientRect();
  if (box.top > window.innerHeight - 80 || box.bottom < 0) {
    progress.scrollIntoView({ block: "start", behavior: "smooth" });
  }
  stateLabel.textContent = "Starting…";
  elapsedLabel.textContent = "0.0 s";
}

function tick() {
  if (run) elapsedLabel.textContent = formatSeconds((performance.now() - run.started) / 1000);
}

function attemptItem(a) {
  const status = a.status || "running";
  const text = a.error || a.message || (status === "ok" ? "image received" : status === "running" ? "working…" : "");
  const code = a.http_status ? ` (${a.http_status})` : "";
  return el(
    "li",
    { class: `attempt attempt-${status}`, dataset: { provider: a.provider || "", status } },
    el("span", { class: "attempt-provider" }, providerName(a.provider)),
    " · ",
    el("span", { class: "attempt-model" }, a.provider_model || a.model || ""),
    " — ",
    el("span", { class: "attempt-status" }, `${status}${code}`),
    text ? el("span", { class: "attempt-text" }, `: ${text}`) : null,
    a.duration_s ? el("span", { class: "attempt-time" }, ` (${formatSeconds(a.duration_s)})`) : null,
  );
}

function showFallback(data) {
  const from = providerName(data.from || data.from_provider);
  const to = providerName(data.to || data.to_provider);
  const why = data.reason || data.message || data.error || "";
  const route = `from ${from || "the first provider"} to ${to || "the next provider"}`;
  fallbackNote.textContent = `Fell back ${route}${why ? `: ${why}` : ""}.`;
  fallbackNote.hidden = false;
}

function addImage(info, job) {
  if (!info.url || shown.has(info.url)) return;
  shown.add(info.url);
  emptyState.hidden = true;
  const prompt = (job && job.prompt) || $("#prompt").value;
  const img = el("img", { alt: `Generated image ${info.index + 1}: ${prompt}`, class: "result-img" });
  const sizeLabel = el("span", { class: "dims" }, info.width && info.height ? `${info.width}×${info.height}` : "");
  const filename = `nanobanana-${info.id || info.index}.png`;
  const download = el("a", { class: "btn btn-small", download: filename, href: "#" }, "Download");
  const open = el("button", { type: "button", class: "btn btn-small" }, "Full size");
  const useRef = el("button", { type: "button", class: "btn btn-small" }, "Use as reference");
  const card = el(
    "li",
    { class: "result", dataset: { imageId: info.id || "" } },
    // A click on the picture opens it too; keyboard users have the "Full size" button.
    el("div", { class: "result-open" }, img),
    el("div", { class: "result-bar" }, sizeLabel, el("span", { class: "result-actions" }, open, download, useRef)),
  );
  results.append(card);
  if (results.children.length === 1 && card.getBoundingClientRect().top > window.innerHeight - 120) {
    // The first result arrives below the fold (a phone): show it.
    card.scrollIntoView({ block: "start", behavior: "smooth" });
  }
  const openIt = () => viewer.open(info.url, img.alt, download.download);
  card.querySelector(".result-open").addEventListener("click", openIt);
  open.addEventListener("click", openIt);
  useRef.addEventListener("click", async () => {
    await refs.addFromUrl(info.url, `result-${info.index + 1}.png`);
    $("#prompt").focus();
  });
  showImage(img, info.url)
    .then((src) => {
      download.href = src;
      if (!sizeLabel.textContent) sizeLabel.textContent = `${img.naturalWidth}×${img.naturalHeight}`;
      card.dataset.loaded = "true";
    })
    .catch(() => {
      card.dataset.loaded = "error";
      sizeLabel.textContent = "The image could not be loaded.";
    });
}

function showMeta(job) {
  const { cost, estimate } = jobCost(job);
  const items = [
    ["Model", `${job.model || "—"} via ${providerName(job.provider)}`],
    ["Cost", formatCost(cost, estimate)],
    ["Time", formatSeconds((job.timings && job.timings.elapsed_s) ?? job.elapsed_s)],
  ];
  resultMeta.replaceChildren(
    el("dl", { class: "meta-list" }, ...items.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)])),
    ...(job.warnings || []).map((w) => el("p", { class: "warning" }, warningText(w))),
    el("p", {}, el("a", { href: `/gallery/${encodeURIComponent(job.id)}` }, "Details in the Gallery")),
  );
  resultMeta.hidden = false;
}

/** Label every result as synthetic (made by the built-in emulator, not a model). */
function markSynthetic() {
  for (const bar of results.querySelectorAll(".result-bar")) {
    if (!bar.querySelector(".synthetic-label")) {
      const title = "Made by the built-in emulator, not a model";
      bar.prepend(el("span", { class: "badge synthetic-label", title }, "Synthetic"));
    }
  }
}

function finish(job) {
  if (!run || job.id !== run.id) return;
  const current = run;
  run = null;
  clearInterval(current.timer);
  elapsedLabel.textContent = formatSeconds((performance.now() - current.started) / 1000);
  setRunning(false);
  noteSynthetic(job.synthetic);
  const attempts = jobAttempts(job);
  if (attempts.length) attemptsList.replaceChildren(...attempts.map(attemptItem));
  if (job.text && !streamText.textContent) {
    streamText.textContent = job.text;
    streamText.hidden = false;
  }
  if (job.status === "succeeded") {
    stateLabel.textContent = `Done in ${formatSeconds((performance.now() - current.started) / 1000)}`;
    jobImages(job).forEach((info) => addImage(info, job));
    if (job.synthetic) markSynthetic();
    showMeta(job);
    const first = attempts.find((a) => a.provider && a.provider !== job.provider);
    if (first && fallbackNote.hidden) {
      showFallback({ from: first.provider, to: job.provider, reason: first.error });
    }
  } else {
    stateLabel.textContent = { blocked: "Blocked", interrupted: "Interrupted" }[job.status] || "Failed";
    showError(errorBox, jobError(job));
    if (!results.children.length) emptyState.hidden = false;
  }
}

function onEvent(type, data) {
  if (!run) return;
  const d = data && typeof data === "object" ? data : { message: String(data) };
  if (d.synthetic) noteSynthetic(true);
  switch (type) {
    case "queued":
      stateLabel.textContent = d.position ? `Queued (position ${d.position})` : "Queued";
      break;
    case "running":
    case "started":
      stateLabel.textContent = "Running";
      break;
    case "attempt": {
      stateLabel.textContent = "Running";
      const attempt = d.attempt || d;
      attemptsList.append(attemptItem(attempt));
      break;
    }
    case "fallback":
      showFallback(d);
      break;
    case "text":
    case "delta": {
      const t = d.text ?? d.delta ?? "";
      if (t) {
        streamText.textContent += t;
        streamText.hidden = false;
      }
      break;
    }
    case "image": {
      // The image is stored when the whole job ends; until then, say it has arrived.
      const info = imageInfo(d.image || d, d.index ?? 0);
      stateLabel.textContent = "Receiving images";
      if (info.url) addImage(info);
      else {
        const dims = d.width && d.height ? ` (${d.width}×${d.height})` : "";
        const text = `Image ${(d.index ?? 0) + 1} received${dims}; saving…`;
        attemptsList.append(el("li", { class: "attempt attempt-image" }, text));
      }
      break;
    }
    case "done":
      stateLabel.textContent = "Finishing";
      break;
    default:
      break;
  }
}

function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        reject(new DOMException("stopped waiting", "AbortError"));
      },
      { once: true },
    );
  });
}

/** Follow the job's events to the end, then read the stored record (the authoritative outcome,
 * with the ids of the stored images); if the stream broke early, poll until the job is done. */
async function follow(id, signal) {
  try {
    await readEvents(id, { signal, onEvent });
  } catch (err) {
    if (err && err.name === "AbortError") throw err;
    // the stream failed (a proxy, the network): polling the record still gets the outcome
  }
  for (;;) {
    const job = await getJob(id, signal);
    if (TERMINAL.has(job.status)) return job;
    await sleep(POLL_MS, signal);
  }
}

async function generate() {
  if (run) return;
  const body = readForm();
  const problem = validate(body);
  if (problem) {
    showError(errorBox, { status: 400, code: "invalid_request", message: problem[0] });
    problem[1].focus();
    return;
  }
  resetOutput();
  setRunning(true);
  const controller = new AbortController();
  run = { id: null, controller, started: performance.now(), timer: setInterval(tick, 100) };
  try {
    const job = await api("/api/generations", {
      method: "POST",
      json: body,
      headers: { "Idempotency-Key": newIdempotencyKey() },
      signal: controller.signal,
    });
    run.id = job.id;
    noteSynthetic(job.synthetic);
    stateLabel.textContent = "Queued";
    const entry = el("a", { href: `/gallery/${encodeURIComponent(job.id)}` }, "a Gallery entry");
    progressLink.replaceChildren("Saved as ", entry, ".");
    progressLink.hidden = false;
    const final = await follow(job.id, controller.signal);
    finish(final);
  } catch (err) {
    if (err && err.name === "AbortError") return; // cancelled: cancel() already updated the page
    const current = run;
    run = null;
    if (current) clearInterval(current.timer);
    setRunning(false);
    progress.hidden = !(current && current.id);
    if (current && current.id) stateLabel.textContent = "Stopped";
    emptyState.hidden = false;
    showError(errorBox, err);
  }
}

function cancel() {
  if (!run) return;
  const current = run;
  run = null;
  current.controller.abort();
  clearInterval(current.timer);
  setRunning(false);
  stateLabel.textContent = "Stopped waiting";
  const href = current.id ? `/gallery/${encodeURIComponent(current.id)}` : "/gallery";
  cancelNote.replaceChildren(
    "Stopped waiting. The generation keeps running on the server: anything the provider already made ",
    "is kept, and its result will appear in ",
    el("a", { href }, "the Gallery"),
    ".",
  );
  if (current.id) {
    const stop = el("button", { type: "button", class: "btn", id: "stop-job" }, "Cancel the generation too");
    stop.addEventListener("click", () => stopJob(current.id, href, stop));
    cancelNote.append(" ", stop);
  }
  cancelNote.hidden = false;
  cancelNote.focus();
}

// Ends the job on the server: nothing more is sent; what had arrived stays in the Gallery.
async function stopJob(id, href, button) {
  button.disabled = true;
  const link = el("a", { href }, "the Gallery");
  try {
    const job = await api(`/api/generations/${encodeURIComponent(id)}/cancel`, { method: "POST" });
    const kept = jobImages(job).length;
    const billed = job.error && job.error.may_be_billed;
    cancelNote.replaceChildren(
      "Generation cancelled: nothing more is sent to the provider. ",
      billed ? "The provider may bill the call that was already sent. " : "Nothing was billed. ",
      kept ? `The ${kept === 1 ? "image" : `${kept} images`} that had arrived ${kept === 1 ? "is" : "are"} kept in ` : "It stays in ",
      link,
      ".",
    );
  } catch (err) {
    if (err && err.code === "job_finished") {
      cancelNote.replaceChildren("It had already finished: its result is in ", link, ".");
    } else {
      button.disabled = false;
      showError(errorBox, err);
    }
  }
  cancelNote.focus();
}

// --------------------------------------------------------------------------- startup

async function applyStartState() {
  const params = new URLSearchParams(window.location.search);
  let defaults = {};
  try {
    defaults = (await api("/api/settings/defaults")) || {};
  } catch {
    defaults = {}; // no defaults saved yet: the form's own defaults apply
  }
  picker.set({ provider: defaults.provider || "openrouter", ...defaults });
  const remix = params.get("remix");
  if (remix) {
    const job = await getJob(remix);
    const p = jobParams(job);
    fillForm(p);
    for (const ref of p.images) {
      if (typeof ref === "string" && !ref.startsWith("data:")) await refs.addExisting(ref);
    }
    $("#prompt").focus();
  }
  const refImage = params.get("ref");
  if (refImage) await refs.addFromUrl(`/api/images/${encodeURIComponent(refImage)}`, "reference.png");
  describeModel(picker.model);
  form.dataset.ready = "true";
}

async function main() {
  if (!requireSession()) return;
  initHeader();
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    generate();
  });
  $("#prompt").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      form.requestSubmit();
    }
  });
  cancelBtn.addEventListener("click", cancel);
  try {
    const models = await loadModels();
    picker = new ModelPicker(
      models,
      { provider: $("#provider"), model: $("#model"), ratio: $("#aspect_ratio"), size: $("#image_size") },
      describeModel,
    );
    $("#image_size").addEventListener("change", () => describeModel(picker.model));
    $("#thinking").addEventListener("change", () => {
      wantedThinking = $("#thinking").value;
    });
    await applyStartState();
  } catch (err) {
    showError(errorBox, err, { focus: false });
  }
  api("/api/auth/me")
    .then((me) => noteSynthetic(!!(me && (me.demo || me.synthetic))))
    .catch(() => {});
}

main();
