// Jobs page: a table kept live by /ws/jobs/ (reconnects by itself), and the start/cancel buttons.
(function () {
  "use strict";
  const body = document.getElementById("jobs-body");
  const live = document.getElementById("live");
  const csrf = document.querySelector("[name=csrfmiddlewaretoken]").value;
  const jobs = new Map();

  function fmtTime(iso) {
    if (!iso) return "";
    const d = new Date(iso);
    return d.toLocaleString();
  }

  function row(job) {
    const tr = document.createElement("tr");
    tr.id = "job-" + job.id;
    tr.dataset.state = job.state;
    tr.className = "state-" + job.state;
    const pct = Math.round((job.progress || 0) * 100);
    const finished = ["succeeded", "failed", "cancelled"].includes(job.state);
    const metrics = job.metrics && Object.keys(job.metrics).length ? " · " + Object.entries(job.metrics)
      .filter(([, v]) => typeof v !== "object").map(([k, v]) => k + " " + (typeof v === "number" ? +v.toFixed(4) : v)).join(", ") : "";
    tr.innerHTML = `
      <td><a href="#" data-detail="${job.id}">${job.id}</a></td>
      <td>${escapeHtml(job.kind)}</td>
      <td><span class="badge ${job.state}">${job.state}</span></td>
      <td class="wide">
        <div class="progress" role="progressbar" aria-valuemin="0" aria-valuemax="100" aria-valuenow="${pct}">
          <div class="bar" style="width:${pct}%"></div><span>${pct}%</span>
        </div>
        <div class="msg">${escapeHtml(job.state === "failed" && job.error ? job.error : job.message)}${escapeHtml(metrics)}</div>
      </td>
      <td>${escapeHtml(job.reason || "")}</td>
      <td>${escapeHtml(job.created_by || "system")}</td>
      <td>${fmtTime(job.started_at || job.created_at)}</td>
      <td>${finished ? "" : `<button class="link" data-cancel="${job.id}">Cancel</button>`}</td>`;
    return tr;
  }

  function escapeHtml(s) {
    return String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
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

  window.Cryolabel.followJobs((job) => render(job), live);

  async function post(url, data) {
    const res = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
      body: JSON.stringify(data || {}),
      credentials: "same-origin",
    });
    const payload = await res.json().catch(() => ({}));
    if (!res.ok) alert("Refused: " + (payload.detail || JSON.stringify(payload)));
    return payload;
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
      const res = await fetch(`/api/v1/jobs/${t.dataset.detail}/`, { credentials: "same-origin" });
      const job = await res.json();
      document.getElementById("job-detail").hidden = false;
      document.getElementById("detail-id").textContent = `${job.id} · ${job.kind} · ${job.state}`;
      document.getElementById("detail-log").textContent = (job.log || "") + (job.error ? "\n" + job.error : "");
    }
  });
})();
