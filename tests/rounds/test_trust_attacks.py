"""What a lying bridge can do to peers' keys and update requests (issue 13, "peers verified end to end"): one table.

Three carts share one real bridge, which lies the way its row says: it hands out
altered directory entries (by patching its session's peer-list answer) or forges,
replays and redirects update requests (by patching its relay). Carts verify a peer's
own signed presence and its swarm certificate before they ask it, answer it or seal
anything to its key, and answer only requests the requester signed for them, within
their window, once (cartnet.peers). So every row checks:

* what the lie must come to: the carts that were lied to skip the victim (never asked,
  never sealed to) with a skip reason in the round log that names the lie, or refuse
  the request (declined, logged, and named in the round log's `refused`);
* that no cart sealed an update to a key the bridge made up;
* that the honest carts' rounds still complete: each aggregates the updates of the
  other carts the lie does not touch.
"""

from __future__ import annotations

import asyncio
import enum
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from cartnet import frames, presence
from cartnet.authority import Authority
from cartnet.identity import Identity
from cartnet.messages import PeerInfo, PeerList, PeersRequest, UpdateRequest
from cartnet.peers import request_bytes
from child_cart.node import CartNode
from child_cart.rounds.roundlog import RoundRecord
from fedcart.inprocess import local_authority, run_round
from parent_cart.bridge import Bridge
from parent_cart.peer import Peer

from .swarmkit import TestSwarm as Swarm
from .swarmkit import swarm

pytestmark = pytest.mark.slow
DEADLINE = 240.0
"""Longest a row's rounds (or an awaited refusal) may take before the row fails; never asserted as a time."""


class Attack(enum.Enum):
    SWAPPED_KX_KEY = "the bridge swaps a cart's X25519 key for its own in every entry it hands out"
    ID_NOT_KEY_HASH = "the bridge lists a cart with a record it signed itself: the id is not the hash of the key"
    FOREIGN_CERTIFICATE = "the bridge lists a cart with a certificate from another swarm"
    WITHHELD_CERTIFICATE = "the bridge lists a cart without its certificate to carts that never held it"
    REVOKED_PEER = "the bridge keeps listing a cart the authority revoked"
    FORGED_REQUEST = "the bridge forges an update request from another cart's id"
    REPLAYED_REQUEST = "the bridge delivers every update request twice"
    REDIRECTED_REQUEST = "the bridge hands each update request to a cart it was not for, too"


@dataclass
class World:
    """The swarm of one row: carts A and B, the victim V (the cart the lie is about), the lying bridge."""

    swarm: Swarm
    root: Path
    attacker: Identity = field(default_factory=Identity.generate)
    """The lying bridge's key material for what it makes up (its own X25519 key, its own signatures)."""
    refusals: asyncio.Queue[tuple[str, str, str]] = field(default_factory=asyncio.Queue)
    """(refusing cart, claimed requester, code) for every update request a cart refused."""
    sealed_to: set[bytes] = field(default_factory=set)
    """Every X25519 key any cart sealed its update to."""

    @property
    def bridge(self) -> Bridge:
        return self.swarm.bridges[0]

    @property
    def a(self) -> CartNode:
        return self.swarm.nodes[0]

    @property
    def b(self) -> CartNode:
        return self.swarm.nodes[1]

    @property
    def victim(self) -> CartNode:
        return self.swarm.nodes[2]


# --- the lies -------------------------------------------------------------------------------


Tamper = Callable[[PeerInfo], PeerInfo]


def lie_about_the_victim(world: World, tamper: Tamper, keep: PeerInfo | None = None) -> None:
    """Patch the bridge's peer-list answer: the victim's entry goes out as `tamper` makes it (and, when `keep` is
    given, it is listed from that copy even after the bridge dropped the cart)."""
    sessions, victim = world.bridge.sessions, world.victim.node_id
    answer = sessions._peer_list

    def lying(peer: Peer, request: PeersRequest) -> PeerList:
        honest = answer(peer, request)
        peers = [p for p in honest.peers if p.node_id != victim]
        listed = next((p for p in honest.peers if p.node_id == victim), keep)
        wanted = request.node_id in (None, victim) and peer.node_id != victim
        if listed is not None and wanted:
            peers.append(tamper(listed))
        return honest.model_copy(update={"peers": peers})

    sessions._peer_list = lying  # type: ignore[method-assign]


def swapped_kx_key(world: World) -> Tamper:
    key = world.attacker.kx_public_key

    def tamper(info: PeerInfo) -> PeerInfo:
        return info.model_copy(update={"record": info.record.model_copy(update={"kx_public_key": key})})

    return tamper


