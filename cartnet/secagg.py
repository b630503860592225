"""Masked secure aggregation among a cohort of peers: the asking cart learns only the sum.

Pure arithmetic and key derivation, no I/O (`child_cart/rounds/secure.py` carries it in a round). The
shape is SecAgg's double masking (Bonawitz et al., CCS 2017): pairwise seeds revealed for
dropped peers by the survivors, and Shamir shares (as in SecAgg+) of every member's seeds so that a
member that submitted and then drops before revealing does not cost the sum:

* The requester names a `Cohort`: itself, the round, the task, and every member's node id and
  X25519 key (taken from verified peers, so a bridge cannot slip in a key of its own).
* Each member quantizes its vector to fixed point (`Quantizer`: clip to [-clip, clip], round to
  1/scale, wrap mod 2^32; a sum of up to `peers` such vectors never overflows), then adds

  - one pairwise mask per other member j, expanded (ChaCha20) from a seed HKDF-derived from the
    X25519 agreement with j and the cohort's digest: added by the lower node id, subtracted by
    the higher, so each pair cancels in the sum;
  - a self mask from a fresh random seed, so that a member falsely called "dropped" stays
    hidden even when every pairwise seed with it is revealed.

  Each of its seeds (the self seed and every pairwise one) is also split into Shamir shares, one
  per other member, `threshold(n)` of which rebuild it (a majority of the n - 1 holders); the
  shares for one holder are sealed together for that holder alone (ChaCha20-Poly1305 under a key
  from their X25519 agreement), so the requester, which carries them, cannot read them.
  The `MaskedUpdate` carries a SHA-256 commitment to every seed and to every share it dealt; the
  member signs them all (`signed_bytes`). Each masked vector alone is uniform on uint32 to anyone
  without the seeds.
* The requester sums what arrived and names the survivors (those that submitted) once, to every
  member that masked, with the sealed shares addressed to it. Each answers one `Reveal` (signed):
  a survivor its own self seed and its pairwise seeds with the members that did not submit, never
  those with a survivor; every member its shares of each survivor's self seed and of each
  survivor's seeds with non-survivors (never a share of a seed it is party to itself). A `Masker`
  answers one survivor set only, so asking twice with different sets gets nothing more. The
  `Unmasker` checks every revealed seed and share against the commitment its owner signed
  (`SeedMismatch` or `Unmasker.liars` names the liar), rebuilds the seeds of a survivor that did
  not reveal, or revealed wrong seeds, from `threshold(n)` shares, removes the masks and decodes.

What it does not stop (docs/SECURITY.md): a requester that tells different members different
survivor sets (SecAgg's consistency round is not built) can expose one member; fewer than
`threshold(n)` members answering the unmask request when a survivor has not revealed loses the sum.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

U32 = npt.NDArray[np.uint32]
F64 = npt.NDArray[np.float64]

MODULUS = 2**32
MIN_COHORT = 3
"""Members a cohort needs: with two, a member that knows the sum and its own update knows the other's."""
MIN_SURVIVORS = 2
"""Submitted updates needed to unmask: the sum of one update is that update."""
SEED = 32

_CONTEXT_LABEL = b"fedcart-secagg-cohort-v1|"
_PAIR_LABEL = b"fedcart-secagg-pair-v1|"
_COMMIT_LABEL = b"fedcart-secagg-commit-v1|"
_UPDATE_LABEL = b"fedcart-secagg-update-v1|"
_REVEAL_LABEL = b"fedcart-secagg-reveal-v1|"
_SHARE_KEY_LABEL = b"fedcart-secagg-share-key-v1|"
_SHARE_COMMIT_LABEL = b"fedcart-secagg-share-v1|"
PRIME = 2**521 - 1
"""Shamir's field: a Mersenne prime above 2^256, so a 32-byte seed is one field element."""
SHARE = 66
"""Bytes of one share (an element of the field, big-endian)."""
_NONCE = bytes(16)
"""ChaCha20's counter and nonce: zero is safe because every seed keys one expansion only."""


