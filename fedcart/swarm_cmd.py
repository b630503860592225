"""`fedcart swarm`: a local swarm of bridges and carts on one machine."""

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def swarm() -> None:
        """Start bridges and carts locally and print their URLs."""
        typer.echo("fedcart swarm: not built yet (issue 7)", err=True)
        raise typer.Exit(2)
