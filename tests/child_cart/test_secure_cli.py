"""Secure aggregation at the command line: `fedcart simulate --secure-aggregation` and `fedcart swarm --secure-aggregation`.

Refusals (a robust rule, too few carts for a cohort) stop the command before anything starts, with the
reason; a masked simulation says in `summary.json` that it was on; the swarm stores the setting in
every cart's round settings.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from child_cart.rounds import settings as round_settings
from child_cart.store import open_store
from fedcart.local_swarm import SwarmPlan, seed_carts


def flat(output: str) -> str:
    """Typer's error box without its frame and line breaks."""
    return " ".join(output.replace("│", " ").split())


def test_simulate_refuses_secure_aggregation_with_a_robust_rule(cli):
    out = cli("simulate", "--aggregator", "median", "--secure-aggregation", code=2).output
    assert "need the individual updates" in flat(out)


def test_simulate_and_swarm_refuse_secure_aggregation_with_too_few_carts_for_a_cohort(cli):
    out = cli("simulate", "--carts", "3", "--k", "3", "--secure-aggregation", code=2).output
    assert "run at least 4 carts" in flat(out)
    out = cli("swarm", "--carts", "3", "--root", "swarm", "--secure-aggregation", code=2).output
    assert "start at least 4 carts" in flat(out)


def test_the_swarm_switches_secure_aggregation_on_in_every_carts_settings(tmp_path: Path):
    plan = SwarmPlan(root=tmp_path / "swarm", carts=4, rows=40, secure_aggregation=True)
    seed_carts(plan)
    for i in range(plan.carts):
        store = open_store(plan.cart_dir(i))
        try:
            assert round_settings.load(store).secure_aggregation
            if i == 0:
                round_settings.save(store, {"secure_aggregation": False, "aggregator": "median", "k": 4})
        finally:
            store.close()
    with pytest.raises(ValidationError, match="need the individual updates"):
        seed_carts(plan)  # cart-0 now runs median: switching secure aggregation on again is refused


@pytest.mark.slow
def test_simulate_runs_masked_rounds_and_says_so_in_its_summary(cli, tmp_path: Path):
    cli(
        "simulate",
        *("--carts", "4", "--rounds", "1", "--bridges", "1", "--rows", "200", "--epochs", "1", "--k", "3"),
        *("--secure-aggregation", "--out", "report"),
    )
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert summary["secure_aggregation"] is True
    assert summary["federated"]["top1"] > 0
