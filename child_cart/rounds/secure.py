"""Secure aggregation in the round: peers answer with masked updates and the asking cart learns only their sum.

    TRAIN -> EXCHANGE (masked) -> AGGREGATE (unmask, FedAvg) -> EVALUATE (aggregate only) -> ...

With `secure_aggregation` on in the round settings (fedavg only, k >= 3: `settings.secure_conflicts`),
`privacy.workflow_for` runs `secured(...)` of the round it would run otherwise (differential privacy's
included: what is masked is then the privatized offer). The arithmetic is `cartnet.secagg`'s:

1. The requester draws k + over_ask peers, keeps those whose directory entries verify (signed presence
   and swarm certificate), and names them as the cohort in one signed `MaskedRequest` per member, with
   every member's entry, so each member checks every key itself (a bridge cannot slip in its own).
2. Each member verifies the request and every entry, clips its claimed sample count to the request's
   `sample_cap`, scales its offered weights by that count, quantizes (fixed point, `quantizer_for`), adds
   its pairwise and self masks, and answers with a transfer (`MaskedAnswer`, sealed for the requester):
   the masked vector, the commitments to its seeds and to the Shamir shares it dealt (signed), the shares
   sealed for each other member, and the clipped count alongside, in the clear.
3. The requester sums what arrived and names the survivors in a signed `UnmaskRequest` to each survivor and
   each member not heard from (it may have masked late), forwarding the shares dealt to it. It collects
   one `SeedReveal` from each survivor (its self seed, its pairwise seeds with dropped members only,
   checked against the commitments it signed) and whatever shares arrive meanwhile; a survivor that never
   reveals has its seeds rebuilt from the others' shares (`MaskedSum.rebuilt`). It unmasks the sum and
   divides by the total weight: with its own update, weighted the same way, that is the FedAvg aggregate.

FedAvg's weights: each member clips its own claimed sample count to `sample_cap` (SAMPLE_CAP, fixed) and
sends it alongside its masked vector. The plain rule's clip (3x the round's median claim) is not applied:
the requester never sees a member's vector, so it cannot check that the vector was scaled by the count
claimed; a member can add any vector the fixed-point range holds, whatever count it claims. A clip of
claims would bound nothing (docs/SECURITY.md says what would: range proofs, not built). EVALUATE cannot
score one peer's update: the round log marks each survivor's entry in `received` with `{"masked": 1.0}`
instead of metrics, and `peers_answered` and `samples` stay empty for them (no update was seen).

What it does not protect (docs/SECURITY.md): a requester that names different survivor sets to different
members; a survivor silent at unmasking when fewer than `cartnet.secagg.threshold(n)` members answer with
shares loses that round's sum (the round then keeps a local model, and says why); the seeds and shares of
a reveal travel in a routed control frame (signed, not sealed): a bridge that also held the masked
vectors, which are sealed for the requester, could unmask; a member's poisoned update goes into the sum
unseen; the requester's aggregate, published or offered later, is the sum of its cohort.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import math
import secrets
import struct
from collections import OrderedDict
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from cartnet import e2e, frames
from cartnet.identity import verify_signature
from cartnet.messages import (
    MaskedRequest,
    Message,
    PeerInfo,
    RevealedSeed,
    RevealedShare,
    SealedShares,
    SeedReveal,
    TransferManifest,
    UnmaskRequest,
    UpdateDeclined,
)
from cartnet.payloads import MaskedAnswer, PayloadError
from cartnet.peers import (
    REQUEST_WINDOW_MS,
    PeerRefused,
    VerifiedPeer,
    decline_signed_by,
    secure_signed_by,
    sign_decline,
    sign_secure,
)
from cartnet.presence import now_ms
from cartnet.secagg import (
    F64,
    MIN_COHORT,
    MIN_SURVIVORS,
    MODULUS,
    SEED,
    Cohort,
    MaskedUpdate,
    Masker,
    Quantizer,
    Reveal,
    SecAggError,
    Unmasker,
    sealed_size,
)
from cartnet.transfer import Received, TransferError
from child_cart.rounds.phases import Aggregate, Evaluate, Exchange
from child_cart.rounds.recent import RecentKeys
from child_cart.rounds.roundlog import Metrics
from child_cart.rounds.workflow import Phase, RoundContext, RoundPhase, Weights, Workflow

if TYPE_CHECKING:
    from child_cart.rounds.exchange import UpdateExchange

log = logging.getLogger(__name__)

MASKED_PURPOSE = MaskedAnswer.purpose
SAMPLE_CAP = 4096
"""The most samples one update weighs in a masked sum (claimed counts are clipped to it, ours too): fixed, because
the fixed-point range is sized by it before any count is known, and a clip of claims would not bind the vector."""
WEIGHT_CLIP = 32.0
"""The largest weight magnitude a masked update carries exactly; beyond it coordinates are clipped (and counted)."""
MAX_UNMASKED = 1024
"""(cohort, holder) pairs of ended unmaskings remembered, so a holder's reveal after the requester had enough
(a member not waited for) is logged as late, not as unsolicited."""
MAX_COHORTS = 16
"""Cohorts a member keeps its masker for, waiting for their unmask request."""
MAX_TASKS = 64
"""Masked answers and reveals running at once; beyond that requests are dropped (and logged)."""
MASKED: Metrics = {"masked": 1.0}
"""What EVALUATE records in `received` for a peer whose update went into the sum masked: never seen alone."""


def quantizer_for(members: int, sample_cap: int = SAMPLE_CAP, weight_clip: float = WEIGHT_CLIP) -> Quantizer:
    """The finest power-of-two scale at which `members` updates of |weight| <= weight_clip, each scaled by up to
    `sample_cap` samples, sum without overflow."""
    clip = weight_clip * sample_cap
    scale = 2.0 ** math.floor(math.log2((MODULUS // 2 - 1) / (members * clip)))
    return Quantizer(clip, scale, members)


def flatten(weights: Weights) -> F64:
    return np.concatenate([np.asarray(w, dtype=np.float64).ravel() for w in weights])


def unflatten(vector: F64, layout: Weights) -> Weights:
    """`vector` cut into tensors of `layout`'s shapes and dtypes."""
    out, at = [], 0
    for w in layout:
        out.append(vector[at : at + w.size].reshape(w.shape).astype(w.dtype))
        at += w.size
    return out


