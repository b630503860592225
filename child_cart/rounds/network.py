"""What the round engine needs from the network: a directory, routed frames, transfers.

`cartnet.client.BridgeClient` provides it over a bridge; the engine and the
exchange only see this protocol, so they are tested and simulated the same way.
"""

from __future__ import annotations

from typing import Protocol

from cartnet.identity import Identity
from cartnet.messages import PeerInfo
from cartnet.transfer import TransferHub


class Network(Protocol):
    identity: Identity
    transfers: TransferHub
    bridge_id: str | None

    async def peers(self) -> list[PeerInfo]:
        """The live carts of the swarm (this node included or not)."""

    async def send_to(self, peer_id: str, inner: bytes) -> None:
        """Route one frame to another cart."""
