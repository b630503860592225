"""Masked secure aggregation (cartnet.secagg): masks cancel, the sum is right within the bound, one update alone is noise."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from cartnet import compact, messages, secagg
from cartnet.identity import Identity, verify_signature
from cartnet.secagg import (
    MODULUS,
    Cohort,
    MaskedUpdate,
    Masker,
    Quantizer,
    Reveal,
    SecAggError,
    SeedMismatch,
    Unmasker,
    expand,
    pairwise_seed,
    threshold,
)

SIZE = 20_000
QUANT = Quantizer(clip=4.0, scale=2**16, peers=8)


def make_cohort(members: int, request_id: str = "req-1") -> tuple[Cohort, dict[str, Identity]]:
    ids = {identity.node_id: identity for identity in (Identity.generate() for _ in range(members))}
    requester = Identity.generate()
    cohort = Cohort(requester.node_id, request_id, "baskets", 7, {n: i.kx_public_key for n, i in ids.items()})
    return cohort, ids


def run(members: int, drop: int = 0, seed: int = 0) -> tuple[np.ndarray, np.ndarray, Unmasker, dict[str, Masker]]:
    """Mask `members` random vectors, lose `drop` of them before they arrive; the requester's sum and the plain one."""
    rng = np.random.default_rng(seed)
    cohort, ids = make_cohort(members)
    maskers = {n: Masker(cohort, n, ids[n].kx_key, QUANT) for n in cohort.members}
    vectors = {n: rng.normal(0, 1, SIZE).clip(-4, 4) for n in cohort.members}
    unmasker = Unmasker(cohort, QUANT)
    arrived = cohort.members[drop:]
    for member in arrived:
        unmasker.add(maskers[member].mask(vectors[member]))
    reveals = {m: maskers[m].reveal(unmasker.survivors) for m in arrived}
    total, clipped = unmasker.unmask(reveals)
    assert clipped == 0
    plain = np.sum([vectors[m] for m in arrived], axis=0)
    return total, plain, unmasker, maskers


def test_pairwise_seeds_agree_from_both_sides_and_differ_by_cohort() -> None:
    a, b = Identity.generate(), Identity.generate()
    ab = pairwise_seed(a.kx_key, a.node_id, b.node_id, b.kx_public_key, b"ctx")
    assert ab == pairwise_seed(b.kx_key, b.node_id, a.node_id, a.kx_public_key, b"ctx")
    assert ab != pairwise_seed(a.kx_key, a.node_id, b.node_id, b.kx_public_key, b"other round")


@pytest.mark.parametrize("members", [3, 5, 8])
def test_masks_cancel_and_the_sum_is_the_plain_sum_within_the_quantization_bound(members: int) -> None:
    total, plain, _, _ = run(members)
    error = np.max(np.abs(total - plain))
    assert error <= QUANT.error_bound(members)
    assert error > 0  # measured, not assumed: rounding happened
    print(f"{members} members: max error {error:.2e} <= bound {QUANT.error_bound(members):.2e}")


def test_masks_alone_sum_to_zero() -> None:
    cohort, ids = make_cohort(4)
    maskers = [Masker(cohort, n, ids[n].kx_key, QUANT) for n in cohort.members]
    unmasker = Unmasker(cohort, QUANT)
    for masker in maskers:
        unmasker.add(masker.mask(np.zeros(1000)))
    total, _ = unmasker.unmask({m.own_id: m.reveal(unmasker.survivors) for m in maskers})
    assert np.array_equal(total, np.zeros(1000))


def chi_square(values: np.ndarray, bins: int = 256) -> float:
    counts = np.bincount((values >> np.uint32(24)).astype(np.int64), minlength=bins)
    low = np.bincount((values & np.uint32(0xFF)).astype(np.int64), minlength=bins)
    expected = values.size / bins
    return float(max(((counts - expected) ** 2).sum() / expected, ((low - expected) ** 2).sum() / expected))


