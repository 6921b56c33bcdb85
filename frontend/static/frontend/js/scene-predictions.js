// The `sic` network's prediction of a scene on the polar map (a module of scenes.js): its SIC or uncertainty layer
// over the scene's image (P cycles off / SIC / uncertainty), and for experts the review: "Accept region" (A) turns
// the predicted region under a click into a polygon of source "prediction" (the server vectorises it), "Reviewed"
// takes the scene out of the queue, "Next scene to review" opens the least sure one.
import { api, errorText } from "./api.js";
import { SceneTiles } from "./scene-layers.js";
import { $, fmtUtc } from "./util.js";

const app = $("scene-app");
const LAYERS = ["", "sic", "uncertainty"];
const LEGEND = { sic: ["0 % (water)", "100 % ice"], uncertainty: ["sure", "unsure"] };

const PredictionTiles = SceneTiles.extend({
  getTileUrl(coords) {
    return `/api/v1/scene-predictions/${this.prediction.id}/tiles/${coords.z}/${coords.x}/${coords.y}.png?layer=${this.layer}`;
  },
});

export function predictionTools({ status, store, choose, beforeAccept }) {
  const state = { map: null, grid: null, scene: null, prediction: null, layer: null, accepting: false };
  const tools = $("prediction-tools");
  const canReview = app.dataset.canReview === "1";

  function selectedLayer() {
    return document.querySelector("input[name=prediction-layer]:checked").value;
  }

  function show() {
    if (state.layer) state.map.removeLayer(state.layer);
    state.layer = null;
    const layer = selectedLayer();
    const legend = $("prediction-legend");
    legend.hidden = !layer;
    legend.dataset.layer = layer;
    if (layer) [$("legend-low").textContent, $("legend-high").textContent] = LEGEND[layer];
    if (!layer || !state.prediction) return;
    state.layer = new PredictionTiles(state.scene, state.grid, { pane: "prediction", opacity: 0.75 });
    state.layer.prediction = state.prediction;
    state.layer.layer = layer;
    state.layer.addTo(state.map);
  }
  document.querySelectorAll("input[name=prediction-layer]").forEach((i) => i.addEventListener("change", show));

  function setAccepting(on) {
    if (on && beforeAccept) beforeAccept(); // drawing, editing and deleting stop: a click is for one tool
    state.accepting = on && Boolean(state.prediction);
    const button = $("tool-accept");
    if (button) button.setAttribute("aria-pressed", String(state.accepting));
    if (state.map) state.map.getContainer().classList.toggle("accepting", state.accepting);
    app.dataset.mode = state.accepting ? "accept" : (app.dataset.mode === "accept" ? "idle" : app.dataset.mode);
  }

  async function accept(latlng) {
    const res = await api(`/api/v1/scene-predictions/${state.prediction.id}/accept/`, {
      method: "POST", body: { lon: latlng.lng, lat: latlng.lat },
    });
    if (!res.ok) {
      status(`Region refused: ${errorText(res.data, res.status)}`, true);
      return;
    }
    store.upsert(res.data);
    status(res.status === 200 // a double click, or another expert was first: the region's one polygon
      ? `This region was accepted already: polygon ${res.data.id}.`
      : `Accepted the predicted region as polygon ${res.data.id} (SIC ${res.data.properties.sic ?? 0} %).`);
  }

  if (canReview) {
    $("tool-accept").addEventListener("click", () => setAccepting(!state.accepting));
    $("prediction-reviewed").addEventListener("click", async () => {
      if (!state.prediction) return;
      const res = await api(`/api/v1/scene-predictions/${state.prediction.id}/reviewed/`, { method: "POST" });
      status(res.ok ? "Scene reviewed: it left the review queue." : `Not saved: ${errorText(res.data, res.status)}`, !res.ok);
      if (res.ok) state.prediction.reviewed = true;
    });
    $("next-review").addEventListener("click", async () => {
      const res = await api("/api/v1/review/scenes/");
      if (!res.ok) return status(`The review queue could not be read: ${errorText(res.data, res.status)}`, true);
      const next = res.data.find((p) => !state.scene || p.scene !== state.scene.id) || res.data[0];
      if (!next) return status("No scene waits for review: predict scenes with an active sic version first.");
      await choose(next.scene);
      document.querySelector("input[name=prediction-layer][value=uncertainty]").checked = true;
      show();
    });
  }

  return {
    // A new map (the pole changed): the prediction pane sits over the image, under the coastlines.
    attach(map, grid) {
      state.map = map;
      state.grid = grid;
      map.createPane("prediction").style.zIndex = "250";
      map.on("click", (ev) => { if (state.accepting) accept(ev.latlng); });
    },
    async load(scene) {
      setAccepting(false);
      if (state.layer) state.map.removeLayer(state.layer);
      state.layer = null;
      state.scene = scene;
      state.prediction = null;
      tools.hidden = true;
      app.dataset.prediction = "";
      if (!scene) return;
      const res = await api(`/api/v1/scenes/${scene.id}/predictions/`);
      if (!res.ok || state.scene !== scene) return;
      const current = res.data.find((p) => p.is_current && p.active) || res.data.find((p) => p.is_current);
      if (!current) return;
      state.prediction = current;
      tools.hidden = false;
      app.dataset.prediction = String(current.id);
      $("prediction-name").textContent = `${current.network} v${current.version}`;
      $("prediction-info").textContent = `Mean SIC ${current.mean_sic.toFixed(0)} %, uncertainty `
        + `${current.uncertainty.toFixed(2)}${current.reviewed ? " · reviewed" : ""} · ${fmtUtc(current.created_at)}`;
      show();
    },
    cycle() {
      const next = LAYERS[(LAYERS.indexOf(selectedLayer()) + 1) % LAYERS.length];
      document.querySelector(`input[name=prediction-layer][value="${next}"]`).checked = true;
      show();
    },
    toggleAccept() { if (canReview) setAccepting(!state.accepting); },
    stop() { setAccepting(false); },
    accepting: () => state.accepting,
  };
}
