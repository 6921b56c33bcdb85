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
import { api, errorText } from "./api.js";
import { $, chip, fmtCount, fmtLatLon, fmtUtc, html, pageClasses, setHtml } from "./util.js";

const API = "/api/v1/map";
const app = $("map-app");
const classes = pageClasses(); // in class-index order
const canReview = app.dataset.canReview === "1";
const landUrl = $("map-script").dataset.land;
const landCoarseUrl = $("map-script").dataset.landCoarse;
const SOURCE_NAMES = ["curated", "predicted"]; // the API's source codes (source_codes)
const RAMP = ["#2c7bb6", "#00a6ca", "#00ccbc", "#90eb9d", "#ffff8c", "#f9d057", "#f29e2e", "#e76818", "#d7191c"];

// --- state ----------------------------------------------------------------------------------------
const state = {
  view: "points",
  points: null, // {n, ids, lat, lon, cls, mask, conf, src, modelVersion, truncated}
  density: null, // {cell, lat, lon, count, max, total}
  px: new Float32Array(0), // projected positions of the last drawing (NaN: not drawn)
  py: new Float32Array(0),
  drawn: 0,
  loading: null, // AbortController of the request in flight
};

// --- helpers --------------------------------------------------------------------------------------
function maskClasses(mask) {
  return classes.filter((c, i) => (mask >> i) & 1);
}

function className(slug) {
  return (classes.find((c) => c.slug === slug) || { name: slug }).name;
}

function note(text) {
  const el = $("map-note");
  el.textContent = text || "";
  el.hidden = !text;
}

// --- the map --------------------------------------------------------------------------------------
// Plate carrée (EPSG:4326): the whole globe, poles included, as the reference study drew its maps.
const map = L.map("map", {
  crs: L.CRS.EPSG4326, minZoom: 0, maxZoom: 10, zoomSnap: 0.25, zoomDelta: 0.5, wheelPxPerZoomLevel: 90,
  maxBounds: [[-100, -220], [100, 220]], maxBoundsViscosity: 0.7, attributionControl: true,
});
map.attributionControl.setPrefix(false);
map.attributionControl.addAttribution("Land: Natural Earth (world-atlas)");
map.createPane("land").style.zIndex = "250";
map.createPane("frame").style.zIndex = "260";
map.createPane("dots").style.zIndex = "450";
map.getPane("dots").style.pointerEvents = "none";
map.fitBounds([[-78, -180], [86, 180]]);

// The ocean is the world's rectangle (beyond it, the page's grey), the graticule under the land, and a frame
// above it that hides what the land's copies draw past ±180°.
const landRenderer = L.canvas({ pane: "land", padding: 0.3 });
const frameRenderer = L.canvas({ pane: "frame", padding: 0.3 });
const WORLD = [[-90, -180], [90, 180]];
L.rectangle(WORLD, { pane: "land", renderer: landRenderer, stroke: false, fillColor: "#cfe0ea", fillOpacity: 1,
  interactive: false }).addTo(map);
const graticule = [];
for (let lon = -150; lon < 180; lon += 30) graticule.push([[-90, lon], [90, lon]]);
for (let lat = -60; lat <= 60; lat += 30) graticule.push([[lat, -180], [lat, 180]]);
L.polyline(graticule, { pane: "land", renderer: landRenderer, color: "#b3c7d4", weight: 0.6, interactive: false })
  .addTo(map);
for (const outside of [[[-100, -560], [100, -180]], [[-100, 180], [100, 560]]]) {
  L.rectangle(outside, { pane: "frame", renderer: frameRenderer, stroke: false, fillColor: "#eef2f5",
    fillOpacity: 1, interactive: false }).addTo(map);
}
L.rectangle(WORLD, { pane: "frame", renderer: frameRenderer, color: "#8fa3b1", weight: 1, fill: false,
  interactive: false }).addTo(map);

// Natural Earth 1:110m at world scale, 1:50m once zoomed in (fetched then): the world view stays quick to redraw.
const LAND_DETAIL_ZOOM = 3;
const land = { coarse: null, fine: null, shown: null, failed: false };
const landStyle = { color: "#7d8d99", weight: 0.7, fillColor: "#e9e5da", fillOpacity: 1 };

