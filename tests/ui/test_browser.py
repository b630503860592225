"""The cart UI in real headless Chromium: scan, search and browse, bill (+, −, ×), checkout and receipt,
recommendations, the camera-less message, admin login, settings, charts, live rounds.

One browser (with a fake camera) for this module, and one without any camera for the
camera-less test; Playwright stops when the module ends, so asyncio tests that run
after it in the same session find no event loop of its own. Each test gets its own
cart (store in tmp_path) served from a thread on an ephemeral port. Waits are
Playwright's auto-waiting assertions with deadlines, never fixed sleeps.
Screenshots of home and admin at phone and desktop sizes go to artifacts/screenshots/;
with FEDCART_UPDATE_SCREENSHOTS=1 the ones the README shows are copied to docs/screenshots/.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from child_cart.models.versions import ModelVersions
from child_cart.rounds import settings as round_settings
from child_cart.rounds.roundlog import log_round
from child_cart.store import Store
from child_cart.tasks.recommend import RecommendTask
from child_cart.ui import serve
from child_cart.ui.server import UIServer

from .conftest import PASSWORD, round_record
from .images import blank_png, camera_video, foreign_qr_png, product, product_png

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
README_SCREENSHOT_DIR = ROOT / "docs" / "screenshots"
README_SCREENSHOTS = {"home-phone-shopping", "admin-rounds-desktop"}
"""The screenshots README.md shows, copied to docs/screenshots/ when UPDATE_SCREENSHOTS=1 is set."""
UPDATE_SCREENSHOTS = "FEDCART_UPDATE_SCREENSHOTS"
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
FAKE_CAMERA_ARGS = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
DEADLINE_MS = 10_000
CAMERA_PRODUCT = "P002"

playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright (python) is not installed: browser tests skipped"
)
expect = playwright_api.expect


@pytest.fixture(scope="module")
def playwright() -> Iterator:
    if not CHROMIUM.exists():
        pytest.skip(
            f"{CHROMIUM} is missing (apt-get install -y --no-install-recommends chromium): browser tests skipped"
        )
    with playwright_api.sync_playwright() as running:
        yield running


@pytest.fixture(scope="module")
def browser(playwright, tmp_path_factory) -> Iterator:
    """Headless Debian Chromium with a fake camera that shows one product's QR code."""
    video = tmp_path_factory.mktemp("camera") / "qr.y4m"
    video.write_bytes(camera_video(product_png(CAMERA_PRODUCT)))
    args = [*LAUNCH_ARGS, *FAKE_CAMERA_ARGS, f"--use-file-for-fake-video-capture={video}"]
    launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=args)
    yield launched
    launched.close()


@pytest.fixture(scope="module")
def camera_less_browser(playwright) -> Iterator:
    """Headless Chromium as on a machine with no camera at all (this one has none: no fake device either)."""
    launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
    yield launched
    launched.close()


@pytest.fixture
def server(app) -> Iterator[UIServer]:
    running = serve(app, "127.0.0.1", 0)
    yield running
    running.stop()


@pytest.fixture
def open_page(browser, server: UIServer):
    """Open a page of the served cart in a fresh browser context (own cookies) of the given size."""
    contexts = []

    def _open(path: str, viewport: dict = DESKTOP):
        context = browser.new_context(viewport=viewport, base_url=server.url)
        context.set_default_timeout(DEADLINE_MS)
        contexts.append(context)
        page = context.new_page()
        page.goto(path)
        return page

    yield _open
    for context in contexts:
        context.close()


def _upload(page, png: bytes) -> None:
    page.set_input_files("#upload-file", files=[{"name": "code.png", "mimeType": "image/png", "buffer": png}])
    page.click("#upload-submit")


def _login(page, password: str) -> None:
    page.fill("#password", password)
    page.click("button[type=submit]")


def _screenshot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    if name in README_SCREENSHOTS and os.environ.get(UPDATE_SCREENSHOTS) == "1":
        README_SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, README_SCREENSHOT_DIR / path.name)


