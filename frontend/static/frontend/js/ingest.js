// Ingest page: pick or drop files, upload them (multipart, with upload progress), then follow the
// ingest job live over /ws/jobs/ (polling the job while the socket is down) and show what it made.
import { api, csrfToken } from "./api.js";
import { followJobs } from "./jobs-socket.js";
import { $, html, jobBadge, setHtml } from "./util.js";

const ACCEPTED = [".zip", ".tif", ".tiff", ".png", ".nc"];
const FINISHED = ["succeeded", "failed", "cancelled"];
const input = $("file-input");
const zone = $("drop-zone");
const progress = $("upload-progress");
const message = $("upload-message");
let files = []; // {file, refused}
let uploading = null; // the XMLHttpRequest in flight

function size(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  const units = ["kB", "MB", "GB"];
  let v = bytes / 1024, i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i += 1; }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

// content: text, or markup made with html``.
function flash(content, kind) {
  setHtml(message, content);
  message.className = "flash" + (kind ? " " + kind : "");
  message.hidden = false;
}

// --- choosing files -------------------------------------------------------------------------------
function add(list) {
  for (const file of list) {
    if (files.some((f) => f.file.name === file.name && f.file.size === file.size)) continue;
    const ok = ACCEPTED.some((ext) => file.name.toLowerCase().endsWith(ext));
    files.push({ file, refused: ok ? null : `not uploaded: only ${ACCEPTED.join(", ")} files are accepted` });
  }
  message.hidden = true;
  renderFiles();
}

function renderFiles() {
  const table = $("file-list");
  table.hidden = files.length === 0;
  setHtml(table.querySelector("tbody"), html`${files.map((f, i) => html`
    <tr class="${f.refused ? "refused" : ""}" data-file="${f.file.name}">
      <td>${f.file.name}${f.refused ? html` <span class="small">(${f.refused})</span>` : ""}</td>
      <td class="size">${size(f.file.size)}</td>
      <td><button type="button" class="link" data-remove="${i}" title="remove from the upload" ${uploading ? html`disabled` : ""}>remove</button></td>
    </tr>`)}`);
  const good = files.filter((f) => !f.refused);
  const total = good.reduce((s, f) => s + f.file.size, 0);
  const button = $("upload");
  button.disabled = !good.length || !!uploading;
  button.textContent = good.length ? `Upload ${good.length} file${good.length === 1 ? "" : "s"} (${size(total)})` : "Upload";
  $("clear-files").hidden = !files.length || !!uploading;
}

input.addEventListener("change", () => { add(input.files); input.value = ""; });
["dragenter", "dragover"].forEach((t) => zone.addEventListener(t, (ev) => {
  ev.preventDefault();
  zone.classList.add("over");
}));
["dragleave", "dragend", "drop"].forEach((t) => zone.addEventListener(t, () => zone.classList.remove("over")));
zone.addEventListener("drop", (ev) => {
  ev.preventDefault();
  if (!uploading) add(ev.dataTransfer.files);
});
// Dropping a file next to the zone must not make the browser navigate to it.
window.addEventListener("dragover", (ev) => ev.preventDefault());
window.addEventListener("drop", (ev) => ev.preventDefault());
$("file-list").addEventListener("click", (ev) => {
  const i = ev.target.dataset.remove;
  if (i !== undefined) { files.splice(Number(i), 1); renderFiles(); }
});
$("clear-files").addEventListener("click", () => { files = []; renderFiles(); });

// --- uploading --------------------------------------------------------------------------------------
function setProgress(fraction, text) {
  const pct = Math.round(fraction * 100);
  progress.hidden = false;
  progress.setAttribute("aria-valuenow", String(pct));
  progress.querySelector(".bar").style.width = pct + "%";
  progress.querySelector("span").textContent = text || `${pct}%`;
}

$("upload-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const good = files.filter((f) => !f.refused);
  if (!good.length || uploading) return;
  const form = new FormData();
  good.forEach((f) => form.append("files", f.file, f.file.name));
  const total = good.reduce((s, f) => s + f.file.size, 0);
  const xhr = new XMLHttpRequest();
  uploading = xhr;
  renderFiles();
  message.hidden = true;
  setProgress(0, "uploading…");
  xhr.upload.addEventListener("progress", (e) => {
    if (e.lengthComputable) setProgress(e.loaded / e.total, `${size(e.loaded)} of ${size(e.total)}`);
  });
  xhr.upload.addEventListener("load", () => setProgress(1, "uploaded; the server stores the files…"));
  xhr.addEventListener("load", () => {
    uploading = null;
    let data = null;
    try { data = JSON.parse(xhr.responseText); } catch (err) { data = null; }
    if (xhr.status === 201 && data) {
      setProgress(1, "uploaded");
      flash(`Uploaded ${good.length} file${good.length === 1 ? "" : "s"} (${size(total)}); ingest job #${data.id} takes them in.`, "ok");
      follow(data, good.map((f) => f.file.name));
      files = files.filter((f) => f.refused);
    } else {
      progress.hidden = true;
      const reasons = data ? (data.files || [data.detail || JSON.stringify(data)]) : [`HTTP ${xhr.status}`];
      flash(html`<strong>Upload refused:</strong> ${reasons.join("; ")}`, "bad");
    }
    renderFiles();
  });
  xhr.addEventListener("error", () => {
    uploading = null;
    progress.hidden = true;
    flash(html`<strong>Upload failed:</strong> the connection to the server broke. Nothing was ingested; try again.`, "bad");
    renderFiles();
  });
  xhr.open("POST", "/api/v1/uploads/");
  xhr.setRequestHeader("X-CSRFToken", csrfToken());
  xhr.setRequestHeader("Accept", "application/json");
  xhr.send(form);
});