function landLayer(which) {
  if (land[which]) return land[which];
  land[which] = fetch(which === "fine" ? landUrl : landCoarseUrl)
    .then((res) => (res.ok ? res.json() : Promise.reject(new Error(`HTTP ${res.status}`))))
    .then((topo) => {
      if (!window.topojson) throw new Error("topojson-client is missing");
      return L.geoJSON(acrossAntimeridian(window.topojson.feature(topo, topo.objects.land)), {
        pane: "land", renderer: landRenderer, interactive: false, smoothFactor: 1.2, style: landStyle,
      });
    });
  return land[which];
}

// Natural Earth cuts nothing at ±180°: a ring that crosses it (Chukotka, Fiji) jumps across the whole flat
// map. Such rings are unwrapped (longitudes made continuous) and drawn once more shifted by 360°, so each
// half shows on its side. Rings around a pole (Antarctica) already run along the map's edge: kept as they are.
function acrossAntimeridian(geojson) {
  const polygons = [];
  const collect = (geometry) => {
    if (geometry.type === "Polygon") polygons.push(geometry.coordinates);
    else if (geometry.type === "MultiPolygon") polygons.push(...geometry.coordinates);
    else if (geometry.type === "GeometryCollection") geometry.geometries.forEach(collect);
  };
  (geojson.type === "FeatureCollection" ? geojson.features.map((f) => f.geometry) : [geojson.geometry || geojson])
    .filter(Boolean).forEach(collect);
  const out = [];
  for (const polygon of polygons) {
    let crosses = false;
    const rings = polygon.map((ring) => {
      const unwrapped = [ring[0].slice()];
      let shift = 0;
      for (let i = 1; i < ring.length; i++) {
        const step = ring[i][0] - ring[i - 1][0];
        if (step > 180) shift -= 360;
        else if (step < -180) shift += 360;
        unwrapped.push([ring[i][0] + shift, ring[i][1]]);
      }
      if (shift !== 0) return ring; // winds around a pole
      if (unwrapped.some((p) => p[0] > 180 || p[0] < -180)) crosses = true;
      return unwrapped;
    });
    out.push(rings);
    if (crosses) {
      const west = Math.min(...rings[0].map((p) => p[0]));
      const offset = west < -180 ? 360 : -360;
      out.push(rings.map((ring) => ring.map((p) => [p[0] + offset, p[1]])));
    }
  }
  return { type: "Feature", properties: {}, geometry: { type: "MultiPolygon", coordinates: out } };
}

function updateLand() {
  if (land.failed) return;
  const which = map.getZoom() >= LAND_DETAIL_ZOOM ? "fine" : "coarse";
  landLayer(which).then((layer) => {
    const still = (map.getZoom() >= LAND_DETAIL_ZOOM ? "fine" : "coarse") === which;
    if (!still || land.shown === layer) return;
    if (land.shown) map.removeLayer(land.shown);
    layer.addTo(map);
    land.shown = layer;
    app.dataset.land = "ready";
  }).catch(() => {
    land.failed = true;
    app.dataset.land = "missing";
    note("Coastlines are not installed (run `make install`): the points are drawn without them.");
  });
}
map.on("zoomend", updateLand);
updateLand();

// --- the canvas layer: points or density cells -----------------------------------------------------
const DotsLayer = L.Layer.extend({
  onAdd(m) {
    this._canvas = L.DomUtil.create("canvas", "dots-layer leaflet-zoom-animated");
    m.getPane("dots").appendChild(this._canvas);
    m.on("moveend resize", this.redraw, this);
    m.on("zoomanim", this._animateZoom, this);
    this.redraw();
  },
  onRemove(m) {
    L.DomUtil.remove(this._canvas);
    m.off("moveend resize", this.redraw, this);
    m.off("zoomanim", this._animateZoom, this);
  },
  // During the zoom animation the drawing is scaled like the rest of the map; moveend redraws it sharp.
  _animateZoom(e) {
    const scale = map.getZoomScale(e.zoom);
    const offset = map._getCenterOffset(e.center)._multiplyBy(-scale).subtract(map._getMapPanePos());
    L.DomUtil.setTransform(this._canvas, offset, scale);
  },
  redraw() {
    const canvas = this._canvas;
    const size = map.getSize();
    const ratio = window.devicePixelRatio || 1;
    L.DomUtil.setPosition(canvas, map.containerPointToLayerPoint([0, 0]));
    if (canvas.width !== Math.round(size.x * ratio) || canvas.height !== Math.round(size.y * ratio)) {
      canvas.width = Math.round(size.x * ratio);
      canvas.height = Math.round(size.y * ratio);
      canvas.style.width = size.x + "px";
      canvas.style.height = size.y + "px";
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, size.x, size.y);
    if (state.view === "density") drawDensity(ctx, size);
    else drawPoints(ctx, size);
  },
});

