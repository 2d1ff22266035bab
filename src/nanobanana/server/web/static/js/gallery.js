// The gallery: the caller's images (GET /api/images), one tile per image in its own shape,
// filtered (provider, model, ratio, size, dates, favourites), searched and sorted, optionally
// grouped by generation; favourites; a selection to favourite, download as a zip or delete.
//
// Filters live in the address (so a reload or a shared link keeps them). Pages come by cursor
// ("Load more", and automatically when the end of the list scrolls into view); thumbnails are
// fetched only when their tile comes near the screen.

import { api, requireSession, saveResponse, showImage } from "./api.js";
import { cookieImages, FILTERS, imagesUrl, takeEarly } from "./gallerypage.js";
import { galleryItem, Viewer } from "./viewer.js";
import { $, clearError, confirmAction, el, formatDate, initHeader, noteSynthetic, providerName, say, showError } from "./ui.js";

/** Tiles this far below the screen already fetch their thumbnails. */
const LAZY_MARGIN = "600px";
const FIRST_PAGE_MARK = "nanobanana:gallery-first-page";

const grid = $("#gallery");
const empty = $("#gallery-empty");
const more = $("#load-more");
const errorBox = $("#gallery-error");
const status = $("#gallery-status");
const search = $("#search");
const bulkBar = $("#bulk-bar");

let query = "";
let cursor = null;
let loading = null; // the page on its way, if any
let exhausted = false;
let generation = 0; // bumped by each restart: a page that arrives for an older list is dropped
let selecting = false;
const selected = new Set();
const shown = new Map(); // image id -> item
let order = []; // the items shown, in order: what the viewer steps through
const viewer = new Viewer();
let lastGroup = null;

const thumbs =
  "IntersectionObserver" in window
    ? new IntersectionObserver(
        (entries) => {
          for (const entry of entries) {
            if (!entry.isIntersecting) continue;
            thumbs.unobserve(entry.target);
            loadThumb(entry.target);
          }
        },
        { rootMargin: LAZY_MARGIN },
      )
    : null;

function loadThumb(img) {
  showImage(img, img.dataset.src)
    .then(() => img.closest(".tile")?.classList.add("loaded"))
    .catch(() => img.replaceWith(el("span", { class: "tile-missing" }, "Image unavailable")));
}

/** A thumbnail the browser fetches itself, lazily, with the session cookie; if that fails
 * (the cookie has expired since), it is fetched with the stored token instead. */
function cookieThumb(img) {
  img.loading = "lazy";
  img.decoding = "async";
  img.addEventListener("load", () => img.closest(".tile")?.classList.add("loaded"), { once: true });
  img.addEventListener("error", () => loadThumb(img), { once: true });
  img.src = img.dataset.src;
}

// ----------------------------------------------------------------------------- filters

function filterField(name) {
  return $(`#f-${name}`);
}

function readFilters() {
  const out = {};
  for (const name of FILTERS) {
    const field = filterField(name);
    if (field.type === "checkbox") {
      if (field.checked) out[name] = field.value;
    } else if (field.value) {
      out[name] = field.value;
    }
  }
  return out;
}

function writeFilters(params) {
  for (const name of FILTERS) {
    const field = filterField(name);
    const value = params.get(name) || "";
    if (field.type === "checkbox") field.checked = value === field.value;
    else {
      if (field.tagName === "SELECT" && value && ![...field.options].some((o) => o.value === value)) {
        field.append(el("option", { value }, value)); // a filter from a link, before the facets
      }
      field.value = value || (name === "sort" ? "newest" : "");
    }
  }
}

function syncAddress() {
  const url = new URL(window.location.href);
  for (const name of ["q", "deleted", ...FILTERS]) url.searchParams.delete(name);
  if (query) url.searchParams.set("q", query);
  for (const [name, value] of Object.entries(readFilters())) {
    if (!(name === "sort" && value === "newest")) url.searchParams.set(name, value);
  }
  window.history.replaceState(null, "", url);
  const active = Object.keys(readFilters()).some((n) => n !== "sort" && n !== "group");
  $("#clear-filters").hidden = !active && !query;
}

