"""A bridge's membership: its own enrolment, revocation lists (only the authority's, only newer) and revoked bridges."""

from __future__ import annotations

import asyncio

import pytest
from bridgekit import authority, bridge_settings, certificate, enrol, until, within

from cartnet import presence
from cartnet.authority import Authority, store_revocations
from cartnet.certificates import CertificateError
from cartnet.identity import Identity
from cartnet.messages import CertifiedPresence
from parent_cart.bridge import Bridge
from parent_cart.membership import Membership


def test_revocation_lists_are_adopted_only_from_the_authority_and_only_when_newer(tmp_path):
    data_dir = enrol(tmp_path / "bridge")
    membership = Membership(data_dir, Identity.load_or_create(data_dir))
    adopted = []
    membership.on_revocations(adopted.append)
    start = membership.serial
    newer = authority().revoke([Identity.generate().node_id])
    assert membership.offer(newer, "a test") and membership.serial == newer.serial > start
    assert not membership.offer(newer, "the same list again"), "an equal serial changes nothing"
    with pytest.raises(CertificateError, match="revocation list is for swarm"):
        membership.offer(Authority.create(tmp_path / "other").revoke([Identity.generate().node_id]), "a stranger")
    forged = newer.model_copy(update={"serial": newer.serial + 5, "revoked": []})
    with pytest.raises(CertificateError, match="bad revocation list signature"):
        membership.offer(forged, "a forger")
    assert adopted == [newer] and membership.revoked(newer.revoked[0])

    again = Membership(data_dir, Identity.load_or_create(data_dir))
    assert again.revocations == newer, "an adopted list is kept in the data dir"
    newest = authority().revoke([Identity.generate().node_id])
    store_revocations(data_dir, newest)
    assert membership.reload() and membership.revocations == newest, "a list dropped into the data dir is read"
    assert not membership.reload(), "an unchanged file is not read again"


def test_a_roster_entry_counts_only_with_a_current_cart_certificate_of_this_swarm(tmp_path):
    """Rosters from linked bridges reach the directory (and so carts) only with such a certificate (Links)."""
    data_dir = enrol(tmp_path / "bridge")
    membership = Membership(data_dir, Identity.load_or_create(data_dir))
    cart, other = Identity.generate(), Identity.generate()
    record = presence.sign(cart, membership.identity.node_id, 60).record

    def card(cert) -> CertifiedPresence:
        return CertifiedPresence(record=record, certificate=cert)

    assert membership.certifies(card(certificate(cart))) is None
    stranger = Authority.create(tmp_path / "stranger")
    assert "not this swarm" in (membership.certifies(card(stranger.issue(cart.public_key, "cart"))) or "")
    assert "not for this key" in (membership.certifies(card(certificate(other))) or "")
    assert "not a cart" in (membership.certifies(card(certificate(cart, "bridge"))) or "")
    membership.offer(authority().revoke([cart.node_id]), "the operator")
    assert "is revoked" in (membership.certifies(card(certificate(cart))) or "")


async def test_a_revoked_bridge_is_unlinked_and_refused(swarm, linked):
    b1, b2 = linked
    refused = asyncio.Event()
    refuse = b1.gate._refuse

    async def noting(ws, why, code, remote):
        await refuse(ws, why, code, remote)
        if "is revoked" in why.reason:
            refused.set()

    b1.gate._refuse = noting
    revocations = authority().revoke([b2.node_id])
    store_revocations(b1.settings.data_dir, revocations)
    await until(lambda: not b1.links.ids(), "bridge 1 never closed its link to the revoked bridge 2", b1, b2)
    assert b2.membership.serial == revocations.serial, "the list reached bridge 2 before the link closed"
    await within(refused.wait(), "bridge 2 being refused when it dials bridge 1 again")
    assert b1.metrics.registry.get_sample_value("fedcart_bridge_rejects_total", {"reason": "revoked"}) >= 1


def test_an_unenrolled_or_foreign_bridge_refuses_to_start(tmp_path):
    with pytest.raises(CertificateError, match="not enrolled in a swarm") as caught:
        Bridge(bridge_settings(tmp_path / "nobody"))
    assert f"fedcart enrol --authority AUTHORITY_DIR --data-dir {tmp_path / 'nobody'} --role bridge" in str(
        caught.value
    )
    cart_dir = enrol(tmp_path / "a-cart", "cart")
    with pytest.raises(CertificateError, match="certificate is for a cart, not a bridge"):
        Bridge(bridge_settings(cart_dir))
