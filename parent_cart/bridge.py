"""One bridge, assembled: relay, DHT, links, directory, model store and metrics.

`Bridge` is what `fedcart bridge` runs and what tests start in-process (several per
process: every part, metrics included, belongs to its instance). A bridge needs to be
enrolled (`fedcart enrol --role bridge`): without the swarm key and a valid bridge
certificate in its data dir, constructing it raises CertificateError naming that command.

Every `refresh_interval` the bridge re-reads the revocation list in its data dir and drops
each cart session and bridge link whose certificate no longer holds (revoked or expired);
a newer list from a linked bridge does the same at once and is passed on to every link. `start` returns once
the relay listens, the DHT node is bootstrapped and one announce/discover round has run,
so a caller can rely on "started" meaning "reachable and published".

With a TLS certificate and key (TLS_CERT/TLS_KEY, or the data dir's `tls/` files from
`fedcart enrol --tls-host`; cartnet.tls) the relay serves HTTPS and WSS on its one port, the
TLS handshake counted in the header deadline; without them it serves plain HTTP. Links to other
bridges verify their certificates against TLS_CA or the swarm CA (`tls/ca.pem`). A certificate
file replaced on disk (renewed) is served from the next refresh on, to new connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import time
from pathlib import Path

from aiohttp import web

from cartnet import frames, tls
from cartnet.certificates import Certificate
from cartnet.identity import Identity
from cartnet.messages import Bye, PresenceRecord, RevocationList
from cartnet.phone_models import PublishedModel
from cartnet.transfer import TransferHub, TransferLimits
from parent_cart import app, records
from parent_cart.agreement import ModelAgreement
from parent_cart.announce import Announcer
from parent_cart.dht import Dht
from parent_cart.directory import Directory
from parent_cart.gate import Gate
from parent_cart.header_deadline import HeaderDeadline
from parent_cart.links import Links
from parent_cart.membership import Membership
from parent_cart.metrics import BridgeMetrics
from parent_cart.models import ModelError, ModelStore
from parent_cart.relay import Relay
from parent_cart.session import CartSessions
from parent_cart.settings import BridgeSettings

log = logging.getLogger(__name__)


class Bridge:
    """A parent node; `async with Bridge(settings) as bridge:` runs it for the block."""

    def __init__(self, settings: BridgeSettings, identity: Identity | None = None) -> None:
        self.settings = settings
        self.identity = identity or Identity.load_or_create(settings.data_dir)
        self.membership = Membership(settings.data_dir, self.identity, settings.swarm_token)
        self.membership.on_revocations(self._revocations_adopted)
        self.metrics = BridgeMetrics()
        self.models = ModelStore(
            settings.data_dir / "models",
            settings.models_keep,
            settings.max_model_bytes,
            self.membership,
            int(settings.model_clock_skew * 1000),
        )
        self.membership.on_revocations(self.models.withdraw_revoked)
        self.directory = Directory(self.node_id, "")
        limits = TransferLimits(
            max_size=settings.max_model_bytes, max_concurrent_per_peer=1, max_buffered=4 * settings.max_model_bytes
        )
        self.hub = TransferHub(self.identity, self._to_cart, limits, accept=self.models.admit, check=self.models.check)
        verifier = records.Verifier(
            self.membership.swarm,
            self.membership.revocations,
            max_ttl=settings.presence_max_ttl,
            on_refused=self._dht_refused,
        )
        self.dht = Dht(
            self.node_id,
            verifier,
            ksize=settings.dht_ksize,
            alpha=settings.dht_alpha,
            timeout=settings.dht_timeout,
        )
        self.membership.on_revocations(self.dht.accept_revocations)
        self.tls_files = tls.server_files(settings.data_dir, settings.tls_cert, settings.tls_key)
        self.tls: ssl.SSLContext | None = tls.server_context(*self.tls_files) if self.tls_files else None
        self._tls_stamp = _stamps(self.tls_files)
        _check_public_url(settings.public_url, self.tls is not None)
        self.relay = Relay(self.directory, self.metrics, settings.send_timeout, self._forward, self._lookup)
        self.links = Links(
            self.identity,
            settings,
            self.membership,
            self.directory,
            self.relay,
            tls.dialing_context(settings.data_dir, settings.tls_ca),
        )
        self.announcer = Announcer(
            self.identity,
            settings,
            self.dht,
            self.directory,
            self.links,
            self.membership.certificate,
            self._cart_certificate,
        )
        self.agreement = ModelAgreement(self.models, self.dht, self.links, self._peer_urls, settings.link_timeout)
        self.sessions = CartSessions(
            self.identity, settings, self.directory, self.relay, self.hub, self.metrics, self._joined, self._left
        )
        self.membership.on_revocations(self.sessions.announce_revocations)
        self.gate = Gate(
            self.identity,
            settings,
            self.membership,
            self.directory,
            self.metrics,
            self.sessions.serve,
            self.links.link_peer,
            self.links.accept,
        )
        self.header_deadline = HeaderDeadline(settings.http_header_timeout, self.metrics.header_timeouts)
        self.url = ""
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._listener: asyncio.Server | None = None
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._sweeps: set[asyncio.Task[None]] = set()
        self._started = 0.0

    @property
    def node_id(self) -> str:
        return self.identity.node_id

    @property
    def dht_port(self) -> int:
        return self.dht.port

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen, join the DHT, announce ourselves and link to the bridges we can find."""
        await self._listen()
        scheme = "https" if self.tls is not None else "http"
        self.url = self.settings.public_url.rstrip("/") or f"{scheme}://{_reachable(self.settings.host)}:{self.port}"
        self.directory.bridge_url = self.links.public_url = self.announcer.public_url = self.url
        await self.dht.start(self.settings.host, self.settings.dht_port)
        await self.dht.bootstrap(self.settings.bootstrap_addresses())
        self._register_gauges()
        await self.announcer.refresh()
        self._started = time.monotonic()
        self._tasks = [
            asyncio.create_task(self._announce()),
            asyncio.create_task(self._intake()),
            asyncio.create_task(self._watch_membership()),
            asyncio.create_task(self._agree()),
        ]
        log.info(
            "bridge %s: relay %s, DHT udp/%d, %d DHT contacts",
            self.node_id[:8],
            self.url,
            self.dht_port,
            len(self.dht.contact_ids()),
        )

    async def _listen(self) -> None:
        """Serve the routes on HOST:PORT with the HTTP limits: header deadline, idle timeout, header sizes.

        The listening socket is ours rather than a `web.TCPSite`'s so that every
        connection's protocol comes through `HeaderDeadline.protocols` (aiohttp has
        no header timeout of its own); the runner still owns the app and, on
        cleanup, closes the connections. A handler is not cancelled when its
        client goes away (aiohttp's `handler_cancellation`): /ws handlers end with
        their socket anyway and clean up after themselves. With TLS the socket
        speaks it (asyncio's SSL transport under each handler); the header deadline
        runs from the TCP accept, so a stalled handshake is cut off by it too.
        """
        s = self.settings
        self._runner = web.AppRunner(
            app.build(self),
            handle_signals=False,
            shutdown_timeout=s.shutdown_grace,
            keepalive_timeout=s.http_idle_timeout,
            max_line_size=s.http_max_header_line,
            max_field_size=s.http_max_header_line,
            max_headers=s.http_max_headers,
        )
        await self._runner.setup()
        server = self._runner.server
        assert server is not None, "AppRunner.setup() makes the server"
        loop = asyncio.get_running_loop()
        self._listener = await loop.create_server(
            self.header_deadline.protocols(server),
            s.host,
            s.port,
            ssl=self.tls,
            ssl_handshake_timeout=s.http_header_timeout if self.tls is not None else None,
        )
        self.port = self._listener.sockets[0].getsockname()[1]

    async def stop(self, reason: str = "bridge shutting down") -> None:
        """Tell every cart and bridge Bye, retract our carts from the DHT, release the ports."""
        if self._runner is None:
            return
        self.gate.closing = True
        self._stop.set()
        bye = frames.control(Bye(reason=reason))
        grace = self.settings.shutdown_grace
        await asyncio.gather(*(peer.close(bye, grace) for peer in list(self.directory.local.values())))
        await self.directory.wait_until(lambda: not self.directory.local, grace)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.announcer.settled(), grace)
        await self.announcer.close()
        await self.links.close(reason)
        for task in [*self._tasks, *self._sweeps]:
            task.cancel()
        await asyncio.gather(*self._tasks, *self._sweeps, return_exceptions=True)
        self.dht.stop()
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        self.header_deadline.cancel()
        await self._runner.cleanup()
        self._runner = None
        log.info("bridge %s stopped: %s", self.node_id[:8], reason)

    async def __aenter__(self) -> Bridge:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def health(self) -> dict[str, object]:
        latest = self.models.latest
        return {
            "status": "stopping" if self.gate.closing else "ok",
            "bridge_id": self.node_id,
            "url": self.url,
            "tls": self.tls is not None,
            "carts": len(self.directory.local),
            "swarm_carts": self.directory.count(),
            "bridges_linked": len(self.links.ids()),
            "dht_contacts": len(self.dht.contact_ids()),
            "model_version": latest.version if latest else None,
            "swarm_id": self.membership.swarm_id,
            "revocation_serial": self.membership.serial,
            "uptime_s": round(time.monotonic() - self._started, 1) if self._started else 0.0,
        }

    # --- wiring between the parts ----------------------------------------------------------

    async def _announce(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), self.settings.refresh_interval)
        await self.announcer.run(self._stop)

    async def _agree(self) -> None:
        """Every refresh interval: serve the newest model the bridges agreed on in the DHT (parent_cart.agreement)."""
        while not self._stop.is_set():
            try:
                await self.agreement.sync()
            except Exception:  # noqa: BLE001 - one failed round must not end the agreement
                log.exception("model agreement round failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.settings.refresh_interval)

    async def _publish_model(self, meta: PublishedModel) -> None:
        await self.agreement.publish(meta)

    def _peer_urls(self) -> list[str]:
        """Relay URLs of the linked bridges (the link's own, else what the directory or the DHT says)."""
        urls = []
        for bridge_id in self.links.ids():
            link = self.links.current(bridge_id)
            believed = self.announcer.bridges.get(bridge_id)
            record = believed.record if believed is not None else None
            urls.append(
                (link.url if link is not None else "")
                or self.directory.bridge_urls.get(bridge_id, "")
                or (record.relay_url if isinstance(record, records.BridgeRecord) else "")
            )
        return urls

    async def _watch_membership(self) -> None:
        """Every refresh interval: pick up a revocation list dropped in the data dir, drop who no longer belongs."""
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.settings.refresh_interval)
            if self._stop.is_set():
                return
            self.membership.reload()
            self._reload_tls()
            await self._sweep()

    def _reload_tls(self) -> None:
        """Serve a certificate renewed on disk to new connections (the old one stays when the new files fail)."""
        stamp = _stamps(self.tls_files)
        if self.tls is None or self.tls_files is None or stamp == self._tls_stamp:
            return
        self._tls_stamp = stamp
        try:
            tls.server_context(*self.tls_files)  # checks the pair (and its dates) before the live context takes it
            self.tls.load_cert_chain(*self.tls_files)
        except (tls.TLSError, ssl.SSLError, OSError) as exc:
            log.error("kept the TLS certificate served so far: %s", exc)
            return
        log.info("serving the renewed TLS certificate %s", self.tls_files[0])

    def _revocations_adopted(self, revocations: RevocationList) -> None:
        """A newer revocation list: pass it on to every linked bridge and drop the nodes it names now."""
        self.links.announce_revocations(revocations)
        if self._runner is not None:
            task = asyncio.ensure_future(self._sweep())
            self._sweeps.add(task)
            task.add_done_callback(self._sweeps.discard)

    async def _sweep(self) -> None:
        """Close every cart session and bridge link whose certificate no longer holds, saying why."""
        drops = []
        for peer in list(self.directory.local.values()):
            why = self.membership.standing(peer.auth)
            if why is not None:
                drops.append(self.sessions.drop(peer, why))
        for peer in self.links.peers():
            why = self.membership.standing(peer.auth)
            if why is not None:
                drops.append(self.links.drop(peer, why))
        if drops:
            await asyncio.gather(*drops, return_exceptions=True)

    async def _intake(self) -> None:
        """Model uploads that passed the transfer's checks go to the store (newest version wins)."""
        while True:
            received = await self.hub.received.get()
            try:
                meta = await self.models.save(received)
                if meta is not None:
                    self.metrics.models.inc()
                    task = asyncio.create_task(self._publish_model(meta))
                    self._sweeps.add(task)
                    task.add_done_callback(self._sweeps.discard)
            except (ModelError, OSError) as exc:
                log.error("could not store the model from %s: %s", received.peer[:8], exc)

    async def _to_cart(self, peer: str, frame: bytes) -> None:
        """The bridge's own TransferHub talks to carts directly, through their outboxes."""
        cart = self.directory.local.get(peer)
        if cart is None or not await cart.outbox.put(frame, self.settings.send_timeout):
            raise ConnectionError(f"cart {peer[:8]} is not reachable")

    async def _forward(self, bridge_id: str, frame: bytes, timeout: float) -> str | None:
        return await self.links.forward(bridge_id, frame, timeout)

    async def _lookup(self, node_id: str) -> str | None:
        return await self.announcer.lookup(node_id)

    def _cart_certificate(self, node_id: str) -> Certificate | None:
        """The certificate admission verified for a cart attached here (it goes into the cart's DHT entry)."""
        peer = self.directory.local.get(node_id)
        return peer.auth.certificate if peer is not None else None

    def _dht_refused(self, reason: str) -> None:
        self.metrics.dht_refused.labels(reason).inc()

    def _joined(self, record: PresenceRecord) -> None:
        self.links.announce_joined(self.directory.card(record.node_id))
        self.announcer.publish(record)

    def _left(self, node_id: str, reason: str, withdrawal: PresenceRecord | None) -> None:
        self.links.announce_left(node_id, reason)
        if withdrawal is not None:
            self.announcer.publish(withdrawal)

    def _register_gauges(self) -> None:
        gauge = self.metrics.gauge
        gauge("fedcart_bridge_carts_connected", "Carts attached to this bridge", lambda: len(self.directory.local))
        gauge(
            "fedcart_bridge_swarm_carts", "Live carts in the whole swarm as this bridge sees it", self.directory.count
        )
        gauge("fedcart_bridge_links", "Bridges linked to this one", lambda: len(self.links.ids()))
        gauge(
            "fedcart_bridge_transfers_in_flight", "Model uploads in progress on this bridge", lambda: self.hub.in_flight
        )
        gauge("fedcart_bridge_dht_contacts", "Nodes in the Kademlia routing table", lambda: len(self.dht.contact_ids()))


def _check_public_url(public_url: str, serves_tls: bool) -> None:
    """A relay that serves TLS cannot be reached at a plain http:// or ws:// PUBLIC_URL: refuse to start on one.

    (The reverse is fine: TLS may end in front of a plain relay, at an Ingress or a proxy.)"""
    scheme = public_url.split("://", 1)[0].lower() if "://" in public_url else ""
    if serves_tls and scheme in ("http", "ws"):
        raise tls.TLSError(
            f"PUBLIC_URL is {public_url!r}, but this relay serves TLS: other bridges would dial it in plain text; "
            "use https:// (or wss://), or leave PUBLIC_URL empty"
        )


def _stamps(files: tuple[Path, Path] | None) -> tuple[float, ...]:
    """When the TLS files last changed (empty when there are none or one is gone)."""
    if files is None:
        return ()
    try:
        return tuple(path.stat().st_mtime_ns for path in files)
    except OSError:
        return ()


def _reachable(host: str) -> str:
    """A host name others can dial when we bind to every interface."""
    return socket.gethostname() if host in ("0.0.0.0", "::", "") else host
