// The labelling page's keyboard (a module of label.js): 1-9 and 0 toggle classes, Enter submits, Backspace goes
// back through this session's votes, the arrows move, Esc clears, G the grid, +/−/Z zoom, R retries unsent votes.
import { back, forward, go, left, setView } from "./label-queue.js";
import { buffer, classByKey, state } from "./label-state.js";
import { hideToast, toastEl } from "./label-view.js";
import { clearLabels, retryAll, submit, toggle } from "./label-votes.js";
import { resetZoom, zoomCentre } from "./label-zoom.js";
import { isTyping } from "./util.js";

document.addEventListener("keydown", (ev) => {
  if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
  const t = ev.target;
  if (isTyping(t)) return;
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
  } else if ((k === "ArrowUp" || k === "ArrowDown") && state.view === "grid" && state.review < 0) {
    ev.preventDefault();
    const to = state.index + (k === "ArrowUp" ? -3 : 3);
    if (to >= 0 && to < buffer.length) go(() => { state.index = to; });
  } else if (k === "Escape") {
    if (!toastEl.hidden && toastEl.dataset.kind !== "failure") hideToast();
    else clearLabels();
  } else if (k === "g" || k === "G") {
    setView(state.view === "single" ? "grid" : "single");
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
