// The image viewer: a modal <dialog> (focus stays inside, Escape closes, focus goes back to
// what opened it) showing one image of a list, with zoom (wheel, buttons, + and -), pan (drag),
// fit (0) and actual size (1), previous and next (arrow keys), and beside the image what made
// it (the generation's record), with copy prompt, download, use as reference, remix and
// continue editing.
//
// On a touch screen: pinch to zoom, drag to pan, and a swipe at fit for the previous or next.
//
// An item is {url, alt, filename, imageId, generationId, favourite, prompt}; only url is
// required (an image without a generation shows no record and no links that need one; one
// whose favourite is unknown shows no star).

import { api, imageBlobUrl } from "./api.js";
import { getJob, jobFacts, jobImages } from "./jobs.js";
import { $, el, say } from "./ui.js";

const EXTENSIONS = { "image/jpeg": "jpg", "image/webp": "webp" };

function fileName(id, mimeType) {
  return `nanobanana-${id}.${EXTENSIONS[mimeType] || "png"}`;
}

/** The viewer's items for the images of a generation record. */
export function jobItems(job) {
  return jobImages(job).map((im) => ({
    url: im.url,
    alt: `Image ${im.index + 1}: ${job.prompt}`,
    prompt: job.prompt,
    filename: fileName(im.id || im.index, im.mime_type),
    imageId: im.id,
    generationId: job.id,
    favourite: im.favourite,
  }));
}

/** The viewer's item for an image as GET /api/images lists it. */
export function galleryItem(image) {
  return {
    url: image.url,
    alt: image.prompt,
    prompt: image.prompt,
    filename: fileName(image.id, image.mime_type),
    imageId: image.id,
    generationId: image.generation_id,
    favourite: image.favourite,
  };
}

const MIN_SCALE = 0.05;
const MAX_SCALE = 16;
const STEP = 1.25;
/** A horizontal swipe this long (CSS pixels) at fit goes to the previous or next image. */
const SWIPE = 60;

export class Viewer {
  constructor() {
    this.dialog = $("#viewer");
    this.stage = $("#viewer-stage");
    this.img = $("#viewer-img");
    this.items = [];
    this.index = 0;
    this.opener = null;
    this.loadMore = null;
    this.hasMore = () => false;
    this.onFavourite = null;
    this.pointers = new Map(); // pointer id -> {x, y} (client pixels), while pressed
    this.gesture = null; // where the pointers and the image were as the gesture started
    this.view = { scale: 1, x: 0, y: 0, mode: "fit" };
    this.records = new Map(); // generation id -> Promise of its record
    this.showing = 0; // bumped per image shown: a late answer for an earlier one is dropped

    $("#viewer-close").addEventListener("click", () => this.dialog.close());
    $("#viewer-prev").addEventListener("click", () => this.go(-1));
    $("#viewer-next").addEventListener("click", () => this.go(1));
    $("#viewer-zoom-in").addEventListener("click", () => this.zoomBy(STEP));
    $("#viewer-zoom-out").addEventListener("click", () => this.zoomBy(1 / STEP));
    $("#viewer-fit").addEventListener("click", () => this.fit());
    $("#viewer-actual").addEventListener("click", () => this.actual());
    $("#viewer-copy").addEventListener("click", () => this.copyPrompt());
    $("#viewer-favourite").addEventListener("click", () => this.toggleFavourite());
    this.dialog.addEventListener("click", (e) => {
      if (e.target === this.dialog) this.dialog.close(); // the backdrop
    });
    this.dialog.addEventListener("close", () => {
      this.showing += 1;
      if (this.opener && this.opener.isConnected) this.opener.focus();
    });
    this.dialog.addEventListener("keydown", (e) => this.onKey(e));
    this.stage.addEventListener("wheel", (e) => this.onWheel(e), { passive: false });
    this.stage.addEventListener("pointerdown", (e) => this.onPointerDown(e));
    this.stage.addEventListener("dblclick", (e) => {
      const at = this.point(e);
      if (this.view.mode === "fit") this.zoomTo(1, at);
      else this.fit();
    });
    window.addEventListener("resize", () => {
      if (!this.dialog.open) return;
      if (this.view.mode === "fit") this.fit();
      else this.place();
    });
  }

