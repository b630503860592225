"""`fedcart data synth`, `qr make`, `train` and `export` end to end on the embedded store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from child_cart.models.versions import ModelVersions
from child_cart.qr import decode_image
from child_cart.store import open_store
from fedcart.cli import app


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Runs the real CLI in an empty folder, on the embedded store."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MONGO_URL", "")
    runner = CliRunner()

    def run(*args: str, code: int = 0):
        result = runner.invoke(app, list(args))
        assert result.exit_code == code, result.output
        return result

    return run


def test_synth_train_export_on_a_fresh_cart(cli, tmp_path: Path) -> None:
    cli("data", "synth", "--rows", "900", "--carts", "2", "--seed", "3", "--skew", "2", "--data-root", "carts")
    for name in ("cart-0", "cart-1"):
        store = open_store(tmp_path / "carts" / name)
        assert store.purchases.count_documents({"cart_id": name}) == 900
    cli("train", "--data-dir", "carts/cart-1", "--epochs", "2", "--no-progress")
    versions = ModelVersions(open_store(tmp_path / "carts" / "cart-1"), tmp_path / "carts" / "cart-1").versions(
        "recommend"
    )
    # 900 purchases make ~675 basket steps (one per new category), ~80% of them trained on
    assert [v.id for v in versions] == ["recommend-v000001"] and versions[0].samples > 450
    out = cli("export", "--tflite", "--data-dir", "carts/cart-1", "--golden", "golden.json").output
    golden = json.loads((tmp_path / "golden.json").read_text())
    assert golden["model_sha256"] in out
    assert list((tmp_path / "carts" / "cart-1" / "models").glob("recommend-*.tflite"))
    unsigned = cli("export", "--tflite", "--data-dir", "carts/cart-1", "--signed", "signed.json", code=1).output
    assert "cannot sign the model: this node is not enrolled" in unsigned and "fedcart enrol" in unsigned
    assert not (tmp_path / "signed.json").exists()


def test_export_refuses_without_a_format_or_a_model(cli) -> None:
    assert "--tflite" in cli("export", "--data-dir", "empty", code=2).output
    assert "fedcart train" in cli("export", "--tflite", "--data-dir", "empty", code=1).output


def test_train_explains_an_empty_cart_and_an_unknown_task(cli) -> None:
    assert "fedcart data synth" in cli("train", "--data-dir", "empty", "--epochs", "1", code=1).output
    assert "unknown task" in cli("train", "--task", "nope", "--data-dir", "empty", code=1).output


def test_qr_make_writes_codes_for_the_catalogue(cli, tmp_path: Path, catalogue) -> None:
    cli("qr", "make", "--out", "codes", "--scale", "4")
    pngs = sorted((tmp_path / "codes").glob("*.png"))
    assert len(pngs) == len(catalogue.products)
    assert decode_image(pngs[0].read_bytes()).id == catalogue.products[0].id
