// Zoom and pan of the large image on the labelling page (a module of label.js): the wheel and the +/− buttons
// zoom, a drag pans once zoomed in, a double click fits the image again.
import { current, image, viewer } from "./label-state.js";
import { $ } from "./util.js";

const MAX_ZOOM = 16;
const zoom = { s: 1, x: 0, y: 0 };

// Along one axis: the viewer's size, the image's offset and size in it when fitted (scale 1).
// Larger than the viewer: pan no further than its edges; smaller: keep it centred.
function clampAxis(t, view, offset, size) {
  const s = zoom.s;
  if (s * size <= view) return (view - s * size) / 2 - s * offset;
  return Math.min(-s * offset, Math.max(view - s * (offset + size), t));
}

function applyZoom() {
  const w = viewer.clientWidth;
  const h = viewer.clientHeight;
  const entry = current();
  const nw = image.naturalWidth || (entry ? entry.item.width : 0) || w;
  const nh = image.naturalHeight || (entry ? entry.item.height : 0) || h;
  const fit = Math.min(w / nw, h / nh) || 1;
  zoom.x = clampAxis(zoom.x, w, (w - nw * fit) / 2, nw * fit);
  zoom.y = clampAxis(zoom.y, h, (h - nh * fit) / 2, nh * fit);
  image.style.transform = `translate(${zoom.x}px, ${zoom.y}px) scale(${zoom.s})`;
  viewer.classList.toggle("zoomed", zoom.s > 1.001);
  $("zoom-level").textContent = Math.round(zoom.s * 100) + "%";
}

function zoomAt(factor, cx, cy) {
  const s = Math.min(MAX_ZOOM, Math.max(1, zoom.s * factor));
  const f = s / zoom.s;
  zoom.x = cx - f * (cx - zoom.x);
  zoom.y = cy - f * (cy - zoom.y);
  zoom.s = s;
  applyZoom();
}

export function zoomCentre(factor) {
  zoomAt(factor, viewer.clientWidth / 2, viewer.clientHeight / 2);
}

export function resetZoom() {
  zoom.s = 1;
  zoom.x = 0;
  zoom.y = 0;
  applyZoom();
}
image.addEventListener("load", applyZoom);

viewer.addEventListener("wheel", (ev) => {
  ev.preventDefault();
  const r = viewer.getBoundingClientRect();
  const dy = ev.deltaMode === 1 ? ev.deltaY * 16 : ev.deltaY;
  zoomAt(Math.exp(-dy * 0.0015), ev.clientX - r.left, ev.clientY - r.top);
}, { passive: false });

let drag = null;
viewer.addEventListener("pointerdown", (ev) => {
  if (ev.button !== 0 || zoom.s <= 1.001) return;
  drag = { id: ev.pointerId, x: ev.clientX, y: ev.clientY };
  viewer.setPointerCapture(ev.pointerId);
  viewer.classList.add("dragging");
});
viewer.addEventListener("pointermove", (ev) => {
  if (!drag || ev.pointerId !== drag.id) return;
  zoom.x += ev.clientX - drag.x;
  zoom.y += ev.clientY - drag.y;
  drag.x = ev.clientX;
  drag.y = ev.clientY;
  applyZoom();
});
const endDrag = (ev) => {
  if (!drag || ev.pointerId !== drag.id) return;
  drag = null;
  viewer.classList.remove("dragging");
};
viewer.addEventListener("pointerup", endDrag);
viewer.addEventListener("pointercancel", endDrag);
viewer.addEventListener("dblclick", resetZoom);
window.addEventListener("resize", applyZoom);
