// Provider -> model -> aspect ratio / size selects that only ever offer what the chosen model
// supports. Used by the generator and by the defaults form in Settings.

import { findModel, modelsFor } from "./jobs.js";
import { el } from "./ui.js";

const PREFERRED_RATIO = "1:1";
const PREFERRED_SIZE = "1K";

function fill(select, values, wanted, preferred, label = (v) => v) {
  const keep = values.includes(wanted) ? wanted : values.includes(preferred) ? preferred : values[0];
  select.replaceChildren(...values.map((v) => el("option", { value: v }, label(v))));
  if (keep !== undefined) select.value = keep;
  select.disabled = values.length === 0;
}

/** A model's name in the list; one only the provider's live listing has says so. */
function modelLabel(m) {
  const name = m.name || m.id;
  if (m.recommended) return `${name} (recommended)`;
  return m.discovered ? `${name} (from the provider's listing)` : name;
}

export class ModelPicker {
  /** `selects`: {provider, model, ratio, size}; `onChange(model)` runs after every change. */
  constructor(models, selects, onChange = () => {}) {
    this.models = models;
    this.s = selects;
    this.onChange = onChange;
    this.s.provider.addEventListener("change", () => this.refreshModels());
    this.s.model.addEventListener("change", () => this.refreshOptions());
  }

  get model() {
    return findModel(this.models, this.s.model.value, this.s.provider.value);
  }

  refreshModels() {
    this.set({ model: this.s.model.value });
  }

  refreshOptions(wantedRatio = this.s.ratio.value, wantedSize = this.s.size.value) {
    const m = this.model;
    fill(this.s.ratio, (m && m.aspect_ratios) || [], wantedRatio, PREFERRED_RATIO);
    fill(this.s.size, (m && m.sizes) || [], wantedSize, PREFERRED_SIZE);
    this.onChange(m);
  }

  /** Select provider, model, ratio and size at once (defaults, remix); unknown values fall back. */
  set({ provider, model, aspect_ratio: ratio, image_size: size } = {}) {
    if (provider && [...this.s.provider.options].some((o) => o.value === provider)) {
      this.s.provider.value = provider;
    }
    const list = modelsFor(this.models, this.s.provider.value);
    const found = findModel(list, model);
    const choice = found || list.find((m) => m.recommended) || list[0];
    this.s.model.replaceChildren(...list.map((m) => el("option", { value: m.id }, modelLabel(m))));
    if (choice) this.s.model.value = choice.id;
    this.s.model.disabled = list.length === 0;
    this.refreshOptions(ratio || this.s.ratio.value, size || this.s.size.value);
  }
}
