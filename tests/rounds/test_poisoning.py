"""One cart of five sends poisoned (sign-flipped, scaled) updates.

Robust rules (median, trimmed mean, Krum) keep the honest carts' accuracy on
the pooled held-out rows within 2 points of the same swarm without the attacker.
FedAvg's aggregate is dragged down for contrast; the acceptance check then keeps
the honest carts' own models, which the round log shows.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest

from child_cart.node import CartNode
from child_cart.rounds.exchange import UpdateExchange
from fedcart.inprocess import pooled_accuracy, run_round

from .swarmkit import swarm

pytestmark = pytest.mark.slow
log = logging.getLogger(__name__)
ROUNDS = 2
ATTACK_SCALE = -10.0


class ScalingExchange(UpdateExchange):
    def offer(self, update_weights, samples, round_number) -> None:
        super().offer([w * ATTACK_SCALE for w in update_weights], samples, round_number)
        self._reference = update_weights


def with_attacker(attack: bool):
    made = {"count": 0}

    def factory(settings, **options) -> CartNode:
        node = CartNode(settings, **options)
        made["count"] += 1
        if attack and made["count"] == 5:
            node.exchange = node.engine.exchange = ScalingExchange(node.client, node.task.name)
        return node

    return factory


async def honest_outcome(tmp_path, aggregator: str, attack: bool) -> tuple[float, float]:
    """(mean pooled accuracy of the honest carts' kept models, mean local-held-out accuracy of their aggregates)."""
    async with swarm(
        tmp_path, carts=5, rows=300, make_node=with_attacker(attack), aggregator=aggregator, krum_f=1
    ) as s:
        for _ in range(ROUNDS):
            records = await run_round(s.nodes)
        honest = s.nodes[:4]
        kept = float(np.mean([pooled_accuracy(node, s.pooled) for node in honest]))
        aggregated = float(np.mean([r.aggregated.get("accuracy", 0.0) for r in records[:4]]))
    return kept, aggregated


@pytest.mark.parametrize("aggregator", ["median", "trimmed_mean", "krum"])
async def test_robust_rules_hold_within_two_points(aggregator, tmp_path):
    clean, _ = await honest_outcome(tmp_path / "clean", aggregator, attack=False)
    attacked, _ = await honest_outcome(tmp_path / "attacked", aggregator, attack=True)
    log.warning("%s: honest accuracy %.3f without attacker, %.3f with", aggregator, clean, attacked)
    assert attacked >= clean - 0.02, f"{aggregator}: {clean:.3f} -> {attacked:.3f} with one attacker"


async def test_fedavg_aggregate_drops_and_acceptance_check_keeps_honest_models(tmp_path):
    clean_kept, clean_agg = await honest_outcome(tmp_path / "clean", "fedavg", attack=False)
    attacked_kept, attacked_agg = await honest_outcome(tmp_path / "attacked", "fedavg", attack=True)
    log.warning("fedavg: aggregate %.3f -> %.3f, kept %.3f -> %.3f", clean_agg, attacked_agg, clean_kept, attacked_kept)
    assert attacked_agg < clean_agg - 0.02, "FedAvg's aggregate should suffer from the attacker"
    assert attacked_kept >= clean_kept - 0.05, "the acceptance check should have kept the honest carts' models"