def own_record(world: World) -> Tamper:
    """A record for the victim's id with the bridge's own keys, signed by the bridge (the certificate kept)."""
    attacker = world.attacker

    def tamper(info: PeerInfo) -> PeerInfo:
        keys = {"public_key": attacker.public_key, "kx_public_key": attacker.kx_public_key}
        forged = info.record.model_copy(update=keys)
        forged = forged.model_copy(update={"signature": attacker.sign(presence.signed_bytes(forged))})
        return info.model_copy(update={"record": forged})

    return tamper


def foreign_certificate(world: World) -> Tamper:
    stranger = Authority.create(world.root / "another-swarm")
    certificate = stranger.issue(world.victim.identity.public_key, "cart")
    return lambda info: info.model_copy(update={"certificate": certificate})


async def revoke_the_victim(world: World) -> None:
    """The authority revokes V; the bridge adopts the list (passing it to its carts, dropping V) yet keeps listing V."""
    keep = world.bridge.directory.member(world.victim.node_id)
    assert keep is not None
    adopted = [asyncio.Event() for _ in (world.a, world.b)]
    for node, event in zip((world.a, world.b), adopted):
        offer = node.verifier.offer_revocations

        async def noted(revocations, source, offer=offer, event=event) -> bool:
            taken = await offer(revocations, source)
            event.set()
            return taken

        node.verifier.offer_revocations = noted  # type: ignore[method-assign]
    revocations = local_authority(world.root).revoke([world.victim.node_id])
    assert world.bridge.membership.offer(revocations, "the operator")
    await asyncio.wait_for(asyncio.gather(*(event.wait() for event in adopted)), DEADLINE)
    assert all(node.verifier.revoked(world.victim.node_id) for node in (world.a, world.b)), "the list reached them"
    lie_about_the_victim(world, lambda info: info, keep=keep.info)


async def forge_a_request(world: World) -> None:
    """Before the round: an update request "from A" to B, signed by the bridge (it has no other key to sign with).
    B has an update on offer meanwhile (as after any round), so nothing but the signature stands in the way."""
    a, b = world.a, world.b
    b.exchange.offer(b.engine.current, 1, 0)
    unsigned = UpdateRequest(
        request_id=secrets.token_hex(16),
        requester=a.node_id,
        target=b.node_id,
        task=a.task.name,
        round=0,
        issued_ms=presence.now_ms(),
        signature=bytes(64),
    )
    forged = unsigned.model_copy(update={"signature": world.attacker.sign(request_bytes(unsigned))})
    outbox = world.bridge.directory.local[b.node_id].outbox
    assert outbox.offer(frames.routed(b.node_id, a.node_id, frames.control(forged)))
    await refused_by(world, b, a, "forged")


def _is_update_request(frame: bytes) -> bool:
    inner = frames.parse_route(memoryview(frame)).inner
    return bytes(inner[:1]) == frames.CONTROL and isinstance(frames.parse(inner), UpdateRequest)


def replay_requests(world: World) -> None:
    relay = world.bridge.relay
    route = relay.route

    async def twice(frame: bytes, to: str, sender: str, origin: Peer) -> None:
        await route(frame, to, sender, origin)
        if _is_update_request(frame):
            await route(frame, to, sender, origin)

    relay.route = twice  # type: ignore[method-assign]


def redirect_requests(world: World) -> None:
    relay, carts = world.bridge.relay, [node.node_id for node in world.swarm.nodes]
    route = relay.route

    async def elsewhere_too(frame: bytes, to: str, sender: str, origin: Peer) -> None:
        await route(frame, to, sender, origin)
        if _is_update_request(frame):
            inner = bytes(frames.parse_route(memoryview(frame)).inner)
            for third in set(carts) - {to, sender}:
                await route(frames.routed(third, sender, inner), third, sender, origin)

    relay.route = elsewhere_too  # type: ignore[method-assign]


# --- what carts do about it -------------------------------------------------------------------


def watch(world: World) -> None:
    """Note every refused request and every key an update is sealed to, on every cart."""
    for node in world.swarm.nodes:
        exchange = node.exchange
        refuse, seal = exchange._refuse_soon, exchange._sealer_for

        def refusing(peer_id, request, code, reason, refuse=refuse, me=node.node_id) -> None:
            world.refusals.put_nowait((me, peer_id, code))
            refuse(peer_id, request, code, reason)

        def sealing(peer, offer, seal=seal):
            world.sealed_to.add(peer.kx_public_key)
            return seal(peer, offer)

        exchange._refuse_soon = refusing  # type: ignore[method-assign]
        exchange._sealer_for = sealing  # type: ignore[method-assign]


