// Settings: provider keys (masked; save, test, remove), defaults, tokens, the webhook and its
// signing secret, spending (and, for an administrator, every account's spending caps), the
// account.

import { api, requireSession } from "./api.js";
import { loadModels } from "./jobs.js";
import { ModelPicker } from "./picker.js";
import {
  $,
  clearError,
  confirmAction,
  el,
  formatDate,
  initHeader,
  noteSynthetic,
  providerName,
  say,
  showError,
  usd,
} from "./ui.js";

const errorBox = $("#settings-error");

/** Read GET /api/settings/keys in either shape: a list of entries or a map by provider. */
function keyEntries(body) {
  const raw = (body && (body.keys ?? body)) || {};
  const out = {};
  if (Array.isArray(raw)) {
    for (const k of raw) if (k && k.provider) out[k.provider] = k;
  } else {
    for (const [provider, k] of Object.entries(raw)) if (k && typeof k === "object") out[provider] = { provider, ...k };
  }
  return out;
}

function isSet(entry) {
  if (!entry) return false;
  if (entry.configured !== undefined) return !!entry.configured;
  if (entry.set !== undefined) return !!entry.set;
  return !!(entry.masked || entry.last4);
}

const SOURCE_NOTES = {
  server: "No key of your own: generations use the server's shared key.",
  demo: "No key saved: in demo mode you get synthetic images from the built-in emulator.",
};

function showKeyState(provider, entry) {
  const state = $(`#key-${provider}-state`);
  const saved = isSet(entry);
  if (saved) {
    state.replaceChildren("Saved: ", el("code", {}, entry.masked || (entry.last4 ? `…${entry.last4}` : "a key")));
    state.dataset.state = "set";
  } else {
    state.textContent = (entry && SOURCE_NOTES[entry.effective_source]) || "No key saved.";
    state.dataset.state = "unset";
  }
  if (entry && entry.effective_source === "demo") noteSynthetic(true);
  const card = $(`#key-${provider}`);
  card.querySelector('[data-action="test"]').disabled = !saved;
  card.querySelector('[data-action="remove"]').disabled = !saved;
}

async function refreshKeys() {
  const entries = keyEntries(await api("/api/settings/keys"));
  for (const card of document.querySelectorAll(".key-card")) {
    showKeyState(card.dataset.provider, entries[card.dataset.provider]);
  }
  return entries;
}

/** The first visit's greeting, which says whether generating works already. */
function welcomeText(me, entries) {
  const sources = Object.values(entries).map((e) => e.effective_source);
  if (me.demo || sources.includes("demo")) {
    return "Welcome! This server runs in demo mode: you can generate synthetic images right away. Save an OpenRouter or Google key to get real ones.";
  }
  if (sources.includes("server")) {
    return "Welcome! You can generate right away with the server's shared key, or save a key of your own.";
  }
  return "Welcome! Save an OpenRouter or Google key to start generating.";
}

function wireKeyCard(card) {
  const provider = card.dataset.provider;
  const input = $(`#key-${provider}-input`);
  const message = $(`#key-${provider}-message`);
  const name = providerName(provider);
  const run = async (text, fn) => {
    say(message, text);
    card.setAttribute("aria-busy", "true");
    try {
      await fn();
      input.removeAttribute("aria-invalid");
      clearError(errorBox); // an earlier failure is over once this succeeds
    } catch (err) {
      if (err && err.status === 422) {
        // A key the server refuses to store: say why at the field, where it is fixed.
        say(message, err.message, "error");
        input.setAttribute("aria-invalid", "true");
        input.focus();
      } else {
        say(message, "");
        showError(errorBox, err);
      }
    } finally {
      card.removeAttribute("aria-busy");
    }
  };
  card.addEventListener("submit", (e) => {
    e.preventDefault();
    const key = input.value.trim();
    if (!key) {
      say(message, `Paste your ${name} key into the field first.`, "error");
      input.focus();
      return;
    }
    run("Saving…", async () => {
      await api(`/api/settings/keys/${provider}`, { method: "PUT", json: { api_key: key } });
      input.value = ""; // the secret leaves the page as soon as it is stored
      await refreshKeys();
      say(message, `${name} key saved.`, "ok");
    });
  });
  card.querySelector('[data-action="test"]').addEventListener("click", () =>
    run("Testing…", async () => {
      const res = (await api(`/api/settings/keys/${provider}/test`, { method: "POST" })) || {};
      const ok = res.ok !== false;
      // The service's own sentence: what the provider said, with the key's credit when known.
      const text = res.message || (ok ? `The ${name} key works.` : `The ${name} key was refused.`);
      say(message, text, ok ? "ok" : "error");
      noteSynthetic(res.synthetic);
    }),
  );
  card.querySelector('[data-action="remove"]').addEventListener("click", async () => {
    if (!(await confirmAction(`Remove your ${name} key from this server?`, "Remove"))) return;
    run("Removing…", async () => {
      await api(`/api/settings/keys/${provider}`, { method: "DELETE" });
      await refreshKeys();
      say(message, `${name} key removed.`, "ok");
    });
  });
}

