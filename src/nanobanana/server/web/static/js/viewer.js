// The full-size image view: a modal <dialog> (focus stays inside, Escape closes) with download.

import { imageBlobUrl } from "./api.js";
import { $ } from "./ui.js";

export class Viewer {
  constructor() {
    this.dialog = $("#viewer");
    this.img = $("#viewer-img");
    this.download = $("#viewer-download");
    $("#viewer-close").addEventListener("click", () => this.dialog.close());
    // A click on the backdrop (outside the image and buttons) closes it too.
    this.dialog.addEventListener("click", (e) => {
      if (e.target === this.dialog) this.dialog.close();
    });
  }

  async open(url, alt, filename) {
    const src = await imageBlobUrl(url);
    this.img.src = src;
    this.img.alt = alt || "";
    this.download.href = src;
    this.download.download = filename || "nanobanana.png";
    this.dialog.showModal();
    $("#viewer-close").focus();
  }
}
