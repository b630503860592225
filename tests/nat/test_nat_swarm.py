"""Carts behind real NAT: rounds complete through the bridges, and no cart can dial another.

Each cart runs as a real `fedcart node` inside its own network namespace behind
its own masquerading router namespace (see natlab.py for the addresses and
rules); two real `fedcart bridge` processes sit on the public segment. The test
reads each cart's live event stream from inside that cart's namespace (the only
place its UI can be reached from) and waits, with a deadline, for a round that
used updates from peers through both bridges. Then it shows that the same UI
port that answers inside cart 1's namespace cannot be reached from cart 0's,
neither at its private address nor at its router's public one.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

import natlab
import pytest

pytestmark = [pytest.mark.netns, pytest.mark.slow]

BRIDGES, CARTS = 2, 3
RELAY_PORT, DHT_PORT, UI_PORT = 8470, 8468, 5000
ROWS, ROUND_SECONDS = 300, 5.0
TOKEN = "nat-lab-swarm-token"
PASSWORD = "nat-lab-admin"
ROUND_DEADLINE = 150.0
PROBE = Path(__file__).with_name("netprobe.py")


@pytest.fixture(scope="module")
def lab_available() -> None:
    reason = natlab.unavailable_reason()
    if reason:
        pytest.skip(f"NAT lab skipped: {reason}")


@dataclass
class Node:
    name: str
    process: asyncio.subprocess.Process
    log: Path

    def tail(self, lines: int = 25) -> str:
        text = self.log.read_text(errors="replace").splitlines() if self.log.exists() else []
        return f"--- {self.name} ({self.log}) ---\n" + "\n".join(text[-lines:])


class Lab:
    """The namespaces plus the processes started in them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.net = natlab.NatLab(BRIDGES, CARTS)
        self.nodes: list[Node] = []
        self.env = {**os.environ, "SWARM_TOKEN": TOKEN, "PYTHONUNBUFFERED": "1", "LOG_LEVEL": "INFO"}

    async def start(self, name: str, namespace: str, args: list[str], env: dict[str, str] | None = None) -> Node:
        log = self.root / "logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("wb") as out:
            process = await asyncio.create_subprocess_exec(
                *self.net.exec_prefix(namespace), sys.executable, "-m", "fedcart", *args,
                stdout=out, stderr=asyncio.subprocess.STDOUT, env={**self.env, **(env or {})},
                cwd=self.root, preexec_fn=natlab.die_with_parent,  # cwd: no stray .env from the checkout
            )
        node = Node(name, process, log)
        self.nodes.append(node)
        return node

    async def probe(self, namespace: str, *args: object, timeout: float) -> dict:
        """Run netprobe.py inside `namespace`; its own deadline is inside `args`, this one bounds the process."""
        process = await asyncio.create_subprocess_exec(
            *self.net.exec_prefix(namespace), sys.executable, str(PROBE), *map(str, args),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, preexec_fn=natlab.die_with_parent,
        )
        try:
            out, err = await asyncio.wait_for(process.communicate(), timeout)
        except TimeoutError:
            process.kill()
            await process.wait()
            return {"ok": False, "error": f"probe {args[0]} in {namespace} outlived its {timeout:.0f}s deadline"}
        lines = out.decode().strip().splitlines()
        if not lines:
            return {"ok": False, "error": f"probe {args[0]} in {namespace} printed nothing; stderr: {err.decode()[-2000:]}"}
        return json.loads(lines[-1])

    def logs(self) -> str:
        return "\n".join(node.tail() for node in self.nodes)

    async def stop(self) -> None:
        """SIGTERM carts, then bridges; whatever is still running after a grace period is killed."""
        for group in (self.nodes[BRIDGES:], self.nodes[:BRIDGES]):
            for node in group:
                if node.process.returncode is None:
                    node.process.send_signal(signal.SIGTERM)
            for node in group:
                try:
                    await asyncio.wait_for(node.process.wait(), 20)
                except TimeoutError:
                    node.process.kill()
                    await node.process.wait()


def seed(root: Path) -> None:
    """Synthetic non-IID shoppers per cart, as `fedcart swarm` seeds them, plus a short round schedule."""
    from child_cart import round_settings
    from child_cart.store import open_store
    from fedcart.local_swarm import SwarmPlan, seed_carts

    plan = SwarmPlan(root=root, bridges=BRIDGES, carts=CARTS, rows=ROWS, round_seconds=ROUND_SECONDS)
    seed_carts(plan)
    for i in range(CARTS):
        store = open_store(plan.cart_dir(i))
        try:
            round_settings.save(store, {"k": CARTS - 1, "local_epochs": 2, "peer_timeout": 20.0})
        finally:
            store.close()


