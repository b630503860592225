// Helpers every fedcart page uses: JSON API calls with the CSRF token, safe DOM building, messages.
"use strict";

window.fedcart = (() => {
  const csrfToken = () => document.querySelector('meta[name="csrf-token"]').content;

  // Calls the JSON API; resolves to {ok, status, data} and never throws on HTTP errors.
  async function api(method, path, body) {
    const options = { method, headers: { Accept: "application/json" }, credentials: "same-origin" };
    if (method !== "GET") options.headers["X-CSRFToken"] = csrfToken();
    if (body instanceof FormData) {
      options.body = body;
    } else if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    try {
      const response = await fetch(path, options);
      const data = await response.json().catch(() => ({}));
      return { ok: response.ok, status: response.status, data };
    } catch (err) {
      return { ok: false, status: 0, data: { error: { code: "network", message: "The cart did not answer. Check the connection and try again." } } };
    }
  }

  const errorMessage = (result) =>
    (result.data && result.data.error && result.data.error.message) || `Request failed (HTTP ${result.status}).`;

  // Builds an element; children may be strings (inserted as text, never as HTML) or nodes.
  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs)) {
      if (name === "class") node.className = value;
      else if (name === "dataset") Object.assign(node.dataset, value);
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value);
    }
    for (const child of children) node.append(child instanceof Node ? child : String(child));
    return node;
  }

  const money = (cents) => (cents / 100).toFixed(2);

  // Shows a message in a notice element; kind is "ok", "error" or "info".
  function say(element, text, kind = "info") {
    element.textContent = text;
    element.className = `notice ${kind}`;
    element.hidden = !text;
  }

  return { api, errorMessage, el, money, say };
})();
