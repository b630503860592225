"""`fedcart` command line. Each command group lives in its own module; this file only assembles them."""

import typer

from cartnet import logs
from fedcart import authority_cmd, bridge_cmd, cart_cmd, data_cmd, experiment_cmd, simulate_cmd, swarm_cmd

app = typer.Typer(help="fedcart: peer-to-peer federated learning for smart carts.", no_args_is_help=True)


@app.callback()
def main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging")) -> None:
    """Global options shared by every command."""
    logs.configure(verbose=verbose)


bridge_cmd.register(app)
cart_cmd.register(app)
data_cmd.register(app)
swarm_cmd.register(app)
simulate_cmd.register(app)
experiment_cmd.register(app)
authority_cmd.register(app)
