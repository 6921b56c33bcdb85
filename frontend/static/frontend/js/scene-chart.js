// Ice-chart import from the polar map (a module of scenes.js; admins): the files go to the upload endpoint like
// any other ingest (a GeoPackage, a GeoJSON, a zipped shapefile or a shapefile with its sidecars), an ingest job
// imports the chart onto every scene it overlaps, and the page follows that job on the jobs socket. The polygons
// arrive on the scene's socket like anyone's edits; the page reads them again once the job has finished all the
// same (a long import can commit rows older than what the socket looks back for).
import { csrfToken, errorText } from "./api.js";
import { followJobs } from "./jobs-socket.js";
import { $ } from "./util.js";

export function importCharts({ status, reload }) {
  const form = $("chart-form");
  const files = $("chart-files");
  const out = $("chart-status");
  const button = $("chart-import");
  let waiting = null; // the id of the job this page started

  function say(text, bad = false) {
    out.textContent = text;
    out.classList.toggle("bad", bad);
  }

  followJobs((job) => {
    if (job.id !== waiting) return;
    if (job.state === "succeeded") {
      waiting = null;
      button.disabled = false;
      const charts = (job.result && job.result.charts) || [];
      const refused = (job.result && job.result.errors) || [];
      say(charts.length ? charts.map((c) => c.summary).join("; ")
        : `Nothing imported${refused.length ? `: ${refused[0].reason}` : ""}.`, !charts.length);
      reload();
    } else if (job.state === "failed" || job.state === "cancelled") {
      waiting = null;
      button.disabled = false;
      say(`Import ${job.state}: ${job.error || job.message || "see the job"}`, true);
    } else {
      say(`${job.message || job.state}…`);
    }
  }, null);

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!files.files.length) {
      say("Choose the chart's file(s) first.", true);
      return;
    }
    const body = new FormData();
    for (const file of files.files) body.append("files", file);
    button.disabled = true;
    say("Uploading…");
    let res;
    try {
      res = await fetch("/api/v1/uploads/", {
        method: "POST", body, credentials: "same-origin", headers: { "X-CSRFToken": csrfToken(), Accept: "application/json" },
      });
    } catch (err) {
      button.disabled = false;
      say(`The server cannot be reached (${err.message}).`, true);
      return;
    }
    const data = await res.json().catch(() => null);
    if (!res.ok) {
      button.disabled = false;
      say(`Refused: ${errorText(data, res.status)}`, true);
      return;
    }
    waiting = data.id;
    files.value = "";
    say(`Importing (job ${data.id})…`);
    status(`Ice chart uploaded: job ${data.id} imports it.`);
  });
}
