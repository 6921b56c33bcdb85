// Models page: train the classifier and follow the job live (/ws/jobs/), the registry of versions
// (activate one), and for the selected version its loss curves, confusion matrix and F1 per class.
// Charts are inline SVG drawn here; nothing is loaded from elsewhere.
import { api, errorText } from "./api.js";
import { followJobs } from "./jobs-socket.js";
import { $, fmtWhen as when, html, isNum, pageClasses, setHtml, svg as el, svgTitle as title } from "./util.js";

const NETWORK = "classifier";
const classes = pageClasses();
const bySlug = new Map(classes.map((c) => [c.slug, c]));
const canTrain = $("models-script").dataset.canTrain === "1";

const state = {
  versions: [],
  selectedId: null,
  snapshots: new Map(), // snapshot id -> snapshot
  followed: null, // id of the train job shown
  jobs: new Map(), // train job id -> latest job seen
  handled: new Set(), // train jobs whose success already reloaded the versions
  liveKey: "",
};

// --- helpers ----------------------------------------------------------------------------------
function pct(v, digits = 1) {
  return isNum(v) ? `${(v * 100).toFixed(digits)}%` : "—";
}

function dec(v, digits = 3) {
  return isNum(v) ? v.toFixed(digits) : "—";
}

function flash(box, text, kind = "bad") {
  box.className = `flash ${kind}`;
  box.textContent = text;
  box.hidden = !text;
}

// Round ticks (1, 2, 2.5, 5 × 10^k) from 0 up to at least `max`.
function ticks(max, count = 5) {
  if (!(max > 0)) return { top: 1, values: [0, 0.25, 0.5, 0.75, 1], digits: 2 };
  const raw = max / count;
  const pow = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * pow).find((s) => s >= raw);
  const top = Math.ceil(max / step - 1e-9) * step;
  const values = [];
  for (let i = 0; i * step <= top + step * 1e-6; i += 1) values.push(i * step);
  let digits = 0;
  while (digits < 6 && Math.abs(step * 10 ** digits - Math.round(step * 10 ** digits)) > 1e-6) digits += 1;
  return { top, values, digits };
}

function epochTicks(lo, hi) {
  const span = hi - lo;
  const step = span <= 10 ? 1 : span <= 20 ? 2 : span <= 50 ? 5 : span <= 100 ? 10 : 25;
  const out = [];
  for (let e = Math.ceil(lo); e <= hi + 1e-9; e += 1) if ((e - 1) % step === 0 || e === hi) out.push(e);
  return out;
}

