// The polar map page (/scenes/, /scenes/<id>/): Extra Wide scenes on their polar grid, a scene's image layers,
// and its ice / lead / open-water polygons drawn with a sea-ice concentration, live between the people working
// on it. Modules: scene-map (the map and its CRS), scene-layers (tiles and display), scene-polygons (the store),
// scene-draw (drawing, editing, undo), item-live (the scene's websocket), scene-chart (ice-chart import),
// scene-predictions (the sic network's layers and their review).
import { api, errorText } from "./api.js";
import { importCharts } from "./scene-chart.js";
import { attributeForm, drawing } from "./scene-draw.js";
import { displayControls, SceneTiles } from "./scene-layers.js";
import { followItem } from "./item-live.js";
import { createMap } from "./scene-map.js";
import { POLYGON_DISPLAYS, PolygonStore } from "./scene-polygons.js";
import { predictionTools } from "./scene-predictions.js";
import { $, fmtUtc, isTyping, textNode } from "./util.js";

const app = $("scene-app");
const setup = JSON.parse($("scenes-setup").textContent);
L.PM.setOptIn(true); // only the scene's polygons (pmIgnore: false) can be edited: never the land or a footprint

const state = { scenes: [], scene: null, pole: "north", map: null, tiles: null, footprints: null, store: null,
  draw: null, live: null };

function status(text, bad = false) {
  const note = $("map-note");
  note.textContent = text;
  note.hidden = !text;
  note.classList.toggle("bad", bad);
  clearTimeout(status.timer);
  if (text && !bad) status.timer = setTimeout(() => { note.hidden = true; }, 4000);
}

async function loadScenes() {
  const scenes = [];
  let url = "/api/v1/scenes/?limit=1000";
  while (url) {
    const res = await api(url);
    if (!res.ok) throw new Error(errorText(res.data, res.status));
    scenes.push(...res.data.results);
    url = res.data.next;
  }
  return scenes;
}

const poleOf = (scene) => (scene.crs === "EPSG:3976" ? "south" : "north");
const gridOf = (pole) => setup.grids.find((g) => g.pole === pole);

function sceneLabel(scene) {
  return `${scene.mission} ${scene.mode} ${fmtUtc(scene.acquisition_start)} (${scene.polarisations.join("+")})`;
}

function buildMap(pole) {
  if (state.map) {
    state.map.remove();
    if (state.live) state.live.close();
  }
  state.pole = pole;
  document.querySelector(`input[name=pole][value="${pole}"]`).checked = true;
  const map = createMap(gridOf(pole));
  state.map = map;
  state.tiles = null;
  // One canvas for the footprints and the polygons (hundreds from a chart: no SVG node each), so that a click
  // finds the topmost of them: a polygon over its scene's footprint.
  const renderer = L.canvas({ padding: 0.5, tolerance: 3 });
  state.store = new PolygonStore(map, setup.classes, { onSelect: (f) => form.selected(f), renderer });
  state.draw = drawing(map, state.store, form, { status, sceneId: () => state.scene && state.scene.id });
  polygonDisplay();
  map.on("pm:globaldrawmodetoggled pm:globaleditmodetoggled pm:globalremovalmodetoggled", (ev) => {
    if (!ev.enabled || state.store.display !== "hidden") return;
    document.querySelector("input[name=polygon-display][value=filled]").checked = true;
    polygonDisplay();
  });
  predictions.attach(map, gridOf(pole));
  state.footprints = L.featureGroup().addTo(map);
  for (const scene of state.scenes.filter((s) => poleOf(s) === pole)) {
    const outline = L.geoJSON(scene.footprint, {
      style: { color: "#0b6e99", weight: 1.5, fill: true, fillOpacity: 0.04, dashArray: "6 4" }, pmIgnore: true, renderer,
    });
    outline.bindTooltip(textNode(sceneLabel(scene)), { sticky: true }); // a node: its text is the product's metadata
    outline.on("click", () => {
      // Drawing, editing, deleting or accepting a region: the click is for that tool, even over another scene.
      const busy = map.pm.globalDrawModeEnabled() || map.pm.globalEditModeEnabled() || map.pm.globalRemovalModeEnabled()
        || predictions.accepting();
      if (!busy && (!state.scene || state.scene.id !== scene.id)) choose(scene.id);
    });
    state.footprints.addLayer(outline);
  }
  const shown = state.scenes.filter((s) => poleOf(s) === pole).length;
  $("scene-summary").textContent = shown
    ? `${shown} scene${shown === 1 ? "" : "s"} on the ${pole === "north" ? "Arctic" : "Antarctic"} grid: choose one to draw on it.`
    : `No scene on the ${pole === "north" ? "Arctic" : "Antarctic"} grid yet${state.scenes.length ? "" : ": ingest EW GRD products"}.`;
}

