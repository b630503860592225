"""`fedcart data synth | qr make | train | export`: the cart's data and model tools."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from cartnet.settings import describe_error
from child_cart.settings import CartSettings

log = logging.getLogger(__name__)
console = Console()


def _settings(**flags: Any) -> CartSettings:
    """Settings from .env and the environment, with the flags the user actually gave on top; a bad one ends the
    command with one line that names it."""
    try:
        return CartSettings.model_validate({k: v for k, v in flags.items() if v is not None})
    except ValidationError as exc:
        raise _fail(f"invalid cart settings: {describe_error(exc)}", 2) from None


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _open(settings: CartSettings) -> Any:
    from child_cart.store import StoreUnavailable, open_cart_store

    try:
        return open_cart_store(settings)
    except StoreUnavailable as exc:
        raise _fail(str(exc)) from exc


def register(app: typer.Typer) -> None:
    """Add the `data` and `qr` groups and the `train` and `export` commands to the CLI."""
    data_app = typer.Typer(help="Purchase data: synthetic shoppers.", no_args_is_help=True)
    qr_app = typer.Typer(help="Product QR codes.", no_args_is_help=True)
    app.add_typer(data_app, name="data")
    app.add_typer(qr_app, name="qr")
    data_app.command("synth")(synth)
    qr_app.command("make")(qr_make)
    app.command("train")(train)
    app.command("export")(export)


def synth(
    rows: int = typer.Option(1000, "--rows", min=1, help="Purchase rows per cart"),
    carts: int = typer.Option(3, "--carts", min=1, help="How many carts (data-root/cart-0 ...)"),
    seed: int = typer.Option(0, "--seed", help="Same seed, same rows"),
    skew: float = typer.Option(
        0.0, "--skew", min=0.0, help="0 = IID carts; larger = each cart dominated by fewer profiles"
    ),
    data_root: Path = typer.Option(Path("data"), "--data-root", help="Parent of the cart data dirs"),
    data_dirs: list[Path] | None = typer.Option(
        None, "--data-dir", help="Explicit cart data dirs (repeat; overrides --data-root/--carts)"
    ),
) -> None:
    """Fill cart stores with seeded synthetic purchases (seasonal, profile-dependent, optionally non-IID).

    Each cart's id is its data dir's name. With MONGO_URL set, cart `d` uses the database `<MONGO_DB>-<d>`.
    """
    from child_cart.synth import shoppers as synthetic

    dirs = list(data_dirs) if data_dirs else [data_root / name for name in synthetic.cart_names(carts)]
    base = _settings()
    catalogue = _catalogue(base)
    generated = synthetic.generate(catalogue, rows, len(dirs), seed, skew, cart_ids=[d.name for d in dirs])
    table = Table(title=f"synthetic purchases (seed {seed}, skew {skew})")
    for column in ("cart", "store", "rows", "top profiles"):
        table.add_column(column)
    for directory, cart_rows in zip(dirs, generated):
        settings = _settings(
            data_dir=directory, mongo_db=f"{base.mongo_db}-{directory.name}" if base.mongo_url else None
        )
        store = _open(settings)
        synthetic.fill_store(store, cart_rows)
        where = f"mongo:{settings.mongo_db}" if settings.mongo_url else str(directory)
        table.add_row(directory.name, where, str(len(cart_rows)), _top_profiles(cart_rows))
        store.close()
    console.print(table)


def qr_make(
    out: Path = typer.Option(..., "--out", help="Folder for the PNGs and a printable index.html"),
    data_dir: Path | None = typer.Option(
        None, "--data-dir", help="Use this cart's products instead of the catalogue file"
    ),
    scale: int = typer.Option(8, "--scale", min=1, max=40, help="Pixels per QR module"),
) -> None:
    """Write printable QR codes for every product."""
    from child_cart import qr
    from child_cart.store import Product

    settings = _settings(data_dir=data_dir)
    if data_dir is None:
        products = list(_catalogue(settings).products)
    else:
        store = _open(settings)
        products = [Product.from_doc(d) for d in store.products.find({}).sort("_id", 1)]
        store.close()
    written = qr.write_codes(products, out, scale)
    typer.echo(f"wrote {len(written)} QR codes and index.html to {out}")


def train(
    task_name: str = typer.Option("recommend", "--task", help="Registered task to train"),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="Cart data dir (default: DATA_DIR)"),
    epochs: int | None = typer.Option(None, "--epochs", min=1, help="Default: TRAIN_EPOCHS"),
    batch_size: int | None = typer.Option(None, "--batch-size", min=1, help="Default: TRAIN_BATCH_SIZE"),
    seed: int = typer.Option(0, "--seed", help="Initial weights and shuffling"),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Epoch progress bar"),
) -> None:
    """Train a task locally on this cart's rows and store the result as a new model version."""
    from child_cart.models.versions import ModelVersions
    from child_cart.tasks.trainer import train as run_training

    settings = _settings(data_dir=data_dir, train_epochs=epochs, train_batch_size=batch_size)
    task = _task(task_name, settings)
    store = _open(settings)
    try:
        result = run_training(
            task, task.rows(store), settings.train_epochs, settings.train_batch_size, seed, progress=progress
        )
    except ValueError as exc:
        raise _fail(f"{exc}. Scan and check out, or run `fedcart data synth`.") from exc
    version = ModelVersions(store, settings.data_dir).save(
        task.name, result.weights, result.train_samples, result.metrics
    )
    store.close()
    table = Table(
        title=f"{version.id}: {result.train_samples} training rows, {result.val_samples} held out, {result.seconds:.1f} s"
    )
    table.add_column("held-out metric")
    table.add_column("value", justify="right")
    for name, value in result.metrics.items():
        table.add_row(name, f"{value:.4f}")
    console.print(table)


