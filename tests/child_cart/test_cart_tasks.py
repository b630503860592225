"""Tasks: the registry, the held-out split, the recommend encoding, training and model versions."""

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
from child_cart.tasks import Dataset, Task, get_task, register, registry, task_names
from child_cart.tasks.recommend import (
    RecommendTask,
    encode_features,
    score,
    top_categories,
)
from child_cart.tasks.split import is_validation, split_rows


def test_the_registry_knows_recommend_and_refuses_unknown_or_duplicate_names() -> None:
    assert "recommend" in task_names()
    task = get_task()
    assert isinstance(task, RecommendTask) and task.primary_metric == "accuracy"
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


def test_the_input_layout_is_sin_cos_then_one_hot(catalogue) -> None:
    profiles = catalogue.profile_names
    assert encode_features(1, profiles[0], profiles) == [0.0, 1.0, 1.0] + [0.0] * (len(profiles) - 1)
    april = encode_features(4, profiles[2], profiles)
    assert april[0] == pytest.approx(1.0) and april[1] == pytest.approx(0.0, abs=1e-12)
    assert april[2:] == [1.0 if i == 2 else 0.0 for i in range(len(profiles))]
    december = encode_features(12, profiles[0], profiles)
    assert december[:2] == pytest.approx([math.sin(11 * math.pi / 6), math.cos(11 * math.pi / 6)])
    for month, profile in [(0, profiles[0]), (13, profiles[0])]:
        with pytest.raises(ValueError, match="month must be 1..12"):
            encode_features(month, profile, profiles)
    with pytest.raises(ValueError, match="pirate"):
        encode_features(5, "pirate", profiles)


def test_make_dataset_never_puts_a_held_out_row_in_training(trained) -> None:
    task, rows = trained.task, trained.rows
    dataset = task.make_dataset(rows)
    train, val = split_rows(rows, task.val_fraction)
    assert len(dataset.x_train) == len(train) and len(dataset.x_val) == len(val)
    assert not {r["_id"] for r in train} & {r["_id"] for r in val}
    assert dataset.x_train.shape[1] == task.input_size == 2 + len(task.profiles)
    assert dataset.x_train.dtype == np.float32 and dataset.y_train.dtype == np.int32


def test_rows_with_unknown_profiles_or_categories_are_skipped(trained) -> None:
    odd = [
        {"_id": "x1", "month": 3, "profile": "pirate", "category": "dairy"},
        {"_id": "x2", "month": 3, "profile": "student", "category": "toys"},
    ]
    dataset = trained.task.make_dataset(trained.rows[:50] + odd)
    assert len(dataset.x_train) + len(dataset.x_val) == 50


def test_training_beats_the_majority_class_by_a_clear_margin(trained) -> None:
    dataset = trained.task.make_dataset(trained.rows)
    majority = Counter(dataset.y_train.tolist()).most_common(1)[0][0]
    baseline = float(np.mean(dataset.y_val == majority))
    metrics = trained.result.metrics
    assert metrics["accuracy"] > baseline + 0.10
    assert metrics["top3_accuracy"] > 0.55
    assert set(metrics) == {"accuracy", "top3_accuracy", "loss"}


def test_score_counts_top1_and_top3() -> None:
    probabilities = np.array([[0.6, 0.3, 0.1, 0.0], [0.1, 0.2, 0.3, 0.4], [0.25, 0.25, 0.25, 0.25]])
    metrics = score(probabilities, np.array([0, 0, 3]))
    assert metrics["accuracy"] == pytest.approx(1 / 3)
    assert metrics["top3_accuracy"] == pytest.approx(1 / 3)
    assert top_categories([0.1, 0.5, 0.2, 0.2], ["a", "b", "c", "d"]) == ["b", "c", "d"]


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
