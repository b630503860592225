"""Bridge settings (flags > environment > .env > defaults)."""

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from cartnet.settings import NodeSettings


class BridgeSettings(NodeSettings):
    """One bridge: its relay port, its DHT port and the DHT peers to bootstrap from, plus the
    limits that keep one slow or hostile cart from hurting the others."""

    data_dir: Path = Field(Path("data/bridge"), description="Bridge keys and published models")
    host: str = Field("127.0.0.1", description="Address the relay and DHT bind to")
    port: int = Field(8470, ge=0, le=65535, description="HTTP/WebSocket relay port (0 = any free port)")
    dht_port: int = Field(8468, ge=0, le=65535, description="Kademlia UDP port (0 = any free port)")
    public_url: str = Field(
        "", description="URL other bridges use to reach this relay (default https://host:port with TLS, else http://)"
    )
    tls_cert: str = Field(
        "",
        description="PEM certificate chain the relay serves HTTPS/WSS with (with TLS_KEY); "
        "empty = DATA_DIR/tls/cert.pem when fedcart enrol --tls-host made one, else plain HTTP",
    )
    tls_key: str = Field("", description="Private key of TLS_CERT (PEM); empty = DATA_DIR/tls/key.pem")
    bridge_bootstrap: str = Field("", description="Comma-separated host:port DHT peers")

    heartbeat_interval: float = Field(
        5.0, gt=0, le=60, description="Seconds between a cart's heartbeats (sent in Welcome)"
    )
    heartbeat_misses: int = Field(3, ge=2, le=10, description="Silent intervals after which a cart or link is dropped")
    admission_timeout: float = Field(10.0, gt=0, description="Seconds a new connection has to answer the challenge")
    max_carts: int = Field(5000, ge=1, description="Carts one bridge admits at once")
    queue_frames: int = Field(256, ge=4, description="Frames queued per receiver before senders wait")
    queue_bytes: int = Field(
        16 * 1024 * 1024, ge=1024 * 1024, description="Bytes queued per receiver before senders wait"
    )
    send_timeout: float = Field(
        2.0, gt=0, description="Seconds a sender waits for room at a slow receiver before Undeliverable"
    )
    rate_frames: float = Field(2000.0, ge=0, description="Frames per second one cart may send (0 = unlimited)")
    rate_bytes: float = Field(
        1024 * 1024 * 1024,
        ge=0,
        description="Bytes per second one cart may send (0 = unlimited); the default is above what one bridge relays "
        "here (bench/relay.py), so one large transfer is not capped: carts stay fair by being read in turn",
    )
    event_loop: Literal["uvloop", "asyncio"] = Field(
        "uvloop", description="Event loop the bridge serves on: uvloop (faster relaying; asyncio's if not installed)"
    )
    dht_timeout: float = Field(
        2.0, gt=0, le=30, description="Seconds to wait for one Kademlia RPC (package default is 5)"
    )
    dht_ksize: int = Field(20, ge=2, le=64, description="Kademlia k (bucket size and replication)")
    dht_alpha: int = Field(3, ge=1, le=10, description="Kademlia alpha (parallel lookups)")
    refresh_interval: float = Field(15.0, gt=0, description="Seconds between DHT republish and bridge discovery rounds")
    presence_max_ttl: float = Field(
        600.0, gt=0, description="Longest presence lifetime a cart may sign; longer-lived DHT values are refused"
    )
    link_timeout: float = Field(5.0, gt=0, description="Seconds to dial and authenticate another bridge")
    max_model_bytes: int = Field(64 * 1024 * 1024, ge=1024, description="Largest TFLite model carts may publish")
    models_keep: int = Field(3, ge=1, description="Published model versions kept on disk")
    model_clock_skew: float = Field(
        300.0,
        ge=0,
        le=3600,
        description="Seconds a published model's version (its creation time) may be ahead of the bridge's clock",
    )
    shutdown_grace: float = Field(2.0, ge=0, description="Seconds to tell peers Bye and retract presences on shutdown")
    http_header_timeout: float = Field(
        10.0, gt=0, le=300, description="Seconds a new HTTP connection has to send complete request headers"
    )
    http_idle_timeout: float = Field(
        60.0, gt=0, le=3600, description="Seconds an HTTP connection may sit idle between requests before it is closed"
    )
    http_max_header_line: int = Field(
        8190, ge=1024, le=65536, description="Longest request line or header field (bytes) the relay reads"
    )
    http_max_headers: int = Field(64, ge=16, le=1024, description="Most header fields one request may have")

    @model_validator(mode="after")
    def _sender_wait_below_deadline(self) -> "BridgeSettings":
        """A sender parked on a full queue is not read meanwhile; it must not look silent because of it."""
        if self.send_timeout >= self.heartbeat_interval * self.heartbeat_misses:
            raise ValueError("send_timeout must be shorter than heartbeat_interval * heartbeat_misses")
        return self

    @model_validator(mode="after")
    def _header_deadline_below_idle(self) -> "BridgeSettings":
        """aiohttp's idle timer also runs while a connection's first headers arrive: a longer header deadline is moot."""
        if self.http_header_timeout > self.http_idle_timeout:
            raise ValueError("http_header_timeout must not be longer than http_idle_timeout")
        return self

    @property
    def liveness_deadline(self) -> float:
        """Seconds of silence after which a cart or link counts as gone."""
        return self.heartbeat_interval * self.heartbeat_misses

    def bootstrap_addresses(self) -> list[tuple[str, int]]:
        """BRIDGE_BOOTSTRAP parsed into (host, port) pairs; a malformed entry is a clear error."""
        pairs = []
        for entry in filter(None, (part.strip() for part in self.bridge_bootstrap.split(","))):
            host, sep, port = entry.rpartition(":")
            if not sep or not host or not port.isdigit():
                raise ValueError(f"BRIDGE_BOOTSTRAP entry {entry!r} is not host:port")
            pairs.append((host.strip("[]"), int(port)))
        return pairs
