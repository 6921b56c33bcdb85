// The polar map (a module of scenes.js): a Leaflet map on the platform's polar tile grid (EPSG:3413 north,
// EPSG:3976 south; Proj4Leaflet over the very numbers the tile endpoint uses, sent by the page), with the ocean,
// a graticule, and land and coastlines from the bundled Natural Earth vector reprojected in the browser: no tile
// server, nothing from the internet. The map is rebuilt when the pole changes (a Leaflet map has one CRS).
import { $ } from "./util.js";

const landUrl = $("scenes-script").dataset.land;
const EXTRA_ZOOM = 2; // zoom past the finest tiles (scaled up): vertices can be placed between pixels of 40 m

export function gridCrs(grid) {
  const resolutions = [];
  for (let z = grid.min_zoom; z <= grid.max_zoom + EXTRA_ZOOM; z++) {
    resolutions.push((2 * grid.extent) / grid.tile_size / 2 ** z);
  }
  return new L.Proj.CRS(grid.crs, grid.proj4, {
    origin: [-grid.extent, grid.extent], resolutions,
    bounds: L.bounds([-grid.extent, -grid.extent], [grid.extent, grid.extent]),
  });
}

// Which latitudes each pole's map shows (land and graticule beyond them are left out: they would only cost time).
const POLE = {
  north: { center: [78, -45], zoom: 2, inside: (lat) => lat > 35, parallels: [40, 50, 60, 70, 80] },
  south: { center: [-78, 0], zoom: 2, inside: (lat) => lat < -35, parallels: [-40, -50, -60, -70, -80] },
};

let landTopo = null; // the TopoJSON, fetched once per page

export function createMap(grid) {
  const pole = POLE[grid.pole];
  const crs = gridCrs(grid);
  const map = L.map("map", {
    crs, minZoom: 1, maxZoom: grid.max_zoom + EXTRA_ZOOM, zoomSnap: 0.5, zoomDelta: 0.5, worldCopyJump: false,
    center: pole.center, zoom: pole.zoom, attributionControl: true, pmIgnore: false, // Geoman opt-in: this map draws
  });
  map.attributionControl.setPrefix(false);
  map.attributionControl.addAttribution(`Land: Natural Earth (world-atlas) · ${grid.crs}`);
  map.createPane("land").style.zIndex = "150"; // under the scene tiles (tilePane 200)
  map.createPane("coast").style.zIndex = "350"; // coastlines over the tiles, under the polygons (overlayPane 400)
  map.getPane("coast").style.pointerEvents = "none";
  const landRenderer = L.canvas({ pane: "land", padding: 0.3 });
  const coastRenderer = L.canvas({ pane: "coast", padding: 0.3 });
  map.grid = grid;
  drawGraticule(map, pole, landRenderer);
  drawLand(map, pole, landRenderer, coastRenderer);
  return map;
}

function drawGraticule(map, pole, renderer) {
  const lines = [];
  for (const lat of pole.parallels) {
    const ring = [];
    for (let lon = -180; lon <= 180; lon += 2) ring.push([lat, lon]);
    lines.push(ring);
  }
  const edge = pole.parallels[0];
  const top = Math.sign(edge) * 89.5;
  for (let lon = -180; lon < 180; lon += 30) {
    const line = [];
    for (let lat = edge; Math.abs(lat) <= Math.abs(top); lat += Math.sign(edge)) line.push([lat, lon]);
    lines.push(line);
  }
  L.polyline(lines, { pane: "land", renderer, color: "#b3c7d4", weight: 0.7, interactive: false }).addTo(map);
}

// Natural Earth keeps every ring whole except at ±180°, where the two halves meet on the polar plane anyway:
// only the polygons of the map's hemisphere are kept (the others would project far off the plane).
function hemisphere(geojson, inside) {
  const polygons = [];
  const collect = (geometry) => {
    if (!geometry) return;
    if (geometry.type === "Polygon") polygons.push(geometry.coordinates);
    else if (geometry.type === "MultiPolygon") polygons.push(...geometry.coordinates);
    else if (geometry.type === "GeometryCollection") geometry.geometries.forEach(collect);
  };
  (geojson.type === "FeatureCollection" ? geojson.features.map((f) => f.geometry) : [geojson.geometry])
    .forEach(collect);
  const kept = polygons.filter((rings) => rings[0].some(([, lat]) => inside(lat)));
  return { type: "Feature", properties: {}, geometry: { type: "MultiPolygon", coordinates: kept } };
}

function drawLand(map, pole, landRenderer, coastRenderer) {
  const app = $("scene-app");
  (landTopo ||= fetch(landUrl).then((res) => (res.ok ? res.json() : Promise.reject(new Error(`HTTP ${res.status}`)))))
    .then((topo) => {
      if (!window.topojson) throw new Error("topojson-client is missing");
      const land = hemisphere(window.topojson.feature(topo, topo.objects.land), pole.inside);
      L.geoJSON(land, { pane: "land", renderer: landRenderer, interactive: false, smoothFactor: 1.5,
        style: { stroke: false, fillColor: "#e9e5da", fillOpacity: 1 } }).addTo(map);
      L.geoJSON(land, { pane: "coast", renderer: coastRenderer, interactive: false, smoothFactor: 1.5,
        style: { color: "#6f7f8b", weight: 0.8, fill: false } }).addTo(map);
      app.dataset.land = "ready";
    })
    .catch(() => {
      app.dataset.land = "missing";
      const note = $("map-note");
      note.textContent = "Coastlines are not installed (run `make install`): the map is drawn without them.";
      note.hidden = false;
    });
}
