"""A local swarm as child processes: B bridges in one DHT and N carts, each with its own data.

`fedcart swarm` and `make run` use it. Each node is a real `fedcart bridge` /
`fedcart node` process with its own data dir under the swarm root; carts are
seeded once with their own synthetic shoppers (non-IID by `skew`). A swarm
authority is created under the root at first start (`authority/`) and every node
is enrolled in it (and re-enrolled when its certificate nears its end), so the
nodes are members without the user running `fedcart enrol` by hand. A child that
dies is restarted with backoff, so killing any one process heals by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

from cartnet.authority import Authority, ensure_enrolled
from cartnet.files import write_atomic

log = logging.getLogger(__name__)

RESTART_BACKOFF = (1.0, 2.0, 5.0, 10.0)
LOCAL_DAYS = 30.0
"""Validity of a local node's certificate; each start re-enrols nodes with less than a day left."""


@dataclass(frozen=True)
class SwarmPlan:
    """Ports and folders of every node; node i of a kind gets base port + i."""

    root: Path
    bridges: int = 2
    carts: int = 3
    host: str = "127.0.0.1"
    bridge_port: int = 8470
    dht_port: int = 8460
    ui_port: int = 5000
    rows: int = 600
    skew: float = 1.0
    seed: int = 0
    round_seconds: float = 20.0

    def bridge_url(self, i: int) -> str:
        return f"http://{self.host}:{self.bridge_port + i}"

    def cart_url(self, i: int) -> str:
        return f"http://{self.host}:{self.ui_port + i}"

    def bridge_command(self, i: int) -> list[str]:
        bootstrap = ",".join(f"{self.host}:{self.dht_port + j}" for j in range(self.bridges) if j != i)
        return [
            *bridge_argv(self.bridge_dir(i), self.bridge_port + i, self.dht_port + i, bootstrap),
            "--host",
            self.host,
        ]

    def cart_command(self, i: int) -> list[str]:
        return [
            *_fedcart(),
            "node",
            "--data-dir",
            str(self.cart_dir(i)),
            "--bridge",
            ",".join(self.cart_bridges(i)),
            "--ui-port",
            str(self.ui_port + i),
        ]

    def cart_bridges(self, i: int) -> list[str]:
        """Every bridge's URL, cart i's primary (bridge i mod B) first: the cart fails over along them."""
        return [self.bridge_url((i + j) % self.bridges) for j in range(self.bridges)]

    def cart_dir(self, i: int) -> Path:
        return self.root / f"cart-{i}"

    def bridge_dir(self, i: int) -> Path:
        return self.root / f"bridge-{i}"

    @property
    def authority_dir(self) -> Path:
        return self.root / "authority"


def _fedcart() -> list[str]:
    return [sys.executable, "-m", "fedcart"]


def bridge_argv(data_dir: Path, port: int = 0, dht_port: int = 0, bootstrap: str = "") -> list[str]:
    """The command line of one bridge process (port 0: any free port); tests and benches start bridges with it too."""
    command = [*_fedcart(), "bridge", "--port", str(port), "--dht-port", str(dht_port), "--data-dir", str(data_dir)]
    return [*command, "--bootstrap", bootstrap] if bootstrap else command


def enrol_nodes(plan: SwarmPlan) -> Authority:
    """The local swarm's authority (created at first start) with every bridge and cart enrolled in it."""
    authority = Authority.load_or_create(plan.authority_dir)
    for i in range(plan.bridges):
        ensure_enrolled(authority, plan.bridge_dir(i), "bridge", LOCAL_DAYS)
    for i in range(plan.carts):
        ensure_enrolled(authority, plan.cart_dir(i), "cart", LOCAL_DAYS)
    log.info("swarm %s: %d bridges and %d carts enrolled", authority.swarm.swarm_id, plan.bridges, plan.carts)
    return authority


def seed_carts(plan: SwarmPlan) -> None:
    """Give every cart its own synthetic shoppers and round settings, once (restarts keep their data)."""
    from child_cart.rounds import settings as round_settings
    from child_cart.store import load_catalogue, open_store
    from child_cart.synth import shoppers as synth

    catalogue = load_catalogue()
    data = synth.generate(catalogue, plan.rows, plan.carts, plan.seed, plan.skew)
    for i, rows in enumerate(data):
        store = open_store(plan.cart_dir(i))
        try:
            if store.purchases.count_documents({}) == 0:
                synth.fill_store(store, rows)
                round_settings.save(store, {"schedule_seconds": plan.round_seconds})
                log.info("seeded cart-%d with %d purchases", i, len(rows))
        finally:
            store.close()


@dataclass
class Child:
    """One supervised process: restarted with backoff whenever it exits unasked."""

    name: str
    command: list[str]
    env: dict[str, str]
    log_path: Path
    process: asyncio.subprocess.Process | None = None
    restarts: int = 0
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

    async def supervise(self) -> None:
        while not self.stopping.is_set():
            with self.log_path.open("ab") as out:
                self.process = await asyncio.create_subprocess_exec(*self.command, env=self.env, stdout=out, stderr=out)
                code = await self.process.wait()
            if self.stopping.is_set():
                return
            delay = RESTART_BACKOFF[min(self.restarts, len(RESTART_BACKOFF) - 1)]
            log.warning("%s exited with %s; restarting in %.0fs (log: %s)", self.name, code, delay, self.log_path)
            self.restarts += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), delay)

    async def stop(self, grace: float = 10.0) -> None:
        self.stopping.set()
        if self.process is None or self.process.returncode is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), grace)
        except TimeoutError:
            log.warning("%s did not stop within %.0fs: killing it", self.name, grace)
            self.process.kill()
            await self.process.wait()


def admin_password(plan: SwarmPlan) -> str:
    """One admin password for every cart of the local swarm, made at first start and kept (0600) under the root."""
    path = plan.root / "admin_password"
    write_atomic(path, secrets.token_urlsafe(12).encode("ascii"), private=True, exclusive=True)
    return path.read_text().strip()


def children(plan: SwarmPlan) -> list[Child]:
    from werkzeug.security import generate_password_hash

    logs = plan.root / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "UI_ADMIN_PASSWORD_HASH": generate_password_hash(admin_password(plan)),
    }
    kids = [Child(f"bridge-{i}", plan.bridge_command(i), env, logs / f"bridge-{i}.log") for i in range(plan.bridges)]
    kids += [Child(f"cart-{i}", plan.cart_command(i), env, logs / f"cart-{i}.log") for i in range(plan.carts)]
    return kids


async def run_swarm(plan: SwarmPlan, stop: asyncio.Event) -> None:
    """Start every child, keep them alive until `stop` is set, then stop carts before bridges."""
    kids = children(plan)
    supervisors = [asyncio.create_task(kid.supervise()) for kid in kids]
    try:
        await stop.wait()
    finally:
        for kid in reversed(kids):
            await kid.stop()
        await asyncio.gather(*supervisors, return_exceptions=True)
