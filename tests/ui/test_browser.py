"""The cart UI in real headless Chromium: scan, search and browse, bill (+, −, ×), checkout and receipt,
recommendations, the camera-less message, admin login, settings, charts, live rounds, peers and the swarm
view; and the bridge's own status page.

One browser (with a fake camera) for this module, and one without any camera for the
camera-less test; Playwright stops when the module ends, so asyncio tests that run
after it in the same session find no event loop of its own. Each test gets its own
cart (store in tmp_path) served from a thread on an ephemeral port. Waits are
Playwright's auto-waiting assertions with deadlines, never fixed sleeps.
Screenshots of home and admin at phone and desktop sizes go to artifacts/screenshots/;
with FEDCART_UPDATE_SCREENSHOTS=1 the ones the README shows are copied to docs/screenshots/.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cartnet.authority import Authority, ensure_enrolled
from cartnet.client import Backoff, BridgeClient
from cartnet.identity import Identity
from child_cart.models.versions import ModelVersions
from child_cart.rounds import settings as round_settings
from child_cart.rounds.roundlog import log_round
from child_cart.store import Store
from child_cart.tasks.recommend import RecommendTask
from child_cart.ui import create_app, serve
from child_cart.ui.server import UIServer
from parent_cart.bridge import Bridge
from parent_cart.settings import BridgeSettings

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
    expect(page.locator("#gain-latest-error")).to_have_text(", ± 0.025")
    refused = page.locator("#round-3 td").last  # refused for serving, adopted as the swarm model all the same
    expect(refused).to_have_text(
        "kept local: aggregate worse than local beyond tolerance; the next round trains from the aggregate"
    )
    expect(page.locator("#round-2 td").last).to_have_text("accepted")

    bus.publish("round", round_record(6).model_dump(mode="json"))
    expect(page.locator("#round-6")).to_be_visible(timeout=DEADLINE_MS)
    expect(page.locator("#toast")).to_contain_text("Round 6 finished: accepted")
    points = page.evaluate(
        "() => ['accuracy', 'loss', 'bytes', 'time'].map(n => Chart.getChart('chart-' + n).data.labels.length)"
    )
    assert points == [7, 7, 7, 7]
    expect(page.locator("#gain-latest")).to_have_text("+0.130")
    expect(page.locator("#gain-latest-error")).to_have_text(", ± 0.024")
    # named by the page's script, as its template does
    expect(page.locator("#gain-metric")).to_have_text("top-1 accuracy")
    expect(page.locator("#gain-mean")).to_have_text("+0.091")  # rounds 2 to 6: 0.07, 0.04, 0.1, 0.115, 0.13
    expect(page.locator("#round-6 td.gain")).to_have_text("+0.130")
    gain_line = page.evaluate(
        "() => Chart.getChart('chart-accuracy').data.datasets.find(d => d.yAxisID === 'gain').data"
    )
    assert gain_line == pytest.approx([0.04, 0.055, 0.07, 0.04, 0.1, 0.115, 0.13])
    swarm_line = page.evaluate(
        "() => Chart.getChart('chart-accuracy').data.datasets.find(d => d.label.startsWith('swarm model')).data"
    )
    assert swarm_line == pytest.approx([0.33 + 0.025 * n for n in range(7)]), "the swarm model's own score is not drawn"
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


# --- the swarm: real bridges and carts on an event loop of their own ----------------------------


class LoopThread:
    """An asyncio loop on a thread, for the bridges and carts a sync browser test looks at."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="swarm-loop", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = DEADLINE_MS / 1000 * 3) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(DEADLINE_MS / 1000)
        self.loop.close()


