"""`fedcart node`: run a cart (store, bridge connection, rounds, UI).

The UI port answers first: before the model runtime (TensorFlow) is imported,
the cart listens with a page that says it is starting (`child_cart.ui.starting`),
and the full UI takes the same socket over once the node is built. The node is
built on a thread of its own, so a SIGINT or SIGTERM while it loads ends the
process at once instead of after the load. Once the node has stopped and its
store is closed, the process leaves without the interpreter's teardown
(`leave`): TensorFlow's objects take seconds to collect and hold nothing to save.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from pydantic import ValidationError

from cartnet import logs
from cartnet.certificates import CertificateError, load_enrolment
from cartnet.identity import Identity
from cartnet.settings import describe_error
from cartnet.tls import TLSError
from child_cart.settings import CartSettings
from child_cart.ui.server import UIServer
from child_cart.ui.starting import STARTING

if TYPE_CHECKING:
    from child_cart.node import CartNode

log = logging.getLogger(__name__)


class NodeUnbuildable(Exception):
    """The node could not be built from its settings (an unknown task, a store it cannot open)."""


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
            typer.echo(f"error: invalid cart settings: {describe_error(exc)}", err=True)
            raise typer.Exit(2) from None
        if logging.getLogger().level != logging.DEBUG:  # --verbose wins over LOG_LEVEL
            logs.configure(level=settings.log_level)
        try:
            load_enrolment(settings.data_dir, Identity.load_or_create(settings.data_dir).public_key, "cart")
            asyncio.run(run_node(settings))
            leave()
        except CertificateError as exc:
            typer.echo(f"error: this cart is not a member of a swarm: {exc}", err=True)
            raise typer.Exit(2) from None
        except NodeUnbuildable as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        except TLSError as exc:
            typer.echo(f"error: {exc}", err=True)  # the UI's or the bridge dial's TLS files; it says which
            raise typer.Exit(2) from None


async def run_node(settings: CartSettings) -> None:
    """Answer on the UI port at once, build the node, run until SIGINT/SIGTERM, then leave the swarm cleanly."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    ui = UIServer.starting(settings).start()
    log.info("cart UI on %s: %s", ui.url, STARTING)
    try:
        node = await build_node(settings, stop)
        if node is None:
            log.info("stopped while loading the model runtime")
            return
        await node.start(ui=ui)
        bridges = ", ".join(settings.bridge_urls)
        log.info("cart %s running (bridges %s, data %s)", node.node_id[:8], bridges, settings.data_dir)
        await stop.wait()
        log.info("cart %s stopping", node.node_id[:8])
        await node.stop()
        await asyncio.to_thread(node.store.close)
    finally:
        await asyncio.to_thread(ui.stop)


def leave() -> None:
    """End the process now that everything is stopped and stored: flush the logs, skip the interpreter's teardown."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


async def build_node(settings: CartSettings, stop: asyncio.Event) -> CartNode | None:
    """The CartNode, built on a daemon thread (importing TensorFlow and building the model take seconds);
    None when `stop` is set first: the thread is left behind and dies with the process."""
    loop = asyncio.get_running_loop()
    built: asyncio.Future[CartNode] = loop.create_future()

    def settle(node: CartNode | None, error: BaseException | None) -> None:
        if built.done():
            return
        if error is not None:
            built.set_exception(error)
        else:
            built.set_result(node)  # type: ignore[arg-type]

    def build() -> None:
        node: CartNode | None = None
        error: BaseException | None = None
        try:
            from child_cart.node import CartNode
            from child_cart.store import StoreUnavailable

            node = CartNode(settings)
        except (KeyError, StoreUnavailable) as exc:  # an unknown TASK, a store that cannot be opened
            error = NodeUnbuildable(f"cannot start the cart: {exc.args[0] if exc.args else exc}")
        except BaseException as exc:  # handed to the loop, which raises it in run_node
            error = exc
        with contextlib.suppress(RuntimeError):  # the loop is gone: the process stopped while we loaded
            loop.call_soon_threadsafe(settle, node, error)

    threading.Thread(target=build, name="build-node", daemon=True).start()
    stopping = asyncio.ensure_future(stop.wait())
    waiting: list[asyncio.Future[Any]] = [built, stopping]
    try:
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
    if built.done():
        return built.result()
    built.cancel()
    return None
