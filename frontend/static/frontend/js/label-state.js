// The labelling page's shared state (a module of label.js): its elements and classes, the buffer of upcoming
// imagettes, this session's votes, and the small helpers every part of the page reads them with.
import { api as request } from "./api.js";
import { $ } from "./util.js";

export const FETCH_COUNT = 10; // the most /queue/next/ gives; the items held for us come back first
export const BUFFER_LOW = 6; // refill below this many upcoming items (also the grid's size)
export const GRID_SIZE = 6;
export const PACE_WINDOW_MS = 10 * 60 * 1000; // the server's pace window (annotator_stats)
export const RECONCILE_EVERY = 25; // votes between stats reconciliations (and at most every minute)
export const RECHECK_EMPTY_MS = 30000;
const API = "/api/v1";

export const root = $("labeller");
export const viewer = $("viewer");
export const image = $("current-image");
export const grid = $("grid");
export const classButtons = Array.from(document.querySelectorAll(".class-button"));
export const classes = classButtons.map((b) => ({
  slug: b.dataset.slug, key: b.dataset.key, name: b.querySelector(".name").textContent,
  color: b.style.getPropertyValue("--c").trim(), description: b.title, button: b,
}));
export const classByKey = new Map(classes.map((c) => [c.key, c]));
export const classBySlug = new Map(classes.map((c) => [c.slug, c]));

// --- state ---------------------------------------------------------------------------------
// An entry is one imagette on this page: {item, labels: Set, seconds, shownAt, img, vote, draft}.
// vote (once submitted): {id, saved: Set | null, state: "sending" | "saved" | "failed" | "refused",
// error, tries}. draft: the labels being edited while reviewing an earlier vote.
export const seen = new Set(); // every imagette id ever taken into the buffer: /queue/next/ repeats held ones
export const buffer = []; // upcoming entries, not voted yet
export const history = []; // this session's voted entries, oldest first
export const state = {
  index: 0, // the current entry in the buffer (when not reviewing)
  review: -1, // index into history while reviewing an earlier vote, else -1
  view: "single",
  fetching: null,
  exhausted: false, // the last /queue/next/ gave fewer than asked: nothing more there for now
  saturated: false, // it gave only items we already hold (unsent votes keep theirs held)
  lastFetch: 0,
  loadedOnce: false,
  inflight: 0,
  sendSeq: 0, // bumped by every send, so a stats reconciliation can tell it raced one
  suggestionsOn: false, // "Show model suggestions" (label-suggestions.js)
};
export const stats = { total: null, today: null, times: [], serverPace: null, sinceReconcile: 0, lastReconcile: 0 };

export function current() {
  return state.review >= 0 ? history[state.review] : buffer[state.index];
}

export function shownLabels(entry) {
  return entry.draft || entry.labels;
}

export function failed() {
  return history.filter((e) => e.vote.state === "failed");
}

// --- helpers ---------------------------------------------------------------------------------
// The shared client (api.js) on the API root; an answer without a JSON body reads as {} here.
export async function api(method, path, body) {
  const res = await request(API + path, { method, body });
  return { ...res, data: res.data || {} };
}

export function sortedSlugs(set) {
  return classes.filter((c) => set.has(c.slug)).map((c) => c.slug);
}
