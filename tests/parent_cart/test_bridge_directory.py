"""Whom a bridge offers as peers (issue 14, findings 6 and 8).

Only carts that announced themselves (a valid presence) are ever offered; those with an
update ready for the asked task come first; and the bridge draws the sample itself, so a
swarm of any size is answered without cutting a list.
"""

from __future__ import annotations

import asyncio
import random

from bridgekit import authority, cart, certificate, http_peers, listed, raw_cart, until, within

from cartnet import compact, messages, presence
from cartnet.client import MAX_DRAW_LOOKUPS
from cartnet.identity import Identity
from cartnet.messages import CertifiedPresence, HeldPeer, PeerList, PeersRequest
from cartnet.peers import PeerVerifier
from parent_cart.directory import Directory
from parent_cart.session import MAX_PEER_LIST

SWARM = 1000


async def test_an_admitted_cart_that_never_announced_itself_is_never_offered(swarm):
    bridge = await swarm.add_bridge()
    silent = Identity.generate()
    async with (
        raw_cart(bridge, silent),
        cart(bridge, task="recommend") as asker,
        cart(bridge, task="recommend") as honest,
    ):
        await until(
            lambda: listed(bridge, asker.node_id) and listed(bridge, honest.node_id),
            "the carts never announced",
            bridge,
        )
        assert silent.node_id in bridge.directory.local, "admitted and reachable"
        drawn = await within(asker.peers(sample=5, task="recommend"), "a sample")
        assert [p.node_id for p in drawn] == [honest.node_id]
        assert silent.node_id not in {p.node_id for p in await asker.peers()}
        assert silent.node_id not in {p["node_id"] for p in await http_peers(bridge)}
        assert await asker.lookup(silent.node_id) is None
        found = await asker.lookup(honest.node_id)
        assert found is not None and found.kx_public_key == honest.identity.kx_public_key
    assert bridge.directory.count() == 0


async def test_carts_ready_for_the_task_are_drawn_first_and_other_tasks_never(swarm):
    bridge = await swarm.add_bridge()
    async with (
        cart(bridge, task="recommend") as asker,
        cart(bridge, task="recommend") as ready,
        cart(bridge, task="recommend") as waiting,
        cart(bridge, task="iot-anomaly") as other,
    ):
        await ready.announce(ready=True)
        await until(
            lambda: (
                all(listed(bridge, c.node_id) for c in (asker, ready, waiting, other))
                and bridge.directory.presences[ready.node_id].record.ready
            ),
            "the ready cart never said so",
            bridge,
        )
        assert [p.node_id for p in await asker.peers(sample=1, task="recommend")] == [ready.node_id]
        drawn = {p.node_id for p in await asker.peers(sample=5, task="recommend")}
        assert drawn == {ready.node_id, waiting.node_id}, "not-ready carts of the task fill up, never the asker"
        assert {p.node_id for p in await asker.peers(sample=5, task="iot-anomaly")} == {other.node_id}
        listing = {p["node_id"]: p for p in await http_peers(bridge)}
    assert (listing[ready.node_id]["ready"], listing[waiting.node_id]["ready"]) == (True, False)
    assert listing[other.node_id]["task"] == "iot-anomaly"


def _crowd(directory: Directory, count: int) -> set[str]:
    """`count` carts behind another bridge, every other one ready; returns the ready ones' ids."""
    elsewhere, ready = Identity.generate().node_id, set()
    for index in range(count):
        identity = Identity.generate()
        signed = presence.sign(identity, elsewhere, 600, task="recommend", ready=index % 2 == 0)
        card = CertifiedPresence(record=signed.record, certificate=certificate(identity))
        directory.learn_record(card, "http://127.0.0.1:9")
        if signed.record.ready:
            ready.add(identity.node_id)
    return ready


def test_a_thousand_cart_directory_answers_a_sample_without_cutting_anyone():
    directory = Directory(Identity.generate().node_id, "http://127.0.0.1:8")
    ready = _crowd(directory, SWARM)
    listed_order = [m.info.node_id for m in directory.members()]
    assert directory.count() == SWARM == len(listed_order)
    asker, draw, drawn = listed_order[-1], random.Random(7), set()
    for _ in range(200):
        infos, pool = directory.sample(10, "recommend", exclude=asker, rng=draw)
        ids = {info.node_id for info in infos}
        assert len(ids) == 10 and pool == SWARM - 1 and asker not in ids
        drawn |= ids
        assert len(compact.encode(PeerList(peers=infos, total=pool))) < messages.MAX_CONTROL_BYTES
    assert drawn <= ready, "with enough ready carts, only ready ones are drawn"
    assert drawn & set(listed_order[MAX_PEER_LIST:]), "carts past where a listing is cut are drawn too"


async def test_a_bridge_with_a_thousand_carts_answers_sample_requests_itself(swarm):
    bridge = await swarm.add_bridge()
    ready = _crowd(bridge.directory, SWARM)
    async with cart(bridge, task="recommend") as asker:
        sampled = asker.peers(sample=messages.MAX_SAMPLE, task="recommend")
        drawn = await within(sampled, f"a sample of {messages.MAX_SAMPLE} of {SWARM}")
        assert len(drawn) == messages.MAX_SAMPLE and {p.node_id for p in drawn} <= ready
        listing = await within(asker.peers(), "the directory as far as one message holds it")
    assert len(listing) == MAX_PEER_LIST - 1, "a listing is cut (the asker, listed first, left out): rounds sample"


