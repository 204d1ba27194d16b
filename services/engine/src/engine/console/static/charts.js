// Charts drawn by the console itself as SVG: bars stacked per time bucket, lines over
// time. Each is a <figure> whose caption says what it shows and whose numbers are also
// given as text (a screen reader reads the caption and the figures, not the drawing).

import { el, svg } from "./dom.js";

const W = 640;
const H = 160;
const PAD = { left: 48, right: 12, top: 10, bottom: 22 };

export const OUTCOME_COLORS = {
  ACTIVATED: "#1e7a3a",
  FILTERED: "#7a5cc2",
  NO_WAITER: "#b85c00",
  BUFFERED: "#3a8fb7",
  EXPIRED: "#8a6d3b",
  DUPLICATE: "#8a94a6",
  IGNORED_AUTH: "#c2418f",
  REFUSED: "#b3261e",
  UNKNOWN_TRIGGER: "#5b6475",
  INVALID: "#e0a100",
  DEAD_LETTERED: "#000000",
};

function clock(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function round(value) {
  return value >= 100 ? Math.round(value) : Math.round(value * 10) / 10;
}

function frame(label, yMax, xFrom, xTo, unit) {
  const bottom = H - PAD.bottom;
  return [
    svg("line", { class: "axis", x1: PAD.left, y1: bottom, x2: W - PAD.right, y2: bottom }),
    svg("line", { class: "axis", x1: PAD.left, y1: PAD.top, x2: PAD.left, y2: bottom }),
    svg("text", { class: "tick", x: PAD.left - 4, y: PAD.top + 8, "text-anchor": "end" }, `${round(yMax)}${unit}`),
    svg("text", { class: "tick", x: PAD.left - 4, y: bottom, "text-anchor": "end" }, "0"),
    svg("text", { class: "tick", x: PAD.left, y: H - 6 }, clock(xFrom)),
    svg("text", { class: "tick", x: W - PAD.right, y: H - 6, "text-anchor": "end" }, clock(xTo)),
    svg("title", {}, label),
  ];
}

function legend(entries) {
  return el(
    "p",
    { class: "legend" },
    // the swatch is drawn, not styled: the console's policy allows no inline style
    entries.map(([label, color, total]) => [
      svg("svg", { class: "swatch", width: 10, height: 10, "aria-hidden": "true" }, svg("rect", { width: 10, height: 10, fill: color })),
      ` ${label}${total === undefined ? "" : `: ${total}`} `,
    ]),
  );
}

// `series`: [{label, color, counts}] stacked in that order, one count per bucket of
// `bucketMs` from `since`
export function stackedBars({ title, since, bucketMs, series }) {
  const buckets = series.length ? series[0].counts.length : 0;
  const totals = Array.from({ length: buckets }, (_, i) => series.reduce((sum, s) => sum + s.counts[i], 0));
  const yMax = Math.max(1, ...totals);
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const barW = buckets ? plotW / buckets : plotW;
  const bars = [];
  for (let i = 0; i < buckets; i++) {
    let y = H - PAD.bottom;
    for (const s of series) {
      const h = (s.counts[i] / yMax) * plotH;
      if (!h) continue;
      y -= h;
      bars.push(
        svg(
          "rect",
          { x: PAD.left + i * barW + 0.5, y, width: Math.max(1, barW - 1), height: h, fill: s.color },
          svg("title", {}, `${clock(since + i * bucketMs)}: ${s.counts[i]} ${s.label}`),
        ),
      );
    }
  }
  const drawing = svg(
    "svg",
    { class: "chart", viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: "img", "aria-label": title },
    frame(title, yMax, since, since + buckets * bucketMs, ""),
    bars,
  );
  const sum = (s) => s.counts.reduce((a, b) => a + b, 0);
  return el("figure", { class: "chart" }, el("figcaption", { text: title }), drawing, legend(series.map((s) => [s.label, s.color, sum(s)])));
}

// `series`: [{label, color, points: [[at, value], ...]}] drawn as lines on one scale
export function lineChart({ title, unit = "", series }) {
  const points = series.flatMap((s) => s.points);
  const xs = points.map(([at]) => at);
  const xFrom = xs.length ? Math.min(...xs) : Date.now();
  const xTo = xs.length ? Math.max(...xs) : xFrom + 1;
  const yMax = Math.max(1, ...points.map(([, v]) => v));
  const x = (at) => PAD.left + ((at - xFrom) / Math.max(1, xTo - xFrom)) * (W - PAD.left - PAD.right);
  const y = (v) => H - PAD.bottom - (v / yMax) * (H - PAD.top - PAD.bottom);
  const lines = series
    .filter((s) => s.points.length)
    .map((s) => svg("polyline", { class: "series", stroke: s.color, points: s.points.map(([at, v]) => `${x(at).toFixed(1)},${y(v).toFixed(1)}`).join(" ") }));
  const drawing = svg(
    "svg",
    { class: "chart", viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: "img", "aria-label": title },
    frame(title, yMax, xFrom, xTo, unit),
    lines,
  );
  const latest = (s) => (s.points.length ? `${round(s.points[s.points.length - 1][1])}${unit}` : "no data");
  return el("figure", { class: "chart" }, el("figcaption", { text: title }), drawing, legend(series.map((s) => [s.label, s.color, latest(s)])));
}
