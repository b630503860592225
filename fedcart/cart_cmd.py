"""`fedcart node`: run a cart."""

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def node() -> None:
        """Run a cart: store, federated rounds and Flask UI."""
        typer.echo("fedcart node: not built yet (issues 4-6)", err=True)
        raise typer.Exit(2)
