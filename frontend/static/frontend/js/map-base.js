// The map itself (a module of map.js): a Leaflet map in plate carrée with its panes, the ocean, the graticule and
// the frame, and the land and coastlines from the bundled Natural Earth vector (world-atlas, see scripts/vendor.sh):
// no tile server, nothing from the internet.
import { app, note } from "./map-state.js";
import { $ } from "./util.js";

const landUrl = $("map-script").dataset.land;
const landCoarseUrl = $("map-script").dataset.landCoarse;

// Plate carrée (EPSG:4326): the whole globe, poles included, as the reference study drew its maps.
export const map = L.map("map", {
  crs: L.CRS.EPSG4326, minZoom: 0, maxZoom: 10, zoomSnap: 0.25, zoomDelta: 0.5, wheelPxPerZoomLevel: 90,
  maxBounds: [[-100, -220], [100, 220]], maxBoundsViscosity: 0.7, attributionControl: true,
});
map.attributionControl.setPrefix(false);
map.attributionControl.addAttribution("Land: Natural Earth (world-atlas)");
map.createPane("land").style.zIndex = "250";
map.createPane("frame").style.zIndex = "260";
map.createPane("dots").style.zIndex = "450";
map.getPane("dots").style.pointerEvents = "none";
map.fitBounds([[-78, -180], [86, 180]]);

// The ocean is the world's rectangle (beyond it, the page's grey), the graticule under the land, and a frame
// above it that hides what the land's copies draw past ±180°.
const landRenderer = L.canvas({ pane: "land", padding: 0.3 });
const frameRenderer = L.canvas({ pane: "frame", padding: 0.3 });
const WORLD = [[-90, -180], [90, 180]];
L.rectangle(WORLD, { pane: "land", renderer: landRenderer, stroke: false, fillColor: "#cfe0ea", fillOpacity: 1,
  interactive: false }).addTo(map);
const graticule = [];
for (let lon = -150; lon < 180; lon += 30) graticule.push([[-90, lon], [90, lon]]);
for (let lat = -60; lat <= 60; lat += 30) graticule.push([[lat, -180], [lat, 180]]);
L.polyline(graticule, { pane: "land", renderer: landRenderer, color: "#b3c7d4", weight: 0.6, interactive: false })
  .addTo(map);
for (const outside of [[[-100, -560], [100, -180]], [[-100, 180], [100, 560]]]) {
  L.rectangle(outside, { pane: "frame", renderer: frameRenderer, stroke: false, fillColor: "#eef2f5",
    fillOpacity: 1, interactive: false }).addTo(map);
}
L.rectangle(WORLD, { pane: "frame", renderer: frameRenderer, color: "#8fa3b1", weight: 1, fill: false,
  interactive: false }).addTo(map);

// Natural Earth 1:110m at world scale, 1:50m once zoomed in (fetched then): the world view stays quick to redraw.
const LAND_DETAIL_ZOOM = 3;
const land = { coarse: null, fine: null, shown: null, failed: false };
const landStyle = { color: "#7d8d99", weight: 0.7, fillColor: "#e9e5da", fillOpacity: 1 };

function landLayer(which) {
  if (land[which]) return land[which];
  land[which] = fetch(which === "fine" ? landUrl : landCoarseUrl)
    .then((res) => (res.ok ? res.json() : Promise.reject(new Error(`HTTP ${res.status}`))))
    .then((topo) => {
      if (!window.topojson) throw new Error("topojson-client is missing");
      return L.geoJSON(acrossAntimeridian(window.topojson.feature(topo, topo.objects.land)), {
        pane: "land", renderer: landRenderer, interactive: false, smoothFactor: 1.2, style: landStyle,
      });
    });
  return land[which];
}

// Natural Earth cuts nothing at ±180°: a ring that crosses it (Chukotka, Fiji) jumps across the whole flat
// map. Such rings are unwrapped (longitudes made continuous) and drawn once more shifted by 360°, so each
// half shows on its side. Rings around a pole (Antarctica) already run along the map's edge: kept as they are.
function acrossAntimeridian(geojson) {
  const polygons = [];
  const collect = (geometry) => {
    if (geometry.type === "Polygon") polygons.push(geometry.coordinates);
    else if (geometry.type === "MultiPolygon") polygons.push(...geometry.coordinates);
    else if (geometry.type === "GeometryCollection") geometry.geometries.forEach(collect);
  };
  (geojson.type === "FeatureCollection" ? geojson.features.map((f) => f.geometry) : [geojson.geometry || geojson])
    .filter(Boolean).forEach(collect);
  const out = [];
  for (const polygon of polygons) {
    let crosses = false;
    const rings = polygon.map((ring) => {
      const unwrapped = [ring[0].slice()];
      let shift = 0;
      for (let i = 1; i < ring.length; i++) {
        const step = ring[i][0] - ring[i - 1][0];
        if (step > 180) shift -= 360;
        else if (step < -180) shift += 360;
        unwrapped.push([ring[i][0] + shift, ring[i][1]]);
      }
      if (shift !== 0) return ring; // winds around a pole
      if (unwrapped.some((p) => p[0] > 180 || p[0] < -180)) crosses = true;
      return unwrapped;
    });
    out.push(rings);
    if (crosses) {
      const west = Math.min(...rings[0].map((p) => p[0]));
      const offset = west < -180 ? 360 : -360;
      out.push(rings.map((ring) => ring.map((p) => [p[0] + offset, p[1]])));
    }
  }
  return { type: "Feature", properties: {}, geometry: { type: "MultiPolygon", coordinates: out } };
}

function updateLand() {
  if (land.failed) return;
  const which = map.getZoom() >= LAND_DETAIL_ZOOM ? "fine" : "coarse";
  landLayer(which).then((layer) => {
    const still = (map.getZoom() >= LAND_DETAIL_ZOOM ? "fine" : "coarse") === which;
    if (!still || land.shown === layer) return;
    if (land.shown) map.removeLayer(land.shown);
    layer.addTo(map);
    land.shown = layer;
    app.dataset.land = "ready";
  }).catch(() => {
    land.failed = true;
    app.dataset.land = "missing";
    note("Coastlines are not installed (run `make install`): the points are drawn without them.");
  });
}
map.on("zoomend", updateLand);
updateLand();
