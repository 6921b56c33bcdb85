// The track pages: /tracks/ (the ground tracks on the polar map; a click opens one) and /tracks/<id>/ (the pass's
// nadir points coloured by label over its collocated scenes' HH tiles, and the waveform viewer below, linked both
// ways; a range selected with the mouse or the keys is marked lead / not lead / unknown, live between people).
// With a current `leads` prediction: its panel, its probability and uncertainty in the viewer, P colours the map by
// it; experts review it by segments (J / K, A accepts the prediction over the selection, L / N / U correct it).
// Modules: scene-map (the polar map, shared with the scenes page), scene-layers (scene tiles), track-data (the
// binary payload), track-map (the nadir points), track-viewer (image and charts), item-live (the websocket),
// track-predictions (the prediction, its review, and the review queue on /tracks/).
import { api, errorText } from "./api.js";
import { SceneTiles } from "./scene-layers.js";
import { createMap } from "./scene-map.js";
import { decodeInt8, loadWaveforms } from "./track-data.js";
import { followItem } from "./item-live.js";
import { fitPoints, NadirLayer } from "./track-map.js";
import { loadPrediction, PredictionPanel, reviewQueue } from "./track-predictions.js";
import { WaveformViewer } from "./track-viewer.js";
import { $, fmtCount, fmtLatLon, fmtUtc, isTyping, textNode } from "./util.js";

const app = $("track-app");
const setup = JSON.parse($("tracks-setup").textContent);
const LABELS = setup.labels; // [{value, name, key, code, color}]
const canReview = app.dataset.canReview === "1";
// mine: the ids of the ranges this page wrote, one entry per mark or acceptance (undone together).
const state = { track: null, data: null, map: null, nadir: null, viewer: null, live: null, mine: [], tracks: [],
  prediction: null, panel: null, pending: Promise.resolve(), reloadTimer: null };

function status(text, bad = false) {
  const note = $("map-note");
  note.textContent = text;
  note.hidden = !text;
  note.classList.toggle("bad", bad);
  clearTimeout(status.timer);
  if (text && !bad) status.timer = setTimeout(() => { note.hidden = true; }, 4000);
}

const gridOf = (pole) => setup.grids.find((g) => g.pole === pole);
const trackName = (t) => `${t.mission} ${t.mode || ""} pass ${t.pass_number ?? "?"} · ${fmtUtc(t.time_start)}`;

// --- /tracks/: every ground track on the map ------------------------------------------------------------------------
async function listPage() {
  const features = [];
  let url = "/api/v1/tracks/?shape=geojson&limit=1000";
  while (url) {
    const res = await api(url);
    if (!res.ok) throw new Error(errorText(res.data, res.status));
    features.push(...res.data.features);
    url = res.data.next;
  }
  state.tracks = features;
  const pole = features.some((f) => f.properties.pole === "north") || !features.length ? "north" : "south";
  showList(pole);
  document.querySelectorAll("input[name=pole]").forEach((input) => input.addEventListener("change", () => showList(input.value)));
  const select = $("track-select");
  for (const f of features) select.add(new Option(`${trackName(f.properties)} · #${f.id}`, f.id));
  select.addEventListener("change", () => { if (select.value) location.href = `/tracks/${select.value}/`; });
  app.dataset.tracks = String(features.length);
  await reviewQueue(); // experts: the tracks to review, least sure first
  app.dataset.state = "ready";
}

function showList(pole) {
  if (state.map) state.map.remove();
  document.querySelector(`input[name=pole][value="${pole}"]`).checked = true;
  state.map = createMap(gridOf(pole));
  const renderer = L.canvas({ padding: 0.5, tolerance: 4 });
  const shown = state.tracks.filter((f) => f.properties.pole === pole);
  for (const f of shown) {
    const line = L.geoJSON(f.geometry, { renderer, style: { color: "#b4451f", weight: 2.5, opacity: 0.9 } });
    // A node, not a string: Leaflet parses a string as HTML, and a track's key is a file's name.
    const tip = `${trackName(f.properties)} · ${fmtCount(f.properties.n_waveforms)} waveforms · ${f.properties.key}`;
    line.bindTooltip(textNode(tip), { sticky: true });
    line.on("click", () => { location.href = `/tracks/${f.id}/`; });
    line.on("mouseover", () => line.setStyle({ weight: 5 }));
    line.on("mouseout", () => line.setStyle({ weight: 2.5 }));
    line.addTo(state.map);
  }
  $("track-summary").textContent = shown.length
    ? `${shown.length} track${shown.length === 1 ? "" : "s"} on the ${pole === "north" ? "Arctic" : "Antarctic"} grid: click one to label it.`
    : `No track on the ${pole === "north" ? "Arctic" : "Antarctic"} grid yet.`;
}

