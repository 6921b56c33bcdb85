// The annotator's count and pace on the labelling page (a module of label.js): counted here as votes go out,
// reconciled now and then with the server's own numbers (/votes/ stats).
import { PACE_WINDOW_MS, RECONCILE_EVERY, api, failed, history, state, stats } from "./label-state.js";
import { $ } from "./util.js";

export function countVote(delta) {
  if (stats.total != null) stats.total += delta;
  if (stats.today != null) stats.today += delta;
  if (delta > 0) stats.times.push(Date.now());
  else stats.times.pop();
  stats.serverPace = null;
  stats.sinceReconcile += 1;
  renderStats();
}

export function pace() {
  const now = Date.now();
  stats.times = stats.times.filter((t) => now - t <= PACE_WINDOW_MS);
  if (stats.serverPace != null) return stats.serverPace;
  if (!stats.times.length) return 0;
  const minutes = Math.max((now - stats.times[0]) / 60000, 1 / 6); // as annotator_stats counts it
  return Math.round((stats.times.length / minutes) * 10) / 10;
}

export function renderStats() {
  $("count-total").textContent = stats.total == null ? "–" : String(stats.total);
  $("count-today").textContent = stats.today == null ? "–" : String(stats.today);
  $("pace").textContent = stats.total == null ? "–" : pace().toFixed(1);
}

export async function reconcile() {
  stats.lastReconcile = Date.now();
  stats.sinceReconcile = 0;
  const seq = state.sendSeq;
  const busy = state.inflight;
  const res = await api("GET", "/votes/?limit=100");
  if (!res.ok || !res.data.stats) {
    if (stats.total == null) setTimeout(reconcile, 5000);
    return;
  }
  if (busy || state.inflight || seq !== state.sendSeq) {
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

export function maybeReconcile() {
  if (state.inflight) return;
  if (stats.sinceReconcile >= RECONCILE_EVERY
      || (stats.sinceReconcile > 0 && Date.now() - stats.lastReconcile > 60000)) {
    reconcile();
  }
}

setInterval(() => { renderStats(); maybeReconcile(); }, 15000);
