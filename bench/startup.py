"""How fast `fedcart swarm` (what `make run` runs) gets going: first answering UI, every cart ready, first accepted round.

Starts a fresh swarm (2 bridges, 3 carts, 600 purchases each, a round every
20 s: `make run`'s defaults) in a temporary folder and times, from the command's
start and from its URL table:

* each cart's UI answering at all (the starting page while the model runtime loads),
* each cart ready (`/api/health` says ok: TensorFlow loaded, model built, UI mounted),
* each cart's first accepted round (the aggregate kept), read from its live event stream.

Baselines measured in the same run: a bare Python start, and importing Keras
and building the recommend model in one process alone (the least any cart's
load can take; three carts share the machine's cores). The goal: every cart's
first accepted round within 45 s on 2 cores.

    .venv/bin/python bench/startup.py [--carts 3] [--rows 600] [--round-seconds 20] [--timeout 240]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from _machine import describe
from rich.console import Console
from rich.table import Table

GOAL = 45.0
BRIDGE_PORT, DHT_PORT, UI_PORT = 38470, 38460, 35000
RETRY = 0.05


def baseline(code: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    return time.perf_counter() - started


class Output:
    """The swarm's output, read as it comes; `shown` is set (with the time) when the URL table is printed."""

    def __init__(self, stream: asyncio.StreamReader) -> None:
        self.shown = asyncio.Event()
        self.at = 0.0
        self.text: list[str] = []
        self.reader = asyncio.ensure_future(self._read(stream))

    async def _read(self, stream: asyncio.StreamReader) -> None:
        async for raw in stream:
            line = raw.decode(errors="replace")
            self.text.append(line)
            if "fedcart local swarm" in line and not self.at:
                self.at = time.monotonic()
                self.shown.set()


async def first_answer(session: aiohttp.ClientSession, url: str) -> float:
    while True:
        try:
            async with session.get(url) as response:
                await response.read()
                return time.monotonic()
        except aiohttp.ClientConnectionError:
            await asyncio.sleep(RETRY)  # nothing listens yet: try again


async def ready(session: aiohttp.ClientSession, base: str) -> float:
    while True:
        try:
            async with session.get(f"{base}/api/health") as response:
                if (await response.json(content_type=None)).get("status") == "ok":
                    return time.monotonic()
        except (aiohttp.ClientError, ValueError):
            pass
        await asyncio.sleep(RETRY * 4)  # the starting page answers 503 until the node is built


async def first_accepted(base: str, password: str) -> float:
    """When the cart logs its first accepted round (its live event stream, or its round log if that came first)."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        async with session.get(f"{base}/api/csrf") as response:
            token = (await response.json())["csrf_token"]
        async with session.post(f"{base}/api/login", json={"password": password}, headers={"X-CSRFToken": token}):
            pass
        async with session.get(f"{base}/api/events", timeout=aiohttp.ClientTimeout(total=None)) as stream:
            async with session.get(f"{base}/api/rounds") as response:
                if any(r["accepted"] for r in (await response.json())["rounds"]):
                    return time.monotonic()
            kind = ""
            async for line in stream.content:
                if line.startswith(b"event:"):
                    kind = line[6:].strip().decode()
                elif line.startswith(b"data:") and kind == "round" and json.loads(line[5:])["accepted"]:
                    return time.monotonic()
    raise RuntimeError(f"{base}: event stream ended")


async def measure(args: argparse.Namespace, root: Path) -> tuple[float, float, list[dict[str, float]]]:
    command = [
        *(sys.executable, "-m", "fedcart", "swarm", "--root", str(root)),
        *("--carts", str(args.carts), "--rows", str(args.rows), "--round-seconds", str(args.round_seconds)),
        *("--bridge-port", str(BRIDGE_PORT), "--dht-port", str(DHT_PORT), "--ui-port", str(UI_PORT)),
    ]
    env = {key: value for key, value in os.environ.items() if key != "SWARM_TOKEN"}
    started = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        *command,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
        cwd=root.parent,
        start_new_session=True,
    )
    assert process.stdout is not None
    output = Output(process.stdout)
    try:
        await asyncio.wait_for(output.shown.wait(), args.timeout)
        password = (root / "admin_password").read_text().strip()
        bases = [f"http://127.0.0.1:{UI_PORT + i}" for i in range(args.carts)]
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:

            async def one(base: str) -> dict[str, float]:
                answered = await first_answer(session, base + "/")
                up = await ready(session, base)
                accepted = await first_accepted(base, password)
                return {"answered": answered, "ready": up, "accepted": accepted}

            carts = await asyncio.wait_for(asyncio.gather(*(one(b) for b in bases)), args.timeout)
    except TimeoutError:
        sys.exit(f"the swarm did not get there within {args.timeout:.0f}s; its output:\n{''.join(output.text)}")
    finally:
        os.killpg(process.pid, signal.SIGINT)
        await asyncio.wait_for(process.wait(), 30)
        await output.reader
    return started, output.at, carts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--carts", type=int, default=3)
    parser.add_argument("--rows", type=int, default=600)
    parser.add_argument("--round-seconds", type=float, default=20.0)
    parser.add_argument("--timeout", type=float, default=240.0)
    args = parser.parse_args()

    python = baseline("pass")
    keras = baseline(
        "from child_cart.tasks.recommend import RecommendTask; from child_cart.store import load_catalogue; "
        "RecommendTask(load_catalogue()).build_model(seed=0)"
    )
    with tempfile.TemporaryDirectory(prefix="fedcart-startup-") as folder:
        started, shown, carts = asyncio.run(measure(args, Path(folder) / "swarm"))

    table = Table(
        title=f"fedcart swarm start-up: 2 bridges, {args.carts} carts, {args.rows} rows, rounds every "
        f"{args.round_seconds:g} s (fresh data folder)"
    )
    for column in ("what", "from `fedcart swarm`", "from the URL table", "vs baseline"):
        table.add_column(column, justify="right" if column != "what" else "left")
    table.add_row("URL table printed", f"{shown - started:.1f} s", "", "")
    answered = min(c["answered"] for c in carts)
    table.add_row(
        "first cart UI answering",
        f"{answered - started:.2f} s",
        f"{answered - shown:.2f} s",
        f"{(answered - shown) / python:.1f}x a bare Python start ({python:.2f} s)",
    )
    every = max(c["answered"] for c in carts)
    table.add_row("every cart UI answering", f"{every - started:.2f} s", f"{every - shown:.2f} s", "goal: 2 s")
    for i, cart in enumerate(carts):
        table.add_row(
            f"cart-{i} ready (model runtime loaded)",
            f"{cart['ready'] - started:.1f} s",
            f"{cart['ready'] - shown:.1f} s",
            f"{(cart['ready'] - shown) / keras:.1f}x Keras + model alone ({keras:.1f} s)",
        )
    for i, cart in enumerate(carts):
        table.add_row(
            f"cart-{i} first accepted round",
            f"{cart['accepted'] - started:.1f} s",
            f"{cart['accepted'] - shown:.1f} s",
            f"goal: {GOAL:.0f} s",
        )
    last = max(c["accepted"] for c in carts) - started
    verdict = "met" if last <= GOAL else "missed"
    console = Console(width=140)
    console.print(describe())
    console.print(table)
    console.print(
        f"first accepted round on every cart: {last:.1f} s after `fedcart swarm` started: goal of "
        f"{GOAL:.0f} s {verdict}"
    )


if __name__ == "__main__":
    main()
