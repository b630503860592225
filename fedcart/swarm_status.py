"""The live state of a local swarm, read from what every node serves already.

A cart: `/api/health` (503 `starting` while it loads its model runtime, then
`ok` and whether its bridge admitted it) and, once it is up, its admin API
(`/api/rounds`, logged in with the swarm's admin password) for the rounds it
accepted, the held-out score of the model it kept last and the peers that
answered. A bridge: `/health` (its carts, the swarm's, its links). The
supervisor's own view of each process (running, waiting to restart) comes first:
a node whose process is down is shown down whatever its port said last.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from fedcart.local_swarm import Child, SwarmPlan

log = logging.getLogger(__name__)

POLL_SECONDS = 2.0
REQUEST_TIMEOUT = 3.0
FIRST_ROUNDS = 1000
"""Rounds read at the first look at a cart (the whole log, for the count); later looks read the newest NEXT_ROUNDS."""
NEXT_ROUNDS = 20


@dataclass
class NodeStatus:
    """One row of the status table."""

    name: str
    kind: str  # "cart" or "bridge"
    state: str = "starting"  # starting, up, down, restarting
    detail: str = ""
    rounds: int | None = None
    accepted: int | None = None
    metric: str = ""
    score: float | None = None
    peers: str = ""
    restarts: int = 0

    def line(self) -> str:
        """The row as one line (what a terminal without live updates gets)."""
        parts = [f"{self.name}: {self.state}" + (f" ({self.detail})" if self.detail else "")]
        if self.accepted is not None:
            parts.append(f"{self.accepted} of {self.rounds} rounds accepted")
        if self.score is not None:
            parts.append(f"held-out {self.metric} {self.score:.3f}")
        if self.peers:
            parts.append(f"peers: {self.peers}")
        if self.restarts:
            parts.append(f"{self.restarts} restarts")
        return "; ".join(parts)


@dataclass
class CartProbe:
    """What we know of one cart's rounds, kept between looks."""

    base: str
    password: str
    logged_in: bool = False
    seen: dict[int, bool] = field(default_factory=dict)  # round number -> accepted
    last: dict[str, Any] | None = None


class SwarmStatus:
    """Polls every node of `plan`; `look()` returns one `NodeStatus` per node, carts first."""

    def __init__(self, plan: SwarmPlan, password: str, kids: list[Child] | None = None) -> None:
        self.plan = plan
        self.kids = {kid.name: kid for kid in kids or []}
        self.carts = {f"cart-{i}": CartProbe(plan.cart_url(i), password) for i in range(plan.carts)}
        self.bridges = {f"bridge-{i}": plan.bridge_url(i) for i in range(plan.bridges)}
        self._sessions: dict[str, aiohttp.ClientSession] = {}

    async def close(self) -> None:
        for session in self._sessions.values():
            await session.close()
        self._sessions.clear()

    def _session(self, name: str) -> aiohttp.ClientSession:
        """One session (cookie jar) per node: each cart's admin login is its own."""
        if name not in self._sessions:
            self._sessions[name] = aiohttp.ClientSession(
                cookie_jar=aiohttp.CookieJar(unsafe=True), timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
            )
        return self._sessions[name]

    async def look(self) -> list[NodeStatus]:
        looks = [self._cart(name, probe) for name, probe in self.carts.items()]
        looks += [self._bridge(name, url) for name, url in self.bridges.items()]
        return list(await asyncio.gather(*looks))

    async def run(self, stop: asyncio.Event, show: Callable[[list[NodeStatus]], object]) -> None:
        """`show` every look, every POLL_SECONDS, until `stop` is set."""
        try:
            while not stop.is_set():
                show(await self.look())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), POLL_SECONDS)
        finally:
            await self.close()

    def _process(self, status: NodeStatus) -> bool:
        """Fill in what the supervisor knows; False when the process is not running (no port to ask)."""
        kid = self.kids.get(status.name)
        if kid is None:
            return True
        status.restarts = kid.restarts
        if kid.running:
            return True
        status.state = "restarting" if kid.process is not None else "starting"
        return False

    async def _cart(self, name: str, probe: CartProbe) -> NodeStatus:
        status = NodeStatus(name, "cart")
        if not self._process(status):
            self._describe_rounds(status, probe)
            return status
        session = self._session(name)
        try:
            async with session.get(f"{probe.base}/api/health") as response:
                health = await response.json(content_type=None)
            if health.get("status") != "ok":
                status.state = "starting"
                status.detail = str(health.get("message", "")).removeprefix("starting: ")
            else:
                status.state = "up"
                status.detail = "" if health.get("connected") else "no bridge yet"
                await self._read_rounds(session, probe)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            probe.logged_in = False
            status.state = "starting"
            log.debug("%s: %s", name, exc)
        self._describe_rounds(status, probe)
        return status

    async def _read_rounds(self, session: aiohttp.ClientSession, probe: CartProbe) -> None:
        if not probe.logged_in:
            async with session.get(f"{probe.base}/api/csrf") as response:
                token = (await response.json())["csrf_token"]
            async with session.post(
                f"{probe.base}/api/login", json={"password": probe.password}, headers={"X-CSRFToken": token}
            ) as response:
                if response.status != 200:
                    return
            probe.logged_in = True
        limit = NEXT_ROUNDS if probe.seen else FIRST_ROUNDS
        async with session.get(f"{probe.base}/api/rounds", params={"limit": str(limit)}) as response:
            if response.status == 401:
                probe.logged_in = False
                return
            rounds = (await response.json())["rounds"]
        for record in rounds:
            probe.seen[int(record["round"])] = bool(record.get("accepted"))
        if rounds:
            probe.last = rounds[-1]

    @staticmethod
    def _describe_rounds(status: NodeStatus, probe: CartProbe) -> None:
        if not probe.seen:
            return
        status.rounds, status.accepted = len(probe.seen), sum(probe.seen.values())
        last = probe.last or {}
        status.metric = str(last.get("metric") or "accuracy")
        score = (last.get("kept_metrics") or {}).get(status.metric)
        status.score = float(score) if isinstance(score, int | float) else None
        asked = last.get("peers_asked") or []
        answered = {*(last.get("peers_answered") or []), *(last.get("received") or {})}  # masked rounds: received only
        status.peers = f"{len(answered)}/{len(asked)} answered"

    async def _bridge(self, name: str, url: str) -> NodeStatus:
        status = NodeStatus(name, "bridge")
        if not self._process(status):
            return status
        try:
            async with self._session(name).get(f"{url}/health") as response:
                health = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError):
            status.state = "starting"
            return status
        status.state = "up" if health.get("status") == "ok" else str(health.get("status"))
        status.peers = (
            f"{health.get('carts', 0)} carts ({health.get('swarm_carts', 0)} in swarm), "
            f"{health.get('bridges_linked', 0)} links"
        )
        return status