// --- line chart over epochs: loss on the left axis, optional 0-100 % metrics on the right -------
// series: [{key, name, values: [[epoch, value]...], axis: "left"|"right"}]
function lineChart({ series, epochs, leftLabel, rightLabel, W = 520, H = 250, emptyNote = "no epoch recorded" }) {
  const hasRight = series.some((s) => s.axis === "right");
  const hasLeft = series.some((s) => s.axis !== "right");
  const m = { top: 12, right: hasRight && hasLeft ? 54 : 16, bottom: 42, left: 58 };
  const iw = W - m.left - m.right, ih = H - m.top - m.bottom;
  const last = Math.max(1, epochs || 1, ...series.flatMap((s) => s.values.map(([e]) => e)));
  const [x0, x1] = last === 1 ? [0.5, 1.5] : [1, last];
  const x = (e) => m.left + ((e - x0) / (x1 - x0)) * iw;
  const leftMax = Math.max(0, ...series.filter((s) => s.axis !== "right").flatMap((s) => s.values.map(([, v]) => v)));
  const left = hasLeft ? ticks(leftMax * 1.05) : { top: 1, values: [0, 0.25, 0.5, 0.75, 1], digits: 2 };
  const yL = (v) => m.top + ih - (v / left.top) * ih;
  const yR = (v) => m.top + ih - v * ih;

  const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, "aria-hidden": "true" });
  const grid = el("g", { class: "grid" });
  const axis = el("g", { class: "axis" });
  if (hasLeft) {
    left.values.forEach((v) => {
      grid.appendChild(el("line", { x1: m.left, x2: m.left + iw, y1: yL(v), y2: yL(v) }));
      axis.appendChild(el("text", { x: m.left - 6, y: yL(v) + 4, "text-anchor": "end" }, v.toFixed(left.digits)));
    });
  }
  if (hasRight) {
    [0, 0.25, 0.5, 0.75, 1].forEach((v) => {
      if (!hasLeft) grid.appendChild(el("line", { x1: m.left, x2: m.left + iw, y1: yR(v), y2: yR(v) }));
      const xr = hasLeft ? m.left + iw + 6 : m.left - 6;
      axis.appendChild(el("text", { x: xr, y: yR(v) + 4, "text-anchor": hasLeft ? "start" : "end" }, `${Math.round(v * 100)}%`));
    });
    if (hasLeft) axis.appendChild(el("line", { x1: m.left + iw, x2: m.left + iw, y1: m.top, y2: m.top + ih }));
  }
  epochTicks(x0, x1).forEach((e) => {
    axis.appendChild(el("line", { x1: x(e), x2: x(e), y1: m.top + ih, y2: m.top + ih + 4 }));
    axis.appendChild(el("text", { x: x(e), y: m.top + ih + 16, "text-anchor": "middle" }, String(e)));
  });
  axis.appendChild(el("line", { x1: m.left, x2: m.left, y1: m.top, y2: m.top + ih }));
  axis.appendChild(el("line", { x1: m.left, x2: m.left + iw, y1: m.top + ih, y2: m.top + ih }));
  svg.append(grid, axis);
  svg.appendChild(el("text", { class: "axis-title", x: m.left + iw / 2, y: H - 4, "text-anchor": "middle" }, "epoch"));
  const leftTitle = hasLeft ? leftLabel : rightLabel;
  svg.appendChild(el("text", { class: "axis-title", transform: `translate(14 ${m.top + ih / 2}) rotate(-90)`, "text-anchor": "middle" }, leftTitle));
  if (hasRight && hasLeft) {
    svg.appendChild(el("text", { class: "axis-title", transform: `translate(${W - 6} ${m.top + ih / 2}) rotate(90)`, "text-anchor": "middle" }, rightLabel));
  }

  series.forEach((s) => {
    const y = s.axis === "right" ? yR : yL;
    const pts = s.values.filter(([, v]) => isNum(v));
    const g = el("g", { class: `series series-${s.key}`, "data-series": s.key });
    if (pts.length > 1) {
      g.appendChild(el("path", { class: "line", d: pts.map(([e, v], i) => `${i ? "L" : "M"}${x(e).toFixed(1)},${y(v).toFixed(1)}`).join(" ") }));
    }
    pts.forEach(([e, v]) => {
      const shown = s.axis === "right" ? pct(v) : v.toFixed(4);
      g.appendChild(el("circle", { class: "point", cx: x(e), cy: y(v), r: 3.5, "data-series": s.key, "data-epoch": e, "data-value": v },
        title(`epoch ${e}: ${s.name} ${shown}`)));
    });
    svg.appendChild(g);
  });
  if (!series.some((s) => s.values.some(([, v]) => isNum(v)))) {
    svg.appendChild(el("text", { class: "empty-note", x: m.left + iw / 2, y: m.top + ih / 2, "text-anchor": "middle" }, emptyNote));
  }
  return svg;
}

function historySeries(history, keys) {
  const names = { train_loss: "train loss", val_loss: "val loss", val_top1: "val top-1", val_macro_f1: "val macro F1" };
  return keys.map(([key, axis]) => ({
    key, axis, name: names[key] || key,
    values: (history || []).map((row) => [row.epoch, row[key]]),
  }));
}

// --- confusion matrix: rows true class, columns predicted top-1; colour by the row's share --------
function shade(share) {
  // white -> the ice blue of the page, by the share of the row
  const a = [247, 251, 255], b = [9, 78, 116];
  const t = Math.max(0, Math.min(1, share));
  return `rgb(${a.map((v, i) => Math.round(v + (b[i] - v) * t)).join(",")})`;
}

