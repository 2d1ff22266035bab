// Conversational editing: the sessions list (/edit) and one session's thread (/edit/{id}).
//
// A session is a tree of turns. The thread shows it as nested lists; choosing a turn shows its
// image and makes it the one the next instruction continues (a branch when it has children).
// Each instruction is one POST /api/sessions/{id}/turns, which answers once the image is made.

import { api, imageBlob, newIdempotencyKey, requireSession, showImage } from "./api.js";
import { jobImages } from "./jobs.js";
import { $, clearError, el, formatDate, initHeader, noteSynthetic, say, showError } from "./ui.js";

const sessionId = document.body.dataset.sessionId || "";
const errorBox = $("#edit-error");
/** An image of the gallery to start from (``?image=``): the first turn's reference. */
const imageParam = new URLSearchParams(window.location.search).get("image") || "";
const startImage = /^[0-9a-f]{32}$/.test(imageParam) ? imageParam : null;
let startUpload = null; // the upload id of startImage, once uploaded

let current = null; // the session as the API last answered it
let selected = null; // the turn the next instruction continues (null: a new first turn)

function byId(id) {
  return (current && current.turns.find((t) => t.id === id)) || null;
}

function childrenOf(parentId) {
  return current.turns.filter((t) => (t.parent_turn_id || null) === parentId);
}

function turnLabel(turn) {
  const number = current.turns.indexOf(turn) + 1;
  return `${number}. ${turn.prompt}`;
}

function renderTree() {
  const build = (parentId) =>
    childrenOf(parentId).map((turn) => {
      const ok = turn.status === "succeeded";
      const attrs = {
        type: "button",
        class: `turn turn-${turn.status}`,
        dataset: { turnId: turn.id },
        "aria-pressed": String(selected === turn.id),
      };
      if (!ok) attrs.title = (turn.error && turn.error.message) || turn.status;
      const button = el("button", attrs, turnLabel(turn), ok ? "" : ` (${turn.status})`);
      button.addEventListener("click", () => select(turn.id));
      const kids = build(turn.id);
      return el("li", {}, button, kids.length ? el("ol", {}, ...kids) : "");
    });
  $("#turn-tree").replaceChildren(...build(null));
}

async function showStage(turn) {
  const figure = $("#stage");
  const images = turn ? jobImages(turn) : [];
  if (!turn && startImage) {
    figure.hidden = false;
    $("#stage-empty").hidden = true;
    $("#stage-img").alt = "The image this session starts from";
    $("#stage-caption").textContent = "The image this session starts from: the first instruction changes it.";
    try {
      await showImage($("#stage-img"), `/api/images/${encodeURIComponent(startImage)}`);
    } catch (err) {
      showError(errorBox, err);
    }
    return;
  }
  $("#stage-empty").hidden = images.length > 0;
  figure.hidden = images.length === 0;
  if (!images.length) return;
  const img = $("#stage-img");
  img.alt = turn.prompt;
  $("#stage-caption").textContent = `${turnLabel(turn)}${turn.text ? ` — ${turn.text}` : ""}`;
  try {
    await showImage(img, images[0].url);
  } catch (err) {
    showError(errorBox, err);
  }
}

function renderContinues() {
  const turn = byId(selected);
  $("#continues").textContent = turn
    ? `Continues turn ${turnLabel(turn)}`
    : startImage
      ? "Starts a new first turn from the image shown."
      : "Starts a new first turn.";
}

async function select(turnId) {
  const turn = byId(turnId);
  if (!turn || turn.status !== "succeeded") {
    say($("#turn-status"), "Only a turn that succeeded can be continued.", "error");
    return;
  }
  selected = turnId;
  renderTree();
  renderContinues();
  await showStage(turn);
}

async function load() {
  current = await api(`/api/sessions/${encodeURIComponent(sessionId)}`);
  $("#edit-title").textContent = current.title || "New session";
  document.title = `${current.title || "Edit"} · nanobanana`;
  noteSynthetic(current.turns.some((t) => t.synthetic));
}

async function send(event) {
  event.preventDefault();
  const box = $("#instruction");
  const prompt = box.value.trim();
  if (!prompt || !current) return; // Send stays disabled until the session has loaded
  const button = $("#send-turn");
  button.disabled = true;
  clearError(errorBox);
  say($("#turn-status"), "Working on it…");
  try {
    const body = { prompt, parent_turn_id: selected };
    if (selected === null && startImage) body.images = [await uploadStartImage()];
    const turn = await api(`/api/sessions/${encodeURIComponent(sessionId)}/turns`, {
      method: "POST",
      json: body,
      headers: { "Idempotency-Key": newIdempotencyKey() },
    });
    box.value = "";
    $("#turn-status").hidden = true;
    if (startImage && window.location.search) {
      window.history.replaceState(null, "", window.location.pathname); // a reload continues the session
    }
    await load();
    await select(turn.id);
  } catch (err) {
    $("#turn-status").hidden = true;
    showError(errorBox, err);
    await load().then(renderTree).catch(() => {});
  } finally {
    button.disabled = false;
  }
}

/** The starting image as a reference of the service (uploaded once per page). */
async function uploadStartImage() {
  if (!startUpload) {
    const { blob } = await imageBlob(`/api/images/${encodeURIComponent(startImage)}`);
    const data = new FormData();
    data.append("file", new File([blob], "start.png", { type: blob.type || "image/png" }));
    startUpload = (await api("/api/uploads", { method: "POST", body: data })).id;
  }
  return startUpload;
}

async function thread() {
  // Wired before the first await: a click or Enter while the session loads must not be lost
  // (nor submit the form natively).
  $("#turn-form").addEventListener("submit", send);
  $("#start-over").addEventListener("click", () => {
    selected = null;
    renderTree();
    renderContinues();
    showStage(null);
    $("#instruction").focus();
  });
  await load();
  selected = startImage ? null : current.latest_turn_id;
  renderTree();
  renderContinues();
  $("#send-turn").disabled = false;
  await showStage(byId(selected));
}

async function list() {
  // Wired before the list loads, so that a click while it loads starts the session.
  $("#new-session").addEventListener("click", async () => {
    try {
      const made = await api("/api/sessions", { method: "POST", json: {} });
      const from = startImage ? `?image=${encodeURIComponent(startImage)}` : "";
      window.location.assign(`/edit/${encodeURIComponent(made.id)}${from}`);
    } catch (err) {
      showError(errorBox, err);
    }
  });
  if (startImage) {
    $("#start-from").hidden = false;
    showImage($("#start-from-img"), `/api/images/${encodeURIComponent(startImage)}?thumb=1`).catch((err) =>
      showError(errorBox, err),
    );
  }
  const { items } = await api("/api/sessions");
  $("#sessions-empty").hidden = items.length > 0;
  $("#session-list").replaceChildren(
    ...items.map((s) =>
      el(
        "li",
        {},
        el("a", { href: `/edit/${encodeURIComponent(s.id)}` }, s.title || "New session"),
        el("span", { class: "hint" }, ` · ${s.turn_count} turn${s.turn_count === 1 ? "" : "s"} · ${formatDate(s.updated_at)}`),
      ),
    ),
  );
}

if (requireSession()) {
  initHeader();
  (sessionId ? thread() : list()).catch((err) => showError(errorBox, err));
}
