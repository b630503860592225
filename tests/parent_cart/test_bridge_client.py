"""BridgeClient on its own: backoff, reconnecting to a bridge that comes back, failing fast while it is gone,
and the real `fedcart bridge` process shutting down gracefully on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import re
import signal

import pytest
from bridgekit import DEADLINE, cart, enrol, new_client, raw_cart, until, within

from cartnet import frames
from cartnet.client import Backoff, NotConnected
from cartnet.handshake import MAX_FRAME, receive_control
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