function confusionChart(matrix) {
  const n = classes.length;
  const cell = 36;
  const m = { top: 14, right: 54, bottom: 126, left: 168 };
  const W = m.left + n * cell + m.right, H = m.top + n * cell + m.bottom;
  const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, "aria-hidden": "true", class: "confusion" });
  const rowSums = matrix.map((row) => row.reduce((a, b) => a + b, 0));
  classes.forEach((c, i) => {
    const cy = m.top + i * cell;
    svg.appendChild(el("text", { class: "tick", x: m.left - 8, y: cy + cell / 2 + 4, "text-anchor": "end", "data-row-label": i },
      [`${c.name} ${c.letter}`, title(`${c.letter}: ${c.name} (true class)`)]));
    const cx = m.left + i * cell + cell / 2;
    const by = m.top + n * cell + 10;
    svg.appendChild(el("text", { class: "tick", x: cx, y: by, "text-anchor": "end", transform: `rotate(-45 ${cx} ${by})`, "data-col-label": i },
      [`${c.letter} ${c.name}`, title(`${c.letter}: ${c.name} (predicted)`)]));
  });
  const cells = el("g", { class: "cells" });
  for (let i = 0; i < n; i += 1) {
    for (let j = 0; j < n; j += 1) {
      const count = (matrix[i] && matrix[i][j]) || 0;
      const share = rowSums[i] ? count / rowSums[i] : 0;
      const x = m.left + j * cell, y = m.top + i * cell;
      const g = el("g", { class: `cell${i === j ? " diag" : ""}` });
      g.appendChild(el("rect", {
        x: x + 0.5, y: y + 0.5, width: cell - 1, height: cell - 1, rx: 2, fill: shade(share),
        "data-row": i, "data-col": j, "data-count": count, "data-share": share.toFixed(4),
      }, title(`true ${classes[i].name}, predicted ${classes[j].name}: ${count}` +
        (rowSums[i] ? ` (${pct(share, 0)} of the row)` : ""))));
      g.appendChild(el("text", {
        class: `count${count === 0 ? " zero" : ""}${share > 0.55 ? " light" : ""}`, x: x + cell / 2, y: y + cell / 2 + 4,
        "text-anchor": "middle",
      }, String(count)));
      cells.appendChild(g);
    }
    svg.appendChild(el("text", { class: "row-sum", x: m.left + n * cell + 8, y: m.top + i * cell + cell / 2 + 4 },
      [String(rowSums[i]), title(`${rowSums[i]} items of true class ${classes[i].name}`)]));
  }
  svg.appendChild(cells);
  svg.appendChild(el("text", { class: "axis-title", x: m.left + n * cell + 8, y: m.top - 3 }, "n"));
  svg.appendChild(el("text", { class: "axis-title", x: m.left + (n * cell) / 2, y: H - 4, "text-anchor": "middle" }, "predicted class (top-1)"));
  svg.appendChild(el("text", { class: "axis-title", transform: `translate(12 ${m.top + (n * cell) / 2}) rotate(-90)`, "text-anchor": "middle" }, "true class"));
  return svg;
}

// --- F1 per class: a table, the test F1 also as a bar in the class colour ----------------------------
function f1Cell(v) {
  return isNum(v) ? v.toFixed(2) : html`<span class="dash" title="neither present nor predicted">—</span>`;
}

function f1Rows(test, val) {
  return html`${classes.map((c) => {
    const t = test ? test[c.slug] : null, v = val ? val[c.slug] : null;
    const bar = isNum(t) ? html`<i style="width:${(t * 100).toFixed(1)}%;background:${c.color}"></i>` : "";
    return html`<tr data-slug="${c.slug}" data-test-f1="${isNum(t) ? t : ""}">
      <td><span class="letter" style="background:${c.color}">${c.letter}</span>${c.name}</td>
      <td class="num">${f1Cell(t)}</td><td class="bar-col"><span class="meter">${bar}</span></td>
      <td class="num">${f1Cell(v)}</td></tr>`;
  })}`;
}

// --- versions table -------------------------------------------------------------------------------
function arch(hp) {
  if (!hp || !hp.arch) return "—";
  return `${hp.arch}${hp.image_size ? ` · ${hp.image_size} px` : ""}${hp.weights_path ? " · fine-tuned" : ""}`;
}

function epochsOf(v) {
  return (v.history && v.history.length) || (v.hparams && v.hparams.epochs) || "—";
}