async def refused_by(world: World, node: CartNode, requester: CartNode, code: str) -> None:
    """Wait until `node` refused a request claimed to be `requester`'s, for `code` (others seen are kept)."""
    seen: list[tuple[str, str, str]] = []
    try:
        async with asyncio.timeout(DEADLINE):
            while (node.node_id, requester.node_id, code) not in seen:
                seen.append(await world.refusals.get())
    except TimeoutError:
        pytest.fail(f"{node.node_id[:8]} never refused a {code} request of {requester.node_id[:8]}; refused {seen}")
    finally:
        for item in seen:
            world.refusals.put_nowait(item)


def refusals_logged(node: CartNode, record: RoundRecord) -> dict[str, str]:
    """What this round's log says the cart refused, and what the next one will (refused after its EXCHANGE)."""
    return {**record.refused, **node.exchange.refused}


Setup = Callable[[World], Awaitable[None] | None]


@dataclass(frozen=True)
class Case:
    setup: Setup
    skip: str | None = None
    """What the carts lied to write in their round log about the victim (never asked)."""
    refused: str | None = None
    """The code of the requests the carts refuse, named in their round logs' `refused`."""
    victim_runs: bool = True
    """Whether the victim runs a round too (it asks, and is refused an answer, when it was lied about)."""


CASES: dict[Attack, Case] = {
    Attack.SWAPPED_KX_KEY: Case(
        lambda w: lie_about_the_victim(w, swapped_kx_key(w)),
        skip="its presence record's signature does not hold",
    ),
    Attack.ID_NOT_KEY_HASH: Case(
        lambda w: lie_about_the_victim(w, own_record(w)), skip="node id is not the SHA-1 of the key"
    ),
    Attack.FOREIGN_CERTIFICATE: Case(lambda w: lie_about_the_victim(w, foreign_certificate(w)), skip="not this swarm"),
    Attack.WITHHELD_CERTIFICATE: Case(
        lambda w: lie_about_the_victim(w, PeerInfo.without_certificate), skip="came without its certificate"
    ),
    Attack.REVOKED_PEER: Case(revoke_the_victim, skip="is revoked", victim_runs=False),
    Attack.FORGED_REQUEST: Case(forge_a_request, refused="forged"),
    Attack.REPLAYED_REQUEST: Case(replay_requests, refused="replayed"),
    Attack.REDIRECTED_REQUEST: Case(redirect_requests, refused="misdirected"),
}


@pytest.mark.parametrize("attack", list(Attack), ids=[a.name.lower() for a in Attack])
async def test_honest_carts_finish_their_round_despite_a_lying_bridge(attack: Attack, tmp_path: Path) -> None:
    case = CASES[attack]
    async with swarm(tmp_path, carts=3, rows=200) as s:
        world = World(s, tmp_path)
        watch(world)
        done = case.setup(world)
        if done is not None:
            await done
        running = s.nodes if case.victim_runs else [world.a, world.b]
        records = dict(zip((n.node_id for n in running), await asyncio.wait_for(run_round(running), DEADLINE)))
        if case.refused is not None and attack is not Attack.FORGED_REQUEST:
            for node in s.nodes:
                others = [o for o in s.nodes if o is not node]
                await asyncio.gather(*(refused_by(world, node, other, case.refused) for other in others))

    assert world.attacker.kx_public_key not in world.sealed_to, "an update was sealed to the bridge's key"
    assert world.sealed_to, "nobody sealed anything: the row proves nothing"
    lied_about = case.skip is not None
    honest = [world.a, world.b] if lied_about else s.nodes
    for node in honest:
        record = records[node.node_id]
        others = {o.node_id for o in honest} - {node.node_id}
        assert set(record.peers_answered) == others, record.skipped
        assert record.aggregated, "the honest carts still aggregated"
        if lied_about:
            assert world.victim.node_id in record.peers_asked, "the lie was drawn, to be refused"
            assert case.skip in record.skipped[world.victim.node_id], record.skipped
            assert record.skipped[world.victim.node_id].startswith("not verified, not asked: "), record.skipped
    if lied_about and case.victim_runs:
        victim = records[world.victim.node_id]
        for node in (world.a, world.b):
            assert victim.skipped[node.node_id].startswith("peer declined: could not verify you: "), victim.skipped
            assert case.skip in victim.skipped[node.node_id], victim.skipped
    if attack is Attack.FORGED_REQUEST:
        logged = records[world.b.node_id].refused
        assert logged[world.a.node_id].startswith("forged: the request is not signed by"), logged
        assert world.b.exchange.declined["forged"] == 1
    elif case.refused is not None:
        for node in s.nodes:
            logged = refusals_logged(node, records[node.node_id])
            assert any(reason.startswith(f"{case.refused}: ") for reason in logged.values()), logged