// Plate carrée is linear: two projected points give the whole projection.
function projection() {
  const o = map.latLngToContainerPoint([0, 0]);
  const e = map.latLngToContainerPoint([10, 10]);
  return { ox: o.x, oy: o.y, sx: (e.x - o.x) / 10, sy: (e.y - o.y) / 10 };
}

function dotRadius() {
  const z = map.getZoom();
  return z < 1.5 ? 2.2 : z < 3 ? 3 : z < 5 ? 4 : 5;
}

// Points are stamped straight into the canvas's pixels (ImageData): a disc of the class colour with a ring
// that tells curated labels (dark) from predictions (light). Tens of thousands of points cost a few ms, where
// one drawImage or arc per point costs a hundred times more on a browser without GPU canvas.
const stamps = new Map(); // device radius -> [dx, dy, ring]
function stamp(radius) {
  let s = stamps.get(radius);
  if (s) return s;
  s = { dx: [], dy: [], ring: [] };
  const outer = Math.ceil(radius);
  for (let dy = -outer; dy <= outer; dy++) {
    for (let dx = -outer; dx <= outer; dx++) {
      const d = Math.sqrt(dx * dx + dy * dy);
      if (d > radius + 0.35) continue;
      s.dx.push(dx);
      s.dy.push(dy);
      s.ring.push(d > radius - 1.05 ? 1 : 0);
    }
  }
  s.dx = Int16Array.from(s.dx);
  s.dy = Int16Array.from(s.dy);
  s.ring = Uint8Array.from(s.ring);
  stamps.set(radius, s);
  return s;
}

// Colours as the 32-bit words of ImageData (little-endian: ABGR).
function word(hex, alpha = 255) {
  const n = parseInt(hex.slice(1), 16);
  return ((alpha << 24) | ((n & 255) << 16) | (n & 0xff00) | ((n >> 16) & 255)) >>> 0;
}
const FILL = classes.map((c) => word(c.color));
const RING = [word("#17212b"), word("#ffffff")]; // by source code: curated, predicted

let pixels = null; // reused ImageData while the size stays
function drawPoints(ctx, size) {
  const p = state.points;
  state.drawn = 0;
  if (!p) return report();
  if (state.px.length !== p.n) {
    state.px = new Float32Array(p.n);
    state.py = new Float32Array(p.n);
  }
  const ratio = window.devicePixelRatio || 1;
  const W = Math.round(size.x * ratio);
  const H = Math.round(size.y * ratio);
  if (!pixels || pixels.width !== W || pixels.height !== H) pixels = ctx.createImageData(W, H);
  const buf = new Uint32Array(pixels.data.buffer);
  buf.fill(0);
  const { ox, oy, sx, sy } = projection();
  const r = dotRadius();
  const s = stamp(Math.max(1.5, r * ratio));
  const k = s.dx.length;
  const margin = r + 2;
  let drawn = 0;
  for (let i = 0; i < p.n; i++) {
    const x = ox + p.lon[i] * sx;
    const y = oy + p.lat[i] * sy;
    if (x < -margin || y < -margin || x > size.x + margin || y > size.y + margin) {
      state.px[i] = NaN;
      continue;
    }
    state.px[i] = x;
    state.py[i] = y;
    const cx = Math.round(x * ratio);
    const cy = Math.round(y * ratio);
    const fill = FILL[p.cls[i]] || FILL[0];
    const ring = RING[p.src[i]] || RING[0];
    for (let j = 0; j < k; j++) {
      const px = cx + s.dx[j];
      const py = cy + s.dy[j];
      if (px < 0 || py < 0 || px >= W || py >= H) continue;
      buf[py * W + px] = s.ring[j] ? ring : fill;
    }
    drawn += 1;
  }
  ctx.putImageData(pixels, 0, 0);
  state.drawn = drawn;
  report();
}

function rampColor(t) {
  const x = Math.max(0, Math.min(1, t)) * (RAMP.length - 1);
  return RAMP[Math.round(x)];
}

