"""The anomaly autoencoder: benign-only training and scaling, thresholds from held-out benign rows, per-sample scoring."""

from __future__ import annotations

import numpy as np
import pytest

from child_cart.rounds.learner import Learner
from child_cart.settings import CartSettings
from child_cart.tasks import get_task
from child_cart.tasks.iot import scaler
from child_cart.tasks.iot.metrics import detection_metrics
from child_cart.tasks.iot.rows import targets
from child_cart.tasks.iot_anomaly import AnomalyTask, NotCalibrated
from child_cart.tasks.split import is_validation
from child_cart.tasks.trainer import train


def _ids(task: AnomalyTask, rows: list[dict]) -> dict[str, set[str]]:
    """Which row ids make_dataset put where, recomputed from the rule in the docs."""
    val = {r["_id"] for r in rows if is_validation(r["_id"], task.val_fraction)}
    benign = {r["_id"] for r in rows if r["_id"] not in val and r["label"] == 0}
    calib = {i for i in benign if is_validation(f"calibration:{i}", task.calibration_fraction)}
    return {"val": val, "calib": calib, "train": benign - calib}


def _matrix(rows: list[dict], ids: set[str]) -> np.ndarray:
    return np.array([r["features"] for r in rows if r["_id"] in ids], dtype=np.float32)


def test_the_three_sets_are_disjoint_and_only_benign_rows_train_or_calibrate(traffic, anomaly_task) -> None:
    rows = traffic[0]
    dataset = anomaly_task.make_dataset(rows)
    ids = _ids(anomaly_task, rows)
    assert not (ids["val"] & ids["calib"]) and not (ids["val"] & ids["train"]) and not (ids["calib"] & ids["train"])
    np.testing.assert_array_equal(dataset.x_train, _matrix(rows, ids["train"]))
    np.testing.assert_array_equal(dataset.x_calib, _matrix(rows, ids["calib"]))
    assert (dataset.y_train[:, 0] == 0).all() and (dataset.y_calib[:, 0] == 0).all()
    assert set(dataset.y_val[:, 0]) == {0, 1}
    assert len(dataset.x_calib) > 20