class SecAggError(ValueError):
    """A masked update, a reveal or a request that does not fit the cohort; the message says why."""


class SeedMismatch(SecAggError):
    """A revealed seed does not match the commitment its revealer signed: `peer` lied (or its data broke)."""

    def __init__(self, peer: str, message: str) -> None:
        super().__init__(message)
        self.peer = peer


@dataclass(frozen=True)
class Quantizer:
    """Fixed point for sums mod 2^32: clip each coordinate to [-clip, clip], round to a multiple of 1/scale.

    Rounding moves a coordinate by at most 1/(2 scale), so a sum of n updates is off by at most
    n/(2 scale) per coordinate (plus what clipping removed, which `encode` counts). Construction
    refuses a clip and scale for which `peers` updates could overflow the signed 32-bit range.
    """

    clip: float
    scale: float
    peers: int

    def __post_init__(self) -> None:
        if not (self.clip > 0 and self.scale > 0 and self.peers >= 1):
            raise SecAggError(f"quantizer needs clip > 0, scale > 0, peers >= 1 (got {self})")
        if self.peers * self.largest >= MODULUS // 2:
            raise SecAggError(
                f"a sum of {self.peers} updates clipped to ±{self.clip:g} at scale {self.scale:g} can reach "
                f"{self.peers * self.largest}, beyond 2^31: lower the clip or the scale"
            )

    @property
    def largest(self) -> int:
        """The largest fixed-point magnitude one coordinate can take."""
        return int(np.rint(self.clip * self.scale))

    def error_bound(self, updates: int) -> float:
        """The most a decoded sum of `updates` unclipped updates can differ from the exact sum, per coordinate."""
        return updates / (2 * self.scale)

    def encode(self, values: npt.ArrayLike) -> tuple[U32, int]:
        """(fixed-point vector mod 2^32, how many coordinates clipping changed); refuses NaN and infinities."""
        flat = np.asarray(values, dtype=np.float64).ravel()
        if not np.all(np.isfinite(flat)):
            raise SecAggError("cannot quantize NaN or infinite values")
        clipped = int(np.count_nonzero(np.abs(flat) > self.clip))
        fixed = np.rint(np.clip(flat, -self.clip, self.clip) * self.scale).astype(np.int64)
        return (fixed % MODULUS).astype(np.uint32), clipped

    def decode_sum(self, total: U32) -> F64:
        """The real-valued sum a wrapped sum of at most `peers` encoded vectors stands for."""
        return np.asarray(total, dtype=np.uint32).view(np.int32).astype(np.float64) / self.scale


@dataclass(frozen=True)
class Cohort:
    """Who takes part in one masked sum, named by the requester: every member's X25519 key, by node id."""

    requester: str
    request_id: str
    task: str
    round: int
    kx_keys: Mapping[str, bytes]

    def __post_init__(self) -> None:
        if len(self.kx_keys) < MIN_COHORT:
            raise SecAggError(f"a cohort needs at least {MIN_COHORT} members, got {len(self.kx_keys)}")
        if self.requester in self.kx_keys:
            raise SecAggError("the requester cannot be a member of its own cohort")
        if any(len(key) != 32 for key in self.kx_keys.values()):
            raise SecAggError("every member's X25519 key must be 32 bytes")

    @property
    def members(self) -> tuple[str, ...]:
        return tuple(sorted(self.kx_keys))

    def digest(self) -> bytes:
        """What binds every seed and signature to this cohort: requester, request, task, round, members and keys."""
        h = hashlib.sha256(_CONTEXT_LABEL)
        for part in (self.requester, self.request_id, self.task, str(self.round)):
            h.update(part.encode() + b"|")
        for member in self.members:
            h.update(member.encode() + b"=" + self.kx_keys[member] + b"|")
        return h.digest()


