// Sentiment over time as an inline SVG: one bar per transcript segment, above the line
// positive, below negative; each bar seeks the player when chosen.
const NS = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

export function sentimentChart(timeline, duration) {
  const width = 600;
  const height = 160;
  const pad = 8;
  const mid = height / 2;
  const end = Math.max(duration || 0, ...timeline.map((p) => p.end || 0), 1);
  const x = (t) => pad + ((width - 2 * pad) * t) / end;
  const root = svg("svg", {
    viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img",
    "aria-labelledby": "sentiment-chart-title", preserveAspectRatio: "none",
  });
  const title = svg("title", { id: "sentiment-chart-title" });
  const counts = { positive: 0, negative: 0, neutral: 0 };
  for (const p of timeline) counts[p.label] = (counts[p.label] || 0) + 1;
  title.textContent = `Sentiment over ${timeline.length} segments: ${counts.positive} positive, ` +
    `${counts.negative} negative, ${counts.neutral} neutral`;
  root.append(title);
  root.append(svg("line", { x1: pad, x2: width - pad, y1: mid, y2: mid, class: "axis" }));
  for (const p of timeline) {
    const score = Math.max(-1, Math.min(1, Number(p.score) || 0));
    const h = Math.max(1, Math.abs(score) * (mid - pad));
    const bar = svg("rect", {
      x: x(p.start), width: Math.max(1, x(p.end) - x(p.start) - 1),
      y: score >= 0 ? mid - h : mid, height: h, class: `bar ${p.label}`,
      "data-start": p.start,
    });
    const tip = svg("title");
    tip.textContent = `${p.start.toFixed(1)}–${p.end.toFixed(1)} s: ${p.label} (${score.toFixed(2)})`;
    bar.append(tip);
    root.append(bar);
  }
  return root;
}
