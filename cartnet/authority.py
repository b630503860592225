"""The swarm authority: the operator's Ed25519 key that says who belongs to a swarm, and as what.

The authority lives in one directory on the operator's machine (never on a node):

    authority_ed25519.key   the private key (0600, in a 0700 directory)
    swarm.json              the public key and the swarm id derived from it (the nodes' trust anchor)
    revocations.json        the newest signed revocation list (serial 0, empty, at creation)
    issued/NODE_ID.json     a copy of every certificate issued, so the operator can see who was enrolled
    tls_ca.key, tls_ca.pem  the swarm's X.509 CA for TLS (cartnet.tls), made on first use

Enrolling a node writes into the node's data dir its certificate (`certificate.json`), the
swarm key (`swarm.json`), the newest revocation list and the swarm's TLS CA certificate
(`tls/ca.pem`); given TLS host names, also a server certificate for them (`tls/cert.pem`,
its key `tls/key.pem`). The node's own keys are created there if missing and never leave
it: only public keys are certified.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cartnet.certificates import (
    CERTIFICATE_FILE,
    REVOCATIONS_FILE,
    SWARM_FILE,
    Certificate,
    CertificateError,
    RevocationList,
    Role,
    SwarmKey,
    certificate_bytes,
    decode_certificate,
    encode,
    newer,
    read_certificate,
    read_revocations,
    read_swarm_key,
    revocation_bytes,
    utc_time,
    verify,
)
from cartnet.files import write_atomic
from cartnet.identity import Identity, node_id_of
from cartnet.presence import now_ms
from cartnet.tls import SwarmCA, host_names, issue_server_certificate, server_certificate_holds, store_ca

log = logging.getLogger(__name__)

AUTHORITY_KEY_FILE = "authority_ed25519.key"
ISSUED_DIR = "issued"
DEFAULT_DAYS = 365.0
CLOCK_SKEW_MS = 5 * 60 * 1000
"""A certificate holds from this long before it was issued, so a node whose clock is a little behind accepts it."""
_DAY_MS = 24 * 3600 * 1000


class AuthorityError(RuntimeError):
    """The authority directory is missing, incomplete or already taken; the message says what to do."""


@dataclass(frozen=True)
class Authority:
    """A loaded swarm authority: it issues certificates and signs revocation lists."""

    directory: Path
    signing_key: Ed25519PrivateKey

    @classmethod
    def create(cls, directory: Path) -> Authority:
        """A new authority in `directory` (created 0700); AuthorityError if one is there already."""
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(0o700)
        key = Ed25519PrivateKey.generate()
        raw = key.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
        if not write_atomic(directory / AUTHORITY_KEY_FILE, raw, private=True, exclusive=True):
            raise AuthorityError(f"{directory} already holds a swarm authority ({AUTHORITY_KEY_FILE}); use it as it is")
        authority = cls(directory, key)
        write_atomic(directory / SWARM_FILE, encode(authority.swarm))
        authority._store_revocations(authority._sign_revocations(0, [], now_ms()))
        authority.tls_ca()
        log.info("created swarm authority %s in %s", authority.swarm.swarm_id, directory)
        return authority

    @classmethod
    def load(cls, directory: Path) -> Authority:
        """The authority kept in `directory`; AuthorityError naming the command that creates one."""
        path = directory / AUTHORITY_KEY_FILE
        if not path.exists():
            raise AuthorityError(
                f"no swarm authority in {directory}; create one with: fedcart authority init --dir {directory}"
            )
        raw = path.read_bytes()
        try:
            key = Ed25519PrivateKey.from_private_bytes(raw)
        except ValueError:
            raise AuthorityError(f"{path} is not an Ed25519 private key ({len(raw)} bytes)") from None
        authority = cls(directory, key)
        try:
            stored = read_swarm_key(directory)
        except CertificateError as exc:
            raise AuthorityError(f"{directory / SWARM_FILE}: {exc}") from None
        if stored != authority.swarm:
            write_atomic(directory / SWARM_FILE, encode(authority.swarm))
        return authority

    @classmethod
    def load_or_create(cls, directory: Path) -> Authority:
        """For local tools (`fedcart swarm`, compose): the authority in `directory`, created on first use."""
        if (directory / AUTHORITY_KEY_FILE).exists():
            return cls.load(directory)
        try:
            return cls.create(directory)
        except AuthorityError:  # another process created it a moment ago
            return cls.load(directory)

    @property
    def public_key(self) -> bytes:
        return self.signing_key.public_key().public_bytes_raw()

    @property
    def swarm(self) -> SwarmKey:
        return SwarmKey.of(self.public_key)

    # --- certificates --------------------------------------------------------------------------

    def issue(self, public_key: bytes, role: Role, days: float = DEFAULT_DAYS, now: int | None = None) -> Certificate:
        """A certificate for the node holding `public_key`, as `role`, valid `days` from `now` (Unix ms)."""
        if days <= 0:
            raise ValueError(f"a certificate must be valid for some time, not {days} days")
        issued = now_ms() if now is None else now
        unsigned = Certificate(
            swarm_id=self.swarm.swarm_id,
            node_id=node_id_of(public_key),
            public_key=public_key,
            role=role,
            not_before_ms=max(0, issued - CLOCK_SKEW_MS),
            not_after_ms=issued + int(days * _DAY_MS),
            signature=bytes(64),
        )
        cert = unsigned.model_copy(update={"signature": self.signing_key.sign(certificate_bytes(unsigned))})
        write_atomic(self.directory / ISSUED_DIR / f"{cert.node_id}.json", encode(cert))
        return cert

    def issued(self) -> list[Certificate]:
        """Every certificate this authority issued (the newest one per node)."""
        folder = self.directory / ISSUED_DIR
        return (
            [decode_certificate(path.read_bytes()) for path in sorted(folder.glob("*.json"))] if folder.exists() else []
        )

    def tls_ca(self) -> SwarmCA:
        """The swarm's X.509 CA for TLS server certificates (cartnet.tls), made in this directory on first use."""
        return SwarmCA.load_or_create(self.directory, self.swarm.swarm_id)

    # --- revocations ---------------------------------------------------------------------------

    def revocations(self) -> RevocationList:
        """The newest revocation list this authority signed."""
        try:
            current = read_revocations(self.directory)
        except CertificateError as exc:
            raise AuthorityError(f"{self.directory / REVOCATIONS_FILE}: {exc}") from None
        if current is None:
            current = self._sign_revocations(0, [], now_ms())
            self._store_revocations(current)
        return current

    def revoke(self, node_ids: Iterable[str], now: int | None = None) -> RevocationList:
        """Sign and keep a new list: the previous one plus `node_ids`, with the next serial."""
        current = self.revocations()
        revoked = list(dict.fromkeys([*current.revoked, *node_ids]))
        for node_id in revoked:
            if len(node_id) != 40 or any(c not in "0123456789abcdef" for c in node_id):
                raise ValueError(f"{node_id!r} is not a node id (40 lowercase hex digits)")
        signed = self._sign_revocations(current.serial + 1, revoked, now_ms() if now is None else now)
        self._store_revocations(signed)
        return signed

    def _sign_revocations(self, serial: int, revoked: list[str], issued: int) -> RevocationList:
        unsigned = RevocationList(
            swarm_id=self.swarm.swarm_id, serial=serial, issued_ms=issued, revoked=revoked, signature=bytes(64)
        )
        return unsigned.model_copy(update={"signature": self.signing_key.sign(revocation_bytes(unsigned))})

    def _store_revocations(self, revocations: RevocationList) -> None:
        write_atomic(self.directory / REVOCATIONS_FILE, encode(revocations))


