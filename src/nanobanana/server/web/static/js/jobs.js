// Reading generation records and models from the API in one place, so the pages share one view
// of what a job holds (its request, outcome, attempts and images).

import { api } from "./api.js";
import { formatCost, formatSeconds, providerName } from "./ui.js";

export const TERMINAL = new Set(["succeeded", "failed", "blocked", "interrupted", "cancelled"]);

/** The parameters a job was asked for (the request), as the generator form holds them. */
export function jobParams(job) {
  const r = (job && (job.request || job.params)) || {};
  const pick = (k) => (r[k] !== undefined && r[k] !== null ? r[k] : job ? job[k] : undefined);
  return {
    prompt: pick("prompt") || "",
    negative_prompt: pick("negative_prompt") || "",
    provider: r.provider || job.requested_provider || job.provider || "openrouter",
    model: r.model || job.requested_model || job.model || "",
    aspect_ratio: pick("aspect_ratio") || "",
    image_size: pick("image_size") || "",
    num_images: Number(r.num_images ?? r.n ?? (job.images && job.images.length) ?? 1) || 1,
    seed: pick("seed"),
    thinking: pick("thinking") || "",
    google_search: !!pick("google_search"),
    image_options: pick("image_options") || {},
    images: Array.isArray(r.images) ? r.images : [],
  };
}

/** The images of a job as [{id, url, thumb, width, height, mime_type, index}]. */
export function jobImages(job) {
  const list = (job && job.images) || [];
  return list.map((im, i) => imageInfo(im, i));
}

export function imageInfo(im, i = 0) {
  if (typeof im === "string") {
    return { id: im, url: `/api/images/${encodeURIComponent(im)}`, thumb: null, index: i };
  }
  const id = im.id || im.image_id;
  const url = im.url || (id ? `/api/images/${encodeURIComponent(id)}` : null);
  return {
    id,
    url,
    thumb: im.thumbnail_url || im.thumb_url || null,
    width: im.width,
    height: im.height,
    mime_type: im.mime_type || im.content_type,
    index: im.index ?? i,
  };
}

/** The error of a failed or blocked job, shaped like an ApiError for describeError(). */
export function jobError(job) {
  const e = job.error && typeof job.error === "object" ? job.error : {};
  const fallbackCode = { blocked: "content_blocked", interrupted: "job_interrupted" }[job.status] || "error";
  return {
    status: e.status || 0,
    code: e.code || job.error_code || fallbackCode,
    message: e.message || job.error_message || "The generation failed.",
    retryAfter: e.retry_after ?? null,
    details: { ...e, provider: e.provider || job.provider },
  };
}

/** Every attempt of a job, in order (the record calls the list `fallback`). */
export function jobAttempts(job) {
  return (job && (job.fallback || job.attempts)) || [];
}

export function jobCost(job) {
  if (job.cost !== undefined && job.cost !== null && typeof job.cost === "object") {
    return { cost: job.cost.usd ?? job.cost.total ?? null, estimate: !!job.cost.estimate };
  }
  const usage = job.usage || {};
  return {
    cost: job.cost ?? usage.cost ?? null,
    estimate: !!(job.cost_is_estimate ?? usage.cost_is_estimate),
  };
}

/** What a generation was asked for and what it gave, as [label, text] pairs to show (empty
 * values left out): the detail page and the viewer show the same facts. */
export function jobFacts(job) {
  const p = jobParams(job);
  const { cost, estimate } = jobCost(job);
  const timings = job.timings || {};
  const requested = `${providerName(p.provider)}${p.model ? ` · ${p.model}` : ""}`;
  const used = job.provider ? `${providerName(job.provider)} · ${job.provider_model || job.model || ""}` : "";
  const facts = [
    ["Prompt", job.prompt],
    ["Negative prompt", p.negative_prompt],
    ["Effective prompt", job.effective_prompt && job.effective_prompt !== job.prompt ? job.effective_prompt : ""],
    ["Requested", requested],
    ["Served by", used],
    ["Aspect ratio", p.aspect_ratio],
    ["Size", p.image_size],
    ["Images", String(p.num_images)],
    ["Seed", p.seed ?? ""],
    ["Thinking", p.thinking],
    ["Google Search", p.google_search ? "yes" : ""],
    ["Model options", Object.keys(p.image_options).length ? JSON.stringify(p.image_options) : ""],
    ["Reference images", p.images.length ? String(p.images.length) : ""],
    ["Cost", formatCost(cost, estimate)],
    ["Time", timings.elapsed_s !== undefined ? formatSeconds(timings.elapsed_s) : ""],
    ["First image after", timings.first_image_s ? formatSeconds(timings.first_image_s) : ""],
    ["Synthetic", job.synthetic ? "yes — from the built-in emulator" : ""],
    ["Id", job.id],
  ];
  return facts.filter(([, value]) => value !== undefined && value !== null && value !== "");
}

export function getJob(id, signal) {
  return api(`/api/generations/${encodeURIComponent(id)}`, { signal });
}

// ---------------------------------------------------------------------------- models

let modelsPromise = null;

/** The catalog from /api/nano-banana/models, fetched once per page. */
export function loadModels() {
  if (!modelsPromise) {
    modelsPromise = api("/api/nano-banana/models").then((body) => (body && body.models) || []);
    modelsPromise.catch(() => {
      modelsPromise = null;
    });
  }
  return modelsPromise;
}

/** Providers that serve a model (entries may list one `provider` or several). */
export function modelProviders(m) {
  const out = new Set();
  if (Array.isArray(m.providers)) m.providers.forEach((p) => out.add(p));
  if (m.provider_ids && typeof m.provider_ids === "object") Object.keys(m.provider_ids).forEach((p) => out.add(p));
  if (typeof m.provider === "string") out.add(m.provider);
  return out;
}

/** Models served by a provider, recommended first, each id once. */
export function modelsFor(models, provider) {
  const seen = new Set();
  const out = [];
  for (const m of models) {
    if (!modelProviders(m).has(provider) || seen.has(m.id)) continue;
    seen.add(m.id);
    out.push(m);
  }
  return out.sort((a, b) => Number(!!b.recommended) - Number(!!a.recommended));
}

export function findModel(models, id, provider) {
  if (!id) return null;
  const match = (m) =>
    m.id === id || (Array.isArray(m.aliases) && m.aliases.includes(id)) ||
    (m.provider_ids && Object.values(m.provider_ids).includes(id));
  return (
    models.find((m) => match(m) && (!provider || modelProviders(m).has(provider))) ||
    models.find(match) ||
    null
  );
}
