// Talking to the JSON API: the session token, calls with a bearer header, errors that name the fix.
//
// The session token lives in localStorage under "token", as a plain string, so that the API
// can be called from the browser console with `localStorage.getItem('token')`; its expiry and
// the username sit beside it under "nanobanana.session". It is never in the page source, a URL
// or a script-readable cookie, and is sent as `Authorization: Bearer ...`. Images are fetched
// the same way and shown through blob: URLs, because an <img src> cannot carry the header
// (the gallery's thumbnails are plain images when its page came with the HttpOnly session
// cookie that signing in also sets: gallerypage.js).
//
// localStorage is readable by any script running on this origin; the service's CSP allows only
// its own scripts (no inline script, no other origin), which is what keeps the token safe.

const TOKEN_KEY = "token";
const SESSION_KEY = "nanobanana.session";

function storage() {
  try {
    return window.localStorage;
  } catch {
    return null; // storage disabled: behave as signed out
  }
}

export function getSession() {
  const store = storage();
  if (!store) return null;
  let token = store.getItem(TOKEN_KEY);
  let meta = {};
  try {
    meta = JSON.parse(store.getItem(SESSION_KEY) || "{}") || {};
  } catch {
    meta = {};
  }
  if (!token && typeof meta.token === "string") {
    // A session stored before the token had a key of its own.
    token = meta.token;
    setSession(token, meta.expires_at, meta.username);
  }
  if (!token) return null;
  if (meta.expires_at && Date.parse(meta.expires_at) <= Date.now()) {
    clearSession();
    return null;
  }
  return { token, expires_at: meta.expires_at || null, username: meta.username || null };
}

export function setSession(token, expiresAt, username) {
  const store = window.localStorage; // throws when storage is disabled: signing in cannot work
  store.setItem(TOKEN_KEY, token);
  store.setItem(
    SESSION_KEY,
    JSON.stringify({ expires_at: expiresAt || null, username: username || null }),
  );
}

export function clearSession() {
  const store = storage();
  if (!store) return; // nothing stored to clear
  store.removeItem(TOKEN_KEY);
  store.removeItem(SESSION_KEY);
}

/** An error answered by the API (or the network), in the service's one error shape. */
export class ApiError extends Error {
  constructor({ status = 0, code = "error", message = "", details = {}, retryAfter = null }) {
    super(message || `Request failed (${status})`);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.details = details;
    this.retryAfter = retryAfter;
  }
}

function firstString(...values) {
  for (const v of values) if (typeof v === "string" && v) return v;
  return "";
}

/** Read whichever error shape the body has: {error:{code,message}}, {code,message} or FastAPI's {detail}. */
export function errorFromBody(status, body, retryAfterHeader) {
  let details = {};
  let code = "";
  let message = "";
  if (body && typeof body === "object") {
    const inner = body.error && typeof body.error === "object" ? body.error : body;
    details = inner;
    code = firstString(inner.code, typeof body.error === "string" ? body.error : "");
    message = firstString(inner.message, inner.detail, body.message);
    if (!message && Array.isArray(body.detail)) {
      message = body.detail
        .map((d) => `${(d.loc || []).filter((p) => p !== "body").join(".")}: ${d.msg}`)
        .join("; ");
      code = code || "invalid_request";
    }
  } else if (typeof body === "string") {
    message = body.slice(0, 300);
  }
  let retryAfter = null;
  const ra = retryAfterHeader ?? details.retry_after;
  if (ra !== undefined && ra !== null && ra !== "" && !Number.isNaN(Number(ra))) retryAfter = Number(ra);
  return new ApiError({ status, code: code || `http_${status}`, message, details, retryAfter });
}

function authHeaders(extra) {
  const headers = new Headers(extra || {});
  const session = getSession();
  if (session && !headers.has("Authorization")) headers.set("Authorization", `Bearer ${session.token}`);
  return headers;
}

