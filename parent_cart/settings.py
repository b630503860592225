"""Bridge settings (flags > environment > .env > defaults)."""

from pathlib import Path

from pydantic import Field

from cartnet.settings import NodeSettings


class BridgeSettings(NodeSettings):
    """One bridge: its relay port, its DHT port and the DHT peers to bootstrap from."""

    data_dir: Path = Field(Path("data/bridge"), description="Bridge keys and published models")
    host: str = Field("127.0.0.1", description="Address the relay and DHT bind to")
    port: int = Field(8470, ge=1, le=65535, description="HTTP/WebSocket relay port")
    dht_port: int = Field(8468, ge=1, le=65535, description="Kademlia UDP port")
    public_url: str = Field("", description="URL other bridges use to reach this relay (default http://host:port)")
    bridge_bootstrap: str = Field("", description="Comma-separated host:port DHT peers")
