// The waveform viewer (a module of tracks.js): an along-track image of every waveform (waveforms left to right,
// range gates top to bottom, echo power in dB through a colour ramp; a strip below in the labels' colours), the
// pulse peakiness along the track (uPlot) and the echo power of the current waveform (uPlot).
//
// With the `leads` network's prediction (prediction: {probability, uncertainty} as Float32Array 0-1), the peakiness
// chart also draws the lead probability as a curve and the uncertainty as a shaded area, on a 0-1 axis at its right.
//
// Only what is on screen is drawn: the image is built for the visible range of waveforms at one column per pixel
// (the brightest echo of the waveforms a column holds, so a lead never falls between pixels) and the peakiness
// chart's x scale is the same range. Wheel: zoom around the mouse; drag: pan; shift-drag: select a range; click:
// the current waveform. Keys (the page passes them): arrows move, shift+arrows extend, Home/End.
//
// The selection is [start, stop) between the anchor and the current waveform (one waveform when they meet).

import { LABEL_COLOURS } from "./track-map.js";

const MIN_SPAN = 20;
const STRIP = 10; // px: the label strip under the image

// A perceptual dark-to-bright ramp (viridis-like, 5 stops interpolated) as 256 RGBA words.
function ramp() {
  const stops = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
  const lut = new Uint32Array(256);
  for (let v = 0; v < 256; v++) {
    const t = (v / 255) * (stops.length - 1);
    const k = Math.min(stops.length - 2, Math.floor(t));
    const f = t - k;
    const [r, g, b] = stops[k].map((c, j) => Math.round(c + (stops[k + 1][j] - c) * f));
    lut[v] = (255 << 24) | (b << 16) | (g << 8) | r; // little-endian ImageData words
  }
  return lut;
}
const LUT = ramp();

export class WaveformViewer {
  constructor(data, { onHover, onChange, prediction = null }) {
    this.data = data;
    this.prediction = prediction;
    this.n = data.header.n;
    this.gates = data.header.gates;
    this.onHover = onHover || (() => {});
    this.onChange = onChange || (() => {});
    this.v0 = 0;
    this.v1 = Math.min(this.n, Math.max(MIN_SPAN, this.n));
    this.cursor = 0;
    this.anchor = 0;
    this.hovered = -1;
    this.canvas = document.getElementById("wf-image");
    this.offscreen = document.createElement("canvas");
    this.dbStep = (data.header.db_max - data.header.db_min) / 255;
    this.peak = this.peakChart();
    this.echo = this.echoChart();
    this.bindPointer(this.canvas, (x) => this.indexAtImage(x), () => this.canvas.getBoundingClientRect());
    this.bindPointer(this.peak.over, (x) => this.peak.posToVal(x, "x"), () => this.peak.over.getBoundingClientRect());
    new ResizeObserver(() => this.resize()).observe(this.canvas.parentElement);
    this.resize();
  }

  // --- the selection ---------------------------------------------------------------------------------------------
  selection() {
    return [Math.min(this.anchor, this.cursor), Math.max(this.anchor, this.cursor) + 1];
  }

  setCursor(i, { extend = false, reveal = true } = {}) {
    this.cursor = Math.max(0, Math.min(this.n - 1, Math.round(i)));
    if (!extend) this.anchor = this.cursor;
    if (reveal) this.reveal(this.cursor);
    this.changed();
  }

  select(start, stop) {
    this.anchor = Math.max(0, Math.min(this.n - 1, start));
    this.cursor = Math.max(0, Math.min(this.n - 1, stop - 1));
    this.changed();
  }

  clearSelection() {
    this.anchor = this.cursor;
    this.changed();
  }

  hover(i) {
    if (i === this.hovered) return;
    this.hovered = i;
    this.drawImage();
    this.updateEcho();
  }

  changed() {
    this.draw();
    this.onChange({ selection: this.selection(), cursor: this.cursor });
  }

  // --- the view ----------------------------------------------------------------------------------------------------
  setView(v0, span) {
    span = Math.max(Math.min(span, this.n), Math.min(MIN_SPAN, this.n));
    this.v0 = Math.max(0, Math.min(this.n - span, v0));
    this.v1 = this.v0 + span;
    this.draw();
  }

  reveal(i) {
    const span = this.v1 - this.v0;
    if (i < this.v0) this.setView(i - span * 0.1, span);
    else if (i >= this.v1) this.setView(i - span * 0.9, span);
  }

  zoomAround(i, factor) {
    const span = this.v1 - this.v0;
    const next = Math.max(Math.min(span * factor, this.n), Math.min(MIN_SPAN, this.n));
    const f = (i - this.v0) / span;
    this.setView(i - f * next, next);
  }

