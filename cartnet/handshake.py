"""The admission handshake on an open WebSocket, as the side that joins.

A cart joining its bridge and a bridge joining another bridge answer the same
challenge (cartnet.admission) in the same way, so both use `join`; the bridge's
gate and links use `receive_control` and `ws_url` too. `cartnet.client` builds
the cart's long-lived connection on top of this.
"""

from __future__ import annotations

import aiohttp

from cartnet import admission, frames
from cartnet.certificates import Role
from cartnet.identity import Identity
from cartnet.messages import AnyMessage, Certificate, Challenge, Message, Reject, Welcome

MAX_FRAME = 4 * 1024 * 1024
"""aiohttp's default message limit on both ends; a bigger frame would close the socket (1009)."""


REFUSALS_OF_THE_NODE = (
    "not this swarm",
    "bad certificate signature",
    "certificate's node id",
    "not for this key",
    "certificate is for a",
    "not valid before",
    "certificate expired",
    "is revoked",
    "wrong swarm token",
    "bad signature",
    "not the SHA-1 of the public key",
)
"""Words of the refusals that judge the node itself (its certificate, key or token), which every bridge of the
swarm checks alike: retrying cannot change them. Every other refusal (no answer in time, a full or stopping
bridge, a failure on the bridge's side) is about that bridge at that moment."""


class AdmissionRefused(ConnectionError):
    """The bridge rejected our admission; `reason` is the bridge's own words.

    `of_the_node`: the refusal judged our certificate, key or token (REFUSALS_OF_THE_NODE), so that
    bridge will say the same on every retry; any other refusal is worth another try later."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"bridge refused admission: {reason}")
        self.reason = reason

    @property
    def of_the_node(self) -> bool:
        return any(words in self.reason for words in REFUSALS_OF_THE_NODE)


def ws_url(bridge_url: str) -> str:
    """The relay endpoint of a bridge given by its base URL (`http://host:port`) or its `/ws` URL."""
    url = bridge_url.rstrip("/")
    return url if url.endswith("/ws") else f"{url}/ws"


async def receive_control(ws: aiohttp.ClientWebSocketResponse, timeout: float) -> AnyMessage:
    """The next frame on `ws`, which must be a control message; ConnectionError when the socket ends."""
    msg = await ws.receive(timeout=timeout)
    if msg.type is not aiohttp.WSMsgType.BINARY:
        raise ConnectionError(f"connection ended during the handshake ({msg.type.name}, {msg.extra or ''})")
    item = frames.parse(msg.data)
    if not isinstance(item, Message):
        raise ConnectionError(f"expected a control message during the handshake, got {type(item).__name__}")
    return item


async def join(
    ws: aiohttp.ClientWebSocketResponse,
    identity: Identity,
    certificate: Certificate,
    role: Role = "cart",
    relay_url: str = "",
    timeout: float = 10.0,
    swarm_token: str = "",
) -> Welcome:
    """Answer a bridge's admission challenge on an open socket, showing `certificate`;
    AdmissionRefused carries the bridge's reason.

    Bridges use the same call (role "bridge", their relay URL) to join each other.
    """
    challenge = await receive_control(ws, timeout)
    if not isinstance(challenge, Challenge):
        raise ConnectionError(f"expected a challenge, got {challenge.type}")
    await ws.send_bytes(
        frames.control(admission.answer(challenge, identity, certificate, role, relay_url, swarm_token))
    )
    reply = await receive_control(ws, timeout)
    if isinstance(reply, Reject):
        raise AdmissionRefused(reply.reason)
    if not isinstance(reply, Welcome) or reply.bridge_id != challenge.bridge_id:
        raise ConnectionError(f"expected a welcome from {challenge.bridge_id[:8]}, got {reply.type}")
    return reply