def test_a_single_masked_update_is_indistinguishable_from_uniform() -> None:
    """The requester holds one member's masked vector of all-zero (the least uniform input there is)."""
    cohort, ids = make_cohort(3)
    member = cohort.members[0]
    masked = Masker(cohort, member, ids[member].kx_key, QUANT).mask(np.zeros(200_000)).values
    plain, _ = QUANT.encode(np.zeros(200_000))
    # 255 degrees of freedom: mean 255, sd ~22.6; 400 is over six sd, and the plain encoding is far beyond it
    assert chi_square(masked) < 400
    assert chi_square(plain) > 10_000
    # and it tells nothing of a real update either: it correlates with it no better than noise
    vector = np.random.default_rng(1).normal(0, 1, 200_000)
    other = Masker(cohort, member, ids[member].kx_key, QUANT).mask(vector).values
    assert chi_square(other) < 400
    signed = other.view(np.int32).astype(np.float64)
    assert abs(np.corrcoef(signed, vector)[0, 1]) < 0.02


def test_one_of_k_dropping_out_still_yields_the_right_sum_and_no_more_is_revealed() -> None:
    total, plain, unmasker, maskers = run(5, drop=1)
    assert np.max(np.abs(total - plain)) <= QUANT.error_bound(4)
    gone = sorted(maskers)[0]
    reveal = maskers[sorted(maskers)[1]].reveal(unmasker.survivors)
    assert set(reveal.pairwise) == {gone}  # only the seed with the dropped member


def test_two_dropping_out_of_five_still_sums() -> None:
    total, plain, _, _ = run(5, drop=2, seed=3)
    assert np.max(np.abs(total - plain)) <= QUANT.error_bound(3)


def masked_round(members: int, seed: int = 0) -> tuple[Cohort, dict[str, Masker], Unmasker, dict[str, np.ndarray]]:
    """Every member masks a random vector except the first (dropped before submitting); all updates arrived."""
    rng = np.random.default_rng(seed)
    cohort, ids = make_cohort(members)
    maskers = {n: Masker(cohort, n, ids[n].kx_key, QUANT) for n in cohort.members}
    vectors = {n: rng.normal(0, 1, 500).clip(-4, 4) for n in cohort.members[1:]}
    unmasker = Unmasker(cohort, QUANT)
    for member, vector in vectors.items():
        unmasker.add(maskers[member].mask(vector))
    return cohort, maskers, unmasker, vectors


def share_reveals(maskers: dict[str, Masker], unmasker: Unmasker, who: list[str]) -> dict[str, Reveal]:
    """The reveals of `who`, each given the shares the survivors dealt it (as the unmask request forwards them)."""
    return {m: maskers[m].reveal(unmasker.survivors, unmasker.sealed_for(m)) for m in who}


def test_a_survivor_that_drops_before_revealing_is_rebuilt_from_shares() -> None:
    """Of five, one never submits and one submits but never reveals: three shares rebuild its seeds."""
    cohort, maskers, unmasker, vectors = masked_round(5)
    dropped, silent, *revealing = cohort.members
    assert threshold(5) == 3 == len(revealing)
    reveals = share_reveals(maskers, unmasker, revealing)
    assert {(silent, silent), (silent, dropped)} <= set(reveals[revealing[0]].shares)
    assert not any(of == revealing[0] for _, of in reveals[revealing[0]].shares), "never a share of its own seed"
    total, _ = unmasker.unmask(reveals)
    assert np.max(np.abs(total - np.sum(list(vectors.values()), axis=0))) <= QUANT.error_bound(4)
    # the member that never submitted, alive, answers with shares only: of the silent one's self seed, never of
    # the seed it shares with it (with its self seed rebuilt from others, that would unmask it if it had submitted)
    shares = set(share_reveals(maskers, unmasker, [dropped])[dropped].shares)
    assert shares == {(survivor, survivor) for survivor in unmasker.survivors}


def test_too_few_shares_leave_the_sum_masked_and_shares_are_sealed_for_their_holder() -> None:
    cohort, maskers, unmasker, _ = masked_round(5)
    _, silent, *revealing = cohort.members
    with pytest.raises(SecAggError, match=f"{silent} did not reveal and only 2 of the 3 shares"):
        unmasker.unmask(share_reveals(maskers, unmasker, revealing[:2]))
    stray = maskers[revealing[2]].reveal(unmasker.survivors, unmasker.sealed_for(revealing[0]))
    assert stray.shares == {}, "shares sealed for another holder open for nobody else"


