"use strict";
// The jobs websocket (/ws/jobs/), shared by the pages that follow jobs live: it shows the connection in the
// page's #live pill, reconnects with back-off (not after 4401: logged out), and calls
// onJob(job, initial) for every job: oldest first for the snapshot sent on (re)connection, then each change.
// `initial` is true only for the first snapshot after the page loaded.
window.Cryolabel = window.Cryolabel || {};
window.Cryolabel.followJobs = function followJobs(onJob, live = document.getElementById("live")) {
  let retry = 500;
  let first = true;
  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/ws/jobs/`);
    ws.onopen = () => { live.textContent = "live"; live.className = "pill on"; retry = 500; };
    ws.onmessage = (ev) => {
      const msg = JSON.parse(ev.data);
      if (msg.type === "snapshot") {
        msg.jobs.slice().reverse().forEach((j) => onJob(j, first));
        first = false;
      } else if (msg.type === "job") {
        onJob(msg.job, false);
      }
    };
    ws.onclose = (ev) => {
      live.textContent = ev.code === 4401 ? "logged out" : "reconnecting…";
      live.className = "pill off";
      if (ev.code !== 4401) setTimeout(connect, retry = Math.min(retry * 2, 10000));
    };
  }
  connect();
};
