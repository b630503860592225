// Helpers every fedcart page uses: JSON API calls with the CSRF token, safe DOM building, money in the cart's
// currency, messages; and two buttons any page may carry: [data-print] prints the page, [data-copy] copies its value.
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

  // As child_cart/ui/money.py formats it: the symbol (or the code and a space) before the amount, two decimals.
  const currencyMeta = document.querySelector('meta[name="currency"]');
  const currencySymbol = currencyMeta ? currencyMeta.dataset.symbol : "";
  function money(cents) {
    const whole = Math.floor(Math.abs(cents) / 100);
    const part = String(Math.abs(cents) % 100).padStart(2, "0");
    return `${cents < 0 ? "-" : ""}${currencySymbol}${whole.toLocaleString("en-US")}.${part}`;
  }

  // Copies text; navigator.clipboard needs a secure context (HTTPS or localhost), the fallback works elsewhere.
  async function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      try {
        await navigator.clipboard.writeText(text);
        return true;
      } catch (err) {
        // fall through to the selection-based copy
      }
    }
    const area = el("textarea", { class: "sr-only", readonly: "" }, text);
    document.body.append(area);
    area.select();
    const copied = document.execCommand("copy");
    area.remove();
    return copied;
  }

  document.addEventListener("click", async (event) => {
    if (event.target.closest("[data-print]")) return window.print();
    const button = event.target.closest("[data-copy]");
    if (!button) return;
    const copied = await copyText(button.dataset.copy);
    const label = button.dataset.label || (button.dataset.label = button.textContent);
    button.textContent = copied ? "Copied" : "Copy failed";
    button.classList.toggle("done", copied);
    setTimeout(() => { button.textContent = label; button.classList.remove("done"); }, 1500);
  });

  // Shows a message in a notice element; kind is "ok", "error" or "info".
  function say(element, text, kind = "info") {
    element.textContent = text;
    element.className = `notice ${kind}`;
    element.hidden = !text;
  }

  // A metric's name as the page's template writes it (child_cart/ui/present.py METRIC_NAMES, handed over as JSON).
  let metricNames = null;
  function metricName(metric) {
    if (metricNames === null) {
      const names = document.getElementById("metric-names");
      metricNames = names ? JSON.parse(names.textContent) : {};
    }
    return metricNames[metric] || String(metric || "").replaceAll("_", " ");
  }

  return { api, copyText, errorMessage, el, metricName, money, say };
})();
