// Jobs page: a table kept live by /ws/jobs/ (reconnects by itself), and the start/cancel buttons.
import { api, errorText } from "./api.js";
import { followJobs } from "./jobs-socket.js";
import { $, fmtWhen, html, jobBadge, setHtml } from "./util.js";

const body = $("jobs-body");
const jobs = new Map();

function metricsText(metrics) {
  if (!metrics || !Object.keys(metrics).length) return "";
  return " · " + Object.entries(metrics).filter(([, v]) => typeof v !== "object")
    .map(([k, v]) => k + " " + (typeof v === "number" ? +v.toFixed(4) : v)).join(", ");
}

function row(job) {
  const tr = document.createElement("tr");
  tr.id = "job-" + job.id;
  tr.dataset.state = job.state;
  tr.className = "state-" + job.state;
  const pct = Math.round((job.progress || 0) * 100);
  const finished = ["succeeded", "failed", "cancelled"].includes(job.state);
  setHtml(tr, html`
    <td><a href="#" data-detail="${job.id}">${job.id}</a></td>
    <td>${job.kind}</td>
    <td>${jobBadge(job)}</td>
    <td class="wide">
      <div class="progress" role="progressbar" aria-valuemin="0" aria-valuemax="100" aria-valuenow="${pct}">
        <div class="bar" style="width:${pct}%"></div><span>${pct}%</span>
      </div>
      <div class="msg">${job.state === "failed" && job.error ? job.error : job.message}${metricsText(job.metrics)}</div>
    </td>
    <td>${job.reason || ""}</td>
    <td>${job.created_by || "system"}</td>
    <td>${fmtWhen(job.started_at || job.created_at)}</td>
    <td>${finished ? "" : html`<button class="link" data-cancel="${job.id}">Cancel</button>`}</td>`);
  return tr;
}

function render(job) {
  jobs.set(job.id, job);
  const empty = body.querySelector("tr.empty");
  if (empty) empty.remove();
  const fresh = row(job);
  const old = document.getElementById("job-" + job.id);
  if (old) {
    old.replaceWith(fresh);
  } else {
    // Newest first.
    const later = Array.from(body.children).find((tr) => Number(tr.id.slice(4)) < job.id);
    body.insertBefore(fresh, later || null);
  }
}

followJobs((job) => render(job));

async function post(url, data) {
  const res = await api(url, { method: "POST", body: data || {} });
  if (!res.ok) alert("Refused: " + errorText(res.data, res.status));
  return res.data || {};
}

document.addEventListener("click", async (ev) => {
  const t = ev.target;
  if (t.dataset.startKind) {
    const job = await post("/api/v1/jobs/", { kind: t.dataset.startKind, reason: "started from the Jobs page" });
    if (job.id) render(job);
  } else if (t.dataset.cancel) {
    await post(`/api/v1/jobs/${t.dataset.cancel}/cancel/`);
  } else if (t.dataset.detail) {
    ev.preventDefault();
    const res = await api(`/api/v1/jobs/${t.dataset.detail}/`);
    if (!res.ok) return;
    const job = res.data;
    $("job-detail").hidden = false;
    $("detail-id").textContent = `${job.id} · ${job.kind} · ${job.state}`;
    $("detail-log").textContent = (job.log || "") + (job.error ? "\n" + job.error : "");
  }
});
