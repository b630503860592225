"""A real `fedcart bridge` process killed with SIGKILL mid-swarm, then started again on the same ports."""

from __future__ import annotations

import asyncio
import os
import re
from dataclasses import dataclass
from pathlib import Path

from bridgekit import cart, enrol, gone_everywhere, listed, seen_everywhere, until, within

from cartnet.messages import Heartbeat
from fedcart.local_swarm import bridge_argv

ENV = {
    "HEARTBEAT_INTERVAL": "1",
    "DHT_TIMEOUT": "0.5",
    "SHUTDOWN_GRACE": "1",
    "REFRESH_INTERVAL": "1",
    "SEND_TIMEOUT": "1",
    "LINK_TIMEOUT": "3",
}


@dataclass
class BridgeProcess:
    proc: asyncio.subprocess.Process
    url: str
    port: int
    dht_port: int


async def start_bridge_process(data_dir: Path, bootstrap: str, port: int = 0, dht_port: int = 0) -> BridgeProcess:
    proc = await asyncio.create_subprocess_exec(
        *bridge_argv(enrol(data_dir), port, dht_port, bootstrap),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **ENV},
        cwd=data_dir.parent,
    )
    while line := (await within(proc.stderr.readline(), "the bridge process announcing itself")).decode():
        if found := re.search(r"relay (http://\S+:(\d+)) dht udp/(\d+)", line):
            return BridgeProcess(proc, found.group(1), int(found.group(2)), int(found.group(3)))
    raise AssertionError(f"bridge process exited with {await proc.wait()} before announcing itself")


async def test_carts_survive_a_sigkilled_bridge_process_and_its_return(swarm, tmp_path):
    b1 = await swarm.add_bridge()
    bootstrap = f"127.0.0.1:{b1.dht_port}"
    b2 = await start_bridge_process(tmp_path / "b2", bootstrap)
    try:
        await until(lambda: len(b1.links.ids()) == 1, "the bridge process never linked to bridge 1", b1)
        async with cart(b1) as a, cart(b2.url) as b:
            await seen_everywhere(b.node_id, b1)
            await a.send_message(b.node_id, Heartbeat(seq=1))
            assert (await within(b.inbox.get(), "a message across the process bridge")).message == Heartbeat(seq=1)

            b2.proc.kill()
            await b2.proc.wait()
            await gone_everywhere(b.node_id, b1)
            await a.send_message(b.node_id, Heartbeat(seq=2))
            notice = await within(a.undeliverable.get(), "an Undeliverable for a cart whose bridge died")
            assert "unreachable" in notice.reason, notice.reason
            await within(b.disconnected.wait(), "cart B noticing its bridge died")

            b2 = await start_bridge_process(tmp_path / "b2", bootstrap, b2.port, b2.dht_port)
            await within(b.connected.wait(), "cart B reconnecting to the restarted bridge process")
            await until(lambda: listed(b1, b.node_id), "cart B never reappeared in bridge 1's directory", b1)
            await a.send_message(b.node_id, Heartbeat(seq=3))
            while (await within(b.inbox.get(), "a message after the bridge came back")).message != Heartbeat(seq=3):
                pass
            assert b.sessions == 2
    finally:
        if b2.proc.returncode is None:
            b2.proc.terminate()
            await b2.proc.wait()