function pageUrl() {
  return imagesUrl(query, readFilters(), cursor);
}

async function loadFacets() {
  const facets = await api("/api/images/facets");
  const label = { providers: providerName, image_sizes: (v) => v, aspect_ratios: (v) => v, models: (v) => v };
  const fields = { providers: "provider", models: "model", aspect_ratios: "aspect_ratio", image_sizes: "image_size" };
  for (const [key, name] of Object.entries(fields)) {
    const field = filterField(name);
    const current = field.value;
    field.replaceChildren(
      el("option", { value: "" }, "Any"),
      ...facets[key].map((f) => el("option", { value: f.value }, `${label[key](f.value)} (${f.count})`)),
    );
    if (current && ![...field.options].some((o) => o.value === current)) {
      field.append(el("option", { value: current }, current));
    }
    field.value = current;
  }
  $("#f-favourite-count").textContent = `(${facets.favourites})`;
  $("#gallery-count").textContent = `${facets.total} image${facets.total === 1 ? "" : "s"} in all`;
}

// ----------------------------------------------------------------------------- tiles

function groupHeading(item) {
  return el(
    "li",
    { class: "tile-group", dataset: { generation: item.generation_id } },
    el("a", { href: `/gallery/${encodeURIComponent(item.generation_id)}` }, item.prompt || "(no prompt)"),
    el(
      "span",
      { class: "hint" },
      ` · ${[item.model, providerName(item.provider)].filter(Boolean).join(" · ")} · ${formatDate(item.created_at)}`,
    ),
  );
}

function tile(item) {
  const ratio = item.width && item.height ? item.width / item.height : 1;
  const label = `${item.prompt || "Image"} (${item.width}×${item.height})`;
  const img = el("img", { alt: item.prompt || "", width: item.width, height: item.height, dataset: { src: item.thumb_url || item.url } });
  const star = el(
    "button",
    {
      type: "button",
      class: "tile-star",
      "aria-pressed": String(item.favourite),
      "aria-label": "Favourite",
      title: "Favourite",
    },
    "★",
  );
  star.addEventListener("click", (e) => {
    e.preventDefault();
    favourite([item.id], !shown.get(item.id).favourite);
  });
  const check = el("input", { type: "checkbox", class: "tile-check", "aria-label": `Select ${label}` });
  check.checked = selected.has(item.id);
  check.addEventListener("change", () => toggle(item.id, check.checked));
  const link = el(
    "a",
    { href: `/gallery/${encodeURIComponent(item.generation_id)}`, class: "tile-link", "aria-label": label },
    img,
  );
  link.addEventListener("click", (e) => {
    if (e.button !== 0 || e.ctrlKey || e.metaKey || e.shiftKey || e.altKey) return; // a new tab
    e.preventDefault();
    if (selecting) toggle(item.id, !selected.has(item.id));
    else openViewer(item.id, link);
  });
  const li = el(
    "li",
    {
      class: "tile",
      dataset: { id: item.id, generation: item.generation_id, ratio: item.aspect_ratio || "", favourite: String(item.favourite) },
    },
    link,
    el("span", { class: "tile-meta" }, [item.aspect_ratio, item.image_size, item.model].filter(Boolean).join(" · ")),
    star,
    check,
  );
  li.style.setProperty("--ratio", String(ratio));
  if (cookieImages()) cookieThumb(img);
  else if (thumbs) thumbs.observe(img);
  else loadThumb(img);
  if (item.synthetic) noteSynthetic(true);
  return li;
}

function openViewer(id, opener) {
  const index = order.findIndex((v) => v.imageId === id);
  if (index < 0) return;
  const list = order;
  viewer.show(list, index, {
    opener,
    onFavourite: (id, on) => {
      markFavourite(id, on);
      loadFacets().catch(() => {});
    },
    hasMore: () => !exhausted && list === order,
    loadMore: async () => {
      if (exhausted || list !== order) return false;
      const before = list.length;
      await loadPage();
      return list.length > before;
    },
  });
}

