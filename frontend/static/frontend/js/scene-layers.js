// A scene's image on the polar map (a module of scenes.js): its HH, HV or false-colour tiles from the tile endpoint,
// with the layer switcher, the opacity and the dB window (kept per user in localStorage, per layer).
//
// Which tiles exist is decided on the tile grid itself, from the scene's bounds in metres: Leaflet's own `bounds`
// option works in lon/lat, which near a pole (and across ±180°) would wrongly drop or ask for tiles.
import { $ } from "./util.js";

const STORE = "cryolabel.scenes.display";

export const SceneTiles = L.TileLayer.extend({
  initialize(scene, grid, options) {
    this.scene = scene;
    this.grid = grid;
    L.TileLayer.prototype.initialize.call(this, "", {
      tileSize: grid.tile_size, maxNativeZoom: Math.min(scene.native_zoom, grid.max_zoom), minZoom: 0,
      maxZoom: grid.max_zoom + 2, keepBuffer: 1, updateWhenZooming: false, ...options,
    });
  },

  getTileUrl(coords) {
    const { layer, vmin, vmax } = this.display;
    const query = new URLSearchParams({ layer });
    if (vmin !== null && vmin !== "") query.set("vmin", vmin);
    if (vmax !== null && vmax !== "") query.set("vmax", vmax);
    return `/api/v1/scenes/${this.scene.id}/tiles/${coords.z}/${coords.x}/${coords.y}.png?${query}`;
  },

  _isValidTile(coords) {
    const [minx, miny, maxx, maxy] = this.scene.bounds;
    const span = (2 * this.grid.extent) / 2 ** coords.z; // metres per tile at this zoom
    const x0 = -this.grid.extent + coords.x * span;
    const y0 = this.grid.extent - (coords.y + 1) * span;
    return x0 < maxx && x0 + span > minx && y0 < maxy && y0 + span > miny;
  },
});

function saved() {
  try {
    return JSON.parse(localStorage.getItem(STORE)) || {};
  } catch {
    return {};
  }
}

// The display controls: `onChange(display)` whenever the layer, the window or the opacity changes.
export function displayControls(setup, onChange) {
  const store = { layer: "hh", opacity: 1, windows: {}, ...saved() };
  const opacity = $("opacity");
  const dbMin = $("db-min");
  const dbMax = $("db-max");
  const [lo, hi] = setup.db_limits;
  for (const input of [dbMin, dbMax]) Object.assign(input, { min: lo, max: hi });

  function current() {
    const window = store.windows[store.layer] || [null, null];
    return { layer: store.layer, vmin: window[0], vmax: window[1], opacity: store.opacity };
  }
  function show() {
    document.querySelector(`input[name=layer][value="${store.layer}"]`).checked = true;
    opacity.value = store.opacity;
    $("opacity-value").textContent = `${Math.round(store.opacity * 100)}%`;
    const defaults = setup.default_db[store.layer] || [null, null]; // rgb: each band its own default
    const [vmin, vmax] = store.windows[store.layer] || [null, null];
    dbMin.value = vmin ?? "";
    dbMax.value = vmax ?? "";
    dbMin.placeholder = defaults[0] ?? "auto";
    dbMax.placeholder = defaults[1] ?? "auto";
  }
  function changed() {
    try {
      localStorage.setItem(STORE, JSON.stringify(store));
    } catch { /* private mode: the settings last the page */ }
    show();
    onChange(current());
  }
  document.querySelectorAll("input[name=layer]").forEach((input) => input.addEventListener("change", () => {
    store.layer = input.value;
    changed();
  }));
  opacity.addEventListener("input", () => {
    store.opacity = Number(opacity.value);
    changed();
  });
  function setWindow() {
    const vmin = dbMin.value === "" ? null : Number(dbMin.value);
    const vmax = dbMax.value === "" ? null : Number(dbMax.value);
    if ((vmin !== null && vmax !== null && vmin >= vmax) || [vmin, vmax].some((v) => v !== null && (v < lo || v > hi))) {
      dbMin.setCustomValidity(`min below max, both within ${lo} to ${hi} dB`);
      dbMin.reportValidity();
      return;
    }
    dbMin.setCustomValidity("");
    store.windows[store.layer] = [vmin, vmax];
    changed();
  }
  dbMin.addEventListener("change", setWindow);
  dbMax.addEventListener("change", setWindow);
  $("db-reset").addEventListener("click", () => {
    delete store.windows[store.layer];
    changed();
  });
  show();
  return {
    current,
    setLayer(layer) {
      store.layer = layer;
      changed();
    },
    stepOpacity(step) {
      store.opacity = Math.min(1, Math.max(0, Math.round((store.opacity + step) * 20) / 20));
      changed();
    },
  };
}
