"""The simulated carts as one group the simulator drives, wherever they run.

`fedcart simulate` asks its carts for a few things: run a round, count the
bytes on the wire, score their kept models. `LocalCarts` answers for carts on
this process's event loop; a Ray actor hosts one `LocalCarts` per process and
`fedcart.raysim.RayCarts` fans the same calls out over the actors. A round is
split in two calls (`begin_round`, `finish_round`) so the driver can hold every
cart, in every process, between training and exchange: each round's updates
are on offer before anyone asks, as the in-process barrier ensures.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import NamedTuple, Protocol

import numpy as np

from child_cart.node import CartNode
from child_cart.rounds.learner import PERSONAL
from child_cart.rounds.roundlog import RoundRecord
from fedcart.inprocess import open_carts, wait_listed
from parent_cart.bridge import Bridge

log = logging.getLogger(__name__)

Scores = list[dict[str, float]]
BACKENDS = ("inprocess", "ray")


class Wire(NamedTuple):
    """Bytes on the wire, WebSocket headers included, counted two ways."""

    at_carts: int
    """Every frame the carts sent or received: a frame relayed from cart to cart counts at both (two hops)."""
    sent: int
    """Each frame once, where it started (a cart, or a bridge for what it says itself): as Flower counts its
    payload, each array once."""

    def __sub__(self, other: tuple[int, ...]) -> Wire:
        return Wire(self.at_carts - other[0], self.sent - other[1])


class CartGroup(Protocol):
    """What the simulator needs from its carts; every list is in cart order."""

    async def run_round(self) -> list[RoundRecord]: ...

    async def wire_bytes(self) -> Wire: ...

    async def scores_on(self, x: np.ndarray, y: np.ndarray, swarm: bool = False) -> Scores: ...

    async def own_scores(self) -> Scores: ...

    async def own_val(self) -> list[tuple[np.ndarray, np.ndarray]]: ...

    async def personal_scores(self, kept: bool, epochs: int, head: bool) -> Scores: ...

    async def stop(self) -> None: ...


class LocalCarts:
    """Real CartNodes on this process's loop (one TensorFlow runtime for all of them)."""

    def __init__(self, nodes: list[CartNode] | None = None, wave: int = 0) -> None:
        """`wave` > 0 lets carts exchange that many at a time once all have trained (0: all at once): a
        thousand peer-list requests at once, on 2 busy cores, miss the cart's 10 s directory deadline."""
        self.nodes = nodes or []
        self.wave = wave
        self._releases: list[asyncio.Event] = []
        self._rounds: list[asyncio.Task[RoundRecord]] = []
        self.failed = 0

    async def open(
        self, data: list[list[dict]], bridge_urls: list[str], root: Path, round_options: dict[str, object], first: int
    ) -> int:
        """Start carts `first`... on this loop, connected to the bridges; returns how many."""
        self.nodes = await open_carts(data, bridge_urls, root, round_options, first=first)
        return len(self.nodes)

    async def begin_round(self) -> None:
        """Start a round on every cart; return once each has its update on offer (or its round ended early)."""
        self._releases = [asyncio.Event() for _ in self.nodes]
        offered = [asyncio.Event() for _ in self.nodes]
        self._rounds = [
            asyncio.create_task(node.engine.run_round(after_training=_hold(event, release)))
            for node, event, release in zip(self.nodes, offered, self._releases)
        ]
        for event, task in zip(offered, self._rounds):
            waiter = asyncio.ensure_future(event.wait())
            await asyncio.wait({waiter, task}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()

    async def finish_round(self) -> list[RoundRecord]:
        """Let every cart ask its peers, aggregate and decide; the records of the rounds that ended, in cart order.

        A round that raised (its bridge did not answer in time, say) is logged and left out, as a cart's own
        round loop does, and counted in `failed`: the other carts' rounds stand. With `wave`, the carts go
        that many at a time; every update is on offer before the first wave asks."""
        size = self.wave or len(self.nodes) or 1
        outcomes: list[RoundRecord | BaseException] = []
        for start in range(0, len(self.nodes), size):
            for release in self._releases[start : start + size]:
                release.set()
            outcomes += await asyncio.gather(*self._rounds[start : start + size], return_exceptions=True)
        records = []
        for node, outcome in zip(self.nodes, outcomes):
            if isinstance(outcome, RoundRecord):
                records.append(outcome)
            else:
                self.failed += 1
                log.warning("round of cart %s failed: %r", node.node_id[:8], outcome)
        return records

    async def run_round(self) -> list[RoundRecord]:
        await self.begin_round()
        return await self.finish_round()

    async def wire_bytes(self) -> Wire:
        """The WebSocket frames the carts sent and received so far, headers included (see `Wire`)."""
        return Wire(
            sum(n.client.wire_bytes_in + n.client.wire_bytes_out for n in self.nodes),
            sum(n.client.wire_bytes_out + n.client.wire_bytes_in - n.client.wire_bytes_relayed_in for n in self.nodes),
        )

    async def scores_on(self, x: np.ndarray, y: np.ndarray, swarm: bool = False) -> Scores:
        """Each cart's kept model on the given rows (the simulator's pooled held-out set); with `swarm`, its swarm
        model, the one it trains from (`child_cart.rounds.swarm_model`; the kept one before any was adopted)."""
        return [await asyncio.to_thread(n.learner.evaluate_on, _model(n, swarm), x, y) for n in self.nodes]

    async def own_scores(self) -> Scores:
        """Each cart's kept model on its own held-out rows."""
        return [await asyncio.to_thread(n.learner.evaluate, n.engine.current) for n in self.nodes]

    async def own_val(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Each cart's own held-out rows (the baselines are scored on them too)."""
        return [_own_val(n) for n in self.nodes]

    async def personal_scores(self, kept: bool, epochs: int, head: bool) -> Scores:
        """Each cart's personal model on its own rows: its kept model when `kept` (a personalized run), else its swarm
        model (the kept one before any was adopted) fine-tuned for `epochs` on its rows, then with `head` its output
        layer refitted: FedAvg plus local fine-tuning starts from the swarm's model, as PERSONALIZE starts from the
        round's aggregate."""
        return [await asyncio.to_thread(_personal_score, n, kept, epochs, head) for n in self.nodes]

    async def failed_rounds(self) -> int:
        """Cart rounds that raised so far (see `finish_round`)."""
        return self.failed

    async def peak_rss(self) -> int:
        """This process's resident-memory high-water mark, in bytes."""
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    async def stop(self) -> None:
        for node in self.nodes:
            await node.stop()


def _hold(offered: asyncio.Event, release: asyncio.Event) -> Callable[[], Awaitable[None]]:
    """The hook a cart's round awaits once its update is on offer: say so, then wait to be let go."""

    async def hold() -> None:
        offered.set()
        await release.wait()

    return hold


def _model(node: CartNode, swarm: bool) -> list[np.ndarray]:
    """The cart's swarm model (what it trains from: `RoundEngine.start`), else the model it keeps and serves."""
    return node.engine.start if swarm else node.engine.current


def _personal_score(node: CartNode, kept: bool, epochs: int, head: bool) -> dict[str, float]:
    weights = (
        node.engine.current if kept else node.learner.train(_model(node, swarm=True), epochs, head=head, track=PERSONAL)
    )
    return node.learner.evaluate(weights)


def _own_val(node: CartNode) -> tuple[np.ndarray, np.ndarray]:
    dataset = node.learner.dataset
    if dataset is None:
        raise RuntimeError("a cart without rows after its rounds")
    return dataset.x_val, dataset.y_val


async def open_group(
    backend: str,
    data: list[list[dict]],
    bridges: list[Bridge],
    root: Path,
    round_options: dict[str, object],
    address: str | None = None,
    actors: int = 0,
    listed_within: float = 60.0,
    wave: int = 0,
) -> CartGroup:
    """One cart per data share, on this loop (`inprocess`) or spread over Ray actors (`ray`: a local Ray
    instance, or the cluster at `address`; `actors` groups, 0 = one per CPU), listed by every bridge.
    `wave`: see `LocalCarts`."""
    urls = [bridge.url for bridge in bridges]
    carts: CartGroup
    if backend == "ray":
        from fedcart import raysim  # the optional extra: imported only when asked for

        carts = await raysim.RayCarts.open(data, urls, root, round_options, address, actors, wave)
    elif backend == "inprocess":
        local = LocalCarts(wave=wave)
        await local.open(data, urls, root, round_options, first=0)
        carts = local
    else:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    try:
        await wait_listed(bridges, len(data), listed_within)
    except BaseException:
        await carts.stop()
        raise
    return carts
