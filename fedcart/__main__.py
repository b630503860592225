"""`python -m fedcart` = the `fedcart` command (how the local swarm starts its children)."""

from fedcart.cli import app

app(prog_name="fedcart")
