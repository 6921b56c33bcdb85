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
//
// The setting (sar-contrast.js) and the pixels (sar-pixels.js) live beside this module; it exports their API too.
import {
  GAMMA_RANGE, KEY_HELP, KEYS, adjust, loadSetting, normalise, saveSetting, startSetting, storageKey,
} from "./sar-contrast.js";
import { fetchPixels, paint } from "./sar-pixels.js";
import { isTyping } from "./util.js";

export {
  DEFAULT_PERCENTILES, KEY_HELP, KEYS, adjust, loadSetting, normalise, saveSetting, startSetting, storageKey,
} from "./sar-contrast.js";
export { fetchPixels, float16Table, paint, percentiles, windowFor } from "./sar-pixels.js";

const UPCOMING_KEPT = 20;
const PREVIEW_ID = /\/api\/v1\/imagettes\/(\d+)\/preview\/?(?:[?#]|$)/;

// --- the page -------------------------------------------------------------------------------------------
function imagetteIdOf(img) {
  const match = PREVIEW_ID.exec(img.getAttribute("src") || "");
  return match ? match[1] : null;
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
