// Voting on the labelling page (a module of label.js): the classes toggled on the current entry, Enter to submit
// (or, on an earlier vote, to amend it). Votes are sent in the background (optimistic): the next image is on
// screen at once, failures are kept with their labels and retried.
import { api, buffer, current, failed, history, shownLabels, sortedSlugs, state } from "./label-state.js";
import { forward, go, refillIfLow, stopClock } from "./label-queue.js";
import { countVote, maybeReconcile } from "./label-stats.js";
import { hideHint, hideToast, hint, render, renderMode, renderSync, toast, toastEl } from "./label-view.js";
import { sameSet } from "./util.js";

export function toggle(slug) {
  const entry = current();
  if (!entry) return;
  if (entry.vote && entry.vote.state === "refused") {
    hint("This vote was not taken, so it cannot be changed.");
    return;
  }
  const set = shownLabels(entry);
  if (set.has(slug)) set.delete(slug);
  else set.add(slug);
  hideHint();
  render();
}

export function clearLabels() {
  const entry = current();
  if (!entry) return;
  shownLabels(entry).clear();
  render();
}

export function submit() {
  const entry = current();
  if (!entry) return;
  if (state.review >= 0) {
    amend(entry);
    return;
  }
  if (!entry.labels.size) {
    hint("Pick at least one class first (keys 1–9 and 0), then Enter.");
    return;
  }
  hideHint();
  go(() => {
    stopClock(entry);
    buffer.splice(state.index, 1);
    if (state.index >= buffer.length) state.index = 0;
    entry.vote = { id: null, saved: null, state: "sending", error: "", tries: 0 };
    entry.img = null; // the browser's cache has it, should Backspace come back to it
    history.push(entry);
    trimHistory();
    countVote(+1);
  });
  send(entry);
}

function amend(entry) {
  const draft = entry.draft;
  if (!draft || !draft.size) {
    hint("A vote needs at least one class. Pick one, or press → to leave it as it was.");
    return;
  }
  hideHint();
  const changed = !sameSet(draft, entry.labels);
  const refused = entry.vote.state === "refused";
  if (changed && !refused) {
    entry.labels = new Set(draft);
    send(entry);
    toast("Vote changed.", { timeout: 1500 });
  }
  forward();
}

function trimHistory() {
  // Thousands a day: keep the last few hundred for Backspace, never one still on its way.
  while (history.length > 300 && state.review < 0 && ["saved", "refused"].includes(history[0].vote.state)) {
    history.shift();
  }
}

// Runs the entry's sends one after the other; each one brings the server to entry.labels.
function send(entry) {
  state.inflight += 1;
  state.sendSeq += 1;
  renderSync();
  entry.chain = (entry.chain || Promise.resolve())
    .then(() => sync(entry))
    .catch((err) => {
      entry.vote.state = "failed";
      entry.vote.error = String(err);
      scheduleRetry();
    })
    .finally(() => {
      state.inflight -= 1;
      afterSend();
    });
}

async function sync(entry) {
  const vote = entry.vote;
  if (vote.state === "refused") return;
  for (let round = 0; round < 3; round += 1) {
    const labels = new Set(entry.labels);
    if (vote.id != null && sameSet(vote.saved, labels)) break;
    vote.state = "sending";
    vote.tries += 1;
    const res = vote.id == null
      ? await api("POST", "/votes/", {
        imagette: entry.item.id, labels: sortedSlugs(labels), seconds: Math.round(entry.seconds * 10) / 10,
        suggested: Boolean(entry.suggested), // the model's classes were pre-selected: not a blind vote
      })
      : await api("PATCH", `/votes/${vote.id}/`, { labels: sortedSlugs(labels) });
    if (res.ok) {
      vote.id = res.data.id;
      vote.saved = new Set(res.data.labels);
      vote.state = "saved";
      vote.error = "";
      continue; // the labels may have changed meanwhile
    }
    if (res.status === 409 && vote.id == null && /already voted/i.test(res.data.detail || "")) {
      // Our earlier try got through but its answer was lost: find that vote and amend it if needed.
      const found = await findOwnVote(entry.item.id);
      if (found) {
        vote.id = found.id;
        vote.saved = new Set(found.labels);
        vote.state = "saved";
        continue;
      }
    }
    const permanent = [400, 404, 409].includes(res.status);
    vote.error = res.data.detail || firstError(res.data) || `error ${res.status}`;
    if (permanent && vote.id == null) {
      // Not taken (the item has its votes already, or is gone): nothing to retry.
      vote.state = "refused";
      countVote(-1);
      toast(`Imagette #${entry.item.id}: ${vote.error}. Your vote on it was not needed.`, { timeout: 6000 });
    } else if (permanent) {
      // The change was refused; the vote stands as it was.
      entry.labels = new Set(vote.saved);
      vote.state = "saved";
      toast(`Imagette #${entry.item.id}: could not change the vote (${vote.error}).`, { timeout: 6000 });
    } else {
      vote.state = "failed";
      if (res.status === 401 || res.status === 403) vote.error = "you seem to be logged out; log in again, then retry";
      scheduleRetry();
    }
    return;
  }
}

function firstError(data) {
  for (const [field, value] of Object.entries(data || {})) {
    return `${field}: ${Array.isArray(value) ? value.join(" ") : value}`;
  }
  return "";
}

async function findOwnVote(imagetteId) {
  const res = await api("GET", "/votes/?limit=100");
  if (!res.ok) return null;
  return (res.data.results || []).find((v) => v.imagette === imagetteId) || null;
}

let retryTimer = null;
let retryDelay = 4000;
function scheduleRetry() {
  if (retryTimer) return;
  retryTimer = setTimeout(() => { retryTimer = null; retryAll(true); }, retryDelay);
  retryDelay = Math.min(retryDelay * 2, 60000);
}

export function retryAll(automatic) {
  const todo = failed();
  if (!todo.length) return;
  if (!automatic) retryDelay = 4000;
  todo.forEach((entry) => { entry.vote.state = "sending"; send(entry); });
}

function afterSend() {
  const todo = failed();
  if (todo.length) {
    const last = todo[todo.length - 1].vote.error;
    toast(`${todo.length} vote${todo.length > 1 ? "s" : ""} not sent yet (${last}). Kept here with your labels.`,
      { retry: true, timeout: 0 });
  } else {
    retryDelay = 4000;
    if (toastEl.dataset.kind === "failure") hideToast();
    maybeReconcile();
  }
  state.saturated = false;
  renderSync();
  if (state.review >= 0) renderMode();
  refillIfLow(); // sent votes free their held items: room for new ones
}

window.addEventListener("beforeunload", (ev) => {
  if (state.inflight || failed().length) {
    ev.preventDefault();
    ev.returnValue = "Some votes are not saved yet.";
  }
});
