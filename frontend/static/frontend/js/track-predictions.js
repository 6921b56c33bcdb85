// The `leads` network's prediction of a track on the track page (a module of track-page.js): loading the current
// prediction and its per-waveform arrays (GET /api/v1/track-predictions/<id>/arrays.bin: a uint32 header length, a
// JSON header {"waveforms", "arrays": [[name, dtype, offset], ...], "scale"}, then probability and uncertainty as
// uint8 × 1/255 and the distance to a lead as uint16 metres), the Prediction panel (version, leads predicted, mean
// uncertainty, how many waveforms it contradicts the labels on), and for experts the review: the segments most
// disputed first (a click or J / K selects one in the viewer and pans the map to it), "Accept prediction" (A) over
// the selection (the predicted labels there become ranges of source "prediction"), "Track reviewed" and the next
// track to review. Correcting is marking the selection by hand (L / N / U), as anywhere on the page.
// Everything from data goes in as text.
import { api, errorText } from "./api.js";
import { $, fmtCount, fmtUtc } from "./util.js";

const TEXT = new TextDecoder();
const TYPES = { uint8: Uint8Array, uint16: Uint16Array, float32: Float32Array };

export function decodePredictionArrays(buffer) {
  const length = new DataView(buffer).getUint32(0, true);
  const header = JSON.parse(TEXT.decode(new Uint8Array(buffer, 4, length)));
  const body = 4 + length;
  const n = header.waveforms;
  const raw = {};
  for (const [name, dtype, offset] of header.arrays) {
    const Type = TYPES[dtype];
    if (!Type) throw new Error(`unknown prediction array type ${dtype}`);
    raw[name] = new Type(buffer, body + offset, n);
  }
  const scale = (q, s) => Float32Array.from(q, (v) => v * s);
  return {
    n,
    quantised: raw.probability, // uint8: the map's colours bin these
    probability: scale(raw.probability, header.scale.probability),
    uncertainty: scale(raw.uncertainty, header.scale.uncertainty),
    distance: raw.distance_m,
  };
}

// The track's current prediction (of the active version when there are several) and its arrays; null without one.
export async function loadPrediction(trackId) {
  const res = await api(`/api/v1/tracks/${trackId}/predictions/`);
  if (!res.ok) throw new Error(`the predictions could not be read: ${errorText(res.data, res.status)}`);
  const row = res.data.find((p) => p.is_current && p.active) || res.data.find((p) => p.is_current);
  if (!row) return null;
  const bin = await fetch(`/api/v1/track-predictions/${row.id}/arrays.bin`, { credentials: "same-origin" });
  if (!bin.ok) {
    const data = await bin.json().catch(() => null);
    throw new Error(`the prediction's arrays could not be read: ${errorText(data, bin.status)}`);
  }
  return { row, ...decodePredictionArrays(await bin.arrayBuffer()) };
}

// Waveforms whose label (automatic or human, known) the prediction contradicts, as the review counts them.
export function countDisagreements(prediction, labels, threshold) {
  let count = 0;
  const p = prediction.probability;
  const n = Math.min(p.length, labels.length);
  for (let i = 0; i < n; i++) if (labels[i] >= 0 && (p[i] >= threshold) !== (labels[i] === 1)) count += 1;
  return count;
}

export class PredictionPanel {
  // select(start, stop): select the range in the viewer and show it on the map; onAccept(): the page accepts its
  // selection (in its queue of writes, through accept() below); status(text, bad).
  constructor(prediction, { trackId, threshold, canReview, select, onAccept, status }) {
    this.prediction = prediction;
    this.row = prediction.row;
    this.trackId = trackId;
    this.threshold = threshold;
    this.canReview = canReview;
    this.select = select;
    this.status = status;
    this.segments = [];
    this.current = -1;
    this.app = $("track-app");
    $("prediction-panel").hidden = false;
    this.app.dataset.prediction = String(this.row.id);
    $("prediction-name").textContent = `${this.row.network} v${this.row.version}${this.row.active ? "" : " (not the active version)"}`;
    $("prediction-leads").textContent = fmtCount(this.row.leads);
    $("prediction-uncertainty").textContent = Number(this.row.uncertainty).toFixed(2);
    this.info();
    if (canReview) {
      $("accept-prediction").addEventListener("click", () => onAccept());
      $("prediction-reviewed").addEventListener("click", () => this.reviewed());
      $("next-review").addEventListener("click", () => this.next());
      $("next-review").hidden = !this.row.reviewed;
      this.loadSegments();
    }
  }

  info() {
    $("prediction-info").textContent = `${fmtUtc(this.row.created_at)}${this.row.reviewed ? " · reviewed" : ""}`;
  }

  // After the labels changed (a mark, an acceptance, someone else's range).
  labelsChanged(labels) {
    const count = countDisagreements(this.prediction, labels, this.threshold);
    $("prediction-disagreements").textContent = fmtCount(count);
    return count;
  }

