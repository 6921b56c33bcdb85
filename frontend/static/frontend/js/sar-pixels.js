// The pixels of the SAR display (a module of sar-display.js): an imagette's float16 values from
// /api/v1/imagettes/<id>/pixels/ (cached, most recently used kept), their percentiles, and their drawing on a canvas
// through a window and a gamma.
const MAX_CACHED = 48; // pixel arrays kept (~0.5 MB each at 512 px)
const RETRY_MS = 30000;

// --- pixels ---------------------------------------------------------------------------------------------
let float16 = null;
// Every float16 bit pattern as a float32 (decoding by table: one lookup a pixel).
export function float16Table() {
  if (float16) return float16;
  float16 = new Float32Array(65536);
  for (let h = 0; h < 65536; h += 1) {
    const sign = h & 0x8000 ? -1 : 1;
    const exponent = (h >> 10) & 0x1f;
    const fraction = h & 0x3ff;
    if (exponent === 0) float16[h] = sign * 2 ** -14 * (fraction / 1024);
    else if (exponent === 31) float16[h] = fraction ? NaN : sign * Infinity;
    else float16[h] = sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
  }
  return float16;
}

const cache = new Map(); // imagette id -> Promise of pixels or null (not available: the preview stays)

export function fetchPixels(id) {
  const key = String(id);
  if (cache.has(key)) {
    const hit = cache.get(key);
    cache.delete(key); // most recently used last
    cache.set(key, hit);
    return hit;
  }
  const promise = (async () => {
    try {
      const res = await fetch(`/api/v1/imagettes/${key}/pixels/`, { credentials: "same-origin" });
      if (!res.ok) return null;
      const width = Number(res.headers.get("X-Pixels-Width"));
      const height = Number(res.headers.get("X-Pixels-Height"));
      const buffer = await res.arrayBuffer();
      if (!(width > 0 && height > 0) || buffer.byteLength !== width * height * 2) return null;
      const pixels = { id: key, width, height, isDb: res.headers.get("X-Pixels-Units") === "dB", codes: new Uint16Array(buffer) };
      pixels.sample = sortedSample(pixels);
      return pixels;
    } catch (err) {
      return null;
    }
  })();
  promise.then((pixels) => {
    // Not there (a missing file, the network): the preview stays; asked again a while later, not on every redraw.
    if (!pixels) setTimeout(() => { if (cache.get(key) === promise) cache.delete(key); }, RETRY_MS);
  });
  cache.set(key, promise);
  while (cache.size > MAX_CACHED) cache.delete(cache.keys().next().value);
  return promise;
}

// About 65 k finite values on a regular grid, sorted: the percentiles (as the server's preview stretch takes them).
function sortedSample({ width, height, codes }) {
  const table = float16Table();
  const step = Math.max(1, Math.floor(Math.sqrt((width * height) / 65536)));
  const out = new Float32Array(Math.ceil(height / step) * Math.ceil(width / step));
  let n = 0;
  for (let y = 0; y < height; y += step) {
    for (let x = 0; x < width; x += step) {
      const v = table[codes[y * width + x]];
      if (Number.isFinite(v)) out[n++] = v;
    }
  }
  return out.subarray(0, n).sort();
}

// Percentiles of an image's values, interpolated as numpy does.
export function percentiles(pixels, [pLow, pHigh]) {
  const s = pixels.sample;
  if (!s.length) return [NaN, NaN];
  const at = (p) => {
    const i = (p / 100) * (s.length - 1);
    const lo = Math.floor(i);
    return s[lo] + (s[Math.min(lo + 1, s.length - 1)] - s[lo]) * (i - lo);
  };
  return [at(pLow), at(pHigh)];
}

// The window [low, high] in the image's values that the setting gives for this image.
export function windowFor(setting, pixels) {
  if (setting.mode === "db" && pixels.isDb) return setting.db;
  return percentiles(pixels, setting.pct);
}

let table = { key: "", rgba: null };
// Every float16 bit pattern to an opaque grey RGBA pixel (NaN black, as in the preview), for one window and gamma.
function greyTable(lo, hi, gamma) {
  const key = `${lo}|${hi}|${gamma}`;
  if (table.key === key) return table.rgba;
  const values = float16Table();
  const rgba = new Uint32Array(65536);
  const span = hi > lo ? hi - lo : 1;
  const inverse = 1 / gamma;
  const little = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
  for (let h = 0; h < 65536; h += 1) {
    const v = values[h];
    let g = 0;
    if (!Number.isNaN(v)) {
      const t = Math.min(1, Math.max(0, (v - lo) / span));
      g = Math.round(255 * t ** inverse);
    }
    rgba[h] = little ? (0xff000000 | (g << 16) | (g << 8) | g) >>> 0 : ((g << 24) | (g << 16) | (g << 8) | 0xff) >>> 0;
  }
  table = { key, rgba };
  return rgba;
}

// Draws the image's values on the canvas with the setting's window and gamma.
export function paint(canvas, pixels, setting) {
  const [lo, hi] = windowFor(setting, pixels);
  const rgba = greyTable(lo, hi, setting.gamma);
  if (canvas.width !== pixels.width) canvas.width = pixels.width;
  if (canvas.height !== pixels.height) canvas.height = pixels.height;
  const context = canvas.getContext("2d");
  const image = context.createImageData(pixels.width, pixels.height);
  const out = new Uint32Array(image.data.buffer);
  const codes = pixels.codes;
  for (let i = 0; i < codes.length; i += 1) out[i] = rgba[codes[i]];
  context.putImageData(image, 0, 0);
  return [lo, hi];
}
