"""Bridges on HTTPS/WSS: real bridges enrolled with a TLS certificate from the swarm authority's CA.

* Carts are admitted over wss:// and their messages cross a wss:// link between two bridges.
* A plain-text client on the TLS port gets no HTTP answer and is never admitted; a connection
  that stalls in the TLS handshake, or sends no headers after it, is cut off at the header deadline.
* A cart or a bridge that does not trust the certificate (another swarm's CA) does not get through
  and says why; the bridge keeps serving everyone else.
* A renewed certificate is served to new connections; a TLS relay refuses a plain PUBLIC_URL.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from bridgekit import (
    DEADLINE,
    FAST_BACKOFF,
    authority,
    bridge_settings,
    cart,
    new_client,
    seen_everywhere,
    until,
    within,
)

from cartnet import tls
from cartnet.authority import Authority, ensure_enrolled
from cartnet.handshake import ws_url
from cartnet.messages import Heartbeat
from parent_cart import records
from parent_cart.bridge import Bridge

HEADER_TIMEOUT = 0.5


def swarm_ca(folder: Path) -> ssl.SSLContext:
    """What an enrolled cart trusts: the swarm's CA certificate, as `fedcart enrol` leaves it in its data dir."""
    tls.store_ca(folder, authority().tls_ca())
    return tls.dialing_context(folder)


async def tls_bridge(root: Path, name: str, bootstrap: str = "", **overrides: object) -> Bridge:
    data_dir = root / name
    ensure_enrolled(authority(), data_dir, "bridge", tls_hosts=["127.0.0.1"])
    bridge = Bridge(bridge_settings(data_dir, bootstrap, **overrides))
    await bridge.start()
    return bridge


@pytest.fixture
async def tls_pair(tmp_path: Path) -> AsyncIterator[tuple[Bridge, Bridge]]:
    """Two TLS bridges in one DHT, linked over wss://."""
    b1 = await tls_bridge(tmp_path, "b1", http_header_timeout=HEADER_TIMEOUT)
    b2 = await tls_bridge(tmp_path, "b2", f"127.0.0.1:{b1.dht_port}")
    try:
        await until(
            lambda: b2.node_id in b1.links.ids() and b1.node_id in b2.links.ids(),
            "the two TLS bridges never linked",
            b1,
            b2,
        )
        yield b1, b2
    finally:
        await b2.stop()
        await b1.stop()


@pytest.fixture(scope="module")
def stranger(tmp_path_factory: pytest.TempPathFactory) -> Authority:
    return Authority.create(tmp_path_factory.mktemp("stranger") / "auth")


async def test_carts_are_admitted_over_wss_and_talk_across_a_wss_link(tls_pair, tmp_path: Path) -> None:
    b1, b2 = tls_pair
    assert b1.url.startswith("https://") and b2.url.startswith("https://")
    assert all(peer.url.startswith("https://") for peer in b1.links.peers() + b2.links.peers())
    trust = swarm_ca(tmp_path / "cart")
    async with cart(b1, ssl_context=trust) as a, cart(b2, ssl_context=trust) as b:
        await seen_everywhere(b.node_id, b1, b2)
        await a.send_message(b.node_id, Heartbeat(seq=7))
        got = await within(b.inbox.get(), "A's message at B, through two TLS bridges")
        async with aiohttp.ClientSession() as session, session.get(f"{b1.url}/health", ssl=trust) as response:
            health = await response.json()
    assert (got.peer, got.message) == (a.node_id, Heartbeat(seq=7))
    assert health["tls"] is True and health["bridges_linked"] == 1
    assert a.url.startswith("https://") and a.url.endswith("/ws")


async def test_a_plain_text_client_gets_nowhere_on_the_tls_port(tls_pair, tmp_path: Path) -> None:
    b1, _ = tls_pair
    reader, writer = await asyncio.open_connection("127.0.0.1", b1.port)
    writer.write(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    await writer.drain()
    answer = await within(reader.read(), "the TLS port closing a plain-text request")
    writer.close()
    assert not answer.startswith(b"HTTP/"), f"the TLS port answered plain HTTP: {answer[:80]!r}"

    plain_url = b1.url.replace("https://", "http://")
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientError):
            await session.get(f"{plain_url}/health")
    plain = new_client(plain_url, backoff=FAST_BACKOFF)
    await plain.start()
    try:
        with pytest.raises(TimeoutError, match="not admitted"):
            await plain.wait_connected(timeout=1.0)
        assert plain.sessions == 0
    finally:
        await plain.close()
    async with cart(b1, ssl_context=swarm_ca(tmp_path / "cart")) as honest:
        assert honest.sessions == 1, "the bridge stopped admitting TLS carts"


