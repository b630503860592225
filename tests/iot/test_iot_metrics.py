"""Detection metrics: counted once over every sample, equal to scikit-learn's, never a mean over batches."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as sk

from child_cart.tasks.iot.metrics import Detection, confusion, detection_metrics


def _detection(truth, guess, score=None) -> Detection:
    truth, guess = np.asarray(truth), np.asarray(guess)
    score = np.asarray(score if score is not None else guess, dtype=np.float64)
    return Detection(truth, guess, score, np.zeros(len(truth), dtype=np.int64))


def test_a_worked_example() -> None:
    m = detection_metrics(
        _detection([0, 0, 0, 0, 1, 1, 1, 0], [0, 1, 0, 0, 1, 1, 0, 0], [0.1, 0.7, 0.2, 0.3, 0.9, 0.8, 0.4, 0.0])
    )
    assert (m["tn"], m["fp"], m["fn"], m["tp"]) == (4, 1, 1, 2)
    assert m["accuracy"] == pytest.approx(6 / 8)
    assert m["precision"] == pytest.approx(2 / 3) and m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3) and m["fpr"] == pytest.approx(1 / 5)
    assert m["roc_auc"] == pytest.approx(
        sk.roc_auc_score([0, 0, 0, 0, 1, 1, 1, 0], [0.1, 0.7, 0.2, 0.3, 0.9, 0.8, 0.4, 0.0])
    )


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.booleans(), st.floats(0, 1)), min_size=1, max_size=200))
def test_metrics_match_scikit_learn_on_the_whole_set(samples) -> None:
    truth, guess, score = (np.array(column) for column in zip(*samples))
    m = detection_metrics(_detection(truth.astype(int), guess.astype(int), score))
    assert m["accuracy"] == pytest.approx(sk.accuracy_score(truth, guess))
    assert m["precision"] == pytest.approx(sk.precision_score(truth, guess, zero_division=0))
    assert m["recall"] == pytest.approx(sk.recall_score(truth, guess, zero_division=0))
    assert m["f1"] == pytest.approx(sk.f1_score(truth, guess, zero_division=0))
    assert m["tn"] + m["fp"] + m["fn"] + m["tp"] == len(samples)
    assert ("roc_auc" in m) == (0 < truth.sum() < len(truth))


def test_joining_detections_counts_samples_not_batches() -> None:
    """Two batches with very different attack counts: the set's F1 is not the mean of the batches' F1."""
    small = _detection([1, 0, 0, 0], [0, 0, 0, 0])
    large = _detection([1] * 50 + [0] * 10, [1] * 50 + [0] * 10)
    joined = detection_metrics(Detection.concat([small, large]))
    batch_mean = np.mean([detection_metrics(small)["f1"], detection_metrics(large)["f1"]])
    assert joined["f1"] == pytest.approx(2 * 50 / (2 * 50 + 1))
    assert joined["f1"] != pytest.approx(batch_mean)
    assert confusion(np.array([1, 1, 0]), np.array([1, 0, 1])) == (0, 1, 1, 1)


def test_empty_ratios_are_zero_and_mismatched_lengths_refused() -> None:
    m = detection_metrics(_detection([0, 0], [0, 0]))
    assert m["precision"] == m["recall"] == m["f1"] == 0.0 and "roc_auc" not in m
    with pytest.raises(ValueError, match="differ in length"):
        Detection(np.zeros(3), np.zeros(2), np.zeros(3), np.zeros(3))
    with pytest.raises(ValueError, match="no samples"):
        detection_metrics(_detection([], []))
