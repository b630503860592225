"""The cart process: store, bridge connection, background rounds, and the UI.

Everything runs on one asyncio loop; Keras work goes to worker threads so the
cart keeps answering peers while it trains. Rounds run on the schedule in the
round settings (re-read every round, so the admin page can change it live).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from cartnet import tls
from cartnet.certificates import load_enrolment
from cartnet.client import BridgeClient
from cartnet.identity import Identity
from cartnet.peers import PeerVerifier
from cartnet.transfer import Received
from child_cart.events import EventBus
from child_cart.models.versions import ModelVersions
from child_cart.rounds import settings as round_settings
from child_cart.rounds.engine import RoundEngine
from child_cart.rounds.exchange import UpdateExchange
from child_cart.rounds.learner import Learner
from child_cart.rounds.publish import PhonePublisher
from child_cart.settings import CartSettings
from child_cart.store import Store, open_cart_store
from child_cart.tasks.base import Task
from child_cart.tasks.registry import get_task
from child_cart.ui.server import UIServer, start_ui

log = logging.getLogger(__name__)

FIRST_ROUND_SECONDS = 3.0
"""Wait between the bridge's first admission and the first scheduled round (the peers get listed meanwhile)."""


class CartNode:
    def __init__(
        self,
        settings: CartSettings,
        store: Store | None = None,
        bus: EventBus | None = None,
        publish: bool = True,
        task: Task | None = None,
    ) -> None:
        self.settings = settings
        self.identity = Identity.load_or_create(settings.data_dir)
        # a cart without a valid certificate refuses to start (CertificateError names `fedcart enrol`)
        swarm, self.certificate = load_enrolment(settings.data_dir, self.identity.public_key, "cart")
        # peers' keys are believed only against the swarm key and revocation list kept in the data dir (cartnet.peers)
        self.verifier = PeerVerifier.load(settings.data_dir, swarm)
        self.store = store or open_cart_store(settings)
        self.bus = bus or EventBus()
        self.task = task or get_task(settings.task, settings)
        self.client = BridgeClient(
            self.identity,
            settings.bridge_urls,  # primary first; the client fails over along the list
            self.certificate,
            swarm_token=settings.swarm_token,
            task=self.task.name,
            ssl_context=tls.dialing_context(settings.data_dir, settings.tls_ca),  # for an https:// BRIDGE_URL
        )
        self.models = ModelVersions(self.store, settings.data_dir)
        self.learner = Learner(self.task, batch_size=settings.train_batch_size)
        self.client.verifier = self.verifier  # newer revocation lists our bridge passes on reach it
        self.exchange = UpdateExchange(self.client, self.task.name, self.verifier)
        publisher = None
        if publish and self.task.phone_model:
            publisher = PhonePublisher(self.store, settings.data_dir, self.task, self.client, settings.export_tolerance)
        self.engine = RoundEngine(
            self.store, self.models, self.learner, self.exchange, self.client, self.bus, publisher
        )
        self.wake = asyncio.Event()
        self.ui: UIServer | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def node_id(self) -> str:
        return self.identity.node_id

    async def start(self, scheduled_rounds: bool = True, ui: bool | UIServer = False) -> None:
        """Connect to the bridge and start the message pumps, the round loop (unless driven from outside) and the UI.

        `ui`: True serves the UI on UI_PORT; a `UIServer` (the one `fedcart node` answers with while it loads)
        gets the UI mounted. A saved model is on offer to peers from here on (`RoundEngine.offer_saved`)."""
        await self.client.start()
        await self.engine.offer_saved()
        if ui:
            view = LiveNodeView(self, asyncio.get_running_loop())
            server = ui if isinstance(ui, UIServer) else None
            self.ui = await asyncio.to_thread(start_ui, self.settings, self.store, self.bus, view, server)
            log.info("cart UI at %s (admin: %s/admin)", self.ui.url, self.ui.url)
        loops = [self._pump_messages(), self._pump_transfers(), self._pump_undeliverable()]
        if scheduled_rounds:
            loops.append(self._round_loop())
        self._tasks.extend(asyncio.create_task(coro) for coro in loops)

    async def stop(self) -> None:
        if self.ui is not None:
            await asyncio.to_thread(self.ui.stop)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.exchange.close()
        await self.client.close()

    async def _pump_messages(self) -> None:
        async for incoming in self.client:
            if not self.exchange.on_message(incoming.peer, incoming.message):
                log.debug("ignoring %s from %s", type(incoming.message).__name__, incoming.peer[:8])

    async def _pump_transfers(self) -> None:
        while True:
            received: Received = await self.client.transfers.received.get()
            if not self.exchange.on_transfer(received):
                log.info("ignoring a %s transfer from %s", received.manifest.purpose, received.peer[:8])

    async def _pump_undeliverable(self) -> None:
        while True:
            notice = await self.client.undeliverable.get()
            self.exchange.fail_peer(notice.to, notice.reason)

    async def _round_loop(self) -> None:
        """Run a round whenever the schedule says so (or `wake` is set), once connected.

        The first round comes FIRST_ROUND_SECONDS after the bridge first admitted us, not a whole schedule
        later: the sooner a cart has trained, the sooner its peers' rounds find an update on offer."""
        await self.client.connected.wait()
        first = True
        while True:
            schedule = (await asyncio.to_thread(round_settings.load, self.store)).schedule_seconds
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), min(schedule, FIRST_ROUND_SECONDS) if first else schedule)
            first = False
            self.wake.clear()
            if not self.client.connected.is_set():
                log.info("not connected to a bridge: round postponed")
                continue
            try:
                await self.engine.run_round()
            except ValueError as exc:
                log.info("round skipped: %s", exc)
            except Exception:  # the loop must outlive one bad round; the traceback is logged
                log.exception("round failed")


class LiveNodeView:
    """The UI's window on the running node (the UI serves from its own threads, the node lives on the loop)."""

    PEERS_TIMEOUT = 5.0

    def __init__(self, node: CartNode, loop: asyncio.AbstractEventLoop) -> None:
        self._node, self._loop = node, loop

    @property
    def node_id(self) -> str:
        return self._node.node_id

    @property
    def bridge_url(self) -> str:
        """The bridge the cart is on (or dialing next): the primary until it fails over."""
        return self._node.client.url.removesuffix("/ws")

    @property
    def connected(self) -> bool:
        return self._node.client.connected.is_set()

    def peers(self) -> list[dict[str, Any]]:
        """The bridge directory, or [] while the bridge cannot be asked."""
        if not self.connected:
            return []
        future = asyncio.run_coroutine_threadsafe(self._node.client.peers(), self._loop)
        try:
            listed = future.result(self.PEERS_TIMEOUT)
            return [peer.listing() for peer in listed]
        except (ConnectionError, TimeoutError) as exc:
            log.info("peer list unavailable: %s", exc)
            return []