const display = displayControls(setup, (shown) => {
  if (!state.tiles) return;
  state.tiles.display = shown;
  state.tiles.setOpacity(shown.opacity);
  state.tiles.redraw();
});
const form = attributeForm(setup.classes, { select: (id) => state.store && state.store.select(id) });
const predictions = predictionTools({
  status, store: { upsert: (f) => state.store.upsert(f) }, choose: (id) => choose(id),
  beforeAccept: () => state.draw && state.draw.stop(),
});

async function choose(id) {
  const scene = state.scenes.find((s) => s.id === id) || null;
  if (scene && poleOf(scene) !== state.pole) buildMap(poleOf(scene));
  if (state.tiles) state.map.removeLayer(state.tiles);
  if (state.live) state.live.close();
  state.draw.stop();
  state.scene = scene;
  app.dataset.scene = scene ? String(scene.id) : "";
  $("scene-select").value = scene ? String(scene.id) : "";
  $("scene-tools").hidden = !scene;
  history.replaceState(null, "", scene ? `/scenes/${scene.id}/` : "/scenes/");
  if (!scene) {
    predictions.load(null);
    state.store.clear();
    $("scene-info").textContent = "";
    return;
  }
  $("scene-info").textContent = `${scene.key} · ${scene.width}×${scene.height} px at ${scene.pixel_size} m · ${scene.crs}`
    + (scene.calibrated ? " · σ0 dB" : " · uncalibrated DN dB");
  state.tiles = new SceneTiles(scene, gridOf(state.pole), { opacity: display.current().opacity, pane: "tilePane" });
  state.tiles.display = display.current();
  state.tiles.addTo(state.map);
  showScene(scene);
  predictions.load(scene);
  app.dataset.state = "loading";
  // The socket first, then the polygons: whatever changes between the two arrives on the socket.
  state.live = followItem({ path: `/ws/scenes/${scene.id}/`, app: "scene-app", type: "polygon", noun: "scene" }, {
    onReady: () => state.store.load(scene.id).then(() => { app.dataset.state = "ready"; })
      .catch((err) => { app.dataset.state = "error"; status(err.message, true); }),
    onMessage: (message) => state.store.apply(message),
  });
}

// Leaflet's fitBounds works on lon/lat corners, which near a pole are not the scene's corners: the view is made
// from the scene's bounds on the grid (metres) instead.
function showScene(scene) {
  const map = state.map;
  const [minx, miny, maxx, maxy] = scene.bounds;
  const size = map.getSize();
  const metresPerPixel = Math.max((maxx - minx) / Math.max(size.x - 40, 100), (maxy - miny) / Math.max(size.y - 40, 100));
  const zoom = Math.floor(map.options.crs.zoom(1 / metresPerPixel) * 2) / 2; // zoomSnap 0.5
  const center = map.options.crs.unproject(L.point((minx + maxx) / 2, (miny + maxy) / 2));
  map.setView(center, Math.min(Math.max(zoom, map.getMinZoom()), map.getMaxZoom()));
}

