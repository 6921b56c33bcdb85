// The models page's charts (a module of models.js), inline SVG drawn here: loss and scores per epoch, and the
// confusion matrix. Nothing is loaded from elsewhere.
import { METRICS, classes, pct } from "./models-state.js";
import { isNum, svg as el, svgTitle as title } from "./util.js";

// Round ticks (1, 2, 2.5, 5 × 10^k) from 0 up to at least `max`.
function ticks(max, count = 5) {
  if (!(max > 0)) return { top: 1, values: [0, 0.25, 0.5, 0.75, 1], digits: 2 };
  const raw = max / count;
  const pow = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * pow).find((s) => s >= raw);
  const top = Math.ceil(max / step - 1e-9) * step;
  const values = [];
  for (let i = 0; i * step <= top + step * 1e-6; i += 1) values.push(i * step);
  let digits = 0;
  while (digits < 6 && Math.abs(step * 10 ** digits - Math.round(step * 10 ** digits)) > 1e-6) digits += 1;
  return { top, values, digits };
}

function epochTicks(lo, hi) {
  const span = hi - lo;
  const step = span <= 10 ? 1 : span <= 20 ? 2 : span <= 50 ? 5 : span <= 100 ? 10 : 25;
  const out = [];
  for (let e = Math.ceil(lo); e <= hi + 1e-9; e += 1) if ((e - 1) % step === 0 || e === hi) out.push(e);
  return out;
}

// --- line chart over epochs: loss on the left axis, optional 0-100 % metrics on the right -------
// series: [{key, name, values: [[epoch, value]...], axis: "left"|"right"}]
export function lineChart({ series, epochs, leftLabel, rightLabel, W = 520, H = 250, emptyNote = "no epoch recorded",
  rightPercent = true }) {
  const hasRight = series.some((s) => s.axis === "right");
  const hasLeft = series.some((s) => s.axis !== "right");
  const m = { top: 12, right: hasRight && hasLeft ? 54 : 16, bottom: 42, left: 58 };
  const iw = W - m.left - m.right, ih = H - m.top - m.bottom;
  const last = Math.max(1, epochs || 1, ...series.flatMap((s) => s.values.map(([e]) => e)));
  const [x0, x1] = last === 1 ? [0.5, 1.5] : [1, last];
  const x = (e) => m.left + ((e - x0) / (x1 - x0)) * iw;
  const leftMax = Math.max(0, ...series.filter((s) => s.axis !== "right").flatMap((s) => s.values.map(([, v]) => v)));
  const left = hasLeft ? ticks(leftMax * 1.05) : { top: 1, values: [0, 0.25, 0.5, 0.75, 1], digits: 2 };
  const yL = (v) => m.top + ih - (v / left.top) * ih;
  const yR = (v) => m.top + ih - Math.max(0, Math.min(1, v)) * ih; // an R² below 0 sits on the axis

  const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, "aria-hidden": "true" });
  const grid = el("g", { class: "grid" });
  const axis = el("g", { class: "axis" });
  if (hasLeft) {
    left.values.forEach((v) => {
      grid.appendChild(el("line", { x1: m.left, x2: m.left + iw, y1: yL(v), y2: yL(v) }));
      axis.appendChild(el("text", { x: m.left - 6, y: yL(v) + 4, "text-anchor": "end" }, v.toFixed(left.digits)));
    });
  }
  if (hasRight) {
    [0, 0.25, 0.5, 0.75, 1].forEach((v) => {
      if (!hasLeft) grid.appendChild(el("line", { x1: m.left, x2: m.left + iw, y1: yR(v), y2: yR(v) }));
      const xr = hasLeft ? m.left + iw + 6 : m.left - 6;
      axis.appendChild(el("text", { x: xr, y: yR(v) + 4, "text-anchor": hasLeft ? "start" : "end" },
        rightPercent ? `${Math.round(v * 100)}%` : v.toFixed(2)));
    });
    if (hasLeft) axis.appendChild(el("line", { x1: m.left + iw, x2: m.left + iw, y1: m.top, y2: m.top + ih }));
  }
  epochTicks(x0, x1).forEach((e) => {
    axis.appendChild(el("line", { x1: x(e), x2: x(e), y1: m.top + ih, y2: m.top + ih + 4 }));
    axis.appendChild(el("text", { x: x(e), y: m.top + ih + 16, "text-anchor": "middle" }, String(e)));
  });
  axis.appendChild(el("line", { x1: m.left, x2: m.left, y1: m.top, y2: m.top + ih }));
  axis.appendChild(el("line", { x1: m.left, x2: m.left + iw, y1: m.top + ih, y2: m.top + ih }));
  svg.append(grid, axis);
  svg.appendChild(el("text", { class: "axis-title", x: m.left + iw / 2, y: H - 4, "text-anchor": "middle" }, "epoch"));
  const leftTitle = hasLeft ? leftLabel : rightLabel;
  svg.appendChild(el("text", { class: "axis-title", transform: `translate(14 ${m.top + ih / 2}) rotate(-90)`, "text-anchor": "middle" }, leftTitle));
  if (hasRight && hasLeft) {
    svg.appendChild(el("text", { class: "axis-title", transform: `translate(${W - 6} ${m.top + ih / 2}) rotate(90)`, "text-anchor": "middle" }, rightLabel));
  }

  series.forEach((s) => {
    const y = s.axis === "right" ? yR : yL;
    const pts = s.values.filter(([, v]) => isNum(v));
    // The right axis's metrics are styled by their place (the first as the primary metric, then the second), so
    // every network's metrics get the same two looks.
    const place = s.axis === "right" ? ` series-right-${series.filter((o) => o.axis === "right").indexOf(s)}` : "";
    const g = el("g", { class: `series series-${s.key}${place}`, "data-series": s.key });
    if (pts.length > 1) {
      g.appendChild(el("path", { class: "line", d: pts.map(([e, v], i) => `${i ? "L" : "M"}${x(e).toFixed(1)},${y(v).toFixed(1)}`).join(" ") }));
    }
    pts.forEach(([e, v]) => {
      const shown = s.axis === "right" ? (rightPercent ? pct(v) : v.toFixed(3)) : v.toFixed(4);
      g.appendChild(el("circle", { class: "point", cx: x(e), cy: y(v), r: 3.5, "data-series": s.key, "data-epoch": e, "data-value": v },
        title(`epoch ${e}: ${s.name} ${shown}`)));
    });
    svg.appendChild(g);
  });
  if (!series.some((s) => s.values.some(([, v]) => isNum(v)))) {
    svg.appendChild(el("text", { class: "empty-note", x: m.left + iw / 2, y: m.top + ih / 2, "text-anchor": "middle" }, emptyNote));
  }
  return svg;
}

