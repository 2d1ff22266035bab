// The gallery: the caller's generations, newest first, with prompt search and paging
// ("Load more", and automatically when the end of the list scrolls into view).

import { api, requireSession, showImage } from "./api.js";
import { jobImages } from "./jobs.js";
import { $, clearError, el, formatDate, initHeader, noteSynthetic, providerName, say, showError } from "./ui.js";

const PAGE_SIZE = 24;

const grid = $("#gallery");
const empty = $("#gallery-empty");
const more = $("#load-more");
const errorBox = $("#gallery-error");
const status = $("#gallery-status");
const search = $("#search");

let query = "";
let cursor = null;
let loading = false;
let exhausted = false;

const STATUS_LABELS = {
  queued: "Queued",
  running: "Running",
  succeeded: "Done",
  failed: "Failed",
  blocked: "Blocked",
  interrupted: "Interrupted",
};

function placeholder(text) {
  return el("span", { class: "card-placeholder" }, text);
}

function card(job) {
  const images = jobImages(job);
  const first = images[0];
  const thumb = first ? first.thumb || first.url : null;
  const img = thumb ? el("img", { alt: "", loading: "lazy" }) : null;
  const li = el(
    "li",
    { class: "card", dataset: { id: job.id, status: job.status } },
    el(
      "a",
      { href: `/gallery/${encodeURIComponent(job.id)}`, class: "card-link" },
      el("span", { class: "card-thumb" }, img || placeholder(STATUS_LABELS[job.status] || job.status)),
      el("span", { class: "card-prompt" }, job.prompt || ""),
      el(
        "span",
        { class: "card-meta" },
        el("span", { class: `badge badge-${job.status}` }, STATUS_LABELS[job.status] || job.status),
        images.length > 1 ? ` ${images.length} images · ` : " ",
        [job.model, providerName(job.provider)].filter(Boolean).join(" · "),
      ),
      el("time", { class: "card-date", datetime: job.created_at || "" }, formatDate(job.created_at)),
    ),
  );
  if (img) showImage(img, thumb).catch(() => img.replaceWith(placeholder("Image unavailable")));
  if (job.synthetic) noteSynthetic(true);
  return li;
}

function pageUrl() {
  const p = new URLSearchParams({ limit: String(PAGE_SIZE) });
  if (query) p.set("q", query);
  if (cursor) p.set("cursor", cursor);
  return `/api/generations?${p}`;
}

async function loadPage() {
  if (loading || exhausted) return;
  loading = true;
  more.disabled = true;
  clearError(errorBox);
  try {
    const body = await api(pageUrl());
    const items = (body && body.items) || [];
    items.forEach((job) => grid.append(card(job)));
    cursor = (body && body.next_cursor) || null;
    exhausted = !cursor;
    more.hidden = exhausted;
    if (!grid.children.length) {
      empty.replaceChildren(
        ...(query
          ? [`No generation matches “${query}”. `, el("a", { href: "/gallery" }, "Show all")]
          : ["No images yet. ", el("a", { href: "/" }, "Generate your first one"), "."]),
      );
      empty.hidden = false;
    } else {
      empty.hidden = true;
    }
    grid.dataset.loaded = "true";
  } catch (err) {
    showError(errorBox, err, { focus: false });
  } finally {
    loading = false;
    more.disabled = false;
  }
}

function restart() {
  grid.replaceChildren();
  grid.dataset.loaded = "false";
  cursor = null;
  exhausted = false;
  loadPage();
}

function main() {
  if (!requireSession()) return;
  initHeader();
  const params = new URLSearchParams(window.location.search);
  query = (params.get("q") || "").trim();
  search.value = query;
  if (params.get("deleted")) say(status, "Deleted.", "ok");
  $("#search-form").addEventListener("submit", (e) => {
    e.preventDefault();
    query = search.value.trim();
    const url = new URL(window.location.href);
    if (query) url.searchParams.set("q", query);
    else url.searchParams.delete("q");
    url.searchParams.delete("deleted");
    window.history.replaceState(null, "", url);
    say(status, "");
    restart();
  });
  more.addEventListener("click", loadPage);
  if ("IntersectionObserver" in window) {
    new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting) && !exhausted && grid.children.length) loadPage();
    }).observe($("#sentinel"));
  }
  loadPage();
}

main();
