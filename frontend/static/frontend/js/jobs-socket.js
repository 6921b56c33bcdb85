// The jobs websocket (/ws/jobs/), shared by the pages that follow jobs live (an ES module): it shows the
// connection in the page's #live pill (when there is one), reconnects with back-off (not after 4401: logged out),
// and calls onJob(job, initial) for every job: oldest first for the snapshot sent on (re)connection, then each
// change. `initial` is true only for the first snapshot after the page loaded. The handle it returns tells
// whether the socket is open now (a page may poll while it is not).

export function followJobs(onJob, live = document.getElementById("live")) {
  let retry = 500;
  let first = true;
  let socket = null;
  function show(text, on) {
    if (!live) return;
    live.textContent = text;
    live.className = on ? "pill on" : "pill off";
  }
  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/ws/jobs/`);
    socket = ws;
    ws.onopen = () => { show("live", true); retry = 500; };
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
      show(ev.code === 4401 ? "logged out" : "reconnecting…", false);
      if (ev.code !== 4401) setTimeout(connect, retry = Math.min(retry * 2, 10000));
    };
  }
  connect();
  return { isOpen: () => Boolean(socket && socket.readyState === WebSocket.OPEN) };
}
