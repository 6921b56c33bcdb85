// Export page: choose a format and a snapshot, start the export job, follow it live over /ws/jobs/, then a
// download link; below, the past exports with their dataset cards (counts per class and split, agreement).
import { api, errorText } from "./api.js";
import { followJobs } from "./jobs-socket.js";
import { $, fmtBytes as bytes, fmtWhen as when, html, isNum, pageClasses, safeUrl, setHtml } from "./util.js";

const classes = pageClasses();
const FORMAT_NAMES = { imagefolder: "ImageFolder", csv: "CSV", stac: "STAC", chips: "Chips", geojson: "GeoJSON", netcdf: "NetCDF" };
const KIND_PREFIX = { scenes: "Scenes · ", tracks: "Tracks · " };
const SPLITS = ["train", "val", "test"];

const state = {
  followed: null, // id of the export job shown
  jobs: new Map(), // export job id -> latest row seen
  handled: new Set(), // finished jobs whose end already reloaded the list
  open: new Set(), // export ids whose card is unfolded
  exports: [],
};

function flash(box, text) {
  box.textContent = text;
  box.hidden = !text;
}

// --- what to export: imagettes, scenes or tracks, each with its own formats (one fieldset of them enabled at a time) ------
function currentKind() {
  const checked = document.querySelector("input[name=kind]:checked");
  return checked ? checked.value : "imagettes";
}
document.querySelectorAll("input[name=kind]").forEach((input) => input.addEventListener("change", () => {
  document.querySelectorAll("fieldset[data-kind]").forEach((set) => {
    const on = set.dataset.kind === currentKind();
    set.hidden = !on;
    set.disabled = !on; // a disabled fieldset's radios are left out of the form's data
  });
  $("export-snapshot").value = "";
  loadSnapshots();
}));

// --- snapshots to choose from -------------------------------------------------------------------------
async function loadSnapshots() {
  const { ok, data } = await api("/api/v1/snapshots/");
  if (!ok || !Array.isArray(data)) return; // a role without review sees only "a new snapshot"
  const select = $("export-snapshot");
  const chosen = select.value;
  select.querySelectorAll("option[data-snapshot]").forEach((o) => o.remove());
  data.filter((s) => s.kind === currentKind()).forEach((s) => {
    const option = document.createElement("option");
    option.value = String(s.id);
    option.dataset.snapshot = "1";
    const splits = s.counts && s.counts.per_split ? SPLITS.map((k) => `${k} ${s.counts.per_split[k] || 0}`).join(", ") : "";
    option.textContent = `#${s.number} · ${s.size} ${s.kind}${splits ? ` (${splits})` : ""} · ${when(s.created_at)}`;
    option.disabled = !s.size;
    select.appendChild(option);
  });
  if ([...select.options].some((o) => o.value === chosen)) select.value = chosen;
}

// --- start and follow -----------------------------------------------------------------------------------
$("export-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const form = new FormData(ev.target);
  const kind = form.get("kind") || "imagettes";
  // Each kind's formats are a radio group of their own (one name each: a form keeps one checked radio per name).
  const body = { kind, format: form.get(kind === "imagettes" ? "format" : `format-${kind}`) };
  if (form.get("snapshot")) body.snapshot = Number(form.get("snapshot"));
  const button = $("export-button");
  button.disabled = true;
  flash($("export-flash"), "");
  const { ok, status, data } = await api("/api/v1/exports/", { method: "POST", body });
  if (!ok) {
    button.disabled = false;
    const existing = status === 409 && data && data.export; // this snapshot and format are exported already
    if (existing && existing.available) {
      const box = $("export-flash");
      setHtml(box, html`Not written again: ${data.detail}
        <a id="export-existing" href="${safeUrl(existing.download)}">Download export #${existing.number} (zip)</a>`);
      box.hidden = false;
    } else {
      flash($("export-flash"), `Refused: ${errorText(data, status)}`);
    }
    return;
  }
  onJob(data);
});

