// The cart screen: scan (camera or upload), find (search by name, browse by category), bill (+, −, ×),
// checkout with a link to the printable receipt, and recommendations, all through /api/.
// Recommendations follow the bill: every change of the bill asks for them again (the server reads the
// bill itself), and after checkout the same shopper keeps getting them for the next, empty bill.
"use strict";

(() => {
  const { api, errorMessage, el, money, say } = window.fedcart;
  const $ = (id) => document.getElementById(id);
  const SCAN_INTERVAL_MS = 700;
  const PAUSE_AFTER_ERROR_MS = 2000;
  const MAX_FRAME_WIDTH = 960;
  const TYPING_PAUSE_MS = 250;
  const MAX_QUANTITY = 99; // as child_cart.shop.MAX_QUANTITY
  const message = $("message");
  const camera = { stream: null, timer: null };
  const recs = { asked: 0, shown: false };
  const find = { asked: 0, category: "", timer: null };

  // What went wrong opening the camera, said so the shopper knows what to do next (getUserMedia's error names).
  const CAMERA_PROBLEMS = {
    NotFoundError: "No camera found: upload a photo of the code instead.",
    OverconstrainedError: "No camera found: upload a photo of the code instead.",
    NotAllowedError: "Camera access is blocked for this page: allow it in the browser's site settings, or upload a photo of the code instead.",
    SecurityError: "Camera access is blocked for this page: allow it in the browser's site settings, or upload a photo of the code instead.",
    NotReadableError: "The camera is busy or failed to start (another app may be using it): close that app, or upload a photo of the code instead.",
    AbortError: "The camera is busy or failed to start (another app may be using it): close that app, or upload a photo of the code instead.",
  };

  function renderBill(bill) {
    const lines = $("bill-lines");
    lines.replaceChildren(...bill.lines.map(billRow));
    $("bill-table").hidden = bill.lines.length === 0;
    $("bill-empty").hidden = bill.lines.length > 0;
    $("bill-count").textContent = `${bill.item_count} item${bill.item_count === 1 ? "" : "s"}`;
    $("bill-total").textContent = money(bill.total_cents);
    $("checkout").disabled = bill.lines.length === 0;
  }

  // Every bill change goes through here, so the recommendations never lag behind the bill.
  function billChanged(bill) {
    renderBill(bill);
    if ($("profile").value) loadRecommendations($("profile").value);
  }

  function billRow(line) {
    const minus = el("button", { type: "button", class: "small step minus", "aria-label": `One less ${line.name}`, onclick: () => removeItem(line, 1) }, "−");
    const plus = el("button", { type: "button", class: "small step plus", "aria-label": `One more ${line.name}`, onclick: () => addOne(line) }, "+");
    if (line.quantity >= MAX_QUANTITY) plus.disabled = true;
    const remove = el("button", { type: "button", class: "small danger", "aria-label": `Remove ${line.name}`, onclick: () => removeItem(line) }, "×");
    return el(
      "tr",
      { dataset: { productId: line.product_id } },
      el("td", {}, el("span", { class: "name" }, line.name), el("span", { class: "muted small block" }, `${money(line.price_cents)} each · ${categoryLabel(line.category)}`)),
      el("td", { class: "qty" }, minus, el("span", { class: "quantity" }, line.quantity), plus),
      el("td", { class: "num subtotal" }, money(line.subtotal_cents)),
      el("td", { class: "num" }, remove),
    );
  }

  function categoryLabel(name) {
    const chip = document.querySelector(`#categories [data-category="${CSS.escape(name)}"]`);
    return chip ? chip.textContent : name;
  }

  async function addOne(line) {
    const result = await api("POST", "/api/bill/items", { product_id: line.product_id, quantity: 1 });
    if (!result.ok) return say(message, errorMessage(result), "error");
    billChanged(result.data.bill);
    say(message, `One more ${line.name}.`, "info");
  }

  async function removeItem(line, quantity) {
    const query = quantity ? `?quantity=${quantity}` : "";
    const result = await api("DELETE", `/api/bill/items/${encodeURIComponent(line.product_id)}${query}`);
    if (!result.ok) return say(message, errorMessage(result), "error");
    billChanged(result.data.bill);
    say(message, quantity ? `One ${line.name} less.` : `${line.name} removed from the bill.`, "info");
  }

  async function addProduct(product) {
    const result = await api("POST", "/api/bill/items", { product_id: product.id });
    if (!result.ok) return say(message, errorMessage(result), "error");
    billChanged(result.data.bill);
    say(message, `Added ${product.name}.`, "ok");
  }

  // Shows what a scan did; returns true when a product was added.
  function scanned(result) {
    if (result.ok) {
      billChanged(result.data.bill);
      say(message, `Added ${result.data.added.name} (${money(Math.round(result.data.added.price * 100))}).`, "ok");
      return true;
    }
    say(message, errorMessage(result), "error");
    return false;
  }

  async function uploadScan(event) {
    event.preventDefault();
    const file = $("upload-file").files[0];
    if (!file) return say(message, "Choose a photo of a product's QR code first.", "error");
    const limit = Number($("upload-form").dataset.maxBytes);
    if (file.size > limit) return say(message, `The photo is ${(file.size / 1e6).toFixed(1)} MB; the limit is ${(limit / 1e6).toFixed(1)} MB.`, "error");
    const form = new FormData();
    form.append("image", file);
    $("upload-submit").disabled = true;
    const result = await api("POST", "/api/scan/image", form);
    $("upload-submit").disabled = false;
    if (scanned(result)) $("upload-form").reset();
  }

  // Says what kept the camera from opening and points at the upload field, the way that always works.
  function cameraProblem(text) {
    say(message, text, "error");
    $("upload-form").classList.add("attention");
    $("upload-file").focus();
  }

  async function startCamera() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      return cameraProblem("The camera works only on a secure page (HTTPS, or this computer's own address): upload a photo of the code instead.");
    }
    try {
      camera.stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false });
    } catch (err) {
      return cameraProblem(CAMERA_PROBLEMS[err.name] || `The camera could not be opened (${err.message || err.name}): upload a photo of the code instead.`);
    }
    $("upload-form").classList.remove("attention");
    const video = $("camera-video");
    video.srcObject = camera.stream;
    await video.play();
    $("camera").hidden = false;
    $("camera-start").hidden = true;
    $("camera-stop").hidden = false;
    scheduleFrame(SCAN_INTERVAL_MS);
  }

  function stopCamera() {
    clearTimeout(camera.timer);
    if (camera.stream) camera.stream.getTracks().forEach((track) => track.stop());
    camera.stream = null;
    $("camera").hidden = true;
    $("camera-start").hidden = false;
    $("camera-next").hidden = true;
    $("camera-stop").hidden = true;
  }

  // After an item is added, scanning waits for the shopper, so a code left in view is not added twice.
  function scanNext() {
    $("camera-next").hidden = true;
    $("camera-hint").textContent = "Hold the product's QR code in the frame.";
    scheduleFrame(0);
  }

  function scheduleFrame(delay) {
    camera.timer = setTimeout(sendFrame, delay);
  }

  // One camera frame to the server; "no code in view" is normal while aiming, so it only updates the hint.
  async function sendFrame() {
    if (!camera.stream) return;
    const video = $("camera-video");
    if (!video.videoWidth) return scheduleFrame(SCAN_INTERVAL_MS);
    const scale = Math.min(1, MAX_FRAME_WIDTH / video.videoWidth);
    const canvas = el("canvas");
    canvas.width = Math.round(video.videoWidth * scale);
    canvas.height = Math.round(video.videoHeight * scale);
    canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
    const result = await api("POST", "/api/scan/frame", { frame: canvas.toDataURL("image/jpeg", 0.85) });
    if (!camera.stream) return;
    if (!result.ok && result.data.error && result.data.error.code === "no_code") {
      $("camera-hint").textContent = "Looking for a QR code… hold it flat and in focus.";
      return scheduleFrame(SCAN_INTERVAL_MS);
    }
    if (scanned(result)) {
      $("camera-hint").textContent = `Added ${result.data.added.name}. Tap "Scan next product" for the next one.`;
      $("camera-next").hidden = false;
      return;
    }
    scheduleFrame(PAUSE_AFTER_ERROR_MS);
  }

  async function chooseProfile() {
    const profile = $("profile").value;
    if (!profile) return showRecommendations(null);
    const result = await api("PUT", "/api/bill/profile", { profile });
    if (!result.ok) return say(message, errorMessage(result), "error");
    say(message, "");
    loadRecommendations(profile);
  }

  async function checkout(event) {
    event.preventDefault();
    const profile = $("profile").value;
    if (!profile) return say(message, "Choose who is shopping before checking out.", "error");
    const result = await api("POST", "/api/checkout", { profile });
    if (!result.ok) return say(message, errorMessage(result), "error");
    const receipt = result.data.receipt;
    renderBill(result.data.bill);
    say(message, `Thank you! Checked out ${receipt.rows} item${receipt.rows === 1 ? "" : "s"}, total ${money(receipt.total_cents)}.`, "ok");
    $("last-order").textContent = receipt.order_number;
    $("receipt-link").href = receipt.url;
    $("last-receipt").hidden = false;
    // The new bill starts empty and without a profile: keep the shopper's, and keep recommending for it.
    const kept = await api("PUT", "/api/bill/profile", { profile });
    if (!kept.ok) return say(message, errorMessage(kept), "error");
    loadRecommendations(profile);
  }

  // Only the newest answer is drawn: a slow reply to an older bill never overwrites a newer one.
  async function loadRecommendations(profile) {
    const asked = ++recs.asked;
    if (!recs.shown) showRecommendations({ message: "Loading recommendations…" });
    const result = await api("GET", `/api/recommendations?profile=${encodeURIComponent(profile)}`);
    if (asked !== recs.asked) return;
    if (!result.ok) return showRecommendations({ message: errorMessage(result) });
    showRecommendations(result.data);
  }

  function showRecommendations(rec) {
    const hasModel = Boolean(rec && rec.model);
    recs.shown = hasModel;
    if (!rec) recs.asked += 1;
    $("rec-message").textContent = rec ? rec.message : "Choose who is shopping to see recommendations.";
    $("rec-message").hidden = hasModel;
    $("rec-categories").hidden = !hasModel;
    $("rec-products").hidden = !hasModel;
    $("rec-model").hidden = !hasModel;
    if (!hasModel) return;
    $("rec-categories").replaceChildren(
      ...rec.categories.map((c) => el("li", { dataset: { category: c.name } }, el("span", { class: "name" }, categoryLabel(c.name)), el("span", { class: "muted" }, ` ${Math.round(c.probability * 100)}% likely next`))),
    );
    $("rec-products").replaceChildren(
      ...rec.products.map((p) =>
        el("li", {}, el("span", {}, `${p.name} · ${money(Math.round(p.price * 100))}`), el("button", { type: "button", class: "small", onclick: () => addProduct(p) }, "Add")),
      ),
    );
    const basket = rec.basket.length ? `, after ${rec.basket.map(categoryLabel).join(", ")} in the bill` : ", for an empty bill";
    $("rec-model").textContent = `From model ${rec.model}, for ${rec.profile} in month ${rec.month}${basket}.`;
    $("rec-categories").dataset.basket = rec.basket.join(",");
  }

  // --- find: search by name, browse by category ------------------------------------------------

  function chooseCategory(chip) {
    find.category = chip.dataset.category;
    for (const other of document.querySelectorAll("#categories .chip")) other.setAttribute("aria-pressed", String(other === chip));
    runSearch();
  }

  function typed() {
    clearTimeout(find.timer);
    find.timer = setTimeout(runSearch, TYPING_PAUSE_MS);
  }

  // Only the newest answer is drawn, as for recommendations.
  async function runSearch() {
    clearTimeout(find.timer);
    const query = $("search").value.trim();
    const asked = ++find.asked;
    if (!query && !find.category) {
      $("find-results").hidden = true;
      $("find-status").textContent = "Type a name or choose a category.";
      return;
    }
    const params = new URLSearchParams();
    if (query) params.set("q", query);
    if (find.category) params.set("category", find.category);
    const result = await api("GET", `/api/products?${params}`);
    if (asked !== find.asked) return;
    if (!result.ok) {
      $("find-results").hidden = true;
      $("find-status").textContent = errorMessage(result);
      return;
    }
    const products = result.data.products;
    const where = find.category ? ` in ${categoryLabel(find.category)}` : "";
    const what = query ? ` matching “${query}”` : "";
    $("find-status").textContent = products.length
      ? `${products.length} product${products.length === 1 ? "" : "s"}${what}${where}.`
      : `Nothing${what}${where}. Try fewer letters or another category.`;
    $("find-results").replaceChildren(...products.map(productRow));
    $("find-results").hidden = products.length === 0;
  }

  function productRow(p) {
    return el(
      "li",
      { dataset: { productId: p.id } },
      el("span", {}, el("span", { class: "name" }, p.name), el("span", { class: "muted small block" }, `${categoryLabel(p.category)} · ${money(Math.round(p.price * 100))}`)),
      el("button", { type: "button", class: "small", "aria-label": `Add ${p.name}`, onclick: () => addProduct(p) }, "Add"),
    );
  }

  document.addEventListener("DOMContentLoaded", () => {
    renderBill(JSON.parse($("initial-bill").textContent));
    $("find-form").addEventListener("submit", (event) => { event.preventDefault(); runSearch(); });
    $("search").addEventListener("input", typed);
    for (const chip of document.querySelectorAll("#categories .chip")) chip.addEventListener("click", () => chooseCategory(chip));
    $("upload-form").addEventListener("submit", uploadScan);
    $("camera-start").addEventListener("click", startCamera);
    $("camera-stop").addEventListener("click", stopCamera);
    $("camera-next").addEventListener("click", scanNext);
    $("profile").addEventListener("change", chooseProfile);
    $("checkout-form").addEventListener("submit", checkout);
    if ($("profile").value) loadRecommendations($("profile").value);
  });
})();
