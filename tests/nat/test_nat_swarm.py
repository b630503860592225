"""Carts behind real NAT, run with docker-compose.yml's own settings: rounds go through the bridges,
and no cart can dial another.

The services of docker-compose.yml (2 bridges, 3 carts) run as real `fedcart bridge` / `fedcart node`
processes, each in its own network namespace; every cart sits behind its own masquerading router
namespace (natlab.py has the addresses and rules). Each process gets its compose service's container
environment (.env from .env.example under `environment:`), so BRIDGE_URLS, PUBLIC_URL, BRIDGE_BOOTSTRAP,
HOST/UI_HOST and the ports are the compose file's, with the service names resolving through per-namespace
hosts files. What differs from the containers: DATA_DIR (a temp folder), no MONGO_URL (no mongod here:
the embedded store, seeded as `fedcart swarm` seeds it), UI_WEB_DIR (the checkout's web/) and a short
round schedule.

The test reads each cart's live event stream from inside that cart's namespace (the only place its UI
can be reached from) and waits, with a deadline, for a round that used peers' updates through both
bridges. Then it shows that the UI port that answers inside cart 1's namespace cannot be reached from
cart 0's, neither at its private address nor at its router's public one, nor from a bridge.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import natlab
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "compose"))
import composefile as cf  # noqa: E402  (tests/compose's reader of docker-compose.yml)

pytestmark = [pytest.mark.netns, pytest.mark.slow]

MODEL = cf.resolved()
BRIDGES = sorted(cf.services_of(MODEL, "bridge"))
CARTS = sorted(cf.services_of(MODEL, "cart"))
ROWS, ROUND_SECONDS = 300, 5.0
PASSWORD = "nat-lab-admin"
ROUND_DEADLINE = 150.0
PROBE = Path(__file__).with_name("netprobe.py")
BASE_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")


def service_env(name: str, **overrides: str) -> dict[str, str]:
    """The compose service's container environment, with the changes this machine needs."""
    env = {key: os.environ[key] for key in BASE_ENV if key in os.environ}
    return {**env, **cf.container_environment(MODEL["services"][name]), "PYTHONUNBUFFERED": "1", **overrides}


def ui_port(cart: str) -> int:
    return int(cf.environment(MODEL["services"][cart])["UI_PORT"])


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
        hosts = {name: natlab.bridge_address(j) for j, name in enumerate(BRIDGES)}
        self.net = natlab.NatLab(len(BRIDGES), len(CARTS), hosts)
        self.nodes: list[Node] = []

    def namespace(self, service: str) -> str:
        return self.net.bridge(BRIDGES.index(service)) if service in BRIDGES else self.net.cart(CARTS.index(service))

    async def start(self, service: str, env: dict[str, str]) -> Node:
        """Run the service's compose command (`fedcart <command>`) in its namespace."""
        log = self.root / "logs" / f"{service}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("wb") as out:
            process = await asyncio.create_subprocess_exec(
                *self.net.exec_prefix(self.namespace(service)),
                sys.executable,
                "-m",
                "fedcart",
                *cf.command(MODEL["services"][service]),
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                env=env,
                cwd=self.root,
                preexec_fn=natlab.die_with_parent,  # cwd: no stray .env from the checkout
            )
        node = Node(service, process, log)
        self.nodes.append(node)
        return node

    async def probe(self, namespace: str, *args: object, timeout: float) -> dict:
        """Run netprobe.py inside `namespace`; its own deadline is inside `args`, this one bounds the process."""
        process = await asyncio.create_subprocess_exec(
            *self.net.exec_prefix(namespace),
            sys.executable,
            str(PROBE),
            *map(str, args),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            preexec_fn=natlab.die_with_parent,
        )
        try:
            out, err = await asyncio.wait_for(process.communicate(), timeout)
        except TimeoutError:
            process.kill()
            await process.wait()
            return {"ok": False, "error": f"probe {args[0]} in {namespace} outlived its {timeout:.0f}s deadline"}
        lines = out.decode().strip().splitlines()
        if not lines:
            return {
                "ok": False,
                "error": f"probe {args[0]} in {namespace} printed nothing; stderr: {err.decode()[-2000:]}",
            }
        return json.loads(lines[-1])

    def logs(self) -> str:
        return "\n".join(node.tail() for node in self.nodes)

    async def stop(self) -> None:
        """SIGTERM carts, then bridges; whatever is still running after a grace period is killed."""
        carts = [n for n in self.nodes if n.name in CARTS]
        bridges = [n for n in self.nodes if n.name in BRIDGES]
        for group in (carts, bridges):
            for node in group:
                if node.process.returncode is None:
                    node.process.send_signal(signal.SIGTERM)
            for node in group:
                try:
                    await asyncio.wait_for(node.process.wait(), 20)
                except TimeoutError:
                    node.process.kill()
                    await node.process.wait()