/**
 * Call the API. `json` is sent as a JSON body; `raw: true` returns the Response itself.
 * Throws ApiError for any non-2xx answer and for network failures (status 0).
 */
export async function api(path, { method = "GET", json, body, signal, headers, raw = false, cache = "no-store" } = {}) {
  const h = authHeaders(headers);
  let payload = body;
  if (json !== undefined) {
    h.set("Content-Type", "application/json");
    payload = JSON.stringify(json);
  }
  if (!h.has("Accept")) h.set("Accept", "application/json");
  let res;
  try {
    res = await fetch(path, { method, headers: h, body: payload, signal, cache });
  } catch (exc) {
    if (exc && exc.name === "AbortError") throw exc;
    throw new ApiError({
      status: 0,
      code: "network",
      message: "The server cannot be reached. Check that it is running, then try again.",
    });
  }
  if (!res.ok) {
    let parsed = null;
    const text = await res.text();
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      parsed = text;
    }
    const err = errorFromBody(res.status, parsed, res.headers.get("Retry-After"));
    if (res.status === 401) clearSession();
    throw err;
  }
  if (raw) return res;
  if (res.status === 204) return null;
  const text = await res.text();
  return text ? JSON.parse(text) : null;
}

/** Send the browser to the sign-in page unless a session exists; returns the session. */
export function requireSession() {
  const session = getSession();
  if (!session) {
    const next = window.location.pathname + window.location.search;
    window.location.replace(`/login?next=${encodeURIComponent(next)}`);
    return null;
  }
  return session;
}

/** Only same-site paths are followed after sign-in (no open redirect). */
/**
 * Where to go after signing in: a path on this origin, else "/". Decided by the URL parser, as
 * the browser will read it (so `/\host`, `/%09/host` or `//host` cannot leave the origin).
 */
export function safeNext(value, origin = window.location.origin) {
  if (typeof value !== "string" || !value.startsWith("/")) return "/";
  let url;
  try {
    url = new URL(value, origin);
  } catch {
    return "/";
  }
  if (url.origin !== origin) return "/";
  return url.pathname + url.search + url.hash;
}

export function newIdempotencyKey() {
  if (window.crypto && typeof window.crypto.randomUUID === "function") return window.crypto.randomUUID();
  const bytes = new Uint8Array(16);
  window.crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// ------------------------------------------------------------------------------ images

const images = new Map();

/**
 * Fetch an API image with the bearer header: {blob, url} with a blob: URL (cached per page).
 * An image never changes under its id, and the service says so (immutable, varying by the
 * Authorization header): the browser's HTTP cache answers the next visit without a request.
 */
export function imageBlob(url) {
  if (!images.has(url)) {
    const pending = api(url, { raw: true, headers: { Accept: "image/*" }, cache: "default" })
      .then((res) => res.blob())
      .then((blob) => ({ blob, url: URL.createObjectURL(blob) }));
    images.set(url, pending);
    pending.catch(() => images.delete(url));
  }
  return images.get(url);
}

export async function imageBlobUrl(url) {
  if (url.startsWith("data:") || url.startsWith("blob:")) return url;
  return (await imageBlob(url)).url;
}

/** Show an API image in an <img>; resolves once it has loaded (naturalWidth known). */
export async function showImage(img, url) {
  const src = await imageBlobUrl(url);
  await new Promise((resolve, reject) => {
    img.addEventListener("load", resolve, { once: true });
    img.addEventListener("error", () => reject(new Error("image did not decode")), { once: true });
    img.src = src;
  });
  return src;
}

/** Save an API response as a download, named as its Content-Disposition says (else
 * `fallback`): files behind the bearer token cannot be plain links. */
export async function saveResponse(res, fallback) {
  const blob = await res.blob();
  const name = /filename="([^"]+)"/.exec(res.headers.get("Content-Disposition") || "");
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = name ? name[1] : fallback;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
}