function renderVersions() {
  const body = $("versions-table").querySelector("tbody");
  if (!state.versions.length) {
    setHtml(body, html`<tr class="empty"><td colspan="10" class="muted">No version yet${canTrain ? ": press Train to make the first one" : ""}.</td></tr>`);
    $("versions-meta").textContent = "";
    return;
  }
  setHtml(body, html`${state.versions.map((v) => {
    const snap = state.snapshots.get(v.snapshot);
    const evaluatedOnVal = v.test_metrics && v.test_metrics.evaluated_on === "val";
    const activation = v.is_active
      ? html`<span class="badge active">active</span> <span class="reason">${v.activation_reason}</span>`
      : v.activated_at ? html`<span class="reason muted" title="active until another version was">was active: ${v.activation_reason}</span>`
        : v.activation_reason ? html`<span class="reason muted not-activated">${v.activation_reason}</span>`
          : html`<span class="muted">never active</span>`;
    return html`
    <tr data-version-id="${v.id}" data-active="${v.is_active}" aria-selected="${v.id === state.selectedId}" tabindex="0"
        class="${v.is_active ? "is-active" : ""}">
      <td><span class="muted">${v.network}</span> <strong>v${v.number}</strong></td>
      <td class="num" title="${snap ? `${snap.size} imagettes` : ""}">#${v.snapshot_number}</td>
      <td>${when(v.created_at)}</td>
      <td class="num">${pct(v.val_score)}</td>
      <td class="num">${pct(v.test_metrics && v.test_metrics.top1)}${evaluatedOnVal ? html`<sup title="no test split: measured on the validation split">val</sup>` : ""}</td>
      <td class="num">${dec(v.test_metrics && v.test_metrics.macro_f1)}</td>
      <td class="num">${epochsOf(v)}</td>
      <td>${arch(v.hparams)}</td>
      <td class="activation">${activation}</td>
      <td class="actions">${canTrain && !v.is_active ? html`<button type="button" class="secondary activate-button" data-activate="${v.id}">Activate</button>` : ""}</td>
    </tr>`;
  })}`);
  const active = state.versions.find((v) => v.is_active);
  $("versions-meta").textContent = `${state.versions.length} version${state.versions.length === 1 ? "" : "s"}` +
    (active ? ` · active: v${active.number}` : " · none active");
}

// --- the selected version -----------------------------------------------------------------------
// rows: [name, value] (text, or markup made with html``); null rows are left out.
function facts(box, rows) {
  setHtml(box, html`${rows.filter(Boolean).map(([k, v]) => html`<dt>${k}</dt><dd>${v}</dd>`)}`);
}

function splitCounts(snap) {
  const s = (snap && snap.counts && snap.counts.per_split) || {};
  return ["train", "val", "test"].map((k) => `${s[k] || 0} ${k}`).join(" · ");
}

// What a new version had to beat on the validation split to become active on its own (stored with it).
function baselineFact(b) {
  if (!b || !isNum(b.score)) return null;
  const how = b.majority > b.chance && b.majority_class
    ? `always ${(bySlug.get(b.majority_class) || { name: b.majority_class }).name}, the most frequent of ${b.n_items} items`
    : `chance over ${Math.round(1 / b.chance)} classes`;
  return ["baseline", `${pct(b.score)} (${how})`];
}