def seed(root: Path) -> list[Path]:
    """Synthetic non-IID shoppers per cart as `fedcart swarm` seeds them (skew as compose's seeder), into each
    cart's own database name (MONGO_DB names the embedded database too), plus a short round schedule."""
    from child_cart.rounds import settings as round_settings
    from child_cart.store import load_catalogue, open_store
    from child_cart.synth import shoppers as synth

    words = cf.command(MODEL["services"]["seed"])
    skew = float(words[words.index("--skew") + 1])
    data = synth.generate(load_catalogue(), ROWS, len(CARTS), 0, skew)
    folders = []
    for cart, rows in zip(CARTS, data):
        folder = root / cart
        store = open_store(folder, mongo_db=cf.environment(MODEL["services"][cart])["MONGO_DB"])
        try:
            synth.fill_store(store, rows)
            round_settings.save(
                store, {"schedule_seconds": ROUND_SECONDS, "k": len(CARTS) - 1, "local_epochs": 2, "peer_timeout": 20.0}
            )
        finally:
            store.close()
        folders.append(folder)
    return folders


def enrol(root: Path, cart_dirs: dict[str, Path]) -> None:
    """What compose's one-shot `authority` and `enrol-*` services do before any node starts, into the temp folders."""
    folders = {**{bridge: root / bridge for bridge in BRIDGES}, **cart_dirs}
    env = {key: os.environ[key] for key in BASE_ENV if key in os.environ}
    for words in cf.enrolment_commands(MODEL, root / "authority", folders):
        done = subprocess.run([sys.executable, "-m", "fedcart", *words], env=env, cwd=root, capture_output=True)
        assert done.returncode == 0, f"`fedcart {' '.join(words)}` failed: {done.stderr.decode()[-2000:]}"


async def first_exit(nodes: list[Node]) -> Node:
    done, pending = await asyncio.wait(
        [asyncio.create_task(n.process.wait(), name=n.name) for n in nodes], return_when=asyncio.FIRST_COMPLETED
    )
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
        cart_dirs = seed(tmp_path)
        enrol(tmp_path, dict(zip(CARTS, cart_dirs)))
        for bridge in BRIDGES:
            await lab.start(bridge, service_env(bridge, DATA_DIR=str(tmp_path / bridge)))
        password_hash = generate_password_hash(PASSWORD, "pbkdf2:sha256:1000")
        for cart, folder in zip(CARTS, cart_dirs):
            await lab.start(
                cart,
                service_env(
                    cart, DATA_DIR=str(folder), MONGO_URL="", UI_WEB_DIR="", UI_ADMIN_PASSWORD_HASH=password_hash
                ),
            )

        # Out through the NAT: every cart reaches its primary bridge at the compose BRIDGE_URLS, name and all, over TLS
        # verified against the swarm CA its enrolment wrote (the certificate is for the bridge's service name).
        reach = await until_all(
            lab,
            [
                lab.probe(
                    lab.namespace(cart),
                    "up",
                    cf.environment(MODEL["services"][cart])["BRIDGE_URLS"].split(",")[0] + "/health",
                    60,
                    folder / "tls" / "ca.pem",
                    timeout=70,
                )
                for cart, folder in zip(CARTS, cart_dirs)
            ],
            "the bridges to answer /health at BRIDGE_URLS from inside the carts' namespaces",
        )
        assert all(r["ok"] for r in reach), f"a cart cannot reach its bridge through its NAT: {reach}\n{lab.logs()}"

        # Rounds: each cart's event stream, read from inside its own namespace.
        rounds = await until_all(
            lab,
            [
                lab.probe(
                    lab.namespace(cart),
                    "round",
                    f"http://127.0.0.1:{ui_port(cart)}",
                    PASSWORD,
                    len(BRIDGES),
                    ROUND_DEADLINE,
                    timeout=ROUND_DEADLINE + 15,
                )
                for cart in CARTS
            ],
            "rounds through the relay",
        )
        missing = [f"{cart}: {r}" for cart, r in zip(CARTS, rounds) if not r["ok"]]
        assert not missing, (
            "no round with peers' updates through both bridges:\n" + "\n".join(missing) + "\n" + lab.logs()
        )

        # No cart reaches another cart's UI: not at its private address, not at its router's public one.
        first, second = CARTS[0], CARTS[1]
        port = ui_port(second)
        own = await lab.probe(lab.namespace(second), "connect", natlab.cart_address(1), port, 5, timeout=15)
        assert own.get("connected"), (
            f"{second}'s UI does not listen on its own LAN address, so the probe proves nothing: {own}"
        )
        direct = await lab.probe(lab.namespace(first), "connect", natlab.cart_address(1), port, 3, timeout=15)
        assert direct["ok"] and not direct["connected"], f"{first} reached {second}'s UI directly: {direct}"
        via_router = await lab.probe(lab.namespace(first), "connect", natlab.router_address(1), port, 3, timeout=15)
        assert via_router["ok"] and not via_router["connected"], (
            f"{second}'s UI is reachable through its router: {via_router}"
        )
        from_bridge = await lab.probe(
            lab.namespace(BRIDGES[0]), "connect", natlab.cart_address(0), ui_port(first), 3, timeout=15
        )
        assert from_bridge["ok"] and not from_bridge["connected"], f"{BRIDGES[0]} reached {first}'s UI: {from_bridge}"

        # And the traffic that did flow went through each router's masquerade rule.
        translated = {cart: lab.net.masqueraded_packets(i) for i, cart in enumerate(CARTS)}
        assert all(translated.values()), (
            f"a cart's traffic bypassed its NAT (masqueraded packets per router: {translated})"
        )
    finally:
        try:
            await lab.stop()
        finally:
            errors = lab.net.destroy()
    assert not errors, f"cleanup failed: {errors}"