window.addEventListener("beforeunload", (ev) => {
  if (uploading) { ev.preventDefault(); ev.returnValue = ""; }
});

// --- following the ingest jobs ------------------------------------------------------------------------
const followed = new Map(); // job id -> {node, job, names, seenAt}

function shortPath(path) {
  // Uploaded files sit in MEDIA_ROOT/uploads/<hex>/: the name the person chose is what matters.
  return String(path || "").replace(/^.*\/uploads\/[0-9a-f]{32}\//, "");
}

function follow(job, names) {
  $("ingest-jobs-card").hidden = false;
  const node = document.createElement("div");
  node.className = "ingest-job";
  node.dataset.jobId = job.id;
  $("ingest-jobs").prepend(node);
  followed.set(job.id, { node, job, names, seenAt: Date.now() });
  render(job);
}

function render(job) {
  const entry = followed.get(job.id);
  if (!entry) return;
  entry.job = job;
  entry.seenAt = Date.now();
  const node = entry.node;
  node.dataset.state = job.state;
  node.className = `ingest-job state-${job.state}`;
  const pct = Math.round((job.progress || 0) * 100);
  const r = job.result || {};
  const errors = r.errors || [];
  let outcome = "";
  if (job.state === "succeeded") {
    outcome = html`<div class="counts" id="ingest-result-${job.id}">
        <div class="tile" data-count="created"><span class="n">${r.created ?? 0}</span><span class="what">created</span></div>
        <div class="tile" data-count="duplicates"><span class="n">${r.duplicates ?? 0}</span><span class="what">duplicates</span><span class="sub">already known</span></div>
        ${r.labelled ? html`<div class="tile" data-count="labelled"><span class="n">${r.labelled}</span><span class="what">with imported labels</span></div>` : ""}
        <div class="tile${errors.length ? " bad" : ""}" data-count="refused"><span class="n">${errors.length}</span><span class="what">refused</span></div>
      </div>
      ${errors.length ? html`<table class="refused"><thead><tr><th>Refused file</th><th>Reason</th></tr></thead><tbody>
        ${errors.map((e) => html`<tr data-refused="${shortPath(e.path)}"><td class="path" title="${e.path}">${shortPath(e.path)}</td>
          <td class="reason">${e.reason}</td></tr>`)}</tbody></table>` : ""}`;
  } else if (job.state === "failed") {
    outcome = html`<div class="flash bad"><strong>The ingest job failed:</strong> ${job.error || job.message}</div>`;
  } else if (job.state === "cancelled") {
    outcome = html`<div class="flash">The ingest job was cancelled.</div>`;
  }
  const names = entry.names.length > 3 ? `${entry.names.slice(0, 3).join(", ")} and ${entry.names.length - 3} more` : entry.names.join(", ");
  setHtml(node, html`
    <div class="head"><a href="/jobs/">Job #${job.id}</a>${jobBadge(job)}
      <span class="files" title="${entry.names.join("\n")}">${names}</span></div>
    <div class="progress" role="progressbar" aria-valuemin="0" aria-valuemax="100" aria-valuenow="${pct}">
      <div class="bar" style="width:${pct}%"></div><span>${pct}%</span></div>
    <div class="msg">${job.message || ""}</div>
    ${outcome}`);
}

// The socket tells about the followed jobs; poll those it has not told about for a while (socket down, or a
// missed change).
const socket = followJobs((job) => { if (followed.has(job.id)) render(job); });
setInterval(async () => {
  for (const [id, entry] of followed) {
    if (FINISHED.includes(entry.job.state)) continue;
    const quiet = Date.now() - entry.seenAt > (socket.isOpen() ? 5000 : 1000);
    if (!quiet) continue;
    const res = await api(`/api/v1/jobs/${id}/`);
    if (res.ok) render(res.data); // else the next round tries again
  }
}, 1000);

renderFiles();
