"""The tree-ensemble variant: forests as plain arrays, exchanged safely, joined by tree union."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier

from cartnet import e2e, weights
from cartnet.identity import Identity
from child_cart.aggregation import AggregationError, Update, make_aggregator
from child_cart.rounds.learner import Learner
from child_cart.tasks import get_task
from child_cart.tasks.iot.forest import VOTE, TreeForest, check_layout, from_sklearn, max_nodes, predict
from child_cart.tasks.iot.metrics import detection_metrics
from child_cart.tasks.iot_intrusion import ForestIntrusionTask

TREES, DEPTH = 12, 7


@pytest.fixture(scope="module")
def task() -> ForestIntrusionTask:
    return ForestIntrusionTask(trees=TREES, depth=DEPTH)


@pytest.fixture(scope="module")
def peers(task, weather) -> list[tuple[TreeForest, int]]:
    """One forest per cart, grown on that cart's training rows only."""
    grown = []
    for index, rows in enumerate(weather):
        dataset = task.make_dataset(rows)
        forest = task.build_model(seed=index)
        task.fit(forest, dataset, epochs=1, batch_size=1)
        grown.append((forest, len(dataset.x_train)))
    return grown


def test_the_arrays_predict_exactly_what_scikit_learn_predicts(task, weather) -> None:
    dataset = task.make_dataset(weather[0] + weather[1])
    grown = RandomForestClassifier(n_estimators=8, max_depth=DEPTH, random_state=0).fit(
        dataset.x_train, dataset.y_train[:, 0]
    )
    arrays = from_sklearn(grown, DEPTH)
    assert [a.shape for a in arrays] == [
        (8, max_nodes(DEPTH)),
        (8, max_nodes(DEPTH)),
        (8, max_nodes(DEPTH), 2),
        (8, max_nodes(DEPTH)),
        (8,),
    ]
    np.testing.assert_allclose(
        predict(arrays, dataset.x_val, DEPTH), grown.predict_proba(dataset.x_val)[:, 1], atol=1e-6
    )


def test_a_forest_travels_through_the_weight_codec_and_e2e_encryption_without_pickle(
    peers, weather, task, tmp_path
) -> None:
    forest = peers[0][0]
    receiver = Identity.load_or_create(tmp_path / "receiver")
    blob = weights.encode(forest.get_weights(), compress=True)
    assert b"pickle" not in blob and blob[:4] == weights.MAGIC
    sealed = e2e.seal(blob, receiver.kx_public_key, "a" * 40)
    back = weights.decode(bytes(e2e.open_sealed(sealed, receiver.kx_key, "a" * 40)))
    copy = task.build_model()
    copy.set_weights(back)
    x = task.make_dataset(weather[0]).x_val
    np.testing.assert_array_equal(copy.predict_proba(x), forest.predict_proba(x))
    assert len(blob) < sum(w.nbytes for w in forest.get_weights()) / 3, "padding nodes compress away"


def test_tree_union_predicts_at_least_as_well_as_the_best_single_peer_on_pooled_held_out_rows(
    task, peers, weather
) -> None:
    pooled = task.make_dataset([row for rows in weather for row in rows])
    updates = [Update(f"{i:040x}", forest.get_weights(), samples) for i, (forest, samples) in enumerate(peers)]
    union = task.build_model()
    union.set_weights(make_aggregator("tree_union").aggregate(updates))
    assert union.size == TREES * len(peers)

    def f1(model) -> float:
        return detection_metrics(task.detect(model, pooled.x_val, pooled.y_val))["f1"]

    singles = [f1(forest) for forest, _ in peers]
    assert f1(union) >= max(singles)
    vote = task.build_model()
    vote.set_weights(make_aggregator("tree_vote").aggregate(updates))
    assert f1(vote) >= max(singles)


def test_tree_vote_weighs_each_cart_by_its_rows_and_union_counts_trees() -> None:
    ua = Update("a" * 40, TreeForest(features=5, trees=3, depth=2).get_weights(), 30)
    ub = Update("b" * 40, TreeForest(features=5, trees=1, depth=2).get_weights(), 10)
    np.testing.assert_allclose(make_aggregator("tree_union").aggregate([ua, ub])[VOTE], [0.25] * 4)
    np.testing.assert_allclose(make_aggregator("tree_vote").aggregate([ua, ub])[VOTE], [0.25, 0.25, 0.25, 0.25])
    uc = Update("c" * 40, ub.weights, 90)
    np.testing.assert_allclose(make_aggregator("tree_vote").aggregate([ua, uc])[VOTE], [0.25 / 3] * 3 + [0.75])


def test_forests_of_another_depth_or_garbage_are_refused() -> None:
    deep, shallow = TreeForest(features=5, trees=2, depth=3), TreeForest(features=5, trees=2, depth=2)
    with pytest.raises(AggregationError, match="not a forest like the others"):
        make_aggregator("tree_union").aggregate(
            [Update("a" * 40, deep.get_weights(), 1), Update("b" * 40, shallow.get_weights(), 1)]
        )
    with pytest.raises(ValueError, match="expected"):
        shallow.set_weights(deep.get_weights())
    bad = shallow.get_weights()
    bad[0][0, 0] = 99
    with pytest.raises(ValueError, match="feature outside"):
        check_layout(bad, 2, 5)
    bad = shallow.get_weights()
    bad[2][0, 0, 0] = 10_000
    with pytest.raises(ValueError, match="child index"):
        shallow.set_weights(bad)


def test_the_round_learner_trains_and_scores_a_forest_and_the_task_asks_for_tree_union(weather, tmp_path) -> None:
    from child_cart.settings import CartSettings

    forest_task = get_task(
        "iot-intrusion-forest", CartSettings(_env_file=None, data_dir=tmp_path, iot_forest_trees=5, iot_forest_depth=6)
    )
    assert forest_task.aggregator == "tree_union" and forest_task.depth == 6
    learner = Learner(forest_task)
    learner.load_rows(weather[2])
    untrained = learner.evaluate(learner.initial_weights)
    assert untrained["tp"] == 0 and untrained["fp"] == 0
    trained = learner.train(learner.initial_weights, epochs=1)
    assert len(trained[VOTE]) == 5 and learner.evaluate(trained)["f1"] > 0.3