function showJob(job) {
  state.followed = job.id;
  const box = $("export-job");
  box.hidden = false;
  box.dataset.state = job.state;
  box.dataset.jobId = job.id;
  box.className = `export-job state-${job.state}`;
  const badge = $("export-job-state");
  badge.className = `badge ${job.state}`;
  badge.textContent = job.state;
  const fmt = (job.params && FORMAT_NAMES[job.params.format]) || "";
  const snap = job.params && job.params.snapshot ? `snapshot id ${job.params.snapshot}` : "a new snapshot";
  $("export-job-title").textContent = `Export job #${job.id}: ${fmt}, ${snap}`;
  const pctDone = Math.round((job.progress || 0) * 100);
  const bar = box.querySelector(".progress");
  bar.setAttribute("aria-valuenow", String(pctDone));
  bar.querySelector(".bar").style.width = `${pctDone}%`;
  $("export-job-pct").textContent = `${pctDone}%`;
  const failed = job.state === "failed";
  $("export-job-message").textContent = failed ? "" : job.message || "";
  const error = $("export-job-error");
  if (failed) {
    const reason = (job.error || job.message || "no reason given").replace(/^ExportError: /, "");
    setHtml(error, html`<strong>Export failed, nothing was written.</strong> <span class="error-text">${reason}</span>`);
  }
  error.hidden = !failed;
  const download = $("export-job-download");
  const result = job.result || {};
  if (job.state === "succeeded" && result.download) {
    setHtml(download, html`<a class="download-button" id="export-download" href="${safeUrl(result.download)}">Download
      export #${result.number} (zip)</a> <span class="muted small">${result.items} imagettes,
      ${bytes(result.size_bytes)} before zipping</span>`);
    download.hidden = false;
  } else {
    download.hidden = true;
  }
  $("export-button").disabled = job.state === "queued" || job.state === "running";
}

function newer(a, b) {
  // the POST answer may arrive after the socket's updates of the same job
  return !b || Date.parse(a.updated_at || 0) >= Date.parse(b.updated_at || 0);
}

function onJob(job, initial = false) {
  if (job.kind !== "export") return;
  if (!newer(job, state.jobs.get(job.id))) return;
  state.jobs.set(job.id, job);
  // On a fresh page only a job still running is shown; a new one always is.
  const running = job.state === "queued" || job.state === "running";
  if ((state.followed === null && (!initial || running)) || (state.followed !== null && job.id >= state.followed)) {
    showJob(job);
  }
  const finished = ["succeeded", "failed", "cancelled"].includes(job.state);
  if (finished && !state.handled.has(job.id)) {
    state.handled.add(job.id);
    if (!initial) {
      loadExports();
      loadSnapshots();
    }
  }
}


// --- past exports and their cards -----------------------------------------------------------------------
// A scene export's card: polygons per class and source and split (and chips per split for chips).
function sceneCardHtml(exp) {
  const card = exp.card || {};
  const counts = card.counts || {};
  const row = (name, r) => html`<tr><td>${name}</td>${SPLITS.map((s) => html`<td class="num">${(r || {})[s] ?? 0}</td>`)}
    <td class="num">${(r || {}).total ?? SPLITS.reduce((a, s) => a + ((r || {})[s] || 0), 0)}</td></tr>`;
  const labels = Object.entries(counts.polygons_per_label || {}).map(([k, r]) => row(`${k} polygons`, r));
  const sources = Object.entries(counts.polygons_per_source || {}).map(([k, r]) => row(`from ${k}`, r));
  return html`<table class="data card-counts">
      <thead><tr><th></th>${SPLITS.map((s) => html`<th class="num">${s}</th>`)}<th class="num">total</th></tr></thead>
      <tbody>${row("scenes", { ...(counts.per_split || {}), total: counts.total })}${labels}${sources}
        ${counts.chips_per_split ? row("chips", counts.chips_per_split) : ""}</tbody>
    </table>
    <p class="muted small">${card.layout || ""}</p>`;
}

// A track export's card: tracks per split, waveforms per label and per label source.
function trackCardHtml(exp) {
  const card = exp.card || {};
  const counts = card.counts || {};
  const row = (name, r) => html`<tr><td>${name}</td>${SPLITS.map((s) => html`<td class="num">${(r || {})[s] ?? 0}</td>`)}
    <td class="num">${(r || {}).total ?? SPLITS.reduce((a, s) => a + ((r || {})[s] || 0), 0)}</td></tr>`;
  const labels = Object.entries(counts.waveforms_per_label || {}).map(([k, r]) => row(`${k.replace("_", " ")} waveforms`, r));
  const sources = Object.entries(counts.labelled_waveforms_per_source || {}).map(([k, r]) => row(`labelled by ${k}`, r));
  return html`<table class="data card-counts">
      <thead><tr><th></th>${SPLITS.map((s) => html`<th class="num">${s}</th>`)}<th class="num">total</th></tr></thead>
      <tbody>${row("tracks", { ...(counts.per_split || {}), total: counts.total })}${labels}${sources}</tbody>
    </table>
    <p class="muted small">${card.layout || ""}</p>`;
}

