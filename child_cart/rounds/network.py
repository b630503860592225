"""What the round engine needs from the network: a directory, routed frames, transfers.

`cartnet.client.BridgeClient` provides it over a bridge; the engine and the
exchange only see this protocol, so they are tested and simulated the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from cartnet.identity import Identity
from cartnet.messages import PeerInfo
from cartnet.transfer import TransferHub


class Network(Protocol):
    identity: Identity
    transfers: TransferHub
    bridge_id: str | None

    async def peers(
        self, *, sample: int | None = None, task: str | None = None, known: Sequence[str] = (), by_id: bool = False
    ) -> list[PeerInfo]:
        """Announced live carts of the swarm (this node included or not); with `sample`, that many drawn
        at random by the bridge, those ready with an update for `task` first, the `known` ones (node id
        prefixes, `PeersRequest.known`) without their certificates, or, `by_id`, listed by id alone and
        made whole from the entries this node verified."""

    async def lookup(self, node_id: str) -> PeerInfo | None:
        """One announced live cart's entry, whole, or None (a requester this node never verified)."""

    async def announce(self, *, ready: bool, task: str | None = None) -> None:
        """Tell the swarm whether this cart has an update on offer (for `task`)."""

    async def send_to(self, peer_id: str, inner: bytes) -> None:
        """Route one frame to another cart."""
