// A track's data for the viewer (a module of tracks.js): GET /api/v1/tracks/<id>/waveforms.bin decoded in place
// (the format: annotations/api_tracks.py — b"CRYW", a uint32 header length, a JSON header, then 8-byte-aligned
// little-endian sections viewed as typed arrays without copying), and the labels' JSON (base64 int8).

const TEXT = new TextDecoder();
const TYPES = { float32: Float32Array, uint8: Uint8Array, int8: Int8Array };

export function decodeWaveforms(buffer) {
  const bytes = new Uint8Array(buffer);
  if (TEXT.decode(bytes.subarray(0, 4)) !== "CRYW") throw new Error("not a Cryolabel waveforms payload");
  const length = new DataView(buffer).getUint32(4, true);
  const header = JSON.parse(TEXT.decode(bytes.subarray(8, 8 + length)));
  if (header.version !== 1) throw new Error(`waveforms format version ${header.version} is not known here`);
  const arrays = {};
  for (const s of header.sections) {
    const Type = TYPES[s.dtype];
    if (!Type) throw new Error(`unknown section type ${s.dtype}`);
    arrays[s.name] = new Type(buffer, s.offset, s.bytes / Type.BYTES_PER_ELEMENT);
  }
  // Labels change in the page: a copy of their own (the payload's buffer stays as it came).
  arrays.label = Int8Array.from(arrays.label);
  arrays.source = Int8Array.from(arrays.source);
  return { header, ...arrays };
}

export function decodeInt8(base64) {
  const text = atob(base64);
  const out = new Int8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = (text.charCodeAt(i) << 24) >> 24;
  return out;
}

export async function loadWaveforms(trackId) {
  const res = await fetch(`/api/v1/tracks/${trackId}/waveforms.bin`, { credentials: "same-origin" });
  if (!res.ok) {
    const data = await res.json().catch(() => null);
    throw new Error((data && data.detail) || `HTTP ${res.status}`);
  }
  return decodeWaveforms(await res.arrayBuffer());
}
