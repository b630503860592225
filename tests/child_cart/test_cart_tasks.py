"""Tasks: the registry, the held-out split, the basket-aware recommend encoding, training and model versions."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from child_cart.models.versions import (
    ModelCorrupt,
    ModelVersions,
    decode_weights,
    encode_weights,
)
from child_cart.settings import CartSettings
from child_cart.synth import shoppers as synth
from child_cart.tasks import Dataset, Task, get_task, register, registry, task_names
from child_cart.tasks.recommend import (
    RecommendTask,
    Step,
    basket_steps,
    encode_features,
    score,
    top_categories,
)
from child_cart.tasks.split import is_validation, split_rows
from child_cart.tasks.trainer import train
from tests.child_cart.conftest import TRAIN_EPOCHS


def test_the_registry_knows_recommend_and_refuses_unknown_or_duplicate_names() -> None:
    assert "recommend" in task_names()
    task = get_task()
    assert isinstance(task, RecommendTask) and task.primary_metric == "top3_accuracy"
    with pytest.raises(KeyError, match="known tasks: .*recommend"):
        get_task("anomaly-typo")
    with pytest.raises(ValueError, match="already registered"):
        register("recommend", RecommendTask.from_settings)


def test_a_new_task_plugs_in_through_the_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    class Echo(Task):
        name = "echo"
        primary_metric = "loss"
        higher_is_better = False

        def build_model(self, seed=None):
            return None

        def make_dataset(self, rows):
            empty = np.zeros((0, 1))
            return Dataset(empty, empty, empty, empty)

        def evaluate(self, model, x, y):
            return {"loss": 0.0}

    monkeypatch.setattr(registry, "_FACTORIES", dict(registry._FACTORIES))
    register("echo", lambda settings: Echo())
    assert get_task("echo").higher_is_better is False
    assert "echo" in task_names()


def test_settings_configure_the_task(tmp_path) -> None:
    task = get_task("recommend", CartSettings(_env_file=None, val_fraction=0.35, data_dir=tmp_path))
    assert task.val_fraction == 0.35


@given(st.lists(st.text(min_size=1, max_size=20), unique=True, max_size=80), st.floats(0.05, 0.95))
def test_the_split_is_a_pure_function_of_the_row_id(ids: list[str], fraction: float) -> None:
    rows = [{"_id": i} for i in ids]
    train, val = split_rows(rows, fraction)
    assert sorted(r["_id"] for r in train + val) == sorted(ids)
    assert all(is_validation(r["_id"], fraction) for r in val)
    assert split_rows(list(reversed(rows)), fraction)[1] == list(reversed(val))


def test_about_the_asked_share_is_held_out() -> None:
    held = sum(is_validation(f"row-{i}", 0.2) for i in range(20000))
    assert 0.18 < held / 20000 < 0.22


def test_the_input_layout_is_sin_cos_then_profile_one_hot_then_basket_multi_hot(catalogue) -> None:
    profiles, categories = catalogue.profile_names, catalogue.category_names
    empty = [0.0] * len(categories)
    assert (
        encode_features(1, profiles[0], [], profiles, categories)
        == [0.0, 1.0, 1.0] + [0.0] * (len(profiles) - 1) + empty
    )
    april = encode_features(4, profiles[2], [], profiles, categories)
    assert april[0] == pytest.approx(1.0) and april[1] == pytest.approx(0.0, abs=1e-12)
    assert april[2 : 2 + len(profiles)] == [1.0 if i == 2 else 0.0 for i in range(len(profiles))]
    december = encode_features(12, profiles[0], [], profiles, categories)
    assert december[:2] == pytest.approx([math.sin(11 * math.pi / 6), math.cos(11 * math.pi / 6)])
    basket = encode_features(6, profiles[1], [categories[3], categories[0], categories[3]], profiles, categories)
    assert basket[2 + len(profiles) :] == [1.0 if i in (0, 3) else 0.0 for i in range(len(categories))]
    for month, profile in [(0, profiles[0]), (13, profiles[0])]:
        with pytest.raises(ValueError, match="month must be 1..12"):
            encode_features(month, profile, [], profiles, categories)
    with pytest.raises(ValueError, match="pirate"):
        encode_features(5, "pirate", [], profiles, categories)
    with pytest.raises(ValueError, match="toys"):
        encode_features(5, profiles[0], ["toys"], profiles, categories)


def test_a_basket_becomes_one_step_per_new_category_in_bill_order() -> None:
    def item(n: int, position: int, category: str) -> dict:
        return {"_id": f"b1:{n}", "checkout_id": "b1", "position": position, "month": 5, "profile": "family",
                "category": category}  # fmt: skip

    rows = [item(9, 3, "dairy"), item(0, 0, "bakery"), item(1, 1, "bakery"), item(2, 2, "produce")]
    old = {"_id": "legacy-7", "checkout_id": "c9", "month": 2, "profile": "senior", "category": "baby"}
    assert basket_steps([*rows, old]) == [
        Step("b1", 5, "family", (), "bakery"),
        Step("b1", 5, "family", ("bakery",), "produce"),
        Step("b1", 5, "family", ("bakery", "produce"), "dairy"),
        Step("legacy-7", 2, "senior", (), "baby"),
    ]


def test_make_dataset_keeps_every_basket_on_one_side_of_the_split(trained) -> None:
    task, rows = trained.task, trained.rows
    dataset = task.make_dataset(rows)
    steps = basket_steps(rows)
    held_out = [s for s in steps if is_validation(s.basket, task.val_fraction)]
    assert len(dataset.x_val) == len(held_out) and len(dataset.x_train) == len(steps) - len(held_out)
    assert len({s.basket for s in held_out}) < len({r["checkout_id"] for r in rows}) / 3
    assert dataset.x_train.shape[1] == task.input_size == 2 + len(task.profiles) + len(task.categories)
    assert dataset.x_train.dtype == np.float32 and dataset.y_train.dtype == np.int32
    in_basket = dataset.x_val[:, task.basket_offset :]
    assert in_basket.sum() > 0 and not in_basket[np.arange(len(dataset.y_val)), dataset.y_val].any()


def test_rows_with_unknown_profiles_or_categories_are_skipped(trained) -> None:
    odd = [
        {"_id": "x1", "month": 3, "profile": "pirate", "category": "dairy"},
        {"_id": "x2", "month": 3, "profile": "student", "category": "toys"},
    ]
    dataset = trained.task.make_dataset(trained.rows[:50] + odd)
    assert len(dataset.x_train) + len(dataset.x_val) == len(basket_steps(trained.rows[:50]))


def test_training_beats_the_majority_class_by_a_clear_margin(trained) -> None:
    dataset = trained.task.make_dataset(trained.rows)
    majority = Counter(dataset.y_train.tolist()).most_common(1)[0][0]
    baseline = float(np.mean(dataset.y_val == majority))
    metrics = trained.result.metrics
    assert metrics["accuracy"] > baseline + 0.10
    assert metrics["top3_accuracy"] > 0.6
    assert set(metrics) == {"accuracy", "top3_accuracy", "recall_at_5", "loss"}
    assert metrics["accuracy"] < metrics["top3_accuracy"] < metrics["recall_at_5"]


def test_the_basket_aware_model_beats_a_basket_blind_one(trained, catalogue) -> None:
    """Same rows, epochs and seed; the baseline sees month and profile only (and still skips what is in the basket).

    Both are scored on ~15,000 fresh rows from another seed, so sampling moves the gap by well under a point.
    Measured here: 0.42 against 0.34 top-1 and 0.77 against 0.68 top-3 (the ceilings: 0.47 and 0.36 top-1).
    """
    fresh = trained.task.make_dataset(synth.generate(catalogue, 20000, seed=99)[0])
    x, y = np.concatenate([fresh.x_train, fresh.x_val]), np.concatenate([fresh.y_train, fresh.y_val])
    blind_task = RecommendTask(catalogue, basket_aware=False)
    blind = train(blind_task, trained.rows, epochs=TRAIN_EPOCHS, batch_size=32, seed=0).model
    aware = trained.task.build_model()
    aware.set_weights(trained.result.weights)
    baseline, basket = blind_task.evaluate(blind, x, y), trained.task.evaluate(aware, x, y)
    assert basket["accuracy"] > baseline["accuracy"] + 0.05, (basket, baseline)
    assert basket["top3_accuracy"] > baseline["top3_accuracy"] + 0.05, (basket, baseline)
    assert basket["recall_at_5"] > baseline["recall_at_5"] + 0.02, (basket, baseline)
    assert basket["loss"] < baseline["loss"] - 0.1, (basket, baseline)


def test_the_model_never_recommends_what_is_in_the_basket(trained) -> None:
    task = trained.task
    model = task.build_model(seed=0)
    model.set_weights(trained.result.weights)
    x = task.make_dataset(trained.rows).x_val
    probabilities = model.predict_on_batch(x)
    in_basket = x[:, task.basket_offset :] > 0
    assert np.all(probabilities[in_basket] == 0.0)
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


def test_score_counts_top1_top3_and_recall_at_5() -> None:
    probabilities = np.array(
        [
            [0.6, 0.3, 0.05, 0.02, 0.02, 0.01],
            [0.1, 0.2, 0.3, 0.4, 0.0, 0.0],
            [0.2, 0.2, 0.2, 0.2, 0.1, 0.1],
        ]
    )
    metrics = score(probabilities, np.array([0, 0, 5]))
    assert metrics["accuracy"] == pytest.approx(1 / 3)
    assert metrics["top3_accuracy"] == pytest.approx(1 / 3)
    assert metrics["recall_at_5"] == pytest.approx(2 / 3)
    in_basket = np.zeros((3, 6))
    in_basket[1, [2, 3]] = 1
    in_basket[2, [0]] = 1
    masked = score(probabilities, np.array([0, 0, 5]), in_basket)
    assert masked["top3_accuracy"] == pytest.approx(2 / 3) and masked["recall_at_5"] == pytest.approx(1.0)
    assert top_categories([0.1, 0.5, 0.2, 0.2], ["a", "b", "c", "d"]) == ["b", "c", "d"]
    assert top_categories([0.1, 0.5, 0.2, 0.2], ["a", "b", "c", "d"], basket=["c", "b"]) == ["d", "a"]


def test_the_trained_version_is_stored_with_weights_metrics_and_samples(trained) -> None:
    models = ModelVersions(trained.store, trained.data_dir)
    version = models.latest("recommend")
    assert version.id == trained.version.id == "recommend-v000001"
    assert version.samples == trained.result.train_samples and version.metrics == trained.result.metrics
    assert models.path(version.weights_path).parent == trained.data_dir / "models"
    for loaded, original in zip(models.load_weights(version), trained.result.weights):
        np.testing.assert_array_equal(loaded, original)


def test_versions_count_up_and_a_corrupt_weights_file_is_caught(tmp_path, catalogue) -> None:
    from child_cart.store import open_store

    models = ModelVersions(open_store(tmp_path, catalogue=catalogue), tmp_path)
    first = models.save("demo", [np.ones((2, 3), np.float32)], samples=10, metrics={"accuracy": 0.5})
    second = models.save("demo", [np.zeros((2, 3), np.float32)], samples=12, parent=first.id, source="federated")
    assert [v.version for v in models.versions("demo")] == [2, 1]
    assert models.get(second.id).parent == first.id
    models.path(second.weights_path).write_bytes(b"tampered")
    with pytest.raises(ModelCorrupt, match="sha256"):
        models.load_weights(second)
    with pytest.raises(KeyError):
        models.get("demo-v000099")


def test_weights_round_trip_exactly_without_pickle() -> None:
    weights = [np.arange(6, dtype=np.float32).reshape(2, 3), np.array([1.5], np.float64)]
    for restored, original in zip(decode_weights(encode_weights(weights)), weights):
        np.testing.assert_array_equal(restored, original)
        assert restored.dtype == original.dtype
