// The models page's shared state (a module of models.js): the versions and snapshots loaded, the training job
// followed, the page's classes, and small formatting helpers.
import { api } from "./api.js";
import { $, html, isNum, pageClasses, setHtml } from "./util.js";

// The network this page shows (its name comes from the server: training.specs.IMAGETTE_NETWORK).
export const NETWORK = $("models-script").dataset.network;
export const classes = pageClasses();
export const bySlug = new Map(classes.map((c) => [c.slug, c]));
export const canTrain = $("models-script").dataset.canTrain === "1";
// What the page shows of this network (training.specs.NetworkSpec.page_setup): its metrics, the primary first,
// whether it classifies (confusion matrix, F1 per class), and what its items are called.
export const SETUP = JSON.parse($("network-setup").textContent);
export const METRICS = SETUP.metrics;
export const PRIMARY = METRICS[0];

// A metric's value as the page shows it: a share as a percentage, another number with three decimals.
export function metricText(metric, value) {
  return metric && metric.share ? pct(value) : dec(value);
}

export const state = {
  versions: [],
  selectedId: null,
  snapshots: new Map(), // snapshot id -> snapshot
  followed: null, // id of the train job shown
  jobs: new Map(), // train job id -> latest job seen
  handled: new Set(), // train jobs whose success already reloaded the versions
  liveKey: "",
};

// --- helpers ----------------------------------------------------------------------------------
export function pct(v, digits = 1) {
  return isNum(v) ? `${(v * 100).toFixed(digits)}%` : "—";
}

export function dec(v, digits = 3) {
  return isNum(v) ? v.toFixed(digits) : "—";
}

export function flash(box, text, kind = "bad") {
  box.className = `flash ${kind}`;
  box.textContent = text;
  box.hidden = !text;
}

// rows: [name, value] (text, or markup made with html``); null rows are left out.
export function facts(box, rows) {
  setHtml(box, html`${rows.filter(Boolean).map(([k, v]) => html`<dt>${k}</dt><dd>${v}</dd>`)}`);
}

export function splitCounts(snap) {
  const s = (snap && snap.counts && snap.counts.per_split) || {};
  return ["train", "val", "test"].map((k) => `${s[k] || 0} ${k}`).join(" · ");
}

export function arch(hp) {
  if (hp && !hp.arch && hp.levels) return `U-Net ${hp.levels} levels · ${hp.base} ch · ${hp.patch} px`;
  if (!hp || !hp.arch) return "—";
  return `${hp.arch}${hp.image_size ? ` · ${hp.image_size} px` : ""}${hp.weights_path ? " · fine-tuned" : ""}`;
}

export async function loadSnapshots() {
  const res = await api("/api/v1/snapshots/");
  if (res.ok && Array.isArray(res.data)) res.data.forEach((s) => state.snapshots.set(s.id, s));
}