async function initDefaults() {
  const form = $("#defaults-form");
  const message = $("#defaults-message");
  const models = await loadModels();
  const picker = new ModelPicker(models, {
    provider: $("#d-provider"),
    model: $("#d-model"),
    ratio: $("#d-aspect_ratio"),
    size: $("#d-image_size"),
  });
  const saved = (await api("/api/settings/defaults")) || {};
  picker.set({ provider: saved.provider || "openrouter", ...saved });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = {
      provider: $("#d-provider").value,
      model: $("#d-model").value || null,
      aspect_ratio: $("#d-aspect_ratio").value || null,
      image_size: $("#d-image_size").value || null,
    };
    try {
      await api("/api/settings/defaults", { method: "PUT", json: body });
      say(message, "Defaults saved. New generations start with them.", "ok");
    } catch (err) {
      showError(errorBox, err);
    }
  });
  form.dataset.ready = "true";
}

// ------------------------------------------------------------------------- API tokens

function tokenRow(t) {
  const revoke = el(
    "button",
    { type: "button", class: "btn btn-small btn-danger", "aria-label": `Revoke ${t.name || "token"}` },
    "Revoke",
  );
  revoke.disabled = !!t.current;
  revoke.title = t.current ? "This is the session you are using; sign out to end it." : "";
  revoke.addEventListener("click", async () => {
    if (!(await confirmAction(`Revoke the token “${t.name}”? Scripts using it stop working.`, "Revoke"))) return;
    try {
      await api(`/api/auth/tokens/${encodeURIComponent(t.id)}`, { method: "DELETE" });
      say($("#tokens-message"), `Revoked “${t.name}”.`, "ok");
      await refreshTokens();
    } catch (err) {
      showError(errorBox, err);
    }
  });
  return el(
    "tr",
    { dataset: { id: t.id } },
    el("td", {}, t.name || "—"),
    el("td", {}, formatDate(t.created_at)),
    el("td", {}, t.expires_at ? formatDate(t.expires_at) : "never"),
    el("td", {}, t.last_used_at ? formatDate(t.last_used_at) : "never"),
    el("td", {}, revoke),
  );
}

async function refreshTokens() {
  // Personal API tokens only (sign-in sessions are listed by the API too), every page of them.
  const tokens = [];
  let cursor = "";
  do {
    const query = cursor ? `&cursor=${encodeURIComponent(cursor)}` : "";
    const body = (await api(`/api/auth/tokens?kind=api&limit=200${query}`)) || {};
    tokens.push(...(body.tokens || []));
    cursor = body.next_cursor || "";
  } while (cursor);
  const rows = tokens.map(tokenRow);
  $("#tokens-body").replaceChildren(
    ...(rows.length ? rows : [el("tr", {}, el("td", { colspan: "5", class: "hint" }, "No API tokens yet."))]),
  );
}

function initTokens() {
  const form = $("#token-form");
  const box = $("#new-token");
  const value = $("#new-token-value");
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const name = $("#token-name").value.trim();
    if (!name) {
      say($("#tokens-message"), "Give the token a name, so you know later where it is used.", "error");
      $("#token-name").focus();
      return;
    }
    const days = $("#token-days").value;
    try {
      const created = await api("/api/auth/tokens", {
        method: "POST",
        json: { name, expires_in_days: days ? Number(days) : null },
      });
      value.value = created.token;
      box.hidden = false;
      value.focus();
      value.select();
      $("#token-name").value = "";
      say($("#tokens-message"), "");
      await refreshTokens();
    } catch (err) {
      showError(errorBox, err);
    }
  });
  $("#copy-token").addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(value.value);
      say($("#tokens-message"), "Copied.", "ok");
    } catch {
      value.select();
      say($("#tokens-message"), "Press Ctrl+C (or ⌘C) to copy the selected token.", "info");
    }
  });
  // The token's value leaves the page when the user leaves it.
  window.addEventListener("pagehide", () => {
    value.value = "";
  });
  return refreshTokens();
}

// ----------------------------------------------------------------------------- spending

function periodText(period, when) {
  const spent = `${when}: ${usd(period.spent_usd)} spent`;
  return period.cap_usd === null ? `${spent}, no cap.` : `${spent} of a ${usd(period.cap_usd)} cap.`;
}

async function initSpending(me) {
  const mine = await api("/api/settings/budget");
  $("#spend-day").textContent = `${periodText(mine.day, "Today")} The day ends ${formatDate(mine.day.resets_at)}.`;
  $("#spend-month").textContent = periodText(mine.month, "This month");
  if (!me.is_admin) return;
  $("#caps").hidden = false;
  const all = await api("/api/admin/budgets");
  $("#caps-body").replaceChildren(
    capsRow(all.service, "the whole service", "/api/admin/budget"),
    ...all.users.map((u) => capsRow(u, u.username, `/api/admin/users/${encodeURIComponent(u.user_id)}/budget`)),
  );
}

