"""bench/flower_seeds.py's arithmetic: seeds paired from flower_compare.py's folders, the mean and its standard error."""

from __future__ import annotations

import importlib
import json
import math
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture
def seeds(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(BENCH))
    return importlib.import_module("flower_seeds")


def _write(folder: Path, swarm_top3: float, flower_top3: float) -> None:
    (folder / "fedcart").mkdir(parents=True)
    scores = {"top1": 0.4, "top3": swarm_top3, "recall5": 0.9}
    summary = {"swarm": scores, "federated": {**scores, "top3": 0.0}, "sent_bytes_per_round": [90_000, 80_000]}
    (folder / "fedcart" / "summary.json").write_text(json.dumps(summary))
    rounds = [{"top1": 0.1, "top3": 0.1, "recall5": 0.1}, {"top1": 0.41, "top3": flower_top3, "recall5": 0.9}]
    (folder / "flower.json").write_text(json.dumps({"rounds": rounds, "payload_bytes_per_round": [85_000, 85_000]}))


def test_a_seed_pairs_the_swarm_models_with_flowers_last_round(seeds: ModuleType, tmp_path: Path) -> None:
    _write(tmp_path, swarm_top3=0.770, flower_top3=0.775)
    pair = seeds.read_pair(3, tmp_path)
    assert pair.seed == 3 and pair.fedcart["top3"] == 0.770 and pair.flower["top1"] == 0.41
    assert pair.difference("top3") == pytest.approx(-0.5) and pair.difference("top1") == pytest.approx(-1.0)
    assert (pair.sent_kb, pair.flower_kb) == (85.0, 85.0)


def test_a_seed_with_one_side_missing_is_run_again(seeds: ModuleType, tmp_path: Path) -> None:
    _write(tmp_path, 0.77, 0.77)
    (tmp_path / "flower.json").unlink()
    assert seeds.read_pair(0, tmp_path) is None
    assert seeds.read_pair(0, tmp_path / "never-run") is None


def test_the_mean_comes_with_its_standard_error(seeds: ModuleType) -> None:
    assert seeds.mean_and_error([1.0, 2.0, 3.0]) == pytest.approx((2.0, 1.0 / math.sqrt(3.0)))
    assert seeds.mean_and_error([-0.4, -0.4]) == pytest.approx((-0.4, 0.0))
    mean, error = seeds.mean_and_error([0.5])
    assert mean == 0.5 and math.isnan(error)
