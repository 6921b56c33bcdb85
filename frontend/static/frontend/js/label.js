// Labelling page: built for speed at the keyboard.
//
// The annotator works through a buffer of upcoming imagettes fetched from /queue/next/ (images
// preloaded), toggles classes with 1-9 and 0, and submits with Enter. Votes are sent in the
// background (optimistic): the next image is on screen at once, failures are kept with their
// labels and retried. Backspace goes back through this session's votes; Enter there amends one.
// Blind voting: nothing here ever asks for, or shows, anyone else's votes or a consensus. The model's
// prediction is shown (and its classes pre-selected) only when the annotator turns "Show model suggestions" on;
// the setting is off by default and remembered per user in this browser.
//
// This module wires the page; the parts live beside it:
//   label-state.js        the page's elements, classes, buffer, votes and shared helpers
//   label-suggestions.js  the opt-in model suggestions
//   label-queue.js        /queue/next/ and the moves through the buffer (and the clock)
//   label-votes.js        toggling classes, sending votes in the background, retries
//   label-stats.js        the annotator's count and pace
//   label-view.js         render(), the hint and the toast
//   label-zoom.js         zoom and pan of the large image
//   label-keys.js         the keyboard
import "./label-keys.js";
import { back, pick, refill, setView } from "./label-queue.js";
import { buffer, classButtons, classes, grid, root, state } from "./label-state.js";
import { reconcile } from "./label-stats.js";
import { applySuggestion, storeSuggestions, storedSuggestions } from "./label-suggestions.js";
import { hideToast, render, toastEl } from "./label-view.js";
import { retryAll, submit, toggle } from "./label-votes.js";
import { resetZoom, zoomCentre } from "./label-zoom.js";
import { $, sameSet } from "./util.js";

const suggestionsToggle = $("suggestions-toggle");
state.suggestionsOn = storedSuggestions();
suggestionsToggle.checked = state.suggestionsOn;

function setSuggestions(on) {
  state.suggestionsOn = on;
  storeSuggestions(on);
  if (on) {
    buffer.forEach(applySuggestion);
    // Items loaded before came without their prediction: the same held items come back with it.
    state.saturated = false;
    (state.fetching || Promise.resolve()).then(() => refill());
  } else {
    // Untouched pre-selections go; what the annotator chose stays.
    for (const entry of buffer) {
      if (entry.suggested && sameSet(entry.labels, entry.suggested)) entry.labels.clear();
      entry.suggested = null;
    }
  }
  render();
}

// --- input -------------------------------------------------------------------------------------------
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

suggestionsToggle.addEventListener("change", () => {
  suggestionsToggle.blur(); // the keys 1-0 toggle classes again, not this box
  setSuggestions(suggestionsToggle.checked);
});

$("submit-button").addEventListener("click", submit);
$("back-button").addEventListener("click", back);
$("view-toggle").addEventListener("click", () => setView(state.view === "single" ? "grid" : "single"));
$("zoom-in").addEventListener("click", () => zoomCentre(1.25));
$("zoom-out").addEventListener("click", () => zoomCentre(1 / 1.25));
$("zoom-reset").addEventListener("click", resetZoom);
$("toast-retry").addEventListener("click", () => retryAll(false));
$("toast-close").addEventListener("click", hideToast);
$("check-again").addEventListener("click", () => { state.exhausted = false; refill(); render(); });

// --- start -------------------------------------------------------------------------------------------
render();
refill();
reconcile();
