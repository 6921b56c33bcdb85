// What the map draws over the land (a module of map.js): one canvas layer with every point, or the density cells,
// and the panel's summary of what is drawn. Built for tens of thousands of points: no DOM element or Leaflet object
// per point.
import { map } from "./map-base.js";
import { app, classes, source, state } from "./map-state.js";
import { $, fmtCount } from "./util.js";

const RAMP = ["#2c7bb6", "#00a6ca", "#00ccbc", "#90eb9d", "#ffff8c", "#f9d057", "#f29e2e", "#e76818", "#d7191c"];

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

export function dotRadius() {
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

// The layer on the map: it redraws itself when the map moves; map.js redraws it once new data came.
export const layer = new DotsLayer().addTo(map);
