"""`fedcart bridge`: run a parent node (DHT + relay + model distribution for phones)."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from pydantic import ValidationError
from rich.console import Console

from cartnet import logs
from cartnet.certificates import CertificateError
from cartnet.settings import describe_error
from cartnet.tls import TLSError

if TYPE_CHECKING:
    from parent_cart.bridge import Bridge

log = logging.getLogger(__name__)
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
            peers = settings.bootstrap_addresses()
        except (ValidationError, ValueError) as exc:
            problem = describe_error(exc) if isinstance(exc, ValidationError) else str(exc)
            console.print(f"[red]invalid bridge settings:[/red] {problem}", soft_wrap=True, highlight=False)
            raise typer.Exit(2) from None
        if logging.getLogger().level != logging.DEBUG:
            logs.configure(level=settings.log_level)
        others = without_self(peers, settings.dht_port, own_names) if peers else peers
        if others != peers:
            settings = settings.model_copy(update={"bridge_bootstrap": join_addresses(others)})
        try:
            server.run(settings, _announce)
        except CertificateError as exc:
            console.print(f"[red]this bridge is not a member of a swarm:[/red] {exc}", soft_wrap=True)
            raise typer.Exit(2) from None
        except TLSError as exc:
            console.print(f"[red]this bridge cannot serve TLS:[/red] {exc}", soft_wrap=True, highlight=False)
            raise typer.Exit(2) from None


def own_names() -> set[str]:
    """The names this host goes by: its host name and its fully qualified name (a StatefulSet pod's
    is `<pod>.<headless service>.<namespace>.svc.<cluster domain>`)."""
    return {name.lower() for name in (socket.gethostname(), socket.getfqdn()) if name}


def names_self(host: str, names: set[str]) -> bool:
    """True when `host` is one of `names`, or a leading part of one of them cut at a dot (`bridge-0.bridge-dht`
    for `bridge-0.bridge-dht.fedcart.svc.cluster.local`): a name the resolver's search list completes to us."""
    host = host.lower().rstrip(".")
    return any(host == name or name.startswith(host + ".") for name in names)


def without_self(peers: list[tuple[str, int]], dht_port: int, names: Callable[[], set[str]]) -> list[tuple[str, int]]:
    """BRIDGE_BOOTSTRAP without the entries that name this very bridge (its host at its own DHT port).

    Every pod of a bridge StatefulSet gets the same list, itself included. Bootstrapping from itself would
    put the bridge in its own routing table, so it would never count as alone and never retry the others.
    `names` is asked (it may look up the host's FQDN) only when an entry is at our own DHT port.
    """
    mine = names() if any(port == dht_port for _, port in peers) else set()
    kept = []
    for host, port in peers:
        if port == dht_port and names_self(host, mine):
            log.info("BRIDGE_BOOTSTRAP entry %s:%d is this bridge itself: skipped", host, port)
            continue
        kept.append((host, port))
    return kept


def join_addresses(peers: list[tuple[str, int]]) -> str:
    """(host, port) pairs back into BRIDGE_BOOTSTRAP's form (IPv6 hosts in brackets)."""
    return ",".join(f"[{host}]:{port}" if ":" in host else f"{host}:{port}" for host, port in peers)


def _announce(bridge: Bridge) -> None:
    """One line a person (or a script) can read to find the bridge."""
    console.print(
        f"[green]bridge {bridge.node_id}[/green] relay {bridge.url} dht udp/{bridge.dht_port}", soft_wrap=True
    )
