"""Cart settings (flags > environment > .env > defaults)."""

from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import NoDecode

from cartnet.settings import NodeSettings

BRIDGE_SCHEMES = frozenset({"http", "https", "ws", "wss"})
"""What a BRIDGE_URLS entry may start with (a bridge's base URL or its /ws endpoint)."""


class CartSettings(NodeSettings):
    """One cart: its bridges, its store and its UI."""

    data_dir: Path = Field(Path("data/cart"), description="Cart keys, embedded store and models")
    bridge_urls: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Bridges this cart connects out to, comma-separated, primary first: when one is lost or "
        "refuses the dial the cart fails over to the next; empty = BRIDGE_URL alone",
    )
    bridge_url: str = Field(
        "http://127.0.0.1:8470",
        description="One bridge (the setting before BRIDGE_URLS), used when BRIDGE_URLS is empty; "
        "with BRIDGE_URLS set it reads as its first, the primary",
    )
    mongo_url: str = Field("", description="MongoDB URL; empty = embedded store in data_dir")
    mongo_db: str = Field("fedcart", description="Database name (one per cart on a shared server)")
    mongo_password_file: str = Field(
        "",
        description="File holding the password of MONGO_URL's user (a compose or Kubernetes secret); "
        "empty = the URL carries any password itself. Read only when MONGO_URL is set",
    )
    ui_host: str = Field("127.0.0.1", description="Flask UI bind address")
    ui_port: int = Field(5000, ge=1, le=65535, description="Flask UI port")
    task: str = Field(
        "recommend", description="What this cart learns: recommend, iot-anomaly, iot-intrusion, iot-intrusion-forest"
    )
    catalogue_path: str = Field("", description="Seed catalogue JSON; empty = the one packaged with child_cart")
    max_upload_bytes: int = Field(8 * 1024 * 1024, ge=1024, description="Largest image a scan accepts")
    val_fraction: float = Field(0.2, gt=0.0, lt=1.0, description="Share of rows held out for validation")
    train_epochs: int = Field(20, ge=1, description="Local training epochs")
    train_batch_size: int = Field(32, ge=1, description="Local training batch size")
    export_tolerance: float = Field(1e-4, gt=0.0, description="Largest |Keras - TFLite| output an export accepts")
    ui_admin_password_hash: str = Field(
        "",
        description="werkzeug hash of the admin password; empty = generate one at first start, log it once, keep its hash in data_dir/ui",
    )
    ui_admin_password_hint: str = Field(
        "",
        max_length=300,
        description="Where an admin finds the password, said on the login page (fedcart swarm sets it); "
        "empty = said from how the password was set",
    )
    ui_session_secret: str = Field(
        "", description="Signs UI session cookies; empty = a random secret kept in data_dir/ui"
    )
    ui_session_minutes: int = Field(480, ge=1, le=525600, description="How long an admin login lasts")
    ui_secure_cookies: bool = Field(
        False, description="Send UI cookies over HTTPS only (set it when TLS fronts the UI)"
    )
    ui_tls_cert: str = Field(
        "",
        description="PEM certificate chain the UI serves HTTPS with (with UI_TLS_KEY); empty = DATA_DIR/tls/cert.pem "
        "when fedcart enrol --tls-host wrote one, else plain HTTP",
    )
    ui_tls_key: str = Field("", description="Private key of UI_TLS_CERT; set both or neither")
    ui_cors_origins: str = Field(
        "", description="Comma-separated origins a browser may call /api/ from; empty = same origin only"
    )
    ui_login_free_attempts: int = Field(
        3, ge=1, le=100, description="Wrong admin passwords allowed before delays start"
    )
    ui_login_max_delay: float = Field(
        300.0, ge=1.0, le=86400.0, description="Longest wait (s) the growing login delay reaches"
    )
    ui_max_json_bytes: int = Field(
        65536, ge=1024, le=8 * 1024 * 1024, description="Largest JSON request body the UI API reads"
    )
    ui_web_dir: str = Field("", description="Front-end assets folder; empty = the repository's web/")
    ui_threads: int = Field(
        8, ge=2, le=64, description="Worker threads serving UI requests (each open live-update stream holds one)"
    )
    ui_max_streams: int = Field(
        4, ge=1, le=63, description="Live-update (SSE) streams open at once; more get 503 until one closes"
    )
    ui_connection_limit: int = Field(
        100, ge=8, le=10000, description="Open UI connections at once; beyond it new ones wait in the listen backlog"
    )
    ui_channel_timeout: int = Field(
        60, ge=1, le=3600, description="Seconds a UI connection may sit idle (no request running) before it is closed"
    )
    currency: str = Field(
        "EUR",
        pattern=r"^[A-Z]{3}$",
        description="ISO 4217 code prices are shown in (EUR, USD, GBP, CHF, ...); the same in every locale",
    )
    iot_anomaly_features: int = Field(
        115, ge=1, le=10000, description="Numeric features per traffic row (115 = N-BaIoT)"
    )
    iot_anomaly_layers: list[int] = Field(
        [86, 58, 38, 29], min_length=1, description="Autoencoder encoder widths; the decoder mirrors them"
    )
    iot_anomaly_learning_rate: float = Field(1e-3, gt=0.0, le=1.0, description="Autoencoder Adam learning rate")
    iot_threshold_k: float = Field(
        3.0, ge=0.0, le=100.0, description="Anomaly threshold = mean + k * std of held-out benign reconstruction errors"
    )
    iot_threshold_scope: Literal["global", "device"] = Field(
        "device", description="One threshold for all rows, or one per device"
    )
    iot_calibration_fraction: float = Field(
        0.25, gt=0.0, lt=1.0, description="Share of benign training rows held out to set the threshold"
    )
    iot_intrusion_layers: list[int] = Field(
        [32, 16], min_length=1, description="Hidden widths of the intrusion classifier"
    )
    iot_intrusion_learning_rate: float = Field(
        5e-3, gt=0.0, le=1.0, description="Intrusion classifier Adam learning rate"
    )
    iot_forest_trees: int = Field(
        20, ge=1, le=1000, description="Trees each cart grows per round (iot-intrusion-forest)"
    )
    iot_forest_depth: int = Field(
        8, ge=1, le=16, description="Largest tree depth (fixes the size of the exchanged arrays)"
    )
    iot_forest_aggregator: Literal["tree_union", "tree_vote"] = Field(
        "tree_union", description="Join peers' forests with every tree voting equally, or weighted by its cart's rows"
    )

    @field_validator("bridge_urls", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        """`BRIDGE_URLS=http://a:8470, http://b:8470` (or a list): each URL once, in order, blanks dropped."""
        urls = value.split(",") if isinstance(value, str) else value
        if not isinstance(urls, list):
            return value
        urls = [url.strip() if isinstance(url, str) else url for url in urls]
        return list(dict.fromkeys(url for url in urls if url != ""))

    @field_validator("bridge_urls")
    @classmethod
    def _bridge_addresses(cls, urls: list[str]) -> list[str]:
        for url in urls:
            parts = urlsplit(url)
            if parts.scheme not in BRIDGE_SCHEMES or not parts.hostname:
                raise ValueError(f"{url!r} is not a bridge URL (http://, https://, ws:// or wss://, then host:port)")
        return urls

    @model_validator(mode="after")
    def _one_bridge_list(self) -> "CartSettings":
        """BRIDGE_URL alone is a list of one; with BRIDGE_URLS set, BRIDGE_URL reads as its primary."""
        if self.bridge_urls:
            self.bridge_url = self.bridge_urls[0]
        else:
            self.bridge_urls = [self.bridge_url]
        return self

    @model_validator(mode="after")
    def _streams_leave_threads_free(self) -> "CartSettings":
        """Each live-update stream holds a worker thread and a connection for as long as the page is open."""
        if self.ui_max_streams >= self.ui_threads:
            raise ValueError("ui_max_streams must be below ui_threads: pages and the API need a thread too")
        if self.ui_max_streams >= self.ui_connection_limit:
            raise ValueError("ui_max_streams must be below ui_connection_limit")
        return self
