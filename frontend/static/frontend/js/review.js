// Review page: the model's predictions, in the chosen order; an expert accepts or corrects each.
// A correction starts from no class: the expert's classes replace the prediction, never add to it (p starts from the
// predicted classes when the expert asks). The "will store" line says what Enter stores.
// Keys: Enter accepts the prediction while no class is chosen, else submits the chosen classes as the correction;
// a accepts the prediction; 1..9, 0 toggle the classes; p starts from the predicted classes; s skips; Esc clears.
import { api, errorText } from "./api.js";
import { $, classChips, html, isLight, pageClasses, safeUrl, sameSet, setHtml } from "./util.js";

(function () {
  "use strict";
  const PRELOAD = 3; // items held ahead of the one shown
  const MAX_EXCLUDE = 400;
  const classes = pageClasses();
  const bySlug = new Map(classes.map((c) => [c.slug, c]));
  const buttons = Array.from(document.querySelectorAll(".review-class"));
  const root = $("review");
  const side = document.querySelector(".review-side");
  const message = $("review-message");

  const state = {
    strategy: "uncertain", measure: "entropy",
    current: null, buffer: [], chosen: new Set(),
    skipped: [], decided: [], refused: false, busy: false, fetching: null, generation: 0, count: 0,
  };

  // --- helpers ----------------------------------------------------------------------------------
  function names(slugs) {
    return (slugs || []).map((s) => bySlug.get(s)?.name || s).join(", ") || "no class";
  }

  function chips(slugs) {
    return classChips(slugs, bySlug);
  }

  function fmt(value, digits = 2) {
    return value === null || value === undefined ? "—" : Number(value).toFixed(digits);
  }

  // content: text, or markup made with html``.
  function flash(content, kind) {
    setHtml(message, content);
    message.className = "flash" + (kind ? " " + kind : "");
    message.hidden = false;
  }

  function clearFlash() {
    message.hidden = true;
    message.replaceChildren();
    message.title = "";
    delete message.dataset.conflict;
  }

  // --- the queue --------------------------------------------------------------------------------
  function heldIds() {
    const ids = [...state.skipped, ...state.decided, ...state.buffer.map((i) => i.imagette.id)];
    if (state.current) ids.push(state.current.imagette.id);
    return [...new Set(ids)].slice(-MAX_EXCLUDE);
  }

  function preload(item) {
    const img = new Image();
    img.src = item.imagette.preview_url;
    // With a contrast set, sar-display.js fetches the item's pixels ahead too.
    document.dispatchEvent(new CustomEvent("cryolabel:upcoming", { detail: { ids: [item.imagette.id] } }));
  }

  async function fetchMore(count) {
    if (state.fetching) return state.fetching;
    const generation = state.generation;
    const params = new URLSearchParams({ strategy: state.strategy, measure: state.measure, count: String(count) });
    const exclude = heldIds();
    if (exclude.length) params.set("exclude", exclude.join(","));
    state.fetching = (async () => {
      const res = await api(`/api/v1/review/next/?${params}`);
      if (generation !== state.generation) return; // the strategy changed meanwhile
      if (!res.ok) {
        flash(`Could not load the queue: ${errorText(res.data, res.status)}`, "bad");
        return;
      }
      showModel(res.data.model);
      const held = new Set(heldIds());
      for (const item of res.data.items) {
        if (held.has(item.imagette.id)) continue;
        state.buffer.push(item);
        preload(item);
      }
    })();
    try {
      await state.fetching;
    } finally {
      state.fetching = null;
    }
  }

  function showModel(model) {
    state.model = model;
    $("model-info").textContent = model ? `predictions of ${model.network} v${model.number}${model.is_active ? " (active)" : ""}` : "no model yet";
  }

  async function advance({ keepMessage = false } = {}) {
    state.current = null;
    state.refused = false;
    if (!state.buffer.length) await fetchMore(PRELOAD + 1);
    const item = state.buffer.shift() || null;
    state.current = item;
    if (!keepMessage) clearFlash();
    if (!item) {
      showEmpty();
      return;
    }
    render(item);
    if (state.buffer.length < PRELOAD) fetchMore(PRELOAD + 1 - state.buffer.length);
  }

  function showEmpty() {
    root.dataset.state = "empty";
    $("review-empty").hidden = false;
    const model = state.model;
    $("empty-text").textContent = !model
      ? "There is no model version yet: train one on the Models page, then run a prediction job; its predictions come here."
      : `Every current prediction of ${model.network} v${model.number} has been reviewed${state.skipped.length ? " or skipped" : ""}. New ones come with the next prediction job.`;
  }

  // --- one item ---------------------------------------------------------------------------------
  function render(item) {
    const { imagette: im, prediction: p } = item;
    root.dataset.state = "ready";
    $("review-empty").hidden = true;
    const img = $("review-image");
    img.classList.remove("pixelated");
    img.onload = () => img.classList.toggle("pixelated", img.naturalWidth < img.clientWidth);
    img.src = safeUrl(im.preview_url);
    img.dataset.imagetteId = im.id;
    side.dataset.imagetteId = im.id;
    side.dataset.refused = "false";
    $("review-id").textContent = "#" + im.id;
    $("disagree-badge").hidden = !p.disagrees;
    const where = im.center_lat !== null && im.center_lat !== undefined ? `${im.center_lat.toFixed(2)}°, ${im.center_lon.toFixed(2)}°` : "position unknown";
    const when = im.acquisition_time ? new Date(im.acquisition_time).toLocaleString([], { dateStyle: "medium", timeStyle: "short" }) : "time unknown";
    setHtml($("review-meta"), html`<span class="key" title="${im.key}">${im.key}</span>
      ${when} · ${where}${im.swath ? ` · ${im.swath}` : ""}${im.incidence_angle ? ` · θ ${im.incidence_angle.toFixed(1)}°` : ""}`);
    const scores = { confidence: `${Math.round(p.confidence * 100)}%`, entropy: fmt(p.entropy), margin: fmt(p.margin), mutual_information: fmt(p.mutual_information, 3) };
    document.querySelectorAll("#scores [data-score]").forEach((dd) => { dd.textContent = scores[dd.dataset.score]; });
    $("model-version").textContent = `${p.model_version.network} v${p.model_version.number}`;
    setHtml($("predicted"), html`${chips(p.labels)}`);
    buttons.forEach((b) => {
      const prob = p.probabilities[b.dataset.slug] || 0;
      b.querySelector(".pbar i").style.width = `${Math.round(prob * 100)}%`;
      b.querySelector(".p").textContent = `${Math.round(prob * 100)}%`;
      b.dataset.predicted = String(p.labels.includes(b.dataset.slug));
    });
    const c = im.consensus;
    setHtml($("crowd"), c
      ? html`<div class="kv"><span class="k">Consensus</span><span class="chips">${chips(c.labels)}</span></div>
         <div class="kv"><span class="k">Agreement</span>${c.agreement === null ? "—" : c.agreement.toFixed(2)} · ${c.n_votes} vote${c.n_votes === 1 ? "" : "s"} (${c.method.replace("_", "-")})</div>`
      : html`<span class="muted">No crowd consensus yet${im.vote_count ? ` (${im.vote_count} vote${im.vote_count === 1 ? "" : "s"})` : ""}.</span>`);
    setHtml($("settled"), im.label_source
      ? html`Settled label now: <strong>${names(im.labels)}</strong> (${im.label_source})` : "");
    setChosen([]); // a correction starts empty: the expert's classes replace the prediction
  }

  function setChosen(slugs) {
    state.chosen = new Set(slugs || []);
    paint();
  }

  // Whether Enter submits a correction: classes chosen, and not just the prediction's own.
  function correcting() {
    return Boolean(state.current) && state.chosen.size > 0
      && !sameSet(state.chosen, new Set(state.current.prediction.labels));
  }

  function paint() {
    buttons.forEach((b) => b.setAttribute("aria-pressed", String(state.chosen.has(b.dataset.slug))));
    const changed = correcting();
    side.dataset.changed = String(changed);
    $("correct").hidden = !changed;
    paintWillStore(changed);
  }

  // "Enter will store: <classes>": what Enter would write, kept in step with every key.
  function paintWillStore(changed) {
    const line = $("will-store");
    if (!state.current) {
      line.replaceChildren();
      return;
    }
    const slugs = changed ? classes.map((c) => c.slug).filter((s) => state.chosen.has(s)) : state.current.prediction.labels;
    const chipList = document.createElement("span");
    chipList.className = "chips";
    chipList.append(...slugs.map(chipElement));
    const how = document.createElement("span");
    how.className = "how";
    how.textContent = changed ? "your correction (replaces the prediction)" : "the prediction, accepted";
    line.dataset.kind = changed ? "correction" : "accept";
    line.replaceChildren("Enter will store: ", chipList, " — ", how);
  }

  function chipElement(slug) {
    const c = bySlug.get(slug) || { name: slug, color: "#888888" };
    const chip = document.createElement("span");
    chip.className = isLight(c.color) ? "chip light" : "chip";
    chip.dataset.slug = slug;
    chip.style.setProperty("--c", c.color);
    chip.textContent = c.name;
    return chip;
  }

  function toggle(slug) {
    if (!state.current || state.refused) return;
    if (state.chosen.has(slug)) state.chosen.delete(slug);
    else state.chosen.add(slug);
    paint();
  }

  // --- decisions --------------------------------------------------------------------------------
  function logDecision(item, outcome, text) {
    const li = document.createElement("li");
    li.dataset.imagetteId = item.imagette.id;
    li.dataset.outcome = outcome;
    setHtml(li, html`<span class="what">#${item.imagette.id} ${outcome}</span>: ${text}`);
    $("review-log").prepend(li);
  }

  async function decide(kind) {
    const item = state.current;
    if (!item || state.busy) return;
    if (state.refused) { advance(); return; }
    const labels = classes.map((c) => c.slug).filter((s) => state.chosen.has(s));
    if (kind === "correct" && !labels.length) {
      flash(html`Pick at least one class, or press <kbd>Esc</kbd> to go back to the prediction.`, "bad");
      return;
    }
    const id = item.imagette.id;
    const url = `/api/v1/review/${id}/${kind}/`;
    const body = kind === "accept"
      ? { expected_version: item.imagette.label_version, prediction: item.prediction.id }
      : { labels, expected_version: item.imagette.label_version };
    state.busy = true;
    try {
      const res = await api(url, { method: "POST", body });
      if (res.ok) {
        state.decided.push(id);
        state.count += 1;
        $("session-count").textContent = `${state.count} reviewed`;
        const verb = kind === "accept" ? "accepted" : "corrected";
        logDecision(item, verb, names(res.data.labels));
        flash(`#${id} ${verb}: ${names(res.data.labels)}.`, "ok");
        await advance({ keepMessage: true });
      } else if (res.status === 409) {
        refused(item, res.data);
      } else {
        flash(`Not saved: ${errorText(res.data, res.status)}`, "bad");
      }
    } catch (err) {
      flash(`Not saved: ${err.message} (is the server reachable?)`, "bad");
    } finally {
      state.busy = false;
    }
  }

  function refused(item, data) {
    // Someone decided the item meanwhile: nothing of ours was written. Say so, show theirs, move on with a key.
    state.refused = true;
    side.dataset.refused = "true";
    state.decided.push(item.imagette.id);
    const now = (data && data.imagette) || null;
    const theirs = now ? html` Its label is now <strong>${names(now.labels)}</strong> (${now.label_source || "none"}).` : "";
    flash(html`<strong>Refused: another expert decided #${item.imagette.id} a moment ago.</strong>
      ${theirs} Nothing of yours was saved. Press <kbd>Enter</kbd> or <kbd>S</kbd> for the next item.`, "bad");
    message.title = (data && data.detail) || "";
    message.dataset.conflict = String(item.imagette.id);
    logDecision(item, "refused", "decided by someone else first");
    side.dataset.changed = "false";
    $("correct").hidden = true;
  }

  function skip() {
    if (!state.current || state.busy) return;
    if (!state.refused) state.skipped.push(state.current.imagette.id);
    advance();
  }

  function restart() {
    state.generation += 1;
    state.buffer = [];
    state.current = null;
    state.fetching = null;
    root.dataset.state = "loading";
    advance();
  }

  // --- events -----------------------------------------------------------------------------------
  document.querySelectorAll(".strategy").forEach((b) => b.addEventListener("click", () => {
    state.strategy = b.dataset.strategy;
    document.querySelectorAll(".strategy").forEach((x) => x.setAttribute("aria-pressed", String(x === b)));
    $("measure-label").hidden = state.strategy !== "uncertain";
    b.blur(); // the keys go to the queue, not to this button
    restart();
  }));
  $("measure").addEventListener("change", (ev) => {
    state.measure = ev.target.value;
    ev.target.blur();
    restart();
  });
  buttons.forEach((b) => b.addEventListener("click", () => toggle(b.dataset.slug)));
  $("accept").addEventListener("click", () => decide("accept"));
  $("correct").addEventListener("click", () => decide("correct"));
  $("skip").addEventListener("click", skip);
  $("reset").addEventListener("click", (ev) => { ev.currentTarget.blur(); if (state.current) setChosen([]); });
  $("from-prediction").addEventListener("click", (ev) => { ev.currentTarget.blur(); startFromPrediction(); });
  function startFromPrediction() {
    if (state.current && !state.refused) setChosen(state.current.prediction.labels);
  }
  $("check-again").addEventListener("click", () => { state.skipped = []; restart(); });

  document.addEventListener("keydown", (ev) => {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const t = ev.target;
    if (t.matches("input, textarea, select")) return;
    if (t.tagName === "BUTTON" && ev.key === "Enter" && !t.classList.contains("review-class")) return; // the button's own action
    const key = ev.key.length === 1 ? ev.key.toLowerCase() : ev.key;
    const button = buttons.find((b) => b.dataset.key === key);
    if (button) {
      ev.preventDefault();
      toggle(button.dataset.slug);
    } else if (key === "Enter") {
      ev.preventDefault();
      decide(correcting() ? "correct" : "accept");
    } else if (key === "a") {
      ev.preventDefault();
      if (state.current && !state.refused) setChosen(state.current.prediction.labels);
      decide("accept");
    } else if (key === "s") {
      ev.preventDefault();
      skip();
    } else if (key === "p") {
      ev.preventDefault();
      startFromPrediction();
    } else if (key === "Escape") {
      ev.preventDefault();
      if (state.current && !state.refused) setChosen([]);
    }
  });

  advance();
})();