function cardHtml(exp) {
  if (exp.kind === "scenes") return sceneCardHtml(exp);
  if (exp.kind === "tracks") return trackCardHtml(exp);
  const card = exp.card || {};
  const counts = card.counts || exp.counts || {};
  const perClass = counts.per_class || {};
  const perSplit = counts.per_split || {};
  const multi = counts.multi_label_per_split || {};
  const ag = card.agreement || {};
  const meanOf = ag.mean_per_class || {};
  const rows = classes.map((c) => {
    const r = perClass[c.slug] || {};
    return html`<tr data-slug="${c.slug}"><td><span class="chip" style="background:${c.color}">${c.letter}</span>
      ${c.name}</td>${SPLITS.map((s) => html`<td class="num">${r[s] ?? 0}</td>`)}<td class="num">${r.total ?? 0}</td>
      <td class="num">${isNum(meanOf[c.slug]) ? meanOf[c.slug].toFixed(2) : "—"}</td></tr>`;
  });
  const sources = Object.entries(counts.per_label_source || {}).map(([k, v]) => `${k} ${v}`).join(", ");
  const snap = card.snapshot || {};
  return html`<div class="card-facts small">
      <span><strong>Snapshot</strong> #${snap.number ?? exp.snapshot_number} (id ${snap.id ?? exp.snapshot}),
        seed ${snap.seed}, consensus kept from agreement ${snap.agreement_threshold}</span>
      <span><strong>Agreement</strong> ${ag.items_with_agreement ?? 0} crowd-labelled imagettes,
        mean ${isNum(ag.mean) ? ag.mean.toFixed(2) : "—"}, min ${isNum(ag.min) ? ag.min.toFixed(2) : "—"}</span>
      <span><strong>Label sources</strong> ${sources || "—"}</span>
    </div>
    <table class="data card-counts">
      <thead><tr><th>Class</th>${SPLITS.map((s) => html`<th class="num">${s}</th>`)}<th class="num">total</th>
        <th class="num" title="mean crowd agreement of the class's consensus labels">agreement</th></tr></thead>
      <tbody>${rows}
        <tr class="totals"><th>imagettes</th>${SPLITS.map((s) => html`<th class="num">${perSplit[s] ?? 0}</th>`)}
          <th class="num">${counts.total ?? exp.items}</th><th></th></tr>
        <tr><td class="muted">of which multi-label</td>${SPLITS.map((s) => html`<td class="num">${multi[s] ?? 0}</td>`)}
          <td class="num">${SPLITS.reduce((a, s) => a + (multi[s] || 0), 0)}</td><td></td></tr>
      </tbody>
    </table>
    <p class="muted small">${card.layout || ""}</p>`;
}

function renderExports() {
  const body = $("exports-table").querySelector("tbody");
  body.replaceChildren();
  if (!state.exports.length) {
    setHtml(body, html`<tr class="empty"><td colspan="9" class="muted">No export yet.</td></tr>`);
    return;
  }
  state.exports.forEach((exp) => {
    const tr = document.createElement("tr");
    tr.id = `export-${exp.number}`; // the number people see; ids differ from it once rows were deleted
    tr.dataset.format = exp.format;
    const link = exp.available
      ? html`<a href="${safeUrl(exp.download)}" class="download-link">Download zip</a>`
      : html`<span class="muted" title="${exp.pruned_reason || "the folder was removed from the server"}">${exp.pruned_at ? "files pruned" : "files gone"}</span>`;
    setHtml(tr, html`<td>#${exp.number}</td><td>${KIND_PREFIX[exp.kind] || ""}${FORMAT_NAMES[exp.format] || exp.format}</td>
      <td class="num">#${exp.snapshot_number}</td><td class="num">${exp.items}</td>
      <td class="num">${bytes(exp.size_bytes)}</td><td>${when(exp.created_at)}</td><td>${exp.created_by || ""}</td>
      <td><button type="button" class="link" data-card="${exp.id}" aria-expanded="${state.open.has(exp.id)}">Dataset card</button></td>
      <td>${link}</td>`);
    body.appendChild(tr);
    if (state.open.has(exp.id)) {
      const cardRow = document.createElement("tr");
      cardRow.className = "card-row";
      cardRow.id = `export-card-${exp.number}`;
      setHtml(cardRow, html`<td colspan="9">${cardHtml(exp)}</td>`);
      body.appendChild(cardRow);
    }
  });
}

async function loadExports() {
  const { ok, status, data } = await api("/api/v1/exports/");
  if (!ok) {
    flash($("exports-error"), `Cannot load the exports: ${errorText(data, status)}`);
    return;
  }
  flash($("exports-error"), "");
  state.exports = data;
  $("exports-meta").textContent = `${data.length} export${data.length === 1 ? "" : "s"}`;
  renderExports();
}

$("exports-table").addEventListener("click", (ev) => {
  const id = Number(ev.target.dataset.card);
  if (!id) return;
  if (state.open.has(id)) state.open.delete(id); else state.open.add(id);
  renderExports();
});

loadSnapshots();
loadExports();
followJobs(onJob);
