"""HTTPS for the cart UI: a small TLS terminator in front of waitress, which speaks no TLS itself.

When the cart has a server certificate and key (UI_TLS_CERT and UI_TLS_KEY, else the data dir's
`tls/cert.pem` and `tls/key.pem` that `fedcart enrol --role cart --tls-host NAME` writes;
`ui_tls_files`), `server.UIServer` binds waitress to 127.0.0.1 on a private port and puts a
`TLSTerminator` on the public UI port. The terminator runs one asyncio loop on a thread of its
own; for each connection it:

* accepts only while fewer than UI_CONNECTION_LIMIT connections are open (beyond it new ones
  wait in the listen backlog, as with waitress alone);
* completes the TLS handshake within `handshake_seconds` or drops the connection (a stalled or
  plain-text client gets nothing, and holds nothing for long);
* opens one connection to waitress and copies bytes both ways, with flow control, until either
  side closes; waitress's limits (worker threads, channel timeout, header and body sizes,
  live-update streams) apply to what it forwards unchanged.

Waitress is told the scheme is https (so Flask builds https URLs, and secure cookies are sent),
and the client's address reaches the app through `peers`: the terminator records which client
each of its back-end connections carries, keyed by the back-end connection's local port, and
`server._Mounted` puts that address into REMOTE_ADDR (the login throttle counts per client).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import threading
from pathlib import Path

from cartnet import tls
from child_cart.settings import CartSettings

log = logging.getLogger(__name__)

HANDSHAKE_SECONDS = 10.0
"""Longest a client may take over its TLS handshake (shorter when UI_CHANNEL_TIMEOUT is)."""
CHUNK = 64 * 1024
DRAIN_SECONDS = 2.0
"""At stop, how long connections whose back end has closed get to pass on what it last wrote."""

Peers = dict[int, tuple[str, int]]
"""Back-end connection's local port -> the client (address, port) it carries."""


def ui_tls_files(settings: CartSettings) -> tuple[Path, Path] | None:
    """The UI's certificate and key: UI_TLS_CERT and UI_TLS_KEY, else the data dir's `tls/` files, else None
    (plain HTTP); TLSError when only one of a pair is there."""
    try:
        return tls.server_files(settings.data_dir, settings.ui_tls_cert, settings.ui_tls_key)
    except tls.TLSError as exc:
        raise tls.TLSError(str(exc).replace("TLS_CERT", "UI_TLS_CERT").replace("TLS_KEY", "UI_TLS_KEY")) from None


def handshake_seconds(settings: CartSettings) -> float:
    return float(min(HANDSHAKE_SECONDS, settings.ui_channel_timeout))


class TLSTerminator:
    """TLS on host:port (bound at once, so `port` is known), each connection piped to `backend` in clear."""

    def __init__(
        self,
        context: ssl.SSLContext,
        host: str,
        port: int,
        backend: tuple[str, int],
        limit: int,
        handshake_seconds: float,
    ) -> None:
        self.context = context
        self.backend = backend
        self.limit = limit
        self.handshake_seconds = handshake_seconds
        self.peers: Peers = {}
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._listener = socket.create_server((host, port), family=family, backlog=socket.SOMAXCONN)
        self._listener.setblocking(False)
        self.host, self.port = self._listener.getsockname()[:2]
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=f"ui-tls-{self.port}", daemon=True)
        self._accepting: asyncio.Task[None] | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._piping: set[asyncio.Task[None]] = set()
        self._closed = False

    def start(self) -> TLSTerminator:
        self._thread.start()
        return self

    def stop_accepting(self) -> None:
        """Close the listening socket (the port is free from here on); open connections go on."""
        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self._stop_accepting(), self._loop).result(DRAIN_SECONDS * 5)
        else:
            self._listener.close()

    def close(self) -> None:
        """Stop accepting, give connections whose back end closed `DRAIN_SECONDS` to finish, drop the rest; safe twice."""
        if self._closed:
            return
        self._closed = True
        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(DRAIN_SECONDS * 5)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(DRAIN_SECONDS * 5)
        self._listener.close()
        if not self._thread.is_alive():
            self._loop.close()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._accepting = self._loop.create_task(self._accept())
        try:
            self._loop.run_forever()
        finally:
            self._listener.close()

    async def _stop_accepting(self) -> None:
        if self._accepting is not None:
            self._accepting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._accepting
        self._listener.close()

    async def _close(self) -> None:
        await self._stop_accepting()
        if self._piping:
            await asyncio.wait(set(self._piping), timeout=DRAIN_SECONDS)
        for task in set(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.wait(set(self._connections), timeout=DRAIN_SECONDS)

    async def _accept(self) -> None:
        loop = asyncio.get_running_loop()
        slots = asyncio.Semaphore(self.limit)
        while True:
            await slots.acquire()
            try:
                conn, address = await loop.sock_accept(self._listener)
            except OSError as exc:
                slots.release()
                log.warning("cart UI (TLS) accept failed: %s", exc)
                continue
            except asyncio.CancelledError:
                slots.release()
                raise
            task = loop.create_task(self._serve(conn, (str(address[0]), int(address[1]))))
            self._connections.add(task)
            task.add_done_callback(self._connections.discard)
            task.add_done_callback(lambda _: slots.release())

    async def _serve(self, conn: socket.socket, client: tuple[str, int]) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=CHUNK, loop=loop)
        protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
        try:
            transport, _ = await loop.connect_accepted_socket(
                lambda: protocol, conn, ssl=self.context, ssl_handshake_timeout=self.handshake_seconds
            )
        except OSError as exc:  # SSLError, TimeoutError and ConnectionError among them
            conn.close()
            log.debug("cart UI (TLS): no handshake with %s: %s", client[0], exc)
            return
        writer = asyncio.StreamWriter(transport, protocol, reader, loop)
        try:
            back_reader, back_writer = await asyncio.open_connection(*self.backend, limit=CHUNK)
        except OSError:  # the back end is gone (stopping)
            transport.abort()
            return
        except asyncio.CancelledError:
            transport.abort()
            raise
        local_port = int(back_writer.get_extra_info("sockname")[1])
        self.peers[local_port] = client
        task = asyncio.current_task()
        assert task is not None
        self._piping.add(task)
        try:
            pipes = [
                loop.create_task(_pipe(reader, back_writer)),
                loop.create_task(_pipe(back_reader, writer)),
            ]
            try:
                await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for pipe in pipes:
                    pipe.cancel()
                await asyncio.gather(*pipes, return_exceptions=True)
        finally:
            self._piping.discard(task)
            self.peers.pop(local_port, None)
            back_writer.transport.abort()
            if transport.is_closing():
                transport.abort()
            else:
                transport.close()  # sends what is still buffered, then the TLS close


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    """Copy until `source` ends or either side fails."""
    with contextlib.suppress(OSError):  # SSLError and ConnectionError among them
        while data := await source.read(CHUNK):
            sink.write(data)
            await sink.drain()
