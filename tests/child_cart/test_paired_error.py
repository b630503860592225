"""The swarm gain's standard error: row scores that average to the metric, and a paired error over them.

A cart's gain is measured on its few held-out rows (54 to 108 in `make run`),
where one row is one or two points. The admin page shows the gain with one
standard error of the two models' row-by-row differences, so a store can tell a
gain from the noise of that many rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from child_cart.rounds.learner import Learner
from child_cart.store import load_catalogue
from child_cart.synth import shoppers as synth
from child_cart.tasks.recommend import HIT_METRICS, RecommendTask

CATALOGUE = load_catalogue()


def _learner(task: RecommendTask) -> Learner:
    learner = Learner(task, seed=0, train_seed=21)
    learner.load_rows(synth.generate(CATALOGUE, 400, 1, 5, 1.0)[0])
    return learner


@pytest.mark.parametrize("metric", sorted(HIT_METRICS))
def test_row_scores_average_to_the_metric_they_belong_to(metric: str) -> None:
    task = type("Scored", (RecommendTask,), {"primary_metric": metric})(CATALOGUE)
    learner = _learner(task)
    trained = learner.train(learner.initial_weights, 2)
    dataset = learner.dataset
    assert dataset is not None
    learner._use(trained)  # the same swap-in evaluate does
    rows = task.row_scores(learner._model, dataset.x_val, dataset.y_val)
    assert set(np.unique(rows)) <= {0.0, 1.0} and len(rows) == learner.val_samples
    assert rows.mean() == pytest.approx(learner.evaluate(trained)[metric])


def test_the_paired_error_is_the_spread_of_row_differences_and_zero_for_one_model() -> None:
    task = RecommendTask(CATALOGUE)
    learner = _learner(task)
    trained = learner.train(learner.initial_weights, 2)
    assert learner.paired_error(trained, trained) == 0.0
    dataset = learner.dataset
    assert dataset is not None
    learner._use(trained)
    ours = task.row_scores(learner._model, dataset.x_val, dataset.y_val)
    learner._use(learner.initial_weights)
    theirs = task.row_scores(learner._model, dataset.x_val, dataset.y_val)
    expected = np.std(ours - theirs, ddof=1) / np.sqrt(len(ours))
    assert expected > 0, "an untrained model ranks some held-out rows differently from a trained one"
    assert learner.paired_error(trained, learner.initial_weights) == pytest.approx(expected)


def test_a_metric_that_is_not_a_row_mean_gives_no_error() -> None:
    class NoRows(RecommendTask):
        def row_scores(self, model: Any, x: np.ndarray, y: np.ndarray) -> None:
            return None

    learner = _learner(NoRows(CATALOGUE))
    assert learner.paired_error(learner.initial_weights, learner.initial_weights) is None
