// Curation page: items by lowest crowd agreement; an expert's decision overrides the crowd.
// Keys: 1..9, 0 toggle the classes; Enter decides; ArrowUp/ArrowDown (k/j) move through the list.
import { api, errorText } from "./api.js";
import { followJobs } from "./jobs-socket.js";
import { $, appendHtml, classChips, html, pageClasses, safeUrl, setHtml } from "./util.js";

const PAGE = 20;
const classes = pageClasses();
const bySlug = new Map(classes.map((c) => [c.slug, c]));
const isAdmin = $("curation-script").dataset.admin === "1";

const list = $("curation-list");
const buttons = Array.from(document.querySelectorAll(".class-button"));
const message = $("decision-message");

const state = {
  offset: 0, count: 0, items: [], selectedId: null, votes: [], chosen: new Set(),
  busy: false, selectToken: 0, goldIds: new Set(),
};

// --- helpers ----------------------------------------------------------------------------------
function chips(slugs, probabilities) {
  const inner = classChips(slugs, bySlug, probabilities);
  return slugs && slugs.length ? html`<span class="chips">${inner}</span>` : inner;
}

// The active classifier's prediction (the API adds it for experts): predicted classes and confidence.
function predictionBadge(p) {
  if (!p) return "";
  const slugs = p.classes.length ? p.classes : [p.top1];
  const names = slugs.map((s) => bySlug.get(s)?.name || s).join(", ");
  const dots = slugs.map((s) => html`<span class="swatch" style="--c:${bySlug.get(s)?.color || "#888"}"></span>`);
  return html`<span class="pred-badge" data-classes="${slugs.join(",")}" data-confidence="${p.confidence}"
    title="Prediction of classifier v${p.model_version}">${dots}${names} <span class="conf">${Math.round(p.confidence * 100)}%</span></span>`;
}

function agreementHtml(a) {
  if (a === null || a === undefined) {
    return html`<span class="agree"><span class="dash" title="agreement needs at least two votes">—</span></span>`;
  }
  const hue = Math.round(Math.max(0, Math.min(1, a)) * 120);
  return html`<span class="agree" title="mean pairwise Jaccard similarity of the votes">
    <span class="meter"><i style="width:${Math.round(a * 100)}%;background:hsl(${hue} 65% 45%)"></i></span>${a.toFixed(2)}</span>`;
}

function fmtTime(iso) {
  return iso ? new Date(iso).toLocaleString([], { dateStyle: "medium", timeStyle: "short" }) : "";
}

function ago(iso) {
  if (!iso) return "";
  const s = (Date.now() - new Date(iso).getTime()) / 1000;
  if (s < 60) return "just now";
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return new Date(iso).toLocaleDateString([], { dateStyle: "medium" });
}

// content: text, or markup made with html``.
function flash(content, kind) {
  setHtml(message, content);
  message.className = "flash" + (kind ? " " + kind : "");
  message.hidden = false;
  if (kind === "bad") message.scrollIntoView({ block: "nearest" });
}

function clearFlash() {
  message.hidden = true;
  message.replaceChildren();
}

function names(slugs) {
  return slugs.map((s) => bySlug.get(s)?.name || s).join(", ") || "no class";
}

// --- the list -----------------------------------------------------------------------------------
function renderList() {
  setHtml(list, html`${state.items.map((item) => {
    const c = item.consensus || {};
    return html`<li data-imagette-id="${item.id}" data-agreement="${c.agreement ?? ""}" tabindex="0" role="option"
        aria-selected="${item.id === state.selectedId}">
      <img src="${safeUrl(item.preview_url)}" alt="" loading="lazy" width="64" height="64">
      <div class="line"><span class="id">#${item.id}</span>${agreementHtml(c.agreement)}
        <span class="votes" title="votes on this imagette">${c.n_votes ?? item.vote_count} votes</span></div>
      <div>${chips(c.labels, c.probabilities)}${predictionBadge(item.prediction)}</div>
    </li>`;
  })}`);
  $("curation-empty").hidden = state.items.length > 0;
  $("curation-total").textContent = state.count ? `${state.count} item${state.count === 1 ? "" : "s"}` : "";
  const last = Math.min(state.offset + PAGE, state.count);
  $("page-info").textContent = state.count ? `${state.offset + 1}–${last} of ${state.count}` : "";
  $("page-prev").disabled = state.offset === 0;
  $("page-next").disabled = state.offset + PAGE >= state.count;
}

