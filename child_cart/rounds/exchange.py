"""Peer-to-peer update exchange: ask peers for their latest update, answer peers who ask us.

A request is a routed `UpdateRequest`; the answer is a transfer (purpose `update`)
whose payload is our encoded weights sealed for the requester, so the bridges relay
ciphertext. Every answer is checked before it is used: it must answer a request we
made, to the peer we asked, decrypt, decode as our weight format, match our model's
shapes and dtypes, and hold finite numbers. Anything else is skipped with the reason,
and the round goes on with the rest.

No key is taken on the bridge's word (cartnet.peers). A peer is asked only once its
directory entry verified: its own signed presence and its swarm certificate (not
expired, not revoked); one that does not is skipped with the reason, never asked.
Requests are signed by the requester for one target, used once and only within their
time window; a request is answered only when the requester's entry verifies and its
signature is that key's, and our update is sealed only to the X25519 key in the
requester's own signed record. An answer counts only when its manifest is signed by
the verified key of the peer we asked, a decline only when that key signed it. Every
request refused that way (forged, misdirected, stale, replayed, unverifiable) is
logged, counted in `declined` and named in the round's log (`refused`); a stale or
unverifiable one is also declined with the reason (its requester may be waiting).

Asking: `collect` is given a few more peers than it needs (the round draws k + over_ask)
and hedges: it asks the first `enough` at once and keeps the rest as spares, each asked
only when needed, so a round whose peers all answer costs one request, manifest and
receipt per update taken in, not per peer drawn. A spare is asked at once for a peer
asked that fails (it declines, we refuse its transfer, its answer fails a check, the
request could not be sent, or it is gone: `fail_peer`), and beside a peer asked that
is slow: silent twice as long as the first usable answer took (at least 1 s), or, while
no answer arrived, a quarter of the timeout (`asks.py`, which keeps that account). A
silent or declining peer thus costs the round about one more answer's time, never the
deadline. `collect` returns once `enough` sent a usable update, or at the deadline.
Only the first `enough` answers' manifests are taken in (`admit`): a slow peer that
answers after the spare asked beside it is refused as not needed at its manifest, and
one taken in that fails makes room for another still to come. A hedged request is
`eager` (it asks only peers it means to take in): the answer's weights come with its
manifest, unasked, which saves a frame and a round trip on every copy; a late answer
refused at its manifest has then cost its one chunk (at most `eager_bytes`, an int8
update is about 1.1 KB), dropped unread. (`hedged=False` asks every peer at once, as
before hedging, and not eagerly: the spares' answers are refused at their manifest
before their weights cross the wire.)
A peer that let the deadline pass without a word is remembered for `AVOID_ROUNDS`
rounds (until it answers): `prefer_responsive` puts such peers last among those the
bridge drew, and the round draws that many more (`extra_draw`), so a cart announced as
ready that never answers costs a round its wait once, not whenever it is drawn.
Every peer it did not use is skipped with the real reason: what the peer said, what
we refused (a transfer our buffer could not take names the refusal), that it had
not answered when enough others had, or by the deadline, or (a spare) that it was
never asked. The round log's `peers_asked` keeps naming every peer the round chose
(k + over_ask), asked or not; `requests_sent` counts the requests that left.

Answering is budgeted, so no peer can make us work for it without bound: a requester
gets at most `answers_per_peer` answers per offer (one offer a round), and has at most
`answers_at_once` of them running at a time, across offers: an answer to a requester
that never reads it holds its slot until the transfer's reply timeout, and a fresh
offer's budget must not let one requester pile up more. Further requests are declined
with the reason, each reason told to a requester at most once per `tell_interval`
seconds; repeats within it are only counted (`declined`, and `untold`), since a signed
decline each would make a flood cost us, and the bridges relaying them, more than it
costs the flooder. (An honest requester asks once a round, so it is always told.) The
offer is sealed once per requester and offer, and that copy reused. At most
`max_answers` answers (sealing and sending) run at once, beside at most `MAX_NOTES`
short sends (declines, our readiness): a request beyond those is declined as busy, or
dropped and counted in `dropped`. So a flood of requests costs its sender one answer
slot and a few declines, and never takes an honest requester's place. `close()` cancels
everything still running. A requester's key comes from the entries already learned (the
peers the bridge drew for us, earlier lookups); only a miss costs one lookup at the
bridge, never a whole directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import secrets
from collections import Counter, OrderedDict, deque
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cartnet import e2e, frames, quantize, weights
from cartnet.messages import MAX_SAMPLE, Message, PeerInfo, TransferManifest, UpdateDeclined, UpdateRequest
from cartnet.payloads import PayloadError, WeightUpdate
from cartnet.peers import (
    PeerRefused,
    PeerVerifier,
    RequestLedger,
    VerifiedPeer,
    decline_signed_by,
    request_problem,
    request_signed_by,
    sign_decline,
    sign_request,
)
from cartnet.quantize import Precision
from cartnet.transfer import Received, TransferError, TransferRefused, Unwanted
from child_cart.aggregation import Update
from child_cart.rounds.asks import Asks, Batch, Pending
from child_cart.rounds.network import Network
from child_cart.rounds.recent import RecentKeys

log = logging.getLogger(__name__)

UPDATE_PURPOSE = WeightUpdate.purpose
MAX_SAMPLES = 10_000_000
MAX_UPDATE_BYTES = 256 * 1024 * 1024
UPDATE_SLACK = 64 * 1024
"""Bytes beyond twice our model's raw size an update transfer may declare (encoding header, sealing tags)."""
ANSWERS_PER_PEER = 2
"""Update requests one peer gets answered per offer (round); a retry fits, a flood does not."""
ANSWERS_AT_ONCE = 1
"""Answers to one requester running at once (an honest requester waits for one answer per round)."""
MAX_ANSWERS = 16
"""Answers (sealing and sending our update) running at once."""
ANSWER_REPLY_TIMEOUT = 10.0
"""Seconds an answer waits for each reply of its requester (taking the manifest, confirming delivery): an honest
requester asked for this update and replies at once, so one that never reads frees its answer slot in 10 s, not the
transfer default's 30."""
MAX_FINISHED = 1024
"""Request ids of ended collects remembered, so a slow honest answer is refused as late, not as unsolicited."""
MAX_NOTES = 64
"""Short sends (declines, our readiness) running at once."""
MAX_SEALED = 16
"""Sealed copies of the current offer kept for reuse, one per requester."""
MAX_REFUSED = 64
"""Refused requesters remembered for the next round's log (the counters in `declined` count them all)."""
TELL_INTERVAL = 1.0
"""Seconds within which a requester is told one decline for a reason of its own making; the rest are counted."""
MAX_TOLD = 4096
"""(Requester, reason) pairs remembered with the time they were last told (the oldest forgotten first)."""
AVOID_ROUNDS = 5
"""Rounds a peer that never answered is asked only when no other peer was drawn."""
MAX_AVOIDED = 256
"""Silent peers remembered (the oldest forgotten first)."""