@dataclass
class Swarm:
    """Two linked bridges, carts A and B on the first and C on the second, all enrolled in one test authority."""

    root: Path
    loop: LoopThread
    bridges: list[Bridge] = field(default_factory=list)
    carts: list[BridgeClient] = field(default_factory=list)

    async def start(self) -> None:
        authority = Authority.create(self.root / "authority")
        for name in ("b1", "b2"):
            data_dir = self.root / name
            ensure_enrolled(authority, data_dir, "bridge")
            bootstrap = ",".join(f"127.0.0.1:{b.dht_port}" for b in self.bridges)
            bridge = Bridge(_bridge_settings(data_dir, bootstrap))
            await bridge.start()
            self.bridges.append(bridge)
        b1, b2 = self.bridges
        assert await b1.directory.wait_until(lambda: b2.node_id in b1.links.ids(), DEADLINE_MS / 1000 * 2), "no link"
        for bridge in (b1, b1, b2):
            identity = Identity.generate()
            cart = BridgeClient(
                identity,
                bridge.url,
                authority.issue(identity.public_key, "cart"),
                task="recommend",
                backoff=Backoff(initial=0.05, maximum=0.5),
            )
            await cart.start()
            await cart.wait_connected(DEADLINE_MS / 1000)
            self.carts.append(cart)
        await self.carts[1].announce(ready=True)
        listed = await b1.directory.wait_until(lambda: b1.directory.count() == 3, DEADLINE_MS / 1000 * 2)
        assert listed, "b1 never listed all three carts"

    async def stop(self) -> None:
        for cart in self.carts:
            await cart.close()
        for bridge in reversed(self.bridges):
            await bridge.stop()


def _bridge_settings(data_dir: Path, bootstrap: str) -> BridgeSettings:
    return BridgeSettings(
        _env_file=None,
        data_dir=data_dir,
        port=0,
        dht_port=0,
        bridge_bootstrap=bootstrap,
        heartbeat_interval=1.0,
        dht_timeout=0.5,
        refresh_interval=1.0,
        link_timeout=3.0,
        shutdown_grace=1.0,
    )


class LiveNode:
    """What the cart process gives its UI (child_cart.node), around a real BridgeClient on the swarm's loop."""

    def __init__(self, client: BridgeClient, loop: LoopThread) -> None:
        self.client, self.loop = client, loop
        self.node_id, self.bridge_url = client.node_id, client.url

    @property
    def connected(self) -> bool:
        return True

    def peers(self) -> list[dict[str, Any]]:
        listed = self.loop.run(self.client.peers())
        return [peer.listing() for peer in listed]


@pytest.fixture
def swarm(tmp_path: Path) -> Iterator[Swarm]:
    loop = LoopThread()
    running = Swarm(tmp_path / "swarm", loop)
    try:
        loop.run(running.start())
        yield running
    finally:
        loop.run(running.stop())
        loop.close()


