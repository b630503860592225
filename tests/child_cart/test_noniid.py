"""Non-IID methods beside FedAvg: FedProx's proximal term, personalization (PERSONALIZE), their settings."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import numpy as np
import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from cartnet.client import ws_frame_size
from child_cart.aggregation import Update, make_aggregator
from child_cart.rounds.engine import RoundEngine
from child_cart.rounds.learner import Learner
from child_cart.rounds.personalize import ATTACH_HEAD, OFFER_BODY, PERSONALIZE, Personalize, personalized
from child_cart.rounds.phases import DEFAULT_WORKFLOW, Train
from child_cart.rounds.privacy import PRIVATIZE, workflow_for
from child_cart.rounds.settings import RoundSettings
from child_cart.rounds.workflow import Phase, RoundContext
from child_cart.store import load_catalogue
from child_cart.synth import shoppers as synth
from child_cart.tasks.proximal import proximal
from child_cart.tasks.recommend import RecommendTask
from fedcart.cartgroup import _personal_score
from fedcart.cli import app


@pytest.fixture(scope="module")
def task() -> RecommendTask:
    return RecommendTask(load_catalogue())


def _distance(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    return float(np.sqrt(sum(np.sum((x - y) ** 2) for x, y in zip(a, b))))


def test_proximal_term_pulls_trained_weights_toward_the_start(task: RecommendTask) -> None:
    rows = synth.generate(load_catalogue(), 300, 1, 0, 1.0)[0]
    plain, prox = Learner(task, seed=0), Learner(task, seed=0)
    plain.load_rows(rows)
    prox.load_rows(rows)
    start = plain.initial_weights
    moved_plain = _distance(plain.train(start, 3, mu=0.0), start)
    moved_prox = _distance(prox.train(start, 3, mu=1.0), start)
    assert moved_prox < 0.5 * moved_plain, (moved_prox, moved_plain)


def test_proximal_refuses_a_negative_mu(task: RecommendTask) -> None:
    model = task.build_model(seed=0)
    with pytest.raises(ValueError, match="mu must be >= 0"), proximal(model, -0.1):
        pass


def test_settings_validate_the_non_iid_fields() -> None:
    defaults = RoundSettings()
    assert defaults.prox_mu == 0.0 and defaults.personalize_epochs == 0
    for bad in ({"prox_mu": -0.01}, {"prox_mu": 11.0}, {"personalize_epochs": -1}, {"personalize_epochs": 21}):
        with pytest.raises(ValidationError):
            RoundSettings.model_validate(bad)
    assert RoundSettings(prox_mu=0.1, personalize_epochs=2).prox_mu == 0.1


def test_settings_put_personalize_right_after_aggregate() -> None:
    assert PERSONALIZE not in workflow_for(RoundSettings()).names
    names = workflow_for(RoundSettings(personalize_epochs=1)).names
    assert names[names.index(Phase.AGGREGATE) + 1] == PERSONALIZE
    private = workflow_for(RoundSettings(personalize_epochs=1, dp_noise_multiplier=1.0, dp_clip_norm=1.0)).names
    assert PRIVATIZE in private and private[private.index(Phase.AGGREGATE) + 1] == PERSONALIZE
    assert PERSONALIZE in workflow_for(RoundSettings(personalize_head=True)).names
    once = personalized(personalized(DEFAULT_WORKFLOW, True), True)
    assert once.names.count(PERSONALIZE) == 1
    assert personalized(DEFAULT_WORKFLOW, False) is DEFAULT_WORKFLOW


def test_settings_give_a_local_head_its_phases_and_refuse_it_with_masking_or_privacy() -> None:
    workflow = workflow_for(RoundSettings(local_head=True, personalize_epochs=1))
    names = workflow.names
    assert names[names.index(Phase.TRAIN) + 1] == OFFER_BODY
    assert names[names.index(Phase.EXCHANGE) + 1] == ATTACH_HEAD
    assert names[names.index(Phase.AGGREGATE) + 1] == PERSONALIZE
    assert not any(isinstance(phase, Train) and phase.offer for phase in workflow), "TRAIN would offer the head"
    assert personalized(workflow, True, local_head=True).names == names
    for other in ({"secure_aggregation": True}, {"dp_noise_multiplier": 1.0, "dp_clip_norm": 1.0}):
        with pytest.raises(ValidationError, match="local_head"):
            RoundSettings.model_validate({"local_head": True, **other})


@pytest.mark.parametrize(
    "settings",
    [
        RoundSettings(personalize_epochs=2),
        RoundSettings(personalize_head=True),
        RoundSettings(personalize_epochs=1, personalize_head=True),
    ],
    ids=["fine-tune", "head", "fine-tune-then-head"],
)
def test_personalization_beats_the_plain_aggregate_on_each_carts_own_rows(
    task: RecommendTask, settings: RoundSettings
) -> None:
    """Three FedAvg rounds over four skewed carts, then PERSONALIZE on each cart: its own held-out rows score better."""
    data = synth.generate(load_catalogue(), 500, 4, 0, 1.0)
    learners = [Learner(task, seed=0) for _ in data]
    for learner, rows in zip(learners, data):
        learner.load_rows(rows)
    weights = learners[0].initial_weights
    for _ in range(3):
        updates = [Update(str(i), lr.train(weights, 2), lr.train_samples) for i, lr in enumerate(learners)]
        weights = make_aggregator("fedavg").aggregate(updates)
    plain, tuned = [], []
    for rows in data:
        learner = Learner(task, seed=0)
        learner.load_rows(rows)
        ctx = RoundContext(cast(Any, SimpleNamespace(learner=learner)), settings, 1)
        ctx.aggregated = weights
        asyncio.run(Personalize().run(ctx))
        assert ctx.shared is weights and ctx.aggregated is not weights
        if not settings.personalize_epochs:
            assert all(np.array_equal(a, b) for a, b in zip(ctx.aggregated[:2], weights[:2])), "the body moved"
        plain.append(learner.evaluate(weights))
        tuned.append(learner.evaluate(ctx.aggregated))
    gain_top3 = np.mean([t["top3_accuracy"] - p["top3_accuracy"] for t, p in zip(tuned, plain)])
    gain_loss = np.mean([p["loss"] - t["loss"] for t, p in zip(tuned, plain)])
    assert gain_top3 >= 0.01, (plain, tuned)
    assert gain_loss > 0.01, (plain, tuned)


def test_personalize_does_nothing_without_an_aggregate(task: RecommendTask) -> None:
    learner = Learner(task, seed=0)
    ctx = RoundContext(cast(Any, SimpleNamespace(learner=learner)), RoundSettings(personalize_epochs=2), 1)
    asyncio.run(Personalize().run(ctx))
    assert ctx.aggregated is None and ctx.shared is None


# ---------------------------------------------------------------- fedcart simulate: summary.json


class Engine(SimpleNamespace):
    """The two models a `RoundEngine` holds, and its own rule for which one a round trains from."""

    start = RoundEngine.start


def test_a_simulated_carts_personal_model_is_its_swarm_model_fine_tuned() -> None:
    """FedAvg plus fine-tuning starts from the swarm's model (as PERSONALIZE from the aggregate), not from the kept
    model, which under skew is often the cart's own local one; a personalized run's kept model is personal already."""
    trained_from: list[list[np.ndarray]] = []
    kept, swarm = [np.zeros(2)], [np.ones(2)]

    def train(weights: list[np.ndarray], epochs: int, head: bool, track: str) -> list[np.ndarray]:
        trained_from.append(weights)
        return [w + epochs + 10 * head for w in weights]

    learner = SimpleNamespace(train=train, evaluate=lambda weights: {"top3_accuracy": float(weights[0][0])})
    node = cast(Any, SimpleNamespace(engine=Engine(current=kept, swarm=swarm), learner=learner))
    assert _personal_score(node, False, 1, False) == {"top3_accuracy": 2.0} and trained_from == [swarm]
    assert _personal_score(node, False, 1, True) == {"top3_accuracy": 12.0}, "the head is refitted when asked"
    node.engine.swarm = None
    assert _personal_score(node, False, 1, False) == {"top3_accuracy": 1.0} and trained_from[-1] is kept
    assert _personal_score(node, True, 1, True) == {"top3_accuracy": 0.0} and len(trained_from) == 3


@pytest.mark.slow
@pytest.mark.parametrize("method", ["fedprox", "personalized", "local_head"])
def test_simulate_writes_a_summary_with_every_method(
    method: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MONGO_URL", "")
    args = ["--carts", "3", "--rounds", "2", "--bridges", "1", "--rows", "300", "--epochs", "1", "--k", "2"]
    result = CliRunner().invoke(app, ["simulate", *args, "--method", method, "--out", "report"])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert {"task", "carts", "rounds", "skew", "bayes_ceiling", "federated", "centralized", "local_only"} <= set(
        summary
    )
    assert (summary["task"], summary["carts"], summary["rounds"], summary["method"]) == ("recommend", 3, 2, method)
    assert summary["precision"] == "int8", "simulate runs the round settings' default precision"
    for name in ("bayes_ceiling", "federated", "swarm", "centralized", "local_only", "personalized"):
        assert set(summary[name]) == {"top1", "top3", "recall5"}, name
        assert all(0.0 <= value <= 1.0 for value in summary[name].values()), name
    assert set(summary["own_rows"]) == {"federated", "centralized", "local_only", "personalized"}
    wire, sent, payload = (summary[f"{name}_bytes_per_round"] for name in ("wire", "sent", "payload"))
    assert len(wire) == len(sent) == len(payload) == len(summary["seconds_per_round"]) == 2
    assert all(w > s > p > 0 for w, s, p in zip(wire, sent, payload)), (wire, sent, payload)  # frames carry more
    assert "epsilon" not in summary


def test_ws_frame_size_counts_headers_and_mask() -> None:
    assert ws_frame_size(10, masked=False) == 12
    assert ws_frame_size(10, masked=True) == 16
    assert ws_frame_size(200, masked=False) == 204
    assert ws_frame_size(70_000, masked=True) == 70_014
