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
import { nearestRatio, readPngText, settingsFromText } from "./pngmeta.js";
import { References } from "./references.js";
import {
  $,
  clearError,
  describeError,
  el,
  formatCost,
  formatSeconds,
  initHeader,
  noteSynthetic,
  providerName,
  say,
  showError,
  warningText,
} from "./ui.js";
import { galleryItem, jobItems, Viewer } from "./viewer.js";

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
  // Generate stays usable: pressed again while one runs, it queues another (below).
  generateBtn.textContent = on ? "Generate another" : "Generate";
  cancelBtn.hidden = !on;
  form.setAttribute("aria-busy", on ? "true" : "false");
}

function resetOutput() {
  clearError(errorBox);
  cancelNote.hidden = true;
  attemptsList.replaceChildren();
  fallbackNote.hidden = true;
  streamText.hidden = true;
  streamText.replaceChildren();
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
  loadRecent();
  clearInterval(current.timer);
  elapsedLabel.textContent = formatSeconds((performance.now() - current.started) / 1000);
  setRunning(false);
  noteSynthetic(job.synthetic);
  const attempts = jobAttempts(job);
  if (attempts.length) attemptsList.replaceChildren(...attempts.map(attemptItem));
  if (job.text && !streamText.textContent) addText(0, job.text);
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
      if (t) addText(d.index ?? 0, t);
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

/** The model's text as it streams: one paragraph per image (their calls run at once, so
 * their texts arrive interleaved). */
function addText(index, text) {
  let part = streamText.querySelector(`[data-index="${index}"]`);
  if (!part) {
    part = el("p", { class: "stream-part", dataset: { index: String(index) } });
    const parts = [...streamText.querySelectorAll(".stream-part")];
    const after = parts.find((p) => Number(p.dataset.index) > index);
    streamText.insertBefore(part, after || null);
  }
  part.textContent += text;
  streamText.hidden = false;
  const many = streamText.querySelectorAll(".stream-part").length > 1;
  streamText.querySelectorAll(".stream-part").forEach((p) => {
    p.dataset.label = many ? `Image ${Number(p.dataset.index) + 1}` : "";
  });
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
async function follow(id, signal, handler = onEvent) {
  try {
    await readEvents(id, { signal, onEvent: handler });
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
  const body = readForm();
  const problem = validate(body);
  if (problem) {
    showError(errorBox, { status: 400, code: "invalid_request", message: problem[0] });
    problem[1].focus();
    return;
  }
  pushHistory(body.prompt);
  if (run) {
    enqueue(body);
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

// ---------------------------------------------------------------- queued generations

/** A generation asked for while another runs: it goes to the service at once (which queues
 * it as its limits say) and is followed here, in a line of its own, until it ends. */
async function enqueue(body) {
  const state = el("span", { class: "queued-state", role: "status" }, "Sending…");
  const thumbs = el("span", { class: "queued-thumbs" });
  const li = el(
    "li",
    { class: "queued", dataset: { status: "sending" } },
    el("span", { class: "queued-prompt" }, body.prompt),
    state,
    thumbs,
  );
  $("#queue").prepend(li);
  $("#queue-section").hidden = false;
  const started = performance.now();
  const set = (status, text) => {
    li.dataset.status = status;
    state.textContent = text;
  };
  try {
    const job = await api("/api/generations", {
      method: "POST",
      json: body,
      headers: { "Idempotency-Key": newIdempotencyKey() },
    });
    li.dataset.id = job.id;
    set("queued", "Queued");
    const handler = (type, d) => {
      if (type === "running" || type === "attempt") set("running", "Running");
      else if (type === "image") set("running", `Image ${((d && d.index) ?? 0) + 1} arrived`);
      else if (type === "fallback") set("running", `Fell back to ${providerName(d.to)}`);
    };
    const final = await follow(job.id, new AbortController().signal, handler);
    const took = formatSeconds((performance.now() - started) / 1000);
    if (final.status === "succeeded") {
      set("succeeded", `Done in ${took}`);
      const items = jobItems(final);
      items.forEach((item, k) => {
        const img = el("img", { alt: `Image ${k + 1}: ${final.prompt}` });
        const open = el("button", { type: "button", class: "thumb-button", "aria-label": `Open image ${k + 1}: ${final.prompt}` }, img);
        open.addEventListener("click", () => viewer.show(items, k, { opener: open }));
        thumbs.append(open);
        showImage(img, `${item.url}?thumb=1`).catch(() => img.remove());
      });
    } else {
      set(final.status, describeError(jobError(final)).title);
    }
    thumbs.append(el("a", { href: `/gallery/${encodeURIComponent(job.id)}` }, "Details"));
    loadRecent();
  } catch (err) {
    set("failed", describeError(err).title);
  }
}

// ------------------------------------------------------------------------ recent images

const RECENT = 12;

/** The newest images beside the form (any page's, any generation's); a click opens them. */
async function loadRecent() {
  try {
    const { items } = await api(`/api/images?limit=${RECENT}`);
    const list = items.map(galleryItem);
    $("#recent").replaceChildren(
      ...items.map((item, k) => {
        const img = el("img", { alt: "", width: item.width, height: item.height });
        const open = el("button", { type: "button", class: "thumb-button", "aria-label": `Open: ${item.prompt}` }, img);
        open.addEventListener("click", () => viewer.show(list, k, { opener: open }));
        showImage(img, item.thumb_url || item.url).catch(() => img.remove());
        return el("li", { dataset: { id: item.id } }, open);
      }),
    );
    $("#recent-section").hidden = items.length === 0;
  } catch {
    /* the strip is a convenience: the page works without it */
  }
}

// ------------------------------------------------------------------------ prompt history

const HISTORY = 50;
let promptHistory = []; // newest first, each prompt once
let historyAt = -1; // where ↑/↓ stepping is (-1: not stepping)

function renderHistory() {
  $("#history").hidden = promptHistory.length === 0;
  $("#history-list").replaceChildren(
    ...promptHistory.slice(0, 20).map((prompt) => {
      const use = el("button", { type: "button", class: "history-item", title: prompt }, prompt);
      use.addEventListener("click", () => {
        $("#prompt").value = prompt;
        $("#history").open = false;
        $("#prompt").focus();
      });
      return el("li", {}, use);
    }),
  );
}

function pushHistory(prompt) {
  promptHistory = [prompt, ...promptHistory.filter((p) => p !== prompt)].slice(0, HISTORY);
  historyAt = -1;
  renderHistory();
}

/** Your latest prompts, from your history on the service (any device). */
async function loadHistory() {
  try {
    const { items } = await api(`/api/generations?limit=${HISTORY}`);
    const seen = new Set(promptHistory);
    for (const job of items) {
      if (job.prompt && !seen.has(job.prompt)) {
        seen.add(job.prompt);
        promptHistory.push(job.prompt);
      }
    }
    promptHistory = promptHistory.slice(0, HISTORY);
    renderHistory();
  } catch {
    /* no history: the page works without it */
  }
}

/** ↑ in an empty prompt (or one recalled from the history) steps back through it; ↓ forward. */
function stepHistory(e) {
  const box = $("#prompt");
  const recalled = historyAt >= 0 && box.value === promptHistory[historyAt];
  if (!(box.value === "" || recalled) || e.shiftKey || e.altKey || e.ctrlKey || e.metaKey) return;
  const next = historyAt + (e.key === "ArrowUp" ? 1 : -1);
  if (e.key === "ArrowUp" && next >= promptHistory.length) return;
  e.preventDefault();
  historyAt = Math.max(-1, next);
  box.value = historyAt >= 0 ? promptHistory[historyAt] : "";
}

// ------------------------------------------------------------------ settings from a PNG

/** Fill the form from the settings written into a PNG (nanobanana's or A1111's). */
async function restoreFrom(file) {
  const status = $("#restore-status");
  const texts = await readPngText(file).catch(() => null);
  const found = settingsFromText(texts);
  if (!found || !found.params.prompt) {
    const what = texts === null ? "is not a PNG" : "carries no settings";
    say(status, `${file.name || "That file"} ${what}. To use an image as a reference, drop it on Reference images.`, "error");
    return false;
  }
  const params = { ...found.params };
  if (!params.provider) params.provider = $("#provider").value;
  if (!params.model) params.model = $("#model").value;
  if (found.size && !params.aspect_ratio) {
    const ratios = [...$("#aspect_ratio").options].map((o) => o.value).filter((v) => v.includes(":"));
    params.aspect_ratio = nearestRatio(ratios, found.size[0], found.size[1]);
  }
  fillForm(params);
  const from = found.source === "a1111" ? "its A1111 settings" : "its nanobanana settings";
  const notes = [];
  if (found.source === "a1111" && found.model) notes.push(`its model (${found.model}) is not one of these, so ${$("#model").value} stays`);
  if (found.size) notes.push(`${found.size[0]}×${found.size[1]} became ${$("#aspect_ratio").value}`);
  say(status, `Restored from ${file.name || "the PNG"}: ${from}${notes.length ? `; ${notes.join("; ")}` : ""}.`, "ok");
  $("#prompt").focus();
  return true;
}

// ---------------------------------------------------------------------- remix source

async function showRemixSource(job) {
  const [first] = jobImages(job);
  $("#remix-caption").replaceChildren(
    "Remixing ",
    el("a", { href: `/gallery/${encodeURIComponent(job.id)}` }, `“${job.prompt}”`),
    `${job.model ? ` (${job.model})` : ""}: change anything, then Generate.`,
  );
  $("#remix-source").hidden = false;
  if (first) {
    $("#remix-img").alt = `The image being remixed: ${job.prompt}`;
    await showImage($("#remix-img"), `${first.url}?thumb=1`).catch(() => {
      $("#remix-img").hidden = true;
    });
  } else {
    $("#remix-img").hidden = true;
  }
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
    showRemixSource(job);
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
    } else if ((e.key === "ArrowUp" || e.key === "ArrowDown") && !e.isComposing) {
      stepHistory(e);
    }
  });
  $("#remix-clear").addEventListener("click", () => {
    $("#remix-source").hidden = true;
    const url = new URL(window.location.href);
    url.searchParams.delete("remix");
    window.history.replaceState(null, "", url);
    $("#prompt").focus();
  });
  $("#restore-pick").addEventListener("click", () => $("#restore-input").click());
  $("#restore-input").addEventListener("change", () => {
    const [file] = $("#restore-input").files;
    if (file) restoreFrom(file);
    $("#restore-input").value = "";
  });
  // A PNG dropped on the prompt (not on Reference images) brings back its settings.
  for (const type of ["dragenter", "dragover"]) {
    $("#prompt").addEventListener(type, (e) => {
      if (e.dataTransfer && [...e.dataTransfer.types].includes("Files")) e.preventDefault();
    });
  }
  $("#prompt").addEventListener("drop", (e) => {
    const files = [...((e.dataTransfer && e.dataTransfer.files) || [])];
    if (!files.length) return;
    e.preventDefault();
    e.stopPropagation();
    restoreFrom(files[0]);
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
  loadRecent();
  loadHistory();
}

main();
