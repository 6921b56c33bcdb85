// Drawing and editing a scene's polygons (a module of scenes.js): Leaflet-Geoman draws (snapping to the polygons
// already there, refusing self-intersections), the attribute form gives class, SIC and stage, and every change is
// sent to the API at once. The server decides: a refused polygon (outside the footprint, invalid, SIC missing)
// is taken off the map with the reason; an edit made on a stale version (someone else changed the polygon) is
// answered 409 and the polygon is reloaded. Undo (Ctrl+Z) reverses one's own changes through the same API.
import { api, errorText } from "./api.js";
import { describe } from "./scene-polygons.js";
import { $ } from "./util.js";

const app = $("scene-app");
const UNDO_DEPTH = 50;

export function attributeForm(classes, store) {
  const sic = $("sic");
  const stage = $("stage");
  function values() {
    const label = document.querySelector("input[name=polygon-class]:checked").value;
    return { label, sic: label === "ice" ? Number(sic.value) : label === "water" ? 0 : null, stage: label === "ice" ? stage.value : "" };
  }
  function showSic() {
    $("sic-value").textContent = `${sic.value}%`;
    const ice = values().label === "ice";
    sic.disabled = !ice;
    stage.disabled = !ice;
  }
  function set({ label, sic: value, stage: text }) {
    if (label) document.querySelector(`input[name=polygon-class][value="${label}"]`).checked = true;
    if (value !== null && value !== undefined) sic.value = value;
    if (text !== undefined) stage.value = [...stage.options].some((o) => o.value === text) ? text : "";
    showSic();
  }
  sic.addEventListener("input", showSic);
  document.querySelectorAll("input[name=polygon-class]").forEach((i) => i.addEventListener("change", showSic));
  showSic();

  function selected(feature) {
    $("apply").hidden = $("deselect").hidden = !feature;
    $("form-title").textContent = feature ? `Polygon ${feature.id}` : "New polygons";
    $("polygon-info").textContent = feature ? describe(feature.properties, classes) : "";
    if (feature) set(feature.properties);
  }
  $("deselect").addEventListener("click", () => store.select(null));
  return { values, set, selected };
}

