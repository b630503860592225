"""`fedcart bridge`: run a parent node (DHT + relay + model distribution for phones)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from pydantic import ValidationError
from rich.console import Console

from cartnet import logs
from cartnet.certificates import CertificateError

if TYPE_CHECKING:
    from parent_cart.bridge import Bridge

console = Console(stderr=True)


def register(app: typer.Typer) -> None:
    @app.command()
    def bridge(
        port: int | None = typer.Option(None, "--port", help="HTTP/WebSocket relay port (env PORT)"),
        dht_port: int | None = typer.Option(None, "--dht-port", help="Kademlia UDP port (env DHT_PORT)"),
        data_dir: Path | None = typer.Option(None, "--data-dir", help="Keys and published models (env DATA_DIR)"),
        host: str | None = typer.Option(None, "--host", help="Bind address (env HOST)"),
        bootstrap: str | None = typer.Option(
            None, "--bootstrap", help="host:port,... DHT peers (env BRIDGE_BOOTSTRAP)"
        ),
        public_url: str | None = typer.Option(None, "--public-url", help="URL other bridges dial (env PUBLIC_URL)"),
    ) -> None:
        """Run a bridge: Kademlia DHT node + WebSocket relay + model distribution."""
        from parent_cart import server
        from parent_cart.settings import BridgeSettings

        flags = {
            "port": port,
            "dht_port": dht_port,
            "data_dir": data_dir,
            "host": host,
            "bridge_bootstrap": bootstrap,
            "public_url": public_url,
        }
        try:
            # model_validate runs BaseSettings.__init__ (a custom __init__), so env and .env still fill the rest
            settings = BridgeSettings.model_validate({key: value for key, value in flags.items() if value is not None})
            settings.bootstrap_addresses()
        except (ValidationError, ValueError) as exc:
            console.print(f"[red]invalid bridge settings:[/red] {exc}")
            raise typer.Exit(2) from None
        if logging.getLogger().level != logging.DEBUG:
            logs.configure(level=settings.log_level)
        try:
            server.run(settings, _announce)
        except CertificateError as exc:
            console.print(f"[red]this bridge is not a member of a swarm:[/red] {exc}", soft_wrap=True)
            raise typer.Exit(2) from None


def _announce(bridge: Bridge) -> None:
    """One line a person (or a script) can read to find the bridge."""
    console.print(
        f"[green]bridge {bridge.node_id}[/green] relay {bridge.url} dht udp/{bridge.dht_port}", soft_wrap=True
    )