def blob_size(members: int, length: int) -> int:
    """Bytes of a masked update's blob (`pack`) in a cohort of `members`, for `length` values."""
    return 4 + SEED * members + (members - 1) * (sealed_size(members) + SEED * members) + 4 * length


def pack(update: MaskedUpdate) -> bytes:
    """A masked update's blob, binary, in the cohort's member order: the clipped count (uint32), a seed
    commitment per member, per holder its sealed shares and its share commitments (one per member's seed),
    then the masked values (little-endian uint32s)."""
    members = sorted(update.commitments)
    parts = [struct.pack("<I", update.clipped), *(update.commitments[m] for m in members)]
    for holder in members:
        if holder != update.sender:
            parts += [update.sealed_shares[holder], *(update.share_commitments[holder, of] for of in members)]
    parts.append(np.ascontiguousarray(update.values, dtype="<u4").tobytes())
    return b"".join(parts)


def unpack(blob: bytes, sender: str, context: bytes, members: tuple[str, ...], length: int) -> MaskedUpdate:
    """The masked update of `sender` in a blob of `length` values for a cohort of `members`; SecAggError if not."""
    n = len(members)
    if sender not in members or len(blob) != blob_size(n, length):
        raise SecAggError(f"masked update of {len(blob)} bytes is not {blob_size(n, length)} for {length} values")
    (clipped,) = struct.unpack_from("<I", blob)
    at = 4
    commitments = {}
    for member in members:
        commitments[member], at = blob[at : at + SEED], at + SEED
    sealed, share_commitments = {}, {}
    for holder in members:
        if holder == sender:
            continue
        sealed[holder], at = blob[at : at + sealed_size(n)], at + sealed_size(n)
        for of in members:
            share_commitments[holder, of], at = blob[at : at + SEED], at + SEED
    values = np.frombuffer(blob, dtype="<u4", offset=at).astype(np.uint32)
    return MaskedUpdate(sender, context, values, commitments, clipped, sealed, share_commitments)