  probabilityAt(i) {
    return this.prediction.probability[i];
  }

  // --- review (experts) --------------------------------------------------------------------------------------------
  async loadSegments() {
    const res = await api(`/api/v1/track-predictions/${this.row.id}/segments/?count=50`);
    if (!res.ok) {
      this.status(`The segments to review could not be read: ${errorText(res.data, res.status)}`, true);
      return;
    }
    this.segments = res.data.segments;
    const list = $("segment-list");
    list.replaceChildren();
    this.segments.forEach((s, k) => {
      const item = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "segment";
      button.dataset.index = String(k);
      const where = document.createElement("span");
      where.className = "where";
      where.textContent = `${fmtCount(s.start)}–${fmtCount(s.stop - 1)}`;
      const what = document.createElement("span");
      what.className = "what muted";
      what.textContent = `${fmtCount(s.waveforms)} wf · ${s.predicted_leads} lead · ${s.disagreements} disputed · `
        + `unc. ${Number(s.uncertainty).toFixed(2)}`;
      button.append(where, what);
      button.addEventListener("click", () => this.choose(k));
      item.append(button);
      list.append(item);
    });
    $("segment-count").textContent = String(this.segments.length);
    if (!this.segments.length) $("segment-note").textContent = "None: the prediction is sure and agrees with the labels.";
    this.app.dataset.segments = String(this.segments.length);
  }

  choose(k) {
    if (!this.segments.length) return;
    this.current = Math.max(0, Math.min(this.segments.length - 1, k));
    const s = this.segments[this.current];
    document.querySelectorAll("#segment-list .segment").forEach((b) => {
      b.setAttribute("aria-current", String(Number(b.dataset.index) === this.current));
    });
    const chosen = document.querySelector(`#segment-list .segment[data-index="${this.current}"]`);
    if (chosen) chosen.scrollIntoView({ block: "nearest" });
    this.app.dataset.segment = String(this.current);
    this.select(s.start, s.stop);
  }

  step(delta) { // J / K
    if (!this.canReview || !this.segments.length) return;
    this.choose(this.current < 0 ? (delta > 0 ? 0 : this.segments.length - 1) : this.current + delta);
  }

  // The page posts (in its queue of writes); this is the request and what the panel shows of it.
  async accept(start, stop) {
    const res = await api(`/api/v1/track-predictions/${this.row.id}/accept/`, { method: "POST", body: { start, stop } });
    if (!res.ok) {
      this.status(`Not accepted: ${errorText(res.data, res.status)}`, true);
      return null;
    }
    const leads = res.data.ranges.filter((r) => r.label === "lead").reduce((sum, r) => sum + r.stop - r.start, 0);
    this.status(`Accepted the prediction over waveforms ${start}–${stop - 1}: ${fmtCount(leads)} lead, `
      + `${fmtCount(stop - start - leads)} not lead.`);
    for (const s of this.segments) {
      if (s.start >= start && s.stop <= stop) {
        const b = document.querySelector(`#segment-list .segment[data-index="${this.segments.indexOf(s)}"]`);
        if (b) b.classList.add("accepted");
      }
    }
    return res.data.ranges;
  }

  async reviewed() {
    const res = await api(`/api/v1/track-predictions/${this.row.id}/reviewed/`, { method: "POST" });
    if (!res.ok) {
      this.status(`Not saved: ${errorText(res.data, res.status)}`, true);
      return;
    }
    this.row.reviewed = true;
    this.info();
    this.app.dataset.review = "reviewed";
    $("next-review").hidden = false;
    this.status("Track reviewed: it left the review queue.");
  }

  async next() {
    const res = await api("/api/v1/review/tracks/");
    if (!res.ok) { this.status(`The review queue could not be read: ${errorText(res.data, res.status)}`, true); return; }
    const next = res.data.find((p) => p.track !== this.trackId);
    if (!next) { this.status("No other track waits for review."); return; }
    location.href = `/tracks/${Number(next.track)}/`;
  }
}

// /tracks/ for experts: the review queue, least sure first, each a link to its track.
export async function reviewQueue() {
  const list = $("review-list");
  if (!list) return;
  const res = await api("/api/v1/review/tracks/");
  if (!res.ok) {
    $("review-empty").hidden = false;
    $("review-empty").textContent = `The review queue could not be read: ${errorText(res.data, res.status)}`;
    return;
  }
  for (const p of res.data) {
    const item = document.createElement("li");
    const link = document.createElement("a");
    link.href = `/tracks/${Number(p.track)}/`;
    link.textContent = p.track_key;
    const facts = document.createElement("span");
    facts.className = "muted small";
    facts.textContent = ` · ${p.network} v${p.version} · uncertainty ${Number(p.uncertainty).toFixed(2)} · `
      + `${fmtCount(p.disagreements)} disagreements`;
    item.append(link, facts);
    list.append(item);
  }
  $("review-empty").hidden = res.data.length > 0;
  $("track-app").dataset.review = String(res.data.length);
}
