// A scene's polygons on the map (a module of scenes.js): loaded over the API, kept current from the scene's
// websocket (/ws/scenes/<id>/: everyone's changes, one's own included), drawn by class with ice shaded by its
// sea-ice concentration, and selectable. The store keeps one Leaflet layer per polygon and the version the server
// gave it: a change arriving twice (the socket and the API both tell it) or out of order is kept only when newer.
import { api, errorText } from "./api.js";
import { $, textNode } from "./util.js";

const app = $("scene-app");
const WATER = [31, 78, 121]; // 0 % ice
const ICE = [244, 248, 251]; // 100 % ice

function sicColour(sic) {
  const t = Math.min(1, Math.max(0, (sic ?? 0) / 100));
  const [r, g, b] = WATER.map((w, i) => Math.round(w + (ICE[i] - w) * t));
  return `rgb(${r}, ${g}, ${b})`;
}

// How polygons are shown: filled (drawing), outlines only (a prediction layer or the image seen through them), or
// hidden. O cycles them; the choice is the page's, not the polygons'.
export const POLYGON_DISPLAYS = ["filled", "outlines", "hidden"];

export function polygonStyle(properties, selected = false, display = "filled") {
  const [color, fillColor] = {
    lead: ["#e4572e", "#e4572e"], water: ["#0d2a44", sicColour(0)],
  }[properties.label] || ["#35617f", sicColour(properties.sic)];
  const outlines = display === "outlines";
  return {
    color: selected ? "#ffd23f" : color, fillColor, weight: selected ? 3 : outlines ? 2 : 1.6, opacity: 1,
    fillOpacity: outlines ? 0 : selected ? 0.6 : 0.5,
    dashArray: properties.source === "ice_chart" ? "5 4" : null, // a chart's polygon until a person edits it
  };
}

export function describe(properties, classes) {
  const name = (classes.find((c) => c.value === properties.label) || { name: properties.label }).name;
  const parts = [name];
  if (properties.sic !== null && properties.sic !== undefined) parts.push(`SIC ${Math.round(properties.sic)} %`);
  if (properties.stage) parts.push(properties.stage);
  const by = properties.source === "ice_chart" ? "from an ice chart" : properties.author ? `by ${properties.author}` : "";
  return `${parts.join(" · ")}${by ? ` — ${by}` : ""} (v${properties.version})`;
}

export class PolygonStore {
  constructor(map, classes, { onSelect, onChange, renderer } = {}) {
    this.map = map;
    this.classes = classes;
    this.group = L.featureGroup().addTo(map);
    this.renderer = renderer || L.canvas({ padding: 0.5, tolerance: 3 });
    this.layers = new Map(); // id -> L.Polygon (its .feature is the server's feature)
    this.selected = null;
    this.onSelect = onSelect || (() => {});
    this.onChange = onChange || (() => {});
    this.sceneId = null;
    this.loading = null;
    this.display = "filled";
  }

  style(layer) {
    return polygonStyle(layer.feature.properties, this.selected === layer.feature.id, this.display);
  }

  // Filled, outlines or hidden (POLYGON_DISPLAYS): hidden takes the group off the map, so that clicks reach the map
  // (accepting a predicted region under a polygon) and nothing covers the layers beneath.
  setDisplay(display) {
    this.display = POLYGON_DISPLAYS.includes(display) ? display : "filled";
    if (this.display === "hidden") this.map.removeLayer(this.group);
    else if (!this.map.hasLayer(this.group)) {
      this.group.addTo(this.map);
      if (this.map.pm.globalEditModeEnabled()) this.group.eachLayer((l) => l.pm.enable({ allowSelfIntersection: false }));
    }
    for (const layer of this.layers.values()) layer.setStyle(this.style(layer));
    app.dataset.polygonDisplay = this.display;
  }

  count() {
    return this.layers.size;
  }

  feature(id) {
    const layer = this.layers.get(id);
    return layer ? layer.feature : null;
  }

  // A feature from the server (API answer or socket message): drawn, or its layer replaced when it is newer.
  upsert(feature) {
    const known = this.layers.get(feature.id);
    if (known && known.feature.properties.version >= feature.properties.version) return known;
    const layer = L.GeoJSON.geometryToLayer(feature, { pmIgnore: false, snapIgnore: false, renderer: this.renderer });
    layer.feature = feature;
    layer.setStyle(this.style(layer));
    // A node, not a string: Leaflet parses a string as HTML, and a stage is text a person typed.
    layer.bindTooltip(() => textNode(describe(layer.feature.properties, this.classes)), { sticky: true, opacity: 0.9 });
    layer.on("click", (ev) => {
      if (this.map.pm.globalRemovalModeEnabled() || this.map.pm.globalDrawModeEnabled()) return;
      if (app.dataset.mode === "accept") return; // the click goes on to the map: accept the predicted region there
      L.DomEvent.stopPropagation(ev);
      this.select(feature.id);
    });
    if (known) this.group.removeLayer(known);
    this.layers.set(feature.id, layer);
    this.group.addLayer(layer);
    if (this.map.pm.globalEditModeEnabled()) layer.pm.enable({ allowSelfIntersection: false });
    if (this.selected === feature.id) this.onSelect(layer.feature);
    this.changed();
    return layer;
  }

  remove(id) {
    const layer = this.layers.get(id);
    if (!layer) return;
    this.group.removeLayer(layer);
    this.layers.delete(id);
    if (this.selected === id) this.select(null);
    this.changed();
  }

  // A socket message: {feature, deleted}. A deletion is final (a deleted polygon never comes back under its id).
  apply(message) {
    if (this.arrived) this.arrived.add(message.feature.id);
    if (message.deleted) this.remove(message.feature.id);
    else this.upsert(message.feature);
  }

  select(id) {
    const before = this.selected;
    this.selected = this.layers.has(id) ? id : null;
    for (const which of [before, this.selected]) {
      const layer = this.layers.get(which);
      if (layer) layer.setStyle(this.style(layer));
    }
    if (this.selected !== null) this.layers.get(this.selected).bringToFront();
    this.onSelect(this.selected === null ? null : this.layers.get(this.selected).feature);
  }

  clear() {
    this.group.clearLayers();
    this.layers.clear();
    this.selected = null;
    this.changed();
  }

  changed() {
    app.dataset.polygons = String(this.layers.size);
    this.onChange(this);
  }

  // Every live polygon of the scene, page by page; what the socket brought meanwhile stays when it is newer.
  async load(sceneId) {
    if (this.sceneId !== sceneId) this.clear();
    this.sceneId = sceneId;
    const seen = new Set();
    this.arrived = new Set(); // what the socket tells during the load is current whatever the pages said
    let after = 0;
    for (;;) {
      const res = await api(`/api/v1/scenes/${sceneId}/polygons/?after=${after}`);
      if (this.sceneId !== sceneId) return; // another scene was chosen meanwhile
      if (!res.ok) throw new Error(`the polygons could not be loaded: ${errorText(res.data, res.status)}`);
      for (const feature of res.data.features) {
        seen.add(feature.id);
        this.upsert(feature);
      }
      if (res.data.next_after === null || res.data.next_after === undefined) break;
      after = res.data.next_after;
    }
    for (const id of [...this.layers.keys()]) {
      if (!seen.has(id) && !this.arrived.has(id)) this.remove(id); // deleted while the page was not listening
    }
    this.arrived = null;
  }
}
