"""A local swarm as child processes: B bridges in one DHT and N carts, each with its own data.

`fedcart swarm` and `make run` use it. Each node is a real `fedcart bridge` /
`fedcart node` process with its own data dir under the swarm root; carts are
seeded once with their own synthetic shoppers (non-IID by `skew`). A swarm
authority is created under the root at first start (`authority/`) and every node
is enrolled in it (and re-enrolled when its certificate nears its end), so the
nodes are members without the user running `fedcart enrol` by hand. A child that
dies is restarted with backoff (reset once it has stayed up `STABLE_SECONDS`),
so killing any one process heals by itself.

Each child runs in a session of its own, so a Ctrl-C in the terminal reaches the
supervisor alone: it stops restarting first, then stops the carts, then the
bridges, all within `STOP_SECONDS` (a child that does not stop within its
grace is killed: the stores acknowledge a write only once it is on disk). A
child also gets SIGTERM if the supervisor itself dies (Linux: PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import secrets
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cartnet.authority import Authority, ensure_enrolled
from cartnet.files import write_atomic

log = logging.getLogger(__name__)

RESTART_BACKOFF = (1.0, 2.0, 5.0, 10.0)
STABLE_SECONDS = 30.0
"""A child that stayed up this long is healthy again: its next restart waits the first delay."""
CART_GRACE = 2.5
BRIDGE_GRACE = 1.0
STOP_SECONDS = CART_GRACE + BRIDGE_GRACE + 1.0
"""Ctrl-C to the supervisor's exit, at most: carts get CART_GRACE to stop, then bridges BRIDGE_GRACE, then kills."""
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
    task: str = "recommend"
    secure_aggregation: bool = False
    """Switch secure aggregation on in every cart's stored round settings at start (the admin page can switch it off)."""

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
    """Give every cart its own synthetic rows for the swarm's task and its round settings, once (restarts keep
    their data): shoppers' purchases for `recommend`, device telemetry for the IoT tasks."""
    from child_cart.rounds import settings as round_settings
    from child_cart.store import open_store

    collection, data, fill = synthetic_rows(plan)
    for i, rows in enumerate(data):
        store = open_store(plan.cart_dir(i))
        try:
            if store.collection(collection).count_documents({}) == 0:
                fill(store, rows)
                round_settings.save(store, {"schedule_seconds": plan.round_seconds})
                log.info("seeded cart-%d with %d %s rows for %s", i, len(rows), collection, plan.task)
            if plan.secure_aggregation:
                round_settings.save(store, {"secure_aggregation": True})
        finally:
            store.close()


def synthetic_rows(plan: SwarmPlan) -> tuple[str, list[list[dict]], Callable[..., object]]:
    """(the collection the swarm's task learns from, every cart's rows, the function that writes them)."""
    from child_cart.tasks.iot.detector import DetectionTask
    from child_cart.tasks.registry import get_task

    task = get_task(plan.task)
    if not isinstance(task, DetectionTask):
        from child_cart.store import load_catalogue
        from child_cart.synth import shoppers

        rows = shoppers.generate(load_catalogue(), plan.rows, plan.carts, plan.seed, plan.skew)
        return "purchases", rows, shoppers.fill_store
    from child_cart.synth import traffic, weather
    from child_cart.tasks.iot import rows as telemetry

    generate = traffic.generate if task.schema == telemetry.TRAFFIC else weather.generate
    return telemetry.COLLECTION, generate(plan.rows, plan.carts, plan.seed), telemetry.fill_store


@dataclass
class Backoff:
    """How long to wait before restarting a child that exited: longer after each quick failure, reset by uptime."""

    delays: tuple[float, ...] = RESTART_BACKOFF
    stable_after: float = STABLE_SECONDS
    failures: int = 0

    def after_exit(self, uptime: float) -> float:
        """The wait before the next start of a child that ran for `uptime` seconds."""
        if uptime >= self.stable_after:
            self.failures = 0
        delay = self.delays[min(self.failures, len(self.delays) - 1)]
        self.failures += 1
        return delay