def pairwise_seed(own_key: X25519PrivateKey, own_id: str, peer_id: str, peer_kx: bytes, context: bytes) -> bytes:
    """The seed two members share for one cohort: both compute it, from either side of the X25519 agreement.

    It is derived for this cohort's digest only, so revealing it gives away nothing of other rounds
    (nor the long-term agreement).
    """
    low, high = sorted((own_id, peer_id))
    return _derive(own_key, peer_id, peer_kx, context, _PAIR_LABEL + low.encode() + b"|" + high.encode())


def share_key(own_key: X25519PrivateKey, peer_kx: bytes, context: bytes, dealer: str, holder: str) -> bytes:
    """The key that seals a dealer's shares for one holder in one cohort: only those two can compute it."""
    return _derive(own_key, holder, peer_kx, context, _SHARE_KEY_LABEL + dealer.encode() + b">" + holder.encode())


def _derive(own_key: X25519PrivateKey, peer_id: str, peer_kx: bytes, context: bytes, info: bytes) -> bytes:
    try:
        shared = own_key.exchange(X25519PublicKey.from_public_bytes(peer_kx))
    except ValueError as exc:
        raise SecAggError(f"no key agreement with {peer_id}: {exc}") from None
    return HKDF(algorithm=hashes.SHA256(), length=SEED, salt=context, info=info).derive(shared)


def threshold(members: int) -> int:
    """Shares that rebuild a member's seed: a majority of its n - 1 holders, so that no two disjoint groups of
    holders (told different survivor sets) can both rebuild."""
    return (members - 1) // 2 + 1


def split(secret: bytes, points: Sequence[int], needed: int) -> list[bytes]:
    """Shamir: a random polynomial of degree `needed` - 1 with f(0) = `secret`, evaluated at each of `points`.

    A few lines over a prime field rather than a dependency: pycryptodome's Shamir takes 16-byte secrets.
    """
    if not 1 <= needed <= len(points) or 0 in points:
        raise SecAggError(f"cannot split into {len(points)} shares with {needed} needed")
    coefficients = [int.from_bytes(secret, "big"), *(secrets.randbelow(PRIME) for _ in range(needed - 1))]
    values = []
    for x in points:
        y = 0
        for c in reversed(coefficients):
            y = (y * x + c) % PRIME
        values.append(y.to_bytes(SHARE, "big"))
    return values


def combine(shares: Mapping[int, bytes]) -> bytes:
    """The seed f(0) of the polynomial through `shares` ({point: value}, Lagrange); SecAggError if it is not one."""
    secret = 0
    for xi, yi in shares.items():
        numerator, denominator = 1, 1
        for xj in shares:
            if xj != xi:
                numerator = numerator * -xj % PRIME
                denominator = denominator * (xi - xj) % PRIME
        secret = (secret + int.from_bytes(yi, "big") * numerator * pow(denominator, -1, PRIME)) % PRIME
    if secret >= 2 ** (8 * SEED):
        raise SecAggError("the shares do not combine into a seed")
    return secret.to_bytes(SEED, "big")


def share_commitment(context: bytes, dealer: str, holder: str, of: str, value: bytes) -> bytes:
    """The hash a dealer signs for `holder`'s share of its seed with `of` (its own id: its self seed)."""
    parts = (context, dealer.encode(), holder.encode(), of.encode(), value)
    return hashlib.sha256(_SHARE_COMMIT_LABEL + b"|".join(parts)).digest()


def expand(seed: bytes, length: int) -> U32:
    """`length` uint32 values from a seed's ChaCha20 keystream (uniform to anyone without the seed)."""
    if len(seed) != SEED:
        raise SecAggError(f"a seed is {SEED} bytes, got {len(seed)}")
    encryptor = Cipher(algorithms.ChaCha20(seed, _NONCE), mode=None).encryptor()
    stream = encryptor.update(bytes(4 * length))
    return np.frombuffer(stream, dtype="<u4").astype(np.uint32)


