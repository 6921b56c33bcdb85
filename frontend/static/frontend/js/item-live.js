// An item's websocket, for the pages that follow one item's rows live (the polar map's /ws/scenes/<id>/: every
// polygon change; the track page's /ws/tracks/<id>/: every label range marked or undone), by anyone. It shows the
// connection in the #live pill and the app element's data-live, reconnects with back-off (not after 4401 logged
// out, 4403 not allowed, 4404 no such item), calls onReady() on every (re)connection, when the page reads the rows
// afresh (what changed while it was away), then onMessage(message) for each message of the item's `type`.
import { $ } from "./util.js";

export function followItem({ path, app: appId, type, noun }, { onReady, onMessage }) {
  const FINAL = { 4401: "logged out", 4403: "not allowed", 4404: `no such ${noun}` };
  const live = $("live");
  const app = $(appId);
  let retry = 500;
  let closed = false;
  let socket = null;
  function show(text, on, shown = true) {
    live.hidden = !shown; // nothing followed (the polar map before a scene is chosen): no "offline" alarm
    live.textContent = text;
    live.className = on ? "pill on" : "pill off";
    app.dataset.live = on ? "open" : "closed";
  }
  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}${path}`);
    socket = ws;
    ws.onmessage = (ev) => {
      const message = JSON.parse(ev.data);
      if (message.type === "ready") {
        show("live", true);
        retry = 500;
        onReady();
      } else if (message.type === type) {
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
      show("offline", false, false);
    },
  };
}
