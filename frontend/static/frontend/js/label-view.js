// What the labelling page shows (a module of label.js): render() brings the whole page to the state (the large
// image or the grid, the classes, the mode line, the sync badge, the counts), and the hint and toast messages.
import {
  BUFFER_LOW, GRID_SIZE, buffer, classBySlug, classes, current, failed, grid, history, image, root, shownLabels,
  sortedSlugs, state, viewer,
} from "./label-state.js";
import { renderStats } from "./label-stats.js";
import { predictionText } from "./label-suggestions.js";
import { $, fmtLatLon, fmtUtc as fmtTime, safeUrl, sameSet } from "./util.js";

// What render() calls when nothing is left to show; label-queue.js sets it (it asks the server again later).
let onEmpty = () => {};
export function whenEmpty(fn) {
  onEmpty = fn;
}

// --- rendering ----------------------------------------------------------------------------------------
export function render() {
  const entry = current();
  const empty = state.loadedOnce && !entry && !state.fetching;
  const shown = entry ? "ready" : empty ? "empty" : "loading";
  root.dataset.state = shown;
  root.dataset.view = state.view;
  root.dataset.mode = state.review >= 0 ? "review" : "queue";
  $("empty-state").hidden = shown !== "empty";
  viewer.hidden = shown === "empty" || state.view !== "single";
  grid.hidden = shown === "empty" || state.view !== "grid";
  $("view-toggle").setAttribute("aria-pressed", String(state.view === "grid"));
  $("review-banner").hidden = state.review < 0;
  if (shown === "empty") onEmpty();

  // The large image.
  const id = entry ? String(entry.item.id) : "";
  if (image.dataset.imagetteId !== id) {
    if (entry) image.src = safeUrl(entry.item.preview_url);
    else image.removeAttribute("src");
    image.dataset.imagetteId = id;
    image.alt = entry ? `Imagette ${id}` : "";
  }
  const note = $("viewer-note");
  note.hidden = !(shown === "loading" || (entry && entry.broken));
  note.textContent = shown === "loading" ? "Loading…" : "This imagette's preview could not be loaded. Press → to skip it.";

  // The classes.
  const labels = entry ? shownLabels(entry) : new Set();
  for (const c of classes) {
    c.button.setAttribute("aria-pressed", String(labels.has(c.slug)));
    c.button.disabled = !entry;
  }
  $("submit-button").disabled = !entry;
  $("submit-button").textContent = "";
  $("submit-button").append(state.review >= 0 ? "Save & go on " : "Submit ", kbd("Enter"));
  $("back-button").disabled = !history.length || state.review === 0;

  renderInfo(entry);
  renderSuggestion(entry);
  renderMode();
  if (state.view === "grid" && shown !== "empty") renderGrid();
  renderSync();
  renderStats();
}

function kbd(text) {
  const k = document.createElement("kbd");
  k.textContent = text;
  return k;
}

function renderInfo(entry) {
  const info = $("item-info");
  if (!entry) {
    info.textContent = root.dataset.state === "empty" ? "" : "Loading…";
    return;
  }
  const it = entry.item;
  const parts = [`#${it.id}`, it.swath, fmtTime(it.acquisition_time), fmtLatLon(it.center_lat, it.center_lon),
    it.incidence_angle != null ? `incidence ${Number(it.incidence_angle).toFixed(1)}°` : "",
    `${it.width}×${it.height} px`, it.is_db ? "" : "8-bit PNG (not calibrated)"];
  info.textContent = parts.filter(Boolean).join(" · ");
}

function renderSuggestion(entry) {
  const badge = $("suggestion-badge");
  const prediction = state.suggestionsOn && entry && state.view === "single" ? entry.item.prediction : null;
  badge.hidden = !prediction;
  badge.textContent = prediction ? `Model v${prediction.model_version}: ${predictionText(prediction)}` : "";
  badge.title = prediction ? "The model's prediction, pre-selected for you: change the classes if you disagree" : "";
  root.dataset.suggestions = state.suggestionsOn ? "on" : "off";
}

