// The contrast setting of the SAR display (a module of sar-display.js): what a setting is, how a key changes it,
// where a first adjustment starts, and how it is kept per user in this browser (localStorage). Pure, but for the
// storage.
import { percentiles } from "./sar-pixels.js";

export const KEYS = Object.freeze({
  "[": "shift-down", "]": "shift-up", "{": "widen", "}": "narrow", ";": "gamma-down", "'": "gamma-up", "\\": "reset",
});
export const KEY_HELP = "[ ] move the window down/up (brighter/darker) · { } widen/narrow · ; ' gamma down/up · \\ reset";
export const DEFAULT_PERCENTILES = Object.freeze([2, 98]); // the preview's own stretch
const DEFAULT_DB = [-25, 0];
const DB_STEP = 1; // dB per key press (each side when widening)
const PCT_STEP = 1; // percentage points per key press
const GAMMA_STEP = 1.15;
export const GAMMA_RANGE = [0.25, 4];
const DB_RANGE = [-80, 60];

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
