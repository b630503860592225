"""Each optimizer track keeps its own Adam state: the local-only shadow's training never steers the cart's model.

LOCAL_ONLY trains the shadow with the cart's own learner (one compiled model, one
optimizer). With one shared state, every round's shadow epochs moved Adam's moments
and step count before the next round's TRAIN, which a Flower client, training its
model alone, never sees.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from child_cart.rounds.learner import MAIN, PERSONAL, SHADOW, Learner
from child_cart.store import load_catalogue
from child_cart.synth import shoppers as synth
from child_cart.tasks.recommend import RecommendTask

TASK = RecommendTask(load_catalogue())


def _optimizer(learner: Learner) -> list[np.ndarray]:
    model: Any = learner._model  # the state under test is the compiled model's optimizer
    return [np.array(v.numpy()) for v in model.optimizer.variables]


def _same(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_a_shadow_training_leaves_the_main_optimizer_as_it_was_and_keeps_its_own() -> None:
    rows = synth.generate(load_catalogue(), 200, 1, 3, 1.0)[0]
    learner = Learner(TASK, seed=0, train_seed=11)
    learner.load_rows(rows)
    untrained = _optimizer(learner)
    trained = learner.train(learner.initial_weights, 1)
    after_main = _optimizer(learner)
    assert not _same(after_main, untrained)

    learner.train(learner.initial_weights, 2, track=SHADOW)
    after_shadow = _optimizer(learner)
    assert int(after_shadow[0]) == 2 * int(after_main[0]), "the shadow did not start from an untrained optimizer"

    learner.train(trained, 0, track=MAIN)
    assert _same(_optimizer(learner), after_main), "the shadow's steps moved the main model's optimizer"
    learner.train(trained, 0, track=SHADOW)
    assert _same(_optimizer(learner), after_shadow), "the shadow lost its own optimizer state"


def test_personal_fine_tuning_has_its_own_track_too() -> None:
    rows = synth.generate(load_catalogue(), 200, 1, 4, 1.0)[0]
    learner = Learner(TASK, seed=0, train_seed=12)
    learner.load_rows(rows)
    learner.train(learner.initial_weights, 1)
    after_main = _optimizer(learner)
    learner.train(learner.initial_weights, 1, track=PERSONAL)
    learner.train(learner.initial_weights, 0)
    assert _same(_optimizer(learner), after_main)
