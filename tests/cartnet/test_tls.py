"""TLS: the swarm authority's X.509 CA, a node's TLS files, the SSL contexts, and a cart dialing a TLS relay.

Handshakes are real (asyncio TLS over 127.0.0.1); the relay in the last tests is a minimal aiohttp
app that speaks TLS, so these tests stay in cartnet (tests/parent_cart/test_bridge_tls.py runs real bridges).
"""

from __future__ import annotations

import asyncio
import datetime
import ssl
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from typer.testing import CliRunner

from cartnet import tls
from cartnet.authority import Authority, enrol, ensure_enrolled
from cartnet.client import Backoff, BridgeClient
from cartnet.identity import Identity
from cartnet.settings import NodeSettings

FAST = Backoff(initial=0.05, maximum=0.2)


@pytest.fixture(scope="module")
def authority(tmp_path_factory: pytest.TempPathFactory) -> Authority:
    return Authority.create(tmp_path_factory.mktemp("authority") / "auth")


@pytest.fixture(scope="module")
def stranger(tmp_path_factory: pytest.TempPathFactory) -> Authority:
    """Another swarm's authority: its CA is not ours."""
    return Authority.create(tmp_path_factory.mktemp("stranger") / "auth")


def server_files(ca: tls.SwarmCA, folder: Path, hosts: list[str]) -> tuple[Path, Path]:
    tls.issue_server_certificate(ca, folder, hosts, days=30)
    return folder / tls.CERT_FILE, folder / tls.KEY_FILE


def ca_file(ca: tls.SwarmCA, folder: Path) -> Path:
    tls.store_ca(folder, ca)
    return folder / tls.CA_FILE