function renderDetail() {
  const v = state.versions.find((x) => x.id === state.selectedId);
  const box = $("version-detail");
  if (!v) { box.hidden = true; return; }
  box.hidden = false;
  box.dataset.versionId = v.id;
  const snap = state.snapshots.get(v.snapshot);
  setHtml($("detail-title"), html`${v.network} v${v.number}${v.is_active ? html` <span class="badge active">active</span>` : ""}`);
  $("detail-sub").textContent = `snapshot #${v.snapshot_number}` + (snap ? ` (${snap.size} imagettes: ${splitCounts(snap)})` : "") +
    ` · trained ${when(v.created_at)}` + (v.job ? ` by job #${v.job}` : "");

  const epochs = (v.hparams && v.hparams.epochs) || (v.history || []).length;
  $("loss-chart").replaceChildren(lineChart({
    series: historySeries(v.history, [["train_loss", "left"], ["val_loss", "left"]]), epochs, leftLabel: "loss",
  }));
  $("metrics-chart").replaceChildren(lineChart({
    series: historySeries(v.history, [["val_top1", "right"], ["val_macro_f1", "right"]]), epochs, rightLabel: "validation score",
  }));

  const matrix = Array.isArray(v.confusion) ? v.confusion : [];
  const total = matrix.reduce((a, row) => a + row.reduce((b, c) => b + c, 0), 0);
  const on = v.test_metrics && v.test_metrics.evaluated_on === "val" ? "validation split (no test split)" : "test split";
  $("confusion-caption").textContent = `· ${on}, ${total} item${total === 1 ? "" : "s"}`;
  if (matrix.length) $("confusion-matrix").replaceChildren(confusionChart(matrix));
  else setHtml($("confusion-matrix"), html`<p class="muted">No confusion matrix stored for this version.</p>`);
  setHtml($("f1-table").querySelector("tbody"), f1Rows(v.test_metrics && v.test_metrics.per_class_f1,
    v.val_metrics && v.val_metrics.per_class_f1));

  facts($("detail-activation"), [
    ["status", v.is_active ? html`<span class="badge active">active</span>` : "not active"],
    ["reason", v.activation_reason || "—"],
    ["since", v.activated_at ? when(v.activated_at) : "—"],
    ["val score", pct(v.val_score)],
    baselineFact(v.val_metrics && v.val_metrics.baseline),
  ]);
  const vm = v.val_metrics || {}, tm = v.test_metrics || {};
  facts($("detail-metrics"), [
    ["", html`<span class="col">validation</span><span class="col">test</span>`],
    ["loss", html`<span class="col">${dec(vm.loss)}</span><span class="col">${dec(tm.loss)}</span>`],
    ["top-1", html`<span class="col">${pct(vm.top1)}</span><span class="col">${pct(tm.top1)}</span>`],
    ["macro F1", html`<span class="col">${dec(vm.macro_f1)}</span><span class="col">${dec(tm.macro_f1)}</span>`],
    ["exact match", html`<span class="col">${pct(vm.exact_match)}</span><span class="col">${pct(tm.exact_match)}</span>`],
  ]);
  const hp = v.hparams || {};
  facts($("detail-hparams"), Object.keys(hp).sort().map((k) => {
    const value = hp[k];
    const shown = value === null || value === undefined || value === "" ? "—" : typeof value === "object" ? JSON.stringify(value) : String(value);
    return [k, html`<code>${shown}</code>`];
  }));
}

function select(id) {
  state.selectedId = id;
  document.querySelectorAll("#versions-table tr[data-version-id]").forEach((tr) => {
    tr.setAttribute("aria-selected", String(Number(tr.dataset.versionId) === id));
  });
  renderDetail();
}

async function loadSnapshots() {
  const res = await api("/api/v1/snapshots/");
  if (res.ok && Array.isArray(res.data)) res.data.forEach((s) => state.snapshots.set(s.id, s));
}

async function loadVersions({ prefer } = {}) {
  const [res] = await Promise.all([api(`/api/v1/models/?network=${NETWORK}`), loadSnapshots()]);
  if (!res.ok) {
    flash($("versions-error"), `Could not load the versions: ${errorText(res.data, res.status)}`);
    return;
  }
  $("versions-error").hidden = true;
  state.versions = res.data;
  const ids = new Set(state.versions.map((v) => v.id));
  if (prefer && ids.has(prefer)) state.selectedId = prefer;
  else if (!ids.has(state.selectedId)) {
    const active = state.versions.find((v) => v.is_active);
    state.selectedId = active ? active.id : state.versions.length ? state.versions[0].id : null;
  }
  renderVersions();
  renderDetail();
  if (state.followed !== null) renderJobFacts(state.jobs.get(state.followed));
}

async function activate(id, button) {
  button.disabled = true;
  const res = await api(`/api/v1/models/${id}/activate/`, { method: "POST" });
  if (!res.ok) {
    button.disabled = false;
    flash($("versions-error"), `Could not activate: ${errorText(res.data, res.status)}`);
    return;
  }
  await loadVersions({ prefer: id });
}

// --- training, followed live --------------------------------------------------------------------
const jobBox = $("train-job");

