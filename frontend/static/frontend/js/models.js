// Models page: train the classifier and follow the job live (/ws/jobs/), the registry of versions
// (activate one), and for the selected version its loss curves, confusion matrix and F1 per class.
// Charts are inline SVG drawn here (models-charts.js); nothing is loaded from elsewhere.
//
// This module follows the jobs and wires the page; beside it: models-state.js (what was loaded, small helpers),
// models-charts.js (the SVG charts), models-versions.js (the versions table and the selected version),
// models-job.js (the training job shown live).
import { api, errorText } from "./api.js";
import { followJobs } from "./jobs-socket.js";
import { showJob } from "./models-job.js";
import { NETWORK, flash, state } from "./models-state.js";
import { activate, loadVersions, select } from "./models-versions.js";
import { $ } from "./util.js";

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