/** An amount typed in a cap field: a number, null when empty; undefined when it is neither. */
function capValue(input) {
  const text = input.value.trim();
  if (!text) return null;
  const value = Number(text);
  return Number.isFinite(value) && value >= 0 ? value : undefined;
}

function capsRow(budget, who, url) {
  const message = $("#caps-message");
  const field = (name, label) =>
    el("input", {
      type: "number",
      min: "0",
      step: "0.01",
      inputmode: "decimal",
      name,
      "aria-label": `${label} for ${who} (USD)`,
      value: budget[name] ?? "",
    });
  const daily = field("daily_usd", "Cap per day");
  const monthly = field("monthly_usd", "Cap per month");
  const save = el("button", { type: "button", class: "btn", "aria-label": `Save the caps for ${who}` }, "Save");
  const row = el(
    "tr",
    { dataset: { scope: budget.scope, user: budget.user_id || "" } },
    el("td", {}, budget.scope === "service" ? el("strong", {}, "Whole service") : who),
    el("td", {}, usd(budget.day.spent_usd)),
    el("td", {}, usd(budget.month.spent_usd)),
    el("td", {}, daily),
    el("td", {}, monthly),
    el("td", {}, save),
  );
  save.addEventListener("click", async () => {
    const body = {};
    for (const input of [daily, monthly]) {
      const value = capValue(input);
      if (value === undefined) {
        say(message, `Enter an amount in USD (0 or more) for ${who}, or leave the field empty for no cap.`, "error");
        input.focus();
        return;
      }
      body[input.name] = value;
    }
    try {
      const saved = await api(url, { method: "PUT", json: body });
      const fresh = capsRow(saved, who, url);
      row.replaceWith(fresh);
      fresh.querySelector("button").focus();
      say(message, `Saved the caps for ${who}.`, "ok");
    } catch (err) {
      say(message, err.message, "error");
    }
  });
  return row;
}

// ----------------------------------------------------------------------------- webhook

function showWebhook(hook) {
  $("#webhook-url").value = hook.url || "";
  $("#webhook-secret").value = hook.secret;
  const previous = $("#webhook-previous");
  previous.hidden = !hook.previous_secret_valid_until;
  previous.textContent = hook.previous_secret_valid_until
    ? `Deliveries are also signed with the previous secret until ${formatDate(hook.previous_secret_valid_until)}.`
    : "";
}

async function initWebhook() {
  const message = $("#webhook-message");
  const input = $("#webhook-url");
  showWebhook(await api("/api/settings/webhook"));
  $("#webhook-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const url = input.value.trim() || null;
    input.removeAttribute("aria-invalid");
    try {
      showWebhook(await api("/api/settings/webhook", { method: "PUT", json: { url } }));
      say(message, url ? "Saved: generations that name no webhook report to it." : "Removed the default webhook.", "ok");
    } catch (err) {
      input.setAttribute("aria-invalid", "true");
      input.focus();
      say(message, err.message, "error");
    }
  });
  const secret = $("#webhook-secret");
  const show = $("#webhook-show");
  show.addEventListener("click", () => {
    const shown = secret.type === "text";
    secret.type = shown ? "password" : "text";
    show.textContent = shown ? "Show" : "Hide";
    show.setAttribute("aria-pressed", String(!shown));
  });
  $("#webhook-copy").addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(secret.value);
      say(message, "Copied the signing secret.", "ok");
    } catch {
      secret.type = "text";
      secret.select();
      say(message, "Press Ctrl+C (or ⌘C) to copy the selected secret.", "info");
    }
  });
  $("#webhook-rotate").addEventListener("click", async () => {
    const question =
      "Make a new signing secret? For a day, deliveries are signed with both the new and the " +
      "old one: move your receiver to the new one meanwhile.";
    if (!(await confirmAction(question, "Rotate"))) return;
    try {
      showWebhook(await api("/api/settings/webhook/rotate", { method: "POST" }));
      say(message, "A new signing secret is in use.", "ok");
    } catch (err) {
      say(message, err.message, "error");
    }
  });
}

async function main() {
  if (!requireSession()) return;
  initHeader();
  document.querySelectorAll(".key-card").forEach(wireKeyCard);
  try {
    const me = await api("/api/auth/me");
    $("#me-name").textContent = me.username;
    $("#me-role").textContent = me.is_admin ? " (administrator)" : "";
    noteSynthetic(!!(me.demo || me.synthetic));
    const entries = await refreshKeys();
    if (new URLSearchParams(window.location.search).get("welcome")) {
      say($(`#key-openrouter-message`), welcomeText(me, entries), "ok");
    }
    await initDefaults();
    await initTokens();
    await initWebhook();
    await initSpending(me);
  } catch (err) {
    showError(errorBox, err, { focus: false });
  }
  if (window.location.hash) {
    const target = document.querySelector(window.location.hash.replace(/[^#\w-]/g, ""));
    const input = target && target.querySelector("input");
    if (input) input.focus();
  }
  document.body.dataset.ready = "true";
}

main();
