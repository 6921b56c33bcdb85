// Overview page: counts, class distribution and per-class agreement (inline SVG), annotators.
import { api, errorText } from "./api.js";
import { $, html, setHtml, svg as el, svgTitle as title } from "./util.js";

function fmt(n) {
  return Number(n || 0).toLocaleString();
}

// Round tick steps (1, 2, 5 × 10^k) giving about `count` ticks up to `max`.
function ticks(max, count = 5) {
  if (!(max > 0)) return { top: 1, values: [0, 1] };
  const raw = max / count;
  const pow = 10 ** Math.floor(Math.log10(raw));
  const step = Math.max(1, [1, 2, 5, 10].map((m) => m * pow).find((s) => s >= raw));
  const top = Math.ceil(max / step) * step;
  const values = [];
  for (let v = 0; v <= top + 1e-9; v += step) values.push(v);
  return { top, values };
}

// --- class distribution: one group per class, consensus (solid) and settled (hatched) -------------
function classChart(data) {
  const classes = data.classes;
  const dist = data.class_distribution;
  const W = 640, H = 350, m = { top: 18, right: 10, bottom: 96, left: 64 };
  const iw = W - m.left - m.right, ih = H - m.top - m.bottom;
  const max = Math.max(0, ...classes.flatMap((c) => [dist[c.slug]?.consensus || 0, dist[c.slug]?.settled || 0]));
  const { top, values } = ticks(max);
  const y = (v) => m.top + ih - (v / top) * ih;
  const band = iw / classes.length;
  const bw = Math.min(26, (band - 10) / 2);

  const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, "aria-hidden": "true" });
  const defs = el("defs");
  classes.forEach((c) => {
    defs.appendChild(el("pattern", { id: `hatch-${c.slug}`, width: 5, height: 5, patternUnits: "userSpaceOnUse", patternTransform: "rotate(45)" }, [
      el("rect", { width: 5, height: 5, fill: "#fff" }),
      el("rect", { width: 2.2, height: 5, fill: c.color }),
    ]));
  });
  svg.appendChild(defs);

  const grid = el("g", { class: "grid" });
  const axisY = el("g", { class: "axis" });
  values.forEach((v) => {
    grid.appendChild(el("line", { x1: m.left, x2: W - m.right, y1: y(v), y2: y(v) }));
    axisY.appendChild(el("text", { x: m.left - 6, y: y(v) + 4, "text-anchor": "end" }, fmt(v)));
  });
  axisY.appendChild(el("line", { x1: m.left, x2: m.left, y1: m.top, y2: m.top + ih }));
  axisY.appendChild(el("line", { x1: m.left, x2: W - m.right, y1: m.top + ih, y2: m.top + ih }));
  svg.append(grid, axisY);
  svg.appendChild(el("text", { class: "axis-title", transform: `translate(14 ${m.top + ih / 2}) rotate(-90)`, "text-anchor": "middle" }, "imagettes"));
  svg.appendChild(el("text", { class: "axis-title", x: m.left + iw / 2, y: H - 4, "text-anchor": "middle" }, "class"));

  classes.forEach((c, i) => {
    const cx = m.left + band * i + band / 2;
    const group = el("g", { class: "bar-group", "data-slug": c.slug });
    [["consensus", c.color, -1], ["settled", `url(#hatch-${c.slug})`, 0]].forEach(([series, fill, offset]) => {
      const v = dist[c.slug]?.[series] || 0;
      const x = cx + offset * bw + (offset < 0 ? -1 : 1);
      const h = Math.max(v > 0 ? 1 : 0, m.top + ih - y(v));
      group.appendChild(el("rect", {
        class: "bar", "data-series": series, "data-value": v, x, y: m.top + ih - h, width: bw, height: h,
        fill, stroke: c.color, "stroke-width": series === "settled" ? 1 : 0,
      }, title(`${c.name}: ${fmt(v)} imagettes by ${series === "consensus" ? "crowd consensus" : "settled label"}`)));
      group.appendChild(el("text", { class: "value", x: x + bw / 2, y: m.top + ih - h - 3, "text-anchor": "middle" }, fmt(v)));
    });
    group.appendChild(el("text", {
      x: cx, y: m.top + ih + 14, "text-anchor": "end", transform: `rotate(-35 ${cx} ${m.top + ih + 14})`,
    }, [c.name, title(`${c.name} (key ${c.key})`)]));
    svg.appendChild(group);
  });
  return svg;
}