// The polygons' display (filled / outlines / hidden): the radio buttons, or O to step through them. Drawing or
// editing brings hidden polygons back (one does not edit what one cannot see).
function polygonDisplay(step = 0) {
  const checked = document.querySelector("input[name=polygon-display]:checked").value;
  const next = POLYGON_DISPLAYS[(POLYGON_DISPLAYS.indexOf(checked) + step) % POLYGON_DISPLAYS.length];
  document.querySelector(`input[name=polygon-display][value="${next}"]`).checked = true;
  if (state.store) state.store.setDisplay(next);
}
document.querySelectorAll("input[name=polygon-display]").forEach((i) => i.addEventListener("change", () => polygonDisplay()));

function keys(ev) {
  if (ev.key === "Escape") {
    state.draw && state.draw.stop();
    predictions.stop();
    if (isTyping(ev.target)) ev.target.blur();
    return;
  }
  if (isTyping(ev.target) || !state.scene || ev.altKey || ev.metaKey) return;
  const key = ev.key.toLowerCase();
  if (ev.ctrlKey) {
    if (key === "z") { ev.preventDefault(); state.draw.undo(); }
    return;
  }
  const cls = setup.classes.find((c) => c.key === key);
  if (cls) form.set({ label: cls.value });
  else if (/^[0-9]$/.test(key)) form.set({ label: "ice", sic: key === "0" ? 100 : Number(key) * 10 });
  else if ("dex".includes(key)) {
    predictions.stop();
    state.draw.toggle({ d: "draw", e: "edit", x: "delete" }[key]);
  }
  else if (key === "p") predictions.cycle();
  else if (key === "o") polygonDisplay(1);
  else if (key === "a") predictions.toggleAccept();
  else if (key === "h") display.setLayer("hh");
  else if (key === "v") display.setLayer("hv");
  else if (key === "c") display.setLayer("rgb");
  else if (key === "[") display.stepOpacity(-0.1);
  else if (key === "]") display.stepOpacity(0.1);
  else if (key === "enter" && state.store.selected !== null) state.draw.applySelected();
  else return;
  ev.preventDefault();
}

async function start() {
  try {
    state.scenes = await loadScenes();
  } catch (err) {
    app.dataset.state = "error";
    $("scene-summary").textContent = `The scenes could not be loaded: ${err.message}`;
    return;
  }
  const select = $("scene-select");
  for (const scene of state.scenes) select.add(new Option(`${sceneLabel(scene)} · #${scene.id}`, scene.id));
  const wanted = Number(setup.scene) || null;
  const first = state.scenes.find((s) => s.id === wanted);
  if (wanted && !first) status(`There is no scene ${wanted}.`, true);
  buildMap(first ? poleOf(first) : (state.scenes.some((s) => poleOf(s) === "north") || !state.scenes.length ? "north" : "south"));
  select.addEventListener("change", () => choose(Number(select.value) || null));
  document.querySelectorAll("input[name=pole]").forEach((input) => input.addEventListener("change", () => {
    choose(null);
    buildMap(input.value);
  }));
  document.addEventListener("keydown", keys);
  if ($("chart-form")) importCharts({ status, reload: () => state.scene && state.store.load(state.scene.id) });
  if (first) await choose(first.id);
  else app.dataset.state = "ready";
}

// For the browser tests and the console: where a lon/lat is on the map (page pixels), and what the store holds.
window.cryolabelScenes = {
  pagePoint(lat, lon) {
    const p = state.map.latLngToContainerPoint([lat, lon]);
    const box = $("map").getBoundingClientRect();
    return { x: box.left + p.x, y: box.top + p.y };
  },
  features: () => (state.store ? [...state.store.layers.values()].map((l) => l.feature) : []),
  polygonsOnMap: () => Boolean(state.store && state.map.hasLayer(state.store.group)),
};

start();