export function drawing(map, store, form, { status, sceneId }) {
  const undo = [];
  const saving = new Map(); // id -> the promise of the change in flight (changes of one polygon go one by one)
  map.pm.setGlobalOptions({
    snappable: true, snapDistance: 12, allowSelfIntersection: false, templineStyle: { color: "#ffd23f" },
    hintlineStyle: { color: "#ffd23f", dashArray: "4 4" }, pathOptions: { color: "#ffd23f", fillOpacity: 0.3 },
  });
  map.pm.setLang("en");

  function pushUndo(entry) {
    undo.push(entry);
    if (undo.length > UNDO_DEPTH) undo.shift();
    $("tool-undo").disabled = false;
  }

  function after(id, work) {
    const next = (saving.get(id) || Promise.resolve()).then(work, work);
    saving.set(id, next);
    return track(next);
  }

  // Every change in flight, so that an undo waits for them: Ctrl+Z pressed while a deletion is still on its way
  // must undo that deletion (its undo entry is pushed when the server answers), not the change before it.
  const inflight = new Set();
  function track(promise) {
    inflight.add(promise);
    promise.finally(() => inflight.delete(promise));
    return promise;
  }

  function create(properties, geometry, options = {}) {
    return track(createNow(properties, geometry, options));
  }

  async function createNow(properties, geometry, { record = true } = {}) {
    const res = await api(`/api/v1/scenes/${sceneId()}/polygons/`, { method: "POST", body: { geometry, ...properties } });
    if (!res.ok) {
      status(`Polygon refused: ${errorText(res.data, res.status)}`, true);
      return null;
    }
    store.upsert(res.data);
    if (record) pushUndo({ type: "created", id: res.data.id });
    status(`Saved polygon ${res.data.id}: ${describe(res.data.properties, store.classes)}.`);
    return res.data;
  }

  function change(id, fields, { record = true } = {}) {
    return after(id, async () => {
      const before = store.feature(id);
      if (!before) return null;
      const res = await api(`/api/v1/scene-polygons/${id}/`, {
        method: "PATCH", body: { expected_version: before.properties.version, ...fields },
      });
      if (!res.ok) {
        status(`Change refused: ${errorText(res.data, res.status)}`, true);
        await store.load(sceneId()); // the map goes back to what the server holds
        return null;
      }
      store.upsert(res.data);
      if (record) {
        const { label, sic, stage } = before.properties;
        pushUndo({ type: "edited", id, before: { geometry: before.geometry, label, sic, stage } });
      }
      status(`Saved polygon ${id} (v${res.data.properties.version}).`);
      return res.data;
    });
  }

  function remove(id, { record = true } = {}) {
    return after(id, async () => {
      const feature = store.feature(id);
      if (!feature) return false;
      const res = await api(`/api/v1/scene-polygons/${id}/?expected_version=${feature.properties.version}`, { method: "DELETE" });
      if (!res.ok) {
        status(`Deletion refused: ${errorText(res.data, res.status)}`, true);
        await store.load(sceneId());
        return false;
      }
      store.remove(id);
      if (record) pushUndo({ type: "deleted", feature });
      status(`Deleted polygon ${id}.`);
      return true;
    });
  }

  map.on("pm:create", async (ev) => {
    const drawn = ev.layer;
    const geometry = drawn.toGeoJSON().geometry;
    map.removeLayer(drawn); // the server's polygon replaces it (or nothing, when refused)
    await create(form.values(), geometry);
  });
  // Geoman tells an edit on the layer itself (a vertex moved, added or removed): each one is saved.
  store.group.on("layeradd", (ev) => ev.layer.on("pm:edit", () => {
    const id = ev.layer.feature && ev.layer.feature.id;
    if (store.layers.get(id) === ev.layer) change(id, { geometry: ev.layer.toGeoJSON().geometry });
  }));
  map.on("pm:remove", (ev) => {
    const id = ev.layer.feature && ev.layer.feature.id;
    if (id === undefined || store.layers.get(id) !== ev.layer) return;
    store.group.removeLayer(ev.layer);
    store.group.addLayer(ev.layer); // back on the map until the server agrees
    remove(id);
  });

  async function undoLast() {
    await Promise.allSettled([...inflight]);
    const entry = undo.pop();
    $("tool-undo").disabled = undo.length === 0;
    if (!entry) return;
    if (entry.type === "created") await remove(entry.id, { record: false });
    else if (entry.type === "edited") await change(entry.id, entry.before, { record: false });
    else if (entry.type === "deleted") {
      const { label, sic, stage } = entry.feature.properties;
      await create({ label, sic, stage }, entry.feature.geometry, { record: false });
    }
  }

  // The three modes are exclusive; the buttons show which is on (data-mode on the page for tests and styles).
  const modes = {
    draw: { on: () => map.pm.globalDrawModeEnabled(), enable: () => map.pm.enableDraw("Polygon"), disable: () => map.pm.disableDraw() },
    edit: { on: () => map.pm.globalEditModeEnabled(), enable: () => map.pm.enableGlobalEditMode(), disable: () => map.pm.disableGlobalEditMode() },
    delete: { on: () => map.pm.globalRemovalModeEnabled(), enable: () => map.pm.enableGlobalRemovalMode(), disable: () => map.pm.disableGlobalRemovalMode() },
  };
  function showModes() {
    let active = "idle";
    for (const [name, mode] of Object.entries(modes)) {
      const on = mode.on();
      $(`tool-${name}`).setAttribute("aria-pressed", String(on));
      if (on) active = name;
    }
    app.dataset.mode = active;
  }
  function toggle(name) {
    const wasOn = modes[name].on();
    for (const mode of Object.values(modes)) if (mode.on()) mode.disable();
    if (!wasOn) {
      store.select(null);
      modes[name].enable();
    }
    showModes();
  }
  function stop() {
    for (const mode of Object.values(modes)) if (mode.on()) mode.disable();
    store.select(null);
    showModes();
  }
  map.on("pm:globaldrawmodetoggled pm:globaleditmodetoggled pm:globalremovalmodetoggled", showModes);
  for (const name of Object.keys(modes)) $(`tool-${name}`).addEventListener("click", () => toggle(name));
  $("tool-undo").addEventListener("click", undoLast);
  $("apply").addEventListener("click", () => {
    if (store.selected !== null) change(store.selected, form.values());
  });
  map.on("click", () => {
    if (!modes.draw.on() && !modes.delete.on()) store.select(null);
  });
  return { toggle, stop, undo: undoLast, applySelected: () => $("apply").click() };
}
