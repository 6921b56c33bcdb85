// Clicks on the map (a module of map.js): the nearest point opens its imagette in a popup (with the details an
// expert may read), a density cell tells its count and offers to show its points; the pointer shows what is under it.
import { map } from "./map-base.js";
import { dotRadius } from "./map-layers.js";
import { SOURCE_NAMES, canReview, classes, className, getJson, maskClasses, state } from "./map-state.js";
import { chip, fmtCount, fmtLatLon, fmtUtc, html, setHtml } from "./util.js";

// --- clicking: the nearest point opens its imagette ------------------------------------------------
function nearest(containerPoint, within) {
  const p = state.points;
  if (!p || state.view !== "points") return -1;
  let best = -1;
  let bestD = within * within;
  for (let i = 0; i < p.n; i++) {
    const dx = state.px[i] - containerPoint.x;
    const dy = state.py[i] - containerPoint.y;
    const d2 = dx * dx + dy * dy;
    if (d2 <= bestD) { // later points are drawn on top: they win ties
      bestD = d2;
      best = i;
    }
  }
  return best;
}

// The popup's content is a node of ours, not an HTML string: Leaflet's popup.update() (after the image loaded)
// re-inserts the same node, so the details written into it later stay (a string would be parsed again, empty).
function popupContent(i) {
  const p = state.points;
  const id = p.ids[i];
  const predicted = p.src[i] === 1;
  let shown = maskClasses(p.mask[i]);
  if (!shown.length) shown = [classes[p.cls[i]]];
  const conf = p.conf[i];
  const how = predicted
    ? html`Predicted by classifier v${p.modelVersion}${Number.isNaN(conf) ? "" : html` · confidence <strong>${Math.round(conf * 100)}%</strong>`}${p.mask[i] ? "" : " (most probable class; none above its threshold)"}`
    : html`Curated label${Number.isNaN(conf) ? "" : ` · crowd agreement ${conf.toFixed(2)}`}`;
  const preview = `/api/v1/imagettes/${id}/preview/`;
  const box = document.createElement("div");
  box.className = "map-popup";
  box.dataset.imagetteId = id;
  box.dataset.source = SOURCE_NAMES[p.src[i]];
  setHtml(box, html`
    <a href="${preview}" target="_blank" rel="noopener" class="pop-image"><img src="${preview}" alt="Imagette #${id}" width="150" height="150"></a>
    <div class="pop-body">
      <div class="pop-title"><strong>Imagette #${id}</strong> <span class="muted">${fmtLatLon(p.lat[i], p.lon[i])}</span></div>
      <div class="chips">${shown.map((c) => chip(c))}</div>
      <div class="pop-how">${how}</div>
      <div class="pop-extra muted"></div>
      <a class="pop-link" href="${preview}" target="_blank" rel="noopener">Open the full image ↗</a>
    </div>`);
  return box;
}

async function addDetails(popup, box, id) {
  // Experts and admins may read the whole imagette: when it was taken, both its label and the prediction.
  if (!canReview) return;
  let item;
  try {
    item = await getJson(`/api/v1/imagettes/${id}/`);
  } catch (err) {
    box.dataset.details = "failed";
    return;
  }
  const lines = [];
  if (item.acquisition_time) lines.push(fmtUtc(item.acquisition_time));
  if (item.swath) lines.push(item.swath);
  if (item.label_source) lines.push(`label (${item.label_source}): ${item.labels.map(className).join(", ")}`);
  if (item.prediction) {
    const predicted = item.prediction.classes.map(className).join(", ") || "—";
    lines.push(`model v${item.prediction.model_version}: ${predicted} (${Math.round(item.prediction.confidence * 100)}%)`);
  }
  setHtml(box.querySelector(".pop-extra"), html`${lines.map((line, n) => html`${n > 0 ? html`<br>` : ""}${line}`)}`);
  box.dataset.details = "ready";
  if (popup.isOpen()) popup.update();
}

function openPoint(i) {
  const p = state.points;
  const box = popupContent(i);
  const popup = L.popup({ minWidth: 320, maxWidth: 380, className: "imagette-popup" })
    .setLatLng([p.lat[i], p.lon[i]])
    .setContent(box)
    .openOn(map);
  const img = box.querySelector("img");
  img.addEventListener("load", () => { if (popup.isOpen()) popup.update(); }, { once: true });
  addDetails(popup, box, p.ids[i]);
  return popup;
}

function cellAt(latlng) {
  const d = state.density;
  if (!d) return -1;
  const latCell = Math.floor(latlng.lat / d.cell) * d.cell;
  const lonCell = Math.floor(latlng.lng / d.cell) * d.cell;
  const eps = d.cell / 1000;
  return d.lat.findIndex((lat, i) => Math.abs(lat - latCell) < eps && Math.abs(d.lon[i] - lonCell) < eps);
}

function openCell(latlng, showPoints) {
  const d = state.density;
  const at = cellAt(latlng);
  if (at < 0) return;
  const latCell = d.lat[at];
  const lonCell = d.lon[at];
  const content = document.createElement("div");
  content.className = "cell-popup";
  setHtml(content, html`<strong>${fmtCount(d.count[at])}</strong> imagette${d.count[at] === 1 ? "" : "s"} in
    ${fmtLatLon(latCell, lonCell)} – ${fmtLatLon(latCell + d.cell, lonCell + d.cell)}<br>
    <button type="button" class="link">Show them as points</button>`);
  content.querySelector("button").addEventListener("click", () => {
    map.closePopup();
    showPoints();
    map.fitBounds([[latCell, lonCell], [latCell + d.cell, lonCell + d.cell]], { maxZoom: 8 });
  });
  L.popup().setLatLng(latlng).setContent(content).openOn(map);
}

// Listens to the map's clicks and pointer moves; showPoints() switches the page to the points view (map.js).
export function listenToClicks(showPoints) {
  map.on("click", (ev) => {
    if (state.view === "density") {
      openCell(ev.latlng, showPoints);
      return;
    }
    const i = nearest(ev.containerPoint, dotRadius() + 4);
    if (i >= 0) openPoint(i);
  });

  let hoverFrame = 0;
  map.on("mousemove", (ev) => {
    if (hoverFrame) return;
    hoverFrame = requestAnimationFrame(() => {
      hoverFrame = 0;
      const hit = state.view === "density" ? cellAt(ev.latlng) >= 0 : nearest(ev.containerPoint, dotRadius() + 4) >= 0;
      map.getContainer().classList.toggle("over-point", hit);
    });
  });
}