def commitment(seed: bytes) -> bytes:
    """The hash a member signs for each seed it used, checked when the seed is revealed."""
    return hashlib.sha256(_COMMIT_LABEL + seed).digest()


def _sign(own_id: str, peer_id: str) -> int:
    """+1 when the lower node id adds the pair's mask, -1 for the higher one: the pair cancels."""
    return 1 if own_id < peer_id else -1


@dataclass(frozen=True)
class MaskedUpdate:
    """One member's quantized, masked vector, its seed commitments (by peer id; its own id for the self seed),
    its sealed shares (by holder) and its share commitments (by (holder, whose seed))."""

    sender: str
    context: bytes
    values: U32
    commitments: Mapping[str, bytes]
    clipped: int
    sealed_shares: Mapping[str, bytes] = field(default_factory=dict)
    share_commitments: Mapping[tuple[str, str], bytes] = field(default_factory=dict)

    def signed_bytes(self) -> bytes:
        """What the sender signs: the cohort, itself, the vector's digest and every commitment."""
        parts = [_UPDATE_LABEL, self.context, self.sender.encode(), str(self.values.size).encode()]
        parts.append(hashlib.sha256(np.ascontiguousarray(self.values, dtype="<u4").tobytes()).digest())
        parts += [peer.encode() + b"=" + self.commitments[peer] for peer in sorted(self.commitments)]
        parts += [
            f"{h}>{of}".encode() + b"=" + self.share_commitments[h, of] for h, of in sorted(self.share_commitments)
        ]
        return b"|".join(parts)


@dataclass(frozen=True)
class Reveal:
    """A member's answer to the unmask request: a survivor's self seed and pairwise seeds with the dropped only
    (empty from a member named dropped), and its shares of survivors' seeds, by (dealer, whose seed)."""

    sender: str
    context: bytes
    survivors: frozenset[str]
    self_seed: bytes
    pairwise: Mapping[str, bytes] = field(default_factory=dict)
    shares: Mapping[tuple[str, str], bytes] = field(default_factory=dict)

    def signed_bytes(self) -> bytes:
        parts = [_REVEAL_LABEL, self.context, self.sender.encode(), ",".join(sorted(self.survivors)).encode()]
        parts.append(self.self_seed)
        parts += [peer.encode() + b"=" + self.pairwise[peer] for peer in sorted(self.pairwise)]
        parts += [f"{d}>{of}".encode() + b"=" + self.shares[d, of] for d, of in sorted(self.shares)]
        return b"|".join(parts)


