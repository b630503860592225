"""`fedcart simulate --backend ray`: the same carts, spread over Ray actors, learn what the in-process carts learn."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from typer.testing import CliRunner

from child_cart.store import load_catalogue
from child_cart.synth import shoppers as synth
from fedcart.cartgroup import open_group
from fedcart.cli import app
from fedcart.inprocess import start_bridges
from fedcart.raysim import shares
from fedcart.simulation import SimConfig, simulate

TOLERANCE = 0.02
"""Pooled held-out accuracy may differ by 3 of the ~170 held-out rows. Training is seeded and came out identical
when measured; only the order in which peers' updates arrive (and so FedAvg's float sums) may differ between runs."""


@pytest.mark.slow
async def test_ray_backend_matches_the_in_process_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ray

    monkeypatch.setenv("MONGO_URL", "")
    base = SimConfig(carts=4, rounds=2, bridges=2, rows_per_cart=300, epochs=1, k=4, seed=3)
    local = await simulate(dataclasses.replace(base, out_dir=tmp_path / "inprocess"))
    spread = await simulate(dataclasses.replace(base, out_dir=tmp_path / "ray", backend="ray", actors=2))
    assert not ray.is_initialized(), "the simulation started Ray and left it running"
    for here, there in zip(local.rows, spread.rows, strict=True):
        assert there.accepted == here.accepted, (here, there)
        assert there.fed_mean == pytest.approx(here.fed_mean, abs=TOLERANCE), (here, there)
        assert there.wire_bytes > there.bytes_moved > 0, "the Ray carts moved no update over the bridges"
    for metric, value in local.final["federated"].items():
        assert spread.final["federated"][metric] == pytest.approx(value, abs=TOLERANCE), metric
    assert local.rows[-1].fed_mean > local.rows[0].fed_mean - TOLERANCE, "no learning to compare"


@pytest.mark.parametrize(("count", "groups"), [(4, 2), (10, 3), (3, 8), (1000, 2)])
def test_shares_cover_every_cart_once_in_order(count: int, groups: int) -> None:
    parts = shares(count, groups)
    assert [i for part in parts for i in part] == list(range(count))
    assert len(parts) == min(count, groups)
    assert max(map(len, parts)) - min(map(len, parts)) <= 1


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--backend", "spark"], "unknown backend 'spark'"),
        (["--carts", "500"], "--backend inprocess runs at most 200 carts"),
        (["--backend", "ray", "--carts", "1001"], "less than or equal to 1000"),
    ],
)
def test_simulate_refuses_a_backend_it_cannot_run(args: list[str], says: str) -> None:
    result = CliRunner().invoke(app, ["simulate", *args])
    assert result.exit_code == 2, result.output
    assert says in " ".join(result.output.split()), result.output


@pytest.mark.slow
async def test_carts_exchanging_in_waves_find_every_peer_update_on_offer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One cart at a time asks (wave 1): the later carts' updates must already be on offer to the first."""
    monkeypatch.setenv("MONGO_URL", "")
    data = synth.generate(load_catalogue(), 200, 3, 1, 1.0)
    bridges = await start_bridges(1, tmp_path)
    try:
        carts = await open_group("inprocess", data, bridges, tmp_path, {"k": 2, "local_epochs": 1}, wave=1)
        try:
            records = await carts.run_round()
        finally:
            await carts.stop()
    finally:
        for bridge in bridges:
            await bridge.stop()
    assert len(records) == 3, "a cart's round failed"
    for record in records:
        assert sorted(record.peers_answered) == sorted(record.peers_asked) and len(record.peers_asked) == 2, record