async def test_a_sample_or_lookup_lists_the_carts_whose_certificates_the_asker_holds_without_them(swarm):
    bridge = await swarm.add_bridge()
    async with (
        cart(bridge, task="recommend") as asker,
        cart(bridge, task="recommend") as held,
        cart(bridge, task="recommend") as new,
    ):
        await until(lambda: all(listed(bridge, c.node_id) for c in (asker, held, new)), "never announced", bridge)
        known = [held.node_id[: messages.KNOWN_PREFIX]]
        drawn = {p.node_id: p for p in await within(asker.peers(sample=5, task="recommend", known=known), "a sample")}
        whole = await within(asker.peers(sample=5, task="recommend"), "a sample without known")
        found = await within(asker.lookup(held.node_id), "a lookup")
        found_held = await within(asker.lookup(held.node_id, held=True), "a lookup of a cart whose certificate we hold")
    assert drawn[held.node_id].certificate is None, "the asker holds it: the bridge leaves it out"
    assert drawn[new.node_id].certificate is not None, "one the asker never held comes whole"
    assert all(p.certificate is not None for p in whole)
    assert found is not None and found.certificate is not None, "a lookup of a cart not held is whole"
    assert found_held is not None and found_held.certificate is None, "the asker holds it: the bridge leaves it out"


async def test_a_sample_names_the_carts_the_asker_verified_by_id_alone_and_the_asker_makes_them_whole(swarm):
    bridge = await swarm.add_bridge()
    verifier = PeerVerifier(authority().swarm)
    async with (
        cart(bridge, task="recommend", verifier=verifier) as asker,
        cart(bridge, task="recommend") as held,
        cart(bridge, task="recommend") as new,
    ):
        await until(lambda: all(listed(bridge, c.node_id) for c in (asker, held, new)), "never announced", bridge)
        first = await within(asker.peers(sample=5, task="recommend", by_id=True), "a first sample")
        verifier.verify(next(p for p in first if p.node_id == held.node_id))
        request = messages.PeersRequest(sample=5, task="recommend", known=verifier.holders(), by_id=True)
        answer = await within(asker._directory(request, 10.0), "the sample as the bridge sends it")
        again = {p.node_id: p for p in await within(asker.peers(sample=5, task="recommend", by_id=True), "again")}
        unheld = [new.node_id[: messages.KNOWN_PREFIX]]  # as a bridge naming a cart by id that was never verified
        looked_up = await within(asker.peers(sample=5, task="recommend", known=unheld, by_id=True), "a lookup")
    assert [h.node_id for h in answer.held] == [held.node_id] and [p.node_id for p in answer.peers] == [new.node_id]
    assert len(compact.encode(answer.held[0])) < 200, "by id alone: no record, no certificate"
    assert set(again) == {held.node_id, new.node_id}
    assert again[held.node_id].record.public_key == held.identity.public_key, "made whole from what was verified"
    assert verifier.verifications == 1, "the held cart is believed as it was first, with no second check"
    assert {p.node_id for p in looked_up} == {held.node_id, new.node_id}, "never an id alone: looked up whole"
    assert next(p for p in looked_up if p.node_id == new.node_id).certificate is not None


async def test_a_bridge_naming_carts_never_verified_by_id_alone_gets_few_lookups_and_cannot_stall_a_draw(swarm):
    bridge = await swarm.add_bridge()
    strangers = [Identity.generate().node_id for _ in range(messages.MAX_SAMPLE - 2)]
    honest_answer, lookups = bridge.sessions._peer_list, []

    def lying(peer, request: PeersRequest) -> PeerList:
        told = honest_answer(peer, request)
        if request.node_id is not None:
            lookups.append(request.node_id)
            return told
        made_up = [
            HeldPeer(node_id=n, bridge_id=bridge.node_id, bridge_url="", at=len(told.peers) + i)
            for i, n in enumerate(strangers)
        ]
        return told.model_copy(update={"held": made_up})

    bridge.sessions._peer_list = lying
    async with (
        cart(bridge, task="recommend", verifier=PeerVerifier(authority().swarm)) as asker,
        cart(bridge, task="recommend") as honest,
    ):
        await until(lambda: listed(bridge, asker.node_id) and listed(bridge, honest.node_id), "never announced", bridge)
        drawn = await within(asker.peers(sample=5, task="recommend", by_id=True), "a draw padded with strangers")
        assert [p.node_id for p in drawn] == [honest.node_id], "the strangers are left out, the honest entry kept"
        assert len(lookups) == MAX_DRAW_LOOKUPS, "a bounded number of lookups, whatever the bridge names"
        ask = asker._directory

        async def unanswered_lookups(request: PeersRequest, timeout: float) -> PeerList:
            if request.node_id is not None:
                await asyncio.Event().wait()  # a bridge that never answers a lookup
            return await ask(request, timeout)

        asker._directory = unanswered_lookups
        stalled = await within(asker.peers(1.0, sample=5, task="recommend", by_id=True), "a draw whose lookups hang")
    assert [p.node_id for p in stalled] == [honest.node_id], "the draw ends after its timeout, without the strangers"