def test_upload_scan_bad_scans_and_checkout_seen_live_on_admin(open_page, store: Store):
    admin = open_page("/admin")
    _login(admin, PASSWORD)
    expect(admin.locator("#live")).to_have_text("live", timeout=DEADLINE_MS)
    expect(admin.locator("#count-purchases")).to_have_text("0")

    home = open_page("/")
    message = home.locator("#message")
    _upload(home, blank_png())
    expect(message).to_contain_text("No QR code found")
    _upload(home, foreign_qr_png())
    expect(message).to_contain_text("not a fedcart product code")
    _upload(home, product_png("P001"))
    expect(message).to_contain_text(f"Added {product('P001').name}")
    expect(home.locator("#bill-lines tr")).to_have_count(1)
    _upload(home, product_png("P001"))
    expect(home.locator("#bill-lines .quantity")).to_have_text("2")
    expect(home.locator("#bill-total")).to_have_text("€3.38")

    home.click("#checkout")
    expect(message).to_contain_text("Choose who is shopping")
    home.select_option("#profile", "family")
    expect(home.locator("#rec-message")).to_contain_text("No model has been trained")
    _screenshot(home, "home-desktop")
    home.click("#checkout")
    expect(message).to_contain_text("Checked out 2 items, total €3.38")
    expect(home.locator("#bill-empty")).to_be_visible()

    expect(admin.locator("#count-purchases")).to_have_text("2", timeout=DEADLINE_MS)
    assert store.purchases.count_documents({"profile": "family"}) == 2
    _screenshot(admin, "admin-cart-desktop")


def test_recommendations_follow_the_bill_and_outlive_checkout(open_page, settings, store: Store):
    """Each item added (from the recommendations themselves) re-ranks them without it; after checkout they stay."""
    task = RecommendTask.from_settings(settings)
    ModelVersions(store, settings.data_dir).save(task.name, task.build_model(seed=0).get_weights(), samples=0)
    home = open_page("/")
    categories = home.locator("#rec-categories")
    home.select_option("#profile", "family")
    expect(categories.locator("li")).to_have_count(3)
    expect(home.locator("#rec-model")).to_contain_text("for an empty bill")
    in_bill: list[str] = []
    shown_categories = "() => [...document.querySelectorAll('#rec-categories li')].map(li => li.dataset.category)"
    for added in range(1, 3):
        first = categories.locator("li").first.get_attribute("data-category")
        home.locator("#rec-products li button").first.click()
        in_bill.append(first)
        expect(home.locator("#bill-lines tr")).to_have_count(added)
        expect(categories).to_have_attribute("data-basket", ",".join(c for c in task.categories if c in in_bill))
        shown = home.evaluate(shown_categories)
        assert len(shown) == 3 and not set(shown) & set(in_bill), (shown, in_bill)
        expect(home.locator("#rec-model")).to_contain_text("in the bill")
    _screenshot(home, "home-recommendations-desktop")
    home.click("#checkout")
    expect(home.locator("#message")).to_contain_text("Checked out 2 items")
    expect(categories).to_have_attribute("data-basket", "")
    expect(categories.locator("li")).to_have_count(3)
    expect(home.locator("#rec-model")).to_contain_text("for an empty bill")
    expect(home.locator("#profile")).to_have_value("family")
    home.reload()
    expect(home.locator("#profile")).to_have_value("family")
    expect(categories.locator("li")).to_have_count(3)


def test_camera_frame_is_decoded_by_the_server(open_page):
    home = open_page("/", PHONE)
    expect(home.locator("#bill-empty")).to_be_visible()
    _screenshot(home, "home-phone-first-visit")
    home.click("#camera-start")
    expect(home.locator("#message")).to_contain_text(f"Added {product(CAMERA_PRODUCT).name}", timeout=DEADLINE_MS)
    expect(home.locator("#bill-lines tr")).to_have_count(1)
    expect(home.locator("#camera-next")).to_be_visible()
    _screenshot(home, "home-phone-camera")
    home.click("#camera-stop")
    expect(home.locator("#camera")).to_be_hidden()
    expect(home.locator("#bill-lines .quantity")).to_have_text("1")
    _screenshot(home, "home-phone")