def test_swarm_view_peers_and_the_bridge_status_page(browser, swarm: Swarm, settings, store: Store, bus):
    """Cart A's admin lists every cart its bridge knows with its last round and score, ids shortened with a copy
    button; bridge 1's own page shows its carts, the cart behind bridge 2, and the link, without any login."""
    a, b, c = swarm.carts
    for n in range(3):
        log_round(
            store,
            round_record(n).model_copy(
                update={
                    "node_id": a.node_id,
                    "peers_asked": [b.node_id, c.node_id],
                    "peers_answered": [b.node_id, c.node_id] if n < 2 else [b.node_id],
                    "received": {b.node_id: {"accuracy": 0.40 + n / 100}, c.node_id: {"accuracy": 0.35}},
                    "samples": {a.node_id: 494, b.node_id: 512, c.node_id: 455},
                    "skipped": {} if n < 2 else {c.node_id: "no answer before the deadline"},
                }
            ),
        )
    cart_ui = serve(create_app(settings, store, bus, LiveNode(a, swarm.loop)), "127.0.0.1", 0)
    context = browser.new_context(viewport=DESKTOP, base_url=cart_ui.url)
    context.set_default_timeout(DEADLINE_MS)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=cart_ui.url)
    try:
        page = context.new_page()
        page.goto("/admin/swarm")
        _login(page, PASSWORD)
        rows = page.locator("#swarm-table tbody tr")
        expect(rows).to_have_count(3)
        own = page.locator(f'#swarm-table tr[data-node="{a.node_id}"]')
        expect(own).to_contain_text("this cart")
        expect(own.locator(".last-round")).to_have_text("2")
        expect(own.locator(".rows")).to_have_text("494")
        peer_b = page.locator(f'#swarm-table tr[data-node="{b.node_id}"]')
        expect(peer_b.locator(".last-round")).to_have_text("2")
        expect(peer_b.locator(".score")).to_have_text("top-1 accuracy 0.420")
        expect(peer_b.locator(".rows")).to_have_text("512")
        expect(peer_b.locator("code").first).to_have_text(f"{b.node_id[:12]}…")
        peer_c = page.locator(f'#swarm-table tr[data-node="{c.node_id}"]')
        expect(peer_c.locator(".last-round")).to_have_text("1")
        expect(peer_c.locator(".note")).to_have_text("asked in round 2: no answer before the deadline")
        peer_b.get_by_role("button", name="Copy the whole node id").click()
        expect(peer_b.get_by_role("button", name="Copy the whole node id")).to_have_text("Copied")
        assert page.evaluate("() => navigator.clipboard.readText()") == b.node_id
        _screenshot(page, "admin-swarm-desktop")

        page.goto("/admin/peers")
        expect(page.locator("#peers-table tbody tr")).to_have_count(2)  # the bridge lists the others
        expect(page.locator("#peer-count")).to_contain_text("2 carts in the bridge directory besides this one")
        expect(page.locator("#peers-table .copy")).to_have_count(8)  # node id, bridge id and two keys per cart
        table = page.locator("#peers-table")
        assert table.evaluate("t => t.scrollWidth <= t.parentElement.clientWidth"), "the key columns fit the page"
        _screenshot(page, "admin-peers-desktop")

        b1, b2 = swarm.bridges
        status = context.new_page()
        status.goto(f"{b1.url}/")
        expect(status.locator("#carts-here")).to_have_text("2")
        expect(status.locator("#carts-swarm")).to_have_text("3")
        expect(status.locator("#links")).to_have_text("1")
        expect(status.locator("#carts tbody tr")).to_have_count(3)
        expect(status.locator(f'#carts tr[data-node="{a.node_id}"]')).to_contain_text("this bridge")
        expect(status.locator(f'#carts tr[data-node="{b.node_id}"]')).to_contain_text("yes")
        expect(status.locator(f'#carts tr[data-node="{c.node_id}"]')).to_contain_text(b2.node_id[:12])
        expect(status.locator(f'#links-table tr[data-bridge="{b2.node_id}"]')).to_contain_text(b2.url)
        expect(status.locator("#no-model")).to_contain_text("No model published yet")
        status.wait_for_function("() => document.querySelector('.pair img').naturalWidth > 0")
        _screenshot(status, "bridge-status-desktop")
    finally:
        context.close()
        cart_ui.stop()


def test_admin_pages_say_what_each_figure_counts_for_every_task(open_page, store: Store, settings, bus):
    """The same rounds give the same "own rows" on the Rounds and Models pages, and an IoT task's models show."""
    models = ModelVersions(store, settings.data_dir)
    for n in range(2):
        log_round(store, round_record(n))
        models.save("recommend", [np.zeros((2, 2), np.float32)], samples=800, metrics={"accuracy": 0.4 + n / 100})
    models.save("iot-anomaly", [np.zeros((2, 2), np.float32)], samples=300, metrics={"f1": 0.93, "threshold": 0.21})
    page = open_page("/admin")
    _login(page, PASSWORD)
    expect(page.locator("#count-purchases + .label")).to_have_text(
        "purchase rows (one per item bought; training and held-out)"
    )
    expect(page.locator("#current-model")).to_have_text("recommend-v000002")
    expect(page.locator("#current-model-facts")).to_have_text("held-out top-1 accuracy 0.410, trained on 800 own rows")
    expect(page.locator("#last-round")).to_contain_text("Kept model: held-out top-1 accuracy 0.355.")
    expect(page.locator("#live")).to_have_text("live", timeout=DEADLINE_MS)
    bus.publish("round", round_record(2).model_dump(mode="json"))
    expect(page.locator("#last-round")).to_contain_text("Round 2 (recommend, fedavg): accepted", timeout=DEADLINE_MS)
    expect(page.locator("#last-round")).to_contain_text("Kept model: held-out top-1 accuracy 0.380.")
    _screenshot(page, "admin-cart-desktop")
    page.goto("/admin/models")
    expect(page.locator("#models-recommend tbody tr").first.locator("td").nth(3)).to_have_text("800")
    expect(page.locator("#models-iot-anomaly thead")).to_contain_text("F1")
    expect(page.locator("#models-iot-anomaly tbody tr").first).to_contain_text("0.930")
    _screenshot(page, "admin-models-desktop")
    page.goto("/admin/rounds")
    expect(page.locator("#round-1 td.own-rows")).to_have_text("800")
    expect(page.locator("#round-1 td.all-rows")).to_have_text("2450")