async def first_exit(nodes: list[Node]) -> Node:
    done, pending = await asyncio.wait([asyncio.create_task(n.process.wait(), name=n.name) for n in nodes],
                                       return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    name = next(iter(done)).get_name()
    return next(n for n in nodes if n.name == name)


async def until_all(lab: Lab, watchers: list, what: str) -> list[dict]:
    """Every watcher's result, unless a node process dies first (then fail at once with its log)."""
    gathered = asyncio.ensure_future(asyncio.gather(*watchers))
    dead = asyncio.ensure_future(first_exit(lab.nodes))
    await asyncio.wait([gathered, dead], return_when=asyncio.FIRST_COMPLETED)
    if not gathered.done():
        gathered.cancel()
        node = dead.result()
        pytest.fail(f"{node.name} exited ({node.process.returncode}) while waiting for {what}\n{lab.logs()}")
    dead.cancel()
    return gathered.result()


async def test_rounds_through_bridges_while_carts_cannot_reach_each_other(lab_available, tmp_path):
    from werkzeug.security import generate_password_hash

    natlab.sweep_stale()
    lab = Lab(tmp_path)
    try:
        lab.net.build()
        seed(tmp_path)
        for b in range(BRIDGES):
            address = natlab.bridge_address(b)
            others = ",".join(f"{natlab.bridge_address(o)}:{DHT_PORT}" for o in range(BRIDGES) if o != b)
            await lab.start(f"bridge-{b}", lab.net.public, [
                "bridge", "--host", address, "--port", str(RELAY_PORT), "--dht-port", str(DHT_PORT),
                "--data-dir", str(tmp_path / f"bridge-{b}"), "--bootstrap", others,
                "--public-url", f"http://{address}:{RELAY_PORT}",
            ])
        cart_env = {"UI_HOST": "0.0.0.0", "UI_ADMIN_PASSWORD_HASH": generate_password_hash(PASSWORD, "pbkdf2:sha256:1000")}
        for i in range(CARTS):
            bridge = f"http://{natlab.bridge_address(i % BRIDGES)}:{RELAY_PORT}"
            await lab.start(f"cart-{i}", lab.net.cart(i), [
                "node", "--data-dir", str(tmp_path / f"cart-{i}"), "--bridge", bridge, "--ui-port", str(UI_PORT),
            ], env=cart_env)

        # Out through the NAT: every cart's namespace reaches every bridge.
        reach = await until_all(lab, [
            lab.probe(lab.net.cart(i), "up", f"http://{natlab.bridge_address(b)}:{RELAY_PORT}/health", 60, timeout=70)
            for i in range(CARTS) for b in range(BRIDGES)
        ], "the bridges to answer /health from inside the carts' namespaces")
        assert all(r["ok"] for r in reach), f"a cart cannot reach a bridge through its NAT: {reach}\n{lab.logs()}"

        # Rounds: each cart's event stream, read from inside its own namespace.
        rounds = await until_all(lab, [
            lab.probe(lab.net.cart(i), "round", f"http://127.0.0.1:{UI_PORT}", PASSWORD, BRIDGES, ROUND_DEADLINE,
                      timeout=ROUND_DEADLINE + 15)
            for i in range(CARTS)
        ], "rounds through the relay")
        missing = [f"cart-{i}: {r}" for i, r in enumerate(rounds) if not r["ok"]]
        assert not missing, "no round with peers' updates through both bridges:\n" + "\n".join(missing) + "\n" + lab.logs()

        # No cart reaches another cart's UI: not at its private address, not at its router's public one.
        own = await lab.probe(lab.net.cart(1), "connect", natlab.cart_address(1), UI_PORT, 5, timeout=15)
        assert own.get("connected"), f"cart 1's UI does not listen on its own LAN address, so the probe proves nothing: {own}"
        direct = await lab.probe(lab.net.cart(0), "connect", natlab.cart_address(1), UI_PORT, 3, timeout=15)
        assert direct["ok"] and not direct["connected"], f"cart 0 reached cart 1's UI directly: {direct}"
        via_router = await lab.probe(lab.net.cart(0), "connect", natlab.router_address(1), UI_PORT, 3, timeout=15)
        assert via_router["ok"] and not via_router["connected"], f"cart 1's UI is reachable through its router: {via_router}"
        from_bridge_side = await lab.probe(lab.net.public, "connect", natlab.cart_address(0), UI_PORT, 3, timeout=15)
        assert from_bridge_side["ok"] and not from_bridge_side["connected"], f"the public segment reached cart 0: {from_bridge_side}"

        # And the traffic that did flow went through each router's masquerade rule.
        translated = {i: lab.net.masqueraded_packets(i) for i in range(CARTS)}
        assert all(translated.values()), f"a cart's traffic bypassed its NAT (masqueraded packets per router: {translated})"
    finally:
        try:
            await lab.stop()
        finally:
            errors = lab.net.destroy()
    assert not errors, f"cleanup failed: {errors}"
