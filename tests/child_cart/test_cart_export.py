"""TFLite export: LiteRT matches Keras, a mismatch is refused, the golden vectors keep their contract
(month, profile and basket in; the next category out, never one already in the basket)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from child_cart.models import export
from child_cart.models.export import ExportError, export_tflite, run_litert
from child_cart.models.versions import ModelVersions
from child_cart.tasks.recommend import encode_features

GOLDEN_KEYS = {"task", "model_sha256", "months", "profiles", "categories", "input_size", "tolerance", "cases"}


def test_the_exported_model_matches_keras_on_held_out_rows(trained) -> None:
    result = trained.export
    assert result.max_abs_diff <= 1e-4
    assert result.checked_rows >= len(trained.task.make_dataset(trained.rows).x_val)
    data = result.tflite_path.read_bytes()
    assert hashlib.sha256(data).hexdigest() == result.sha256
    assert result.tflite_path.parent == trained.data_dir / "models"
    sidecar = result.tflite_path.with_name(result.tflite_path.name + ".sha256").read_text()
    assert sidecar == f"{result.sha256}  {result.tflite_path.name}\n"
    version = ModelVersions(trained.store, trained.data_dir).get(result.version_id)
    assert version.tflite_sha256 == result.sha256 and version.info["tflite_max_abs_diff"] == result.max_abs_diff


def test_golden_vectors_follow_the_contract(trained) -> None:
    golden = json.loads(trained.export.golden_path.read_text())
    task = trained.task
    assert set(golden) == GOLDEN_KEYS
    assert golden["task"] == "recommend" and golden["months"] == 12 and golden["tolerance"] == 1e-5
    assert golden["model_sha256"] == trained.export.sha256
    assert golden["profiles"] == task.profiles and golden["categories"] == task.categories
    assert golden["input_size"] == 2 + len(task.profiles) + len(task.categories)
    cases = golden["cases"]
    assert {(c["month"], c["profile"]) for c in cases} == {(m, p) for m in range(1, 13) for p in task.profiles}
    assert len(cases) == 3 * 12 * len(task.profiles)
    assert {len(c["basket"]) for c in cases} == {0, 1, 2}
    assert {b for c in cases for b in c["basket"]} == set(task.categories)
    tflite = trained.export.tflite_path.read_bytes()
    outputs = run_litert(tflite, np.array([c["input"] for c in cases], np.float32))
    for case, output in zip(cases, outputs):
        expected = encode_features(case["month"], case["profile"], case["basket"], task.profiles, task.categories)
        assert case["input"] == pytest.approx(expected, abs=1e-7)
        assert case["output"] == pytest.approx(output.tolist(), abs=1e-7)
        assert sum(case["output"]) == pytest.approx(1.0, abs=1e-5)
        assert all(case["output"][task.categories.index(c)] == 0.0 for c in case["basket"])
        scores = np.array(case["output"])
        scores[[task.categories.index(c) for c in case["basket"]]] = -1.0
        order = np.argsort(-scores, kind="stable")[:3]
        assert case["top3"] == [task.categories[i] for i in order]
        assert not set(case["top3"]) & set(case["basket"])


def test_an_export_that_drifts_from_keras_is_refused_and_writes_nothing(trained, monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(export, "run_litert", lambda tflite, x: run_litert(tflite, x) + 2e-4)
    before = sorted(p.name for p in (trained.data_dir / "models").iterdir())
    record = ModelVersions(trained.store, trained.data_dir).get(trained.export.version_id)
    with pytest.raises(ExportError) as caught:
        export_tflite(trained.store, trained.data_dir, trained.task, golden_path=tmp_path / "golden.json")
    assert caught.value.code == "mismatch" and "not published" in caught.value.message
    assert sorted(p.name for p in (trained.data_dir / "models").iterdir()) == before
    assert not (tmp_path / "golden.json").exists()
    assert ModelVersions(trained.store, trained.data_dir).get(trained.export.version_id) == record


def test_exporting_before_any_training_is_a_clear_error(tmp_path, catalogue) -> None:
    from child_cart.store import open_store
    from child_cart.tasks import get_task

    with pytest.raises(ExportError) as caught:
        export_tflite(open_store(tmp_path, catalogue=catalogue), tmp_path, get_task())
    assert caught.value.code == "no_model" and "fedcart train" in caught.value.message
