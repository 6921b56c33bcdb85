// The map of detections: every imagette as a point at its centre, coloured by predicted or curated class.
//
// Built for tens of thousands of points: the API sends parallel arrays, kept here in typed arrays, and one
// canvas layer draws them (a pre-rendered sprite per class, no DOM element or Leaflet object per point). A click
// finds the nearest drawn point by a scan of the projected positions. The density view draws the server's
// binned counts, the cell size following the zoom. Land and coastlines come from the bundled Natural Earth
// vector (world-atlas, see scripts/vendor.sh): no tile server, nothing from the internet.
//
// Filters live in the URL (?source=&classes=&month=&min_confidence=&view=), so a view such as "sea ice in
// January 2016" can be shared as a link.
//
// This module holds the filters, the loading and the page's controls; beside it: map-state.js (what was loaded
// and drawn), map-base.js (the Leaflet map and the land), map-layers.js (the canvas of points or density cells
// and the panel's summary), map-popups.js (what a click opens).
import { map } from "./map-base.js";
import { layer } from "./map-layers.js";
import { listenToClicks } from "./map-popups.js";
import { API, app, classes, getJson, source, state } from "./map-state.js";
import { $ } from "./util.js";

// --- filters and loading --------------------------------------------------------------------------
const classBoxes = Array.from(document.querySelectorAll(".class-filter"));
const confidence = $("confidence-filter");
const month = $("month-filter");

function chosenClasses() {
  return classBoxes.filter((b) => b.checked).map((b) => b.value);
}

function query() {
  const q = new URLSearchParams();
  q.set("source", source());
  const chosen = chosenClasses();
  if (chosen.length < classes.length) q.set("classes", chosen.join(","));
  if (month.value) q.set("month", month.value);
  if (Number(confidence.value) > 0 && source() !== "curated") q.set("min_confidence", confidence.value);
  return q;
}

function densityCell() {
  const cell = 8 / Math.pow(2, Math.round(map.getZoom()));
  return Math.min(8, Math.max(0.25, cell));
}

function saveUrl() {
  const q = query();
  if (q.get("source") === "any") q.delete("source");
  if (state.view === "density") q.set("view", "density");
  const text = q.toString();
  history.replaceState(null, "", location.pathname + (text ? "?" + text : ""));
}

function restoreFromUrl() {
  const q = new URLSearchParams(location.search);
  const src = q.get("source");
  const radio = src && document.querySelector(`input[name=source][value="${CSS.escape(src)}"]`);
  if (radio) radio.checked = true;
  if (q.has("classes")) {
    const wanted = new Set(q.get("classes").split(","));
    classBoxes.forEach((b) => { b.checked = wanted.has(b.value); });
  }
  if (q.get("min_confidence")) confidence.value = q.get("min_confidence");
  if (q.get("month")) {
    month.dataset.wanted = q.get("month");
    ensureMonthOption(q.get("month"));
    month.value = q.get("month");
  }
  if (q.get("view") === "density") state.view = "density";
}

function ensureMonthOption(value) {
  if (Array.from(month.options).some((o) => o.value === value)) return;
  const option = document.createElement("option");
  option.value = value;
  option.textContent = monthName(value);
  month.append(option);
}

function monthName(value) {
  const [y, m] = value.split("-").map(Number);
  return new Date(Date.UTC(y, m - 1, 1)).toLocaleDateString("en", { month: "long", year: "numeric", timeZone: "UTC" });
}

let debounce = null;
function reload({ soon = false } = {}) {
  clearTimeout(debounce);
  if (soon) {
    debounce = setTimeout(() => reload(), 200);
    return;
  }
  saveUrl();
  load();
}