  /** One image on its own (the generator's and the detail page's "Full size"). */
  open(url, alt, filename, opener = document.activeElement) {
    return this.show([{ url, alt, filename }], 0, { opener });
  }

  /** Show ``items[index]``; ``loadMore`` (optional) appends more items to ``items`` when the
   * last one is passed, and resolves true when it did; ``hasMore`` says whether there are;
   * ``onFavourite(imageId, on)`` is told when the star of an image changes. */
  async show(items, index, { opener = document.activeElement, loadMore = null, hasMore = () => !!loadMore, onFavourite = null } = {}) {
    this.items = items;
    this.opener = opener;
    this.loadMore = loadMore;
    this.hasMore = hasMore;
    this.onFavourite = onFavourite;
    if (!this.dialog.open) this.dialog.showModal();
    await this.display(index);
    this.stage.focus();
  }

  async go(step) {
    let next = this.index + step;
    if (next >= this.items.length && this.hasMore() && (await this.loadMore())) next = Math.min(next, this.items.length - 1);
    if (next < 0 || next >= this.items.length) return;
    await this.display(next);
  }

  async display(index) {
    const item = this.items[index];
    this.index = index;
    const mine = ++this.showing;
    const more = this.hasMore();
    const many = this.items.length > 1 || more;
    $("#viewer-position").textContent = many ? `${index + 1} / ${this.items.length}${more ? "+" : ""}` : "";
    $("#viewer-prev").hidden = $("#viewer-next").hidden = !many;
    $("#viewer-prev").disabled = index === 0;
    $("#viewer-next").disabled = index >= this.items.length - 1 && !more;
    this.dialog.dataset.imageId = item.imageId || "";
    this.renderInfo(item, null);
    const src = await imageBlobUrl(item.url);
    if (mine !== this.showing) return;
    await new Promise((resolve) => {
      this.img.addEventListener("load", resolve, { once: true });
      this.img.addEventListener("error", resolve, { once: true });
      this.img.src = src;
    });
    if (mine !== this.showing) return;
    this.img.alt = item.alt || item.prompt || "";
    $("#viewer-download").href = src;
    $("#viewer-download").download = item.filename || `nanobanana-${item.imageId || index + 1}.png`;
    $("#viewer-dims").textContent = `${this.img.naturalWidth}×${this.img.naturalHeight} pixels`;
    this.stage.setAttribute("aria-label", this.img.alt || "Image");
    this.fit();
    if (item.generationId) {
      try {
        const job = await this.record(item.generationId);
        if (mine === this.showing) this.renderInfo(item, job);
      } catch {
        /* the image is shown; its record could not be read (deleted meanwhile) */
      }
    }
  }

  record(generationId) {
    if (!this.records.has(generationId)) {
      const pending = getJob(generationId);
      pending.catch(() => this.records.delete(generationId));
      this.records.set(generationId, pending);
    }
    return this.records.get(generationId);
  }

  renderInfo(item, job) {
    const prompt = (job && job.prompt) || item.prompt || "";
    this.prompt = prompt;
    $("#viewer-title").textContent = prompt || item.alt || "Image";
    $("#viewer-facts").replaceChildren(
      ...(job ? jobFacts(job) : []).flatMap(([label, value]) => [el("dt", {}, label), el("dd", {}, value)]),
    );
    $("#viewer-copy").hidden = !prompt;
    const star = $("#viewer-favourite");
    star.hidden = !(item.imageId && typeof item.favourite === "boolean");
    star.setAttribute("aria-pressed", String(!!item.favourite));
    const links = {
      "#viewer-ref": item.imageId ? `/?ref=${encodeURIComponent(item.imageId)}` : null,
      "#viewer-edit": item.imageId ? `/edit?image=${encodeURIComponent(item.imageId)}` : null,
      "#viewer-remix": item.generationId ? `/?remix=${encodeURIComponent(item.generationId)}` : null,
      "#viewer-details": item.generationId ? `/gallery/${encodeURIComponent(item.generationId)}` : null,
    };
    for (const [selector, href] of Object.entries(links)) {
      $(selector).hidden = !href;
      if (href) $(selector).href = href;
    }
    say($("#viewer-status"), "");
  }

