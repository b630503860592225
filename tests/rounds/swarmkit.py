"""A real swarm for round tests: bridges on 127.0.0.1, CartNodes with synthetic non-IID shoppers."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

from child_cart.node import CartNode
from child_cart.rounds import settings as round_settings
from child_cart.rounds.learner import Learner
from child_cart.store import load_catalogue
from child_cart.synth import shoppers as synth
from child_cart.tasks.recommend import RecommendTask
from fedcart.inprocess import start_bridges, start_carts
from parent_cart.bridge import Bridge

CATALOGUE = load_catalogue()
TASK = RecommendTask(CATALOGUE)


@dataclass
class TestSwarm:
    bridges: list[Bridge]
    nodes: list[CartNode]
    data: list[list[dict]]

    @property
    def pooled(self):
        return TASK.make_dataset([row for rows in self.data for row in rows])

    def configure(self, **changes: object) -> None:
        for node in self.nodes:
            round_settings.save(node.store, changes)

    def local_only_accuracy(self, index: int, rounds: int, epochs: int) -> float:
        """What cart `index` reaches alone with the same epoch budget, on the pooled held-out rows."""
        learner = Learner(TASK, train_seed=self.nodes[index].learner.train_seed)
        learner.load_rows(self.data[index])
        weights = learner.train(learner.initial_weights, rounds * epochs)
        pooled = self.pooled
        return learner.evaluate_on(weights, pooled.x_val, pooled.y_val)["accuracy"]


@contextlib.asynccontextmanager
async def swarm(
    root: Path,
    bridges: int = 1,
    carts: int = 3,
    rows: int = 500,
    skew: float = 1.0,
    seed: int = 1,
    make_node=CartNode,
    publish: bool = False,
    **round_options: object,
) -> AsyncIterator[TestSwarm]:
    data = synth.generate(CATALOGUE, rows, carts, seed, skew)
    started = await start_bridges(bridges, root)
    nodes: list[CartNode] = []
    try:
        nodes = await start_carts(data, started, root, {}, make_node=seeded(make_node), publish=publish)
        test_swarm = TestSwarm(started, nodes, data)
        test_swarm.configure(**{"k": carts - 1, "local_epochs": 3, "peer_timeout": 20.0, **round_options})
        yield test_swarm
    finally:
        for node in nodes:
            await node.stop()
        for bridge in started:
            await bridge.stop()


def seeded(make_node: Callable[..., CartNode]) -> Callable[..., CartNode]:
    """`make_node`, its n-th cart's learner seeded with 1000 x n: the same swarm trains the same on every run,
    whatever order the carts' threads reach the shared Keras runtime in, and however busy the CPUs are."""
    made = itertools.count()

    def make(settings, **options) -> CartNode:
        node = make_node(settings, **options)
        node.learner.train_seed = 1000 * next(made)
        return node

    return make