function render(items) {
  const grouped = readFilters().group;
  for (const item of items) {
    shown.set(item.id, item);
    order.push(galleryItem(item));
    if (grouped && item.generation_id !== lastGroup) grid.append(groupHeading(item));
    lastGroup = item.generation_id;
    grid.append(tile(item));
  }
}

/** The next page; while one is on its way, that one (so whoever asks can wait for it). */
function loadPage() {
  if (!loading && !exhausted) loading = fetchPage();
  return loading || Promise.resolve();
}

async function fetchPage() {
  more.disabled = true;
  clearError(errorBox);
  const mine = generation;
  try {
    const url = pageUrl();
    const body = await (takeEarly(url) || api(url));
    if (mine !== generation) return;
    render(body.items || []);
    cursor = body.next_cursor || null;
    exhausted = !cursor;
    more.hidden = exhausted;
    const any = grid.querySelector(".tile");
    empty.hidden = !!any;
    if (!any) {
      const filtered = query || Object.keys(readFilters()).some((n) => n !== "sort" && n !== "group");
      empty.replaceChildren(
        ...(filtered
          ? [query ? `No image matches “${query}” with these filters. ` : "No image matches these filters. ", el("a", { href: "/gallery" }, "Show all")]
          : ["No images yet. ", el("a", { href: "/" }, "Generate your first one"), "."]),
      );
    }
    if (grid.dataset.loaded !== "true" && !performance.getEntriesByName(FIRST_PAGE_MARK).length) {
      // When the first page's tiles are on screen (the frame after they were added), on the
      // page's own clock: what bench/gallery.py reports.
      requestAnimationFrame(() => performance.mark(FIRST_PAGE_MARK));
    }
    grid.dataset.loaded = "true";
  } catch (err) {
    if (mine === generation) showError(errorBox, err, { focus: false });
  } finally {
    if (mine === generation) {
      loading = null;
      more.disabled = false;
    }
  }
}

function restart() {
  generation += 1;
  loading = null;
  grid.replaceChildren();
  grid.dataset.loaded = "false";
  shown.clear();
  order = [];
  lastGroup = null;
  cursor = null;
  exhausted = false;
  clearSelection();
  syncAddress();
  loadPage();
}

// ----------------------------------------------------------------------------- selection

function renderSelection() {
  bulkBar.hidden = !selecting;
  $("#bulk-count").textContent = `${selected.size} selected`;
  for (const id of ["bulk-favourite", "bulk-unfavourite", "bulk-zip", "bulk-delete", "bulk-clear"]) {
    $(`#${id}`).disabled = selected.size === 0;
  }
  grid.querySelectorAll(".tile").forEach((li) => {
    const on = selected.has(li.dataset.id);
    li.classList.toggle("selected", on);
    $(".tile-check", li).checked = on;
  });
}

function toggle(id, on) {
  if (on) selected.add(id);
  else selected.delete(id);
  if (on && !selecting) setSelecting(true);
  renderSelection();
}

function clearSelection() {
  selected.clear();
  renderSelection();
}

function setSelecting(on) {
  selecting = on;
  grid.classList.toggle("selecting", on);
  $("#select-mode").setAttribute("aria-pressed", String(on));
  $("#select-mode").textContent = on ? "Done" : "Select";
  if (!on) selected.clear();
  renderSelection();
}

/** Show image ``id``'s star as the service now has it (tile, and the viewer's item). */
function markFavourite(id, on) {
  if (!shown.has(id)) return;
  shown.set(id, { ...shown.get(id), favourite: on });
  const viewed = order.find((v) => v.imageId === id);
  if (viewed) viewed.favourite = on;
  const li = grid.querySelector(`.tile[data-id="${id}"]`);
  if (!li) return;
  li.dataset.favourite = String(on);
  $(".tile-star", li).setAttribute("aria-pressed", String(on));
}

