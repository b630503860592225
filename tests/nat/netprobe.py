"""Run inside a namespace (`ip netns exec NS python netprobe.py ...`): what one host of the NAT lab can see.

Prints one JSON line and exits 0 when it saw what it waited for, 1 otherwise.
Every wait has a deadline; polls of real state are spaced by POLL seconds.

  up URL DEADLINE [CAFILE]                 GET URL until it answers 200 (https:// verified against CAFILE)
  connect HOST PORT TIMEOUT                try one TCP connection; {"connected": bool, "error": ...}
  round BASE PASSWORD MIN_BRIDGES DEADLINE log in to a cart's UI, then read its event stream until a
                                           round that used updates from peers through MIN_BRIDGES bridges
"""

from __future__ import annotations

import http.cookiejar
import json
import socket
import ssl
import sys
import time
import urllib.error
import urllib.request

POLL = 0.25


def emit(ok: bool, **fields: object) -> None:
    print(json.dumps({"ok": ok, **fields}), flush=True)
    sys.exit(0 if ok else 1)


def wait_up(opener: urllib.request.OpenerDirector, url: str, deadline: float) -> None:
    last = "no answer yet"
    while time.monotonic() < deadline:
        try:
            with opener.open(url, timeout=5) as response:
                if response.status == 200:
                    return
                last = f"HTTP {response.status}"
        except (urllib.error.URLError, OSError) as exc:
            last = repr(exc)
        time.sleep(POLL)
    emit(False, error=f"{url} not up before the deadline; last: {last}")


def up(url: str, seconds: str, cafile: str = "") -> None:
    handlers = [urllib.request.HTTPSHandler(context=ssl.create_default_context(cafile=cafile))] if cafile else []
    wait_up(urllib.request.build_opener(*handlers), url, time.monotonic() + float(seconds))
    emit(True, url=url)


def connect(host: str, port: str, timeout: str) -> None:
    started = time.monotonic()
    try:
        socket.create_connection((host, int(port)), timeout=float(timeout)).close()
    except OSError as exc:
        emit(True, connected=False, error=repr(exc), seconds=round(time.monotonic() - started, 2))
    emit(True, connected=True, seconds=round(time.monotonic() - started, 2))


def round_event(base: str, password: str, min_bridges: str, seconds: str) -> None:
    deadline = time.monotonic() + float(seconds)
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    wait_up(opener, f"{base}/api/health", deadline)
    with opener.open(f"{base}/api/csrf", timeout=10) as response:
        token = json.load(response)["csrf_token"]
    login = urllib.request.Request(
        f"{base}/api/login",
        data=json.dumps({"password": password}).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "X-CSRFToken": token},
    )
    with opener.open(login, timeout=10) as response:
        if response.status != 200:
            emit(False, error=f"login answered {response.status}")
    seen = []
    # The socket timeout bounds each read; the loop bounds the whole wait.
    with opener.open(f"{base}/api/events", timeout=max(1.0, deadline - time.monotonic())) as stream:
        kind = ""
        while time.monotonic() < deadline:
            line = stream.readline()
            if not line:
                emit(False, error="event stream ended", rounds_seen=seen)
            if line.startswith(b"event:"):
                kind = line[6:].strip().decode()
            elif line.startswith(b"data:") and kind == "round":
                record = json.loads(line[5:])
                summary = {key: record.get(key) for key in ("round", "accepted", "reason", "bridges", "peers_answered")}
                seen.append(summary)
                if record["peers_answered"] and len(record["bridges"]) >= int(min_bridges):
                    emit(True, record=summary)
    emit(False, error="deadline passed", rounds_seen=seen)


COMMANDS = {"up": up, "connect": connect, "round": round_event}

if __name__ == "__main__":
    name, *args = sys.argv[1:]
    try:
        COMMANDS[name](*args)
    except (OSError, ValueError, KeyError) as exc:
        emit(False, error=repr(exc))
