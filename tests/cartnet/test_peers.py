"""Peers verified end to end (issue 13): the rule a cart applies to a listed peer's keys, its requests and declines.

A directory entry comes from a bridge, which is trusted for reachability only: the cart
believes the keys in it only when the cart's own signed presence and its certificate of
this swarm hold. Each way a bridge (or anyone on its link) could lie is one row.
"""

from __future__ import annotations

import enum
import json
from pathlib import Path

import pydantic
import pytest

from cartnet import compact, presence
from cartnet.authority import Authority
from cartnet.certificates import CertificateError
from cartnet.identity import Identity
from cartnet.messages import KNOWN_PREFIX, CertifiedPresence, HeldPeer, PeerInfo
from cartnet.peers import (
    REQUEST_WINDOW_MS,
    PeerRefused,
    PeerVerifier,
    RequestLedger,
    VerifiedPeer,
    decline_signed_by,
    request_problem,
    request_signed_by,
    sign_decline,
    sign_request,
)
from cartnet.presence import now_ms

DAY_MS = 24 * 3600 * 1000


@pytest.fixture(scope="module")
def swarm(tmp_path_factory: pytest.TempPathFactory) -> Authority:
    return Authority.create(tmp_path_factory.mktemp("peers") / "authority")


@pytest.fixture(scope="module")
def stranger(tmp_path_factory: pytest.TempPathFactory) -> Authority:
    """Another operator's authority: its certificates are genuine, for another swarm."""
    return Authority.create(tmp_path_factory.mktemp("stranger") / "authority")


def listed(identity: Identity, swarm: Authority, **presence_options: object) -> PeerInfo:
    record = presence.sign(identity, "b" * 40, 60, **presence_options).record  # type: ignore[arg-type]
    card = CertifiedPresence(record=record, certificate=swarm.issue(identity.public_key, "cart"))
    return PeerInfo.of(card, "http://127.0.0.1:8470")


class Lie(enum.Enum):
    RECORD_KEY_SWAPPED = "the X25519 key is swapped inside the signed presence too"
    ID_NOT_KEY_HASH = "a record for the cart's id, signed by another key"
    ANOTHER_CARTS_CERTIFICATE = "the certificate of another cart"
    FOREIGN_SWARM = "a certificate from another swarm's authority"
    EXPIRED_CERTIFICATE = "a certificate that expired"
    BRIDGE_CERTIFICATE = "a bridge's certificate for the cart's key"
    REVOKED = "a cart on the swarm's revocation list"
    EXPIRED_PRESENCE = "a presence record that expired"
    WITHDRAWAL = "the cart's signed withdrawal passed off as its presence"
    CERTIFICATE_LEFT_OUT = "the certificate left out for a cart whose certificate we never held"
    LEFT_OUT_BESIDE_ANOTHER_KEY = "the certificate left out (we hold it) beside a record of another key for the cart"


EXPECTED = {
    Lie.RECORD_KEY_SWAPPED: ("bad_presence_signature", "signature does not hold"),
    Lie.ID_NOT_KEY_HASH: ("id_not_key_hash", "not the SHA-1 of the key"),
    Lie.ANOTHER_CARTS_CERTIFICATE: ("id_mismatch", "carries the certificate of"),
    Lie.FOREIGN_SWARM: ("certificate_wrong_swarm", "not this swarm"),
    Lie.EXPIRED_CERTIFICATE: ("certificate_expired", "certificate expired"),
    Lie.BRIDGE_CERTIFICATE: ("wrong_role", "certificate is for a bridge, not a cart"),
    Lie.REVOKED: ("revoked", "is revoked"),
    Lie.EXPIRED_PRESENCE: ("presence_expired", "expired"),
    Lie.WITHDRAWAL: ("presence_expired", "withdrawal"),
    Lie.CERTIFICATE_LEFT_OUT: ("certificate_missing", "came without its certificate"),
    Lie.LEFT_OUT_BESIDE_ANOTHER_KEY: ("id_not_key_hash", "not the SHA-1 of the key"),
}


