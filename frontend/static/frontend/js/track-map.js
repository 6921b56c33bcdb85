// The track on the polar map (a module of tracks.js): every nadir point as a dot coloured by its label, on one
// canvas of its own redrawn after each move or zoom with only the points inside the view (and at most one dot per
// pixel and label: a zoomed-out pass of 10 000 waveforms draws a few hundred). The points are projected onto the
// grid (metres) once; a redraw only scales and shifts them. The selected range is outlined, the hovered or current
// waveform ringed. Hovering finds the nearest drawn dot (onHover(i)); a click picks it (onPick(i)).
// setColouring("probability", p) colours the dots by the predicted lead probability (p: uint8, × 1/255) in
// PROBABILITY_BINS steps instead of by label; setColouring("label") goes back.

export const LABEL_COLOURS = { 1: "#e4572e", 0: "#2b6cb0", "-1": "#9aa5ad" };
const LABEL_ORDER = [0, -1, 1]; // drawn in this order: leads on top
// Lead probability in 5 steps, not lead (blue) to lead (red), as the labels' colours; the likelier drawn on top.
export const PROBABILITY_COLOURS = ["#2b6cb0", "#7ba3cf", "#d8d0c4", "#ee9a7a", "#e4572e"];
const PROBABILITY_ORDER = [0, 1, 2, 3, 4];
export const probabilityBin = (q) => Math.min(4, Math.floor((q / 256) * 5)); // q: uint8 probability × 255
const NOT_DRAWN = -2;