def test_a_wrong_share_is_detected_and_names_the_liar() -> None:
    cohort, maskers, unmasker, _ = masked_round(5)
    _, silent, *revealing = cohort.members
    reveals = share_reveals(maskers, unmasker, revealing)
    liar = revealing[1]
    forged = {**reveals[liar].shares, (silent, silent): bytes(66)}
    reveals[liar] = dataclasses.replace(reveals[liar], shares=forged)
    with pytest.raises(SeedMismatch) as refused:
        unmasker.unmask(reveals)
    assert refused.value.peer == liar


def test_a_survivor_revealing_a_wrong_seed_is_named_and_rebuilt_from_shares() -> None:
    cohort, maskers, unmasker, vectors = masked_round(5)
    dropped, liar, *others = cohort.members
    reveals = share_reveals(maskers, unmasker, [liar, *others])
    reveals[liar] = dataclasses.replace(reveals[liar], pairwise={dropped: bytes(32)})
    total, _ = unmasker.unmask(reveals)
    assert unmasker.liars == [liar]
    assert np.max(np.abs(total - np.sum(list(vectors.values()), axis=0))) <= QUANT.error_bound(4)


def test_a_dealer_whose_shares_do_not_rebuild_its_committed_seed_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    cohort, ids = make_cohort(4)
    maskers = {n: Masker(cohort, n, ids[n].kx_key, QUANT) for n in cohort.members}
    unmasker = Unmasker(cohort, QUANT)
    cheat, *honest = cohort.members
    deal = secagg.split
    monkeypatch.setattr(secagg, "split", lambda secret, points, needed: deal(bytes(32), points, needed))
    unmasker.add(maskers[cheat].mask(np.ones(10)))  # shares of zeros, commitments to its real seeds
    monkeypatch.setattr(secagg, "split", deal)
    for member in honest:
        unmasker.add(maskers[member].mask(np.ones(10)))
    with pytest.raises(SeedMismatch) as refused:
        unmasker.unmask(share_reveals(maskers, unmasker, honest))
    assert refused.value.peer == cheat


def test_a_wrong_revealed_seed_is_detected_and_names_the_liar() -> None:
    cohort, ids = make_cohort(4)
    maskers = {n: Masker(cohort, n, ids[n].kx_key, QUANT) for n in cohort.members}
    unmasker = Unmasker(cohort, QUANT)
    dropped, *arrived = cohort.members
    for member in arrived:
        unmasker.add(maskers[member].mask(np.ones(100)))
    reveals = {m: maskers[m].reveal(unmasker.survivors) for m in arrived}
    liar = arrived[1]
    reveals[liar] = dataclasses.replace(reveals[liar], pairwise={dropped: bytes(32)})
    with pytest.raises(SeedMismatch) as refused:
        unmasker.unmask(reveals)
    assert refused.value.peer == liar
    reveals[liar] = dataclasses.replace(maskers[liar].reveal(unmasker.survivors), self_seed=bytes(32))
    with pytest.raises(SeedMismatch, match="self seed"):
        unmasker.unmask(reveals)


def test_the_commitments_and_the_vector_are_signed() -> None:
    cohort, ids = make_cohort(3)
    member = cohort.members[0]
    update = Masker(cohort, member, ids[member].kx_key, QUANT).mask(np.ones(10))
    signature = ids[member].sign(update.signed_bytes())
    assert verify_signature(ids[member].public_key, signature, update.signed_bytes())
    changed_values = dataclasses.replace(update, values=update.values + np.uint32(1))
    other = cohort.members[1]
    changed_commitment = dataclasses.replace(update, commitments={**update.commitments, other: bytes(32)})
    for forged in (changed_values, changed_commitment):
        assert not verify_signature(ids[member].public_key, signature, forged.signed_bytes())


def test_a_member_called_dropped_reveals_no_seed_and_a_second_survivor_set_gets_nothing_more() -> None:
    cohort, ids = make_cohort(4)
    a, b, c, d = (Masker(cohort, n, ids[n].kx_key, QUANT) for n in cohort.members)
    named_dropped = a.reveal({b.own_id, c.own_id, d.own_id})
    assert named_dropped.self_seed == b"" and named_dropped.pairwise == {} and named_dropped.shares == {}
    first = b.reveal({b.own_id, c.own_id, d.own_id})
    assert set(first.pairwise) == {a.own_id}
    with pytest.raises(SecAggError, match="another survivor set"):
        b.reveal({a.own_id, b.own_id, c.own_id})
    with pytest.raises(SecAggError, match="fewer than 2"):
        c.reveal({c.own_id})