async def handshake(server: ssl.SSLContext, client: ssl.SSLContext, server_hostname: str) -> None:
    """One real TLS handshake on 127.0.0.1; raises what the client's side raises."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"hello")
        await writer.drain()
        writer.close()

    listener = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=server)
    port = listener.sockets[0].getsockname()[1]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client, server_hostname=server_hostname)
        assert await reader.read() == b"hello"
        writer.close()
    finally:
        listener.close()


# --- the CA and its certificates -------------------------------------------------------------


def test_authority_keeps_a_p256_ca_beside_its_key(authority: Authority) -> None:
    ca = authority.tls_ca()
    key_file = authority.directory / tls.CA_KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert isinstance(ca.key.curve, ec.SECP256R1)
    constraints = ca.certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca and constraints.path_length == 0
    assert authority.swarm.swarm_id[:16] in ca.certificate.subject.rfc4514_string()
    again = authority.tls_ca()
    assert again.certificate == ca.certificate and again.key.private_numbers() == ca.key.private_numbers()


@pytest.mark.parametrize(
    ("hosts", "dial_as"),
    [(["bridge-0", "localhost"], "bridge-0"), (["bridge-0", "localhost"], "localhost"), (["127.0.0.1"], "127.0.0.1")],
)
async def test_the_ca_issues_a_certificate_that_verifies_for_its_host(
    authority: Authority, tmp_path: Path, hosts: list[str], dial_as: str
) -> None:
    ca = authority.tls_ca()
    server = tls.server_context(*server_files(ca, tmp_path, hosts))
    await handshake(server, tls.client_context(ca_file(ca, tmp_path)), dial_as)


async def test_a_certificate_for_another_host_is_refused(authority: Authority, tmp_path: Path) -> None:
    ca = authority.tls_ca()
    server = tls.server_context(*server_files(ca, tmp_path, ["bridge-0"]))
    with pytest.raises(ssl.SSLCertVerificationError, match="[Hh]ostname mismatch|not valid for"):
        await handshake(server, tls.client_context(ca_file(ca, tmp_path)), "bridge-1")


async def test_a_certificate_from_another_ca_is_refused(
    authority: Authority, stranger: Authority, tmp_path: Path
) -> None:
    server = tls.server_context(*server_files(stranger.tls_ca(), tmp_path / "theirs", ["bridge-0"]))
    ours = tls.client_context(ca_file(authority.tls_ca(), tmp_path / "ours"))
    with pytest.raises(ssl.SSLCertVerificationError, match="unable to get local issuer certificate") as caught:
        await handshake(server, ours, "bridge-0")
    assert not authority.tls_ca().issued(tls.read_certificate(tmp_path / "theirs" / tls.CERT_FILE))
    explained = tls.explain(caught.value, "wss://bridge-0:8470/ws")
    assert explained is not None and "not trusted" in explained and "TLS_CA" in explained


def test_a_server_certificate_is_for_serving_only(authority: Authority) -> None:
    leaf = authority.tls_ca().issue(ec.generate_private_key(ec.SECP256R1()).public_key(), ["bridge-0"], days=10)
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    usage = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]
    assert tls.hosts_of(leaf) == ["bridge-0"]


def test_a_renewed_ca_certificate_still_verifies_what_was_issued(tmp_path: Path) -> None:
    """Near its end the CA certificate is re-signed with the same key and name: old server certificates hold."""
    authority = Authority.create(tmp_path / "auth")
    ca = authority.tls_ca()
    leaf = ca.issue(ec.generate_private_key(ec.SECP256R1()).public_key(), ["bridge-0"], days=10)
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=tls.CA_DAYS)
    renewed = tls.SwarmCA.load_or_create(authority.directory, authority.swarm.swarm_id, now=later)
    assert renewed.certificate.serial_number != ca.certificate.serial_number
    assert renewed.issued(leaf)


@pytest.mark.parametrize(
    ("host", "name"),
    [("Bridge-0.Example.org.", "bridge-0.example.org"), ("10.0.0.7", "10.0.0.7"), ("[::1]", "::1")],
)
def test_tls_hosts_are_dns_names_or_ip_addresses(host: str, name: str) -> None:
    assert str(tls.host_name(host).value) == name


@pytest.mark.parametrize("host", ["", "bad_host", "-x.org", "https://bridge-0", "bridge-0:8470", "10.0.0.300", "*"])
def test_anything_else_is_not_a_tls_host(host: str) -> None:
    with pytest.raises(ValueError, match="TLS host"):
        tls.host_name(host)


# --- enrolment -------------------------------------------------------------------------------


def test_enrol_gives_every_node_the_ca_and_a_server_certificate_only_when_asked(
    authority: Authority, tmp_path: Path
) -> None:
    enrol(authority, tmp_path / "cart", "cart")
    assert (tmp_path / "cart" / tls.CA_FILE).read_bytes() == authority.tls_ca().pem
    assert not (tmp_path / "cart" / tls.CERT_FILE).exists()

    bridge = tmp_path / "bridge"
    cert = enrol(authority, bridge, "bridge", days=30, tls_hosts=["bridge-0", "10.0.0.7"])
    leaf = tls.read_certificate(bridge / tls.CERT_FILE)
    assert tls.hosts_of(leaf) == ["bridge-0", "10.0.0.7"]
    assert cert.node_id in leaf.subject.rfc4514_string()
    assert stat.S_IMODE((bridge / tls.KEY_FILE).stat().st_mode) == 0o600
    assert tls.server_files(bridge) == (bridge / tls.CERT_FILE, bridge / tls.KEY_FILE)


def test_keep_valid_keeps_a_good_server_certificate_and_reissues_for_other_hosts(
    authority: Authority, tmp_path: Path
) -> None:
    ensure_enrolled(authority, tmp_path, "bridge", tls_hosts=["bridge-0", "localhost"])
    first = (tmp_path / tls.CERT_FILE).read_bytes()
    key = (tmp_path / tls.KEY_FILE).read_bytes()
    ensure_enrolled(authority, tmp_path, "bridge", tls_hosts=["bridge-0", "localhost"])
    assert (tmp_path / tls.CERT_FILE).read_bytes() == first, "a valid certificate for the same hosts was replaced"
    ensure_enrolled(authority, tmp_path, "bridge", tls_hosts=["bridge-0", "bridges.example.org"])
    assert tls.hosts_of(tls.read_certificate(tmp_path / tls.CERT_FILE)) == ["bridge-0", "bridges.example.org"]
    assert (tmp_path / tls.KEY_FILE).read_bytes() == key, "the node's TLS key must be kept, only re-certified"


def test_keep_valid_reissues_a_certificate_of_another_ca(
    authority: Authority, stranger: Authority, tmp_path: Path
) -> None:
    enrol(stranger, tmp_path, "bridge", tls_hosts=["bridge-0"])
    ensure_enrolled(authority, tmp_path, "bridge", tls_hosts=["bridge-0"])
    assert authority.tls_ca().issued(tls.read_certificate(tmp_path / tls.CERT_FILE))
    assert (tmp_path / tls.CA_FILE).read_bytes() == authority.tls_ca().pem


def test_the_enrol_command_issues_for_each_tls_host_and_refuses_a_bad_one(authority: Authority, tmp_path: Path) -> None:
    from fedcart.cli import app

    runner = CliRunner()
    base = ["enrol", "--authority", str(authority.directory), "--data-dir", str(tmp_path), "--role", "bridge"]
    done = runner.invoke(app, [*base, "--tls-host", "bridge-0", "--tls-host", "localhost"])
    assert done.exit_code == 0, done.output
    assert tls.hosts_of(tls.read_certificate(tmp_path / tls.CERT_FILE)) == ["bridge-0", "localhost"]
    refused = runner.invoke(app, [*base, "--tls-host", "https://bridge-0"])
    assert refused.exit_code == 2 and "TLS host" in refused.output


# --- which files a node serves with and trusts -----------------------------------------------


def test_serving_needs_a_certificate_and_its_key(authority: Authority, tmp_path: Path) -> None:
    assert tls.server_files(tmp_path) is None, "no TLS files: plain HTTP"
    cert, key = server_files(authority.tls_ca(), tmp_path, ["bridge-0"])
    with pytest.raises(tls.TLSError, match="TLS_CERT and TLS_KEY go together"):
        tls.server_files(tmp_path, cert=str(cert))
    with pytest.raises(tls.TLSError, match="not a file"):
        tls.server_files(tmp_path, cert=str(cert), key=str(tmp_path / "nope.pem"))
    assert tls.server_files(tmp_path, cert=str(cert), key=str(key)) == (cert, key)
    key.unlink()
    with pytest.raises(tls.TLSError, match="key.pem is missing"):
        tls.server_files(tmp_path)


def test_a_key_of_another_certificate_or_an_expired_certificate_is_refused(
    authority: Authority, tmp_path: Path
) -> None:
    cert, _ = server_files(authority.tls_ca(), tmp_path / "a", ["bridge-0"])
    _, other_key = server_files(authority.tls_ca(), tmp_path / "b", ["bridge-0"])
    with pytest.raises(tls.TLSError, match="cannot serve TLS"):
        tls.server_context(cert, other_key)
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=31)
    with pytest.raises(tls.TLSError, match="expired"):
        tls.server_context(cert, tmp_path / "a" / tls.KEY_FILE, now=later)


def test_what_a_node_trusts_when_it_dials(authority: Authority, tmp_path: Path) -> None:
    assert tls.trust_file(tmp_path) is None, "no swarm CA: the system's trust store"
    swarm_ca = ca_file(authority.tls_ca(), tmp_path)
    assert tls.trust_file(tmp_path) == swarm_ca
    other = tmp_path / "bundle.pem"
    other.write_bytes(swarm_ca.read_bytes())
    assert tls.trust_file(tmp_path, str(other)) == other
    assert tls.trust_file(tmp_path, tls.SYSTEM_TRUST) is None
    with pytest.raises(tls.TLSError, match="TLS_CA"):
        tls.trust_file(tmp_path, str(tmp_path / "missing.pem"))


def test_tls_ca_setting_must_name_a_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="TLS_CA must be a PEM file"):
        NodeSettings(_env_file=None, tls_ca=str(tmp_path / "missing.pem"))
    assert NodeSettings(_env_file=None, tls_ca="system").tls_ca == "system"


def test_explain_is_only_about_tls() -> None:
    assert tls.explain(ConnectionRefusedError("refused"), "https://x:1") is None


# --- a cart dialing a relay over TLS ---------------------------------------------------------


@pytest.fixture
async def tls_relay(authority: Authority, tmp_path: Path) -> AsyncIterator[str]:
    """A stand-in relay on wss:// with a certificate of the swarm's CA for 127.0.0.1: it accepts the
    WebSocket and says nothing (what matters here is whether the TLS dial gets that far)."""

    async def ws(request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        async for _ in socket:
            pass
        return socket

    app = web.Application()
    app.router.add_get("/ws", ws)
    runner = web.AppRunner(app)
    await runner.setup()
    context = tls.server_context(*server_files(authority.tls_ca(), tmp_path / "relay", ["127.0.0.1"]))
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"https://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_a_cart_dialing_a_tls_relay_with_the_wrong_ca_fails_with_a_clear_error(
    authority: Authority, stranger: Authority, tls_relay: str, tmp_path: Path
) -> None:
    identity = Identity.generate()
    wrong = tls.client_context(ca_file(stranger.tls_ca(), tmp_path / "wrong"))
    client = BridgeClient(
        identity, tls_relay, authority.issue(identity.public_key, "cart"), ssl_context=wrong, backoff=FAST
    )
    await client.start()
    try:
        with pytest.raises(TimeoutError) as caught:
            await client.wait_connected(timeout=2.0)
    finally:
        await client.close()
    message = str(caught.value)
    assert "TLS certificate is not trusted (unable to get local issuer certificate)" in message, message
    assert tls_relay in message


async def test_a_cart_with_the_swarm_ca_gets_through_tls(authority: Authority, tls_relay: str, tmp_path: Path) -> None:
    """The same relay with the right CA: the TLS dial and the WebSocket upgrade succeed."""
    tls.store_ca(tmp_path / "cart", authority.tls_ca())  # what enrolment writes
    right = tls.dialing_context(tmp_path / "cart")
    async with aiohttp.ClientSession() as session, session.ws_connect(f"{tls_relay}/ws", ssl=right) as socket:
        assert not socket.closed
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await session.get(f"{tls_relay}/ws")  # the system's trust store knows nothing of the swarm CA
