// A track's websocket (a module of tracks.js): /ws/tracks/<id>/ tells every label range marked or undone on the
// track, by anyone. It shows the connection in the #live pill and data-live, reconnects with back-off (not after
// 4401 logged out, 4403 not allowed, 4404 no such track), calls onReady() on every (re)connection (the page reads
// the labels afresh) and onMessage({range, deleted}) for each change.
import { $ } from "./util.js";

const FINAL = { 4401: "logged out", 4403: "not allowed", 4404: "no such track" };

export function followTrack(trackId, { onReady, onMessage }) {
  const live = $("live");
  const app = $("track-app");
  let retry = 500;
  let closed = false;
  let socket = null;
  function show(text, on) {
    live.textContent = text;
    live.className = on ? "pill on" : "pill off";
    app.dataset.live = on ? "open" : "closed";
  }
  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/ws/tracks/${trackId}/`);
    socket = ws;
    ws.onmessage = (ev) => {
      const message = JSON.parse(ev.data);
      if (message.type === "ready") {
        show("live", true);
        retry = 500;
        onReady();
      } else if (message.type === "range") {
        onMessage(message);
      }
    };
    ws.onclose = (ev) => {
      if (closed) return;
      show(FINAL[ev.code] || "reconnecting…", false);
      if (!FINAL[ev.code]) setTimeout(connect, retry = Math.min(retry * 2, 10000));
    };
  }
  show("connecting…", false);
  connect();
  return {
    close() {
      closed = true;
      if (socket) socket.close();
      show("offline", false);
    },
  };
}