export function historySeries(history, keys) {
  const names = { train_loss: "train loss", val_loss: "val loss",
    ...Object.fromEntries(METRICS.map((m) => [`val_${m.name}`, `val ${m.title}`])) };
  return keys.map(([key, axis]) => ({
    key, axis, name: names[key] || key,
    values: (history || []).map((row) => [row.epoch, row[key]]),
  }));
}

// --- confusion matrix: rows true class, columns predicted top-1; colour by the row's share --------
function shade(share) {
  // white -> the ice blue of the page, by the share of the row
  const a = [247, 251, 255], b = [9, 78, 116];
  const t = Math.max(0, Math.min(1, share));
  return `rgb(${a.map((v, i) => Math.round(v + (b[i] - v) * t)).join(",")})`;
}

export function confusionChart(matrix) {
  const n = classes.length;
  const cell = 36;
  const m = { top: 14, right: 54, bottom: 126, left: 168 };
  const W = m.left + n * cell + m.right, H = m.top + n * cell + m.bottom;
  const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, "aria-hidden": "true", class: "confusion" });
  const rowSums = matrix.map((row) => row.reduce((a, b) => a + b, 0));
  classes.forEach((c, i) => {
    const cy = m.top + i * cell;
    svg.appendChild(el("text", { class: "tick", x: m.left - 8, y: cy + cell / 2 + 4, "text-anchor": "end", "data-row-label": i },
      [`${c.name} ${c.letter}`, title(`${c.letter}: ${c.name} (true class)`)]));
    const cx = m.left + i * cell + cell / 2;
    const by = m.top + n * cell + 10;
    svg.appendChild(el("text", { class: "tick", x: cx, y: by, "text-anchor": "end", transform: `rotate(-45 ${cx} ${by})`, "data-col-label": i },
      [`${c.letter} ${c.name}`, title(`${c.letter}: ${c.name} (predicted)`)]));
  });
  const cells = el("g", { class: "cells" });
  for (let i = 0; i < n; i += 1) {
    for (let j = 0; j < n; j += 1) {
      const count = (matrix[i] && matrix[i][j]) || 0;
      const share = rowSums[i] ? count / rowSums[i] : 0;
      const x = m.left + j * cell, y = m.top + i * cell;
      const g = el("g", { class: `cell${i === j ? " diag" : ""}` });
      g.appendChild(el("rect", {
        x: x + 0.5, y: y + 0.5, width: cell - 1, height: cell - 1, rx: 2, fill: shade(share),
        "data-row": i, "data-col": j, "data-count": count, "data-share": share.toFixed(4),
      }, title(`true ${classes[i].name}, predicted ${classes[j].name}: ${count}` +
        (rowSums[i] ? ` (${pct(share, 0)} of the row)` : ""))));
      g.appendChild(el("text", {
        class: `count${count === 0 ? " zero" : ""}${share > 0.55 ? " light" : ""}`, x: x + cell / 2, y: y + cell / 2 + 4,
        "text-anchor": "middle",
      }, String(count)));
      cells.appendChild(g);
    }
    svg.appendChild(el("text", { class: "row-sum", x: m.left + n * cell + 8, y: m.top + i * cell + cell / 2 + 4 },
      [String(rowSums[i]), title(`${rowSums[i]} items of true class ${classes[i].name}`)]));
  }
  svg.appendChild(cells);
  svg.appendChild(el("text", { class: "axis-title", x: m.left + n * cell + 8, y: m.top - 3 }, "n"));
  svg.appendChild(el("text", { class: "axis-title", x: m.left + (n * cell) / 2, y: H - 4, "text-anchor": "middle" }, "predicted class (top-1)"));
  svg.appendChild(el("text", { class: "axis-title", transform: `translate(12 ${m.top + (n * cell) / 2}) rotate(-90)`, "text-anchor": "middle" }, "true class"));
  return svg;
}