// Time left of a running training job: the mean duration of its last (up to) three epochs times the epochs left,
// read from its progress (which counts the batches of the current epoch; the final evaluation weighs 0.2 epoch).
function secondsLeft(job, history, epochs) {
  const times = history.slice(-3).map((r) => (isNum(r.seconds_with_checkpoint) ? r.seconds_with_checkpoint : r.seconds)).filter(isNum);
  if (!times.length) return null;
  const perEpoch = times.reduce((a, b) => a + b, 0) / times.length;
  return Math.max(0, (epochs + 0.2) * (1 - (job.progress || 0))) * perEpoch;
}

function duration(seconds) {
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")} min`;
}

function timeLeftText(job, history, epochs) {
  const left = secondsLeft(job, history, epochs);
  return left === null ? "estimated after the first epoch" : `about ${duration(left)}`;
}

function renderJobFacts(job) {
  if (!job) return;
  const mt = job.metrics || {};
  const history = Array.isArray(mt.history) ? mt.history : [];
  const lastRow = history[history.length - 1];
  const snap = [...state.snapshots.values()].find((s) => s.id === mt.snapshot);
  const epochs = mt.epochs || (mt.hparams && mt.hparams.epochs);
  const rows = [
    mt.snapshot ? ["snapshot", snap ? `#${snap.number} · ${snap.size} imagettes (${splitCounts(snap)})` : `id ${mt.snapshot}`] : null,
    mt.device ? ["device", `${mt.device}${mt.hparams && mt.hparams.arch ? ` · ${arch(mt.hparams)}` : ""}` +
      (mt.threads && mt.threads.intra_op ? ` · ${mt.threads.intra_op} CPU thread${mt.threads.intra_op === 1 ? "" : "s"}` : "")] : null,
    epochs ? ["epochs", `${history.length} of ${epochs} done`] : null,
    job.state === "running" && epochs ? ["time left", timeLeftText(job, history, epochs)] : null,
    lastRow ? ["last epoch", `loss ${dec(lastRow.train_loss, 4)} · val loss ${dec(lastRow.val_loss, 4)} · val top-1 ${pct(lastRow.val_top1)}` +
      ` · val macro F1 ${dec(lastRow.val_macro_f1)}` + (isNum(lastRow.seconds) ? ` · ${lastRow.seconds.toFixed(1)} s` : "")] : null,
    lastRow && lastRow.val_per_class_f1 ? ["val F1 per class", html`<span class="chips f1-chips">${classes.map((c) => {
      const f = lastRow.val_per_class_f1[c.slug];
      return html`<span class="chip${isNum(f) ? "" : " none"}" style="${isNum(f) ? `background:${c.color}` : ""}"
        title="${c.name}" data-slug="${c.slug}">${c.letter} <span class="p">${isNum(f) ? f.toFixed(2) : "—"}</span></span>`;
    })}</span>`] : null,
    job.state === "succeeded" && job.result && job.result.number ? ["result", `v${job.result.number}` +
      (job.result.active ? " (now active)" : ` (${job.result.activation || "not activated"})`)] : null,
  ];
  facts($("train-job-facts"), rows);
  if (mt.snapshot && !snap) loadSnapshots().then(() => { if (state.snapshots.has(mt.snapshot)) renderJobFacts(state.jobs.get(state.followed)); });
}

