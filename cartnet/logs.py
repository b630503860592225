"""One place that configures logging for every entry point."""

import logging

from rich.logging import RichHandler


def configure(verbose: bool = False, level: str = "INFO") -> None:
    """Route all loggers through rich; --verbose forces DEBUG."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else level.upper(),
        format="%(name)s: %(message)s",
        datefmt="%H:%M:%S",
        handlers=[RichHandler(show_path=False, rich_tracebacks=True)],
        force=True,
    )
    for noisy in ("kademlia", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING if not verbose else logging.INFO)
    # rpcudp warns about every reply that arrives after its timeout; the DHT copes, so only errors matter.
    logging.getLogger("rpcudp").setLevel(logging.ERROR if not verbose else logging.INFO)
    # TensorFlow warns about tf.function retracing when many carts share one runtime (the simulator).
    logging.getLogger("tensorflow").setLevel(logging.ERROR if not verbose else logging.INFO)