export const NadirLayer = L.Layer.extend({
  initialize(data, { onHover, onPick } = {}) {
    this.data = data;
    this.onHover = onHover || (() => {});
    this.onPick = onPick || (() => {});
    this.selection = null; // [start, stop)
    this.current = -1;
    this.hovered = -1;
    this.colourBy = "label";
    this.probability = null;
    // What the last redraw drew each waveform as: its label code, or its probability bin (0-4) when coloured by
    // the prediction; NOT_DRAWN off screen.
    this.drawn = new Int8Array(data.header.n).fill(NOT_DRAWN);
    this.drawnIndex = new Int32Array(0);
    this.drawnX = new Float32Array(0);
    this.drawnY = new Float32Array(0);
  },

  onAdd(map) {
    this.map = map;
    const n = this.data.header.n;
    this.mx = new Float64Array(n);
    this.my = new Float64Array(n);
    const projection = map.options.crs.projection;
    for (let i = 0; i < n; i++) {
      const p = projection.project(L.latLng(this.data.lat[i], this.data.lon[i]));
      this.mx[i] = p.x;
      this.my[i] = p.y;
    }
    this.canvas = L.DomUtil.create("canvas", "nadir-canvas leaflet-zoom-hide");
    map.getPane("overlayPane").appendChild(this.canvas);
    this._events = { moveend: this.redraw, zoomend: this.redraw, resize: this.redraw, viewreset: this.redraw };
    map.on(this._events, this);
    this._move = (ev) => this.hover(ev);
    this._click = (ev) => {
      const i = this.nearest(ev.containerPoint);
      if (i >= 0) this.onPick(i);
    };
    map.on("mousemove", this._move);
    map.on("click", this._click);
    this.redraw();
  },

  onRemove(map) {
    map.off(this._events, this);
    map.off("mousemove", this._move);
    map.off("click", this._click);
    this.canvas.remove();
  },

  // Container pixel of waveform i at the current view.
  point(i) {
    const map = this.map;
    const crs = map.options.crs;
    const scale = crs.scale(map.getZoom());
    const p = crs.transformation.transform(L.point(this.mx[i], this.my[i]), scale);
    return map.layerPointToContainerPoint(p.subtract(map.getPixelOrigin()));
  },

  redraw() {
    const map = this.map;
    if (!map) return;
    const size = map.getSize();
    const ratio = window.devicePixelRatio || 1;
    const canvas = this.canvas;
    canvas.width = size.x * ratio;
    canvas.height = size.y * ratio;
    canvas.style.width = `${size.x}px`;
    canvas.style.height = `${size.y}px`;
    L.DomUtil.setPosition(canvas, map.containerPointToLayerPoint([0, 0]));
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, size.x, size.y);
    const crs = map.options.crs;
    const scale = crs.scale(map.getZoom());
    const t = crs.transformation;
    const origin = map.getPixelOrigin();
    const pane = map._getMapPanePos ? map._getMapPanePos() : L.point(0, 0);
    const { n } = this.data.header;
    const label = this.data.label;
    const probability = this.colourBy === "probability" ? this.probability : null;
    const order = probability ? PROBABILITY_ORDER : LABEL_ORDER;
    const colours = probability ? PROBABILITY_COLOURS : LABEL_COLOURS;
    this.drawn.fill(NOT_DRAWN);
    const idx = [];
    const xs = [];
    const ys = [];
    const last = {};
    const paths = {};
    for (const code of order) {
      last[code] = [-9, -9];
      paths[code] = new Path2D();
    }
    const radius = map.getZoom() >= 8 ? 3 : 2;
    for (let i = 0; i < n; i++) {
      const x = t._a * this.mx[i] * scale + t._b * scale - origin.x + pane.x;
      const y = t._c * this.my[i] * scale + t._d * scale - origin.y + pane.y;
      if (x < -4 || y < -4 || x > size.x + 4 || y > size.y + 4) continue; // off screen: not drawn
      const code = probability ? probabilityBin(probability[i]) : label[i];
      const seen = last[code];
      if (Math.abs(x - seen[0]) < 1 && Math.abs(y - seen[1]) < 1) { this.drawn[i] = code; continue; } // same pixel
      seen[0] = x;
      seen[1] = y;
      this.drawn[i] = code;
      idx.push(i);
      xs.push(x);
      ys.push(y);
      paths[code].moveTo(x + radius, y);
      paths[code].arc(x, y, radius, 0, 2 * Math.PI);
    }
    this.drawnIndex = Int32Array.from(idx);
    this.drawnX = Float32Array.from(xs);
    this.drawnY = Float32Array.from(ys);
    if (this.selection) this.outline(ctx, this.selection, scale, t, origin, pane);
    for (const code of order) {
      ctx.fillStyle = colours[code];
      ctx.fill(paths[code]);
    }
    for (const [i, colour] of [[this.current, "#111"], [this.hovered, "#ffd23f"]]) {
      if (i < 0 || i >= n) continue;
      const p = this.point(i);
      ctx.beginPath();
      ctx.arc(p.x, p.y, 7, 0, 2 * Math.PI);
      ctx.lineWidth = 2.5;
      ctx.strokeStyle = colour;
      ctx.stroke();
    }
  },

  outline(ctx, [start, stop], scale, t, origin, pane) {
    ctx.beginPath();
    const step = Math.max(1, Math.floor((stop - start) / 2000));
    for (let i = start; i < stop; i += step) {
      const x = t._a * this.mx[i] * scale + t._b * scale - origin.x + pane.x;
      const y = t._c * this.my[i] * scale + t._d * scale - origin.y + pane.y;
      if (i === start) ctx.moveTo(x, y);
      else ctx.lineTo(x, y);
    }
    ctx.lineWidth = 9;
    ctx.lineCap = "round";
    ctx.strokeStyle = "rgba(255, 210, 63, 0.75)";
    ctx.stroke();
  },

  nearest(containerPoint, within = 8) {
    let best = -1;
    let bestD = within * within;
    for (let k = 0; k < this.drawnIndex.length; k++) {
      const dx = this.drawnX[k] - containerPoint.x;
      const dy = this.drawnY[k] - containerPoint.y;
      const d = dx * dx + dy * dy;
      if (d < bestD) { bestD = d; best = this.drawnIndex[k]; }
    }
    return best;
  },

  hover(ev) {
    const i = this.nearest(ev.containerPoint);
    this.map.getContainer().classList.toggle("over-point", i >= 0);
    if (i >= 0) this.onHover(i);
  },

  setColouring(mode, probability = this.probability) {
    this.probability = probability;
    this.colourBy = mode === "probability" && probability ? "probability" : "label";
    this.redraw();
    return this.colourBy;
  },

  setMarks({ selection, current, hovered }) {
    if (selection !== undefined) this.selection = selection;
    if (current !== undefined) this.current = current;
    if (hovered !== undefined) this.hovered = hovered;
    this.redraw();
  },
});

// Where the map should look to show the whole pass: its points' extent on the grid (lon/lat corners would be wrong
// near a pole), as a centre and a zoom.
export function fitPoints(map, lat, lon, step = 1) {
  const projection = map.options.crs.projection;
  let minx = Infinity;
  let miny = Infinity;
  let maxx = -Infinity;
  let maxy = -Infinity;
  for (let i = 0; i < lat.length; i += step) {
    const p = projection.project(L.latLng(lat[i], lon[i]));
    minx = Math.min(minx, p.x);
    maxx = Math.max(maxx, p.x);
    miny = Math.min(miny, p.y);
    maxy = Math.max(maxy, p.y);
  }
  if (!Number.isFinite(minx)) return;
  const size = map.getSize();
  const perPixel = Math.max((maxx - minx) / Math.max(size.x - 60, 100), (maxy - miny) / Math.max(size.y - 60, 100), 1);
  const zoom = Math.floor(map.options.crs.zoom(1 / perPixel) * 2) / 2;
  const center = map.options.crs.unproject(L.point((minx + maxx) / 2, (miny + maxy) / 2));
  map.setView(center, Math.min(Math.max(zoom, map.getMinZoom()), map.getMaxZoom()));
}
