// Labelling page: built for speed at the keyboard.
//
// The annotator works through a buffer of upcoming imagettes fetched from /queue/next/ (images
// preloaded), toggles classes with 1-9 and 0, and submits with Enter. Votes are sent in the
// background (optimistic): the next image is on screen at once, failures are kept with their
// labels and retried. Backspace goes back through this session's votes; Enter there amends one.
// Blind voting: nothing here ever asks for, or shows, anyone else's votes or a consensus. The model's
// prediction is shown (and its classes pre-selected) only when the annotator turns "Show model suggestions" on;
// the setting is off by default and remembered per user in this browser.
import { api as request } from "./api.js";
import { fmtLatLon, fmtUtc as fmtTime, safeUrl } from "./util.js";

(function () {
  "use strict";

  const API = "/api/v1";
  const FETCH_COUNT = 10; // the most /queue/next/ gives; the items held for us come back first
  const BUFFER_LOW = 6; // refill below this many upcoming items (also the grid's size)
  const GRID_SIZE = 6;
  const PACE_WINDOW_MS = 10 * 60 * 1000; // the server's pace window (annotator_stats)
  const RECONCILE_EVERY = 25; // votes between stats reconciliations (and at most every minute)
  const RECHECK_EMPTY_MS = 30000;
  const MAX_ZOOM = 16;

  const $ = (id) => document.getElementById(id);
  const root = $("labeller");
  const viewer = $("viewer");
  const image = $("current-image");
  const grid = $("grid");
  const classButtons = Array.from(document.querySelectorAll(".class-button"));
  const classes = classButtons.map((b) => ({
    slug: b.dataset.slug, key: b.dataset.key, name: b.querySelector(".name").textContent,
    color: b.style.getPropertyValue("--c").trim(), description: b.title, button: b,
  }));
  const classByKey = new Map(classes.map((c) => [c.key, c]));
  const classBySlug = new Map(classes.map((c) => [c.slug, c]));
  const suggestionsToggle = $("suggestions-toggle");
  const SUGGESTIONS_KEY = `cryolabel.suggestions.${root.dataset.user || ""}`;
  let suggestionsOn = false;
  try {
    suggestionsOn = localStorage.getItem(SUGGESTIONS_KEY) === "1";
  } catch (err) { /* storage refused (private mode): the default, off */ }
  suggestionsToggle.checked = suggestionsOn;

  // --- state ---------------------------------------------------------------------------------
  // An entry is one imagette on this page: {item, labels: Set, seconds, shownAt, img, vote, draft}.
  // vote (once submitted): {id, saved: Set | null, state: "sending" | "saved" | "failed" | "refused",
  // error, tries}. draft: the labels being edited while reviewing an earlier vote.
  const seen = new Set(); // every imagette id ever taken into the buffer: /queue/next/ repeats held ones
  const buffer = []; // upcoming entries, not voted yet
  let index = 0; // the current entry in the buffer (when not reviewing)
  const history = []; // this session's voted entries, oldest first
  let review = -1; // index into history while reviewing an earlier vote, else -1
  let view = "single";
  let fetching = null;
  let exhausted = false; // the last /queue/next/ gave fewer than asked: nothing more there for now
  let saturated = false; // it gave only items we already hold (unsent votes keep theirs held)
  let lastFetch = 0;
  let loadedOnce = false;
  let inflight = 0;
  let sendSeq = 0; // bumped by every send, so a stats reconciliation can tell it raced one
  const stats = { total: null, today: null, times: [], serverPace: null, sinceReconcile: 0, lastReconcile: 0 };

  function current() {
    return review >= 0 ? history[review] : buffer[index];
  }

  function shownLabels(entry) {
    return entry.draft || entry.labels;
  }

  // --- helpers ---------------------------------------------------------------------------------
  // The shared client (api.js) on the API root; an answer without a JSON body reads as {} here.
  async function api(method, path, body) {
    const res = await request(API + path, { method, body });
    return { ...res, data: res.data || {} };
  }

  function sortedSlugs(set) {
    return classes.filter((c) => set.has(c.slug)).map((c) => c.slug);
  }

  function sameSet(a, b) {
    if (!a || !b || a.size !== b.size) return false;
    for (const x of a) if (!b.has(x)) return false;
    return true;
  }

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

  // --- model suggestions (opt-in) ------------------------------------------------------------------
  function suggestedSlugs(prediction) {
    if (!prediction) return [];
    return prediction.classes && prediction.classes.length ? prediction.classes : [prediction.top1].filter(Boolean);
  }

  // Pre-selects the predicted classes once per item, and only on an item the annotator has not touched.
  function applySuggestion(entry) {
    if (!suggestionsOn || entry.vote || entry.suggested || !entry.item.prediction) return;
    entry.suggested = new Set(suggestedSlugs(entry.item.prediction).filter((slug) => classBySlug.has(slug)));
    if (!entry.labels.size) entry.suggested.forEach((slug) => entry.labels.add(slug));
  }

  function setSuggestions(on) {
    suggestionsOn = on;
    try {
      localStorage.setItem(SUGGESTIONS_KEY, on ? "1" : "0");
    } catch (err) { /* kept for this page only */ }
    if (on) {
      buffer.forEach(applySuggestion);
      // Items loaded before came without their prediction: the same held items come back with it.
      saturated = false;
      (fetching || Promise.resolve()).then(() => refill());
    } else {
      // Untouched pre-selections go; what the annotator chose stays.
      for (const entry of buffer) {
        if (entry.suggested && sameSet(entry.labels, entry.suggested)) entry.labels.clear();
        entry.suggested = null;
      }
    }
    render();
  }

  function predictionText(prediction) {
    const names = suggestedSlugs(prediction).map((slug) => (classBySlug.get(slug) || { name: slug }).name);
    return `${names.join(", ")} · ${Math.round(prediction.confidence * 100)}%`;
  }

  function stopClock(entry) {
    if (entry && entry.shownAt != null) {
      entry.seconds += (performance.now() - entry.shownAt) / 1000;
      entry.shownAt = null;
    }
  }

  function startClock(entry) {
    if (entry && entry.shownAt == null && !document.hidden) entry.shownAt = performance.now();
  }

  // Every move of "current" goes through here: the clock, any unsaved draft, the zoom, the view.
  function go(change) {
    const before = current();
    stopClock(before);
    change();
    const after = current();
    if (before && before !== after) before.draft = null; // leaving a review without Enter discards it
    if (after && review >= 0 && !after.draft) after.draft = new Set(after.labels);
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
  function refillIfLow() {
    if (fetching || buffer.length >= BUFFER_LOW || saturated) return;
    const wait = (exhausted ? (buffer.length ? RECHECK_EMPTY_MS : 2000) : 0) - (Date.now() - lastFetch);
    if (wait > 0) {
      if (!buffer.length && !refillTimer) refillTimer = setTimeout(() => { refillTimer = null; refillIfLow(); }, wait);
      return;
    }
    refill();
  }

  function refill() {
    if (fetching) return fetching;
    fetching = (async () => {
      const res = await api("GET", `/queue/next/?count=${FETCH_COUNT}${suggestionsOn ? "&suggestions=1" : ""}`);
      lastFetch = Date.now();
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
      exhausted = res.data.length < FETCH_COUNT;
      saturated = !exhausted && fresh === 0;
    })();
    fetching.finally(() => {
      fetching = null;
      const wasLoaded = loadedOnce;
      loadedOnce = true;
      if (!wasLoaded || buffer.length) {
        // The buffer was empty (first load, or the annotator caught up): show what came in.
        if (review < 0 && index >= buffer.length) index = 0;
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

  // --- voting ------------------------------------------------------------------------------------
  function toggle(slug) {
    const entry = current();
    if (!entry) return;
    if (entry.vote && entry.vote.state === "refused") {
      hint("This vote was not taken, so it cannot be changed.");
      return;
    }
    const set = shownLabels(entry);
    if (set.has(slug)) set.delete(slug);
    else set.add(slug);
    hideHint();
    render();
  }

  function clearLabels() {
    const entry = current();
    if (!entry) return;
    shownLabels(entry).clear();
    render();
  }

  function submit() {
    const entry = current();
    if (!entry) return;
    if (review >= 0) {
      amend(entry);
      return;
    }
    if (!entry.labels.size) {
      hint("Pick at least one class first (keys 1–9 and 0), then Enter.");
      return;
    }
    hideHint();
    go(() => {
      stopClock(entry);
      buffer.splice(index, 1);
      if (index >= buffer.length) index = 0;
      entry.vote = { id: null, saved: null, state: "sending", error: "", tries: 0 };
      entry.img = null; // the browser's cache has it, should Backspace come back to it
      history.push(entry);
      trimHistory();
      countVote(+1);
    });
    send(entry);
  }

  function amend(entry) {
    const draft = entry.draft;
    if (!draft || !draft.size) {
      hint("A vote needs at least one class. Pick one, or press → to leave it as it was.");
      return;
    }
    hideHint();
    const changed = !sameSet(draft, entry.labels);
    const refused = entry.vote.state === "refused";
    if (changed && !refused) {
      entry.labels = new Set(draft);
      send(entry);
      toast("Vote changed.", { timeout: 1500 });
    }
    forward();
  }

  function trimHistory() {
    // Thousands a day: keep the last few hundred for Backspace, never one still on its way.
    while (history.length > 300 && review < 0 && ["saved", "refused"].includes(history[0].vote.state)) {
      history.shift();
    }
  }

  // Runs the entry's sends one after the other; each one brings the server to entry.labels.
  function send(entry) {
    inflight += 1;
    sendSeq += 1;
    renderSync();
    entry.chain = (entry.chain || Promise.resolve())
      .then(() => sync(entry))
      .catch((err) => {
        entry.vote.state = "failed";
        entry.vote.error = String(err);
        scheduleRetry();
      })
      .finally(() => {
        inflight -= 1;
        afterSend();
      });
  }

  async function sync(entry) {
    const vote = entry.vote;
    if (vote.state === "refused") return;
    for (let round = 0; round < 3; round += 1) {
      const labels = new Set(entry.labels);
      if (vote.id != null && sameSet(vote.saved, labels)) break;
      vote.state = "sending";
      vote.tries += 1;
      const res = vote.id == null
        ? await api("POST", "/votes/", {
          imagette: entry.item.id, labels: sortedSlugs(labels), seconds: Math.round(entry.seconds * 10) / 10,
          suggested: Boolean(entry.suggested), // the model's classes were pre-selected: not a blind vote
        })
        : await api("PATCH", `/votes/${vote.id}/`, { labels: sortedSlugs(labels) });
      if (res.ok) {
        vote.id = res.data.id;
        vote.saved = new Set(res.data.labels);
        vote.state = "saved";
        vote.error = "";
        continue; // the labels may have changed meanwhile
      }
      if (res.status === 409 && vote.id == null && /already voted/i.test(res.data.detail || "")) {
        // Our earlier try got through but its answer was lost: find that vote and amend it if needed.
        const found = await findOwnVote(entry.item.id);
        if (found) {
          vote.id = found.id;
          vote.saved = new Set(found.labels);
          vote.state = "saved";
          continue;
        }
      }
      const permanent = [400, 404, 409].includes(res.status);
      vote.error = res.data.detail || firstError(res.data) || `error ${res.status}`;
      if (permanent && vote.id == null) {
        // Not taken (the item has its votes already, or is gone): nothing to retry.
        vote.state = "refused";
        countVote(-1);
        toast(`Imagette #${entry.item.id}: ${vote.error}. Your vote on it was not needed.`, { timeout: 6000 });
      } else if (permanent) {
        // The change was refused; the vote stands as it was.
        entry.labels = new Set(vote.saved);
        vote.state = "saved";
        toast(`Imagette #${entry.item.id}: could not change the vote (${vote.error}).`, { timeout: 6000 });
      } else {
        vote.state = "failed";
        if (res.status === 401 || res.status === 403) vote.error = "you seem to be logged out; log in again, then retry";
        scheduleRetry();
      }
      return;
    }
  }

  function firstError(data) {
    for (const [field, value] of Object.entries(data || {})) {
      return `${field}: ${Array.isArray(value) ? value.join(" ") : value}`;
    }
    return "";
  }

  async function findOwnVote(imagetteId) {
    const res = await api("GET", "/votes/?limit=100");
    if (!res.ok) return null;
    return (res.data.results || []).find((v) => v.imagette === imagetteId) || null;
  }

  function failed() {
    return history.filter((e) => e.vote.state === "failed");
  }

  let retryTimer = null;
  let retryDelay = 4000;
  function scheduleRetry() {
    if (retryTimer) return;
    retryTimer = setTimeout(() => { retryTimer = null; retryAll(true); }, retryDelay);
    retryDelay = Math.min(retryDelay * 2, 60000);
  }

  function retryAll(automatic) {
    const todo = failed();
    if (!todo.length) return;
    if (!automatic) retryDelay = 4000;
    todo.forEach((entry) => { entry.vote.state = "sending"; send(entry); });
  }

  function afterSend() {
    const todo = failed();
    if (todo.length) {
      const last = todo[todo.length - 1].vote.error;
      toast(`${todo.length} vote${todo.length > 1 ? "s" : ""} not sent yet (${last}). Kept here with your labels.`,
        { retry: true, timeout: 0 });
    } else {
      retryDelay = 4000;
      if (toastEl.dataset.kind === "failure") hideToast();
      maybeReconcile();
    }
    saturated = false;
    renderSync();
    if (review >= 0) renderMode();
    refillIfLow(); // sent votes free their held items: room for new ones
  }

  window.addEventListener("beforeunload", (ev) => {
    if (inflight || failed().length) {
      ev.preventDefault();
      ev.returnValue = "Some votes are not saved yet.";
    }
  });

  // --- your count and pace -------------------------------------------------------------------------
  function countVote(delta) {
    if (stats.total != null) stats.total += delta;
    if (stats.today != null) stats.today += delta;
    if (delta > 0) stats.times.push(Date.now());
    else stats.times.pop();
    stats.serverPace = null;
    stats.sinceReconcile += 1;
    renderStats();
  }

  function pace() {
    const now = Date.now();
    stats.times = stats.times.filter((t) => now - t <= PACE_WINDOW_MS);
    if (stats.serverPace != null) return stats.serverPace;
    if (!stats.times.length) return 0;
    const minutes = Math.max((now - stats.times[0]) / 60000, 1 / 6); // as annotator_stats counts it
    return Math.round((stats.times.length / minutes) * 10) / 10;
  }

  async function reconcile() {
    stats.lastReconcile = Date.now();
    stats.sinceReconcile = 0;
    const seq = sendSeq;
    const busy = inflight;
    const res = await api("GET", "/votes/?limit=100");
    if (!res.ok || !res.data.stats) {
      if (stats.total == null) setTimeout(reconcile, 5000);
      return;
    }
    if (busy || inflight || seq !== sendSeq) {
      // A vote on its way may or may not be in the server's count: ask again when all is quiet.
      if (stats.total != null) return; // the next periodic one will do
      setTimeout(reconcile, 1000);
      // Nothing shown yet: the server's count plus the votes not confirmed yet, fixed on the next try.
      const pending = history.filter((e) => e.vote.state !== "saved" && e.vote.state !== "refused").length;
      stats.total = res.data.stats.total + pending;
      stats.today = res.data.stats.today + pending;
      renderStats();
      return;
    }
    const unsent = failed().length; // counted here, not yet there
    stats.total = res.data.stats.total + unsent;
    stats.today = res.data.stats.today + unsent;
    const now = Date.now();
    const times = (res.data.results || []).map((v) => Date.parse(v.created_at))
      .filter((t) => now - t <= PACE_WINDOW_MS).sort((a, b) => a - b);
    stats.times = times;
    // More recent votes than this page fetched: the server's pace is the right one.
    stats.serverPace = res.data.stats.recent > times.length ? res.data.stats.per_minute : null;
    renderStats();
  }

  function maybeReconcile() {
    if (inflight) return;
    if (stats.sinceReconcile >= RECONCILE_EVERY
        || (stats.sinceReconcile > 0 && Date.now() - stats.lastReconcile > 60000)) {
      reconcile();
    }
  }

  setInterval(() => { renderStats(); maybeReconcile(); }, 15000);

  // --- zoom and pan ------------------------------------------------------------------------------------
  const zoom = { s: 1, x: 0, y: 0 };

  // Along one axis: the viewer's size, the image's offset and size in it when fitted (scale 1).
  // Larger than the viewer: pan no further than its edges; smaller: keep it centred.
  function clampAxis(t, view, offset, size) {
    const s = zoom.s;
    if (s * size <= view) return (view - s * size) / 2 - s * offset;
    return Math.min(-s * offset, Math.max(view - s * (offset + size), t));
  }

  function applyZoom() {
    const w = viewer.clientWidth;
    const h = viewer.clientHeight;
    const entry = current();
    const nw = image.naturalWidth || (entry ? entry.item.width : 0) || w;
    const nh = image.naturalHeight || (entry ? entry.item.height : 0) || h;
    const fit = Math.min(w / nw, h / nh) || 1;
    zoom.x = clampAxis(zoom.x, w, (w - nw * fit) / 2, nw * fit);
    zoom.y = clampAxis(zoom.y, h, (h - nh * fit) / 2, nh * fit);
    image.style.transform = `translate(${zoom.x}px, ${zoom.y}px) scale(${zoom.s})`;
    viewer.classList.toggle("zoomed", zoom.s > 1.001);
    $("zoom-level").textContent = Math.round(zoom.s * 100) + "%";
  }

  function zoomAt(factor, cx, cy) {
    const s = Math.min(MAX_ZOOM, Math.max(1, zoom.s * factor));
    const f = s / zoom.s;
    zoom.x = cx - f * (cx - zoom.x);
    zoom.y = cy - f * (cy - zoom.y);
    zoom.s = s;
    applyZoom();
  }

  function zoomCentre(factor) {
    zoomAt(factor, viewer.clientWidth / 2, viewer.clientHeight / 2);
  }

  function resetZoom() {
    zoom.s = 1;
    zoom.x = 0;
    zoom.y = 0;
    applyZoom();
  }
  image.addEventListener("load", applyZoom);

  viewer.addEventListener("wheel", (ev) => {
    ev.preventDefault();
    const r = viewer.getBoundingClientRect();
    const dy = ev.deltaMode === 1 ? ev.deltaY * 16 : ev.deltaY;
    zoomAt(Math.exp(-dy * 0.0015), ev.clientX - r.left, ev.clientY - r.top);
  }, { passive: false });

  let drag = null;
  viewer.addEventListener("pointerdown", (ev) => {
    if (ev.button !== 0 || zoom.s <= 1.001) return;
    drag = { id: ev.pointerId, x: ev.clientX, y: ev.clientY };
    viewer.setPointerCapture(ev.pointerId);
    viewer.classList.add("dragging");
  });
  viewer.addEventListener("pointermove", (ev) => {
    if (!drag || ev.pointerId !== drag.id) return;
    zoom.x += ev.clientX - drag.x;
    zoom.y += ev.clientY - drag.y;
    drag.x = ev.clientX;
    drag.y = ev.clientY;
    applyZoom();
  });
  const endDrag = (ev) => {
    if (!drag || ev.pointerId !== drag.id) return;
    drag = null;
    viewer.classList.remove("dragging");
  };
  viewer.addEventListener("pointerup", endDrag);
  viewer.addEventListener("pointercancel", endDrag);
  viewer.addEventListener("dblclick", resetZoom);
  window.addEventListener("resize", applyZoom);

  // --- navigation ----------------------------------------------------------------------------------
  function back() {
    if (!history.length) {
      hint("No earlier vote in this session yet.");
      return;
    }
    hideHint();
    go(() => { review = review < 0 ? history.length - 1 : Math.max(0, review - 1); });
  }

  function forward() {
    if (review >= 0) {
      go(() => { review = review + 1 < history.length ? review + 1 : -1; });
    } else if (index + 1 < buffer.length) {
      go(() => { index += 1; });
    }
  }

  function left() {
    if (review >= 0 || index === 0) back();
    else go(() => { index -= 1; });
  }

  function setView(next) {
    view = next;
    render();
  }

  // --- rendering ----------------------------------------------------------------------------------------
  function render() {
    const entry = current();
    const empty = loadedOnce && !entry && !fetching;
    const state = entry ? "ready" : empty ? "empty" : "loading";
    root.dataset.state = state;
    root.dataset.view = view;
    root.dataset.mode = review >= 0 ? "review" : "queue";
    $("empty-state").hidden = state !== "empty";
    viewer.hidden = state === "empty" || view !== "single";
    grid.hidden = state === "empty" || view !== "grid";
    $("view-toggle").setAttribute("aria-pressed", String(view === "grid"));
    $("review-banner").hidden = review < 0;
    if (state === "empty") scheduleEmptyCheck();

    // The large image.
    const id = entry ? String(entry.item.id) : "";
    if (image.dataset.imagetteId !== id) {
      if (entry) image.src = safeUrl(entry.item.preview_url);
      else image.removeAttribute("src");
      image.dataset.imagetteId = id;
      image.alt = entry ? `Imagette ${id}` : "";
    }
    const note = $("viewer-note");
    note.hidden = !(state === "loading" || (entry && entry.broken));
    note.textContent = state === "loading" ? "Loading…" : "This imagette's preview could not be loaded. Press → to skip it.";

    // The classes.
    const labels = entry ? shownLabels(entry) : new Set();
    for (const c of classes) {
      c.button.setAttribute("aria-pressed", String(labels.has(c.slug)));
      c.button.disabled = !entry;
    }
    $("submit-button").disabled = !entry;
    $("submit-button").textContent = "";
    $("submit-button").append(review >= 0 ? "Save & go on " : "Submit ", kbd("Enter"));
    $("back-button").disabled = !history.length || review === 0;

    renderInfo(entry);
    renderSuggestion(entry);
    renderMode();
    if (view === "grid" && state !== "empty") renderGrid();
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
    const prediction = suggestionsOn && entry && view === "single" ? entry.item.prediction : null;
    badge.hidden = !prediction;
    badge.textContent = prediction ? `Model v${prediction.model_version}: ${predictionText(prediction)}` : "";
    badge.title = prediction ? "The model's prediction, pre-selected for you: change the classes if you disagree" : "";
    root.dataset.suggestions = suggestionsOn ? "on" : "off";
  }

  function renderMode() {
    const line = $("mode-line");
    const entry = current();
    if (!entry) {
      line.textContent = "\u00a0";
      return;
    }
    if (review >= 0) {
      const stepsBack = history.length - review;
      const states = { sending: "saving…", saved: "saved", failed: "not sent yet", refused: "not taken" };
      let text = `Your vote ${stepsBack} back · ${states[entry.vote.state] || ""}`;
      if (entry.vote.state === "refused") text += ` (${entry.vote.error})`;
      else if (entry.draft && !sameSet(entry.draft, entry.labels)) text += " · changed: Enter saves";
      line.textContent = text;
      line.className = "mode-line review";
    } else {
      const upcoming = buffer.length - 1;
      line.textContent = `New imagette · ${upcoming} more loaded${exhausted && upcoming < BUFFER_LOW ? " (end of queue)" : ""}`;
      line.className = "mode-line";
    }
  }

  const cells = new Map(); // imagette id -> grid cell, reused between renders
  function renderGrid() {
    let shown;
    let active;
    if (review >= 0) {
      shown = [history[review], ...buffer.slice(0, GRID_SIZE - 1)];
      active = 0;
    } else {
      const start = index < GRID_SIZE ? 0 : index - GRID_SIZE + 1;
      shown = buffer.slice(start, start + GRID_SIZE);
      active = index - start;
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
      const prediction = suggestionsOn ? entry.item.prediction : null;
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

  function renderSync() {
    const el = $("sync");
    const nFailed = failed().length;
    el.dataset.pending = String(inflight);
    el.dataset.failed = String(nFailed);
    el.className = "sync" + (nFailed ? " bad" : inflight ? " busy" : "");
    el.textContent = nFailed ? `${nFailed} unsent` : inflight ? "saving…" : "saved";
  }

  function renderStats() {
    $("count-total").textContent = stats.total == null ? "–" : String(stats.total);
    $("count-today").textContent = stats.today == null ? "–" : String(stats.today);
    $("pace").textContent = stats.total == null ? "–" : pace().toFixed(1);
  }

  // --- hint and toast -------------------------------------------------------------------------------
  let hintTimer = null;
  function hint(text) {
    const el = $("hint");
    el.textContent = text;
    el.hidden = false;
    el.classList.remove("shake");
    void el.offsetWidth; // restart the animation
    el.classList.add("shake");
    clearTimeout(hintTimer);
    hintTimer = setTimeout(hideHint, 3000);
  }

  function hideHint() {
    $("hint").hidden = true;
  }

  const toastEl = $("toast");
  let toastTimer = null;
  function toast(text, { retry = false, timeout = 4000 } = {}) {
    if (!retry && !toastEl.hidden && toastEl.dataset.kind === "failure") return; // keep the failure in view
    $("toast-text").textContent = text;
    $("toast-retry").hidden = !retry;
    toastEl.dataset.kind = retry ? "failure" : "info";
    toastEl.hidden = false;
    clearTimeout(toastTimer);
    if (timeout) toastTimer = setTimeout(hideToast, timeout);
  }

  function hideToast() {
    toastEl.hidden = true;
    toastEl.dataset.kind = "";
  }

  // --- input -------------------------------------------------------------------------------------------
  document.addEventListener("keydown", (ev) => {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const t = ev.target;
    if (t instanceof HTMLElement && (t.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(t.tagName))) return;
    const k = ev.key;
    // Enter on a focused control (reached with Tab) other than a class button activates it, as usual.
    const onControl = t instanceof HTMLElement && t.matches("a, button:not(.class-button)");
    if (classByKey.has(k)) {
      ev.preventDefault();
      if (!ev.repeat) toggle(classByKey.get(k).slug);
    } else if (k === "Enter") {
      if (onControl) return;
      ev.preventDefault();
      if (!ev.repeat) submit();
    } else if (k === "Backspace") {
      ev.preventDefault();
      back();
    } else if (k === "ArrowLeft") {
      ev.preventDefault();
      left();
    } else if (k === "ArrowRight") {
      ev.preventDefault();
      forward();
    } else if ((k === "ArrowUp" || k === "ArrowDown") && view === "grid" && review < 0) {
      ev.preventDefault();
      const to = index + (k === "ArrowUp" ? -3 : 3);
      if (to >= 0 && to < buffer.length) go(() => { index = to; });
    } else if (k === "Escape") {
      if (!toastEl.hidden && toastEl.dataset.kind !== "failure") hideToast();
      else clearLabels();
    } else if (k === "g" || k === "G") {
      setView(view === "single" ? "grid" : "single");
    } else if (k === "z" || k === "Z") {
      resetZoom();
    } else if (k === "+" || k === "=") {
      zoomCentre(1.25);
    } else if (k === "-" || k === "_") {
      zoomCentre(1 / 1.25);
    } else if (k === "r" || k === "R") {
      retryAll(false);
    }
  });

  // Mouse clicks must not leave focus on a button: Enter would then press it instead of submitting.
  root.addEventListener("mousedown", (ev) => {
    if (ev.target instanceof Element && ev.target.closest("button")) ev.preventDefault();
  });
  toastEl.addEventListener("mousedown", (ev) => ev.preventDefault());

  let longPressed = false;
  classButtons.forEach((button, i) => {
    const c = classes[i];
    button.addEventListener("click", () => {
      if (longPressed) { longPressed = false; return; }
      toggle(c.slug);
    });
    const describe = () => { $("class-description").textContent = `${c.name}: ${c.description}`; };
    button.addEventListener("mouseenter", describe);
    button.addEventListener("focus", describe);
    let timer = null;
    button.addEventListener("pointerdown", (ev) => {
      if (ev.pointerType === "mouse") return;
      longPressed = false;
      timer = setTimeout(() => { longPressed = true; describe(); }, 450);
    });
    const cancel = () => clearTimeout(timer);
    button.addEventListener("pointerup", cancel);
    button.addEventListener("pointerleave", cancel);
    button.addEventListener("contextmenu", (ev) => { if (longPressed) ev.preventDefault(); });
  });

  grid.addEventListener("click", (ev) => {
    const cell = ev.target instanceof Element && ev.target.closest(".thumb");
    if (!cell) return;
    pick(Number(cell.dataset.imagetteId));
  });
  grid.addEventListener("dblclick", (ev) => {
    const cell = ev.target instanceof Element && ev.target.closest(".thumb");
    if (!cell) return;
    pick(Number(cell.dataset.imagetteId));
    setView("single");
  });

  function pick(id) {
    const i = buffer.findIndex((e) => e.item.id === id);
    if (i >= 0) go(() => { review = -1; index = i; });
  }

  suggestionsToggle.addEventListener("change", () => {
    suggestionsToggle.blur(); // the keys 1-0 toggle classes again, not this box
    setSuggestions(suggestionsToggle.checked);
  });

  $("submit-button").addEventListener("click", submit);
  $("back-button").addEventListener("click", back);
  $("view-toggle").addEventListener("click", () => setView(view === "single" ? "grid" : "single"));
  $("zoom-in").addEventListener("click", () => zoomCentre(1.25));
  $("zoom-out").addEventListener("click", () => zoomCentre(1 / 1.25));
  $("zoom-reset").addEventListener("click", resetZoom);
  $("toast-retry").addEventListener("click", () => retryAll(false));
  $("toast-close").addEventListener("click", hideToast);
  $("check-again").addEventListener("click", () => { exhausted = false; refill(); render(); });

  // --- start -------------------------------------------------------------------------------------------
  render();
  refill();
  reconcile();
})();
