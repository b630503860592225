// "This cart": refreshes identity, connection state and data counts from /api/cart when something happens,
// and every few seconds for the bridge connection, which has no event of its own.
"use strict";

(() => {
  const { api, metricName } = window.fedcart;
  const REFRESH_MS = 5000;

  async function refresh() {
    const result = await api("GET", "/api/cart");
    if (!result.ok) return;
    const cart = result.data;
    const badge = document.getElementById("connected");
    badge.textContent = cart.connected ? "connected" : "not connected";
    badge.className = `badge ${cart.connected ? "good" : "bad"}`;
    document.getElementById("current-model").textContent = cart.model || "none trained yet";
    for (const [name, value] of Object.entries(cart.counts)) {
      const tile = document.getElementById(`count-${name}`);
      if (tile) tile.textContent = value;
    }
  }

  function showRound(event) {
    const r = event.detail;
    const kept = r.metric && r.kept_metrics && typeof r.kept_metrics[r.metric] === "number"
      ? ` Kept model: held-out ${metricName(r.metric)} ${r.kept_metrics[r.metric].toFixed(3)}.` : "";
    document.getElementById("last-round").textContent =
      `Round ${r.round} (${r.task}, ${r.aggregator}): ${r.accepted ? "accepted" : "not accepted"}${r.reason ? `, ${r.reason}` : ""}.${kept}`;
  }

  document.addEventListener("DOMContentLoaded", () => {
    for (const type of ["round", "checkout"]) document.addEventListener(`fedcart:${type}`, refresh);
    document.addEventListener("fedcart:round", showRound);
    setInterval(refresh, REFRESH_MS);
  });
})();
