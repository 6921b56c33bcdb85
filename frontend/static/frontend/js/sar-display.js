// SAR display (an ES module): the user's own contrast on the imagettes of the labelling, review and curation pages.
//
// By default a page shows the server's 8-bit preview (a 2-98 % stretch): fast, and what everyone sees. Once the user
// sets a contrast, the imagettes' values come from /api/v1/imagettes/<id>/pixels/ (float16, dB or, for PNG sources,
// brightness) and are drawn on a canvas laid over each preview <img>, through
//   a dB window [low, high] (the same for every image, so their brightness compares), or
//   a percentile stretch [p_low, p_high] (computed per image; PNG sources always get this one, having no dB),
// and a gamma: shown grey = t^(1/gamma) with t the value's place in the window (gamma > 1 brightens mid-tones).
// The setting is kept per user in this browser (localStorage) and applies on every page that includes this module.
//
// A page includes it with an element <div data-sar-display data-user="…" data-images="CSS selector"> where the
// controls go (data-images picks the preview images it handles) and <script type="module" src="…/sar-display.js">.
// Pages announce upcoming items with document.dispatchEvent(new CustomEvent("cryolabel:upcoming",
// {detail: {ids: [...]}})): with a contrast set, their pixels are fetched ahead, as the previews are.

export const KEYS = Object.freeze({
  "[": "shift-down", "]": "shift-up", "{": "widen", "}": "narrow", ";": "gamma-down", "'": "gamma-up", "\\": "reset",
});
export const KEY_HELP = "[ ] move the window down/up (brighter/darker) · { } widen/narrow · ; ' gamma down/up · \\ reset";
export const DEFAULT_PERCENTILES = Object.freeze([2, 98]); // the preview's own stretch
const DEFAULT_DB = [-25, 0];
const DB_STEP = 1; // dB per key press (each side when widening)
const PCT_STEP = 1; // percentage points per key press
const GAMMA_STEP = 1.15;
const GAMMA_RANGE = [0.25, 4];
const DB_RANGE = [-80, 60];
const MAX_CACHED = 48; // pixel arrays kept (~0.5 MB each at 512 px)
const UPCOMING_KEPT = 20;
const RETRY_MS = 30000;
const PREVIEW_ID = /\/api\/v1\/imagettes\/(\d+)\/preview\/?(?:[?#]|$)/;

// --- the setting --------------------------------------------------------------------------------------
// null: the server's preview. Otherwise {mode: "db" | "percentile", db: [low, high], pct: [low, high], gamma}.

const round = (value, step) => Math.round(value / step) * step;
const clamp = (value, [lo, hi]) => Math.min(hi, Math.max(lo, value));

function pair(value, fallback, range, minWidth) {
  if (!Array.isArray(value) || value.length !== 2) return [...fallback];
  let [lo, hi] = value.map(Number);
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [...fallback];
  lo = clamp(lo, range);
  hi = clamp(hi, range);
  if (hi - lo < minWidth) return [...fallback];
  return [lo, hi];
}

// A setting from anywhere (storage, inputs) made safe: null when it is not one.
export function normalise(setting) {
  if (!setting || typeof setting !== "object" || !["db", "percentile"].includes(setting.mode)) return null;
  const gamma = Number(setting.gamma);
  return {
    mode: setting.mode,
    db: pair(setting.db, DEFAULT_DB, DB_RANGE, 0.5),
    pct: pair(setting.pct, DEFAULT_PERCENTILES, [0, 100], 1),
    gamma: Number.isFinite(gamma) ? clamp(Math.round(gamma * 1000) / 1000, GAMMA_RANGE) : 1,
  };
}

export function storageKey(user) {
  return `cryolabel.display.${user || ""}`;
}

export function loadSetting(user) {
  try {
    return normalise(JSON.parse(localStorage.getItem(storageKey(user)) || "null"));
  } catch (err) {
    return null; // storage refused or damaged: the default
  }
}

export function saveSetting(user, setting) {
  try {
    if (setting) localStorage.setItem(storageKey(user), JSON.stringify(setting));
    else localStorage.removeItem(storageKey(user));
  } catch (err) { /* kept for this page only */ }
}

// Where a first adjustment starts: the look of the preview, so the picture does not jump. For a dB image that is
// its own 2-98 % values as a dB window (rounded to 0.5 dB); without one (or for a PNG source), the 2-98 % stretch.
export function startSetting(pixels, mode) {
  const setting = { mode: mode || "percentile", db: [...DEFAULT_DB], pct: [...DEFAULT_PERCENTILES], gamma: 1 };
  if (pixels && pixels.isDb) {
    const [lo, hi] = percentiles(pixels, DEFAULT_PERCENTILES);
    if (Number.isFinite(lo) && Number.isFinite(hi)) {
      setting.db = [round(lo, 0.5), Math.max(round(hi, 0.5), round(lo, 0.5) + 0.5)];
      if (!mode) setting.mode = "db";
    }
  }
  return normalise(setting);
}

// One key's change to a setting (pure). "reset" gives null.
export function adjust(setting, action) {
  if (action === "reset" || !setting) return null;
  const next = { ...setting, db: [...setting.db], pct: [...setting.pct] };
  const db = next.mode === "db";
  const step = db ? DB_STEP : PCT_STEP;
  const bounds = db ? DB_RANGE : [0, 100];
  const minWidth = db ? 0.5 : 1;
  const win = db ? next.db : next.pct;
  if (action === "shift-down" || action === "shift-up") {
    const delta = action === "shift-up" ? step : -step;
    const moved = clamp(win[0] + delta, [bounds[0], bounds[1] - (win[1] - win[0])]) - win[0];
    win[0] += moved;
    win[1] += moved;
  } else if (action === "widen") {
    win[0] = Math.max(bounds[0], win[0] - step);
    win[1] = Math.min(bounds[1], win[1] + step);
  } else if (action === "narrow") {
    if (win[1] - win[0] - 2 * step >= minWidth) {
      win[0] += step;
      win[1] -= step;
    }
  } else if (action === "gamma-down" || action === "gamma-up") {
    next.gamma = action === "gamma-up" ? next.gamma * GAMMA_STEP : next.gamma / GAMMA_STEP;
  }
  return normalise(next);
}

// --- pixels ---------------------------------------------------------------------------------------------
let float16 = null;
// Every float16 bit pattern as a float32 (decoding by table: one lookup a pixel).
export function float16Table() {
  if (float16) return float16;
  float16 = new Float32Array(65536);
  for (let h = 0; h < 65536; h += 1) {
    const sign = h & 0x8000 ? -1 : 1;
    const exponent = (h >> 10) & 0x1f;
    const fraction = h & 0x3ff;
    if (exponent === 0) float16[h] = sign * 2 ** -14 * (fraction / 1024);
    else if (exponent === 31) float16[h] = fraction ? NaN : sign * Infinity;
    else float16[h] = sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
  }
  return float16;
}

const cache = new Map(); // imagette id -> Promise of pixels or null (not available: the preview stays)

export function fetchPixels(id) {
  const key = String(id);
  if (cache.has(key)) {
    const hit = cache.get(key);
    cache.delete(key); // most recently used last
    cache.set(key, hit);
    return hit;
  }
  const promise = (async () => {
    try {
      const res = await fetch(`/api/v1/imagettes/${key}/pixels/`, { credentials: "same-origin" });
      if (!res.ok) return null;
      const width = Number(res.headers.get("X-Pixels-Width"));
      const height = Number(res.headers.get("X-Pixels-Height"));
      const buffer = await res.arrayBuffer();
      if (!(width > 0 && height > 0) || buffer.byteLength !== width * height * 2) return null;
      const pixels = { id: key, width, height, isDb: res.headers.get("X-Pixels-Units") === "dB", codes: new Uint16Array(buffer) };
      pixels.sample = sortedSample(pixels);
      return pixels;
    } catch (err) {
      return null;
    }
  })();
  promise.then((pixels) => {
    // Not there (a missing file, the network): the preview stays; asked again a while later, not on every redraw.
    if (!pixels) setTimeout(() => { if (cache.get(key) === promise) cache.delete(key); }, RETRY_MS);
  });
  cache.set(key, promise);
  while (cache.size > MAX_CACHED) cache.delete(cache.keys().next().value);
  return promise;
}

// About 65 k finite values on a regular grid, sorted: the percentiles (as the server's preview stretch takes them).
function sortedSample({ width, height, codes }) {
  const table = float16Table();
  const step = Math.max(1, Math.floor(Math.sqrt((width * height) / 65536)));
  const out = new Float32Array(Math.ceil(height / step) * Math.ceil(width / step));
  let n = 0;
  for (let y = 0; y < height; y += step) {
    for (let x = 0; x < width; x += step) {
      const v = table[codes[y * width + x]];
      if (Number.isFinite(v)) out[n++] = v;
    }
  }
  return out.subarray(0, n).sort();
}

// Percentiles of an image's values, interpolated as numpy does.
export function percentiles(pixels, [pLow, pHigh]) {
  const s = pixels.sample;
  if (!s.length) return [NaN, NaN];
  const at = (p) => {
    const i = (p / 100) * (s.length - 1);
    const lo = Math.floor(i);
    return s[lo] + (s[Math.min(lo + 1, s.length - 1)] - s[lo]) * (i - lo);
  };
  return [at(pLow), at(pHigh)];
}

// The window [low, high] in the image's values that the setting gives for this image.
export function windowFor(setting, pixels) {
  if (setting.mode === "db" && pixels.isDb) return setting.db;
  return percentiles(pixels, setting.pct);
}

let table = { key: "", rgba: null };
// Every float16 bit pattern to an opaque grey RGBA pixel (NaN black, as in the preview), for one window and gamma.
function greyTable(lo, hi, gamma) {
  const key = `${lo}|${hi}|${gamma}`;
  if (table.key === key) return table.rgba;
  const values = float16Table();
  const rgba = new Uint32Array(65536);
  const span = hi > lo ? hi - lo : 1;
  const inverse = 1 / gamma;
  const little = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
  for (let h = 0; h < 65536; h += 1) {
    const v = values[h];
    let g = 0;
    if (!Number.isNaN(v)) {
      const t = Math.min(1, Math.max(0, (v - lo) / span));
      g = Math.round(255 * t ** inverse);
    }
    rgba[h] = little ? (0xff000000 | (g << 16) | (g << 8) | g) >>> 0 : ((g << 24) | (g << 16) | (g << 8) | 0xff) >>> 0;
  }
  table = { key, rgba };
  return rgba;
}

// Draws the image's values on the canvas with the setting's window and gamma.
export function paint(canvas, pixels, setting) {
  const [lo, hi] = windowFor(setting, pixels);
  const rgba = greyTable(lo, hi, setting.gamma);
  if (canvas.width !== pixels.width) canvas.width = pixels.width;
  if (canvas.height !== pixels.height) canvas.height = pixels.height;
  const context = canvas.getContext("2d");
  const image = context.createImageData(pixels.width, pixels.height);
  const out = new Uint32Array(image.data.buffer);
  const codes = pixels.codes;
  for (let i = 0; i < codes.length; i += 1) out[i] = rgba[codes[i]];
  context.putImageData(image, 0, 0);
  return [lo, hi];
}

// --- the page -------------------------------------------------------------------------------------------
function imagetteIdOf(img) {
  const match = PREVIEW_ID.exec(img.getAttribute("src") || "");
  return match ? match[1] : null;
}

function isTyping(target) {
  return target instanceof HTMLElement
    && (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName));
}

function element(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  Object.assign(el, props);
  el.append(...children);
  return el;
}

// Attaches the display to a page: builds the controls in `container`, handles the keys, and lays a canvas over
// every image matching `selector` while a contrast is set. Returns {setting(), set(setting), prefetch(ids)}.
export function attachSarDisplay({ container, user, selector }) {
  let setting = loadSetting(user);
  const canvases = new WeakMap(); // img -> its canvas
  const pending = new WeakMap(); // img -> the render on its way (id|setting), so a burst of changes draws once
  const upcoming = []; // ids the page announced, newest last
  let queue = Promise.resolve(); // key presses, one after the other (the first may wait for pixels)

  // The controls.
  const mode = element("select", { className: "sar-mode", title: "Contrast of the imagettes" },
    element("option", { value: "preview", textContent: "Preview contrast" }),
    element("option", { value: "db", textContent: "dB window" }),
    element("option", { value: "percentile", textContent: "Percentile stretch" }));
  const number = (cls, title, step) => element("input", { type: "number", className: cls, title, step: String(step) });
  const low = number("sar-low", "Window low: black at or below it", 0.5);
  const high = number("sar-high", "Window high: white at or above it", 0.5);
  const gamma = number("sar-gamma", "Gamma: above 1 brightens the mid-tones", 0.05);
  gamma.min = String(GAMMA_RANGE[0]);
  gamma.max = String(GAMMA_RANGE[1]);
  const unit = element("span", { className: "sar-unit" });
  const reset = element("button", { type: "button", className: "tool sar-reset", title: "Back to the preview's contrast (\\)" },
    "Reset ", element("kbd", { textContent: "\\" }));
  const note = element("span", { className: "sar-note" });
  const windowControls = element("span", { className: "sar-window" }, low, "–", high, unit, " γ", gamma);
  container.replaceChildren(mode, windowControls, reset, note);
  container.title = `Contrast: ${KEY_HELP}`;
  container.setAttribute("role", "group");
  container.setAttribute("aria-label", "Contrast");

  function showControls() {
    container.dataset.mode = setting ? setting.mode : "preview";
    mode.value = container.dataset.mode;
    windowControls.hidden = !setting;
    reset.disabled = !setting;
    if (!setting) return;
    const win = setting.mode === "db" ? setting.db : setting.pct;
    const step = setting.mode === "db" ? 0.5 : 1;
    for (const [input, value] of [[low, win[0]], [high, win[1]]]) {
      input.step = String(step);
      if (document.activeElement !== input) input.value = String(value);
    }
    if (document.activeElement !== gamma) gamma.value = setting.gamma.toFixed(2);
    unit.textContent = setting.mode === "db" ? " dB" : " %";
  }

  function primaryImage() {
    return Array.from(document.querySelectorAll(selector)).find((img) => imagetteIdOf(img)) || null;
  }

  // --- canvases over the images ---
  function canvasFor(img) {
    let canvas = canvases.get(img);
    if (!canvas || canvas.previousElementSibling !== img) {
      canvas = element("canvas", { className: "sar-canvas", hidden: true });
      canvas.setAttribute("aria-hidden", "true");
      const parent = img.parentElement;
      if (parent && getComputedStyle(parent).position === "static") parent.style.position = "relative";
      img.after(canvas);
      canvases.set(img, canvas);
      resizes.observe(img);
    }
    return canvas;
  }

  function place(img, canvas) {
    const style = getComputedStyle(img);
    Object.assign(canvas.style, {
      left: `${img.offsetLeft}px`, top: `${img.offsetTop}px`, width: `${img.offsetWidth}px`, height: `${img.offsetHeight}px`,
      transform: img.style.transform || "", transformOrigin: style.transformOrigin, borderRadius: style.borderRadius,
      imageRendering: style.imageRendering, objectFit: style.objectFit === "fill" ? "contain" : style.objectFit,
    });
  }

  async function show(img) {
    const id = imagetteIdOf(img);
    const existing = canvases.get(img);
    if (!setting || !id) {
      if (existing) existing.hidden = true;
      return;
    }
    const canvas = canvasFor(img);
    place(img, canvas);
    const wanted = `${id}|${JSON.stringify(setting)}`;
    if (canvas.dataset.rendered === wanted && canvas.dataset.imagetteId === id) {
      canvas.hidden = false;
      return;
    }
    if (canvas.dataset.imagetteId !== id) canvas.hidden = true; // never another item's pixels over this one
    if (pending.get(img) === wanted) return;
    pending.set(img, wanted);
    const pixels = await fetchPixels(id);
    if (pending.get(img) === wanted) pending.delete(img);
    if (imagetteIdOf(img) !== id || !setting) return; // moved on meanwhile
    if (!pixels) {
      canvas.hidden = true; // the preview stays
      return;
    }
    const now = JSON.stringify(setting);
    const [lo, hi] = paint(canvas, pixels, setting);
    Object.assign(canvas.dataset, { imagetteId: id, rendered: `${id}|${now}`, low: lo.toFixed(2), high: hi.toFixed(2) });
    canvas.hidden = false;
    if (img === primaryImage()) {
      note.textContent = pixels.isDb ? "" : setting.mode === "db" ? "brightness image (not dB): percentile stretch" : "brightness image (not dB)";
    }
  }

  function showAll() {
    document.querySelectorAll(selector).forEach((img) => { show(img); });
  }

  const resizes = new ResizeObserver((entries) => {
    for (const entry of entries) {
      const canvas = canvases.get(entry.target);
      if (canvas && !canvas.hidden) place(entry.target, canvas);
    }
  });

  // Images that change (a new src, a zoom transform, a class) or arrive (grid cells) while a contrast is set.
  const mutations = new MutationObserver((records) => {
    const touched = new Set();
    for (const record of records) {
      if (record.type === "attributes") {
        if (record.target instanceof HTMLImageElement && record.target.matches(selector)) touched.add(record.target);
      } else {
        for (const node of record.addedNodes) {
          if (!(node instanceof Element)) continue;
          if (node.matches(selector)) touched.add(node);
          node.querySelectorAll(selector).forEach((img) => touched.add(img));
        }
      }
    }
    touched.forEach((img) => { show(img); });
  });

  function observe() {
    mutations.disconnect();
    if (!setting) return;
    mutations.observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ["src", "style", "class"] });
  }

  function apply(next, { store = true } = {}) {
    setting = normalise(next);
    if (store) saveSetting(user, setting);
    note.textContent = "";
    showControls();
    observe();
    if (setting) upcoming.forEach((id) => fetchPixels(id));
    showAll();
  }

  async function act(action) {
    if (action === "reset") {
      apply(null);
      return;
    }
    let base = setting;
    if (!base) {
      const img = primaryImage();
      base = startSetting(img ? await fetchPixels(imagetteIdOf(img)) : null);
    }
    apply(adjust(base, action));
  }

  // Chosen in the controls: a mode (starting from the preview's look), or typed values.
  async function chooseMode(value) {
    if (value === "preview") {
      apply(null);
      return;
    }
    if (setting) {
      apply({ ...setting, mode: value });
      return;
    }
    const img = primaryImage();
    apply(startSetting(img ? await fetchPixels(imagetteIdOf(img)) : null, value));
  }

  function typed() {
    if (!setting) return;
    const key = setting.mode === "db" ? "db" : "pct";
    const win = [Number(low.value), Number(high.value)];
    const g = Number(gamma.value);
    if (!(win[1] > win[0]) || !Number.isFinite(win[0]) || !Number.isFinite(win[1]) || !(g > 0)) {
      showControls(); // not a window (low must stay below high): the values as they were
      return;
    }
    apply({ ...setting, [key]: win, gamma: g });
  }

  mode.addEventListener("change", () => {
    mode.blur(); // the keys go back to the page
    queue = queue.then(() => chooseMode(mode.value));
  });
  for (const input of [low, high, gamma]) {
    input.addEventListener("change", typed);
    input.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" || ev.key === "Escape") {
        ev.preventDefault();
        ev.stopPropagation();
        input.blur(); // leaving the field commits it (change) and gives the keys back to the page
      }
    });
  }
  reset.addEventListener("click", () => {
    reset.blur(); // Enter must not press Reset again
    queue = queue.then(() => act("reset"));
  });

  document.addEventListener("keydown", (ev) => {
    if (ev.ctrlKey || ev.metaKey || ev.altKey || isTyping(ev.target)) return;
    const action = KEYS[ev.key];
    if (!action) return;
    ev.preventDefault();
    queue = queue.then(() => act(action));
  });

  document.addEventListener("cryolabel:upcoming", (ev) => {
    for (const id of (ev.detail && ev.detail.ids) || []) {
      if (!/^\d+$/.test(String(id))) continue;
      upcoming.push(String(id));
      if (setting) fetchPixels(id);
    }
    upcoming.splice(0, Math.max(0, upcoming.length - UPCOMING_KEPT));
  });

  window.addEventListener("storage", (ev) => {
    if (ev.key === storageKey(user)) apply(loadSetting(user), { store: false }); // changed in another tab
  });
  window.addEventListener("resize", showAll);

  apply(setting, { store: false });
  return {
    setting: () => setting,
    set: (next) => apply(next),
    prefetch: (ids) => ids.forEach((id) => fetchPixels(id)),
  };
}

// Every container the page's template put there.
for (const container of document.querySelectorAll("[data-sar-display]")) {
  attachSarDisplay({ container, user: container.dataset.user || "", selector: container.dataset.images || "img[data-sar]" });
}