def export(
    tflite: bool = typer.Option(False, "--tflite", help="Export to TensorFlow Lite (the one format there is)"),
    task_name: str = typer.Option("recommend", "--task", help="Registered task to export"),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="Cart data dir (default: DATA_DIR)"),
    golden: Path | None = typer.Option(
        None, "--golden", help="Where to write golden vectors (default: DATA_DIR/models/<task>-golden.json)"
    ),
    tolerance: float | None = typer.Option(None, "--tolerance", help="Default: EXPORT_TOLERANCE"),
    signed: Path | None = typer.Option(
        None,
        "--signed",
        help="Also write the signed latest.json a bridge would serve for this model, with the swarm key and a "
        "pairing URI (the Android core's signed fixture; the cart must be enrolled)",
    ),
    pairing_bridge: str = typer.Option(
        "http://10.0.2.2:8470", "--pairing-bridge", help="Bridge URL in the --signed fixture's pairing URI"
    ),
) -> None:
    """Convert the newest model to TFLite, check it against Keras with LiteRT, and publish it when it matches."""
    from cartnet.certificates import CertificateError
    from child_cart.models.export import ExportError, export_tflite

    if not tflite:
        raise _fail("choose a format: --tflite", code=2)
    settings = _settings(data_dir=data_dir, export_tolerance=tolerance)
    task = _task(task_name, settings)
    store = _open(settings)
    try:
        result = export_tflite(store, settings.data_dir, task, settings.export_tolerance, golden)
        if signed is not None:
            _write_signed(store, settings.data_dir, task, result, signed, pairing_bridge)
    except ExportError as exc:
        raise _fail(exc.message) from exc
    except CertificateError as exc:
        raise _fail(f"cannot sign the model: {exc}") from exc
    finally:
        store.close()
    typer.echo(f"exported {result.version_id} -> {result.tflite_path}")
    typer.echo(
        f"sha256 {result.sha256}; max |Keras - LiteRT| = {result.max_abs_diff:.2e} over {result.checked_rows} rows"
    )
    if result.golden_path is not None:
        typer.echo(f"golden vectors -> {result.golden_path}")
    if signed is not None:
        typer.echo(f"signed model metadata -> {signed}")


def _write_signed(store: Any, data_dir: Path, task: Any, result: Any, path: Path, bridge_url: str) -> None:
    """The export's signed fixture (child_cart.models.signing), for the last round this cart logged (0 before any)."""
    from child_cart.models.signing import phone_claims, signed_golden, write_signed_golden
    from child_cart.models.versions import ModelVersions
    from child_cart.rounds.roundlog import next_round_number

    exported = ModelVersions(store, data_dir).get(result.version_id)
    claims = phone_claims(task, exported, max(0, next_round_number(store) - 1))
    write_signed_golden(path, signed_golden(data_dir, result.tflite_path.read_bytes(), claims, bridge_url))


def _catalogue(settings: CartSettings) -> Any:
    from child_cart.store import load_catalogue

    return load_catalogue(settings.catalogue_path)


def _task(name: str, settings: CartSettings) -> Any:
    from child_cart.tasks import get_task

    try:
        return get_task(name, settings)
    except KeyError as exc:
        raise _fail(exc.args[0]) from exc


def _top_profiles(rows: list[dict]) -> str:
    from collections import Counter

    counts = Counter(r["profile"] for r in rows).most_common(2)
    return ", ".join(f"{name} {count / len(rows):.0%}" for name, count in counts)