async function loadList({ keepId = state.selectedId, index = null } = {}) {
  const res = await api(`/api/v1/consensus/?limit=${PAGE}&offset=${state.offset}`);
  if (!res.ok) {
    flash(`Could not load the list: ${errorText(res.data, res.status)}`, "bad");
    return;
  }
  if (!res.data.results.length && state.offset > 0) {
    state.offset = Math.max(0, state.offset - PAGE);
    return loadList({ keepId, index });
  }
  state.items = res.data.results;
  state.count = res.data.count;
  renderList();
  let next = state.items.find((i) => i.id === keepId);
  if (!next && index !== null && state.items.length) next = state.items[Math.min(index, state.items.length - 1)];
  if (!next && state.selectedId === null) next = state.items[0];
  if (next) select(next.id, { keepMessage: true });
  else if (!state.items.find((i) => i.id === state.selectedId)) showNothing();
}

function showNothing() {
  state.selectedId = null;
  $("detail-body").hidden = true;
  $("detail-placeholder").hidden = false;
}

// --- the selected item --------------------------------------------------------------------------
async function select(id, { keepMessage = false } = {}) {
  const item = state.items.find((i) => i.id === id);
  if (!item) return;
  const changed = state.selectedId !== id;
  state.selectedId = id;
  list.querySelectorAll("li").forEach((li) => li.setAttribute("aria-selected", String(Number(li.dataset.imagetteId) === id)));
  const li = list.querySelector(`li[data-imagette-id="${id}"]`);
  if (li && changed) li.scrollIntoView({ block: "nearest" });
  if (!keepMessage) clearFlash();
  renderDetail(item);
  if (changed || !state.chosen.size) setChosen(item.consensus ? item.consensus.labels : item.labels);
  const token = ++state.selectToken;
  setHtml($("votes-list"), html`<li class="muted">loading votes…</li>`);
  const res = await api(`/api/v1/imagettes/${id}/votes/`);
  if (token !== state.selectToken) return; // the expert moved on meanwhile
  state.votes = res.ok ? res.data : [];
  renderVotes(item, res.ok ? null : errorText(res.data, res.status));
}

function renderDetail(item) {
  $("detail-placeholder").hidden = true;
  $("detail-body").hidden = false;
  $("detail-body").dataset.imagetteId = item.id;
  $("detail-id").textContent = "#" + item.id;
  $("detail-gold").hidden = !state.goldIds.has(item.id);
  const unmark = $("unmark-gold");
  if (unmark) unmark.hidden = !state.goldIds.has(item.id);
  const img = $("detail-preview");
  img.classList.remove("pixelated");
  img.onload = () => img.classList.toggle("pixelated", img.naturalWidth < img.clientWidth);
  img.src = safeUrl(item.preview_url);
  $("detail-open").href = safeUrl(item.preview_url);
  const where = item.center_lat !== null && item.center_lat !== undefined
    ? `${item.center_lat.toFixed(2)}°, ${item.center_lon.toFixed(2)}°` : "position unknown";
  const settled = item.label_source
    ? html`Settled label: <strong>${names(item.labels)}</strong> (${item.label_source})`
    : "No settled label yet";
  setHtml($("detail-meta"), html`<span class="key" title="${item.key}">${item.key}</span>
    ${fmtTime(item.acquisition_time) || "time unknown"} · ${where}
    ${item.swath ? ` · ${item.swath}` : ""}${item.polarisation ? ` ${item.polarisation}` : ""}
    ${item.incidence_angle ? ` · θ ${item.incidence_angle.toFixed(1)}°` : ""}<br>${settled}`);
  const c = item.consensus;
  $("detail-method").textContent = c ? `(${c.method.replace("_", "-")}, ${c.n_votes} votes)` : "";
  setHtml($("detail-agreement"), c
    ? html`<div class="kv"><span class="k">Consensus</span>${chips(c.labels)}</div>
       <div class="kv"><span class="k">Agreement</span>${agreementHtml(c.agreement)}</div>` : "No consensus yet.");
  if (item.prediction) {
    appendHtml($("detail-agreement"), html`<div class="kv"><span class="k">Model</span>${predictionBadge(item.prediction)}</div>`);
  }
}

function renderVotes(item, error) {
  const votes = state.votes;
  $("votes-count").textContent = `(${votes.length})`;
  setHtml($("votes-list"), error
    ? html`<li class="error">${error}</li>`
    : votes.length ? html`${votes.map((v) => html`<li data-vote-id="${v.id}" data-annotator="${v.annotator}">
        <span class="who">${v.annotator}</span>${chips(v.labels)}<span class="when" title="${fmtTime(v.created_at)}">${ago(v.created_at)}</span></li>`)}`
      : html`<li class="muted">No votes.</li>`);
  const c = item.consensus || { labels: [], probabilities: {} };
  const tally = new Map();
  votes.forEach((v) => v.labels.forEach((s) => tally.set(s, (tally.get(s) || 0) + 1)));
  const rows = classes.filter((k) => tally.get(k.slug) || (c.probabilities[k.slug] || 0) >= 0.05 || c.labels.includes(k.slug));
  setHtml($("consensus-table").querySelector("tbody"), rows.length ? html`${rows.map((k) => {
    const p = c.probabilities[k.slug] || 0;
    const inside = c.labels.includes(k.slug);
    return html`<tr class="${inside ? "in" : ""}" data-slug="${k.slug}" style="--c:${k.color}">
      <td>${inside ? "✓ " : ""}${k.name}</td>
      <td>${tally.get(k.slug) || 0}/${votes.length}</td>
      <td><span class="pbar"><i style="width:${Math.round(p * 100)}%"></i></span>${Math.round(p * 100)}%</td></tr>`;
  })}` : html`<tr><td colspan="3" class="muted">No class named.</td></tr>`);
}