// --- /tracks/<id>/: one pass --------------------------------------------------------------------------------------
async function trackPage(id) {
  const res = await api(`/api/v1/tracks/${id}/`);
  if (!res.ok) throw new Error(res.status === 404 ? `There is no track ${id}.` : errorText(res.data, res.status));
  const track = res.data;
  state.track = track;
  app.dataset.track = String(track.id);
  $("track-title").textContent = trackName(track);
  $("track-info").textContent = `${track.key} · ${fmtCount(track.n_waveforms)} waveforms of ${track.gates} gates at `
    + `${track.rate_hz} Hz · ${track.band} band`;
  const scenes = track.collocation ? track.collocation.scenes : [];
  $("track-scenes").textContent = track.collocation
    ? `Collocated with ${scenes.length} scene${scenes.length === 1 ? "" : "s"} (within ${Math.round(track.collocation.window_s / 3600)} h, leads closer than ${track.collocation.threshold_m} m)`
    : "Not collocated with any scene yet: automatic labels are unknown.";
  document.querySelector(`input[name=pole][value="${track.pole}"]`).checked = true;
  document.querySelectorAll("input[name=pole]").forEach((input) => { input.disabled = true; });

  // The prediction is an extra: a failure to read it is said, and the page works without it.
  const [data, prediction] = await Promise.all([loadWaveforms(track.id), loadPrediction(track.id).catch((err) => {
    status(err.message, true);
    return null;
  })]);
  state.data = data;
  state.prediction = prediction && prediction.n === data.header.n ? prediction : null;
  if (prediction && !state.prediction) status(`The prediction covers ${prediction.n} waveforms, the track ${data.header.n}: predict it again.`, true);
  const grid = gridOf(track.pole);
  state.map = createMap(grid);
  for (const scene of scenes) {
    const tiles = new SceneTiles(scene, grid, { opacity: 0.9, pane: "tilePane" });
    tiles.display = { layer: "hh", vmin: null, vmax: null };
    tiles.addTo(state.map);
    const outline = L.geoJSON(scene.footprint, { interactive: false,
      style: { color: "#0b6e99", weight: 1.2, fill: false, dashArray: "6 4" } });
    outline.addTo(state.map);
  }
  fitPoints(state.map, data.lat, data.lon, Math.max(1, Math.floor(data.header.n / 500)));
  state.nadir = new NadirLayer(data, {
    onHover: (i) => hover(i),
    onPick: (i) => state.viewer.setCursor(i),
  }).addTo(state.map);
  state.viewer = new WaveformViewer(data, {
    onHover: (i) => hover(i),
    onChange: ({ selection, cursor }) => selected(selection, cursor),
    prediction: state.prediction,
  });
  if (state.prediction) {
    state.panel = new PredictionPanel(state.prediction, {
      trackId: track.id, threshold: setup.lead_probability, canReview, status,
      select: (start, stop) => showRange(start, stop),
      onAccept: () => accept(),
    });
    $("map-by-probability").addEventListener("change", (ev) => colourMap(ev.target.checked));
  }
  selected(state.viewer.selection(), state.viewer.cursor);
  counts();
  document.addEventListener("keydown", keys);
  document.querySelectorAll("[data-mark]").forEach((b) => b.addEventListener("click", () => mark(b.dataset.mark)));
  $("undo").addEventListener("click", undo);
  $("clear").addEventListener("click", () => state.viewer.clearSelection());
  app.dataset.state = "loading";
  state.live = followItem({ path: `/ws/tracks/${track.id}/`, app: "track-app", type: "range", noun: "track" }, {
    onReady: () => reloadLabels().then(() => { app.dataset.state = "ready"; }),
    onMessage: () => scheduleReload(),
  });
}

