"""`fedcart data|qr|train|export`: the cart's data and model tools."""

import typer


def register(app: typer.Typer) -> None:
    """Data commands arrive with issue 4."""
