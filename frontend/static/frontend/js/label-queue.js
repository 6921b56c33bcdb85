// The labelling page's way through the queue (a module of label.js): the buffer of upcoming imagettes fetched
// from /queue/next/ (images preloaded), every move of the current entry (go: the clock of seconds spent on
// each item, the review of earlier votes, the view), and the moves the keys and buttons make.
import {
  BUFFER_LOW, FETCH_COUNT, RECHECK_EMPTY_MS, api, buffer, current, history, seen, state,
} from "./label-state.js";
import { applySuggestion } from "./label-suggestions.js";
import { hideHint, hint, render, toast, whenEmpty } from "./label-view.js";
import { resetZoom } from "./label-zoom.js";
import { safeUrl } from "./util.js";

// --- entries and the clock (seconds spent on each item) ---------------------------------------
function makeEntry(item) {
  const entry = { item, labels: new Set(), seconds: 0, shownAt: null, vote: null, draft: null, broken: false };
  const img = new Image();
  img.decoding = "async";
  img.onerror = () => { entry.broken = true; if (current() === entry) render(); };
  img.src = safeUrl(item.preview_url);
  if (img.decode) img.decode().catch(() => {});
  // With a contrast set, sar-display.js fetches the item's pixels ahead too.
  document.dispatchEvent(new CustomEvent("cryolabel:upcoming", { detail: { ids: [item.id] } }));
  entry.img = img; // kept so the decoded image stays in memory until it is shown
  applySuggestion(entry);
  return entry;
}

export function stopClock(entry) {
  if (entry && entry.shownAt != null) {
    entry.seconds += (performance.now() - entry.shownAt) / 1000;
    entry.shownAt = null;
  }
}

function startClock(entry) {
  if (entry && entry.shownAt == null && !document.hidden) entry.shownAt = performance.now();
}

// Every move of "current" goes through here: the clock, any unsaved draft, the zoom, the view.
export function go(change) {
  const before = current();
  stopClock(before);
  change();
  const after = current();
  if (before && before !== after) before.draft = null; // leaving a review without Enter discards it
  if (after && state.review >= 0 && !after.draft) after.draft = new Set(after.labels);
  if (before !== after) resetZoom();
  startClock(after);
  render();
  refillIfLow();
}

document.addEventListener("visibilitychange", () => {
  if (document.hidden) stopClock(current());
  else startClock(current());
});

// --- the queue buffer --------------------------------------------------------------------------
let refillTimer = null;
export function refillIfLow() {
  if (state.fetching || buffer.length >= BUFFER_LOW || state.saturated) return;
  const wait = (state.exhausted ? (buffer.length ? RECHECK_EMPTY_MS : 2000) : 0) - (Date.now() - state.lastFetch);
  if (wait > 0) {
    if (!buffer.length && !refillTimer) refillTimer = setTimeout(() => { refillTimer = null; refillIfLow(); }, wait);
    return;
  }
  refill();
}

export function refill() {
  if (state.fetching) return state.fetching;
  const fetching = (async () => {
    const res = await api("GET", `/queue/next/?count=${FETCH_COUNT}${state.suggestionsOn ? "&suggestions=1" : ""}`);
    state.lastFetch = Date.now();
    if (!res.ok || !Array.isArray(res.data)) {
      toast(`Could not load imagettes (${res.data.detail || res.status}); trying again…`);
      setTimeout(refillIfLow, 5000);
      return;
    }
    let fresh = 0;
    for (const item of res.data) {
      if (seen.has(item.id)) { // held for us and already here (or voted, its vote in flight)
        const held = item.prediction !== undefined && buffer.find((e) => e.item.id === item.id);
        if (held) {
          held.item.prediction = item.prediction;
          applySuggestion(held);
        }
        continue;
      }
      seen.add(item.id);
      buffer.push(makeEntry(item));
      fresh += 1;
    }
    // Fewer than asked: the server had nothing more. A full answer with nothing new means we hold
    // too many (unsent votes keep their items held): not the end of the queue; ask again once a
    // vote has gone through.
    state.exhausted = res.data.length < FETCH_COUNT;
    state.saturated = !state.exhausted && fresh === 0;
  })();
  state.fetching = fetching;
  fetching.finally(() => {
    state.fetching = null;
    const wasLoaded = state.loadedOnce;
    state.loadedOnce = true;
    if (!wasLoaded || buffer.length) {
      // The buffer was empty (first load, or the annotator caught up): show what came in.
      if (state.review < 0 && state.index >= buffer.length) state.index = 0;
      go(() => {});
    } else {
      render();
    }
  });
  return fetching;
}

let emptyTimer = null;
function scheduleEmptyCheck() {
  if (emptyTimer) return;
  emptyTimer = setTimeout(() => { emptyTimer = null; if (!buffer.length) refill(); }, RECHECK_EMPTY_MS);
}
whenEmpty(scheduleEmptyCheck);

// --- navigation ----------------------------------------------------------------------------------
export function back() {
  if (!history.length) {
    hint("No earlier vote in this session yet.");
    return;
  }
  hideHint();
  go(() => { state.review = state.review < 0 ? history.length - 1 : Math.max(0, state.review - 1); });
}

export function forward() {
  if (state.review >= 0) {
    go(() => { state.review = state.review + 1 < history.length ? state.review + 1 : -1; });
  } else if (state.index + 1 < buffer.length) {
    go(() => { state.index += 1; });
  }
}

export function left() {
  if (state.review >= 0 || state.index === 0) back();
  else go(() => { state.index -= 1; });
}

export function setView(next) {
  state.view = next;
  render();
}

// Makes the buffered imagette with this id the current one (a click in the grid).
export function pick(id) {
  const i = buffer.findIndex((e) => e.item.id === id);
  if (i >= 0) go(() => { state.review = -1; state.index = i; });
}
