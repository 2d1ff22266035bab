// One generation: its images, every parameter, cost, provider path, warnings; remix and delete.

import { api, requireSession, showImage } from "./api.js";
import { getJob, jobAttempts, jobError, jobFacts, jobImages, TERMINAL } from "./jobs.js";
import {
  $,
  confirmAction,
  describeError,
  el,
  formatDate,
  formatSeconds,
  initHeader,
  noteSynthetic,
  providerName,
  showError,
  warningText,
} from "./ui.js";
import { jobItems, Viewer } from "./viewer.js";

const REFRESH_MS = 1500;
const id = document.body.dataset.generationId;
const viewer = new Viewer();

function row(label, value) {
  if (value === undefined || value === null || value === "") return [];
  return [el("dt", {}, label), el("dd", {}, value)];
}

/** What a search-grounded generation looked up: its searches, and the pages as links (plain
 * text and attributes only: nothing of the answer is parsed as HTML). */
function renderGrounding(grounding) {
  const sources = (grounding && grounding.sources) || [];
  const queries = (grounding && grounding.queries) || [];
  $("#detail-queries").textContent = queries.length ? `Searched: ${queries.join("; ")}` : "";
  $("#detail-sources").replaceChildren(
    ...sources
      .filter((s) => /^https?:\/\//i.test(s.url || ""))
      .map((s) =>
        el("li", {}, el("a", { href: s.url, target: "_blank", rel: "noopener noreferrer" }, s.title || s.url)),
      ),
  );
  $("#detail-sources-section").hidden = !grounding;
}

function attemptItem(a) {
  const parts = [`${providerName(a.provider)} · ${a.provider_model || a.model || ""} — ${a.status}`];
  if (a.http_status) parts.push(` (${a.http_status})`);
  if (a.error) parts.push(`: ${a.error}`);
  if (a.duration_s) parts.push(` (${formatSeconds(a.duration_s)})`);
  if (a.may_be_billed) parts.push(" · may be billed");
  const dataset = { provider: a.provider || "", status: a.status || "" };
  const attrs = { class: `attempt attempt-${a.status}`, dataset };
  return el("li", attrs, parts.join(""));
}

function renderImages(job) {
  const box = $("#detail-images");
  box.replaceChildren();
  const items = jobItems(job);
  jobImages(job).forEach((info, k) => {
    const img = el("img", { alt: items[k].alt });
    const download = el("a", { class: "btn btn-small", href: "#", download: items[k].filename }, "Download");
    const picture = el("div", { class: "result-open" }, img);
    const open = el("button", { type: "button", class: "btn btn-small" }, "Full size");
    const refHref = `/?ref=${encodeURIComponent(info.id)}`;
    const useRef = el("a", { class: "btn btn-small", href: refHref }, "Use as reference");
    const dims = el("span", { class: "dims" }, info.width && info.height ? `${info.width}×${info.height}` : "");
    const actions = el("span", { class: "result-actions" }, open, download, useRef);
    const caption = el("figcaption", { class: "result-bar" }, dims, actions);
    box.append(el("figure", { class: "detail-figure" }, picture, caption));
    const openIt = (e) => viewer.show(items, k, { opener: e.currentTarget });
    picture.addEventListener("click", openIt);
    open.addEventListener("click", openIt);
    showImage(img, info.url)
      .then((src) => {
        download.href = src;
      })
      .catch(() => {
        dims.textContent = "The image could not be loaded.";
      });
  });
}

function render(job) {
  noteSynthetic(job.synthetic);
  $("#detail-title").textContent = job.prompt || "Generation";
  const badge = $("#detail-status");
  badge.textContent = job.status;
  badge.className = `badge badge-${job.status}`;
  $("#detail-date").textContent = formatDate(job.created_at);
  $("#detail-params").replaceChildren(...jobFacts(job).flatMap(([label, value]) => row(label, value)));
  const attempts = jobAttempts(job);
  $("#detail-attempts").replaceChildren(...attempts.map(attemptItem));
  $("#detail-attempts-section").hidden = !attempts.length;
  const warnings = [
    ...(job.warnings || []),
    ...(job.failures || []).map((f) => `Image ${f.index + 1} failed: ${f.error}`),
  ];
  $("#detail-warnings").replaceChildren(...warnings.map((w) => el("li", {}, warningText(w))));
  $("#detail-warnings-section").hidden = !warnings.length;
  renderGrounding(job.grounding);
  $("#detail-text").textContent = job.text || "";
  $("#detail-text-section").hidden = !job.text;
  const outcome = $("#detail-outcome");
  if (["failed", "blocked", "interrupted"].includes(job.status)) {
    const d = describeError(jobError(job));
    outcome.replaceChildren(el("strong", {}, d.title), ...d.body.map((b) => (b instanceof Node ? b : el("p", {}, b))));
    outcome.hidden = false;
  } else if (!TERMINAL.has(job.status)) {
    outcome.replaceChildren(el("p", {}, "Still running: this page refreshes until it is done."));
    outcome.hidden = false;
  } else {
    outcome.hidden = true;
  }
  renderImages(job);
  $("#cancel-job").hidden = TERMINAL.has(job.status);
  $("#remix").href = `/?remix=${encodeURIComponent(job.id)}`;
  $("#detail").hidden = false;
  $("#detail").dataset.status = job.status;
}

const WEBHOOK_STATES = {
  pending: "Not delivered yet",
  delivered: "Delivered",
  failed: "Not delivered: gave up",
};

/** Where the generation's end was POSTed, and each attempt; while it is pending, again later. */
async function loadWebhook() {
  let delivery;
  try {
    delivery = await api(`/api/generations/${encodeURIComponent(id)}/webhook`);
  } catch {
    return; // the generation was deleted meanwhile, or the service is away: nothing to show
  }
  const attempts = `${delivery.attempts} attempt${delivery.attempts === 1 ? "" : "s"}`;
  const next = delivery.next_attempt_at ? `; next attempt ${formatDate(delivery.next_attempt_at)}` : "";
  $("#detail-webhook").replaceChildren(
    `${WEBHOOK_STATES[delivery.state] || delivery.state} (${attempts}${next}) to `,
    el("code", {}, delivery.url),
    ` as ${delivery.event}, id `,
    el("code", {}, delivery.id),
    ".",
  );
  $("#detail-webhook-log tbody").replaceChildren(
    ...delivery.log.map((a) =>
      el(
        "tr",
        {},
        el("th", { scope: "row" }, formatDate(a.at)),
        el("td", {}, a.status_code ? `HTTP ${a.status_code}${a.error ? "" : " (ok)"}` : a.error || "no answer"),
        el("td", {}, `${a.duration_ms} ms`),
      ),
    ),
  );
  $("#detail-webhook-log").hidden = !delivery.log.length;
  $("#detail-webhook-section").hidden = false;
  $("#detail-webhook-section").dataset.state = delivery.state;
  if (delivery.state === "pending") setTimeout(loadWebhook, 5000);
}

async function load() {
  try {
    const job = await getJob(id);
    render(job);
    if (!TERMINAL.has(job.status)) setTimeout(load, REFRESH_MS);
    else if (job.webhook) loadWebhook();
  } catch (err) {
    const box = $("#detail-error");
    if (err.status === 404) {
      const message = "This generation does not exist, or it is not yours.";
      showError(box, { status: 404, code: "not_found", message });
    } else {
      showError(box, err);
    }
    $("#detail").hidden = true;
  }
}

function main() {
  if (!requireSession()) return;
  initHeader();
  $("#delete").addEventListener("click", async () => {
    if (!(await confirmAction("Delete this generation and its images? This cannot be undone."))) return;
    try {
      await api(`/api/generations/${encodeURIComponent(id)}`, { method: "DELETE" });
      window.location.assign("/gallery?deleted=1");
    } catch (err) {
      showError($("#detail-error"), err);
    }
  });
  $("#cancel-job").addEventListener("click", async () => {
    const question =
      "Stop this generation? Nothing more is sent to the provider, which may bill a call " +
      "already sent; images that have arrived are kept.";
    if (!(await confirmAction(question, "Stop it"))) return;
    try {
      render(await api(`/api/generations/${encodeURIComponent(id)}/cancel`, { method: "POST" }));
    } catch (err) {
      showError($("#detail-error"), err);
      load();
    }
  });
  load();
}

main();