def told(lie: Lie, cart: Identity, swarm: Authority, stranger: Authority) -> tuple[PeerInfo, PeerVerifier]:
    """What a lying bridge would hand out for `cart`, and the verifier of a cart of `swarm`."""
    honest = listed(cart, swarm)
    record = honest.record
    attacker = Identity.generate()
    verifier = PeerVerifier(swarm.swarm)
    forged = record.model_copy(update={"public_key": attacker.public_key, "kx_public_key": attacker.kx_public_key})
    forged = forged.model_copy(update={"signature": attacker.sign(presence.signed_bytes(forged))})
    if lie is Lie.RECORD_KEY_SWAPPED:
        swapped = record.model_copy(update={"kx_public_key": attacker.kx_public_key})
        return honest.model_copy(update={"record": swapped}), verifier
    if lie is Lie.ID_NOT_KEY_HASH:
        return honest.model_copy(update={"record": forged}), verifier
    if lie is Lie.CERTIFICATE_LEFT_OUT:
        return honest.without_certificate(), verifier
    if lie is Lie.LEFT_OUT_BESIDE_ANOTHER_KEY:
        verifier.verify(honest)
        return honest.model_copy(update={"record": forged, "certificate": None}), verifier
    if lie is Lie.ANOTHER_CARTS_CERTIFICATE:
        return honest.model_copy(update={"certificate": swarm.issue(attacker.public_key, "cart")}), verifier
    if lie is Lie.FOREIGN_SWARM:
        return honest.model_copy(update={"certificate": stranger.issue(cart.public_key, "cart")}), verifier
    if lie is Lie.EXPIRED_CERTIFICATE:
        old = swarm.issue(cart.public_key, "cart", days=1, now=now_ms() - 2 * DAY_MS)
        return honest.model_copy(update={"certificate": old}), verifier
    if lie is Lie.BRIDGE_CERTIFICATE:
        return honest.model_copy(update={"certificate": swarm.issue(cart.public_key, "bridge")}), verifier
    if lie is Lie.REVOKED:
        return honest, PeerVerifier(swarm.swarm, swarm.revoke([cart.node_id]))
    if lie is Lie.EXPIRED_PRESENCE:
        stale = presence.sign(cart, "b" * 40, 60, issued_ms=now_ms() - 120_000).record
        return honest.model_copy(update={"record": stale}), verifier
    signed = presence.sign(cart, "b" * 40, 60)
    return honest.model_copy(update={"record": presence.withdrawal(signed)}), verifier


@pytest.mark.parametrize("lie", list(Lie), ids=[lie.name.lower() for lie in Lie])
def test_a_lying_entry_is_refused_saying_why(lie: Lie, swarm: Authority, stranger: Authority) -> None:
    cart = Identity.generate()
    info, verifier = told(lie, cart, swarm, stranger)
    code, words = EXPECTED[lie]
    with pytest.raises(PeerRefused) as refused:
        verifier.verify(info)
    assert refused.value.code == code and words in str(refused.value), (refused.value.code, str(refused.value))


def test_an_honest_entry_verifies_once_and_a_lie_never_evicts_it(swarm: Authority) -> None:
    cart, verifier = Identity.generate(), PeerVerifier(swarm.swarm)
    honest = listed(cart, swarm)
    verified = verifier.verify(honest)
    assert (verified.node_id, verified.kx_public_key, verified.public_key) == (
        cart.node_id,
        cart.kx_public_key,
        cart.public_key,
    )
    fresher = honest.model_copy(update={"record": presence.sign(cart, "b" * 40, 60, ready=True).record})
    assert verifier.verify(fresher) == verified and verifier.verifications == 1, "a re-signed record costs nothing"
    swapped = honest.model_copy(
        update={"record": honest.record.model_copy(update={"kx_public_key": Identity.generate().kx_public_key})}
    )
    with pytest.raises(PeerRefused):
        verifier.verify(swapped)
    assert verifier.verify(honest) == verified and verifier.known(cart.node_id) == verified


def test_a_cart_drawn_by_id_alone_is_made_whole_from_the_entry_verified_and_only_while_it_is_held(
    swarm: Authority,
) -> None:
    cart, verifier = Identity.generate(), PeerVerifier(swarm.swarm)
    honest = listed(cart, swarm)
    drawn = HeldPeer(node_id=cart.node_id, bridge_id="b" * 40, bridge_url="http://127.0.0.1:8471", at=0)
    assert verifier.entry(drawn) is None, "never verified: nothing to stand for it"
    verified = verifier.verify(honest)
    whole = verifier.entry(drawn)
    assert whole == honest.model_copy(update={"bridge_url": drawn.bridge_url}), "the record and certificate checked"
    assert verifier.verify(whole) == verified and verifier.verifications == 1, "believed as first believed, free"
    assert len(compact.encode(drawn)) < 0.4 * len(compact.encode(honest.without_certificate())), "ids, not keys"
    assert verifier.accept_revocations(swarm.revoke([cart.node_id]))
    assert verifier.entry(drawn) is None, "revoked since: no longer held"


def test_a_cart_that_moved_bridges_is_checked_afresh_and_its_entry_names_the_new_bridge(swarm: Authority) -> None:
    cart, verifier = Identity.generate(), PeerVerifier(swarm.swarm)
    honest = listed(cart, swarm)
    verifier.verify(honest)
    moved = honest.model_copy(update={"record": presence.sign(cart, "c" * 40, 60).record})
    assert verifier.verify(moved).record == moved.record and verifier.verifications == 2
    drawn = HeldPeer(node_id=cart.node_id, bridge_id="c" * 40, bridge_url="http://127.0.0.1:8471", at=0)
    whole = verifier.entry(drawn)
    assert whole is not None and whole.bridge_id == "c" * 40
    expired = honest.model_copy(
        update={"record": presence.sign(cart, "b" * 40, 60, issued_ms=now_ms() - 120_000).record}
    )
    with pytest.raises(PeerRefused, match="expired"):
        verifier.verify(expired)  # a bridge replaying where the cart was is checked, not believed


