"""Prometheus metrics of one bridge, in a registry of its own (several bridges can share a process)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE = CONTENT_TYPE_LATEST
_REJECT_CODES = (
    ("malformed", "malformed"),
    ("admission failed", "failed"),
    ("wrong swarm token", "wrong_token"),
    ("not this swarm", "wrong_swarm"),
    ("certificate is for a", "wrong_role"),
    ("is revoked", "revoked"),
    ("certificate expired", "expired"),
    ("not valid before", "not_yet_valid"),
    ("bad certificate signature", "bad_certificate"),
    ("not for this key", "id_mismatch"),
    ("bad signature", "bad_signature"),
    ("nonce", "replayed_nonce"),
    ("node id", "id_mismatch"),
    ("full", "bridge_full"),
    ("shutting down", "shutting_down"),
    ("did not answer", "timeout"),
)


def reject_code(reason: str) -> str:
    """A small, fixed label for an admission refusal (reasons are free text, labels must not be)."""
    return next((code for needle, code in _REJECT_CODES if needle in reason), "malformed")


class BridgeMetrics:
    """Counters the relay updates as it works, and gauges read at scrape time."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.frames = Counter("fedcart_bridge_frames_relayed", "Routed frames forwarded", ["path"], registry=r)
        self.bytes = Counter("fedcart_bridge_bytes_relayed", "Bytes of routed frames forwarded", ["path"], registry=r)
        self.undeliverable = Counter(
            "fedcart_bridge_undeliverable", "Routed frames that could not be delivered", ["reason"], registry=r
        )
        self.rejects = Counter("fedcart_bridge_rejects", "Admissions refused", ["reason"], registry=r)
        self.bad_frames = Counter(
            "fedcart_bridge_bad_frames",
            "Frames from admitted carts and bridges refused (malformed, spoofed, oversized, unhandled), by code",
            ["code"],
            registry=r,
        )
        self.replies_dropped = Counter(
            "fedcart_bridge_replies_dropped",
            "Replies of the bridge itself (acks, peer lists, errors) dropped because a cart did not read them",
            ["kind"],
            registry=r,
        )
        self.paced = Counter(
            "fedcart_bridge_rate_limited_seconds", "Seconds carts were paced by rate limits", registry=r
        )
        self.departures = Counter("fedcart_bridge_departures", "Carts that left", ["how"], registry=r)
        self.header_timeouts = Counter(
            "fedcart_bridge_http_header_timeouts",
            "HTTP connections closed because their request headers were not complete within HTTP_HEADER_TIMEOUT",
            registry=r,
        )
        self.models = Counter("fedcart_bridge_models_published", "TFLite models accepted for phones", registry=r)
        self.dht_refused = Counter(
            "fedcart_bridge_dht_refused",
            "DHT values neither stored nor believed (no certificate, forged, revoked, expiry too far...), by reason",
            ["reason"],
            registry=r,
        )
        self._gauges: list[Gauge] = []

    def gauge(self, name: str, doc: str, read: Callable[[], float]) -> None:
        """A gauge whose value is read from the live bridge whenever /metrics is scraped."""
        gauge = Gauge(name, doc, registry=self.registry)
        gauge.set_function(read)
        self._gauges.append(gauge)

    def render(self) -> bytes:
        return generate_latest(self.registry)
