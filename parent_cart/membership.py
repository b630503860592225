"""Who belongs to the swarm, as this bridge knows it: the swarm key, its own certificate, the newest revocations.

A bridge starts only when its data dir holds the swarm's public key (`swarm.json`) and a
valid bridge certificate for its own key (`certificate.json`), both written by `fedcart
enrol`; otherwise `Membership` raises CertificateError whose message names that command.

Revocation lists are signed by the swarm authority, so any bridge may pass one on and
none can forge or roll one back: a list is adopted only when its signature holds and its
serial is higher than the one in hand. A new list enters the swarm through any bridge's
data dir (`fedcart revoke --data-dir`, re-read every `refresh_interval`) or over a bridge
link; whoever adopts it keeps it in its data dir, tells its listeners (the bridge spreads
it over every link and drops the sessions of the nodes it names) and so on, bridge by
bridge, within one refresh interval.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from cartnet import admission, certificates
from cartnet.authority import store_revocations
from cartnet.certificates import REVOCATIONS_FILE, Certificate, CertificateError, RevocationList, SwarmKey
from cartnet.identity import Identity
from cartnet.messages import Auth, CertifiedPresence, Challenge

log = logging.getLogger(__name__)

Listener = Callable[[RevocationList], None]


class Membership:
    """The swarm's key, this bridge's certificate and the newest revocation list it has seen."""

    def __init__(self, data_dir: Path, identity: Identity, swarm_token: str = "") -> None:
        self.data_dir = data_dir
        self.identity = identity
        self.swarm_token = swarm_token
        swarm, cert = certificates.load_enrolment(data_dir, identity.public_key, "bridge")
        self.swarm: SwarmKey = swarm
        self.certificate: Certificate = cert
        self.revocations: RevocationList | None = None
        self._listeners: list[Listener] = []
        self._seen_file: tuple[int, int] | None = None
        self.reload()

    @property
    def swarm_id(self) -> str:
        return self.swarm.swarm_id

    @property
    def serial(self) -> int:
        """The serial of the newest revocation list in hand (-1: none yet)."""
        return -1 if self.revocations is None else self.revocations.serial

    def revoked(self, node_id: str) -> bool:
        return self.revocations is not None and self.revocations.names(node_id)

    def on_revocations(self, listener: Listener) -> None:
        """Call `listener(list)` whenever a newer revocation list is adopted."""
        self._listeners.append(listener)

    # --- admission ---------------------------------------------------------------------------

    def answer(self, challenge: Challenge, relay_url: str) -> Auth:
        """This bridge's answer to another bridge's challenge."""
        return admission.answer(challenge, self.identity, self.certificate, "bridge", relay_url, self.swarm_token)

    def verify(self, auth: Auth, issued: Challenge) -> None:
        """AdmissionError with the reason unless `auth` answers `issued` as a member in the role it claims."""
        admission.verify(
            auth, issued, self.swarm.public_key, revocations=self.revocations, swarm_token=self.swarm_token
        )

    def standing(self, auth: Auth, now: int | None = None) -> str | None:
        """None while an admitted node's certificate still holds; else why it no longer does (revoked, expired)."""
        try:
            certificates.verify(
                auth.certificate,
                self.swarm.public_key,
                auth.role,
                now,
                public_key=auth.public_key,
                revocations=self.revocations,
            )
        except CertificateError as exc:
            return str(exc)
        return None

    def certifies(self, card: CertifiedPresence, now: int | None = None) -> str | None:
        """None when `card`'s certificate makes its cart a member now (this swarm, its key, a cart, current, not
        revoked); else why not. Rosters from other bridges pass only such entries on to our directory."""
        try:
            certificates.verify(
                card.certificate,
                self.swarm.public_key,
                "cart",
                now,
                public_key=card.record.public_key,
                revocations=self.revocations,
            )
        except CertificateError as exc:
            return str(exc)
        return None

    # --- revocations ---------------------------------------------------------------------------

    def offer(self, revocations: RevocationList, source: str) -> bool:
        """Adopt `revocations` if this swarm's authority signed it and it is newer than ours; True when adopted.

        Raises CertificateError when the list is not this swarm's authority's word.
        """
        certificates.check_revocations(revocations, self.swarm.public_key)
        if not certificates.newer(revocations, self.revocations):
            return False
        self.revocations = revocations
        try:
            store_revocations(self.data_dir, revocations)
            self._seen_file = self._file_stamp()
        except OSError as exc:
            log.warning("could not keep revocation list %d in %s: %s", revocations.serial, self.data_dir, exc)
        log.info(
            "revocation list %d adopted from %s: %d node(s) revoked",
            revocations.serial,
            source,
            len(revocations.revoked),
        )
        for listener in list(self._listeners):
            listener(revocations)
        return True

    def reload(self) -> bool:
        """Re-read the data dir's revocation list if the file changed (the operator dropped a new one there)."""
        stamp = self._file_stamp()
        if stamp is None or stamp == self._seen_file:
            return False
        self._seen_file = stamp
        try:
            found = certificates.read_revocations(self.data_dir)
            return found is not None and self.offer(found, str(self.data_dir / REVOCATIONS_FILE))
        except CertificateError as exc:
            log.warning("ignoring %s: %s", self.data_dir / REVOCATIONS_FILE, exc)
            return False

    def _file_stamp(self) -> tuple[int, int] | None:
        try:
            info = (self.data_dir / REVOCATIONS_FILE).stat()
        except FileNotFoundError:
            return None
        return info.st_mtime_ns, info.st_size
