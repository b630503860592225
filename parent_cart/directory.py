"""Who is in the swarm: carts attached here, and carts other bridges vouched for over links.

Local carts are known from their admission, but listed only once their signed presence
arrives: an admitted cart that never announced itself is reachable, never offered as a
peer. Remote carts are known only through verified presence records, each with the cart's
certificate, that their bridge sent over an authenticated link (or that the DHT held); an
expired record is ignored even before the link says the cart left. Every entry handed to
a cart (`PeerInfo`) carries that signed record and certificate: carts check them
(cartnet.peers) and never take a key on the bridge's word. `sample` draws k random listed carts (ready ones for the asked task first),
so no answer ever needs the whole directory. Anything that waits for the directory to change (tests, `/peers` pollers)
can `await wait_until(...)` instead of sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from cartnet import presence
from cartnet.messages import CertifiedPresence, PeerInfo, Presence, PresenceRecord, Roster
from parent_cart.peer import Peer

log = logging.getLogger(__name__)

_DRAW = random.SystemRandom()
"""Whom a sample names is not for any cart to predict or steer."""


@dataclass(frozen=True)
class Member:
    """One cart as the directory lists it."""

    info: PeerInfo
    local: bool
    record: PresenceRecord

    def as_json(self) -> dict[str, object]:
        return {
            **self.info.listing(),
            "local": self.local,
            "task": self.record.task,
            "ready": self.record.ready,
        }


class Directory:
    """Local connections and remote rosters, plus a change signal to wait on."""

    def __init__(self, bridge_id: str, bridge_url: str) -> None:
        self.bridge_id = bridge_id
        self.bridge_url = bridge_url
        self.local: dict[str, Peer] = {}
        self.presences: dict[str, Presence] = {}
        self.remote: dict[str, dict[str, CertifiedPresence]] = {}
        self.bridge_urls: dict[str, str] = {}
        self._changed = asyncio.Event()

    # --- change signal ---------------------------------------------------------------------

    def touch(self) -> None:
        """Wake everyone waiting for a change (links call this too: they change what is reachable)."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def changed(self) -> None:
        """Return at the next change."""
        await self._changed.wait()

    async def wait_until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """True once `predicate()` holds, False if it still does not after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)
        return True

    # --- local carts -----------------------------------------------------------------------

    def attach(self, peer: Peer) -> Peer | None:
        """Register an admitted cart; returns the older connection it replaces, if any."""
        old = self.local.get(peer.node_id)
        self.local[peer.node_id] = peer
        self.presences.pop(peer.node_id, None)
        self.touch()
        return old

    def detach(self, peer: Peer) -> bool:
        """Forget `peer` unless a newer connection of the same cart already replaced it."""
        if self.local.get(peer.node_id) is not peer:
            return False
        del self.local[peer.node_id]
        self.presences.pop(peer.node_id, None)
        self.touch()
        return True

    def set_presence(self, node_id: str, signed: Presence) -> None:
        self.presences[node_id] = signed
        self.touch()

    def local_records(self) -> list[PresenceRecord]:
        """Alive records of attached carts: what this bridge vouches for to other bridges."""
        return [signed.record for node_id, signed in self.presences.items() if node_id in self.local]

    def local_cards(self) -> list[CertifiedPresence]:
        """Alive records of attached carts with the certificates their admission verified (for rosters)."""
        return [self.card(node_id) for node_id in self._announced()]

    def card(self, node_id: str) -> CertifiedPresence:
        """An announced local cart's signed presence and certificate."""
        return CertifiedPresence(
            record=self.presences[node_id].record, certificate=self.local[node_id].auth.certificate
        )

    # --- remote carts ----------------------------------------------------------------------

    def apply_roster(self, bridge_id: str, url: str, roster: Roster) -> tuple[list[str], list[str]]:
        """Apply a roster a linked bridge sent; returns (joined, left) node ids. Bad records are skipped."""
        self.bridge_urls[bridge_id] = url
        known = self.remote.setdefault(bridge_id, {})
        left = [node_id for node_id in (list(known) if roster.reset else roster.left) if known.pop(node_id, None)]
        joined = []
        for card in roster.joined:
            record = card.record
            reason = presence.check(record) or (None if record.bridge_id == bridge_id else "names another bridge")
            if reason is None and card.certificate.node_id != record.node_id:
                reason = "its certificate is another cart's"
            if reason or record.state != "alive":
                log.warning(
                    "ignoring roster entry %s from %s: %s", record.node_id[:8], bridge_id[:8], reason or "not alive"
                )
                continue
            known[record.node_id] = card
            joined.append(record.node_id)
        self.touch()
        return joined, [node_id for node_id in left if node_id not in known]

    def forget_bridge(self, bridge_id: str) -> list[str]:
        """The link to `bridge_id` is gone: drop its roster, return the carts that vanish with it."""
        gone = list(self.remote.pop(bridge_id, {}))
        self.touch()
        return gone

    def learn_record(self, card: CertifiedPresence, url: str) -> None:
        """Remember a verified DHT presence record (and certificate) until its own link roster takes over."""
        record = card.record
        self.bridge_urls[record.bridge_id] = url
        self.remote.setdefault(record.bridge_id, {})[record.node_id] = card
        self.touch()

    # --- lookups ---------------------------------------------------------------------------

    def locate(self, node_id: str) -> Peer | str | None:
        """The local connection of `node_id`, the id of the bridge it sits behind, or None."""
        peer = self.local.get(node_id)
        if peer is not None:
            return peer
        found = self._remote_records().get(node_id)
        return found.record.bridge_id if found else None

    def _remote_records(self) -> dict[str, CertifiedPresence]:
        """The freshest unexpired record per remote cart, with its certificate (a cart that moved shows up once)."""
        now = presence.now_ms()
        best: dict[str, CertifiedPresence] = {}
        for carts in self.remote.values():
            for node_id, card in carts.items():
                record = card.record
                if record.expires_ms > now and (
                    node_id not in best or presence.supersedes(record, best[node_id].record)
                ):
                    best[node_id] = card
        return best

    def _announced(self) -> list[str]:
        """Local carts that announced themselves (sent a valid presence), in id order."""
        return sorted(node_id for node_id in self.local if node_id in self.presences)

    def count(self) -> int:
        """How many carts `members()` would list, without building the list (for /health, metrics)."""
        return len(self._announced()) + sum(1 for node_id in self._remote_records() if node_id not in self.local)

    def members(self) -> list[Member]:
        """Every announced cart of the swarm believed alive, local ones first, each once."""
        members = [self._local_member(node_id) for node_id in self._announced()]
        remote = self._remote_records()
        members += [
            Member(self._remote_info(remote[node_id]), False, remote[node_id].record)
            for node_id in sorted(remote)
            if node_id not in self.local
        ]
        return members

    def member(self, node_id: str) -> Member | None:
        """One announced cart's entry, if it is believed alive."""
        if node_id in self.local:
            return self._local_member(node_id) if node_id in self.presences else None
        card = self._remote_records().get(node_id)
        return Member(self._remote_info(card), False, card.record) if card is not None else None

    def sample(
        self, count: int, task: str | None = None, exclude: str = "", rng: random.Random | None = None
    ) -> tuple[list[PeerInfo], int]:
        """Up to `count` announced carts drawn at random (for `task` when given, never `exclude`), those with
        an update ready first; and how many carts they were drawn from."""
        draw = rng or _DRAW
        pool = [m for m in self.members() if m.info.node_id != exclude and (task is None or m.record.task == task)]
        ready = [m for m in pool if m.record.ready]
        waiting = [m for m in pool if not m.record.ready]
        chosen = draw.sample(ready, min(count, len(ready)))
        chosen += draw.sample(waiting, min(count - len(chosen), len(waiting)))
        return [m.info for m in chosen], len(pool)

    def _local_member(self, node_id: str) -> Member:
        card = self.card(node_id)
        return Member(PeerInfo.of(card, self.bridge_url), True, card.record)

    def _remote_info(self, card: CertifiedPresence) -> PeerInfo:
        return PeerInfo.of(card, self.bridge_urls.get(card.record.bridge_id, ""))
