// The training job followed live on the models page (a module of models.js): its state, progress, facts (time
// left, last epoch) and the live loss chart.
import { historySeries, lineChart } from "./models-charts.js";
import { METRICS, PRIMARY, SETUP, arch, classes, dec, facts, loadSnapshots, metricText, splitCounts, state } from "./models-state.js";
import { $, fmtWhen as when, html, isNum, setHtml } from "./util.js";

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

export function renderJobFacts(job) {
  if (!job) return;
  const mt = job.metrics || {};
  const history = Array.isArray(mt.history) ? mt.history : [];
  const lastRow = history[history.length - 1];
  const snap = [...state.snapshots.values()].find((s) => s.id === mt.snapshot);
  const epochs = mt.epochs || (mt.hparams && mt.hparams.epochs);
  const rows = [
    mt.snapshot ? ["snapshot", snap ? `#${snap.number} · ${snap.size} ${SETUP.noun} (${splitCounts(snap)})` : `id ${mt.snapshot}`] : null,
    mt.device ? ["device", `${mt.device}${mt.hparams && mt.hparams.arch ? ` · ${arch(mt.hparams)}` : ""}` +
      (mt.threads && mt.threads.intra_op ? ` · ${mt.threads.intra_op} CPU thread${mt.threads.intra_op === 1 ? "" : "s"}` : "")] : null,
    epochs ? ["epochs", `${history.length} of ${epochs} done`] : null,
    job.state === "running" && epochs ? ["time left", timeLeftText(job, history, epochs)] : null,
    lastRow ? ["last epoch", `loss ${dec(lastRow.train_loss, 4)} · val loss ${dec(lastRow.val_loss, 4)}` +
      METRICS.slice(0, 2).map((m) => ` · val ${m.title} ${metricText(m, lastRow[`val_${m.name}`])}`).join("") +
      (isNum(lastRow.seconds) ? ` · ${lastRow.seconds.toFixed(1)} s` : "")] : null,
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

export function showJob(job) {
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
      series: historySeries(history, [["train_loss", "left"], ["val_loss", "left"], [`val_${PRIMARY.name}`, "right"]]),
      epochs, leftLabel: "loss", rightLabel: `val ${PRIMARY.title}`, W: 560, H: 230, rightPercent: PRIMARY.share,
      emptyNote: job.state === "queued" || job.state === "running" ? "waiting for the first epoch…" : "no epoch ran",
    }));
  }
  const button = $("train-button");
  if (button) button.disabled = job.state === "queued" || job.state === "running";
}