class UpdateRejected(ValueError):
    """A peer's answer that cannot be used; the message says why."""


@dataclass
class Offer:
    """What we answer with: our latest weights, encoded once (on a worker thread, from the moment they are
    offered), and the rows behind them."""

    encoding: asyncio.Future[bytes]
    samples: int
    round: int
    precision: Precision

    async def blob(self) -> bytes:
        """The encoded weights, once the encoding finished (shielded: one requester giving up does not stop it)."""
        return await asyncio.shield(self.encoding)


@dataclass
class Collected:
    """The outcome of asking peers: usable updates and skipped peers with the reasons."""

    updates: list[Update] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)
    """Requesters whose update requests we refused up to the end of this collect (since the one before), with why."""


@dataclass(frozen=True)
class _Sealed:
    offer: Offer
    kx_public_key: bytes
    sealer: e2e.CachedSealer


class UpdateExchange:
    def __init__(
        self,
        network: Network,
        task: str,
        verifier: PeerVerifier,
        *,
        answers_per_peer: int = ANSWERS_PER_PEER,
        answers_at_once: int = ANSWERS_AT_ONCE,
        max_answers: int = MAX_ANSWERS,
        tell_interval: float = TELL_INTERVAL,
        hedged: bool = True,
    ) -> None:
        self.network = network
        self.task = task
        self.verifier = verifier
        self.requests = RequestLedger()
        self.answers_per_peer = answers_per_peer
        self.answers_at_once = answers_at_once
        self.max_answers = max_answers
        self.tell_interval = tell_interval
        self.hedged = hedged
        """Whether `collect` asks spares only when needed (the module's "Asking"); False asks every peer at once."""
        self.requests_sent = 0
        """Update requests that left for a peer (`collect`), over this exchange's life."""
        self.bytes_out = 0
        self.bytes_in = 0
        self.answered: Counter[str] = Counter()
        """Requests taken on per requester for the current offer (reset by `offer`)."""
        self.seals: Counter[str] = Counter()
        """Times the current offer was sealed, per requester (reset by `offer`)."""
        self.declined: Counter[str] = Counter()
        """Requests declined, by why: `declined` (other task, no update yet), `budget`, `pending` (an answer to the
        same requester still running), `busy`, `unknown`
        requester, `undelivered` (the transfer failed; the requester is told why); refused as not genuine:
        `forged` (not the requester's signature, or another requester), `misdirected`, `stale`, `replayed`,
        `unverified` (the requester's directory entry does not verify)."""
        self.refused: dict[str, str] = {}
        """Requester -> why its request was refused, since the last `collect` handed them to a round log."""
        self.dropped = 0
        """Requests dropped unanswered: answers and declines were all running already."""
        self.untold = 0
        """Declines not sent: their requester was told that reason less than `tell_interval` seconds before."""
        self._told: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._answering: Counter[str] = Counter()
        self.precision: Precision = "float32"
        """How our next offers are packed (`cartnet.quantize`; the round settings' `update_precision`)."""
        self._offer: Offer | None = None
        self._withdrawn = ""  # why the offer was taken back (`withdraw`), told to whoever asks meanwhile
        self._reference: list[np.ndarray] | None = None
        self._pending: dict[str, Pending] = {}
        self._finished: RecentKeys[tuple[str, str]] = RecentKeys(
            MAX_FINISHED
        )  # (request id, peer asked) of ended collects
        self._checks: dict[str, asyncio.Task[None]] = {}
        self._answers: set[asyncio.Task[None]] = set()
        self._notes: set[asyncio.Task[None]] = set()
        self._sealed: OrderedDict[str, _Sealed] = OrderedDict()
        self._silent: OrderedDict[str, int] = OrderedDict()  # peer -> the round it last let our deadline pass
        network.transfers.refusal_listeners.append(self._refused)
        network.transfers.admission_checks.append(self.admit)
        from child_cart.rounds.secure import SecureExchange  # it builds on this module

        self.secure = SecureExchange(self)
        """Secure aggregation's masked exchange (`secure.py`), riding on this exchange's offer and budget."""

    def offer(self, update_weights: list[np.ndarray], samples: int, round_number: int) -> None:
        """Publish our latest update to whoever asks; it also fixes the layout we accept from others.

        Every requester's answer budget starts afresh, and the bridge is told we are ready."""
        self._reference = update_weights
        encoding = asyncio.ensure_future(asyncio.to_thread(_encode, update_weights, self.precision))
        self._offer = Offer(encoding, samples, round_number, self.precision)
        self.answered.clear()
        self.seals.clear()
        self._sealed.clear()
        _spawn(self._announce_ready(), self._notes)

    async def _announce_ready(self) -> None:
        with contextlib.suppress(ConnectionError):
            await self.network.announce(ready=True, task=self.task)

    def withdraw(self, reason: str, layout: list[np.ndarray] | None = None) -> None:
        """Take the offer back: every request is declined with `reason` until the next `offer`, and the bridge is
        told we have nothing ready. What was sent already stays sent (the privacy accountant counted it).
        `layout` (our model's weights) fixes the layout we accept from others, as an offer does."""
        self._offer, self._withdrawn = None, reason
        if layout is not None:
            self._reference = layout
        self._sealed.clear()
        _spawn(self._announce_withdrawn(), self._notes)

    async def _announce_withdrawn(self) -> None:
        with contextlib.suppress(ConnectionError):
            await self.network.announce(ready=False, task=self.task)

    async def close(self) -> None:
        """Cancel every answer still running (a node's shutdown)."""
        await self.secure.close()
        tasks: list[asyncio.Future[Any]] = [*self._answers, *self._notes, *self._checks.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # --- asking ----------------------------------------------------------------------------

    async def collect(
        self, peers: list[PeerInfo], round_number: int, timeout: float, enough: int | None = None
    ) -> Collected:
        """Ask the peers whose entries verify for their updates, hedged (the module's "Asking"): the first `enough`
        (default: all of them) at once, in the order given, the others only as spares; a peer whose entry does not
        verify is skipped with the reason, never asked. Returns once `enough` sent a usable one, nobody asked can
        still answer and no spare is left, or `timeout` after the start."""
        result = Collected()
        trusted = self._trusted(peers, result)
        asks = Asks(Batch(len(trusted) if enough is None else enough), deque(trusted.values()), timeout)
        try:
            await self._await_answers(asks, round_number)
            unanswered = self._unanswered(asks)
            for pending in asks.sent.values():
                self._gather(pending.answer, pending.peer, result, unanswered)
            self._skip_spares(asks, result)
            self._remember_silent([pending.peer for pending in asks.sent.values()], result, unanswered, round_number)
        finally:
            for request_id, pending in asks.sent.items():
                self._pending.pop(request_id, None)
                self._finished.add((request_id, pending.peer.node_id))
        result.refused = self.take_refused()
        return result

    def _remember_silent(
        self, asked: list[VerifiedPeer], result: Collected, unanswered: str, round_number: int
    ) -> None:
        """Peers that said nothing by the deadline are remembered; one that sent its update is forgiven."""
        for peer in asked:
            if result.skipped.get(peer.node_id) == unanswered and unanswered.startswith("no answer"):
                self._silent[peer.node_id] = round_number
                self._silent.move_to_end(peer.node_id)
            elif peer.node_id not in result.skipped:
                self._silent.pop(peer.node_id, None)
        while len(self._silent) > MAX_AVOIDED:
            self._silent.popitem(last=False)

    def _avoided(self, round_number: int) -> set[str]:
        return {peer for peer, silent in self._silent.items() if 0 <= round_number - silent < AVOID_ROUNDS}

    def extra_draw(self, round_number: int, wanted: int) -> int:
        """How many peers beyond `wanted` to ask the bridge for: room for the recently silent ones to be put last
        (within what one peers request may ask for)."""
        return max(0, min(len(self._avoided(round_number)), wanted, MAX_SAMPLE - wanted))

    def prefer_responsive(self, drawn: list[PeerInfo], round_number: int, wanted: int) -> list[PeerInfo]:
        """The `wanted` peers to ask among those drawn: the recently silent ones only when too few others were."""
        avoided = self._avoided(round_number)
        return sorted(drawn, key=lambda peer: peer.node_id in avoided)[:wanted]

    def _trusted(self, peers: list[PeerInfo], result: Collected) -> dict[str, VerifiedPeer]:
        """The peers whose directory entries verify; the rest skipped (never asked) with the reason."""
        trusted: dict[str, VerifiedPeer] = {}
        for peer in peers:
            try:
                trusted[peer.node_id] = self.verifier.verify(peer)
            except PeerRefused as exc:
                result.skipped[peer.node_id] = f"not verified, not asked: {exc}"
                log.warning("not asking peer %s: its entry does not verify (%s): %s", peer.node_id[:8], exc.code, exc)
        return trusted

    def take_refused(self) -> dict[str, str]:
        """The requests refused since the last call (for the round log), forgotten here."""
        refused, self.refused = self.refused, {}
        return refused

    async def _ask(self, asks: Asks, peer: VerifiedPeer, round_number: int) -> None:
        request_id = secrets.token_hex(16)
        answer: asyncio.Future[Update] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = asks.sent[request_id] = Pending(peer, answer, asks.batch)
        asks.sent_at[request_id] = asyncio.get_running_loop().time()
        answer.add_done_callback(functools.partial(asks.answered, request_id))
        request = sign_request(
            self.network.identity, peer.node_id, self.task, round_number, request_id=request_id, eager=self.hedged
        )
        try:
            await self.network.send_to(peer.node_id, frames.control(request))
        except (ConnectionError, RuntimeError) as exc:
            if not answer.done():
                answer.set_exception(UpdateRejected(f"request not sent: {exc}"))
            return
        self.requests_sent += 1

    async def _await_answers(self, asks: Asks, round_number: int) -> None:
        """Ask and wait until `enough` usable answers arrived, nobody asked can still answer and no spare is left, or
        the timeout passed; waking also when an awaited answer turns overdue, to ask a spare beside it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + asks.timeout
        while asks.usable() < asks.batch.enough and loop.time() < deadline:
            await self._ask_spares(asks, round_number)
            waiting = asks.waiting()
            if not waiting:
                return
            wake = min(deadline, asks.next_due(loop.time()))
            await asyncio.wait(waiting, timeout=max(0.0, wake - loop.time()), return_when=asyncio.FIRST_COMPLETED)

    async def _ask_spares(self, asks: Asks, round_number: int) -> None:
        """Ask the next peers while fewer than `enough` answers can be counted on (`Asks.covered`): the first wave,
        then a spare for each peer asked that failed or is overdue. Unhedged, every peer at once."""
        wanted = asks.batch.enough if self.hedged else math.inf
        while asks.spares and asks.covered(asyncio.get_running_loop().time()) < wanted:
            await self._ask(asks, asks.spares.popleft(), round_number)

    @staticmethod
    def _unanswered(asks: Asks) -> str:
        """The skip reason for peers asked that were still silent when the wait ended."""
        if asks.usable() >= asks.batch.enough:
            return f"not needed: {_answered_first(asks)}"
        return f"no answer within {asks.timeout:g}s"

    @staticmethod
    def _skip_spares(asks: Asks, result: Collected) -> None:
        """Every spare never asked, skipped with why it was not."""
        if asks.usable() >= asks.batch.enough:
            why = f"not needed, not asked: {_answered_first(asks)}"
        else:
            why = f"not asked: the {asks.timeout:g}s deadline passed before a peer asked was overdue"
        for peer in asks.spares:
            result.skipped[peer.node_id] = why
            log.info("skipping peer %s: %s", peer.node_id[:8], why)

    @staticmethod
    def _gather(answer: asyncio.Future[Update], peer: VerifiedPeer, result: Collected, unanswered: str) -> None:
        if not answer.done():
            answer.cancel()
            result.skipped[peer.node_id] = unanswered
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

    def _refused(self, peer_id: str, manifest: TransferManifest, reason: str) -> None:
        """Our transfer hub refused (or gave up on) a peer's transfer: an answer of ours fails with that reason."""
        if manifest.purpose != UPDATE_PURPOSE:
            return
        pending = self._pending.get(manifest.meta.get("request_id", ""))
        if pending is not None and pending.peer.node_id == peer_id and not pending.answer.done():
            pending.answer.set_exception(UpdateRejected(f"we refused its update: {reason}"))

    def update_bound(self) -> int:
        """The most bytes an honest sealed answer may declare: twice our own model's raw size plus room for the
        encoding and sealing overhead (a peer's update has our shapes; compressed, it is smaller than raw), or
        `MAX_UPDATE_BYTES` while we have no model yet."""
        if self._reference is None:
            return MAX_UPDATE_BYTES
        raw = sum(int(np.asarray(w).nbytes) for w in self._reference)
        return min(MAX_UPDATE_BYTES, 2 * raw + UPDATE_SLACK)

    def admit(self, peer_id: str, manifest: TransferManifest) -> str | None:
        """The transfer hub's question before an `update` or `masked_update` manifest reserves buffer space: None
        when it answers a pending request of ours to that same peer, within what our model bounds; else why not.
        Other purposes are not ours to judge."""
        pending = None
        if manifest.purpose == UPDATE_PURPOSE:
            pending = self._pending.get(str(manifest.meta.get("request_id", "")))
            asked = pending.peer.node_id if pending is not None and not pending.answer.done() else None
            bound = self.update_bound()
        elif manifest.purpose == self.secure.purpose:
            asked, bound = self.secure.admission(manifest)
        else:
            return None
        if asked != peer_id or manifest.sender != peer_id:
            if self._late(peer_id, manifest):
                return Unwanted("not needed: the round it answers went on without it")
            return f"unsolicited {manifest.purpose}: it answers no pending request of ours to {peer_id[:8]}"
        if manifest.total_size > bound:
            return f"declared size {manifest.total_size} exceeds the {bound} bytes our model bounds an update to"
        if pending is not None:
            return self._take(pending)
        return None

    def _late(self, peer_id: str, manifest: TransferManifest) -> bool:
        """An answer from the peer we asked, to a request of a collect that has ended (an honest peer's slow answer)."""
        return manifest.sender == peer_id and (str(manifest.meta.get("request_id", "")), peer_id) in self._finished

    @staticmethod
    def _take(pending: Pending) -> str | None:
        """Take in an answer while its collect still wants one; beyond that it is refused at its manifest (a slow
        peer may answer after the spare asked beside it did, or with hedging off every spare)."""
        if not pending.batch.room():
            return Unwanted(f"not needed: {pending.batch.enough} answers already on their way")
        pending.batch.taken.append(pending.answer)
        return None

    # --- receiving answers ----------------------------------------------------------------

    def on_transfer(self, received: Received) -> bool:
        """Take an `update` transfer; False when it is some other kind of transfer."""
        if self.secure.on_transfer(received):
            return True
        manifest = received.manifest
        if manifest.purpose != UPDATE_PURPOSE:
            return False
        # Routed by the raw request id before the `WeightUpdate` is validated (in `_check`):
        # a malformed answer to one of our requests then fails it at once, with the reason.
        request_id = manifest.meta.get("request_id", "")
        pending = self._pending.get(request_id)
        if pending is None or pending.answer.done() or request_id in self._checks:
            late = pending is not None or self._late(received.peer, manifest)
            log.log(
                logging.INFO if late else logging.WARNING, "unsolicited update from %s ignored", manifest.sender[:8]
            )
            return True
        if manifest.sender != pending.peer.node_id or manifest.sender_key != pending.peer.public_key:
            log.warning(
                "update for request to %s is signed by %s, not by the key we verified: ignored",
                pending.peer.node_id[:8],
                manifest.sender[:8],
            )
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
            meta = WeightUpdate.from_meta(manifest.meta)
        except PayloadError as exc:
            raise UpdateRejected(f"update meta {exc}") from None
        samples = meta.samples
        if not 0 < samples <= MAX_SAMPLES:
            raise UpdateRejected(f"sample count {samples} outside 1..{MAX_SAMPLES}")
        try:
            # streamed and sealed for us: opened chunk by chunk on arrival; else one sealed blob (older carts)
            plain = (
                received.data
                if received.sealed
                else e2e.open_sealed(received.data, self.network.identity.kx_key, manifest.sender)
            )
            tensors = weights.decode(plain, max_decoded=MAX_UPDATE_BYTES)
            tensors = quantize.unpack(tensors, meta.precision, self._reference or tensors)
        except (e2e.DecryptionError, weights.WeightsError, quantize.QuantizeError) as exc:
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
        if self.secure.on_message(peer_id, message):
            return True
        if isinstance(message, UpdateRequest):
            self._take_request(peer_id, message)
            return True
        if isinstance(message, UpdateDeclined):
            pending = self._pending.get(message.request_id)
            if pending is None or pending.peer.node_id != peer_id or pending.answer.done():
                return True
            if not decline_signed_by(message, pending.peer):
                log.warning("a decline of our request to %s is not signed by it: ignored", peer_id[:8])
                return True
            pending.answer.set_exception(UpdateRejected(f"peer declined: {message.reason}"))
            return True
        return False

    def _take_request(self, peer_id: str, request: UpdateRequest) -> None:
        """Decide at once (nothing awaited) whether to answer or decline; each runs on its own bounded task set.

        What needs no key is checked here (requester, target, time window, a spent id); the signature
        against the requester's verified key in `_answer`, which refunds the budget of a refused request."""
        problem = request_problem(request, peer_id, self.network.identity.node_id)
        if problem is None and self.requests.spent(request):
            problem = "replayed", "the request was used already (a replayed copy)"
        if problem is not None:
            self._refuse_soon(peer_id, request, *problem)
            return
        reason = self._decline_reason(request)
        if reason:
            self._decline_soon(peer_id, request, "declined", reason)
        elif self.answered[peer_id] >= self.answers_per_peer:
            reason = f"you had your {self.answers_per_peer} answers to update requests this round already"
            self._decline_once(peer_id, request, "budget", reason)
        elif self._answering[peer_id] >= self.answers_at_once:
            self._decline_once(peer_id, request, "pending", "still answering your previous request, ask later")
        elif len(self._answers) >= self.max_answers:
            self._decline_soon(peer_id, request, "busy", f"busy answering {self.max_answers} requests, ask later")
        else:
            self.answered[peer_id] += 1
            self._answering[peer_id] += 1
            _spawn(self._answer(peer_id, request), self._answers)

    def _refuse_soon(self, peer_id: str, request: UpdateRequest, code: str, reason: str) -> None:
        """A request that is not genuine (or not current): logged, counted, kept for the round log, and declined
        only when its requester may be waiting for it (`stale`, `unverified`: a clock or a directory to fix). A
        forged, misdirected or replayed copy is not the requester's word to us: a decline under its request id
        could only fail the genuine request (a replay's original being answered right now)."""
        log.warning("refused an update request from %s (%s): %s", peer_id[:8], code, reason)
        if peer_id in self.refused or len(self.refused) < MAX_REFUSED:
            self.refused[peer_id] = f"{code}: {reason}"
        if code in _TOLD:
            self._decline_soon(peer_id, request, code, reason)
        else:
            self.declined[code] += 1

    def _decline_once(self, peer_id: str, request: UpdateRequest, code: str, reason: str) -> None:
        """Declined for a reason of its requester's own making: told at most once per `tell_interval`, the repeats
        within it only counted."""
        told, now = (peer_id, code), asyncio.get_running_loop().time()
        if now - self._told.get(told, -math.inf) < self.tell_interval:
            self.declined[code] += 1
            self.untold += 1
            return
        self._told[told] = now
        self._told.move_to_end(told)
        while len(self._told) > MAX_TOLD:
            self._told.popitem(last=False)
        self._decline_soon(peer_id, request, code, reason)

    def _decline_soon(self, peer_id: str, request: UpdateRequest, code: str, reason: str) -> None:
        if len(self._notes) >= MAX_NOTES:
            self.dropped += 1
            log.warning(
                "dropped an update request from %s (%s): %d declines already on their way", peer_id[:8], code, MAX_NOTES
            )
            return
        self.declined[code] += 1
        _spawn(self._decline(peer_id, request, reason), self._notes)

    async def _answer(self, peer_id: str, request: UpdateRequest) -> None:
        try:
            try:
                peer = await self._requester(peer_id)
            except PeerRefused as exc:
                self._refunded(peer_id, request, "unverified", f"could not verify you: {exc}")
                return
            if peer is None:
                self.declined["unknown"] += 1
                await self._decline(peer_id, request, "requester is not in the swarm directory")
                return
            if not request_signed_by(request, peer):
                self._refunded(peer_id, request, "forged", f"the request is not signed by {peer_id[:8]}'s key")
                return
            if not self.requests.spend(request):
                self._refunded(peer_id, request, "replayed", "the request was used already (a replayed copy)")
                return
            try:
                await self._send_offer(peer, request)
            except TransferRefused as exc:  # the requester had enough answers, or found fault: it knows why
                log.info("%s refused our update: %s", peer_id[:8], exc)
            except TransferError as exc:
                self.declined["undelivered"] += 1
                await self._decline(peer_id, request, f"could not deliver our update: {exc}")
        except (ConnectionError, RuntimeError, TimeoutError, TransferError) as exc:
            log.info("could not answer %s: %s", peer_id[:8], exc)
        finally:
            self._answering[peer_id] -= 1
            if self._answering[peer_id] <= 0:
                del self._answering[peer_id]

    def _refunded(self, peer_id: str, request: UpdateRequest, code: str, reason: str) -> None:
        """A request refused after it was charged to its requester's budget: the charge is given back (a forger
        must not spend another cart's answers); the refusal goes on as `_refuse_soon` says."""
        self.answered[peer_id] = max(0, self.answered[peer_id] - 1)
        self._refuse_soon(peer_id, request, code, reason)

    async def _decline(self, peer_id: str, request: UpdateRequest, reason: str) -> None:
        text = reason if len(reason) <= _REASON_LIMIT else f"{reason[: _REASON_LIMIT - 3]}..."
        decline = sign_decline(self.network.identity, request.request_id, text)
        try:
            await self.network.send_to(peer_id, frames.control(decline))
        except (ConnectionError, RuntimeError) as exc:
            log.info("could not decline a request of %s: %s", peer_id[:8], exc)

    def _decline_reason(self, request: UpdateRequest) -> str:
        if request.task != self.task:
            return f"this cart trains {self.task!r}, not {request.task!r}"
        if self._offer is None:
            return self._withdrawn or "no trained update yet"
        return ""

    async def _requester(self, peer_id: str) -> VerifiedPeer | None:
        """The requester, verified: as our verifier holds it (whoever listed it first), else from one lookup at
        the bridge; None when the bridge does not know it, PeerRefused when its entry does not verify."""
        kept = self.verifier.known(peer_id)
        if kept is not None:
            return kept
        found = await self.network.lookup(peer_id)
        if found is None:
            return None
        if found.node_id != peer_id:
            raise PeerRefused("id_mismatch", f"the bridge answered a lookup of {peer_id[:8]} with {found.node_id[:8]}")
        return self.verifier.verify(found)

    async def _send_offer(self, peer: VerifiedPeer, request: UpdateRequest) -> None:
        offer = self._offer
        if offer is None:  # withdrawn while this answer looked the requester up
            await self._decline(peer.node_id, request, self._withdrawn or "no trained update yet")
            return
        plain = await offer.blob()
        meta = WeightUpdate(
            request_id=request.request_id,
            samples=offer.samples,
            task=self.task,
            round=offer.round,
            precision=offer.precision,
        )
        sealer = self._sealer_for(peer, offer)
        await self.network.transfers.send_blob(
            peer.node_id,
            plain,
            WeightUpdate.purpose,
            meta.to_meta(),
            seal_to=sealer,
            reply_timeout=ANSWER_REPLY_TIMEOUT,
            eager=request.eager,
        )
        self.bytes_out += len(plain)

    def _sealer_for(self, peer: VerifiedPeer, offer: Offer) -> e2e.CachedSealer:
        """What seals the offer for `peer`, chunk by chunk as the transfer streams it: one per requester and offer,
        which keeps what it sealed, so a second answer (concurrent or later) reuses it instead of sealing again."""
        cached = self._sealed.get(peer.node_id)
        if cached is None or cached.offer is not offer or cached.kx_public_key != peer.kx_public_key:
            sealer = e2e.CachedSealer(peer.kx_public_key, self.network.identity.node_id)
            cached = self._sealed[peer.node_id] = _Sealed(offer, peer.kx_public_key, sealer)
            self.seals[peer.node_id] += 1
            while len(self._sealed) > MAX_SEALED:
                self._sealed.popitem(last=False)
        self._sealed.move_to_end(peer.node_id)
        return cached.sealer


_REASON_LIMIT = 512
"""What `UpdateDeclined.reason` holds."""
_TOLD = frozenset({"stale", "unverified"})
"""Refusals the requester is told of (declined); the others are logged and counted only."""


def _answered_first(asks: Asks) -> str:
    """Why the rest were not needed, in words that read right for one peer asked as for many."""
    enough, sent = asks.batch.enough, len(asks.sent)
    if enough < sent:
        return f"{enough} of the {sent} peers asked had sent their updates first"
    return "the one peer asked had sent its update" if sent == 1 else f"all {sent} peers asked had sent their updates"


def _spawn(job: Coroutine[Any, Any, None], into: set[asyncio.Task[None]]) -> None:
    task = asyncio.create_task(job)
    into.add(task)
    task.add_done_callback(into.discard)


def _encode(update_weights: list[np.ndarray], precision: Precision) -> bytes:
    return weights.encode(quantize.pack(update_weights, precision), compress=True)