function hover(i) {
  state.viewer.hover(i);
  state.nadir.setMarks({ hovered: i });
  const d = state.data;
  $("hover-info").textContent = `#${i} · ${fmtUtc(new Date((d.header.time0 + d.time[i]) * 1000).toISOString())} · `
    + `${fmtLatLon(d.lat[i], d.lon[i])} · peakiness ${d.peakiness[i].toFixed(1)} · ${labelName(d.label[i])}`
    + (state.prediction ? ` · P(lead) ${state.prediction.probability[i].toFixed(2)}` : "");
}

// A range shown: selected in the viewer (with some context each side) and the map centred on its middle.
function showRange(start, stop) {
  const span = Math.max(200, (stop - start) * 4);
  state.viewer.setView((start + stop) / 2 - span / 2, span);
  state.viewer.select(start, stop);
  const mid = Math.floor((start + stop - 1) / 2);
  state.map.panTo([state.data.lat[mid], state.data.lon[mid]]);
}

// P: the map's dots by predicted probability, or by label.
function colourMap(byProbability) {
  if (!state.prediction) return;
  const mode = state.nadir.setColouring(byProbability ? "probability" : "label", state.prediction.quantised);
  $("map-by-probability").checked = mode === "probability";
  $("probability-legend").hidden = mode !== "probability";
  app.dataset.mapColour = mode;
}

function selected([start, stop], cursor) {
  state.nadir.setMarks({ selection: stop - start > 1 ? [start, stop] : null, current: cursor });
  app.dataset.selection = `${start}-${stop}`;
  $("selection-info").textContent = stop - start > 1
    ? `Waveforms ${start}–${stop - 1} (${fmtCount(stop - start)})` : `Waveform ${start}`;
}

const labelName = (code) => (LABELS.find((l) => l.code === code) || { name: "?" }).name;

function counts() {
  const c = { 1: 0, 0: 0, "-1": 0 };
  for (const v of state.data.label) c[v] += 1;
  for (const l of LABELS) $(`count-${l.value}`).textContent = fmtCount(c[l.code]);
  app.dataset.leads = String(c[1]);
  if (state.panel) state.panel.labelsChanged(state.data.label);
}

function redraw() {
  counts();
  state.viewer.draw();
  state.nadir.redraw();
}

// Mark the selection: drawn at once, then sent; a refusal puts the server's labels back.
function mark(value) {
  const label = LABELS.find((l) => l.value === value);
  const [start, stop] = state.viewer.selection();
  state.data.label.fill(label.code, start, stop);
  state.data.source.fill(setup.source_codes.person, start, stop);
  redraw();
  state.pending = state.pending.then(async () => {
    const res = await api(`/api/v1/tracks/${state.track.id}/labels/`, { method: "POST", body: { start, stop, label: value } });
    if (!res.ok) {
      status(`Not marked: ${errorText(res.data, res.status)}`, true);
      await reloadLabels();
      return;
    }
    state.mine.push([res.data.id]);
    $("undo").disabled = false;
    status(`Marked ${fmtCount(stop - start)} waveform${stop - start === 1 ? "" : "s"} ${label.name}.`);
  });
  return state.pending;
}

// Accept the prediction over the selection (experts): drawn at once from the prediction, then sent; the server's
// labels are read back either way. Undo takes the acceptance's ranges back together.
function accept() {
  if (!state.panel || !canReview) return state.pending;
  const [start, stop] = state.viewer.selection();
  const p = state.prediction.probability;
  for (let i = start; i < stop; i++) {
    state.data.label[i] = p[i] >= setup.lead_probability ? 1 : 0;
    state.data.source[i] = setup.source_codes.prediction;
  }
  redraw();
  state.pending = state.pending.then(async () => {
    const ranges = await state.panel.accept(start, stop);
    if (ranges && ranges.length) {
      state.mine.push(ranges.map((r) => r.id));
      $("undo").disabled = false;
    }
    await reloadLabels();
  });
  return state.pending;
}

function undo() {
  state.pending = state.pending.then(async () => {
    const ids = state.mine.pop();
    $("undo").disabled = !state.mine.length;
    if (ids === undefined) { status("Nothing of yours to undo on this page."); return; }
    let failed = null;
    for (const id of ids) {
      const res = await api(`/api/v1/tracks/${state.track.id}/labels/${id}/`, { method: "DELETE" });
      if (!res.ok && res.status !== 409) failed = errorText(res.data, res.status);
    }
    if (failed) status(`Not undone: ${failed}`, true);
    else status("Undone.");
    await reloadLabels();
  });
  return state.pending;
}