class Masker:
    """One member's side: mask its vector once (dealing shares of its seeds), then answer one unmask request."""

    def __init__(self, cohort: Cohort, own_id: str, kx_key: X25519PrivateKey, quantizer: Quantizer) -> None:
        if own_id not in cohort.kx_keys:
            raise SecAggError(f"{own_id} is not a member of this cohort")
        if cohort.kx_keys[own_id] != kx_key.public_key().public_bytes_raw():
            raise SecAggError("the cohort names another X25519 key for this member")
        if len(cohort.kx_keys) > quantizer.peers:
            raise SecAggError(f"the quantizer allows sums of {quantizer.peers}, the cohort has {len(cohort.kx_keys)}")
        self.cohort = cohort
        self.own_id = own_id
        self.quantizer = quantizer
        self.context = cohort.digest()
        self._kx_key = kx_key
        self._seeds = {
            peer: pairwise_seed(kx_key, own_id, peer, key, self.context)
            for peer, key in cohort.kx_keys.items()
            if peer != own_id
        }
        self._self_seed = secrets.token_bytes(SEED)
        self._masked = False
        self._revealed: Reveal | None = None

    def mask(self, values: npt.ArrayLike) -> MaskedUpdate:
        """The masked update, once: two vectors under the same masks would give away their difference."""
        if self._masked:
            raise SecAggError("this member already masked an update for this cohort: masks are never reused")
        self._masked = True
        fixed, clipped = self.quantizer.encode(values)
        total = fixed.copy()
        total += expand(self._self_seed, fixed.size)
        for peer, seed in self._seeds.items():
            mask = expand(seed, fixed.size)
            if _sign(self.own_id, peer) > 0:
                total += mask
            else:
                total -= mask
        commitments = {peer: commitment(seed) for peer, seed in self._seeds.items()}
        commitments[self.own_id] = commitment(self._self_seed)
        sealed, share_commitments = self._deal()
        return MaskedUpdate(self.own_id, self.context, total, commitments, clipped, sealed, share_commitments)

    def _deal(self) -> tuple[dict[str, bytes], dict[tuple[str, str], bytes]]:
        """Shamir shares of every seed of ours, one per other member, sealed per holder; and their commitments."""
        members = self.cohort.members
        seeds = {self.own_id: self._self_seed, **self._seeds}
        holders = [m for m in members if m != self.own_id]
        dealt = {of: split(seeds[of], [_point(members, h) for h in holders], threshold(len(members))) for of in members}
        sealed, committed = {}, {}
        for i, holder in enumerate(holders):
            key = share_key(self._kx_key, self.cohort.kx_keys[holder], self.context, self.own_id, holder)
            bundle = b"".join(dealt[of][i] for of in members)
            sealed[holder] = ChaCha20Poly1305(key).encrypt(_AEAD_NONCE, bundle, _aad(self.context, self.own_id, holder))
            for of in members:
                committed[holder, of] = share_commitment(self.context, self.own_id, holder, of, dealt[of][i])
        return sealed, committed

    def reveal(self, survivors: Collection[str], sealed: Mapping[str, bytes] | None = None) -> Reveal:
        """The seeds and shares the requester needs for this survivor set; refused for a second, different set.

        `sealed` holds the shares other members dealt to us, by dealer, as the requester forwards them.
        """
        named = frozenset(survivors)
        if self._revealed is not None:
            if self._revealed.survivors != named:
                raise SecAggError("already answered for another survivor set: revealing more could expose a member")
            return self._revealed
        if not named <= set(self.cohort.kx_keys):
            raise SecAggError("the survivor set names nodes outside the cohort")
        if len(named) < MIN_SURVIVORS:
            raise SecAggError(f"fewer than {MIN_SURVIVORS} survivors: their sum would be one update")
        shares = self._shares(named, sealed or {})
        if self.own_id not in named:  # named as dropped: our self mask keeps our update hidden, our seeds stay ours
            self._revealed = Reveal(self.own_id, self.context, named, b"", {}, shares)
        else:
            dropped = {peer: seed for peer, seed in self._seeds.items() if peer not in named}
            self._revealed = Reveal(self.own_id, self.context, named, self._self_seed, dropped, shares)
        return self._revealed

    def _shares(self, named: frozenset[str], sealed: Mapping[str, bytes]) -> dict[tuple[str, str], bytes]:
        """Our shares of each survivor's self seed and of its seeds with non-survivors other than us."""
        members = self.cohort.members
        out = {}
        for dealer in sorted(named & set(sealed) - {self.own_id}):
            key = share_key(self._kx_key, self.cohort.kx_keys[dealer], self.context, dealer, self.own_id)
            try:
                bundle = ChaCha20Poly1305(key).decrypt(
                    _AEAD_NONCE, sealed[dealer], _aad(self.context, dealer, self.own_id)
                )
            except InvalidTag:
                continue  # not sealed by that dealer for us: nothing of it to reveal
            if len(bundle) != SHARE * len(members):
                continue
            values = {of: bundle[i * SHARE : (i + 1) * SHARE] for i, of in enumerate(members)}
            out[dealer, dealer] = values[dealer]
            out.update({(dealer, of): values[of] for of in members if of not in named and of != self.own_id})
        return out