# --- the node side ---------------------------------------------------------------------------


def enrol(
    authority: Authority, data_dir: Path, role: Role, days: float = DEFAULT_DAYS, tls_hosts: Sequence[str] = ()
) -> Certificate:
    """Make the node kept in `data_dir` a member: its keys (created if missing) certified as `role`.

    Writes the node's certificate, the swarm key, the authority's newest revocation list and the
    swarm's TLS CA certificate into `data_dir`; with `tls_hosts` (DNS names or IP addresses) also a
    TLS server certificate for them, valid as long. Only the node's public keys are read; its private
    keys stay where they are.
    """
    if tls_hosts:
        host_names(tls_hosts)  # ValueError naming a bad host before anything is written
    identity = Identity.load_or_create(data_dir)
    cert = authority.issue(identity.public_key, role, days)
    write_atomic(data_dir / SWARM_FILE, encode(authority.swarm))
    write_atomic(data_dir / CERTIFICATE_FILE, encode(cert))
    store_revocations(data_dir, authority.revocations())
    _enrol_tls(authority, data_dir, cert, days, tls_hosts, renew_days=None)
    log.info(
        "enrolled %s %s in swarm %s until %s", role, cert.node_id[:8], cert.swarm_id[:8], utc_time(cert.not_after_ms)
    )
    return cert