function drawDensity(ctx, size) {
  const d = state.density;
  state.drawn = 0;
  if (!d) return report();
  const { ox, oy, sx, sy } = projection();
  const w = d.cell * sx;
  const h = -d.cell * sy;
  const logMax = Math.log(Math.max(2, d.max));
  ctx.globalAlpha = 0.78;
  let drawn = 0;
  for (let i = 0; i < d.count.length; i++) {
    const x = ox + d.lon[i] * sx;
    const y = oy + (d.lat[i] + d.cell) * sy;
    if (x + w < 0 || y + h < 0 || x > size.x || y > size.y) continue;
    ctx.fillStyle = rampColor(Math.log(d.count[i]) / logMax);
    ctx.fillRect(x, y, Math.max(1, w), Math.max(1, h));
    drawn += 1;
  }
  ctx.globalAlpha = 1;
  state.drawn = drawn;
  report();
}

const layer = new DotsLayer().addTo(map);

// --- filters and loading --------------------------------------------------------------------------
const classBoxes = Array.from(document.querySelectorAll(".class-filter"));
const confidence = $("confidence-filter");
const month = $("month-filter");

function source() {
  return document.querySelector("input[name=source]:checked").value;
}

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

async function getJson(url, signal) {
  const res = await api(url, { signal });
  if (!res.ok) throw new Error(errorText(res.data, res.status));
  return res.data;
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

// --- what the panel says ------------------------------------------------------------------------------
function report() {
  const p = state.points;
  const d = state.density;
  app.dataset.view = state.view;
  app.dataset.drawn = String(state.drawn);
  app.dataset.points = String(state.view === "density" ? (d ? d.total : 0) : p ? p.n : 0);
  const perClass = new Array(classes.length).fill(0);
  if (state.view === "points" && p) for (let i = 0; i < p.n; i++) perClass[p.cls[i]] += 1;
  document.querySelectorAll(".legend .count").forEach((el, i) => {
    el.textContent = state.view === "points" && p ? fmtCount(perClass[i]) : "";
  });
  const legend = $("density-legend");
  legend.hidden = state.view !== "density";
  if (state.view === "density" && d) {
    $("density-max").textContent = fmtCount(d.max);
    $("density-cell").textContent = `${d.cell}° cells · ${fmtCount(d.count.length)} cells`;
  }
  if (app.dataset.state === "error") return;
  let text;
  if (state.view === "density") {
    text = d ? `${fmtCount(d.total)} imagettes in ${fmtCount(d.count.length)} cells` : "No imagettes";
  } else if (p) {
    text = `${fmtCount(p.n)} imagettes${p.truncated ? " (the first ones: use the density view)" : ""}`;
    if (p.n && state.drawn < p.n) text += ` · ${fmtCount(state.drawn)} in view`;
  } else {
    text = "";
  }
  const version = state.view === "density" ? d && d.model_version : p && p.modelVersion;
  if (source() !== "curated") text += version ? ` · predictions of classifier v${version}` : " · no active classifier: no predictions";
  $("map-summary").textContent = text;
}

// --- clicking: the nearest point opens its imagette ------------------------------------------------
function nearest(containerPoint, within) {
  const p = state.points;
  if (!p || state.view !== "points") return -1;
  let best = -1;
  let bestD = within * within;
  for (let i = 0; i < p.n; i++) {
    const dx = state.px[i] - containerPoint.x;
    const dy = state.py[i] - containerPoint.y;
    const d2 = dx * dx + dy * dy;
    if (d2 <= bestD) { // later points are drawn on top: they win ties
      bestD = d2;
      best = i;
    }
  }
  return best;
}

// The popup's content is a node of ours, not an HTML string: Leaflet's popup.update() (after the image loaded)
// re-inserts the same node, so the details written into it later stay (a string would be parsed again, empty).
function popupContent(i) {
  const p = state.points;
  const id = p.ids[i];
  const predicted = p.src[i] === 1;
  let shown = maskClasses(p.mask[i]);
  if (!shown.length) shown = [classes[p.cls[i]]];
  const conf = p.conf[i];
  const how = predicted
    ? html`Predicted by classifier v${p.modelVersion}${Number.isNaN(conf) ? "" : html` · confidence <strong>${Math.round(conf * 100)}%</strong>`}${p.mask[i] ? "" : " (most probable class; none above its threshold)"}`
    : html`Curated label${Number.isNaN(conf) ? "" : ` · crowd agreement ${conf.toFixed(2)}`}`;
  const preview = `/api/v1/imagettes/${id}/preview/`;
  const box = document.createElement("div");
  box.className = "map-popup";
  box.dataset.imagetteId = id;
  box.dataset.source = SOURCE_NAMES[p.src[i]];
  setHtml(box, html`
    <a href="${preview}" target="_blank" rel="noopener" class="pop-image"><img src="${preview}" alt="Imagette #${id}" width="150" height="150"></a>
    <div class="pop-body">
      <div class="pop-title"><strong>Imagette #${id}</strong> <span class="muted">${fmtLatLon(p.lat[i], p.lon[i])}</span></div>
      <div class="chips">${shown.map((c) => chip(c))}</div>
      <div class="pop-how">${how}</div>
      <div class="pop-extra muted"></div>
      <a class="pop-link" href="${preview}" target="_blank" rel="noopener">Open the full image ↗</a>
    </div>`);
  return box;
}

async function addDetails(popup, box, id) {
  // Experts and admins may read the whole imagette: when it was taken, both its label and the prediction.
  if (!canReview) return;
  let item;
  try {
    item = await getJson(`/api/v1/imagettes/${id}/`);
  } catch (err) {
    box.dataset.details = "failed";
    return;
  }
  const lines = [];
  if (item.acquisition_time) lines.push(fmtUtc(item.acquisition_time));
  if (item.swath) lines.push(item.swath);
  if (item.label_source) lines.push(`label (${item.label_source}): ${item.labels.map(className).join(", ")}`);
  if (item.prediction) {
    const predicted = item.prediction.classes.map(className).join(", ") || "—";
    lines.push(`model v${item.prediction.model_version}: ${predicted} (${Math.round(item.prediction.confidence * 100)}%)`);
  }
  setHtml(box.querySelector(".pop-extra"), html`${lines.map((line, n) => html`${n > 0 ? html`<br>` : ""}${line}`)}`);
  box.dataset.details = "ready";
  if (popup.isOpen()) popup.update();
}

function openPoint(i) {
  const p = state.points;
  const box = popupContent(i);
  const popup = L.popup({ minWidth: 320, maxWidth: 380, className: "imagette-popup" })
    .setLatLng([p.lat[i], p.lon[i]])
    .setContent(box)
    .openOn(map);
  const img = box.querySelector("img");
  img.addEventListener("load", () => { if (popup.isOpen()) popup.update(); }, { once: true });
  addDetails(popup, box, p.ids[i]);
  return popup;
}

map.on("click", (ev) => {
  if (state.view === "density") {
    openCell(ev.latlng);
    return;
  }
  const i = nearest(ev.containerPoint, dotRadius() + 4);
  if (i >= 0) openPoint(i);
});

function cellAt(latlng) {
  const d = state.density;
  if (!d) return -1;
  const latCell = Math.floor(latlng.lat / d.cell) * d.cell;
  const lonCell = Math.floor(latlng.lng / d.cell) * d.cell;
  const eps = d.cell / 1000;
  return d.lat.findIndex((lat, i) => Math.abs(lat - latCell) < eps && Math.abs(d.lon[i] - lonCell) < eps);
}

function openCell(latlng) {
  const d = state.density;
  const at = cellAt(latlng);
  if (at < 0) return;
  const latCell = d.lat[at];
  const lonCell = d.lon[at];
  const content = document.createElement("div");
  content.className = "cell-popup";
  setHtml(content, html`<strong>${fmtCount(d.count[at])}</strong> imagette${d.count[at] === 1 ? "" : "s"} in
    ${fmtLatLon(latCell, lonCell)} – ${fmtLatLon(latCell + d.cell, lonCell + d.cell)}<br>
    <button type="button" class="link">Show them as points</button>`);
  content.querySelector("button").addEventListener("click", () => {
    map.closePopup();
    setView("points");
    map.fitBounds([[latCell, lonCell], [latCell + d.cell, lonCell + d.cell]], { maxZoom: 8 });
  });
  L.popup().setLatLng(latlng).setContent(content).openOn(map);
}

let hoverFrame = 0;
map.on("mousemove", (ev) => {
  if (hoverFrame) return;
  hoverFrame = requestAnimationFrame(() => {
    hoverFrame = 0;
    const hit = state.view === "density" ? cellAt(ev.latlng) >= 0 : nearest(ev.containerPoint, dotRadius() + 4) >= 0;
    map.getContainer().classList.toggle("over-point", hit);
  });
});

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
