// Minimal hand-written SVG line charts (no dependencies, no build step).
(function () {
  "use strict";
  var NS = "http://www.w3.org/2000/svg";

  function el(name, attrs, text) {
    var node = document.createElementNS(NS, name);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function fmt(v) {
    if (!isFinite(v)) return "";
    var a = Math.abs(v);
    if (a !== 0 && (a < 1e-3 || a >= 1e5)) return v.toExponential(2);
    return String(Math.round(v * 1000) / 1000);
  }

  // points: [[x, y], ...]; returns an <svg> element.
  function line(title, points, opts) {
    opts = opts || {};
    var W = opts.width || 420, H = opts.height || 200, L = 52, R = 10, T = 22, B = 26;
    var pts = (points || []).filter(function (p) {
      return p && isFinite(Number(p[0])) && isFinite(Number(p[1]));
    }).map(function (p) { return [Number(p[0]), Number(p[1])]; });
    var svg = el("svg", { viewBox: "0 0 " + W + " " + H, class: "chart", role: "img",
      "aria-label": title });
    svg.appendChild(el("text", { x: L, y: 14, class: "title" }, title));
    if (!pts.length) {
      svg.appendChild(el("text", { x: L, y: H / 2, class: "tick" }, "no data"));
      return svg;
    }
    var xs = pts.map(function (p) { return p[0]; }), ys = pts.map(function (p) { return p[1]; });
    var x0 = Math.min.apply(null, xs), x1 = Math.max.apply(null, xs);
    var y0 = Math.min.apply(null, ys), y1 = Math.max.apply(null, ys);
    if (x1 === x0) { x1 = x0 + 1; }
    if (y1 === y0) { y0 -= Math.abs(y0) * 0.1 || 1; y1 += Math.abs(y1) * 0.1 || 1; }
    function sx(x) { return L + (x - x0) / (x1 - x0) * (W - L - R); }
    function sy(y) { return T + (1 - (y - y0) / (y1 - y0)) * (H - T - B); }
    svg.appendChild(el("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, class: "axis" }));
    svg.appendChild(el("line", { x1: L, y1: T, x2: L, y2: H - B, class: "axis" }));
    svg.appendChild(el("text", { x: L - 4, y: T + 4, class: "tick", "text-anchor": "end" }, fmt(y1)));
    svg.appendChild(el("text", { x: L - 4, y: H - B, class: "tick", "text-anchor": "end" }, fmt(y0)));
    svg.appendChild(el("text", { x: L, y: H - 8, class: "tick" }, fmt(x0)));
    svg.appendChild(el("text", { x: W - R, y: H - 8, class: "tick", "text-anchor": "end" }, fmt(x1)));
    var d = pts.map(function (p) { return sx(p[0]).toFixed(1) + "," + sy(p[1]).toFixed(1); });
    svg.appendChild(el("polyline", { points: d.join(" "), class: "line" }));
    if (pts.length <= 40) {
      pts.forEach(function (p) {
        var c = el("circle", { cx: sx(p[0]), cy: sy(p[1]), r: 2.2, fill: "currentColor" });
        c.appendChild(el("title", {}, "step " + fmt(p[0]) + ": " + fmt(p[1])));
        svg.appendChild(c);
      });
    }
    return svg;
  }

  // curves: {name: [[x, y], ...]}; replaces the container's content with one chart per curve.
  function render(container, curves) {
    var names = Object.keys(curves || {}).filter(function (k) {
      return Array.isArray(curves[k]) && curves[k].length;
    });
    if (!names.length) return false;
    while (container.firstChild) container.removeChild(container.firstChild);
    names.sort().forEach(function (name) { container.appendChild(line(name, curves[name])); });
    return true;
  }

  window.PrefloopCharts = { line: line, render: render };
})();
