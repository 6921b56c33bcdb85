// A scene's websocket (a module of scenes.js): /ws/scenes/<id>/ tells every polygon change on the scene, by
// anyone. It shows the connection in the #live pill and data-live, reconnects with back-off (not after 4401 logged
// out, 4403 not allowed, 4404 no such scene), and calls onReady() on every (re)connection, when the page reads the
// polygons afresh (what changed while it was away), then onMessage({feature, deleted}) for each change.
import { $ } from "./util.js";

const FINAL = { 4401: "logged out", 4403: "not allowed", 4404: "no such scene" };

export function followScene(sceneId, { onReady, onMessage }) {
  const live = $("live");
  const app = $("scene-app");
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
    const ws = new WebSocket(`${scheme}://${location.host}/ws/scenes/${sceneId}/`);
    socket = ws;
    ws.onmessage = (ev) => {
      const message = JSON.parse(ev.data);
      if (message.type === "ready") {
        show("live", true);
        retry = 500;
        onReady();
      } else if (message.type === "polygon") {
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