// --- Krippendorff's alpha per class: horizontal bars from 0; null shows a dash --------------------
function alphaChart(data) {
  const classes = data.classes;
  const alpha = data.agreement_per_class || {};
  const known = classes.map((c) => alpha[c.slug]).filter((a) => a !== null && a !== undefined);
  const lo = Math.min(0, Math.floor(Math.min(0, ...known) * 5) / 5);
  const W = 420, row = 25, m = { top: 8, right: 36, bottom: 42, left: 140 };
  const H = m.top + row * classes.length + m.bottom;
  const iw = W - m.left - m.right;
  const x = (v) => m.left + ((v - lo) / (1 - lo)) * iw;
  const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, "aria-hidden": "true" });
  const bottom = m.top + row * classes.length;
  const step = 1 - lo > 1.2 ? 0.5 : 0.2;
  const grid = el("g", { class: "grid" });
  const axis = el("g", { class: "axis" });
  for (let v = lo; v <= 1 + 1e-9; v += step) {
    const t = Math.round(v * 10) / 10;
    grid.appendChild(el("line", { x1: x(t), x2: x(t), y1: m.top, y2: bottom }));
    axis.appendChild(el("text", { x: x(t), y: bottom + 14, "text-anchor": "middle" }, t.toFixed(1)));
  }
  axis.appendChild(el("line", { x1: m.left, x2: W - m.right, y1: bottom, y2: bottom }));
  axis.appendChild(el("line", { x1: x(0), x2: x(0), y1: m.top, y2: bottom }));
  svg.append(grid, axis);
  [0.667, 0.8].forEach((r) => svg.appendChild(el("line", { class: "ref", x1: x(r), x2: x(r), y1: m.top, y2: bottom },
    title(r === 0.8 ? "0.8: reliable" : "0.667: tentative conclusions"))));
  svg.appendChild(el("text", { class: "axis-title", x: m.left + iw / 2, y: H - 6, "text-anchor": "middle" }, "Krippendorff's α"));

  classes.forEach((c, i) => {
    const cy = m.top + row * i;
    const a = alpha[c.slug];
    const g = el("g", { class: "alpha-row", "data-slug": c.slug, "data-alpha": a ?? "" });
    g.appendChild(el("text", { x: m.left - 8, y: cy + row / 2 + 4, "text-anchor": "end" }, c.name));
    if (a === null || a === undefined) {
      g.appendChild(el("text", { class: "null", "data-null": "true", x: x(0) + 6, y: cy + row / 2 + 4 },
        ["—", title("not enough votes yet")]));
    } else {
      const x0 = Math.min(x(0), x(a)), w = Math.max(1, Math.abs(x(a) - x(0)));
      g.appendChild(el("rect", { class: "bar", x: x0, y: cy + 4, width: w, height: row - 8, fill: c.color, rx: 2 },
        title(`${c.name}: α = ${a.toFixed(3)}`)));
      g.appendChild(el("text", { class: "value", x: (a >= 0 ? x(a) + 4 : x(a) - 4), y: cy + row / 2 + 4,
        "text-anchor": a >= 0 ? "start" : "end" }, a.toFixed(2)));
    }
    svg.appendChild(g);
  });
  return svg;
}

// --- counts, table ------------------------------------------------------------------------------
function renderCounts(data) {
  const items = data.imagettes;
  const values = { ...items, votes: data.votes, gold_items: data.gold_items };
  document.querySelectorAll("#overview-counts [data-count]").forEach((tile) => {
    const v = values[tile.dataset.count];
    tile.querySelector(".n").textContent = fmt(v);
    tile.dataset.value = v ?? 0;
  });
  $("settled-by-source").textContent = `imported ${fmt(items.imported)} · consensus ${fmt(items.consensus)} · expert ${fmt(items.expert)}`;
  const method = { dawid_skene: "Dawid-Skene", majority: "majority vote" }[data.consensus_method] || data.consensus_method;
  setHtml($("consensus-meta"), data.consensus_at
    ? html`Consensus: <strong>${method}</strong>, ${new Date(data.consensus_at).toLocaleString()}`
    : "Consensus: not computed yet");
}

function pct(v, what) {
  return v === null || v === undefined
    ? html`<span class="dash" title="no ${what} yet">—</span>` : `${(v * 100).toFixed(1)}%`;
}

function renderAnnotators(rows) {
  setHtml($("annotator-table").querySelector("tbody"), rows.length ? html`${rows.map((r, i) => html`
    <tr data-annotator="${r.annotator}">
      <td class="num">${i + 1}</td><td>${r.annotator}</td><td class="num">${fmt(r.votes)}</td>
      <td class="num">${fmt(r.gold_votes)}</td><td class="num">${pct(r.gold_accuracy, "votes on gold items")}</td>
      <td class="num">${pct(r.gold_jaccard, "votes on gold items")}</td></tr>`)}`
    : html`<tr><td colspan="6" class="muted">No votes yet.</td></tr>`);
}

async function load() {
  const button = $("refresh");
  button.disabled = true;
  try {
    const res = await api("/api/v1/overview/");
    if (!res.ok) throw new Error(res.status ? `the server answered ${res.status}` : errorText(res.data, 0));
    const data = res.data;
    $("overview-error").hidden = true;
    renderCounts(data);
    $("class-chart").replaceChildren(classChart(data));
    $("alpha-chart").replaceChildren(alphaChart(data));
    renderAnnotators(data.annotators);
    $("refreshed-at").textContent = "updated " + new Date().toLocaleTimeString();
  } catch (err) {
    $("overview-error").textContent = `Could not load the overview: ${err.message}`;
    $("overview-error").hidden = false;
  } finally {
    button.disabled = false;
  }
}

$("refresh").addEventListener("click", load);
load();