def ensure_enrolled(
    authority: Authority,
    data_dir: Path,
    role: Role,
    days: float = DEFAULT_DAYS,
    renew_days: float = 1.0,
    tls_hosts: Sequence[str] = (),
) -> Certificate:
    """For local tools: the node's certificate, issued anew unless a valid one for this swarm and
    role is already there with more than `renew_days` left. The TLS server certificate for
    `tls_hosts`, when asked for, is kept on the same terms (and only when it is for exactly those hosts)."""
    identity = Identity.load_or_create(data_dir)
    try:
        cert = read_certificate(data_dir)
        swarm = read_swarm_key(data_dir)
        if cert is not None and swarm == authority.swarm:
            later = now_ms() + int(renew_days * _DAY_MS)
            verify(cert, authority.public_key, role, public_key=identity.public_key)
            verify(cert, authority.public_key, role, later, public_key=identity.public_key)
            store_revocations(data_dir, authority.revocations())
            _enrol_tls(authority, data_dir, cert, days, tls_hosts, renew_days)
            return cert
    except CertificateError as exc:
        log.info("re-enrolling %s: %s", data_dir, exc)
    return enrol(authority, data_dir, role, days, tls_hosts)


def _enrol_tls(
    authority: Authority,
    data_dir: Path,
    cert: Certificate,
    days: float,
    tls_hosts: Sequence[str],
    renew_days: float | None,
) -> None:
    """The swarm's TLS CA certificate into `data_dir`, and a server certificate for `tls_hosts` when given
    (kept when `renew_days` is set and the one there holds that much longer, for exactly those hosts)."""
    ca = authority.tls_ca()
    store_ca(data_dir, ca)
    if not tls_hosts:
        return
    if renew_days is not None:
        until = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=renew_days)
        if server_certificate_holds(ca, data_dir, tls_hosts, until) is not None:
            return
    issue_server_certificate(ca, data_dir, tls_hosts, days, f"{cert.role} {cert.node_id}")
    log.info("issued a TLS certificate for %s to %s %s", ", ".join(tls_hosts), cert.role, cert.node_id[:8])


def store_revocations(data_dir: Path, revocations: RevocationList) -> bool:
    """Keep `revocations` in `data_dir` unless a newer (or the same) list is there; True when written.

    The caller has checked the list's signature. A damaged file is replaced.
    """
    try:
        current = read_revocations(data_dir)
    except CertificateError:
        current = None
    if current is not None and not newer(revocations, current):
        return False
    write_atomic(data_dir / REVOCATIONS_FILE, encode(revocations))
    return True