function setChosen(slugs) {
  state.chosen = new Set(slugs || []);
  paintButtons();
}

function paintButtons() {
  buttons.forEach((b) => b.setAttribute("aria-pressed", String(state.chosen.has(b.dataset.slug))));
}

function toggle(slug) {
  if (state.chosen.has(slug)) state.chosen.delete(slug);
  else state.chosen.add(slug);
  paintButtons();
}

// --- decisions and gold -------------------------------------------------------------------------
async function decide() {
  const item = state.items.find((i) => i.id === state.selectedId);
  if (!item || state.busy) return;
  const labels = classes.map((c) => c.slug).filter((s) => state.chosen.has(s));
  if (!labels.length) {
    flash("Pick at least one class before deciding.", "bad");
    return;
  }
  state.busy = true;
  $("decide").disabled = true;
  try {
    const res = await api(`/api/v1/imagettes/${item.id}/decision/`, {
      method: "POST",
      body: { labels, expected_version: item.label_version, note: $("decision-note").value.trim() },
    });
    if (res.ok) {
      const index = state.items.indexOf(item);
      flash(html`Decided <strong>#${item.id}</strong>: ${names(res.data.labels)}. It left the list.`, "ok");
      $("decision-note").value = "";
      // The keys toggle classes again for the next item (they would type into the note otherwise).
      if (document.activeElement && document.activeElement.id === "decision-note") document.activeElement.blur();
      const li = list.querySelector(`li[data-imagette-id="${item.id}"]`);
      if (li) li.classList.add("leaving");
      state.selectedId = null;
      state.chosen = new Set();
      await new Promise((r) => setTimeout(r, 200));
      await loadList({ keepId: null, index });
    } else if (res.status === 409) {
      await conflict(item, res.data);
    } else {
      flash(`Not decided: ${errorText(res.data, res.status)}`, "bad");
    }
  } catch (err) {
    flash(`Not decided: ${err.message} (is the server reachable?)`, "bad");
  } finally {
    state.busy = false;
    $("decide").disabled = false;
  }
}

async function conflict(item, data) {
  const fresh = await api(`/api/v1/imagettes/${item.id}/`);
  if (!fresh.ok) {
    flash(html`<strong>Conflict:</strong> ${(data && data.detail) || "someone else decided this imagette meanwhile"}`, "bad");
    return;
  }
  Object.assign(item, fresh.data); // its new label_version: deciding again overrides knowingly
  renderDetail(item);
  flash(html`<strong>Conflict:</strong> imagette #${item.id} was decided by someone else while you were looking at it.
    Its label is now <strong>${names(fresh.data.labels)}</strong> (${fresh.data.label_source || "none"}).
    Nothing of yours was saved; your classes are kept: press <kbd>Enter</kbd> again to override that decision, or pick another item.`, "bad");
  message.dataset.conflict = String(item.id);
}

async function markGold() {
  const id = state.selectedId;
  const labels = classes.map((c) => c.slug).filter((s) => state.chosen.has(s));
  if (id === null) return;
  if (!labels.length) {
    flash("Pick at least one class for the gold label.", "bad");
    return;
  }
  const res = await api(`/api/v1/imagettes/${id}/gold/`, { method: "PUT", body: { labels } });
  if (res.ok) {
    state.goldIds.add(id);
    flash(`#${id} is now a gold item: ${names(res.data.labels)}. Annotators will meet it in their queue.`, "ok");
  } else {
    flash(`Not marked as gold: ${errorText(res.data, res.status)}`, "bad");
  }
  const item = state.items.find((i) => i.id === id);
  if (item) renderDetail(item);
}

async function unmarkGold() {
  const id = state.selectedId;
  if (id === null) return;
  const res = await api(`/api/v1/imagettes/${id}/gold/`, { method: "DELETE" });
  if (res.ok) {
    state.goldIds.delete(id);
    flash(`#${id} is no longer a gold item.`, "ok");
  } else {
    flash(`Could not unmark: ${errorText(res.data, res.status)}`, "bad");
  }
  const item = state.items.find((i) => i.id === id);
  if (item) renderDetail(item);
}