async def test_stalled_handshakes_and_silent_tls_clients_are_cut_off(tls_pair, tmp_path: Path) -> None:
    b1, _ = tls_pair
    before = b1.metrics.registry.get_sample_value("fedcart_bridge_http_header_timeouts_total") or 0.0
    stalled = [await asyncio.open_connection("127.0.0.1", b1.port) for _ in range(3)]
    trust = swarm_ca(tmp_path / "cart")
    silent = [
        await asyncio.open_connection("127.0.0.1", b1.port, ssl=trust, server_hostname="127.0.0.1") for _ in range(3)
    ]
    try:
        ends = await within(
            asyncio.gather(*(reader.read() for reader, _ in stalled + silent), return_exceptions=True),
            "the bridge closing connections that never finished the handshake or never sent headers",
        )
    finally:
        for _, writer in stalled + silent:
            writer.close()
    assert all(end in (b"",) or isinstance(end, (ConnectionError, ssl.SSLError)) for end in ends), ends
    await until(
        lambda: (
            (b1.metrics.registry.get_sample_value("fedcart_bridge_http_header_timeouts_total") or 0.0) >= before + 3
        ),
        "the silent TLS clients were not counted as header timeouts",
        b1,
        timeout=DEADLINE,
    )


async def test_a_cart_that_does_not_trust_the_certificate_is_not_admitted_and_says_why(
    tls_pair, stranger: Authority, tmp_path: Path
) -> None:
    b1, _ = tls_pair
    tls.store_ca(tmp_path / "wrong", stranger.tls_ca())
    wrong = new_client(b1, backoff=FAST_BACKOFF, ssl_context=tls.dialing_context(tmp_path / "wrong"))
    await wrong.start()
    try:
        with pytest.raises(TimeoutError) as caught:
            await wrong.wait_connected(timeout=1.0)
    finally:
        await wrong.close()
    assert "TLS certificate is not trusted" in str(caught.value), caught.value
    system = new_client(b1, backoff=FAST_BACKOFF)  # no context: the system's trust store
    await system.start()
    try:
        with pytest.raises(TimeoutError, match="not trusted"):
            await system.wait_connected(timeout=1.0)
    finally:
        await system.close()
    async with cart(b1, ssl_context=swarm_ca(tmp_path / "cart")) as honest:
        assert honest.sessions == 1


async def test_a_bridge_does_not_link_to_a_bridge_it_cannot_verify(
    tls_pair, stranger: Authority, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    b1, _ = tls_pair
    tls.store_ca(tmp_path / "foreign", stranger.tls_ca())
    foreign_ca = tmp_path / "foreign" / tls.CA_FILE
    b3 = await tls_bridge(tmp_path, "b3", tls_ca=str(foreign_ca))  # in no DHT: it dials only when told to
    try:
        with caplog.at_level(logging.WARNING, logger="parent_cart.links"):
            assert await b3.links.ensure(b1.node_id, b1.url) is None
        assert any("TLS certificate is not trusted" in r.getMessage() for r in caplog.records), caplog.text
        assert b3.node_id not in b1.links.ids()
    finally:
        await b3.stop()


async def test_a_renewed_certificate_is_served_to_new_connections(tls_pair, tmp_path: Path) -> None:
    b1, _ = tls_pair
    trust = swarm_ca(tmp_path / "cart")
    localhost = b1.url.replace("127.0.0.1", "localhost")
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await session.get(f"{localhost}/health", ssl=trust)
        ensure_enrolled(authority(), b1.settings.data_dir, "bridge", tls_hosts=["127.0.0.1", "localhost"])
        b1._reload_tls()  # what every refresh does
        async with session.get(f"{localhost}/health", ssl=trust) as response:
            assert response.status == 200


async def test_a_tls_relay_refuses_a_plain_public_url(tmp_path: Path) -> None:
    data_dir = tmp_path / "b"
    ensure_enrolled(authority(), data_dir, "bridge", tls_hosts=["127.0.0.1"])
    with pytest.raises(tls.TLSError, match="PUBLIC_URL"):
        Bridge(bridge_settings(data_dir, public_url="http://127.0.0.1:8470"))


def test_the_relay_url_check_takes_a_tls_bridges_urls() -> None:
    for url in ("https://127.0.0.1:8470", ws_url("wss://bridge-0:8470"), "wss://bridges.example.org/ws"):
        assert records.relay_url_problem(url) is None, url