  indexAtImage(clientX) {
    const box = this.canvas.getBoundingClientRect();
    return this.v0 + ((clientX - box.left) / box.width) * (this.v1 - this.v0);
  }

  bindPointer(element, indexAt, box) {
    element.addEventListener("wheel", (ev) => {
      ev.preventDefault();
      const local = element === this.canvas ? ev.clientX : ev.clientX - box().left;
      this.zoomAround(indexAt(local), Math.exp(ev.deltaY * 0.0015));
    }, { passive: false });
    element.addEventListener("mousedown", (ev) => {
      if (ev.button !== 0) return;
      ev.preventDefault();
      const local = (e) => (element === this.canvas ? e.clientX : e.clientX - box().left);
      const startX = ev.clientX;
      const startV0 = this.v0;
      const perPixel = (this.v1 - this.v0) / box().width;
      const startIndex = Math.floor(indexAt(local(ev)));
      let moved = false;
      if (ev.shiftKey) {
        this.anchor = Math.max(0, Math.min(this.n - 1, startIndex));
        this.setCursor(startIndex, { extend: true, reveal: false });
      }
      const move = (e) => {
        if (Math.abs(e.clientX - startX) > 2) moved = true;
        if (!moved) return;
        if (ev.shiftKey) this.setCursor(Math.floor(indexAt(local(e))), { extend: true, reveal: false });
        else this.setView(startV0 - (e.clientX - startX) * perPixel, this.v1 - this.v0);
      };
      const up = () => {
        window.removeEventListener("mousemove", move);
        window.removeEventListener("mouseup", up);
        if (!moved && !ev.shiftKey) this.setCursor(startIndex, { reveal: false });
      };
      window.addEventListener("mousemove", move);
      window.addEventListener("mouseup", up);
    });
    element.addEventListener("mousemove", (ev) => {
      const i = Math.floor(indexAt(element === this.canvas ? ev.clientX : ev.clientX - box().left));
      if (i >= 0 && i < this.n) this.onHover(i);
    });
  }

  // The image lines up with the peakiness chart's plotting area (its y axis takes the left of the row): waveform i
  // sits at the same x in both.
  resize() {
    const width = Math.max(200, this.canvas.parentElement.clientWidth);
    this.peak.setSize({ width, height: 150 });
    const ratio = window.devicePixelRatio || 1;
    const left = Math.round(this.peak.bbox.left / ratio);
    const plot = Math.max(100, Math.round(this.peak.bbox.width / ratio));
    this.canvas.style.marginLeft = `${left}px`;
    this.canvas.style.width = `${plot}px`;
    this.canvas.width = plot;
    this.canvas.height = this.canvas.clientHeight || 260;
    this.echo.setSize({ width: Math.max(200, document.getElementById("echo-chart").clientWidth), height: 190 });
    this.draw();
  }

  draw() {
    this.drawImage();
    this.peak.setScale("x", { min: this.v0, max: this.v1 });
    this.updateEcho();
  }

  x(i) {
    return ((i - this.v0) / (this.v1 - this.v0)) * this.canvas.width;
  }

  // The visible range at one column per pixel: the brightest of the waveforms a column holds (at most 16 looked
  // at per column), as an image one row per gate, scaled onto the canvas.
  drawImage() {
    const { width, height } = this.canvas;
    if (!width) return;
    const G = this.gates;
    const { image, label } = this.data;
    const off = this.offscreen;
    if (off.width !== width || off.height !== G) {
      off.width = width;
      off.height = G;
      this.pixels = off.getContext("2d").createImageData(width, G);
      this.words = new Uint32Array(this.pixels.data.buffer);
    }
    const words = this.words;
    const per = (this.v1 - this.v0) / width;
    const column = new Uint8Array(G);
    const strip = new Int8Array(width);
    for (let x = 0; x < width; x++) {
      const i0 = Math.min(this.n - 1, Math.floor(this.v0 + x * per));
      const i1 = Math.min(this.n, Math.max(i0 + 1, Math.floor(this.v0 + (x + 1) * per)));
      const step = Math.max(1, Math.ceil((i1 - i0) / 16));
      column.fill(0);
      let lab = -1;
      for (let i = i0; i < i1; i += step) {
        const row = i * G;
        for (let g = 0; g < G; g++) if (image[row + g] > column[g]) column[g] = image[row + g];
        if (label[i] > lab) lab = label[i];
      }
      if (step > 1) for (let i = i0; i < i1; i++) if (label[i] > lab) lab = label[i]; // a lead in a column shows
      strip[x] = lab;
      for (let g = 0; g < G; g++) words[g * width + x] = LUT[column[g]];
    }
    off.getContext("2d").putImageData(this.pixels, 0, 0);
    const ctx = this.canvas.getContext("2d");
    ctx.imageSmoothingEnabled = false;
    ctx.clearRect(0, 0, width, height);
    ctx.drawImage(off, 0, 0, width, G, 0, 0, width, height - STRIP);
    for (let x = 0; x < width; x++) {
      if (x === 0 || strip[x] !== strip[x - 1]) ctx.fillStyle = LABEL_COLOURS[strip[x]];
      ctx.fillRect(x, height - STRIP, 1, STRIP);
    }
    const [start, stop] = this.selection();
    const x0 = this.x(start);
    const x1 = Math.max(this.x(stop), x0 + 1);
    ctx.fillStyle = "rgba(255, 210, 63, 0.28)";
    ctx.fillRect(x0, 0, x1 - x0, height);
    ctx.strokeStyle = "#ffd23f";
    ctx.lineWidth = 1;
    ctx.strokeRect(x0 + 0.5, 0.5, x1 - x0 - 1, height - 1);
    if (this.hovered >= 0) {
      ctx.fillStyle = "rgba(255, 255, 255, 0.7)";
      ctx.fillRect(Math.floor(this.x(this.hovered + 0.5)), 0, 1, height);
    }
  }

