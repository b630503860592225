"""A draw listed partly by id alone (`PeerList.held`) comes back in the bridge's order, and a lying order costs
the liar only the entries it garbled."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cartnet.messages import HeldPeer, PeerInfo, PeerList, PresenceRecord

BRIDGE = "b" * 40


def entry(n: int) -> PeerInfo:
    """A stand-in entry for cart `n` (in_draw_order never reads more than its node id)."""
    record = PresenceRecord.model_construct(node_id=f"{n:040x}", bridge_id=BRIDGE)
    return PeerInfo.model_construct(bridge_url="", record=record, certificate=None)


def held(n: int, at: int) -> HeldPeer:
    return HeldPeer(node_id=f"{n:040x}", bridge_id=BRIDGE, bridge_url="", at=at)


def ids(entries: list[PeerInfo]) -> list[int]:
    return [int(e.node_id, 16) for e in entries]


@given(st.lists(st.booleans(), max_size=20))
def test_whatever_is_held_the_draw_keeps_the_bridges_order(is_held: list[bool]) -> None:
    listed = PeerList.model_construct(
        peers=[entry(n) for n, h in enumerate(is_held) if not h],
        held=[held(n, n) for n, h in enumerate(is_held) if h],
        total=len(is_held),
    )
    made_whole = {f"{n:040x}": entry(n) for n, h in enumerate(is_held) if h}
    assert ids(listed.in_draw_order(made_whole)) == list(range(len(is_held)))


@pytest.mark.parametrize(
    ("whole", "held_at", "made_whole", "drawn"),
    [
        pytest.param([0, 2], [(1, 1)], {1}, [0, 1, 2], id="honest"),
        pytest.param([0, 2], [(1, 1)], set(), [0, 2], id="not-made-whole-left-out"),
        pytest.param([0], [(1, 1), (2, 1)], {1, 2}, [0, 2], id="two-at-one-place"),
        pytest.param([0], [(1, 40)], {1}, [0], id="place-out-of-range"),
        pytest.param([0, 1, 2], [], set(), [0, 1, 2], id="nothing-held"),
    ],
)
def test_a_bridge_that_garbles_the_places_loses_only_those_entries(
    whole: list[int], held_at: list[tuple[int, int]], made_whole: set[int], drawn: list[int]
) -> None:
    listed = PeerList(peers=[], held=[held(n, at) for n, at in held_at]).model_copy(
        update={"peers": [entry(n) for n in whole]}
    )
    assert ids(listed.in_draw_order({f"{n:040x}": entry(n) for n in made_whole})) == drawn