def test_a_falsely_dropped_members_update_stays_masked() -> None:
    """Even with every pairwise seed of a member revealed, its self mask hides its vector."""
    cohort, ids = make_cohort(3)
    maskers = {n: Masker(cohort, n, ids[n].kx_key, QUANT) for n in cohort.members}
    victim, *others = cohort.members
    update = maskers[victim].mask(np.zeros(50_000))
    survivors = set(others)
    stripped = update.values.copy()
    for other in others:
        seed = maskers[other].reveal(survivors).pairwise[victim]
        mask = expand(seed, stripped.size)
        stripped = stripped - mask if victim < other else stripped + mask
    assert chi_square(stripped) < 400


def test_refusals() -> None:
    with pytest.raises(SecAggError, match="beyond 2"):
        Quantizer(clip=100.0, scale=2**24, peers=8)
    with pytest.raises(SecAggError, match="at least 3"):
        make_cohort(2)
    with pytest.raises(SecAggError, match="NaN"):
        QUANT.encode([np.nan])
    cohort, ids = make_cohort(3)
    stranger = Identity.generate()
    with pytest.raises(SecAggError, match="not a member"):
        Masker(cohort, stranger.node_id, stranger.kx_key, QUANT)
    member = cohort.members[0]
    with pytest.raises(SecAggError, match="another X25519 key"):
        Masker(cohort, member, stranger.kx_key, QUANT)
    unmasker = Unmasker(cohort, QUANT)
    update = Masker(cohort, member, ids[member].kx_key, QUANT).mask(np.ones(5))
    other_cohort, _ = make_cohort(3, "req-2")
    with pytest.raises(SecAggError, match="another cohort"):
        Unmasker(other_cohort, QUANT).add(MaskedUpdate(**{**update.__dict__, "sender": other_cohort.members[0]}))
    with pytest.raises(SecAggError, match="not a non-empty vector"):
        unmasker.add(dataclasses.replace(update, values=update.values.astype(np.int64)))
    unmasker.add(update)
    with pytest.raises(SecAggError, match="already sent"):
        unmasker.add(update)
    with pytest.raises(SecAggError, match="at least 2"):
        unmasker.unmask({})


def test_encoding_wraps_and_decodes_signed_values() -> None:
    fixed, clipped = QUANT.encode([-1.0, 0.5, 9.0])
    assert clipped == 1
    assert int(fixed[0]) == MODULUS - 2**16
    assert np.allclose(QUANT.decode_sum(fixed), [-1.0, 0.5, 4.0])


def test_a_member_masks_once_so_no_two_vectors_share_masks() -> None:
    cohort, ids = make_cohort(3)
    member = cohort.members[0]
    masker = Masker(cohort, member, ids[member].kx_key, QUANT)
    masker.mask(np.zeros(10))
    with pytest.raises(SecAggError, match="never reused"):
        masker.mask(np.ones(10))


def test_the_largest_unmask_request_and_reveal_round_trip_in_one_control_message() -> None:
    """A cohort of MAX_COHORT: every sealed bundle forwarded, every share revealed, within MAX_CONTROL_BYTES."""
    ids = [f"{i:040x}" for i in range(messages.MAX_COHORT)]
    assert messages.SHARE_BYTES == secagg.SHARE and secagg.sealed_size(len(ids)) == messages.MAX_SEALED_SHARES
    request = messages.UnmaskRequest(
        cohort_id="c" * 32,
        requester=ids[0],
        target=ids[1],
        survivors=ids,
        shares=[messages.SealedShares(dealer=d, sealed=bytes(messages.MAX_SEALED_SHARES)) for d in ids],
        signature=bytes(64),
    )
    shares = [messages.RevealedShare(dealer=d, of=of, value=bytes(secagg.SHARE)) for d in ids for of in ids]
    reveal = messages.SeedReveal(cohort_id="c" * 32, sender=ids[1], survivors=ids, shares=shares, signature=bytes(64))
    for message in (request, reveal):
        encoded = compact.encode(message)
        assert len(encoded) <= messages.MAX_CONTROL_BYTES
        assert compact.decode(encoded) == message
    short = reveal.model_dump(mode="python")
    short["shares"][0]["value"] = bytes(10)
    with pytest.raises(messages.MessageError, match="value"):
        compact.decode(compact.dumps(short))