export function renderMode() {
  const line = $("mode-line");
  const entry = current();
  if (!entry) {
    line.textContent = "\u00a0";
    return;
  }
  if (state.review >= 0) {
    const stepsBack = history.length - state.review;
    const states = { sending: "saving…", saved: "saved", failed: "not sent yet", refused: "not taken" };
    let text = `Your vote ${stepsBack} back · ${states[entry.vote.state] || ""}`;
    if (entry.vote.state === "refused") text += ` (${entry.vote.error})`;
    else if (entry.draft && !sameSet(entry.draft, entry.labels)) text += " · changed: Enter saves";
    line.textContent = text;
    line.className = "mode-line review";
  } else {
    const upcoming = buffer.length - 1;
    line.textContent = `New imagette · ${upcoming} more loaded${state.exhausted && upcoming < BUFFER_LOW ? " (end of queue)" : ""}`;
    line.className = "mode-line";
  }
}

const cells = new Map(); // imagette id -> grid cell, reused between renders
function renderGrid() {
  let shown;
  let active;
  if (state.review >= 0) {
    shown = [history[state.review], ...buffer.slice(0, GRID_SIZE - 1)];
    active = 0;
  } else {
    const start = state.index < GRID_SIZE ? 0 : state.index - GRID_SIZE + 1;
    shown = buffer.slice(start, start + GRID_SIZE);
    active = state.index - start;
  }
  const keep = new Set(shown.map((e) => e.item.id));
  for (const [id, cell] of cells) if (!keep.has(id)) { cell.remove(); cells.delete(id); }
  shown.forEach((entry, i) => {
    let cell = cells.get(entry.item.id);
    if (!cell) {
      cell = document.createElement("button");
      cell.type = "button";
      cell.className = "thumb";
      cell.dataset.imagetteId = entry.item.id;
      const img = document.createElement("img");
      img.src = safeUrl(entry.item.preview_url);
      img.alt = `Imagette ${entry.item.id}`;
      img.draggable = false;
      const caption = document.createElement("span");
      caption.className = "thumb-caption";
      const dots = document.createElement("span");
      dots.className = "thumb-labels";
      const badge = document.createElement("span");
      badge.className = "pred-badge on-thumb";
      cell.append(img, caption, dots, badge);
      cells.set(entry.item.id, cell);
    }
    const isCurrent = i === active;
    cell.classList.toggle("current", isCurrent);
    cell.classList.toggle("voted", !!entry.vote);
    if (isCurrent) cell.setAttribute("aria-current", "true");
    else cell.removeAttribute("aria-current");
    cell.querySelector(".thumb-caption").textContent = `#${entry.item.id}${entry.vote ? " · your vote" : ""}`;
    const badge = cell.querySelector(".pred-badge");
    const prediction = state.suggestionsOn ? entry.item.prediction : null;
    badge.hidden = !prediction;
    badge.textContent = prediction ? predictionText(prediction) : "";
    const dots = cell.querySelector(".thumb-labels");
    dots.textContent = "";
    for (const slug of sortedSlugs(shownLabels(entry))) {
      const c = classBySlug.get(slug);
      const dot = document.createElement("span");
      dot.className = "dot";
      dot.style.background = c.color;
      dot.title = c.name;
      dot.textContent = c.key;
      dots.append(dot);
    }
    if (grid.children[i] !== cell) grid.insertBefore(cell, grid.children[i] || null);
  });
}

export function renderSync() {
  const el = $("sync");
  const nFailed = failed().length;
  el.dataset.pending = String(state.inflight);
  el.dataset.failed = String(nFailed);
  el.className = "sync" + (nFailed ? " bad" : state.inflight ? " busy" : "");
  el.textContent = nFailed ? `${nFailed} unsent` : state.inflight ? "saving…" : "saved";
}

// --- hint and toast -------------------------------------------------------------------------------
let hintTimer = null;
export function hint(text) {
  const el = $("hint");
  el.textContent = text;
  el.hidden = false;
  el.classList.remove("shake");
  void el.offsetWidth; // restart the animation
  el.classList.add("shake");
  clearTimeout(hintTimer);
  hintTimer = setTimeout(hideHint, 3000);
}

export function hideHint() {
  $("hint").hidden = true;
}

export const toastEl = $("toast");
let toastTimer = null;
export function toast(text, { retry = false, timeout = 4000 } = {}) {
  if (!retry && !toastEl.hidden && toastEl.dataset.kind === "failure") return; // keep the failure in view
  $("toast-text").textContent = text;
  $("toast-retry").hidden = !retry;
  toastEl.dataset.kind = retry ? "failure" : "info";
  toastEl.hidden = false;
  clearTimeout(toastTimer);
  if (timeout) toastTimer = setTimeout(hideToast, timeout);
}

export function hideToast() {
  toastEl.hidden = true;
  toastEl.dataset.kind = "";
}
