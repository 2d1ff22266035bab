// Which page of images the gallery asks for, and its first page asked for early.
//
// The gallery page loads this module on its own as well (`async`): it runs as soon as it and
// api.js have arrived, without waiting for the document or the page's other modules, so the
// first page's request leaves while they are still on their way. gallery.js takes that answer
// when it wants the same page (it asks again otherwise: a filter the form could not hold).
//
// Signed in through the sign-in page, the browser also holds the session cookie (HttpOnly),
// and the service sends the first page within the HTML (#gallery-first-page): then nothing is
// asked at all, and thumbnails can be plain <img src> elements (the cookie goes with them).
// That page is used only when it is this browser's stored session's account.

import { api, getSession } from "./api.js";

const PAGE_SIZE = 30;
/** The gallery's filters: form fields named so, kept in the address under the same names. */
export const FILTERS = ["provider", "model", "aspect_ratio", "image_size", "since", "until", "favourite", "sort", "group"];
/** The checkboxes among them, and their value when ticked (as in gallery.html). */
const CHECKBOXES = { favourite: "true", group: "1" };

/** A local day as the start of that day (or of the next one) with its offset. */
function dayBound(day, end) {
  const d = new Date(`${day}T00:00:00`);
  if (end) d.setDate(d.getDate() + 1);
  return d.toISOString();
}

/** The filters an address asks for, as the form holds them ({name: value}, set ones only). */
export function addressFilters(params) {
  const out = {};
  for (const name of FILTERS) {
    const value = params.get(name) || "";
    if (name in CHECKBOXES) {
      if (value === CHECKBOXES[name]) out[name] = value;
    } else if (value || name === "sort") {
      out[name] = value || "newest";
    }
  }
  return out;
}

/** The API address of a page of images: words searched, filters (as the form holds them). */
export function imagesUrl(query, filters, cursor = null) {
  const p = new URLSearchParams({ limit: String(PAGE_SIZE) });
  if (query) p.set("q", query);
  for (const name of ["provider", "model", "aspect_ratio", "image_size", "sort"]) {
    if (filters[name]) p.set(name, filters[name]);
  }
  if (filters.favourite) p.set("favourite", "true");
  if (filters.since) p.set("since", dayBound(filters.since, false));
  if (filters.until) p.set("until", dayBound(filters.until, true));
  if (cursor) p.set("cursor", cursor);
  return `/api/images?${p}`;
}

/** The first page the service sent within the page, if it is for the stored session's account. */
function sentWithPage(session) {
  const block = document.getElementById("gallery-first-page");
  if (!block || !session.username) return null;
  try {
    const sent = JSON.parse(block.textContent);
    return String(sent.user).toLowerCase() === session.username.toLowerCase() ? sent : null;
  } catch {
    return null;
  }
}

let cookieSession = false;

/** Whether this page came with the session cookie of the stored session's account: images
 * may then be plain <img src> (the browser sends the cookie with them). */
export function cookieImages() {
  return cookieSession;
}

function askEarly() {
  const session = getSession();
  if (!session) return null;
  const params = new URLSearchParams(window.location.search);
  let url;
  try {
    url = imagesUrl((params.get("q") || "").trim(), addressFilters(params));
  } catch {
    return null; // an address the form will not hold as it is (a date that is no date)
  }
  const sent = sentWithPage(session);
  cookieSession = !!sent;
  if (sent && sent.url === url) return { url, answer: Promise.resolve(sent.page) };
  const answer = api(url);
  answer.catch(() => {}); // whoever takes it sees the error; nobody may
  return { url, answer };
}

let early = askEarly();

/** The first page asked for early, if it is `url` (once): the promise of its answer; else null. */
export function takeEarly(url) {
  const found = early && early.url === url ? early.answer : null;
  early = null;
  return found;
}