  async copyPrompt() {
    try {
      await navigator.clipboard.writeText(this.prompt);
      say($("#viewer-status"), "Prompt copied.", "ok");
    } catch {
      say($("#viewer-status"), "Copying was refused: select the prompt above and copy it.", "error");
    }
  }

  async toggleFavourite() {
    const item = this.items[this.index];
    if (!item || !item.imageId || typeof item.favourite !== "boolean") return;
    const on = !item.favourite;
    try {
      await api(`/api/images/${encodeURIComponent(item.imageId)}`, { method: "PATCH", json: { favourite: on } });
    } catch (err) {
      say($("#viewer-status"), `The favourite was not saved: ${err.message}`, "error");
      return;
    }
    item.favourite = on;
    if (this.items[this.index] === item) {
      $("#viewer-favourite").setAttribute("aria-pressed", String(on));
      say($("#viewer-status"), on ? "Added to favourites." : "Removed from favourites.", "ok");
    }
    if (this.onFavourite) this.onFavourite(item.imageId, on);
  }

  // --------------------------------------------------------------------------- zoom and pan

  point(e) {
    const r = this.stage.getBoundingClientRect();
    return { x: e.clientX - r.left, y: e.clientY - r.top };
  }

  fit() {
    const { width, height } = this.stage.getBoundingClientRect();
    const w = this.img.naturalWidth || 1;
    const h = this.img.naturalHeight || 1;
    const scale = Math.min(width / w, height / h, 1);
    this.view = { scale, x: (width - w * scale) / 2, y: (height - h * scale) / 2, mode: "fit" };
    this.place();
  }

  actual() {
    const { width, height } = this.stage.getBoundingClientRect();
    this.zoomTo(1, { x: width / 2, y: height / 2 });
  }

  zoomBy(factor) {
    const { width, height } = this.stage.getBoundingClientRect();
    this.zoomTo(this.view.scale * factor, { x: width / 2, y: height / 2 });
  }

  /** Zoom to ``scale`` keeping the image's point under ``at`` (stage pixels) where it is. */
  zoomTo(scale, at) {
    const s = Math.min(MAX_SCALE, Math.max(MIN_SCALE, scale));
    const v = this.view;
    const ix = (at.x - v.x) / v.scale;
    const iy = (at.y - v.y) / v.scale;
    this.view = { scale: s, x: at.x - ix * s, y: at.y - iy * s, mode: s === 1 ? "actual" : "zoom" };
    this.place();
  }

  /** Keep the image on the stage: centred along an axis where it is smaller, edge to edge
   * (no empty margin) where it is larger. */
  clamp() {
    const { width, height } = this.stage.getBoundingClientRect();
    const v = this.view;
    const w = this.img.naturalWidth * v.scale;
    const h = this.img.naturalHeight * v.scale;
    v.x = w <= width ? (width - w) / 2 : Math.min(0, Math.max(width - w, v.x));
    v.y = h <= height ? (height - h) / 2 : Math.min(0, Math.max(height - h, v.y));
  }

  place() {
    this.clamp();
    const v = this.view;
    this.img.style.transform = `translate(${v.x}px, ${v.y}px) scale(${v.scale})`;
    $("#viewer-scale").textContent = `${Math.round(v.scale * 100)}%`;
    $("#viewer-fit").setAttribute("aria-pressed", String(v.mode === "fit"));
    $("#viewer-actual").setAttribute("aria-pressed", String(v.mode === "actual"));
    this.dialog.dataset.scale = String(v.scale);
    const w = this.img.naturalWidth * v.scale;
    const h = this.img.naturalHeight * v.scale;
    const { width, height } = this.stage.getBoundingClientRect();
    this.stage.classList.toggle("pannable", w > width + 0.5 || h > height + 0.5);
  }

  onWheel(e) {
    e.preventDefault();
    this.zoomTo(this.view.scale * Math.exp(-e.deltaY * 0.0015), this.point(e));
  }

