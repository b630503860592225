// Rounds of one task (the page's data-task): the swarm-gain headline, the round log table and four charts (the task's
// held-out metric of each model, the swarm model it trains from and the swarm gain; loss, bytes, time), updated live
// from that task's round events.
"use strict";

(() => {
  const { el, metricName } = window.fedcart;
  const COLORS = {
    local: "#2563eb", aggregated: "#16a34a", kept: "#0f766e", swarm: "#ca8a04", localOnly: "#94a3b8", gain: "#dc2626",
    in: "#9333ea", out: "#ea580c", wall: "#0f172a",
  };
  const GAIN_WINDOW = 5; // as present.GAIN_WINDOW: the headline averages the last five rounds that measured a gain
  const PHASE_COLORS = ["#38bdf8", "#f59e0b", "#10b981", "#f43f5e", "#a78bfa", "#84cc16"];
  const rounds = new Map();
  const charts = {};
  const page = document.getElementById("rounds-page").dataset;
  const TASK = page.task;
  const METRIC = page.metric || "accuracy";

  const seconds = (r) => (Date.parse(r.finished) - Date.parse(r.started)) / 1000;
  const metric = (m, name) => (m && typeof m[name] === "number" ? m[name] : null);
  const fixed = (value, digits) => (value === null ? "–" : value.toFixed(digits));
  const signed = (value) => (value === null ? "–" : `${value >= 0 ? "+" : ""}${value.toFixed(3)}`);
  const gain = (r) => (typeof r.swarm_gain === "number" ? r.swarm_gain : null);
  const sumSamples = (r) => Object.values(r.samples || {}).reduce((a, b) => a + b, 0);
  const ownSamples = (r) => (r.samples && typeof r.samples[r.node_id] === "number" ? r.samples[r.node_id] : "–");
  const primary = (r) => r.metric || METRIC;

  function bytes(n) {
    if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
    if (n >= 1e3) return `${(n / 1e3).toFixed(1)} kB`;
    return `${n} B`;
  }

  function row(r) {
    // Refused for serving but adopted as the swarm model: the next round still trains from it (swarm_model.py).
    const adopted = !r.accepted && (r.swarm_model || "").startsWith("adopted");
    const trainsFrom = adopted ? "; the next round trains from the aggregate" : "";
    const result = r.accepted ? "accepted" : `kept ${r.kept || "local"}${r.reason ? `: ${r.reason}` : ""}${trainsFrom}`;
    const title = [r.reason, r.swarm_model].filter(Boolean).join(" | ");
    return el(
      "tr",
      { id: `round-${r.round}`, class: r.accepted ? "" : "muted-row", title },
      el("td", { class: "num" }, r.round),
      el("td", {}, r.finished.slice(0, 19).replace("T", " ")),
      el("td", {}, r.aggregator),
      el("td", { class: "num" }, `${r.peers_answered.length}/${r.peers_asked.length}`),
      el("td", { class: "num own-rows" }, ownSamples(r)),
      el("td", { class: "num all-rows" }, sumSamples(r)),
      el("td", { class: "num" }, fixed(metric(r.local, primary(r)), 3)),
      el("td", { class: "num" }, fixed(metric(r.aggregated, primary(r)), 3)),
      el("td", { class: "num" }, fixed(metric(r.kept_metrics, primary(r)), 3)),
      el("td", { class: "num" }, fixed(metric(r.local_only, primary(r)), 3)),
      el("td", { class: "num gain" }, signed(gain(r))),
      el("td", { class: "num" }, fixed(metric(r.local, "loss"), 3)),
      el("td", { class: "num" }, fixed(metric(r.aggregated, "loss"), 3)),
      el("td", { class: "num" }, `${bytes(r.bytes_in)} / ${bytes(r.bytes_out)}`),
      el("td", { class: "num" }, seconds(r).toFixed(1)),
      el("td", {}, result),
    );
  }

  // The same figures as present.swarm_gain_json: rounds of the newest round's task that measured a gain.
  function renderGain() {
    const ordered = [...rounds.values()].sort((a, b) => a.round - b.round);
    const task = ordered.length ? ordered[ordered.length - 1].task : null;
    const measured = ordered.filter((r) => r.task === task && gain(r) !== null);
    const recent = measured.slice(-GAIN_WINDOW).map(gain);
    const latest = measured.length ? measured[measured.length - 1] : null;
    const withMetric = ordered.filter((r) => r.task === task && r.metric);
    document.getElementById("gain-latest").textContent = signed(latest ? gain(latest) : null);
    document.getElementById("gain-latest-round").textContent = latest ? ` (${latest.round})` : "";
    const error = latest && typeof latest.swarm_gain_error === "number" ? latest.swarm_gain_error : null;
    document.getElementById("gain-latest-error").textContent = error === null ? "" : `, ± ${error.toFixed(3)}`;
    document.getElementById("gain-mean").textContent = signed(recent.length ? recent.reduce((a, b) => a + b, 0) / recent.length : null);
    document.getElementById("gain-rounds").textContent = recent.length;
    if (withMetric.length) {
      document.getElementById("gain-metric").textContent = metricName(withMetric[withMetric.length - 1].metric);
    }
  }

  function renderTable() {
    const ordered = [...rounds.values()].sort((a, b) => b.round - a.round);
    document.getElementById("rounds-body").replaceChildren(...ordered.map(row));
    document.getElementById("no-rounds").hidden = ordered.length > 0;
  }

  function line(label, color, data) {
    return { label, data, borderColor: color, backgroundColor: color, tension: 0.2, spanGaps: true, pointRadius: 3 };
  }

  function chartData() {
    const ordered = [...rounds.values()].sort((a, b) => a.round - b.round);
    const phases = [...new Set(ordered.flatMap((r) => Object.keys(r.timings || {})))];
    const labels = ordered.map((r) => r.round);
    return {
      accuracy: { labels, datasets: [
        line("local", COLORS.local, ordered.map((r) => metric(r.local, primary(r)))),
        line("aggregated", COLORS.aggregated, ordered.map((r) => metric(r.aggregated, primary(r)))),
        line("kept", COLORS.kept, ordered.map((r) => metric(r.kept_metrics, primary(r)))),
        {
          ...line("swarm model (trained from)", COLORS.swarm, ordered.map((r) => metric(r.swarm_metrics, primary(r)))),
          borderDash: [2, 3],
        },
        { ...line("local-only", COLORS.localOnly, ordered.map((r) => metric(r.local_only, primary(r)))), borderDash: [6, 4] },
        { ...line("swarm gain (right axis)", COLORS.gain, ordered.map(gain)), yAxisID: "gain", borderWidth: 3 },
      ] },
      loss: { labels, datasets: [
        line("local", COLORS.local, ordered.map((r) => metric(r.local, "loss"))),
        line("aggregated", COLORS.aggregated, ordered.map((r) => metric(r.aggregated, "loss"))),
      ] },
      bytes: { labels, datasets: [
        { label: "in", data: ordered.map((r) => r.bytes_in), backgroundColor: COLORS.in },
        { label: "out", data: ordered.map((r) => r.bytes_out), backgroundColor: COLORS.out },
      ] },
      time: { labels, datasets: [
        { ...line("wall time", COLORS.wall, ordered.map(seconds)), type: "line", stack: "wall" },
        ...phases.map((p, i) => ({ label: p, data: ordered.map((r) => (r.timings || {})[p] || 0), backgroundColor: PHASE_COLORS[i % PHASE_COLORS.length], stack: "phases" })),
      ] },
    };
  }

  function options(stacked, tick, range = {}, extraScales = {}) {
    return {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      interaction: { mode: "index", intersect: false },
      plugins: { legend: { position: "bottom", labels: { boxWidth: 12 } } },
      scales: {
        x: { stacked, title: { display: true, text: "round" } },
        y: { stacked, beginAtZero: true, ...range, ticks: tick ? { callback: tick } : {} },
        ...extraScales,
      },
    };
  }

  function createCharts() {
    const data = chartData();
    const make = (name, type, stacked, tick, range, extraScales) => {
      charts[name] = new Chart(document.getElementById(`chart-${name}`), { type, data: data[name], options: options(stacked, tick, range, extraScales) });
    };
    const gainAxis = {
      gain: {
        position: "right", suggestedMin: -0.1, suggestedMax: 0.1, grid: { drawOnChartArea: false },
        title: { display: true, text: "swarm gain" }, ticks: { callback: (v) => signed(v) },
      },
    };
    make("accuracy", "line", false, (v) => `${Math.round(v * 100)}%`, { min: 0, max: 1 }, gainAxis);
    make("loss", "line", false);
    make("bytes", "bar", false, (v) => bytes(v));
    make("time", "bar", true);
  }

  function updateCharts() {
    const data = chartData();
    for (const [name, chart] of Object.entries(charts)) {
      chart.data = data[name];
      chart.update();
    }
  }

  function addRound(record) {
    if (record.task !== TASK) return;
    rounds.set(record.round, record);
    renderGain();
    renderTable();
    updateCharts();
  }

  document.addEventListener("DOMContentLoaded", () => {
    for (const r of JSON.parse(document.getElementById("rounds-data").textContent)) rounds.set(r.round, r);
    renderGain();
    renderTable();
    if (typeof Chart === "undefined") {
      document.getElementById("charts-missing").hidden = false;
    } else {
      createCharts();
    }
    document.addEventListener("fedcart:round", (event) => addRound(event.detail));
  });
})();
