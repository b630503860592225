"""Routing of `R <to> <from> <inner>` frames, and telling senders when a frame cannot arrive.

The relay looks at the 41-byte header only; the inner frame (often end-to-end encrypted
weights) passes through unread. A frame from a local cart goes to the destination's
outbox if it is attached here, over the link to its bridge if another bridge vouched for
it, or (after a DHT lookup) to whichever bridge its signed presence names. A frame that
arrived over a link is delivered locally or bounced, never forwarded again, so frames
cannot loop between bridges, and only if its sender is a cart that bridge vouched for
(a linked bridge cannot speak for carts it does not hold).

A notice that finds the sender's outbox full is dropped, never waited for (the relay must
not stall on a sender that does not read), and counted in
`fedcart_bridge_replies_dropped{kind}`.

The relay remembers, per destination, which local carts recently sent to it; when the
destination leaves, those senders get an Undeliverable at once, which fails their
pending transfers promptly instead of after a reply timeout.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from cartnet import frames
from cartnet.messages import LinkUndeliverable, Undeliverable
from parent_cart.directory import Directory
from parent_cart.metrics import BridgeMetrics
from parent_cart.peer import Peer

log = logging.getLogger(__name__)

ForwardFn = Callable[[str, bytes, float], Awaitable[str | None]]
"""(bridge id, frame, timeout) -> None when queued on the link to that bridge, else why not."""
LookupFn = Callable[[str], Awaitable[str | None]]
"""node id -> the id of the bridge its verified DHT presence names, or None."""

_SENDERS_PER_DESTINATION = 256
_REMEMBERED_DEPARTURES = 4096


class Relay:
    """Forwards routed frames; never blocks longer than `send_timeout` on one receiver."""

    def __init__(
        self, directory: Directory, metrics: BridgeMetrics, send_timeout: float, forward: ForwardFn, lookup: LookupFn
    ) -> None:
        self.directory = directory
        self.metrics = metrics
        self.send_timeout = send_timeout
        self._forward = forward
        self._lookup = lookup
        self._senders: dict[str, OrderedDict[str, None]] = {}
        self._departed: OrderedDict[str, str] = OrderedDict()

    async def route(self, frame: bytes, to: str, sender: str, origin: Peer) -> None:
        """Deliver one routed frame, or tell its sender (via `origin`) why it could not be."""
        from_link = origin.role == "bridge"
        if from_link and sender not in self.directory.remote.get(origin.node_id, {}):
            self.metrics.bad_frames.labels("spoofed_sender").inc()
            self.bounce(origin, sender, to, f"sender {sender[:8]} is not on the roster of bridge {origin.node_id[:8]}")
            return
        failure, path = await self._deliver(frame, to, from_link)
        if failure:
            self.metrics.undeliverable.labels(failure[0]).inc()
            self.bounce(origin, sender, to, failure[1])
            return
        self.metrics.frames.labels(path).inc()
        self.metrics.bytes.labels(path).inc(len(frame))
        if not from_link:
            self._remember(to, sender)

    async def _deliver(self, frame: bytes, to: str, from_link: bool) -> tuple[tuple[str, str] | None, str]:
        """Hand one frame on: (None, or what failed and why) and the path it took, for the metrics.

        A DHT lookup or a dial to a dead bridge can take seconds, and a cart whose bridge died may attach here
        meanwhile: the DHT still names its old bridge. It is looked for here again before the frame bounces, since
        its sender fails every transfer to it on the bounce, an answer of this round included."""
        target = self.directory.locate(to)
        if target is None and not from_link:
            target = await self._lookup(to) or self.directory.local.get(to)
        if isinstance(target, str) and not from_link:
            reason = await self._forward(target, frame, self.send_timeout)
            if not reason:
                return None, "link_out"
            target = self.directory.local.get(to)
            if target is None:
                return ("link_down", reason), "link_out"
        if isinstance(target, Peer):
            return await self._to_local(target, frame), "link_in" if from_link else "local"
        return (("gone", self._departed[to]) if to in self._departed else ("unknown", _unknown(to))), ""

    async def _to_local(self, target: Peer, frame: bytes) -> tuple[str, str] | None:
        if await target.outbox.put(frame, self.send_timeout):
            return None
        if target.outbox.closed:
            return "gone", f"cart {target.node_id[:8]} is disconnecting"
        return "slow_receiver", (
            f"cart {target.node_id[:8]} is not reading: its queue stayed full for {self.send_timeout}s, frame dropped"
        )

    def bounce(self, origin: Peer, sender: str, to: str, reason: str) -> None:
        """Tell `sender` (a local cart, or a cart behind the link `origin`) that `to` is unreachable."""
        log.debug("undeliverable %s -> %s: %s", sender[:8], to[:8], reason)
        notice = (
            LinkUndeliverable(sender=sender, to=to, reason=reason)
            if origin.role == "bridge"
            else Undeliverable(to=to, reason=reason)
        )
        self._notify(origin, notice)

    def tell_local(self, sender: str, to: str, reason: str) -> None:
        """A linked bridge bounced a frame of our cart `sender`: pass the news on."""
        peer = self.directory.local.get(sender)
        if peer is not None:
            self._notify(peer, Undeliverable(to=to, reason=reason))

    def _notify(self, peer: Peer, notice: Undeliverable | LinkUndeliverable) -> None:
        """Queue a notice without waiting; one that finds no room (and a live peer) is counted as dropped."""
        if not peer.outbox.offer(frames.control(notice), urgent=True) and not peer.outbox.closed:
            self.metrics.replies_dropped.labels(notice.type).inc()

    def _remember(self, to: str, sender: str) -> None:
        senders = self._senders.setdefault(to, OrderedDict())
        senders.pop(sender, None)
        senders[sender] = None
        if len(senders) > _SENDERS_PER_DESTINATION:
            senders.popitem(last=False)

    def arrived(self, node_id: str) -> None:
        """`node_id` is reachable (again): forget why it was not."""
        self._departed.pop(node_id, None)

    def departed(self, node_id: str, reason: str) -> None:
        """`node_id` left the swarm: remember why, and tell every local cart that was talking to it."""
        self._departed[node_id] = f"cart {node_id[:8]} left: {reason}"
        self._departed.move_to_end(node_id)
        while len(self._departed) > _REMEMBERED_DEPARTURES:
            self._departed.popitem(last=False)
        for sender in self._senders.pop(node_id, {}):
            self.tell_local(sender, node_id, self._departed[node_id])


def _unknown(to: str) -> str:
    return f"no cart {to[:8]} is connected to the swarm (unknown destination)"