@dataclass
class Child:
    """One supervised process: restarted with backoff whenever it exits while the swarm is not stopping."""

    name: str
    command: list[str]
    env: dict[str, str]
    log_path: Path
    process: asyncio.subprocess.Process | None = None
    restarts: int = 0
    backoff: Backoff = field(default_factory=Backoff)
    clock: Callable[[], float] = time.monotonic

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def supervise(self, stopping: asyncio.Event) -> None:
        """Run the child until `stopping` is set; restart it (after its back-off) whenever it exits before."""
        while not stopping.is_set():
            started = self.clock()
            with self.log_path.open("ab") as out:
                self.process = await asyncio.create_subprocess_exec(
                    *self.command,
                    env=self.env,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=out,
                    stderr=out,
                    start_new_session=True,  # the terminal's Ctrl-C is for the supervisor, which stops us in order
                    preexec_fn=_die_with_parent,
                )
            if stopping.is_set():  # the swarm stopped while this start was under way
                self.terminate()
            code = await self.process.wait()
            if stopping.is_set():
                return
            delay = self.backoff.after_exit(self.clock() - started)
            log.warning("%s exited with %s; restarting in %.0fs (log: %s)", self.name, code, delay, self.log_path)
            self.restarts += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), delay)

    def terminate(self) -> None:
        if self.running:
            assert self.process is not None
            with contextlib.suppress(ProcessLookupError):
                self.process.terminate()

    def kill(self) -> None:
        if self.running:
            assert self.process is not None
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM when the supervisor dies, however it dies (Linux only)."""
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def admin_password(plan: SwarmPlan) -> str:
    """One admin password for every cart of the local swarm, made at first start and kept (0600) under the root."""
    path = plan.root / "admin_password"
    write_atomic(path, secrets.token_urlsafe(12).encode("ascii"), private=True, exclusive=True)
    return path.read_text().strip()


def password_hint(plan: SwarmPlan) -> str:
    """What every cart's login page says about where the password is."""
    return (
        "The admin password of every cart of this swarm is printed in the terminal running `fedcart swarm` "
        f"(make run) and kept in {plan.root / 'admin_password'}."
    )


def children(plan: SwarmPlan) -> list[Child]:
    """Carts first: they are started (and their UIs answer) before the bridges take their share of the CPU."""
    from werkzeug.security import generate_password_hash

    logs = plan.root / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "UI_ADMIN_PASSWORD_HASH": generate_password_hash(admin_password(plan)),
        "UI_ADMIN_PASSWORD_HINT": password_hint(plan),
    }
    cart_env = {**env, "TASK": plan.task}
    kids = [Child(f"cart-{i}", plan.cart_command(i), cart_env, logs / f"cart-{i}.log") for i in range(plan.carts)]
    kids += [Child(f"bridge-{i}", plan.bridge_command(i), env, logs / f"bridge-{i}.log") for i in range(plan.bridges)]
    return kids


@dataclass(frozen=True)
class Stopped:
    """What stopping the swarm did: how many processes it stopped, which of them had to be killed."""

    processes: int
    killed: list[str]
    seconds: float

    def line(self, root: Path) -> str:
        killed = f" ({', '.join(self.killed)} killed after their grace)" if self.killed else ""
        return f"stopped {self.processes} processes{killed}; data kept in {root}"


async def run_swarm(
    plan: SwarmPlan,
    stop: asyncio.Event,
    started: Callable[[list[Child]], object] | None = None,
    kids: list[Child] | None = None,
) -> Stopped:
    """Start every child, call `started(kids)`, keep them alive until `stop` is set, then stop them (carts before
    bridges) within STOP_SECONDS. Nothing is restarted once `stop` is set."""
    kids = kids if kids is not None else children(plan)
    supervisors = [asyncio.create_task(kid.supervise(stop), name=f"supervise-{kid.name}") for kid in kids]
    try:
        if started is not None:
            started(kids)
        await stop.wait()
    finally:
        stop.set()
        report = await stop_children(kids)
        await asyncio.gather(*supervisors, return_exceptions=True)
    return report


async def stop_children(kids: list[Child]) -> Stopped:
    """SIGTERM the carts and give them CART_GRACE, then the bridges BRIDGE_GRACE; kill whoever is left."""
    began = time.monotonic()
    killed: list[str] = []
    carts = [kid for kid in kids if not kid.name.startswith("bridge")]
    bridges = [kid for kid in kids if kid.name.startswith("bridge")]
    for group, grace in ((carts, CART_GRACE), (bridges, BRIDGE_GRACE)):
        for kid in group:
            kid.terminate()
        killed += await _reap(group, grace)
    return Stopped(len(kids), killed, time.monotonic() - began)


async def _reap(group: list[Child], grace: float) -> list[str]:
    """Wait up to `grace` for every process of `group` to exit; kill the rest; their names."""
    waits = [asyncio.ensure_future(kid.process.wait()) for kid in group if kid.process is not None]
    if waits:
        await asyncio.wait(waits, timeout=grace)
    late = [kid for kid in group if kid.running]
    for kid in late:
        log.warning("%s did not stop within %.1fs: killing it", kid.name, grace)
        kid.kill()
    for kid in late:
        assert kid.process is not None
        await kid.process.wait()
    for wait in waits:
        wait.cancel()
    return [kid.name for kid in late]
