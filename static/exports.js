// Agreement page: per-labeler bar chart (agreement with the majority) drawn as inline SVG.
(function () {
  "use strict";
  const NS = "http://www.w3.org/2000/svg";
  const dataEl = document.getElementById("agreement-data");
  const svg = document.getElementById("agreement-chart");
  if (!dataEl || !svg) return;
  const report = JSON.parse(dataEl.textContent);
  const rows = report.labelers.filter((l) => l.percent !== null);

  function el(name, attrs, text) {
    const node = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = text; // never innerHTML: labels are data
    return node;
  }

  const rowH = 26, left = 190, right = 70, top = 24, width = 900;
  const plotW = width - left - right;
  const height = top + Math.max(rows.length, 1) * rowH + 30;
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("height", String(height));
  if (!rows.length) {
    svg.appendChild(el("text", { x: 0, y: top }, "No labeler shares enough pairs with others yet."));
    return;
  }
  for (let t = 0; t <= 100; t += 25) {
    const x = left + (plotW * t) / 100;
    svg.appendChild(el("line", { x1: x, x2: x, y1: top - 6, y2: height - 24, stroke: "#e2e2e0" }));
    svg.appendChild(el("text", { x: x - 10, y: height - 8 }, `${t}%`));
  }
  rows.forEach((lab, i) => {
    const y = top + i * rowH;
    const w = plotW * lab.percent;
    svg.appendChild(el("text", { x: 0, y: y + 15 }, lab.labeler));
    const bar = el("rect", { class: "bar", x: left, y: y + 3, width: Math.max(w, 1), height: rowH - 8 });
    bar.appendChild(el("title", {}, `${lab.labeler}: ${lab.agreed}/${lab.compared} pairs`));
    svg.appendChild(bar);
    svg.appendChild(el("text", { x: left + w + 6, y: y + 15 }, `${(100 * lab.percent).toFixed(1)}%`));
  });
  if (report.percent !== null) {
    const x = left + plotW * report.percent;
    svg.appendChild(el("line", { class: "ref", x1: x, x2: x, y1: top - 10, y2: height - 24 }));
    svg.appendChild(el("text", { x: x + 4, y: top - 12 }, `overall ${(100 * report.percent).toFixed(1)}%`));
  }
})();
