"""`fedcart bridge`: run a parent node (DHT + relay)."""

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def bridge() -> None:
        """Run a bridge: Kademlia DHT node + WebSocket relay + model distribution."""
        typer.echo("fedcart bridge: not built yet (issue 3)", err=True)
        raise typer.Exit(2)
