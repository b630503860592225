// Every admin page: the live event stream (server-sent events) and the "live" indicator.
// Page scripts listen for "fedcart:<type>" events on document instead of opening their own streams.
"use strict";

(() => {
  const { say } = window.fedcart;

  function describe(type, data) {
    if (type === "round") return `Round ${data.round} finished: ${data.accepted ? "accepted" : "not accepted"}${data.reason ? ` (${data.reason})` : ""}.`;
    if (type === "checkout") return `Checkout: ${data.rows} item${data.rows === 1 ? "" : "s"} recorded.`;
    if (type === "settings") return "Round settings changed.";
    return "";
  }

  function connect() {
    const live = document.getElementById("live");
    const source = new EventSource("/api/events");
    source.addEventListener("ready", () => {
      live.textContent = "live";
      live.classList.add("on");
    });
    source.addEventListener("error", () => {
      const closed = source.readyState === EventSource.CLOSED;
      live.textContent = closed ? "offline: reload the page" : "reconnecting…";
      live.classList.remove("on");
    });
    for (const type of ["round", "checkout", "settings"]) {
      source.addEventListener(type, (event) => {
        const data = JSON.parse(event.data);
        document.dispatchEvent(new CustomEvent(`fedcart:${type}`, { detail: data }));
        say(document.getElementById("toast"), describe(type, data), "ok");
      });
    }
  }

  document.addEventListener("DOMContentLoaded", connect);
})();
