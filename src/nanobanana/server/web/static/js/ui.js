// Small DOM helpers shared by every page: element building, the header, the demo notice,
// error messages that say how to fix the problem, and the confirmation dialog.

import { api, clearSession, getSession } from "./api.js";

/** el("a", {href: "/x", class: "btn"}, "text", child) — text is always set as text, never HTML. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else if (value === true) node.setAttribute(key, "");
    else node.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function $(selector, root = document) {
  return root.querySelector(selector);
}

let providerLabels;

/** A provider's label, as the service's providers declare it (`data-providers` on <body>). */
export function providerName(p) {
  providerLabels ??= JSON.parse(document.body.dataset.providers || "{}");
  return providerLabels[p] || p || "";
}

export function formatCost(cost, estimate) {
  if (cost === null || cost === undefined || Number.isNaN(Number(cost))) return "—";
  const n = Number(cost);
  const text = n === 0 ? "$0" : n < 0.01 ? `$${n.toFixed(4)}` : `$${n.toFixed(3)}`;
  return estimate ? `${text} (estimate)` : text;
}

/** USD with cents, and up to four decimals below a dollar (an image costs a few cents). */
export function usd(value) {
  if (value === 0 || value >= 1) return `$${value.toFixed(2)}`;
  return `$${value.toFixed(4).replace(/0{1,2}$/, "")}`;
}

/** A warning as text (the service sends strings; tolerate {message} objects). */
export function warningText(w) {
  return typeof w === "string" ? w : (w && w.message) || JSON.stringify(w);
}

export function formatSeconds(s) {
  if (s === null || s === undefined || Number.isNaN(Number(s))) return "—";
  return `${Number(s).toFixed(1)} s`;
}

