"""`fedcart simulate --backend ray`: the simulated carts spread over Ray actors; the bridges stay real.

Each actor is one Ray worker process hosting a `LocalCarts` group: one
TensorFlow runtime and one asyncio loop (the actor's own) under real CartNodes
with their own embedded stores and keys, connected over real WebSockets to the
bridges, which the driver runs on 127.0.0.1. The driver keeps the round
schedule: a round is `begin_round` on every actor (each cart trains and puts its
update on offer, then waits), then `finish_round` on every actor (each asks its
peers, aggregates, decides), the cross-process form of the in-process barrier.

Ray is the optional extra `fedcart[ray]`: only this module imports it, and only
`fedcart simulate --backend ray` and `bench/simulate_scale.py` import this
module; no cart or bridge does. Cart data dirs and the swarm authority live
under the driver's scratch directory, so every actor must see the driver's file
system and reach 127.0.0.1: a local Ray instance, or a one-host cluster at
`--address` (README "Known gaps" says what a multi-host cluster would need).
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import ray

from child_cart.rounds.roundlog import RoundRecord
from fedcart.cartgroup import LocalCarts, Scores, Wire

log = logging.getLogger(__name__)


def start_ray(address: str | None = None, num_cpus: int | None = None) -> bool:
    """Connect to the Ray cluster at `address`, or start a small local one (no dashboard, bounded start-up);
    True when this call started or joined it (the caller shuts it down), False when it was up already.

    The actors' own logs stay in Ray's session folder (hundreds of carts log every join); an actor's
    exception still reaches the driver with its traceback."""
    if ray.is_initialized():
        return False
    if address:
        ray.init(address=address, log_to_driver=False, configure_logging=False)
    else:
        ray.init(
            address="local",  # a new instance, never one a `ray start` on this machine left behind
            num_cpus=num_cpus or os.cpu_count() or 1,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
            object_store_memory=256 * 1024 * 1024,
        )
    log.info("Ray: %g CPUs", cluster_cpus())
    return True


def cluster_cpus() -> float:
    """CPUs the connected Ray cluster offers."""
    return float(ray.cluster_resources().get("CPU", 1.0))  # type: ignore[no-untyped-call]


def shares(count: int, groups: int) -> list[range]:
    """Cart indices split into `groups` contiguous, near-equal ranges (cart order is kept across actors)."""
    groups = max(1, min(groups, count))
    cuts = np.linspace(0, count, groups + 1).round().astype(int)
    return [range(int(a), int(b)) for a, b in zip(cuts[:-1], cuts[1:])]


class RayCarts:
    """The driver's handle on carts hosted by Ray actors; the same calls as `LocalCarts`, fanned out."""

    def __init__(self, actors: list[Any], sizes: list[int], owns_ray: bool) -> None:
        self.actors, self.sizes, self._owns_ray = actors, sizes, owns_ray

    @classmethod
    async def open(
        cls,
        data: list[list[dict]],
        bridge_urls: list[str],
        root: Path,
        round_options: dict[str, object],
        address: str | None = None,
        actors: int = 0,
        wave: int = 0,
    ) -> RayCarts:
        """One actor per group of carts (`actors` groups; 0 = one per CPU Ray offers), each starting its carts.

        The actors share the cluster's CPUs evenly, so more actors than CPUs does not leave some waiting
        for a free CPU forever."""
        owns_ray = start_ray(address)
        cpus = cluster_cpus()
        groups = shares(len(data), actors or int(cpus))
        host = ray.remote(LocalCarts).options(num_cpus=cpus / len(groups), max_concurrency=4)
        handles: list[Any] = [host.remote(wave=wave) for _ in groups]
        carts = cls(handles, [len(group) for group in groups], owns_ray)
        try:
            await asyncio.gather(
                *(
                    h.open.remote([data[i] for i in group], bridge_urls, root, round_options, group.start)
                    for h, group in zip(handles, groups)
                )
            )
        except BaseException:
            await carts.stop()
            raise
        return carts

    async def _each(self, method: str, *args: object) -> list[Any]:
        return list(await asyncio.gather(*(getattr(actor, method).remote(*args) for actor in self.actors)))

    async def _flat(self, method: str, *args: object) -> list[Any]:
        return [item for part in await self._each(method, *args) for item in part]

    async def run_round(self) -> list[RoundRecord]:
        """Every actor's carts train and offer, then (all offered) every actor's carts exchange."""
        await self._each("begin_round")
        return await self._flat("finish_round")

    async def wire_bytes(self) -> Wire:
        parts = await self._each("wire_bytes")
        return Wire(sum(p.at_carts for p in parts), sum(p.sent for p in parts))

    async def scores_on(self, x: np.ndarray, y: np.ndarray, swarm: bool = False) -> Scores:
        return await self._flat("scores_on", ray.put(x), ray.put(y), swarm)

    async def own_scores(self) -> Scores:
        return await self._flat("own_scores")

    async def own_val(self) -> list[tuple[np.ndarray, np.ndarray]]:
        return await self._flat("own_val")

    async def personal_scores(self, kept: bool, epochs: int, head: bool) -> Scores:
        return await self._flat("personal_scores", kept, epochs, head)

    async def failed_rounds(self) -> int:
        return sum(await self._each("failed_rounds"))

    async def peak_rss(self) -> list[int]:
        """Each actor process's resident-memory high-water mark, in bytes."""
        return await self._each("peak_rss")

    async def stop(self) -> None:
        """Stop every cart, end the actors (their processes and TensorFlow runtimes), and Ray if we started it."""
        try:
            await asyncio.gather(*(actor.stop.remote() for actor in self.actors), return_exceptions=True)
        finally:
            for actor in self.actors:
                ray.kill(actor)
            if self._owns_ray:
                ray.shutdown()