  // --- the charts --------------------------------------------------------------------------------------------------
  peakChart() {
    const xs = Float64Array.from({ length: this.n }, (_, i) => i);
    const viewer = this;
    const scales = { x: { time: false, auto: false, min: 0, max: this.n } };
    const axes = [{ size: 28, font: "11px sans-serif" }, { size: 44, font: "11px sans-serif", label: "peakiness", labelSize: 14 }];
    const series = [{}, { label: "peakiness", stroke: "#0b6ea4", width: 1 }];
    const data = [xs, this.data.peakiness];
    if (this.prediction) {
      scales.p = { auto: false, range: [0, 1] };
      axes.push({ scale: "p", side: 1, size: 40, font: "11px sans-serif", label: "P(lead)", labelSize: 14,
        grid: { show: false }, splits: [0, 0.5, 1] });
      series.push({ label: "uncertainty", scale: "p", stroke: "rgba(110, 64, 170, 0.55)", width: 0.5,
        fill: "rgba(110, 64, 170, 0.16)" });
      series.push({ label: "lead probability", scale: "p", stroke: "#e4572e", width: 1.5 });
      data.push(this.prediction.uncertainty, this.prediction.probability);
    }
    return new uPlot({
      width: 600, height: 150, legend: { show: false },
      cursor: { drag: { x: false, y: false }, points: { show: false } },
      scales, axes, series,
      hooks: {
        setCursor: [(u) => { if (u.cursor.idx !== null && u.cursor.idx !== undefined) viewer.onHover(u.cursor.idx); }],
        draw: [(u) => viewer.markPeak(u)],
      },
    }, data, document.getElementById("peak-chart"));
  }

  // The chart's series by label ("peakiness", "uncertainty", "lead probability"): their values, for the tests.
  series(label) {
    const k = this.peak.series.findIndex((s) => s.label === label);
    return k > 0 ? this.peak.data[k] : null;
  }

  markPeak(u) {
    const [start, stop] = this.selection();
    const ctx = u.ctx;
    const { top, height } = u.bbox;
    const x0 = u.valToPos(start, "x", true);
    const x1 = Math.max(u.valToPos(stop, "x", true), x0 + 1);
    ctx.save();
    ctx.fillStyle = "rgba(255, 210, 63, 0.3)";
    ctx.fillRect(x0, top, x1 - x0, height);
    ctx.restore();
  }

  echoChart() {
    const G = this.gates;
    return new uPlot({
      width: 300, height: 190, legend: { show: true, live: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: false }, y: { auto: false, range: [this.data.header.db_min, this.data.header.db_max + 1] } },
      axes: [{ size: 28, font: "11px sans-serif", label: "gate", labelSize: 14 },
        { size: 44, font: "11px sans-serif", label: "dB", labelSize: 14 }],
      series: [{ label: "gate" }, { label: "current", stroke: "#111", width: 1.5 }, { label: "hovered", stroke: "#e0a800", width: 1 }],
    }, [Float64Array.from({ length: G }, (_, g) => g), new Float64Array(G), new Float64Array(G)],
    document.getElementById("echo-chart"));
  }

  powerOf(i) {
    const G = this.gates;
    const out = new Float64Array(G);
    if (i < 0 || i >= this.n) return out.fill(NaN);
    const { image, header } = this.data;
    for (let g = 0; g < G; g++) out[g] = header.db_min + image[i * G + g] * this.dbStep;
    return out;
  }

  updateEcho() {
    this.echo.setData([this.echo.data[0], this.powerOf(this.cursor), this.powerOf(this.hovered)], false);
    this.echo.redraw(false, true);
  }
}
