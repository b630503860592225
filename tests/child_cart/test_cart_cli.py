"""`fedcart data synth`, `qr make`, `train` and `export` end to end on the embedded store."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from cartnet.authority import Authority, ensure_enrolled
from child_cart.models.versions import ModelVersions
from child_cart.qr import decode_image
from child_cart.store import open_store
from fedcart import cart_cmd


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


@pytest.mark.parametrize(
    "command",
    [
        ("node", "--data-dir", "cart"),
        ("bridge", "--data-dir", "bridge"),
        ("swarm", "--root", "swarm"),
        ("data", "synth", "--rows", "10", "--data-root", "carts"),
        ("train", "--data-dir", "cart"),
    ],
    ids=lambda command: " ".join(command[:2]),
)
def test_a_bad_setting_is_one_line_that_names_it(cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, command):
    monkeypatch.setenv("LOG_LEVEL", "loud")
    output = cli(*command, code=2).output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert "LOG_LEVEL='LOUD'" in lines[0] and "'DEBUG', 'INFO', 'WARNING' or 'ERROR'" in lines[0], output
    assert "invalid" in lines[0] and "Traceback" not in output
    assert not list(tmp_path.iterdir()), "a refused command must leave nothing behind"


def test_every_bad_cart_setting_is_named_and_secrets_are_not_repeated(cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UI_PORT", "abc")
    monkeypatch.setenv("VAL_FRACTION", "3")
    monkeypatch.setenv("SWARM_TOKEN", "short")
    (line,) = [line for line in cli("node", "--data-dir", "cart", code=2).output.splitlines() if line.strip()]
    assert line.startswith("error: invalid cart settings: "), line
    assert "UI_PORT='abc'" in line and "VAL_FRACTION='3'" in line and "SWARM_TOKEN: " in line, line
    assert "short" not in line, "an error must not repeat a secret"


@pytest.fixture
def enrolled_cart(tmp_path: Path) -> Path:
    data_dir = tmp_path / "cart"
    ensure_enrolled(Authority.load_or_create(tmp_path / "authority"), data_dir, "cart")
    return data_dir


@pytest.fixture
def root_level():
    """The CLI configures the root logger; put its level back for the tests after this one."""
    level = logging.getLogger().level
    yield
    logging.getLogger().setLevel(level)


@pytest.mark.parametrize(
    ("flags", "level", "expected"),
    [((), "warning", logging.WARNING), ((), "ERROR", logging.ERROR), (("--verbose",), "ERROR", logging.DEBUG)],
)
def test_the_cart_honours_log_level(cli, monkeypatch, enrolled_cart, root_level, flags, level, expected) -> None:
    seen: dict[str, object] = {}

    async def run_node(settings) -> None:  # the node itself is not the point: the logging it starts with is
        seen["level"], seen["settings"] = logging.getLogger().level, settings.log_level

    monkeypatch.setattr(cart_cmd, "run_node", run_node)
    monkeypatch.setattr(cart_cmd, "leave", lambda: None)
    monkeypatch.setenv("LOG_LEVEL", level)
    cli(*flags, "node", "--data-dir", str(enrolled_cart))
    assert seen == {"level": expected, "settings": level.upper()}


def test_a_ui_certificate_without_its_key_is_one_line(cli, monkeypatch, enrolled_cart, root_level) -> None:
    cert = enrolled_cart / "ui-cert.pem"
    cert.write_text("not read: the key is missing")
    monkeypatch.setenv("UI_TLS_CERT", str(cert))
    monkeypatch.delenv("UI_TLS_KEY", raising=False)
    result = cli("node", "--data-dir", str(enrolled_cart), code=2)
    assert "error: UI_TLS_CERT and UI_TLS_KEY go together" in result.output, result.output
