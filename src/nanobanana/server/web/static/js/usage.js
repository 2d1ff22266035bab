// Usage: what was spent and made over a range of UTC days (GET /api/usage; an administrator's
// GET /api/admin/usage, everyone's or one account's): a chart per day, tables by model,
// provider and account, and the same lines as a CSV download.  The range and the account are
// in the address, so a view can be bookmarked or shared.

import { api, requireSession, saveResponse } from "./api.js";
import { $, clearError, el, initHeader, providerName, say, showError, usd } from "./ui.js";

const errorBox = $("#usage-error");
const form = $("#usage-form");
const message = $("#usage-message");
const SVG = "http://www.w3.org/2000/svg";
const DAY_MS = 86_400_000;

let me = null;
let shown = null;

/** A UTC day as `YYYY-MM-DD`, `back` days before today. */
function utcDay(back = 0) {
  return new Date(Date.now() - back * DAY_MS).toISOString().slice(0, 10);
}

function plural(n, word) {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

/** The range and account asked for: the address's, else the last 30 days and everyone. */
function wanted() {
  const params = new URLSearchParams(window.location.search);
  const valid = (v) => (v && /^\d{4}-\d{2}-\d{2}$/.test(v) ? v : null);
  return {
    from: valid(params.get("from")) || utcDay(29),
    to: valid(params.get("to")) || utcDay(0),
    user: (params.get("user") || "").slice(0, 64),
  };
}

/** The API address of a view (`format`: json or csv). */
function address(view, format = "json") {
  const params = new URLSearchParams({ from: view.from, to: view.to });
  if (format === "csv") params.set("format", "csv");
  if (!me.is_admin) return `/api/usage?${params}`;
  if (view.user) params.set("user_id", view.user);
  return `/api/admin/usage?${params}`;
}

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

function metric() {
  return document.querySelector('input[name="metric"]:checked').value;
}

function amount(value, which) {
  return which === "images" ? plural(value, "image") : usd(value);
}

/** Bars per day of the chosen metric, each with its day's figures as its title.  The bars
 * stretch to the chart's width; its labels are text beside it, so they never stretch. */
function drawChart(report) {
  const which = metric();
  const days = report.days;
  const top = Math.max(0, ...days.map((d) => d[which]));
  const width = Math.max(days.length, 1) * 10;
  const height = 100;
  const chart = svg("svg", {
    viewBox: `0 0 ${width} ${height}`,
    preserveAspectRatio: "none",
    class: "usage-svg",
    role: "img",
    "aria-labelledby": "usage-chart-caption",
  });
  days.forEach((d, i) => {
    const h = top > 0 ? Math.max(d[which] > 0 ? 1.5 : 0, (d[which] / top) * height) : 0;
    const title = `${d.date}: ${usd(d.cost_usd)}, ${plural(d.images, "image")}, ${plural(d.generations, "generation")}`;
    chart.append(
      svg("rect", { x: i * 10 + 1.5, y: height - h, width: 7, height: h, class: "usage-bar", "data-date": d.date }, svg("title", {}, title)),
    );
  });
  $("#usage-chart").replaceChildren(
    el("p", { class: "usage-label", "aria-hidden": "true" }, top > 0 ? `max ${amount(top, which)}` : "\u00a0"),
    chart,
    el(
      "p",
      { class: "usage-label usage-ends", "aria-hidden": "true" },
      el("span", {}, days.length ? days[0].date : ""),
      el("span", {}, days.length ? days.at(-1).date : ""),
    ),
  );
  const peak = days.reduce((best, d) => (d[which] > (best ? best[which] : 0) ? d : best), null);
  const label = which === "images" ? "Images" : "Spend";
  $("#usage-chart-caption").textContent = peak
    ? `${label} per day from ${report.from} to ${report.to}; the most, ${amount(peak[which], which)}, on ${peak.date}.`
    : `${label} per day from ${report.from} to ${report.to}: nothing in this range.`;
}

function figures(t) {
  return [el("td", {}, String(t.generations)), el("td", {}, String(t.images)), el("td", {}, usd(t.cost_usd))];
}

function fillTable(id, lines, name, columns = 4) {
  const body = $(`${id} tbody`);
  if (!lines.length) {
    body.replaceChildren(el("tr", {}, el("td", { colspan: columns, class: "hint" }, "Nothing in this range.")));
    return;
  }
  body.replaceChildren(...lines.map((line) => el("tr", {}, el("th", { scope: "row" }, name(line)), ...figures(line))));
}

function render(report) {
  shown = report;
  const t = report.total;
  const held = t.held_usd > 0 ? ` ${usd(t.held_usd)} more is held for generations still running or that may have been billed.` : "";
  $("#usage-total").textContent =
    `${usd(t.cost_usd)} spent on ${plural(t.images, "image")} in ${plural(t.generations, "generation")}, ` +
    `${report.from} to ${report.to} (UTC).${held}`;
  drawChart(report);
  const days = [...report.days].reverse().filter((d) => d.generations > 0);
  const dayRows = days.map((d) =>
    el("tr", {}, el("th", { scope: "row" }, d.date), ...figures(d), el("td", {}, usd(d.held_usd))),
  );
  $("#usage-days tbody").replaceChildren(
    ...(dayRows.length ? dayRows : [el("tr", {}, el("td", { colspan: 5, class: "hint" }, "Nothing in this range."))]),
  );
  fillTable("#usage-models", report.models, (m) => m.model || "unknown");
  fillTable("#usage-providers", report.providers, (p) => providerName(p.provider) || "unknown");
  $("#usage-users-section").hidden = report.users === null;
  if (report.users) fillTable("#usage-users", report.users, (u) => u.username);
}

function readForm() {
  return { from: form.elements.from.value, to: form.elements.to.value, user: me.is_admin ? form.elements.user.value : "" };
}

/** Refused on the page when a date is missing or the range is backwards: says what to fix. */
function checkRange(view) {
  for (const name of ["from", "to"]) {
    if (!view[name]) {
      say(message, `Enter the ${name === "from" ? "first" : "last"} day of the range.`, "error");
      form.elements[name].focus();
      return false;
    }
  }
  if (view.to < view.from) {
    say(message, `The range ends (${view.to}) before it starts (${view.from}): pick a later "To" day.`, "error");
    form.elements.to.focus();
    return false;
  }
  return true;
}

async function show(view) {
  clearError(errorBox);
  say(message, "");
  document.body.dataset.loading = "true";
  try {
    render(await api(address(view)));
  } catch (err) {
    showError(errorBox, err);
  } finally {
    delete document.body.dataset.loading;
  }
}

async function downloadCsv() {
  const view = readForm();
  if (!checkRange(view)) return;
  clearError(errorBox);
  try {
    const res = await api(address(view, "csv"), { raw: true, headers: { Accept: "text/csv" } });
    await saveResponse(res, "nanobanana-usage.csv");
    say(message, "Downloaded the CSV.", "ok");
  } catch (err) {
    showError(errorBox, err);
  }
}

async function main() {
  if (!requireSession()) return;
  initHeader();
  try {
    me = await api("/api/auth/me");
    const view = wanted();
    form.elements.from.value = view.from;
    form.elements.to.value = view.to;
    if (me.is_admin) {
      const { users } = await api("/api/admin/users");
      form.elements.user.append(...users.map((u) => el("option", { value: u.id }, u.username)));
      form.elements.user.value = users.some((u) => u.id === view.user) ? view.user : "";
      $("#usage-who-field").hidden = false;
    }
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const next = readForm();
      if (!checkRange(next)) return;
      const params = new URLSearchParams({ from: next.from, to: next.to });
      if (next.user) params.set("user", next.user);
      history.replaceState(null, "", `?${params}`);
      show(next);
    });
    $("#usage-csv").addEventListener("click", downloadCsv);
    document.querySelectorAll('input[name="metric"]').forEach((input) =>
      input.addEventListener("change", () => shown && drawChart(shown)),
    );
    await show(readForm());
  } catch (err) {
    showError(errorBox, err, { focus: false });
  }
  document.body.dataset.ready = "true";
}

main();