async function loadGoldIds() {
  // The imagette serializer does not say whether an item is gold; the gold filter does.
  let url = "/api/v1/imagettes/?gold=true&limit=500";
  for (let pages = 0; url && pages < 20; pages += 1) {
    const res = await api(url);
    if (!res.ok) return;
    res.data.results.forEach((i) => state.goldIds.add(i.id));
    url = res.data.next;
  }
  const item = state.items.find((i) => i.id === state.selectedId);
  if (item) renderDetail(item);
}

// --- recompute consensus, followed live -----------------------------------------------------------
const jobBox = $("consensus-job");
let followed = null; // id of the consensus job shown
const seen = new Map(); // job id -> last state seen

function showJob(job) {
  followed = job.id;
  jobBox.hidden = false;
  jobBox.dataset.state = job.state;
  jobBox.dataset.jobId = job.id;
  const badge = $("consensus-job-state");
  badge.className = "badge " + job.state;
  badge.textContent = `consensus ${job.state}`;
  const pct = Math.round((job.progress || 0) * 100);
  const bar = jobBox.querySelector(".progress");
  bar.setAttribute("aria-valuenow", String(pct));
  bar.querySelector(".bar").style.width = pct + "%";
  const text = job.state === "failed" && job.error ? job.error : job.message;
  $("consensus-job-message").textContent = text || "";
  $("consensus-job-message").title = text || "";
}

function onJob(job, initial) {
  if (job.kind !== "consensus") return;
  const before = seen.get(job.id);
  seen.set(job.id, job.state);
  const active = job.state === "queued" || job.state === "running";
  if (job.id >= (followed || 0)) showJob(job); // the newest consensus job
  if (job.state === "succeeded" && before && before !== "succeeded" && !initial) {
    loadList(); // new agreements: the order may change, the selected item stays selected
  }
  if (active) $("recompute").disabled = true;
  else if (job.id === followed) $("recompute").disabled = false;
}

async function recompute() {
  const method = $("consensus-method").value;
  $("recompute").disabled = true;
  const res = await api("/api/v1/consensus/run/", { method: "POST", body: method ? { method } : {} });
  if (res.ok) {
    seen.set(res.data.id, seen.get(res.data.id) || "queued");
    showJob(res.data);
  } else {
    $("recompute").disabled = false;
    flash(`Could not start the consensus: ${errorText(res.data, res.status)}`, "bad");
  }
}

// --- events -------------------------------------------------------------------------------------
list.addEventListener("click", (ev) => {
  const li = ev.target.closest("li[data-imagette-id]");
  if (li) select(Number(li.dataset.imagetteId));
});
buttons.forEach((b) => b.addEventListener("click", () => toggle(b.dataset.slug)));
$("decide").addEventListener("click", decide);
$("recompute").addEventListener("click", recompute);
$("page-prev").addEventListener("click", () => { state.offset = Math.max(0, state.offset - PAGE); state.selectedId = null; loadList({ keepId: null, index: 0 }); });
$("page-next").addEventListener("click", () => { state.offset += PAGE; state.selectedId = null; loadList({ keepId: null, index: 0 }); });
if ($("mark-gold")) $("mark-gold").addEventListener("click", markGold);
if ($("unmark-gold")) $("unmark-gold").addEventListener("click", unmarkGold);

function move(step) {
  if (!state.items.length) return;
  const at = state.items.findIndex((i) => i.id === state.selectedId);
  const next = state.items[Math.max(0, Math.min(state.items.length - 1, at + step))];
  if (next) select(next.id);
}

document.addEventListener("keydown", (ev) => {
  if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
  const t = ev.target;
  const typing = t.matches("input, textarea, select");
  if (ev.key === "Enter") {
    if (t.id === "decision-note") { ev.preventDefault(); decide(); return; }
    if (typing) return;
    const li = t.closest && t.closest("li[data-imagette-id]");
    if (li && Number(li.dataset.imagetteId) !== state.selectedId) { ev.preventDefault(); select(Number(li.dataset.imagetteId)); return; }
    // Enter on other buttons (paging, recompute, gold) does what they say.
    if (t.tagName === "BUTTON" && !t.classList.contains("class-button") && t.id !== "decide") return;
    ev.preventDefault();
    decide();
    return;
  }
  if (typing) return;
  const button = buttons.find((b) => b.dataset.key === ev.key);
  if (button && state.selectedId !== null) {
    ev.preventDefault();
    toggle(button.dataset.slug);
  } else if (ev.key === "ArrowDown" || ev.key === "j") {
    ev.preventDefault();
    move(1);
  } else if (ev.key === "ArrowUp" || ev.key === "k") {
    ev.preventDefault();
    move(-1);
  }
});

loadList();
followJobs(onJob, null);
if (isAdmin) loadGoldIds();