def test_admin_login_refuses_a_wrong_password_then_accepts_the_right_one(open_page):
    page = open_page("/admin", PHONE)
    expect(page).to_have_url(re.compile(r"/admin/login\?next=/admin$"))
    _login(page, "not the password")
    expect(page.locator("#login-error")).to_have_text("Wrong password.")
    _login(page, PASSWORD)
    expect(page.locator("h1")).to_have_text("This cart")
    expect(page.locator("#node-id")).to_contain_text("c0ffee")
    expect(page.locator("#connected")).to_have_text("not connected")
    _screenshot(page, "admin-cart-phone")


def test_changed_setting_is_validated_and_persisted(open_page, store: Store):
    page = open_page("/admin/settings")
    _login(page, PASSWORD)
    expect(page.locator("h1")).to_have_text("Round settings")
    page.fill("#setting-k", "0")
    page.click("#settings-save")
    expect(page.locator("#error-k")).to_be_visible()
    assert round_settings.load(store) == round_settings.RoundSettings()
    page.select_option("#setting-aggregator", "krum")
    page.fill("#setting-k", "5")
    page.click("#settings-save")
    expect(page.locator(".flash")).to_contain_text("Settings saved")
    stored = round_settings.load(store)
    assert (stored.aggregator, stored.k) == ("krum", 5)
    expect(page.locator("#setting-aggregator")).to_have_value("krum")
    _screenshot(page, "admin-settings-desktop")


@pytest.mark.parametrize(("viewport", "size"), [(DESKTOP, "desktop"), (PHONE, "phone")])
def test_rounds_chart_renders_and_a_finished_round_appears_live(open_page, store: Store, bus, viewport, size):
    for n in range(6):
        log_round(store, round_record(n, accepted=n != 3))
    page = open_page("/admin/rounds", viewport)
    _login(page, PASSWORD)
    expect(page.locator("#rounds-body tr")).to_have_count(6)
    page.wait_for_function(
        "() => Chart.getChart('chart-accuracy')?.data.datasets[1].data.length === 6", timeout=DEADLINE_MS
    )
    expect(page.locator("#live")).to_have_text("live", timeout=DEADLINE_MS)
    expect(page.locator("#gain-latest")).to_have_text("+0.115")

    bus.publish("round", round_record(6).model_dump(mode="json"))
    expect(page.locator("#round-6")).to_be_visible(timeout=DEADLINE_MS)
    expect(page.locator("#toast")).to_contain_text("Round 6 finished: accepted")
    points = page.evaluate(
        "() => ['accuracy', 'loss', 'bytes', 'time'].map(n => Chart.getChart('chart-' + n).data.labels.length)"
    )
    assert points == [7, 7, 7, 7]
    expect(page.locator("#gain-latest")).to_have_text("+0.130")
    expect(page.locator("#gain-mean")).to_have_text("+0.091")  # rounds 2 to 6: 0.07, 0.04, 0.1, 0.115, 0.13
    expect(page.locator("#round-6 td.gain")).to_have_text("+0.130")
    gain_line = page.evaluate(
        "() => Chart.getChart('chart-accuracy').data.datasets.find(d => d.yAxisID === 'gain').data"
    )
    assert gain_line == pytest.approx([0.04, 0.055, 0.07, 0.04, 0.1, 0.115, 0.13])
    _screenshot(page, f"admin-rounds-{size}")


