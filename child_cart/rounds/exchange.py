"""Peer-to-peer update exchange: ask k peers for their latest update, answer peers who ask us.

A request is a routed `UpdateRequest`; the answer is a transfer (purpose
`update`) whose payload is our encoded weights sealed for the requester, so the
bridges relay ciphertext. Every answer is checked before it is used: it must
answer a request we made, to the peer we asked, decrypt, decode as our weight
format, match our model's shapes and dtypes, and hold finite numbers. Anything
else is skipped with the reason, and the round goes on with the rest.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass, field

import numpy as np

from cartnet import e2e, frames, weights
from cartnet.messages import Message, PeerInfo, UpdateDeclined, UpdateRequest
from cartnet.payloads import PayloadError, WeightUpdate
from cartnet.transfer import Received, TransferError
from child_cart.aggregation import Update
from child_cart.rounds.network import Network

log = logging.getLogger(__name__)

UPDATE_PURPOSE = WeightUpdate.purpose
MAX_SAMPLES = 10_000_000
MAX_UPDATE_BYTES = 256 * 1024 * 1024


class UpdateRejected(ValueError):
    """A peer's answer that cannot be used; the message says why."""


@dataclass
class Offer:
    """What we answer with: our latest weights, encoded once (on a worker thread, from the moment they are
    offered), and the rows behind them."""

    encoding: asyncio.Future[bytes]
    samples: int
    round: int

    async def blob(self) -> bytes:
        """The encoded weights, once the encoding finished (shielded: one requester giving up does not stop it)."""
        return await asyncio.shield(self.encoding)


@dataclass
class Collected:
    """The outcome of asking peers: usable updates and skipped peers with the reasons."""

    updates: list[Update] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


@dataclass
class _Pending:
    peer: PeerInfo
    answer: asyncio.Future[Update]


