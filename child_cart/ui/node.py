"""What the UI needs to know about the running node, and a stand-in for when there is none.

The round engine and the bridge connection live in the node runtime, which is
built separately; the UI only reads a few facts from it through `NodeView`, so
either side can change without the other, and the UI runs standalone (tests,
demos) with `OfflineNode`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from cartnet.identity import Identity
from child_cart.settings import CartSettings

log = logging.getLogger(__name__)


@runtime_checkable
class NodeView(Protocol):
    """The node as the UI sees it; every member must be cheap and safe to call from any thread."""

    @property
    def node_id(self) -> str:
        """This cart's node id (hex)."""
        ...

    @property
    def bridge_url(self) -> str:
        """The bridge this cart connects out to."""
        ...

    @property
    def connected(self) -> bool:
        """True while the cart holds a live, admitted connection to its bridge."""
        ...

    def peers(self) -> list[dict[str, Any]]:
        """The bridge directory's entries (one dict per peer cart), as last seen."""
        ...


@dataclass(frozen=True)
class OfflineNode:
    """A cart with no bridge connection: standalone UI, demos and tests."""

    node_id: str
    bridge_url: str = ""
    connected: bool = False

    def peers(self) -> list[dict[str, Any]]:
        """No bridge, so no directory."""
        return []

    @classmethod
    def from_settings(cls, settings: CartSettings) -> OfflineNode:
        """The cart's real node id (its key in the data dir), without connecting anywhere."""
        identity = Identity.load_or_create(settings.data_dir)
        log.info("UI running offline as node %s", identity.node_id[:12])
        return cls(node_id=identity.node_id, bridge_url=settings.bridge_url)
