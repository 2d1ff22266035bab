// Reference images for the generator: pick, drag and drop or paste; previews; remove.
// Each image is uploaded at once (POST /api/uploads) so a refused file is reported right away,
// and the generation request then names the uploads by id.

import { api, imageBlob } from "./api.js";
import { clearError, el, showError } from "./ui.js";

const ACCEPTED = new Set(["image/png", "image/jpeg", "image/webp"]);

export class References {
  constructor({ list, input, pick, zone, errorBox, hint }) {
    this.list = list;
    this.input = input;
    this.zone = zone;
    this.errorBox = errorBox;
    this.hint = hint;
    this.limit = 3;
    this.items = [];
    pick.addEventListener("click", () => input.click());
    input.addEventListener("change", () => {
      this.addFiles([...input.files]);
      input.value = "";
    });
    for (const type of ["dragenter", "dragover"]) {
      zone.addEventListener(type, (e) => {
        if (!this.hasFiles(e)) return;
        e.preventDefault();
        zone.classList.add("dragging");
      });
    }
    zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
    zone.addEventListener("drop", (e) => {
      e.preventDefault();
      zone.classList.remove("dragging");
      this.addFiles([...e.dataTransfer.files]);
    });
    // A file dropped beside the zone must not make the browser navigate away from the form.
    window.addEventListener("dragover", (e) => this.hasFiles(e) && e.preventDefault());
    window.addEventListener("drop", (e) => this.hasFiles(e) && e.preventDefault());
    document.addEventListener("paste", (e) => {
      const files = [...(e.clipboardData ? e.clipboardData.files : [])].filter((f) => f.type.startsWith("image/"));
      if (files.length) {
        e.preventDefault();
        this.addFiles(files);
      }
    });
  }

  hasFiles(event) {
    return !!event.dataTransfer && [...event.dataTransfer.types].includes("Files");
  }

  setLimit(n) {
    this.limit = n;
    const off = n === 0;
    this.zone.classList.toggle("disabled", off);
    this.zone.querySelectorAll("button").forEach((b) => {
      b.disabled = off;
    });
    this.hint.textContent = off
      ? "This model takes no reference images."
      : `PNG, JPEG or WebP; up to ${n} image${n === 1 ? "" : "s"} for this model.`;
  }

  ids() {
    return this.items.filter((i) => i.id).map((i) => i.id);
  }

  busy() {
    return this.items.some((i) => i.status === "uploading");
  }

  fail(message) {
    showError(this.errorBox, { status: 400, code: "invalid_reference_image", message }, { focus: false });
  }

  addFiles(files) {
    clearError(this.errorBox);
    for (const file of files) {
      if (!ACCEPTED.has(file.type)) {
        this.fail(`${file.name || "That file"} is not a PNG, JPEG or WebP image.`);
        continue;
      }
      if (this.items.length >= this.limit) {
        this.fail(`This model takes at most ${this.limit} reference image${this.limit === 1 ? "" : "s"}.`);
        break;
      }
      this.upload(file);
    }
  }

  /** Use an image the service already holds (a result) as a new reference. */
  async addFromUrl(url, name) {
    try {
      const { blob } = await imageBlob(url);
      this.addFiles([new File([blob], name, { type: blob.type || "image/png" })]);
    } catch (err) {
      showError(this.errorBox, err, { focus: false });
    }
  }

  /** A reference kept by a past generation (an upload id), restored by remix. */
  async addExisting(uploadId) {
    if (this.items.some((i) => i.id === uploadId)) return;
    const item = { id: uploadId, status: "ready", preview: null };
    item.li = this.render(item, `Reference ${this.items.length + 1}`, null);
    this.items.push(item);
  }

  async upload(file) {
    const preview = URL.createObjectURL(file);
    const item = { id: null, status: "uploading", preview };
    item.li = this.render(item, file.name || "pasted image", preview);
    this.items.push(item);
    const data = new FormData();
    data.append("file", file, file.name || "reference.png");
    try {
      const res = await api("/api/uploads", { method: "POST", body: data });
      item.id = res.id || res.upload_id;
      item.status = "ready";
      item.li.dataset.status = "ready";
      item.li.querySelector(".ref-state").textContent =
        res.width && res.height ? `${res.width}×${res.height}` : "ready";
    } catch (err) {
      this.remove(item);
      showError(this.errorBox, err, { focus: false });
    }
  }

  render(item, name, preview) {
    const remove = el("button", { type: "button", class: "btn btn-small", "aria-label": `Remove ${name}` }, "Remove");
    const li = el(
      "li",
      { class: "ref", dataset: { status: item.status } },
      preview
        ? el("img", { src: preview, alt: "" })
        : el("span", { class: "ref-placeholder", "aria-hidden": "true" }, "🖼"),
      el("span", { class: "ref-name" }, name),
      el("span", { class: "ref-state" }, item.status === "uploading" ? "uploading…" : "ready"),
      remove,
    );
    remove.addEventListener("click", () => {
      this.remove(item);
      this.zone.querySelector("button").focus();
    });
    this.list.append(li);
    return li;
  }

  remove(item) {
    this.items = this.items.filter((i) => i !== item);
    item.li.remove();
    if (item.preview) URL.revokeObjectURL(item.preview);
  }
}