def test_a_held_certificate_is_named_and_an_entry_without_it_verifies_free(swarm: Authority) -> None:
    cart, verifier = Identity.generate(), PeerVerifier(swarm.swarm)
    honest = listed(cart, swarm)
    assert verifier.holders() == []
    verified = verifier.verify(honest)
    assert verifier.holders() == [cart.node_id[:KNOWN_PREFIX]]
    slim = honest.without_certificate()
    assert len(compact.encode(slim)) < 0.7 * len(compact.encode(honest)), "the certificate was most of the entry"
    assert verifier.verify(slim) == verified and verifier.verifications == 1
    assert verifier.with_certificate(slim) == honest, "what we pass on (a masked cohort's members) is whole again"


def test_an_entry_naming_keys_beside_its_signed_record_does_not_parse(swarm: Authority) -> None:
    """Ids and keys are read from the signed record only: a second copy for a bridge to swap is no field at all."""
    honest = json.loads(listed(Identity.generate(), swarm).model_dump_json())
    with pytest.raises(pydantic.ValidationError, match="kx_public_key"):
        PeerInfo.model_validate({**honest, "kx_public_key": honest["record"]["kx_public_key"]})


def test_a_newer_revocation_list_drops_a_verified_peer_and_is_kept(swarm: Authority, tmp_path: Path) -> None:
    cart = Identity.generate()
    verifier = PeerVerifier.load(tmp_path, swarm.swarm)
    info = listed(cart, swarm)
    verifier.verify(info)
    revoked = swarm.revoke([cart.node_id])
    assert verifier.accept_revocations(revoked)
    assert verifier.known(cart.node_id) is None
    with pytest.raises(PeerRefused, match="revoked"):
        verifier.verify(info)
    assert not verifier.accept_revocations(revoked), "the same serial again changes nothing"
    again = PeerVerifier.load(tmp_path, swarm.swarm)
    assert again.revocations is None, "accept_revocations alone keeps nothing on disk"


async def test_a_passed_on_revocation_list_is_adopted_only_from_the_authority(
    swarm: Authority, stranger: Authority, tmp_path: Path
) -> None:
    verifier = PeerVerifier.load(tmp_path, swarm.swarm)
    assert not await verifier.offer_revocations(stranger.revoke([Identity.generate().node_id]), "a liar")
    newest = swarm.revoke([Identity.generate().node_id])
    assert await verifier.offer_revocations(newest, "our bridge")
    assert PeerVerifier.load(tmp_path, swarm.swarm).revocations == newest, "kept in the data dir for a restart"
    with pytest.raises(CertificateError, match="signature"):
        verifier.accept_revocations(newest.model_copy(update={"serial": newest.serial + 1}))


def verified(identity: Identity, swarm: Authority) -> VerifiedPeer:
    return PeerVerifier(swarm.swarm).verify(listed(identity, swarm))


def test_a_signed_request_holds_only_for_its_requester_target_and_window(swarm: Authority) -> None:
    asker, target, other = Identity.generate(), Identity.generate(), Identity.generate()
    request = sign_request(asker, target.node_id, "recommend", 3)
    assert request_problem(request, asker.node_id, target.node_id) is None
    assert request_signed_by(request, verified(asker, swarm))
    assert not request_signed_by(request, verified(other, swarm)), "another cart's key"
    assert not request_signed_by(request.model_copy(update={"round": 4}), verified(asker, swarm)), "a field changed"
    assert request_problem(request, other.node_id, target.node_id)[0] == "forged"  # type: ignore[index]
    assert request_problem(request, asker.node_id, other.node_id)[0] == "misdirected"  # type: ignore[index]
    late = now_ms() + REQUEST_WINDOW_MS + 1000
    assert request_problem(request, asker.node_id, target.node_id, late)[0] == "stale"  # type: ignore[index]
    early = sign_request(asker, target.node_id, "recommend", 3, issued_ms=now_ms() + 2 * REQUEST_WINDOW_MS)
    assert request_problem(early, asker.node_id, target.node_id)[0] == "stale"  # type: ignore[index]

    decline = sign_decline(target, request.request_id, "no trained update yet")
    assert decline_signed_by(decline, verified(target, swarm))
    assert not decline_signed_by(decline.model_copy(update={"reason": "made up"}), verified(target, swarm))
    assert not decline_signed_by(decline, verified(other, swarm))


def test_a_request_id_is_spent_once_and_an_overflowing_ledger_refuses_older_ones() -> None:
    asker, target = Identity.generate(), Identity.generate()
    ledger = RequestLedger(size=2)
    first = sign_request(asker, target.node_id, "recommend", 1, issued_ms=now_ms() - 3000)
    assert ledger.spend(first) and ledger.spent(first) and not ledger.spend(first)
    second = sign_request(asker, target.node_id, "recommend", 1, issued_ms=now_ms() - 2000)
    third = sign_request(asker, target.node_id, "recommend", 1, issued_ms=now_ms() - 1000)
    assert ledger.spend(second) and ledger.spend(third)
    assert ledger.spent(first), "evicted before its window ended, so it is refused by its issue time"
    assert not ledger.spent(sign_request(asker, target.node_id, "recommend", 1))