class UpdateExchange:
    def __init__(self, network: Network, task: str) -> None:
        self.network = network
        self.task = task
        self.bytes_out = 0
        self.bytes_in = 0
        self._offer: Offer | None = None
        self._withdrawn = ""  # why the offer was taken back (`withdraw`), told to whoever asks meanwhile
        self._reference: list[np.ndarray] | None = None
        self._pending: dict[str, _Pending] = {}
        self._checks: dict[str, asyncio.Task[None]] = {}
        self._answering: set[asyncio.Task[None]] = set()

    def offer(self, update_weights: list[np.ndarray], samples: int, round_number: int) -> None:
        """Publish our latest update to whoever asks; it also fixes the layout we accept from others."""
        self._reference = update_weights
        encoding = asyncio.ensure_future(asyncio.to_thread(weights.encode, update_weights, compress=True))
        self._offer = Offer(encoding, samples, round_number)

    def withdraw(self, reason: str, layout: list[np.ndarray] | None = None) -> None:
        """Take the offer back: every request is declined with `reason` until the next `offer`. What was sent
        already stays sent (the privacy accountant counted it). `layout` (our model's weights) fixes the layout
        we accept from others, as an offer does."""
        self._offer, self._withdrawn = None, reason
        if layout is not None:
            self._reference = layout

    # --- asking ----------------------------------------------------------------------------

    async def collect(self, peers: list[PeerInfo], round_number: int, timeout: float) -> Collected:
        """Ask each peer for its update; wait until all answered or `timeout` passed."""
        result = Collected()
        asked = {secrets.token_hex(16): peer for peer in peers}
        for request_id, peer in asked.items():
            self._pending[request_id] = _Pending(peer, asyncio.get_running_loop().create_future())
            await self._ask(request_id, peer, round_number, result)
        try:
            await self._await_answers(asked, timeout)
            for request_id, peer in asked.items():
                self._gather(self._pending[request_id].answer, peer, result, timeout)
        finally:
            for request_id in asked:
                self._pending.pop(request_id, None)
        return result

    async def _ask(self, request_id: str, peer: PeerInfo, round_number: int, result: Collected) -> None:
        request = UpdateRequest(request_id=request_id, task=self.task, round=round_number)
        try:
            await self.network.send_to(peer.node_id, frames.control(request))
        except (ConnectionError, RuntimeError) as exc:
            self._pending[request_id].answer.set_exception(UpdateRejected(f"request not sent: {exc}"))

    async def _await_answers(self, asked: dict[str, PeerInfo], timeout: float) -> None:
        futures = [self._pending[r].answer for r in asked]
        if futures:
            await asyncio.wait(futures, timeout=timeout)

    @staticmethod
    def _gather(answer: asyncio.Future[Update], peer: PeerInfo, result: Collected, timeout: float) -> None:
        if not answer.done():
            answer.cancel()
            result.skipped[peer.node_id] = f"no answer within {timeout:g}s"
        elif answer.exception() is not None:
            result.skipped[peer.node_id] = str(answer.exception())
        else:
            result.updates.append(answer.result())
        if peer.node_id in result.skipped:
            log.info("skipping peer %s: %s", peer.node_id[:8], result.skipped[peer.node_id])

    def fail_peer(self, peer_id: str, reason: str) -> None:
        """A peer is gone or unreachable: stop waiting for its answers."""
        for pending in self._pending.values():
            if pending.peer.node_id == peer_id and not pending.answer.done():
                pending.answer.set_exception(UpdateRejected(reason))

    # --- receiving answers ----------------------------------------------------------------

    def on_transfer(self, received: Received) -> bool:
        """Take an `update` transfer; False when it is some other kind of transfer."""
        manifest = received.manifest
        if manifest.purpose != UPDATE_PURPOSE:
            return False
        # Routed by the raw request id before the `WeightUpdate` is validated (in `_check`):
        # a malformed answer to one of our requests then fails it at once, with the reason.
        request_id = manifest.meta.get("request_id", "")
        pending = self._pending.get(request_id)
        if pending is None or pending.answer.done() or request_id in self._checks:
            log.warning("unsolicited update from %s ignored", manifest.sender[:8])
            return True
        if manifest.sender != pending.peer.node_id:
            log.warning("update for request to %s came from %s: ignored", pending.peer.node_id[:8], manifest.sender[:8])
            return True
        self.bytes_in += manifest.total_size
        check = asyncio.create_task(self._settle(pending.answer, received))
        self._checks[request_id] = check
        check.add_done_callback(lambda _: self._checks.pop(request_id, None))
        return True

    async def _settle(self, answer: asyncio.Future[Update], received: Received) -> None:
        """Decrypt, inflate and check an answer on a worker thread, so the loop keeps serving meanwhile; then settle it."""
        try:
            outcome: Update | UpdateRejected = await asyncio.to_thread(self._check, received)
        except UpdateRejected as exc:
            outcome = exc
        if answer.done():  # the round stopped waiting meanwhile
            return
        if isinstance(outcome, UpdateRejected):
            answer.set_exception(outcome)
        else:
            answer.set_result(outcome)

    def _check(self, received: Received) -> Update:
        manifest = received.manifest
        try:
            samples = WeightUpdate.from_meta(manifest.meta).samples
        except PayloadError as exc:
            raise UpdateRejected(f"update meta {exc}") from None
        if not 0 < samples <= MAX_SAMPLES:
            raise UpdateRejected(f"sample count {samples} outside 1..{MAX_SAMPLES}")
        try:
            plain = e2e.open_sealed(received.data, self.network.identity.kx_key, manifest.sender)
            tensors = weights.decode(plain, max_decoded=MAX_UPDATE_BYTES)
        except (e2e.DecryptionError, weights.WeightsError) as exc:
            raise UpdateRejected(f"garbage update: {exc}") from None
        mismatch = weights.shapes_match(tensors, self._reference or tensors)
        if mismatch:
            raise UpdateRejected(f"wrong shapes or dtypes: {mismatch}")
        if not all(np.isfinite(t).all() for t in tensors):
            raise UpdateRejected("update holds NaN or infinite values")
        return Update(manifest.sender, tensors, samples)

    # --- answering ------------------------------------------------------------------------

    def on_message(self, peer_id: str, message: Message) -> bool:
        """Handle exchange messages routed to us; False for anything else."""
        if isinstance(message, UpdateRequest):
            task = asyncio.create_task(self._answer(peer_id, message))
            self._answering.add(task)
            task.add_done_callback(self._answering.discard)
            return True
        if isinstance(message, UpdateDeclined):
            pending = self._pending.get(message.request_id)
            if pending and pending.peer.node_id == peer_id and not pending.answer.done():
                pending.answer.set_exception(UpdateRejected(f"peer declined: {message.reason}"))
            return True
        return False

    async def _answer(self, peer_id: str, request: UpdateRequest) -> None:
        reason = self._decline_reason(request)
        peer = None if reason else await self._directory_entry(peer_id)
        if peer is None and not reason:
            reason = "requester is not in the swarm directory"
        try:
            if reason or peer is None:
                await self.network.send_to(
                    peer_id, frames.control(UpdateDeclined(request_id=request.request_id, reason=reason))
                )
                return
            await self._send_offer(peer, request)
        except (ConnectionError, RuntimeError, TransferError) as exc:
            log.info("could not answer %s: %s", peer_id[:8], exc)

    def _decline_reason(self, request: UpdateRequest) -> str:
        if request.task != self.task:
            return f"this cart trains {self.task!r}, not {request.task!r}"
        if self._offer is None:
            return self._withdrawn or "no trained update yet"
        return ""

    async def _directory_entry(self, peer_id: str) -> PeerInfo | None:
        return next((p for p in await self.network.peers() if p.node_id == peer_id), None)

    async def _send_offer(self, peer: PeerInfo, request: UpdateRequest) -> None:
        offer = self._offer
        if offer is None:  # withdrawn while this answer looked the requester up
            declined = UpdateDeclined(request_id=request.request_id, reason=self._withdrawn or "no trained update yet")
            await self.network.send_to(peer.node_id, frames.control(declined))
            return
        plain = await offer.blob()
        sealed = await asyncio.to_thread(e2e.seal, plain, peer.kx_public_key, self.network.identity.node_id)
        meta = WeightUpdate(request_id=request.request_id, samples=offer.samples, task=self.task, round=offer.round)
        await self.network.transfers.send_blob(peer.node_id, sealed, WeightUpdate.purpose, meta.to_meta())
        self.bytes_out += len(sealed)