class Unmasker:
    """The requester's side: collect masked updates, name the survivors, remove the revealed masks."""

    def __init__(self, cohort: Cohort, quantizer: Quantizer) -> None:
        self.cohort = cohort
        self.quantizer = quantizer
        self.context = cohort.digest()
        self.updates: dict[str, MaskedUpdate] = {}
        self.liars: list[str] = []
        """Survivors whose revealed seeds did not match their commitments in the last `unmask`."""

    def add(self, update: MaskedUpdate) -> None:
        """Keep one member's (already signature-checked) masked update; refuse one that does not fit."""
        members = set(self.cohort.kx_keys)
        if update.sender not in members:
            raise SecAggError(f"{update.sender} is not a member of this cohort")
        if update.context != self.context:
            raise SecAggError(f"{update.sender}'s update was masked for another cohort")
        if update.sender in self.updates:
            raise SecAggError(f"{update.sender} already sent its update")
        if update.values.dtype != np.uint32 or update.values.ndim != 1 or update.values.size == 0:
            raise SecAggError(f"{update.sender}'s update is not a non-empty vector of uint32")
        if any(len(value) != SEED for value in [*update.commitments.values(), *update.share_commitments.values()]):
            raise SecAggError(f"{update.sender}'s commitments are not {SEED} bytes each")
        if set(update.commitments) != members:
            raise SecAggError(f"{update.sender}'s update does not commit to one seed per cohort member")
        holders = members - {update.sender}
        if set(update.sealed_shares) != holders or set(update.share_commitments) != {
            (h, of) for h in holders for of in members
        }:
            raise SecAggError(f"{update.sender}'s update does not deal one share of each seed to each other member")
        if any(len(box) != sealed_size(len(members)) for box in update.sealed_shares.values()):
            raise SecAggError(f"{update.sender}'s sealed shares are not {sealed_size(len(members))} bytes each")
        sizes = {other.values.size for other in self.updates.values()}
        if sizes and update.values.size not in sizes:
            raise SecAggError(f"{update.sender}'s update has {update.values.size} values, the others {sizes.pop()}")
        self.updates[update.sender] = update

    @property
    def survivors(self) -> frozenset[str]:
        return frozenset(self.updates)

    def sealed_for(self, holder: str) -> dict[str, bytes]:
        """The shares each survivor dealt to `holder`, sealed for it: what the unmask request forwards to it."""
        return {dealer: update.sealed_shares[holder] for dealer, update in self.updates.items() if dealer != holder}

    def unmask(self, reveals: Mapping[str, Reveal]) -> tuple[F64, int]:
        """(the sum of the survivors' vectors, how many of their coordinates clipping changed).

        Needs, for each survivor, its own reveal or `threshold(n)` shares of its seeds in the others' reveals. A
        survivor that reveals a seed that does not match its commitment is named in `liars` and its seeds are
        rebuilt from shares instead; when they cannot be, or a share does not match its commitment, SeedMismatch
        names who revealed or dealt it.
        """
        survivors = self.survivors
        if len(survivors) < MIN_SURVIVORS:
            raise SecAggError(f"only {len(survivors)} updates arrived: at least {MIN_SURVIVORS} are needed")
        dropped = set(self.cohort.kx_keys) - survivors
        lies: dict[str, SeedMismatch] = {}
        for member, reveal in reveals.items():
            try:
                self._check_reveal(member, reveal, dropped)
            except SeedMismatch as exc:
                lies[member] = exc
        self.liars = sorted(lies)
        length = next(iter(self.updates.values())).values.size
        total = np.zeros(length, dtype=np.uint32)
        for member in sorted(survivors):
            try:
                self_seed, pairwise = self._seeds_of(member, reveals, dropped, trusted=member not in lies)
            except SecAggError:
                if member in lies:
                    raise lies[member] from None
                raise
            total += self.updates[member].values
            total -= expand(self_seed, length)
            for gone in sorted(dropped):
                mask = expand(pairwise[gone], length)
                if _sign(member, gone) > 0:
                    total -= mask
                else:
                    total += mask
        clipped = sum(self.updates[member].clipped for member in survivors)
        return self.quantizer.decode_sum(total), clipped

    def _check_reveal(self, member: str, reveal: Reveal, dropped: set[str]) -> None:
        if reveal.sender != member or reveal.context != self.context or reveal.survivors != self.survivors:
            raise SecAggError(f"{member}'s reveal is for another sender, cohort or survivor set")
        if member not in self.survivors:
            if reveal.self_seed or reveal.pairwise:
                raise SecAggError(f"{member} was named dropped: it reveals shares only")
            return
        if set(reveal.pairwise) != dropped:
            raise SecAggError(f"{member} must reveal its seeds with the dropped members exactly")
        update = self.updates[member]
        _check(member, "its self seed", reveal.self_seed, update.commitments[member])
        for gone, seed in reveal.pairwise.items():
            _check(member, f"its seed with {gone}", seed, update.commitments[gone])

    def _seeds_of(
        self, member: str, reveals: Mapping[str, Reveal], dropped: set[str], trusted: bool
    ) -> tuple[bytes, Mapping[str, bytes]]:
        """A survivor's self seed and its seeds with the dropped: as it revealed them (if they matched its
        commitments: `trusted`), or rebuilt from shares."""
        if member in reveals and trusted:
            return reveals[member].self_seed, reveals[member].pairwise
        return self._rebuild(member, member, reveals), {gone: self._rebuild(member, gone, reveals) for gone in dropped}

    def _rebuild(self, dealer: str, of: str, reveals: Mapping[str, Reveal]) -> bytes:
        """`dealer`'s seed with `of` (its own id: its self seed) from the shares in `reveals`, each checked."""
        update, members = self.updates[dealer], self.cohort.members
        points = {}
        for holder in sorted(reveals):
            value = reveals[holder].shares.get((dealer, of))
            if value is None:
                continue
            committed = update.share_commitments.get((holder, of), b"")
            if not secrets.compare_digest(share_commitment(self.context, dealer, holder, of, value), committed):
                raise SeedMismatch(
                    holder, f"{holder} revealed a share of {dealer}'s seeds that {dealer} never dealt it"
                )
            points[_point(members, holder)] = value
        needed = threshold(len(members))
        if len(points) < needed:
            raise SecAggError(
                f"{dealer} did not reveal and only {len(points)} of the {needed} shares that rebuild its seeds "
                "arrived: the sum stays masked"
            )
        seed = combine(dict(list(points.items())[:needed]))
        what = "its self seed" if of == dealer else f"its seed with {of}"
        if not secrets.compare_digest(commitment(seed), update.commitments[of]):
            raise SeedMismatch(dealer, f"{dealer} dealt shares that do not rebuild {what}, which it committed to")
        return seed


_AEAD_NONCE = bytes(12)
"""ChaCha20-Poly1305's nonce: zero is safe because every share key seals one bundle only."""
_AEAD_TAG = 16


def sealed_size(members: int) -> int:
    """Bytes of one holder's sealed bundle of shares in a cohort of `members`: a share of each member's seed."""
    return SHARE * members + _AEAD_TAG


def _aad(context: bytes, dealer: str, holder: str) -> bytes:
    return context + b"|" + dealer.encode() + b">" + holder.encode()


def _point(members: Sequence[str], holder: str) -> int:
    """The Shamir point of a holder: its place in the cohort, from 1."""
    return members.index(holder) + 1


def _check(peer: str, what: str, seed: bytes, committed: bytes) -> None:
    if len(seed) != SEED or not secrets.compare_digest(commitment(seed), committed):
        raise SeedMismatch(peer, f"{peer} revealed {what} that does not match the commitment it signed")
