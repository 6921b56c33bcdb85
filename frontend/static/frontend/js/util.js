// Helpers shared by every page (an ES module). Data from the server goes into a page in one of two ways:
// as text (textContent, setAttribute, the svg() builder), or as markup built with the html`` tag below,
// which escapes every value it interpolates. Nothing else writes innerHTML: setHtml()/appendHtml() accept
// only what html`` made, so a plain string (possibly data) cannot reach the HTML parser unescaped.

const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

export function escapeHtml(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

// Markup that html`` built: its pieces were escaped when it was made. Only html`` creates one.
class SafeHtml {
  constructor(text) {
    this.text = text;
  }

  toString() {
    return this.text;
  }
}

function interpolate(value) {
  if (value instanceof SafeHtml) return value.text;
  if (Array.isArray(value)) return value.map(interpolate).join("");
  if (value === null || value === undefined) return "";
  return escapeHtml(value);
}

// html`<b>${name}</b>`: every ${value} is escaped (text and attribute values alike), except markup that
// html`` itself returned (so templates nest) and arrays of either (joined). null and undefined render nothing;
// true and false render as text (aria-pressed="${on}"), so write `${cond ? html`…` : ""}`, not `${cond && …}`.
export function html(strings, ...values) {
  let out = strings[0];
  values.forEach((value, i) => {
    out += interpolate(value) + strings[i + 1];
  });
  return new SafeHtml(out);
}

function markup(content) {
  // A plain string here is text, never markup: escaped.
  return content instanceof SafeHtml ? content.text : escapeHtml(content);
}

export function setHtml(element, content) {
  element.innerHTML = markup(content);
}

export function appendHtml(element, content) {
  element.insertAdjacentHTML("beforeend", markup(content));
}

// A URL from data for an href or src: relative, or http(s); anything else (javascript:, data:, …) becomes "#".
export function safeUrl(url) {
  const text = String(url ?? "");
  try {
    const parsed = new URL(text, location.href);
    return parsed.protocol === "http:" || parsed.protocol === "https:" ? text : "#";
  } catch (err) {
    return "#";
  }
}

// Text as a DOM node, for APIs that would parse a string as markup (Leaflet's tooltips and popups do).
export function textNode(text) {
  const span = document.createElement("span");
  span.textContent = String(text ?? "");
  return span;
}

// --- the page ----------------------------------------------------------------------------------------
export const $ = (id) => document.getElementById(id);

// The class list the template put in {{ classes|json_script:"classes-data" }}, in class-index order.
export function pageClasses() {
  return JSON.parse($("classes-data").textContent);
}

// Whether a key press went to a field being typed in (the page's own keys leave it alone then). A radio button,
// checkbox, slider or button takes no letters: the page's keys still work after a click on one.
const NOT_TYPED = new Set(["radio", "checkbox", "range", "button", "submit", "reset", "file", "color"]);
export function isTyping(target) {
  if (!(target instanceof HTMLElement)) return false;
  if (target.tagName === "INPUT") return !NOT_TYPED.has(target.type);
  return target.isContentEditable || ["TEXTAREA", "SELECT"].includes(target.tagName);
}

// Whether two Sets hold the same members (false when either is missing).
export function sameSet(a, b) {
  if (!a || !b || a.size !== b.size) return false;
  for (const x of a) if (!b.has(x)) return false;
  return true;
}

// --- classes as chips ------------------------------------------------------------------------------------
// Whether a class colour is light enough to need dark text on it.
export function isLight(hex) {
  const n = parseInt(String(hex).slice(1), 16);
  return (0.299 * ((n >> 16) & 255) + 0.587 * ((n >> 8) & 255) + 0.114 * (n & 255)) / 255 > 0.62;
}

// One class as a coloured chip, with its probability when given.
export function chip(c, probability) {
  const p = probability === undefined || probability === null ? "" : html` <span class="p">${Math.round(probability * 100)}%</span>`;
  return html`<span class="chip${isLight(c.color) ? " light" : ""}" data-slug="${c.slug}" style="--c:${c.color}" title="${c.name}">${c.name}${p}</span>`;
}

// Chips for class slugs (bySlug: slug -> class); "no class" for none; unknown slugs are left out.
export function classChips(slugs, bySlug, probabilities) {
  if (!slugs || !slugs.length) return html`<span class="chip none">no class</span>`;
  return slugs.filter((s) => bySlug.has(s)).map((s) => chip(bySlug.get(s), probabilities ? probabilities[s] : undefined));
}

// --- numbers and dates ---------------------------------------------------------------------------------
export const isNum = (v) => typeof v === "number" && Number.isFinite(v);

export function fmtCount(n) {
  return Number(n || 0).toLocaleString("en");
}

export function fmtLatLon(lat, lon) {
  if (lat == null || lon == null) return "";
  return `${Math.abs(lat).toFixed(2)}°${lat >= 0 ? "N" : "S"} ${Math.abs(lon).toFixed(2)}°${lon >= 0 ? "E" : "W"}`;
}

// "2016-01-31 12:34 UTC"; "" for no or a broken date.
export function fmtUtc(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? "" : d.toISOString().slice(0, 16).replace("T", " ") + " UTC";
}

// The browser's local date and time.
export function fmtWhen(iso) {
  return iso ? new Date(iso).toLocaleString() : "";
}

// A byte count with a decimal unit: "1.2 MB".
export function fmtBytes(n) {
  if (!isNum(n)) return "—";
  const units = ["B", "kB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i += 1; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

// --- inline SVG ------------------------------------------------------------------------------------------
const SVG = "http://www.w3.org/2000/svg";

// svg("rect", {x: 1}, [children]): an SVG node; strings among the children become text nodes.
export function svg(tag, attrs = {}, children = []) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) node.setAttribute(k, String(v));
  for (const child of [].concat(children)) {
    if (child === null || child === undefined) continue;
    node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

export const svgTitle = (text) => svg("title", {}, text);

// A job's state as a badge, with what a succeeded job could not do (an ingest's refused files) beside it:
// "succeeded · 3 refused" shows amber, not green.
export function jobBadge(job) {
  const warnings = job.state === "succeeded" ? job.warnings || 0 : 0;
  const what = job.kind === "ingest" ? "refused" : warnings === 1 ? "warning" : "warnings";
  return html`<span class="badge ${job.state}${warnings ? " warned" : ""}" data-warnings="${warnings}"
    title="${warnings ? `${warnings} ${what}: see the job's log` : job.state}">${job.state}${warnings ? ` · ${warnings} ${what}` : ""}</span>`;
}
