// The registry of versions on the models page (a module of models.js): the versions table (activate one), and for
// the selected version its loss curves, confusion matrix, F1 per class and facts.
import { api, errorText } from "./api.js";
import { confusionChart, historySeries, lineChart } from "./models-charts.js";
import { renderJobFacts } from "./models-job.js";
import {
  METRICS, NETWORK, PRIMARY, SETUP, arch, bySlug, canTrain, classes, dec, facts, flash, loadSnapshots, metricText, pct,
  splitCounts, state,
} from "./models-state.js";
import { $, fmtWhen as when, html, isNum, setHtml } from "./util.js";

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
      <td class="num" title="${snap ? `${snap.size} ${SETUP.noun}` : ""}">#${v.snapshot_number}</td>
      <td>${when(v.created_at)}</td>
      <td class="num">${metricText(PRIMARY, v.val_score)}</td>
      <td class="num">${metricText(PRIMARY, v.test_metrics && v.test_metrics[PRIMARY.name])}${evaluatedOnVal ? html`<sup title="no test split: measured on the validation split">val</sup>` : ""}</td>
      <td class="num">${metricText(METRICS[1], v.test_metrics && METRICS[1] && v.test_metrics[METRICS[1].name])}</td>
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
// What a new version had to beat on the validation split to become active on its own (stored with it).
function baselineFact(b) {
  if (!b || !isNum(b.score)) return null;
  if (!SETUP.classes) return ["baseline", `${metricText(PRIMARY, b.score)} (${b.description || "—"})`];
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
  $("detail-sub").textContent = `snapshot #${v.snapshot_number}` + (snap ? ` (${snap.size} ${SETUP.noun}: ${splitCounts(snap)})` : "") +
    ` · trained ${when(v.created_at)}` + (v.job ? ` by job #${v.job}` : "");

  const epochs = (v.hparams && v.hparams.epochs) || (v.history || []).length;
  $("loss-chart").replaceChildren(lineChart({
    series: historySeries(v.history, [["train_loss", "left"], ["val_loss", "left"]]), epochs, leftLabel: "loss",
  }));
  $("metrics-chart").replaceChildren(lineChart({
    series: historySeries(v.history, METRICS.slice(0, 2).map((m) => [`val_${m.name}`, "right"])), epochs,
    rightLabel: "validation score", rightPercent: PRIMARY.share,
  }));
  if (SETUP.classes) renderClasses(v);

  facts($("detail-activation"), [
    ["status", v.is_active ? html`<span class="badge active">active</span>` : "not active"],
    ["reason", v.activation_reason || "—"],
    ["since", v.activated_at ? when(v.activated_at) : "—"],
    ["val score", metricText(PRIMARY, v.val_score)],
    baselineFact(v.val_metrics && v.val_metrics.baseline),
  ]);
  const vm = v.val_metrics || {}, tm = v.test_metrics || {};
  facts($("detail-metrics"), [
    ["", html`<span class="col">validation</span><span class="col">test</span>`],
    ["loss", html`<span class="col">${dec(vm.loss)}</span><span class="col">${dec(tm.loss)}</span>`],
    ...METRICS.map((m) => [m.title, html`<span class="col">${metricText(m, vm[m.name])}</span><span class="col">${metricText(m, tm[m.name])}</span>`]),
  ]);
  const hp = v.hparams || {};
  facts($("detail-hparams"), Object.keys(hp).sort().map((k) => {
    const value = hp[k];
    const shown = value === null || value === undefined || value === "" ? "—" : typeof value === "object" ? JSON.stringify(value) : String(value);
    return [k, html`<code>${shown}</code>`];
  }));
}

// The classifier's own: the confusion matrix and F1 per class.
function renderClasses(v) {
  const matrix = Array.isArray(v.confusion) ? v.confusion : [];
  const total = matrix.reduce((a, row) => a + row.reduce((b, c) => b + c, 0), 0);
  const on = v.test_metrics && v.test_metrics.evaluated_on === "val" ? "validation split (no test split)" : "test split";
  $("confusion-caption").textContent = `· ${on}, ${total} item${total === 1 ? "" : "s"}`;
  if (matrix.length) $("confusion-matrix").replaceChildren(confusionChart(matrix));
  else setHtml($("confusion-matrix"), html`<p class="muted">No confusion matrix stored for this version.</p>`);
  setHtml($("f1-table").querySelector("tbody"), f1Rows(v.test_metrics && v.test_metrics.per_class_f1,
    v.val_metrics && v.val_metrics.per_class_f1));
}

export function select(id) {
  state.selectedId = id;
  document.querySelectorAll("#versions-table tr[data-version-id]").forEach((tr) => {
    tr.setAttribute("aria-selected", String(Number(tr.dataset.versionId) === id));
  });
  renderDetail();
}

export async function loadVersions({ prefer } = {}) {
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

export async function activate(id, button) {
  button.disabled = true;
  const res = await api(`/api/v1/models/${id}/activate/`, { method: "POST" });
  if (!res.ok) {
    button.disabled = false;
    flash($("versions-error"), `Could not activate: ${errorText(res.data, res.status)}`);
    return;
  }
  await loadVersions({ prefer: id });
}
