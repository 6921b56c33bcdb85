// The map page's shared state (a module of map.js): what was loaded and drawn, the page's classes, and the small
// helpers the other map modules read them with.
import { api, errorText } from "./api.js";
import { $, pageClasses } from "./util.js";

export const API = "/api/v1/map";
export const app = $("map-app");
export const classes = pageClasses(); // in class-index order
export const canReview = app.dataset.canReview === "1";
export const SOURCE_NAMES = ["curated", "predicted"]; // the API's source codes (source_codes)

export const state = {
  view: "points",
  points: null, // {n, ids, lat, lon, cls, mask, conf, src, modelVersion, truncated}
  density: null, // {cell, lat, lon, count, max, total}
  px: new Float32Array(0), // projected positions of the last drawing (NaN: not drawn)
  py: new Float32Array(0),
  drawn: 0,
  loading: null, // AbortController of the request in flight
};

// --- helpers --------------------------------------------------------------------------------------
export function maskClasses(mask) {
  return classes.filter((c, i) => (mask >> i) & 1);
}

export function className(slug) {
  return (classes.find((c) => c.slug === slug) || { name: slug }).name;
}

export function note(text) {
  const el = $("map-note");
  el.textContent = text || "";
  el.hidden = !text;
}

// Where the classes come from, as the panel's radio buttons say: "any", "predicted" or "curated".
export function source() {
  return document.querySelector("input[name=source]:checked").value;
}

export async function getJson(url, signal) {
  const res = await api(url, { signal });
  if (!res.ok) throw new Error(errorText(res.data, res.status));
  return res.data;
}
