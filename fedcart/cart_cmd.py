"""`fedcart node`: run a cart (store, bridge connection, rounds, UI)."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path

import typer
from pydantic import ValidationError

from cartnet.certificates import CertificateError
from child_cart.settings import CartSettings

log = logging.getLogger(__name__)


def register(app: typer.Typer) -> None:
    @app.command()
    def node(
        data_dir: Path | None = typer.Option(None, help="Keys, store and models (DATA_DIR)"),
        bridge: str | None = typer.Option(
            None, help="Bridge base URLs, comma-separated, primary first; the cart fails over along them (BRIDGE_URLS)"
        ),
        ui_port: int | None = typer.Option(None, help="Flask UI port (UI_PORT)"),
        mongo_url: str | None = typer.Option(None, help="MongoDB URL; empty = embedded store (MONGO_URL)"),
    ) -> None:
        """Run a cart: connect to its bridge, run federated rounds, serve the UI."""
        overrides = {"data_dir": data_dir, "bridge_urls": bridge, "ui_port": ui_port, "mongo_url": mongo_url}
        # model_validate runs BaseSettings.__init__ (a custom __init__), so env and .env still fill the rest
        try:
            settings = CartSettings.model_validate({k: v for k, v in overrides.items() if v is not None})
        except ValidationError as exc:
            typer.echo(f"error: invalid cart settings: {exc}", err=True)
            raise typer.Exit(2) from None
        try:
            asyncio.run(run_node(settings))
        except CertificateError as exc:
            typer.echo(f"error: this cart is not a member of a swarm: {exc}", err=True)
            raise typer.Exit(2) from None


async def run_node(settings: CartSettings) -> None:
    """Run until SIGINT/SIGTERM, then leave the swarm cleanly."""
    from child_cart.node import CartNode

    node = CartNode(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await node.start(ui=True)
    bridges = ", ".join(settings.bridge_urls)
    log.info("cart %s running (bridges %s, data %s)", node.node_id[:8], bridges, settings.data_dir)
    await stop.wait()
    log.info("cart %s stopping", node.node_id[:8])
    await node.stop()