export function formatDate(value) {
  if (!value) return "";
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return String(value);
  return d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

// --------------------------------------------------------------------------- header

/** Fill the header with the signed-in user and wire "Sign out". */
export function initHeader() {
  const session = getSession();
  const account = $("#account");
  if (!account) return;
  if (!session) {
    account.hidden = true;
    return;
  }
  account.hidden = false;
  $("#account-name").textContent = session.username || "";
  $("#sign-out").addEventListener("click", async () => {
    try {
      await api("/api/auth/logout", { method: "POST" });
    } catch {
      /* the token is dropped locally either way; an expired one cannot be revoked twice */
    }
    clearSession();
    window.location.assign("/login?signed_out=1");
  });
}

/** Show the banner that says images are synthetic (they came from the built-in emulator). */
export function noteSynthetic(flag) {
  const banner = $("#demo-notice");
  if (banner && flag) banner.hidden = false;
}

/** Show the demo banner when the service says it runs in demo mode for this user. */
export async function checkDemo(me) {
  if (me && (me.demo || me.demo_mode || me.synthetic)) noteSynthetic(true);
}

// --------------------------------------------------------------------------- errors

function link(href, text) {
  return el("a", { href }, text);
}

/**
 * Turn an ApiError (or a failed job's error) into {title, body: [nodes], fix: [nodes]}.
 * Every message says what to do next.
 */
export function describeError(err) {
  const code = (err && err.code) || "error";
  const details = (err && err.details) || {};
  const message = (err && err.message) || "Something went wrong.";
  const provider = details.provider || err.provider;
  // A generic code may carry the precise one in `reason` (e.g. upstream_failed / upstream_auth).
  if (code === "upstream_failed" && details.reason && details.reason !== code && typeof details.reason === "string"
      && details.reason.startsWith("upstream_")) {
    return describeError({ ...err, code: details.reason });
  }
  const pname = providerName(provider);
  const keysHref = provider ? `/settings#key-${provider}` : "/settings#keys";
  switch (code) {
    case "missing_api_key":
    case "no_api_key":
      return {
        title: pname ? `No ${pname} API key` : "No API key",
        body: [message],
        fix: [
          link(keysHref, pname ? `Add your ${pname} key in Settings` : "Add a key in Settings"),
          ", then generate again.",
        ],
      };
    case "quota_exceeded":
    case "rate_limited": {
      const wait = err.retryAfter ? ` Try again in about ${Math.ceil(err.retryAfter)} s,` : " Try again later,";
      return {
        title: pname ? `${pname} quota exceeded` : "Quota exceeded",
        body: [message],
        fix: [
          `${wait} or `,
          link("/settings#keys", "save a key for the other provider"),
          " so a request can fall back to it.",
        ],
      };
    }
    case "content_blocked": {
      const reason = details.reason || err.reason;
      const text = details.text || err.text;
      const body = [reason ? `The model blocked this request: ${reason}.` : message];
      if (text) body.push(el("q", { class: "model-text" }, text));
      return {
        title: "Blocked by the model's safety rules",
        body,
        fix: ["Rephrase the prompt (or change the reference images) and try again."],
      };
    }
    case "no_image": {
      const text = details.text || err.text;
      const body = [message];
      if (text) body.push(el("q", { class: "model-text" }, text));
      return {
        title: "The model answered without an image",
        body,
        fix: ["Try again, or ask for an image more explicitly in the prompt."],
      };
    }
    case "upstream_auth":
      return {
        title: pname ? `${pname} refused the key` : "The provider refused the key",
        body: [message],
        fix: [link(keysHref, "Replace the key in Settings"), " (use “Test” to check it)."],
      };
    case "upstream_payment_required":
      return {
        title: "No credits left",
        body: [message],
        fix: ["Add credits to your OpenRouter account, or switch to Google."],
      };
    case "upstream_unavailable":
    case "upstream_connect":
    case "upstream_error":
    case "upstream_failed":
      return {
        title: pname ? `${pname} is not available` : "The provider is not available",
        body: [message],
        fix: ["Try again in a minute, or switch provider."],
      };
    case "upstream_ambiguous":
    case "deadline_exceeded":
      return {
        title: "No complete answer from the provider",
        body: [message],
        fix: ["It may have been billed, so it was not resent. Check the Gallery, then try again if needed."],
      };
    case "network":
      return { title: "Server unreachable", body: [message], fix: ["Check your connection and reload the page."] };
    case "unauthorized":
    case "not_authenticated":
    case "http_401":
      return {
        title: "Signed out",
        body: ["Your session has ended."],
        fix: [link(`/login?next=${encodeURIComponent(location.pathname + location.search)}`, "Sign in again"), "."],
      };
    case "bad_credentials":
      return {
        title: "Sign-in failed",
        body: [message],
        fix: ["Check both fields. No account yet? ", link("/register", "Create one"), "."],
      };
    case "too_many_attempts":
      return { title: "Too many attempts", body: [message], fix: [] };
    case "username_taken":
      return { title: "Username taken", body: [message], fix: [link("/login", "Sign in"), " instead?"] };
    case "invalid_request":
    case "invalid_parameter":
    case "validation_error":
    case "unknown_model":
    case "invalid_reference_image":
      return { title: "Check the form", body: [message], fix: [] };
    case "interrupted":
    case "job_interrupted":
      return { title: "Interrupted", body: [message], fix: ["Generate again if you still want the image."] };
    case "payload_too_large":
    case "http_413":
      return { title: "File too large", body: [message], fix: ["Use a smaller image."] };
    default:
      if (err && err.status === 401) return describeError({ ...err, code: "unauthorized" });
      return {
        title: err && err.status >= 500 ? "Server error" : "Request refused",
        body: [message],
        fix: err && err.status >= 500 ? ["Try again; if it keeps failing, check the server log."] : [],
      };
  }
}

/** Render an error into a container (role=alert) and move focus to it. */
export function showError(container, err, { focus = true } = {}) {
  const d = describeError(err);
  const parts = [
    el("h2", { class: "error-title" }, d.title),
    ...d.body.map((b) => (b instanceof Node ? b : el("p", {}, b))),
  ];
  if (d.fix.length) parts.push(el("p", { class: "error-fix" }, ...d.fix));
  container.replaceChildren(...parts);
  container.dataset.code = (err && err.code) || "error";
  container.hidden = false;
  if (focus) container.focus({ preventScroll: false });
}

export function clearError(container) {
  container.hidden = true;
  container.replaceChildren();
  delete container.dataset.code;
}

/** A short status message in a polite live region. */
export function say(node, text, kind = "info") {
  node.textContent = text;
  node.dataset.kind = kind;
  node.hidden = !text;
}

// --------------------------------------------------------------------------- confirm

/** Ask with the page's <dialog id="confirm-dialog">; resolves true when confirmed. */
export function confirmAction(message, confirmLabel = "Delete") {
  const dialog = $("#confirm-dialog");
  $("#confirm-message", dialog).textContent = message;
  $("#confirm-ok", dialog).textContent = confirmLabel;
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.returnValue = "";
    dialog.showModal();
    $("#confirm-cancel", dialog).focus();
  });
}