def test_search_browse_plus_minus_checkout_and_the_printable_receipt(open_page, settings, store: Store):
    task = RecommendTask.from_settings(settings)
    ModelVersions(store, settings.data_dir).save(task.name, task.build_model(seed=0).get_weights(), samples=0)
    home = open_page("/", PHONE)
    results, status, lines = (
        home.locator("#find-results li"),
        home.locator("#find-status"),
        home.locator("#bill-lines tr"),
    )

    home.fill("#search", "milk")
    expect(status).to_have_text("2 products matching “milk”.")
    expect(results).to_have_count(2)
    expect(results.first).to_contain_text("Milk chocolate 100 g")
    expect(results.first).to_contain_text("Snacks · €1.29")
    results.filter(has_text="Whole milk 1 l").get_by_role("button", name="Add Whole milk 1 l").click()
    expect(lines).to_have_count(1)

    home.fill("#search", "")
    expect(status).to_have_text("Type a name or choose a category.")
    home.click('#categories [data-category="bakery"]')
    expect(status).to_have_text("5 products in Bakery.")
    expect(results).to_have_count(5)
    home.fill("#search", "zzz")
    expect(status).to_have_text("Nothing matching “zzz” in Bakery. Try fewer letters or another category.")
    expect(home.locator("#find-results")).to_be_hidden()
    home.fill("#search", "CROISS")
    expect(status).to_have_text("1 product matching “CROISS” in Bakery.")
    results.get_by_role("button").click()
    expect(lines).to_have_count(2)

    croissants, milk = (
        home.locator('#bill-lines tr[data-product-id="P012"]'),
        home.locator('#bill-lines tr[data-product-id="P006"]'),
    )
    croissants.get_by_role("button", name="One more Butter croissants x4").click()
    expect(croissants.locator(".quantity")).to_have_text("2")
    expect(croissants.locator(".subtotal")).to_have_text("€5.50")
    expect(croissants).to_contain_text("€2.75 each · Bakery")
    milk.get_by_role("button", name="One less Whole milk 1 l").click()
    expect(lines).to_have_count(1)
    expect(home.locator("#message")).to_have_text("One Whole milk 1 l less.")
    home.click('#categories [data-category=""]')
    home.fill("#search", "whole milk")
    expect(status).to_have_text("1 product matching “whole milk”.")
    results.get_by_role("button").click()
    expect(lines).to_have_count(2)
    expect(home.locator("#bill-count")).to_have_text("3 items")
    expect(home.locator("#bill-total")).to_have_text("€6.65")

    home.select_option("#profile", "family")
    expect(home.locator("#rec-categories")).to_have_attribute("data-basket", "dairy,bakery")
    expect(home.locator("#rec-categories li")).to_have_count(3)
    _screenshot(home, "home-phone-shopping")

    home.click("#checkout")
    expect(home.locator("#message")).to_contain_text("Checked out 3 items, total €6.65")
    expect(home.locator("#last-receipt")).to_be_visible()
    order = home.locator("#last-order").inner_text()
    assert re.fullmatch(r"[0-9A-F]{8}", order), order
    home.click("#receipt-link")
    expect(home).to_have_url(re.compile(r"/receipt/[0-9a-f]{32}$"))
    expect(home.locator("#order-number")).to_have_text(order)
    expect(home.locator("#receipt-lines tbody tr")).to_have_count(2)
    expect(home.locator("#receipt-lines tbody tr").first).to_contain_text("Butter croissants x4")
    expect(home.locator("#receipt-total")).to_have_text("€6.65")
    expect(home.locator("#receipt-profile")).to_have_text("family")
    _screenshot(home, "receipt-phone")
    home.evaluate("() => { window.printed = 0; window.print = () => { window.printed += 1; }; }")
    home.click("#print")
    assert home.evaluate("() => window.printed") == 1, "the Print button opens the browser's print dialog"
    home.emulate_media(media="print")
    expect(home.locator(".topbar")).to_be_hidden()
    expect(home.locator("#print")).to_be_hidden()
    expect(home.locator("#receipt-total")).to_be_visible()
    home.emulate_media(media="screen")

    home.goto("/receipt/" + "0" * 32)
    expect(home.locator("#no-receipt")).to_contain_text("This cart has no receipt for order 00000000.")


def test_without_a_camera_the_page_says_so_and_points_at_the_upload(camera_less_browser, server: UIServer):
    context = camera_less_browser.new_context(viewport=PHONE, base_url=server.url)
    context.set_default_timeout(DEADLINE_MS)
    context.grant_permissions(["camera"])
    try:
        home = context.new_page()
        home.goto("/")
        home.click("#camera-start")
        expect(home.locator("#message")).to_have_text("No camera found: upload a photo of the code instead.")
        expect(home.locator("#upload-form")).to_have_class(re.compile(r"\battention\b"))
        expect(home.locator("#upload-file")).to_be_focused()
        expect(home.locator("#camera")).to_be_hidden()
        _screenshot(home, "home-phone-no-camera")
        _upload(home, product_png("P001"))
        expect(home.locator("#message")).to_contain_text(f"Added {product('P001').name} (€1.69)")
    finally:
        context.close()