async function reloadLabels() {
  const res = await api(`/api/v1/tracks/${state.track.id}/labels/`);
  if (!res.ok) { status(`The labels could not be loaded: ${errorText(res.data, res.status)}`, true); return; }
  state.data.label.set(decodeInt8(res.data.labels));
  state.data.source.set(decodeInt8(res.data.sources));
  app.dataset.ranges = String(res.data.ranges.length);
  redraw();
}

// Another browser's change (or our own, told back): the labels are read again, at most every 150 ms.
function scheduleReload() {
  clearTimeout(state.reloadTimer);
  state.reloadTimer = setTimeout(() => { state.pending = state.pending.then(reloadLabels); }, 150);
}

function keys(ev) {
  if (isTyping(ev.target) || ev.altKey || ev.metaKey) return;
  const viewer = state.viewer;
  const key = ev.key;
  if (ev.ctrlKey) {
    if (key.toLowerCase() === "z") { ev.preventDefault(); undo(); }
    return;
  }
  const step = 1;
  const label = LABELS.find((l) => l.key === key.toLowerCase());
  if (key === "ArrowRight") viewer.setCursor(viewer.cursor + step, { extend: ev.shiftKey });
  else if (key === "ArrowLeft") viewer.setCursor(viewer.cursor - step, { extend: ev.shiftKey });
  else if (key === "Home") viewer.setCursor(0, { extend: ev.shiftKey });
  else if (key === "End") viewer.setCursor(state.data.header.n - 1, { extend: ev.shiftKey });
  else if (key === "Escape") viewer.clearSelection();
  else if (label) mark(label.value);
  else if (key.toLowerCase() === "p" && state.prediction) colourMap(state.nadir.colourBy !== "probability");
  else if (key.toLowerCase() === "j" && state.panel && canReview) state.panel.step(1);
  else if (key.toLowerCase() === "k" && state.panel && canReview) state.panel.step(-1);
  else if (key.toLowerCase() === "a" && state.panel && canReview) accept();
  else return;
  ev.preventDefault();
}

// For the browser tests and the console.
window.cryolabelTracks = {
  pagePoint(lat, lon) {
    const p = state.map.latLngToContainerPoint([lat, lon]);
    const box = $("map").getBoundingClientRect();
    return { x: box.left + p.x, y: box.top + p.y };
  },
  nadirPoint(i) {
    const p = state.nadir.point(i);
    const box = $("map").getBoundingClientRect();
    return { x: box.left + p.x, y: box.top + p.y };
  },
  imageX(i) { // page x of waveform i on the along-track image
    const box = $("wf-image").getBoundingClientRect();
    return box.left + ((i + 0.5 - state.viewer.v0) / (state.viewer.v1 - state.viewer.v0)) * box.width;
  },
  view: () => [state.viewer.v0, state.viewer.v1],
  setView: (v0, span) => state.viewer.setView(v0, span),
  selection: () => state.viewer.selection(),
  label: (i) => state.data.label[i],
  labels: (start, stop) => Array.from(state.data.label.subarray(start, stop)),
  // What the map's last redraw drew waveform i as: its label code, or its probability bin 0-4 when the map shows the
  // prediction (mapColour() "probability"); -2: not drawn.
  drawnLabel: (i) => state.nadir.drawn[i],
  drawnCount: () => state.nadir.drawnIndex.length,
  mapColour: () => state.nadir.colourBy,
  mapCentre: () => { const c = state.map.getCenter(); return [c.lat, c.lng]; },
  // The prediction: its row, waveform i's probability (0-1), and the viewer's curves ("lead probability",
  // "uncertainty", "peakiness": the values the chart draws, or null without that series).
  prediction: () => (state.prediction ? state.prediction.row : null),
  probability: (i) => (state.prediction ? state.prediction.probability[i] : null),
  curve: (label, start, stop) => {
    const values = state.viewer.series(label);
    return values ? Array.from(values.slice(start, stop)) : null;
  },
  segments: () => (state.panel ? state.panel.segments : []),
  segment: () => (state.panel ? state.panel.current : -1),
};

async function start() {
  try {
    if (setup.track) await trackPage(setup.track);
    else await listPage();
  } catch (err) {
    app.dataset.state = "error";
    $("track-summary").textContent = err.message;
    status(err.message, true);
  }
}

start();
