// Run detail page: live progress, ETA, metrics, curves and log tail, polled from the JSON API.
(function () {
  "use strict";
  var dataNode = document.getElementById("run-data");
  if (!dataNode) return;
  var run = JSON.parse(dataNode.textContent);
  var FINISHED = { succeeded: 1, failed: 1, cancelled: 1 };
  var live = {}; // curves gathered from per-step metrics while watching
  var lastStep = -1;

  function byId(id) { return document.getElementById(id); }

  function fmtDuration(s) {
    s = Math.max(0, Math.round(s));
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    return (h ? h + "h " : "") + (h || m ? m + "m " : "") + r + "s";
  }

  function fmtValue(v) {
    if (typeof v === "number") return String(Math.round(v * 10000) / 10000);
    return String(v);
  }

  function eta(r) {
    if (FINISHED[r.status]) return "finished";
    if (r.status === "queued") return "queued";
    if (!r.started_at || !r.progress_step || !r.progress_total) return "ETA: estimating…";
    var elapsed = (Date.now() - Date.parse(r.started_at)) / 1000;
    var left = elapsed / r.progress_step * (r.progress_total - r.progress_step);
    return "elapsed " + fmtDuration(elapsed) + " · ETA " + fmtDuration(left);
  }

  function gather(r) {
    var m = r.metrics || {};
    if (r.progress_step === lastStep) return;
    lastStep = r.progress_step;
    Object.keys(m).forEach(function (k) {
      if (typeof m[k] === "number" && isFinite(m[k])) {
        (live[k] = live[k] || []).push([r.progress_step, m[k]]);
      }
    });
  }

  function update(r) {
    var pct = r.progress_total ? 100 * r.progress_step / r.progress_total : 0;
    var fill = document.querySelector("#run-progress .fill");
    if (fill) fill.setAttribute("width", pct.toFixed(1));
    var bar = document.querySelector("#run-progress .bar");
    if (bar) bar.setAttribute("aria-valuenow", String(Math.round(pct)));
    byId("run-steps").textContent = r.progress_step + " / " + r.progress_total;
    byId("run-eta").textContent = eta(r);
    var badge = document.querySelector("#run-status .badge");
    if (badge) { badge.textContent = r.status; badge.className = "badge st-" + r.status; }
    byId("run-log").textContent = r.log_tail || "";
    var err = byId("run-error");
    if (r.error) { err.textContent = r.error; err.hidden = false; }
    var table = byId("run-metrics");
    var m = r.metrics || {};
    while (table.firstChild) table.removeChild(table.firstChild);
    Object.keys(m).forEach(function (k) {
      var v = m[k];
      if (v !== null && typeof v === "object") return;
      var tr = document.createElement("tr");
      var th = document.createElement("th"); th.textContent = k;
      var td = document.createElement("td"); td.textContent = fmtValue(v);
      tr.appendChild(th); tr.appendChild(td); table.appendChild(tr);
    });
    gather(r);
    var curves = {};
    Object.keys(live).forEach(function (k) { if (live[k].length > 1) curves[k] = live[k]; });
    var stored = m.curves || {};
    Object.keys(stored).forEach(function (k) { curves[k] = stored[k]; });
    window.PrefloopCharts.render(byId("charts"), curves);
    if (FINISHED[r.status]) {
      var form = byId("cancel-form");
      if (form) form.hidden = true;
    }
  }

  function poll() {
    fetch("/api/v1/runs/" + run.id, { headers: { Accept: "application/json" },
      credentials: "same-origin" })
      .then(function (resp) { return resp.ok ? resp.json() : null; })
      .then(function (r) {
        // a policy run's gate card is drawn by the server: show it once the run is over
        if (r && FINISHED[r.status] && !FINISHED[run.status] && r.metrics && r.metrics.gate) {
          window.location.reload();
          return;
        }
        if (r) { run = r; update(r); }
        if (!FINISHED[run.status]) setTimeout(poll, 2000);
      })
      .catch(function () { setTimeout(poll, 5000); });
  }

  update(run);
  if (!FINISHED[run.status]) setTimeout(poll, 2000);
})();