def test_the_scaler_is_fitted_on_benign_training_rows_only_and_scales_every_row_the_same(traffic, anomaly_task) -> None:
    rows = traffic[1]
    dataset = anomaly_task.make_dataset(rows)
    model = anomaly_task.build_model(seed=0)
    anomaly_task.fit(model, dataset, epochs=1, batch_size=64)
    mean, variance, count = scaler.statistics(model)
    benign_train = dataset.x_train.astype(np.float64)
    np.testing.assert_allclose(mean, benign_train.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(variance, np.maximum(benign_train.var(axis=0), scaler.MIN_VARIANCE), rtol=1e-4)
    assert count == len(benign_train)
    everything = np.array([r["features"] for r in rows], dtype=np.float64)
    assert not np.allclose(mean, everything.mean(axis=0), rtol=0.05)
    attacks = dataset.x_val[dataset.y_val[:, 0] == 1]
    scaled = np.asarray(model.get_layer(scaler.LAYER)(attacks))
    np.testing.assert_allclose(scaled, (attacks - mean) / np.sqrt(variance), rtol=1e-3, atol=1e-3)
    assert np.abs(scaled.mean(axis=0)).max() > 1.0, "attack rows scaled by their own statistics would centre on 0"


def test_a_trained_scaler_is_kept_when_training_goes_on(traffic, anomaly_task) -> None:
    model = anomaly_task.build_model(seed=0)
    anomaly_task.fit(model, anomaly_task.make_dataset(traffic[0]), epochs=1, batch_size=64)
    before = scaler.statistics(model)
    anomaly_task.fit(model, anomaly_task.make_dataset(traffic[2]), epochs=1, batch_size=64)
    np.testing.assert_array_equal(scaler.statistics(model)[0], before[0])


def test_threshold_is_mean_plus_k_std_of_held_out_benign_errors_and_nothing_else(traffic, anomaly_task) -> None:
    rows = traffic[0]
    dataset = anomaly_task.make_dataset(rows)
    model = anomaly_task.build_model(seed=1)
    anomaly_task.fit(model, dataset, epochs=3, batch_size=64)
    anomaly_task.calibrate(model, dataset)
    errors = anomaly_task.reconstruction_errors(model, dataset.x_calib)
    assert anomaly_task.threshold(model).value == pytest.approx(errors.mean() + 3.0 * errors.std())
    poisoned = dataset._replace(
        x_train=dataset.x_val, y_train=dataset.y_val, x_val=dataset.x_val * 100, y_val=dataset.y_val
    )
    anomaly_task.calibrate(model, poisoned)
    assert anomaly_task.threshold(model).value == pytest.approx(errors.mean() + 3.0 * errors.std())
    shifted = dataset._replace(x_calib=dataset.x_calib * 1.5)
    anomaly_task.calibrate(model, shifted)
    assert anomaly_task.threshold(model).value != pytest.approx(errors.mean() + 3.0 * errors.std())


def test_a_threshold_belongs_to_the_weights_it_was_computed_for(traffic, anomaly_task) -> None:
    dataset = anomaly_task.make_dataset(traffic[0])
    model = anomaly_task.build_model(seed=0)
    anomaly_task.fit(model, dataset, epochs=1, batch_size=64)
    with pytest.raises(NotCalibrated):
        anomaly_task.evaluate(model, dataset.x_val, dataset.y_val)
    anomaly_task.calibrate(model, dataset)
    anomaly_task.evaluate(model, dataset.x_val, dataset.y_val)
    model.set_weights([w * 0.9 for w in model.get_weights()])
    with pytest.raises(NotCalibrated):
        anomaly_task.evaluate(model, dataset.x_val, dataset.y_val)


def test_per_device_thresholds_use_each_device_own_benign_rows(traffic) -> None:
    rows = traffic[0] + traffic[1]
    device = AnomalyTask(layers=(32, 16), scope="device")
    dataset = device.make_dataset(rows)
    model = device.build_model(seed=0)
    device.fit(model, dataset, epochs=2, batch_size=64)
    device.calibrate(model, dataset)
    threshold = device.threshold(model)
    errors = device.reconstruction_errors(model, dataset.x_calib)
    codes = dataset.y_calib[:, 1]
    assert set(threshold.per_device) == set(np.unique(codes))
    for code, value in threshold.per_device.items():
        mine = errors[codes == code]
        assert value == pytest.approx(mine.mean() + 3.0 * mine.std())
    limits = threshold.for_devices(dataset.y_val[:, 1])
    assert len(set(np.round(limits, 9))) == 2


def test_metrics_are_counted_per_sample_over_uneven_batches(traffic, anomaly_task) -> None:
    rows = traffic[2]
    result = train(anomaly_task, rows, epochs=3, batch_size=64)
    dataset = anomaly_task.make_dataset(rows)
    model = result.model
    limit = anomaly_task.threshold(model).value
    per_sample = np.array(
        [anomaly_task.reconstruction_errors(model, dataset.x_val[i : i + 1])[0] for i in range(len(dataset.x_val))]
    )
    flagged = per_sample > limit
    truth = dataset.y_val[:, 0] == 1
    metrics = result.metrics
    assert (metrics["tp"], metrics["fp"], metrics["fn"], metrics["tn"]) == (
        np.sum(flagged & truth),
        np.sum(flagged & ~truth),
        np.sum(~flagged & truth),
        np.sum(~flagged & ~truth),
    )
    assert metrics["tp"] + metrics["fp"] + metrics["fn"] + metrics["tn"] == len(dataset.x_val)
    joined = anomaly_task.detect(model, dataset.x_val, dataset.y_val)
    halves = [anomaly_task.detect(model, dataset.x_val[s], dataset.y_val[s]) for s in (slice(0, 7), slice(7, None))]
    assert detection_metrics(joined) == detection_metrics(type(joined).concat(halves))


def test_the_autoencoder_learns_to_tell_attacks_from_benign_traffic(traffic) -> None:
    task = AnomalyTask(layers=(48, 24), scope="global")
    result = train(task, traffic[1], epochs=15, batch_size=32)
    assert result.metrics["roc_auc"] > 0.85 and result.metrics["f1"] > 0.7 and result.metrics["fpr"] < 0.15


def test_the_round_learner_recalibrates_every_weight_list_it_scores(traffic, anomaly_task) -> None:
    learner = Learner(anomaly_task, batch_size=64)
    learner.load_rows(traffic[0])
    trained = learner.train(learner.initial_weights, epochs=2)
    other = Learner(anomaly_task, batch_size=64, seed=3)
    other.load_rows(traffic[1])
    foreign = other.train(other.initial_weights, epochs=2)
    averaged = [(a + b) / 2 for a, b in zip(trained, foreign)]
    for weights in (trained, foreign, averaged):
        assert 0 <= learner.evaluate(weights)["f1"] <= 1


def test_registered_and_configured_from_settings(tmp_path) -> None:
    settings = CartSettings(
        _env_file=None,
        data_dir=tmp_path,
        iot_anomaly_layers=[20, 10],
        iot_threshold_k=2.5,
        iot_threshold_scope="global",
    )
    task = get_task("iot-anomaly", settings)
    assert isinstance(task, AnomalyTask) and task.layers == (20, 10) and task.k == 2.5 and task.scope == "global"
    assert task.collection == "telemetry" and task.primary_metric == "f1"
    rows = [{"_id": "a", "schema": "traffic", "features": [1.0] * 3, "label": 0, "device": "d"}]
    assert len(task.make_dataset(rows).x_val) + len(task.make_dataset(rows).x_train) == 0
    assert targets([]).shape == (0, 2)