@dataclass
class MaskedSum:
    """What a masked exchange brought: the unmasked sum of the survivors' sample-weighted updates and its weight,
    or why there is none."""

    survivors: list[str] = field(default_factory=list)
    total: F64 | None = None
    weight: int = 0
    clipped: int = 0
    rebuilt: list[str] = field(default_factory=list)
    """Survivors that did not reveal, or revealed seeds that did not match their commitments (logged): their seeds
    were rebuilt from the other members' Shamir shares."""
    error_bound: float = 0.0
    """The most the sum may differ from the exact sum of the weighted updates, per coordinate (quantization)."""
    skipped: dict[str, str] = field(default_factory=dict)
    error: str = ""


@dataclass
class _Ask:
    peer: VerifiedPeer
    cohort_id: str
    context: bytes
    members: tuple[str, ...]
    length: int
    answer: asyncio.Future[tuple[MaskedUpdate, int]]


@dataclass
class _Awaited:
    peer: VerifiedPeer
    context: bytes
    reveal: asyncio.Future[Reveal]


class SecureExchange:
    """Both sides of the masked exchange, riding on an `UpdateExchange` (its network, verifier, offer, budget)."""

    def __init__(self, exchange: UpdateExchange) -> None:
        self.exchange = exchange
        self._maskers: OrderedDict[str, tuple[str, Masker]] = OrderedDict()
        self._asks: dict[str, _Ask] = {}
        self._awaited: dict[tuple[str, str], _Awaited] = {}
        self._unmasked: RecentKeys[tuple[str, str]] = RecentKeys(MAX_UNMASKED)  # (cohort, holder) of ended unmaskings
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed: RecentKeys[str] = RecentKeys(MAX_COHORTS * 16)
        """Request ids of asks whose round moved on (over-asked peers answer late): their answers are expected."""
        self.dropped = 0

    # --- routing -----------------------------------------------------------------------------

    def on_message(self, peer_id: str, message: Message) -> bool:
        if isinstance(message, MaskedRequest | UnmaskRequest):
            if len(self._tasks) >= MAX_TASKS:
                self.dropped += 1
                log.warning("dropped a %s from %s: %d running already", message.type, peer_id[:8], MAX_TASKS)
                return True
            job = (
                self._answer(peer_id, message) if isinstance(message, MaskedRequest) else self._reveal(peer_id, message)
            )
            self._spawn(job)
            return True
        if isinstance(message, SeedReveal):
            self._take_reveal(peer_id, message)
            return True
        if isinstance(message, UpdateDeclined) and message.request_id in self._asks:
            ask = self._asks[message.request_id]
            if ask.peer.node_id == peer_id and not ask.answer.done() and decline_signed_by(message, ask.peer):
                ask.answer.set_exception(SecAggError(f"peer declined: {message.reason}"))
            return True
        return False

    purpose = MASKED_PURPOSE

    def admission(self, manifest: TransferManifest) -> tuple[str | None, int]:
        """For a `masked_update` manifest: the peer its request id was asked of (None: no pending ask of ours)
        and the most bytes its sealed answer may declare (header, values, sealing tags, twice over)."""
        ask = self._asks.get(str(manifest.meta.get("request_id", "")))
        if ask is None or ask.answer.done():
            return None, 0
        return ask.peer.node_id, 2 * blob_size(len(ask.members), ask.length) + 64 * 1024

    def on_transfer(self, received: Received) -> bool:
        manifest = received.manifest
        if manifest.purpose != MASKED_PURPOSE:
            return False
        request_id = str(manifest.meta.get("request_id", ""))
        ask = self._asks.get(request_id)
        if ask is None and request_id in self._closed:
            log.info("masked update from %s arrived after its round moved on: ignored", manifest.sender[:8])
            return True
        if ask is None or ask.answer.done() or manifest.sender != ask.peer.node_id:
            log.warning("unsolicited masked update from %s ignored", manifest.sender[:8])
            return True
        if manifest.sender_key != ask.peer.public_key:
            log.warning("masked update for %s not signed by its verified key: ignored", ask.peer.node_id[:8])
            return True
        self.exchange.bytes_in += manifest.total_size
        self._spawn(self._settle(ask, received))
        return True

    def _spawn(self, job: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(job)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # --- member side -------------------------------------------------------------------------

    async def _answer(self, peer_id: str, request: MaskedRequest) -> None:
        ex = self.exchange
        identity = ex.network.identity
        own = identity.node_id
        age = now_ms() - request.issued_ms
        if request.requester != peer_id or request.target != own or abs(age) > REQUEST_WINDOW_MS:
            log.warning("refused a masked request from %s: forged, misdirected or stale", peer_id[:8])
            return
        if request.cohort_id in self._maskers:
            log.warning("refused a masked request from %s: its cohort was answered already", peer_id[:8])
            return
        try:
            reason = await self._mask_and_send(peer_id, request)
        except (ConnectionError, RuntimeError, TimeoutError, OSError, ValueError, TransferError) as exc:
            log.info("could not answer the masked request of %s: %s", peer_id[:8], exc)
            return
        if reason:
            log.info("declining the masked request of %s: %s", peer_id[:8], reason)
            with contextlib.suppress(ConnectionError, RuntimeError):
                decline = sign_decline(identity, request.request_id, reason[:512])
                await ex.network.send_to(peer_id, frames.control(decline))

    async def _mask_and_send(self, peer_id: str, request: MaskedRequest) -> str:
        """Mask our offer for the request's cohort and send it; the reason to decline instead, if any."""
        ex = self.exchange
        identity = ex.network.identity
        offer, layout = ex._offer, ex._reference
        if request.task != ex.task:
            return f"this cart trains {ex.task!r}, not {request.task!r}"
        if offer is None or layout is None:
            return ex._withdrawn or "no trained update yet"
        if ex.answered[peer_id] >= ex.answers_per_peer:
            return f"you had your {ex.answers_per_peer} answers to update requests this round already"
        ex.answered[peer_id] += 1
        try:
            requester = await ex._requester(peer_id)
        except PeerRefused as exc:
            return f"could not verify you: {exc}"
        if requester is None or not secure_signed_by(request, requester):
            log.warning("refused a masked request from %s: not signed by its verified key", peer_id[:8])
            ex.answered[peer_id] -= 1
            return ""
        kx: dict[str, bytes] = {}
        for info in request.members:
            try:
                kx[info.node_id] = ex.verifier.verify(info).kx_public_key
            except PeerRefused as exc:
                return f"cohort member {info.node_id[:8]} does not verify: {exc}"
        try:
            cohort = Cohort(peer_id, request.cohort_id, request.task, request.round, kx)
            masker = Masker(cohort, identity.node_id, identity.kx_key, Quantizer(request.clip, request.scale, len(kx)))
        except SecAggError as exc:
            return f"cannot mask for this cohort: {exc}"
        self._maskers[request.cohort_id] = (peer_id, masker)
        while len(self._maskers) > MAX_COHORTS:
            self._maskers.popitem(last=False)
        samples = min(offer.samples, request.sample_cap)
        try:
            masked = await asyncio.to_thread(masker.mask, flatten(layout) * samples)
        except SecAggError as exc:
            return f"cannot mask our update: {exc}"
        signature = base64.b64encode(identity.sign(masked.signed_bytes())).decode()
        sealed = await asyncio.to_thread(e2e.seal, pack(masked), requester.kx_public_key, identity.node_id)
        meta = MaskedAnswer(
            request_id=request.request_id,
            cohort_id=request.cohort_id,
            samples=samples,
            task=ex.task,
            round=offer.round,
            signature=signature,
        )
        await self._deliver(peer_id, sealed, meta)
        return ""

    async def _deliver(self, peer_id: str, sealed: bytes | bytearray, meta: MaskedAnswer) -> None:
        await self.exchange.network.transfers.send_blob(peer_id, sealed, MASKED_PURPOSE, meta.to_meta())
        self.exchange.bytes_out += len(sealed)

    async def _reveal(self, peer_id: str, request: UnmaskRequest) -> None:
        ex = self.exchange
        identity = ex.network.identity
        kept = self._maskers.get(request.cohort_id)
        if kept is None or kept[0] != peer_id or request.requester != peer_id or request.target != identity.node_id:
            log.warning("refused an unmask request from %s: no cohort of its with us", peer_id[:8])
            return
        try:
            requester = await ex._requester(peer_id)
        except PeerRefused as exc:
            log.warning("refused an unmask request from %s: %s", peer_id[:8], exc)
            return
        if requester is None or not secure_signed_by(request, requester):
            log.warning("refused an unmask request from %s: not signed by its verified key", peer_id[:8])
            return
        sealed = {shares.dealer: shares.sealed for shares in request.shares}
        try:
            reveal = await asyncio.to_thread(kept[1].reveal, request.survivors, sealed)
        except SecAggError as exc:
            log.warning("revealing nothing to %s: %s", peer_id[:8], exc)
            return
        message = SeedReveal(
            cohort_id=request.cohort_id,
            sender=identity.node_id,
            survivors=sorted(reveal.survivors),
            self_seed=reveal.self_seed or None,
            pairwise=[RevealedSeed(peer=peer, seed=seed) for peer, seed in sorted(reveal.pairwise.items())],
            shares=[RevealedShare(dealer=d, of=of, value=v) for (d, of), v in sorted(reveal.shares.items())],
            signature=identity.sign(reveal.signed_bytes()),
        )
        with contextlib.suppress(ConnectionError, RuntimeError):
            await ex.network.send_to(peer_id, frames.control(message))

    # --- requester side ----------------------------------------------------------------------

    async def gather(self, peers: list[PeerInfo], round_number: int, timeout: float, enough: int) -> MaskedSum:
        """Ask `peers` (those that verify) for masked updates as one cohort, then unmask their sum."""
        from child_cart.rounds.exchange import Collected

        ex = self.exchange
        identity = ex.network.identity
        checked = Collected()
        trusted = ex._trusted(peers, checked)
        result = MaskedSum(skipped=dict(checked.skipped))
        if len(trusted) < MIN_COHORT:
            result.error = f"only {len(trusted)} verified peers to ask: a masked cohort needs at least {MIN_COHORT}"
            for node_id in trusted:
                result.skipped[node_id] = result.error
            return result
        cohort_id = secrets.token_hex(16)
        cohort = Cohort(
            identity.node_id, cohort_id, ex.task, round_number, {p.node_id: p.kx_public_key for p in trusted.values()}
        )
        quantizer = quantizer_for(len(trusted))
        unmasker = Unmasker(cohort, quantizer)
        length = sum(w.size for w in ex._reference or [])
        members = [ex.verifier.with_certificate(peer) for peer in peers if peer.node_id in trusted]  # whole
        loop = asyncio.get_running_loop()
        asked = {secrets.token_hex(16): peer for peer in trusted.values()}
        for request_id, peer in asked.items():
            self._asks[request_id] = _Ask(
                peer, cohort_id, cohort.digest(), cohort.members, length, loop.create_future()
            )
        try:
            for request_id, peer in asked.items():
                request = sign_secure(
                    identity,
                    MaskedRequest(
                        request_id=request_id,
                        cohort_id=cohort_id,
                        requester=identity.node_id,
                        target=peer.node_id,
                        task=ex.task,
                        round=round_number,
                        issued_ms=now_ms(),
                        members=members,
                        clip=quantizer.clip,
                        scale=quantizer.scale,
                        sample_cap=SAMPLE_CAP,
                        signature=bytes(64),
                    ),
                )
                try:
                    await ex.network.send_to(peer.node_id, frames.control(request))
                except (ConnectionError, RuntimeError) as exc:
                    self._asks[request_id].answer.set_exception(SecAggError(f"request not sent: {exc}"))
            answers = {request_id: self._asks[request_id].answer for request_id in asked}
            await _wait(list(answers.values()), timeout, enough)
            weights: dict[str, int] = {}
            late: list[str] = []  # asked, not heard from: they may have masked and hold shares
            for request_id, answer in answers.items():
                node_id = asked[request_id].node_id
                if not answer.done():
                    answer.cancel()
                    late.append(node_id)
                    result.skipped[node_id] = f"dropped: no masked update within {timeout:g}s or enough others first"
                elif answer.exception() is not None:
                    result.skipped[node_id] = f"dropped: {answer.exception()}"
                else:
                    update, samples = answer.result()
                    try:
                        unmasker.add(update)
                        weights[node_id] = samples
                    except SecAggError as exc:
                        result.skipped[node_id] = f"dropped: {exc}"
        finally:
            for request_id in asked:
                self._asks.pop(request_id, None)
                self._closed.add(request_id)
        survivors = sorted(unmasker.survivors)
        if len(survivors) < MIN_SURVIVORS:
            result.error = f"only {len(survivors)} masked updates arrived: at least {MIN_SURVIVORS} are needed"
            return result
        holders = {node_id: trusted[node_id] for node_id in [*survivors, *late]}
        reveals = await self._reveals(cohort, unmasker, holders, timeout)
        try:
            total, clipped = await asyncio.to_thread(unmasker.unmask, reveals)
        except SecAggError as exc:
            result.error = f"the masked sum could not be unmasked: {exc}"
            return result
        result.survivors, result.total, result.clipped = survivors, total, clipped
        result.rebuilt = [node_id for node_id in survivors if node_id not in reveals or node_id in unmasker.liars]
        if unmasker.liars:
            liars = ", ".join(node_id[:8] for node_id in unmasker.liars)
            log.warning("%s revealed seeds that do not match their commitments: rebuilt from shares", liars)
        if result.rebuilt:
            log.info("rebuilt the seeds of %d survivors from shares", len(result.rebuilt))
        result.weight = sum(weights.values())
        result.error_bound = quantizer.error_bound(len(survivors))
        return result

    async def _reveals(
        self, cohort: Cohort, unmasker: Unmasker, holders: Mapping[str, VerifiedPeer], timeout: float
    ) -> dict[str, Reveal]:
        """Name the survivors to each of `holders` (the survivors and the members not heard from), with the shares
        dealt to it, and collect the reveals that came before every survivor revealed or `timeout` passed."""
        ex = self.exchange
        identity = ex.network.identity
        loop = asyncio.get_running_loop()
        context = cohort.digest()
        survivors = sorted(unmasker.survivors)
        keys = [(cohort.request_id, node_id) for node_id in holders]
        for key, peer in zip(keys, holders.values()):
            self._awaited[key] = _Awaited(peer, context, loop.create_future())
        try:
            for node_id in holders:
                sealed = [SealedShares(dealer=d, sealed=box) for d, box in sorted(unmasker.sealed_for(node_id).items())]
                request = sign_secure(
                    identity,
                    UnmaskRequest(
                        cohort_id=cohort.request_id,
                        requester=identity.node_id,
                        target=node_id,
                        survivors=survivors,
                        shares=sealed,
                        signature=bytes(64),
                    ),
                )
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await ex.network.send_to(node_id, frames.control(request))
            await _wait(
                [self._awaited[(cohort.request_id, node_id)].reveal for node_id in survivors], timeout, len(survivors)
            )
            return {
                key[1]: awaited.reveal.result()
                for key in keys
                if (awaited := self._awaited[key]).reveal.done() and not awaited.reveal.cancelled()
            }
        finally:
            for key in keys:
                awaited = self._awaited.pop(key)
                awaited.reveal.cancel()
                self._unmasked.add(key)

    def _take_reveal(self, peer_id: str, message: SeedReveal) -> None:
        awaited = self._awaited.get((message.cohort_id, peer_id))
        if awaited is None or awaited.reveal.done() or message.sender != peer_id:
            late = message.sender == peer_id and (message.cohort_id, peer_id) in self._unmasked  # asked, came late
            log.log(logging.INFO if late else logging.WARNING, "unsolicited seed reveal from %s ignored", peer_id[:8])
            return
        reveal = Reveal(
            peer_id,
            awaited.context,
            frozenset(message.survivors),
            message.self_seed or b"",
            {seed.peer: seed.seed for seed in message.pairwise},
            {(share.dealer, share.of): share.value for share in message.shares},
        )
        if not verify_signature(awaited.peer.public_key, message.signature, reveal.signed_bytes()):
            log.warning("seed reveal from %s not signed by its verified key: ignored", peer_id[:8])
            return
        awaited.reveal.set_result(reveal)

    async def _settle(self, ask: _Ask, received: Received) -> None:
        try:
            outcome: tuple[MaskedUpdate, int] | SecAggError = await asyncio.to_thread(self._check, ask, received)
        except SecAggError as exc:
            outcome = exc
        if ask.answer.done():
            return
        if isinstance(outcome, SecAggError):
            ask.answer.set_exception(outcome)
        else:
            ask.answer.set_result(outcome)

    def _check(self, ask: _Ask, received: Received) -> tuple[MaskedUpdate, int]:
        """The masked update and its claimed (clipped) count, once meta, seal, size and signature all check."""
        manifest = received.manifest
        try:
            meta = MaskedAnswer.from_meta(manifest.meta)
            signature = base64.b64decode(meta.signature, validate=True)
        except (PayloadError, binascii.Error) as exc:
            raise SecAggError(f"masked update meta {exc}") from None
        if meta.cohort_id != ask.cohort_id or meta.task != self.exchange.task:
            raise SecAggError("masked update for another cohort or task")
        if not 0 < meta.samples <= SAMPLE_CAP:
            raise SecAggError(f"claimed sample count {meta.samples} outside 1..{SAMPLE_CAP}")
        try:
            plain = e2e.open_sealed(received.data, self.exchange.network.identity.kx_key, manifest.sender)
        except e2e.DecryptionError as exc:
            raise SecAggError(f"garbage masked update: {exc}") from None
        update = unpack(bytes(plain), ask.peer.node_id, ask.context, ask.members, ask.length)
        if not verify_signature(ask.peer.public_key, signature, update.signed_bytes()):
            raise SecAggError("masked update not signed by the peer's verified key")
        return update, meta.samples


async def _wait(futures: list[asyncio.Future[Any]], timeout: float, enough: int) -> None:
    """Until `enough` futures succeeded, all are done, or `timeout` passed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    waiting = {f for f in futures if not f.done()}
    while waiting and sum(1 for f in futures if f.done() and not f.cancelled() and f.exception() is None) < enough:
        remaining = deadline - loop.time()
        if remaining <= 0:
            break
        _, waiting = await asyncio.wait(waiting, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)


# --- phases ------------------------------------------------------------------------------------


class MaskedExchange(RoundPhase):
    """Ask k + `over_ask` peers, as one cohort, for their masked updates; unmask their sum (`SecureExchange`)."""

    name = Phase.EXCHANGE

    async def run(self, ctx: RoundContext) -> None:
        engine, settings = ctx.engine, ctx.settings
        if engine.task.aggregator:
            ctx.aggregate_error = f"task {engine.task.name!r} needs {engine.task.aggregator}: it cannot be masked"
            return
        drawn = await engine.network.peers(
            sample=settings.k + settings.over_ask, task=engine.task.name, known=engine.exchange.verifier.holders()
        )
        ctx.asked = [p for p in drawn if p.node_id != engine.node_id]
        ctx.masked = await engine.exchange.secure.gather(ctx.asked, ctx.number, settings.peer_timeout, settings.k)
        ctx.skipped, ctx.refused = ctx.masked.skipped, engine.exchange.take_refused()


class MaskedAggregate(RoundPhase):
    """FedAvg from the unmasked sum: (own count x own weights + the survivors' weighted sum) / the total weight."""

    name = Phase.AGGREGATE

    async def run(self, ctx: RoundContext) -> None:
        masked, own = ctx.masked, ctx.own
        if ctx.aggregate_error:
            return
        if masked is None or masked.total is None or own is None:
            ctx.aggregate_error = masked.error if masked is not None and masked.error else "no masked sum"
            return
        own_weight = min(own.samples, SAMPLE_CAP)
        mean = (flatten(own.weights) * own_weight + masked.total) / (own_weight + masked.weight)
        ctx.aggregated = unflatten(mean, own.weights)


class MaskedEvaluate(RoundPhase):
    """Score the aggregate; each masked peer update is recorded as masked (`MASKED`), never scored alone."""

    name = Phase.EVALUATE

    async def run(self, ctx: RoundContext) -> None:
        survivors = ctx.masked.survivors if ctx.masked is not None else []
        ctx.received = {peer: dict(MASKED) for peer in survivors}
        if ctx.aggregated is not None:
            ctx.aggregated_metrics = await asyncio.to_thread(ctx.engine.learner.evaluate, ctx.aggregated)


def secured(workflow: Workflow) -> Workflow:
    """`workflow` with its exchange, aggregation and evaluation masked."""
    return (
        workflow.replaced(Phase.EXCHANGE, MaskedExchange())
        .replaced(Phase.AGGREGATE, MaskedAggregate())
        .replaced(Phase.EVALUATE, MaskedEvaluate())
    )


def is_secured(workflow: Workflow) -> bool:
    phases = list(workflow)
    return any(isinstance(p, MaskedExchange) for p in phases) and not any(
        isinstance(p, Exchange | Aggregate | Evaluate) for p in phases
    )