  /** One finger or the mouse drags the image (a swipe at fit goes to the previous or next);
   * two fingers pinch: the scale follows their distance, the image their midpoint. */
  onPointerDown(e) {
    if (e.pointerType === "mouse" && e.button !== 0) return;
    this.stage.setPointerCapture(e.pointerId);
    this.pointers.set(e.pointerId, { x: e.clientX, y: e.clientY });
    this.stage.classList.add("dragging");
    this.gesture = this.startGesture();
    if (this.pointers.size > 1) return; // the listeners are there since the first finger
    const move = (m) => {
      if (!this.pointers.has(m.pointerId)) return;
      this.pointers.set(m.pointerId, { x: m.clientX, y: m.clientY });
      this.moveGesture();
    };
    const up = (u) => {
      const g = this.gesture;
      this.pointers.delete(u.pointerId);
      if (this.pointers.size) {
        this.gesture = this.startGesture(); // one finger left: it drags on from here
        return;
      }
      this.gesture = null;
      this.stage.classList.remove("dragging");
      this.stage.removeEventListener("pointermove", move);
      this.stage.removeEventListener("pointerup", up);
      this.stage.removeEventListener("pointercancel", up);
      const dx = u.clientX - g.x;
      const dy = u.clientY - g.y;
      if (u.type === "pointerup" && g.fit && !g.pinched && Math.abs(dx) > SWIPE && Math.abs(dx) > 2 * Math.abs(dy)) {
        this.go(dx < 0 ? 1 : -1);
      }
    };
    this.stage.addEventListener("pointermove", move);
    this.stage.addEventListener("pointerup", up);
    this.stage.addEventListener("pointercancel", up);
  }

  /** Where the fingers (or the mouse) and the image are as a gesture (re)starts. */
  startGesture() {
    const pts = [...this.pointers.values()];
    const mid = pts.length > 1 ? { x: (pts[0].x + pts[1].x) / 2, y: (pts[0].y + pts[1].y) / 2 } : pts[0];
    return {
      ...mid,
      distance: pts.length > 1 ? Math.hypot(pts[0].x - pts[1].x, pts[0].y - pts[1].y) : 0,
      view: { ...this.view },
      fit: this.view.mode === "fit",
      pinched: pts.length > 1 || !!(this.gesture && this.gesture.pinched), // a finger of a pinch
    };
  }

  moveGesture() {
    const g = this.gesture;
    const pts = [...this.pointers.values()];
    if (pts.length > 1 && g.distance > 0) {
      const mid = { x: (pts[0].x + pts[1].x) / 2, y: (pts[0].y + pts[1].y) / 2 };
      const scale = Math.min(MAX_SCALE, Math.max(MIN_SCALE, g.view.scale * (Math.hypot(pts[0].x - pts[1].x, pts[0].y - pts[1].y) / g.distance)));
      const r = this.stage.getBoundingClientRect();
      // The image point that was under the first midpoint stays under the midpoint now.
      const ix = (g.x - r.left - g.view.x) / g.view.scale;
      const iy = (g.y - r.top - g.view.y) / g.view.scale;
      this.view = { scale, x: mid.x - r.left - ix * scale, y: mid.y - r.top - iy * scale, mode: "zoom" };
    } else if (pts.length === 1) {
      this.view.x = g.view.x + (pts[0].x - g.x);
      this.view.y = g.view.y + (pts[0].y - g.y);
    }
    this.place();
  }

  onKey(e) {
    if (e.target.closest && e.target.closest("input, textarea, select")) return;
    if (e.altKey || e.ctrlKey || e.metaKey) return;
    const pan = 80;
    const actions = {
      ArrowLeft: () => this.go(-1),
      ArrowRight: () => this.go(1),
      "+": () => this.zoomBy(STEP),
      "=": () => this.zoomBy(STEP),
      "-": () => this.zoomBy(1 / STEP),
      0: () => this.fit(),
      1: () => this.actual(),
      f: () => this.toggleFavourite(),
      F: () => this.toggleFavourite(),
      ArrowUp: () => this.panBy(0, pan),
      ArrowDown: () => this.panBy(0, -pan),
    };
    const action = actions[e.key];
    if (!action) return;
    e.preventDefault();
    action();
  }

  panBy(dx, dy) {
    this.view.x += dx;
    this.view.y += dy;
    this.place();
  }
}