function showJob(job) {
  state.followed = job.id;
  jobBox.hidden = false;
  jobBox.dataset.state = job.state;
  jobBox.dataset.jobId = job.id;
  jobBox.className = `train-job state-${job.state}`;
  const badge = $("train-job-state");
  badge.className = `badge ${job.state}`;
  badge.textContent = job.state;
  $("train-job-title").textContent = `Training job #${job.id}`;
  $("train-job-reason").textContent = [job.reason, job.started_at ? `started ${when(job.started_at)}` : ""].filter(Boolean).join(" · ");
  const pctDone = Math.round((job.progress || 0) * 100);
  const bar = jobBox.querySelector(".progress");
  bar.setAttribute("aria-valuenow", String(pctDone));
  bar.querySelector(".bar").style.width = `${pctDone}%`;
  $("train-job-pct").textContent = `${pctDone}%`;
  const failed = job.state === "failed";
  $("train-job-message").textContent = failed ? "" : job.message || "";
  const error = $("train-job-error");
  if (failed) {
    setHtml(error, html`<strong>Training failed.</strong> <span class="error-text">${job.error || job.message || "no reason given"}</span>`);
    error.hidden = false;
  } else {
    error.hidden = true;
  }
  renderJobFacts(job);

  const mt = job.metrics || {};
  const history = Array.isArray(mt.history) ? mt.history : [];
  const epochs = mt.epochs || (mt.hparams && mt.hparams.epochs) || (job.params && job.params.epochs) || history.length || 1;
  const key = `${job.id}:${job.state}:${epochs}:${history.length}`;
  if (key !== state.liveKey) {
    state.liveKey = key;
    $("live-loss-chart").replaceChildren(lineChart({
      series: historySeries(history, [["train_loss", "left"], ["val_loss", "left"], ["val_top1", "right"]]),
      epochs, leftLabel: "loss", rightLabel: "val top-1", W: 560, H: 230,
      emptyNote: job.state === "queued" || job.state === "running" ? "waiting for the first epoch…" : "no epoch ran",
    }));
  }
  const button = $("train-button");
  if (button) button.disabled = job.state === "queued" || job.state === "running";
}

function newer(a, b) {
  // whether job row `a` is at least as recent as `b` (the POST answer may arrive after socket updates)
  if (!b) return true;
  return Date.parse(a.updated_at || 0) >= Date.parse(b.updated_at || 0);
}

function onJob(job, initial) {
  if (job.kind !== "train") return;
  const before = state.jobs.get(job.id);
  if (!newer(job, before)) return;
  state.jobs.set(job.id, job);
  if (state.followed === null || job.id >= state.followed) showJob(job);
  if (job.state === "succeeded" && !state.handled.has(job.id)) {
    state.handled.add(job.id);
    if (!initial) loadVersions({ prefer: job.result && job.result.model_version });
  }
}


async function train(ev) {
  ev.preventDefault();
  const input = $("train-epochs");
  const button = $("train-button");
  const body = { network: NETWORK };
  const raw = input.value.trim();
  if (raw) {
    const epochs = Number(raw);
    if (!Number.isInteger(epochs) || epochs < 1 || epochs > 500) {
      flash($("train-flash"), "Epochs must be a whole number from 1 to 500 (or empty for the default).");
      input.focus();
      return;
    }
    body.epochs = epochs;
  }
  const hparamsText = $("train-hparams") ? $("train-hparams").value.trim() : "";
  if (hparamsText) {
    let hparams;
    try {
      hparams = JSON.parse(hparamsText);
    } catch (err) {
      hparams = undefined;
    }
    if (!hparams || typeof hparams !== "object" || Array.isArray(hparams)) {
      flash($("train-flash"), 'Hyper-parameters must be a JSON object, e.g. {"image_size": 64}.');
      $("train-options").open = true;
      $("train-hparams").focus();
      return;
    }
    body.hparams = hparams;
  }
  $("train-flash").hidden = true;
  button.disabled = true;
  const res = await api("/api/v1/train/", { method: "POST", body });
  if (!res.ok) {
    button.disabled = false;
    flash($("train-flash"), `Could not start the training: ${errorText(res.data, res.status)}`);
    return;
  }
  onJob(res.data, false);
}

// --- events -------------------------------------------------------------------------------------
if ($("train-form")) $("train-form").addEventListener("submit", train);
$("versions-table").addEventListener("click", (ev) => {
  const button = ev.target.closest("button[data-activate]");
  if (button) { activate(Number(button.dataset.activate), button); return; }
  const tr = ev.target.closest("tr[data-version-id]");
  if (tr) select(Number(tr.dataset.versionId));
});
$("versions-table").addEventListener("keydown", (ev) => {
  const tr = ev.target.closest && ev.target.closest("tr[data-version-id]");
  if (!tr || ev.target.tagName === "BUTTON") return;
  if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); select(Number(tr.dataset.versionId)); }
  else if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
    ev.preventDefault();
    const next = ev.key === "ArrowDown" ? tr.nextElementSibling : tr.previousElementSibling;
    if (next && next.dataset.versionId) { next.focus(); select(Number(next.dataset.versionId)); }
  }
});

loadVersions();
followJobs(onJob);