async function load() {
  if (state.loading) state.loading.abort();
  const controller = new AbortController();
  state.loading = controller;
  app.dataset.state = "loading";
  $("map-summary").textContent = "Loading…";
  const q = query();
  try {
    if (!chosenClasses().length) {
      state.points = emptyPoints();
      state.density = null;
    } else if (state.view === "density") {
      q.set("cell", String(densityCell()));
      const d = await getJson(`${API}/density/?${q}`, controller.signal);
      state.density = d;
    } else {
      const data = await getJson(`${API}/points/?${q}`, controller.signal);
      state.points = toTyped(data);
    }
  } catch (err) {
    if (err.name === "AbortError") return;
    state.loading = null;
    app.dataset.state = "error";
    $("map-summary").textContent = `Could not load the map: ${err.message}`;
    return;
  }
  if (state.loading !== controller) return;
  state.loading = null;
  layer.redraw();
  app.dataset.state = "ready";
}

function emptyPoints() {
  return { n: 0, ids: new Int32Array(0), lat: new Float32Array(0), lon: new Float32Array(0), cls: new Uint8Array(0),
    mask: new Uint16Array(0), conf: new Float32Array(0), src: new Uint8Array(0), modelVersion: null, truncated: false };
}

function toTyped(data) {
  const n = data.ids.length;
  const p = { n, ids: Int32Array.from(data.ids), lat: Float32Array.from(data.lat), lon: Float32Array.from(data.lon),
    cls: Uint8Array.from(data.class_index), mask: Uint16Array.from(data.mask), conf: new Float32Array(n),
    src: Uint8Array.from(data.source), modelVersion: data.model_version, truncated: data.truncated };
  for (let i = 0; i < n; i++) p.conf[i] = data.confidence[i] == null ? NaN : data.confidence[i];
  return p;
}

// --- controls -------------------------------------------------------------------------------------
function setView(view) {
  state.view = view;
  $("view-points").setAttribute("aria-pressed", String(view === "points"));
  $("view-density").setAttribute("aria-pressed", String(view === "density"));
  map.closePopup();
  reload();
}

function syncControls() {
  const curatedOnly = source() === "curated";
  confidence.disabled = curatedOnly;
  $("confidence-value").textContent = `${Math.round(Number(confidence.value) * 100)}%`;
}

document.querySelectorAll("input[name=source]").forEach((r) => r.addEventListener("change", () => {
  syncControls();
  reload();
}));
classBoxes.forEach((b) => b.addEventListener("change", () => reload({ soon: true })));
$("classes-all").addEventListener("click", () => { classBoxes.forEach((b) => { b.checked = true; }); reload(); });
$("classes-none").addEventListener("click", () => { classBoxes.forEach((b) => { b.checked = false; }); reload(); });
month.addEventListener("change", () => reload());
confidence.addEventListener("input", () => { syncControls(); reload({ soon: true }); });
$("view-points").addEventListener("click", () => setView("points"));
$("view-density").addEventListener("click", () => setView("density"));

listenToClicks(() => setView("points"));

let lastCell = null;
map.on("zoomend", () => {
  if (state.view !== "density") return;
  const cell = densityCell();
  if (cell !== lastCell) {
    lastCell = cell;
    load();
  }
});

async function loadMonths() {
  try {
    const data = await getJson(`${API}/months/`);
    data.months.forEach(ensureMonthOption);
    const options = Array.from(month.options).slice(1).sort((a, b) => a.value.localeCompare(b.value));
    options.forEach((o) => month.append(o));
    if (month.dataset.wanted) month.value = month.dataset.wanted;
  } catch (err) {
    // The month list is a convenience: the map works without it.
  }
}

// A small hook for the browser tests (and for the curious): what is drawn, and where.
window.cryolabelMap = {
  map,
  pointCount: () => (state.points ? state.points.n : 0),
  drawnCount: () => state.drawn,
  ids: () => (state.points ? Array.from(state.points.ids) : []),
  redraw: () => layer.redraw(),
  containerPointOf(id) {
    const p = state.points;
    const i = p ? p.ids.indexOf(id) : -1;
    if (i < 0 || Number.isNaN(state.px[i])) return null;
    return { x: state.px[i], y: state.py[i] };
  },
};

restoreFromUrl();
setView(state.view);
syncControls();
lastCell = densityCell();
loadMonths();
