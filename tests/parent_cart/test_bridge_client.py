"""BridgeClient on its own: backoff, reconnecting to a bridge that comes back, failing fast while it is gone,
failing over along its list of bridges, and the real `fedcart bridge` process shutting down gracefully on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket

import pytest
from bridgekit import DEADLINE, FAST_BACKOFF, cart, certificate, enrol, new_client, raw_cart, until, within

from cartnet import frames, presence
from cartnet.client import Backoff, BridgeClient, NotConnected
from cartnet.handshake import MAX_FRAME, AdmissionRefused, receive_control, ws_url
from cartnet.identity import Identity
from cartnet.messages import Bye, Heartbeat, PeersRequest, TransferManifest
from cartnet.transfer import TransferError
from fedcart.local_swarm import bridge_argv
from parent_cart.bridge import Bridge


def test_backoff_grows_exponentially_is_capped_and_jittered():
    backoff = Backoff(initial=0.5, maximum=4.0, factor=2.0, jitter=0.5)
    for attempt, base in enumerate([0.5, 1.0, 2.0, 4.0, 4.0, 4.0]):
        delays = {backoff.delay(attempt) for _ in range(50)}
        assert all(base * 0.5 <= d <= base for d in delays), (attempt, delays)
        assert len(delays) > 1, "reconnect delays must be jittered"


async def test_sending_while_disconnected_fails_at_once_and_oversized_frames_are_refused(swarm):
    bridge = await swarm.add_bridge()
    client = new_client(bridge)
    with pytest.raises(NotConnected):
        await client.send_control(PeersRequest())
    async with cart(bridge) as a:
        with pytest.raises(ValueError, match="exceeds"):
            await a.send_to(Identity.generate().node_id, bytes(MAX_FRAME))


async def test_close_says_bye_and_the_bridge_records_why(swarm):
    bridge = await swarm.add_bridge()
    async with cart(bridge) as a, cart(bridge) as b:
        await b.send_message(a.node_id, Heartbeat(seq=1))
        await within(a.inbox.get(), "a first message from B")
        await a.send_message(b.node_id, Heartbeat(seq=2))
        await within(b.inbox.get(), "A's answer, so the bridge knows A talks to B")
        await b.close("end of shift")
        notice = await within(a.undeliverable.get(), "A being told that B, whom it talked to, left")
        assert bridge.metrics.registry.get_sample_value("fedcart_bridge_departures_total", {"how": "bye"}) == 1
    assert notice.to == b.node_id and "said bye (end of shift)" in notice.reason


async def test_client_rides_out_a_bridge_outage_and_fails_pending_work_meanwhile(swarm):
    bridge = await swarm.add_bridge()
    port, data_dir = bridge.port, bridge.settings.data_dir
    async with cart(bridge) as a, cart(bridge) as b:
        swallowed: asyncio.Queue[object] = asyncio.Queue()
        b.transfers.handle = _swallower(swallowed)
        sending = asyncio.create_task(a.transfers.send_blob(b.node_id, os.urandom(100_000), "update"))
        assert isinstance(await within(swallowed.get(), "B receiving the manifest"), TransferManifest)
        await bridge.stop("maintenance")
        with pytest.raises(TransferError, match="connection to the bridge was lost"):
            await within(sending, "the pending transfer failing when the bridge went away")
        assert not a.connected.is_set()
        with pytest.raises(NotConnected):
            await a.send_message(b.node_id, Heartbeat(seq=1))
        again = Bridge(bridge.settings.model_copy(update={"port": port, "data_dir": data_dir}))
        swarm.bridges[0] = again
        await again.start()
        await until(lambda: {a.node_id, b.node_id} <= set(again.directory.local), "the carts never came back", again)
        await within(a.connected.wait(), "A reconnecting")
        await within(b.connected.wait(), "B reconnecting")
        await a.send_message(b.node_id, Heartbeat(seq=2))
        assert (await within(b.inbox.get(), "a message after the outage")).message == Heartbeat(seq=2)
    assert a.sessions == 2 and b.sessions == 2


def _swallower(into: asyncio.Queue[object]):
    """A receiver that takes transfers in and never answers them (so they stay in flight)."""

    async def swallow(_peer: str, item: object) -> bool:
        if isinstance(item, (TransferManifest, frames.Chunk)):
            into.put_nowait(item)
            return True
        return False

    return swallow


async def test_fedcart_bridge_process_tells_carts_bye_on_sigterm(tmp_path):
    env = {**os.environ, "HEARTBEAT_INTERVAL": "1", "DHT_TIMEOUT": "0.5", "SHUTDOWN_GRACE": "1"}
    proc = await asyncio.create_subprocess_exec(
        *bridge_argv(enrol(tmp_path / "b")),
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=tmp_path,
    )
    try:
        url = await within(_announced_url(proc), "the bridge process announcing its URL")
        async with raw_cart(url) as ws:
            proc.send_signal(signal.SIGTERM)
            bye = await receive_control(ws, DEADLINE)
        assert isinstance(bye, Bye) and "shutting down" in bye.reason
        assert await within(proc.wait(), "the bridge process exiting after SIGTERM") == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def _announced_url(proc: asyncio.subprocess.Process) -> str:
    while line := await proc.stderr.readline():
        found = re.search(r"relay (http://\S+)", line.decode())
        if found:
            return found.group(1)
    raise AssertionError("the bridge process exited without announcing its URL")


async def test_a_full_bridge_turns_carts_away_for_now_not_for_good(swarm):
    bridge = await swarm.add_bridge(max_carts=1)
    turned_away = asyncio.Event()
    refuse = bridge.gate._refuse

    async def noting_refusal(ws, why, code, remote):
        await refuse(ws, why, code, remote)
        turned_away.set()

    bridge.gate._refuse = noting_refusal
    async with cart(bridge) as first:
        waiting = new_client(bridge, backoff=Backoff(initial=0.05, maximum=0.2))
        await waiting.start()
        try:
            await within(turned_away.wait(), "the second cart being turned away")
            assert waiting.failure is None and not waiting.closed.is_set(), "a full bridge must not be a final refusal"
            await first.close()
            await within(waiting.connected.wait(), "the waiting cart getting in once there is room")
        finally:
            await waiting.close()
    assert bridge.metrics.registry.get_sample_value("fedcart_bridge_rejects_total", {"reason": "bridge_full"}) >= 1


# --- failover between bridges (issue 14, finding 10) -------------------------------------------------


async def test_a_cart_fails_over_to_its_next_bridge_when_its_bridge_dies_and_announces_itself_there(swarm):
    b1 = await swarm.add_bridge()
    b2 = await swarm.add_bridge()
    async with cart([b1.url, b2.url]) as a, cart(b2) as b:
        assert a.bridge_id == b1.node_id, "the primary, first in the list, is dialed first"
        await a.announce(ready=True, task="recommend")
        await b1.stop("dying")
        await within(a.disconnected.wait(), "A noticing that its bridge went away")
        await within(a.connected.wait(), "A being admitted by its second bridge")
        assert a.bridge_id == b2.node_id and a.url == ws_url(b2.url) and a.sessions == 2
        await until(lambda: a.node_id in b2.directory.presences, "A never announced itself on bridge 2", b2)
        record = b2.directory.presences[a.node_id].record
        assert record.bridge_id == b2.node_id and record.ready and record.task == "recommend", record
        await b.send_message(a.node_id, Heartbeat(seq=3))
        assert (await within(a.inbox.get(), "B reaching A on its new bridge")).message == Heartbeat(seq=3)


async def test_a_refused_dial_moves_on_to_the_next_bridge_at_once(swarm):
    bridge = await swarm.add_bridge()
    with socket.socket() as probe:  # a port nothing listens on: the dial is refused
        probe.bind(("127.0.0.1", 0))
        nobody = f"http://127.0.0.1:{probe.getsockname()[1]}"
    # a second failed dial before the good bridge would cost 25 s or more: only moving on at once gets in within DEADLINE
    slow_after_one_pass = Backoff(initial=0.05, maximum=60.0, factor=1000.0)
    async with cart([nobody, bridge.url], backoff=slow_after_one_pass) as a:
        assert a.bridge_id == bridge.node_id and a.url == ws_url(bridge.url)
        assert a.sessions == 1


async def test_a_certificate_refusal_rules_out_that_bridge_only_until_every_bridge_said_it(swarm):
    """A bridge that refuses the cart's token is not dialed again while another admits it; a certificate every
    bridge refuses (expired) ends the client after one pass over the list, not at the first bridge's word."""
    picky = await swarm.add_bridge(swarm_token="an-extra-secret-for-b1")
    other = await swarm.add_bridge()
    async with cart([picky.url, other.url], swarm_token="not-the-extra-secret") as a:
        assert a.bridge_id == other.node_id
        assert list(a.refused_by) == [ws_url(picky.url)], a.refused_by
        assert "wrong swarm token" in a.refused_by[ws_url(picky.url)].reason
        assert a.failure is None and not a.closed.is_set()
        await other.stop("dying")
        await within(a.disconnected.wait(), "A noticing that its only admitting bridge went away")
        assert not a.closed.is_set(), "a bridge that is down has not refused anyone: keep dialing it"
    third = await swarm.add_bridge()
    identity = Identity.generate()
    expired = certificate(identity, days=1, now=presence.now_ms() - 3 * 24 * 3600 * 1000)
    late = BridgeClient(identity, [picky.url, third.url], expired, backoff=FAST_BACKOFF)
    await late.start()
    try:
        with pytest.raises(AdmissionRefused, match="certificate expired"):
            await late.wait_connected(DEADLINE)
    finally:
        await late.close()
    assert late.sessions == 0 and set(late.refused_by) == {ws_url(picky.url), ws_url(third.url)}, late.refused_by