async function favourite(ids, on) {
  clearError(errorBox);
  try {
    const body = await api("/api/images/favourite", { method: "POST", json: { ids, favourite: on } });
    for (const item of body.items) markFavourite(item.id, item.favourite);
    say(status, ids.length > 1 ? `${on ? "Added" : "Removed"} ${ids.length} favourites.` : "", "ok");
    loadFacets().catch(() => {});
  } catch (err) {
    showError(errorBox, err);
  }
}

async function downloadZip(ids) {
  clearError(errorBox);
  say(status, `Preparing ${ids.length} image${ids.length === 1 ? "" : "s"}…`);
  try {
    const res = await api("/api/images/zip", { method: "POST", json: { ids }, raw: true });
    await saveResponse(res, "nanobanana.zip");
    say(status, `Downloaded ${ids.length} image${ids.length === 1 ? "" : "s"}.`, "ok");
  } catch (err) {
    say(status, "");
    showError(errorBox, err);
  }
}

async function deleteImages(ids) {
  const n = ids.length;
  const question = `Delete ${n} image${n === 1 ? "" : "s"}? Their files go; the generations' records (prompt, cost) stay. This cannot be undone.`;
  if (!(await confirmAction(question))) return;
  clearError(errorBox);
  try {
    const { deleted } = await api("/api/images/delete", { method: "POST", json: { ids } });
    for (const id of deleted) {
      grid.querySelector(`.tile[data-id="${id}"]`)?.remove();
      shown.delete(id);
      selected.delete(id);
    }
    const gone = new Set(deleted);
    order.splice(0, order.length, ...order.filter((v) => !gone.has(v.imageId)));
    grid.querySelectorAll(".tile-group").forEach((h) => {
      if (!grid.querySelector(`.tile[data-generation="${h.dataset.generation}"]`)) h.remove();
    });
    renderSelection();
    say(status, `Deleted ${deleted.length} image${deleted.length === 1 ? "" : "s"}.`, "ok");
    loadFacets().catch(() => {});
    if (!grid.querySelector(".tile") && exhausted) empty.hidden = false;
  } catch (err) {
    showError(errorBox, err);
  }
}

// ----------------------------------------------------------------------------- start

function main() {
  if (!requireSession()) return;
  initHeader();
  const params = new URLSearchParams(window.location.search);
  query = (params.get("q") || "").trim();
  search.value = query;
  writeFilters(params);
  if (params.get("deleted")) say(status, "Deleted.", "ok");
  $("#search-form").addEventListener("submit", (e) => {
    e.preventDefault();
    query = search.value.trim();
    say(status, "");
    restart();
  });
  $("#filters").addEventListener("submit", (e) => e.preventDefault());
  $("#filters").addEventListener("change", () => {
    say(status, "");
    restart();
  });
  $("#clear-filters").addEventListener("click", () => {
    query = "";
    search.value = "";
    writeFilters(new URLSearchParams());
    restart();
  });
  $("#select-mode").addEventListener("click", () => setSelecting(!selecting));
  $("#bulk-all").addEventListener("click", () => {
    for (const id of shown.keys()) selected.add(id);
    renderSelection();
  });
  $("#bulk-clear").addEventListener("click", clearSelection);
  $("#bulk-favourite").addEventListener("click", () => favourite([...selected], true));
  $("#bulk-unfavourite").addEventListener("click", () => favourite([...selected], false));
  $("#bulk-zip").addEventListener("click", () => downloadZip([...selected]));
  $("#bulk-delete").addEventListener("click", () => deleteImages([...selected]));
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && selecting && !document.querySelector("dialog[open]")) setSelecting(false);
  });
  more.addEventListener("click", loadPage);
  if ("IntersectionObserver" in window) {
    new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting) && !exhausted && grid.children.length) loadPage();
    }).observe($("#sentinel"));
  }
  syncAddress();
  // The facets (a scan of every image) after the first page, which is what the eye waits for.
  loadPage().finally(() => loadFacets().catch((err) => showError(errorBox, err, { focus: false })));
}

main();
