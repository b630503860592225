"""Client-level differential privacy: clipping, noise, the accountant, the budget, the settings, the simulator.

The math is checked on plain numpy tensors (seeded noise, many coordinates):
the noise's empirical standard deviation is the configured multiplier times
the clip norm, the one the accountant assumes, within a tight statistical
bound, and clipping bounds the update's norm. The accountant's ε is checked
against dp-accounting composed independently. The round runs for real (a real
Keras model on a real store, the real exchange on a fake network with no
peers): the engine picks the private workflow from the settings, the offer is
the noised update, ε grows round by round, sharing stops at the budget with
the reason in the round log and in the answer to a peer's request, and the
ledger survives a restart.
"""

from __future__ import annotations

import asyncio
import csv
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import dp_accounting
import numpy as np
import pytest
from dp_accounting import pld, rdp
from pydantic import ValidationError

from cartnet import frames
from cartnet.identity import Identity
from cartnet.messages import Message, UpdateDeclined
from cartnet.peers import sign_request
from child_cart.models.versions import ModelVersions
from child_cart.rounds import accountant
from child_cart.rounds import settings as round_settings
from child_cart.rounds.engine import RoundEngine
from child_cart.rounds.exchange import UpdateExchange
from child_cart.rounds.learner import Learner
from child_cart.rounds.phases import DEFAULT_WORKFLOW, Train
from child_cart.rounds.privacy import (
    BUDGET_SPENT,
    PRIVATE_WORKFLOW,
    PRIVATIZE,
    Privatize,
    privatize,
    workflow_for,
)
from child_cart.rounds.roundlog import RoundRecord, recent_rounds
from child_cart.rounds.settings import RoundSettings
from child_cart.rounds.workflow import Phase
from child_cart.store import Store, open_store
from child_cart.synth import shoppers as synth
from tests.rounds.swarmkit import CATALOGUE, TASK
from tests.trustkit import verifier

DELTA = 1e-5
COORDINATES = 200_000


def _tensors(rng: np.random.Generator, scale: float = 1.0) -> list[np.ndarray]:
    """A model-like list of float32 tensors with COORDINATES values in all."""
    shapes = [(400, 250), (250,), (250, 397), (500,)]
    assert sum(math.prod(s) for s in shapes) == COORDINATES
    return [(rng.standard_normal(shape) * scale).astype(np.float32) for shape in shapes]


def _flat(tensors: list[np.ndarray]) -> np.ndarray:
    return np.concatenate([t.astype(np.float64).ravel() for t in tensors])


# ---------------------------------------------------------------- noise and clipping


@pytest.mark.parametrize(("noise", "clip"), [(0.5, 1.0), (1.0, 0.1), (3.0, 2.0)])
def test_the_noise_added_has_the_std_the_accountant_assumes(noise: float, clip: float):
    """noised - start - clipped update is N(0, (noise x clip)^2) per coordinate: std within 1 % (~6 standard errors)."""
    rng = np.random.default_rng(1)
    start, local = _tensors(rng), _tensors(rng, scale=0.01)
    local = [s + u for s, u in zip(start, local)]
    out = privatize(start, local, clip, noise, np.random.default_rng(2))
    delta = _flat(local) - _flat(start)
    clipped = delta * min(1.0, clip / np.linalg.norm(delta))
    added = _flat(out.weights) - _flat(start) - clipped
    std = noise * clip
    # the std of n normal draws has a relative standard error of 1 / sqrt(2n): 0.16 % for 200,000 coordinates
    assert abs(added.std() / std - 1) < 0.01, (added.std(), std)
    assert abs(added.mean()) < 6 * std / math.sqrt(COORDINATES)
    assert abs(np.mean(np.abs(added) < std) - 0.6827) < 0.006, "not Gaussian: wrong share within one std"
    assert out.norm == pytest.approx(np.linalg.norm(delta), rel=1e-6)
    assert [w.dtype for w in out.weights] == [np.float32] * 4 and [w.shape for w in out.weights] == [
        s.shape for s in start
    ]


def test_seeded_noise_repeats_and_unseeded_does_not():
    rng = np.random.default_rng(3)
    start, local = _tensors(rng), _tensors(rng)
    first, again = (privatize(start, local, 1.0, 1.0, np.random.default_rng(9)) for _ in range(2))
    assert all(np.array_equal(a, b) for a, b in zip(first.weights, again.weights))
    fresh = privatize(start, local, 1.0, 1.0, np.random.default_rng())
    assert not np.array_equal(first.weights[0], fresh.weights[0])


@pytest.mark.parametrize("scale", [1e-4, 0.003, 0.1, 10.0])
def test_clipping_bounds_the_update_norm_and_keeps_its_direction(scale: float):
    clip = 1.0
    rng = np.random.default_rng(4)
    start = _tensors(rng)
    local = [s + u for s, u in zip(start, _tensors(rng, scale=scale))]
    out = privatize(start, local, clip, 0.0, rng)
    before, after = _flat(local) - _flat(start), _flat(out.weights) - _flat(start)
    assert np.linalg.norm(after) <= clip * (1 + 1e-4)
    assert out.clipped == (np.linalg.norm(before) > clip)
    if out.clipped:
        assert np.linalg.norm(after) == pytest.approx(clip, rel=1e-3)
    else:
        assert np.allclose(after, before, atol=1e-6)
    cosine = after @ before / (np.linalg.norm(after) * np.linalg.norm(before))
    assert cosine > 0.9999


def test_privatize_refuses_what_it_cannot_protect():
    start = [np.zeros(3, np.float32)]
    with pytest.raises(ValueError, match="clip_norm must be above 0"):
        privatize(start, start, 0.0, 1.0, np.random.default_rng())
    with pytest.raises(ValueError, match="float tensors"):
        privatize([np.zeros(3, np.int64)], [np.ones(3, np.int64)], 1.0, 1.0, np.random.default_rng())
    with pytest.raises(ValueError, match="same tensors"):
        privatize(start, [*start, *start], 1.0, 1.0, np.random.default_rng())


# ---------------------------------------------------------------- the accountant


def test_epsilon_grows_with_rounds_as_the_accountant_says():
    for noise in (0.8, 1.0, 2.0):
        previous = 0.0
        for rounds in range(1, 11):
            ours = accountant.epsilon([noise] * rounds, DELTA)
            direct = rdp.RdpAccountant()
            for _ in range(rounds):
                direct.compose(dp_accounting.GaussianDpEvent(noise))
            assert ours == pytest.approx(direct.get_epsilon(DELTA), rel=1e-9)
            tighter = pld.PLDAccountant()
            tighter.compose(dp_accounting.GaussianDpEvent(noise), rounds)
            assert tighter.get_epsilon(DELTA) <= ours * 1.001, "RDP is an upper bound on the exact (PLD) ε"
            assert ours > previous
            previous = ours
    # noise multipliers may change between rounds: the rounds compose one by one
    mixed = rdp.RdpAccountant()
    for noise in (1.0, 2.0, 1.0):
        mixed.compose(dp_accounting.GaussianDpEvent(noise))
    assert accountant.epsilon([1.0, 2.0, 1.0], DELTA) == pytest.approx(mixed.get_epsilon(DELTA))
    assert accountant.epsilon([], DELTA) == 0.0
    assert accountant.epsilon([1.0, 0.0], DELTA) == math.inf


def test_least_noise_fits_the_budget():
    for budget in (1.0, 5.0, 10.0):
        least = accountant.least_noise(budget, DELTA)
        assert least is not None
        assert accountant.epsilon([least], DELTA) <= budget < accountant.epsilon([least * 0.99], DELTA)


# ---------------------------------------------------------------- settings


@pytest.mark.parametrize(
    ("changes", "fields", "words"),
    [
        ({"dp_noise_multiplier": 1.0}, {"dp_clip_norm"}, "needs dp_clip_norm above 0"),
        ({"dp_clip_norm": 1.0}, {"dp_noise_multiplier"}, "protects nothing"),
        ({"dp_noise_multiplier": 1.0, "dp_clip_norm": 1.0, "dp_delta": 0.0}, {"dp_delta"}, "greater than 0"),
        ({"dp_noise_multiplier": 1.0, "dp_clip_norm": 1.0, "dp_delta": 1.0}, {"dp_delta"}, "less than 1"),
        ({"dp_noise_multiplier": 1.0, "dp_clip_norm": 1.0, "dp_epsilon_budget": 0}, {"dp_epsilon_budget"}, "greater"),
        ({"dp_noise_multiplier": -1.0, "dp_clip_norm": 1.0}, {"dp_noise_multiplier"}, "greater than or equal to 0"),
        (
            {"dp_noise_multiplier": 0.3, "dp_clip_norm": 1.0},
            {"dp_noise_multiplier", "dp_epsilon_budget"},
            "would never share; raise dp_noise_multiplier to at least 0.53 or raise dp_epsilon_budget",
        ),
    ],
)
def test_settings_refuse_bad_privacy_combinations(tmp_path: Path, changes: dict, fields: set[str], words: str):
    with pytest.raises(ValidationError) as refused:
        RoundSettings.model_validate(changes)
    assert {str(e["loc"][0]) for e in refused.value.errors()} == fields
    assert words in str(refused.value)
    store = open_store(tmp_path, catalogue=CATALOGUE)
    try:
        with pytest.raises(ValidationError):
            round_settings.save(store, changes)
        assert round_settings.load(store) == RoundSettings(), "a refused change stores nothing"
    finally:
        store.close()


def test_privacy_is_off_by_default_and_the_suggested_fix_validates():
    assert not accountant.dp_enabled(RoundSettings())
    assert workflow_for(RoundSettings()) is DEFAULT_WORKFLOW
    on = RoundSettings(dp_noise_multiplier=0.53, dp_clip_norm=1.0)
    assert accountant.dp_enabled(on) and workflow_for(on) is PRIVATE_WORKFLOW
    assert PRIVATE_WORKFLOW.names[:3] == [Phase.TRAIN, PRIVATIZE, Phase.EXCHANGE]


def test_a_chosen_workflow_that_would_share_raw_updates_is_refused_when_privacy_is_on():
    on = RoundSettings(dp_noise_multiplier=1.0, dp_clip_norm=1.0)
    with pytest.raises(ValueError, match="would offer the raw update"):
        workflow_for(on, DEFAULT_WORKFLOW)
    with pytest.raises(ValueError, match="would offer the raw update"):
        workflow_for(on, DEFAULT_WORKFLOW.inserted_after(Phase.TRAIN, Privatize()))  # TRAIN still offers
    seeded = DEFAULT_WORKFLOW.replaced(Phase.TRAIN, Train(offer=False)).inserted_after(Phase.TRAIN, Privatize(seed=1))
    assert workflow_for(on, seeded) is seeded
    assert workflow_for(RoundSettings(), DEFAULT_WORKFLOW) is DEFAULT_WORKFLOW


# ---------------------------------------------------------------- the round


@dataclass
class FakeNetwork:
    """No peers: the directory is empty; frames routed to a peer are kept; announcements recorded."""

    identity: Identity = field(default_factory=Identity.generate)
    transfers: SimpleNamespace = field(
        default_factory=lambda: SimpleNamespace(refusal_listeners=[], admission_checks=[])
    )
    bridge_id: str | None = None
    sent: asyncio.Queue[tuple[str, Message]] = field(default_factory=asyncio.Queue)
    ready: list[bool] = field(default_factory=list)

    async def peers(self, *, sample: int | None = None, task: str | None = None, known=(), by_id=False) -> list:
        return []

    async def lookup(self, node_id: str) -> None:
        return None

    async def announce(self, *, ready: bool, task: str | None = None) -> None:
        self.ready.append(ready)

    async def send_to(self, peer_id: str, inner: bytes) -> None:
        self.sent.put_nowait((peer_id, frames.parse(inner)))


class RecordingExchange(UpdateExchange):
    """The real exchange, remembering what it was told to offer and why it withdrew."""

    def __init__(self, network: FakeNetwork) -> None:
        super().__init__(network, TASK.name, verifier())  # type: ignore[arg-type]
        self.offers: list[list[np.ndarray]] = []
        self.withdrawals: list[str] = []

    def offer(self, update_weights: list[np.ndarray], samples: int, round_number: int) -> None:
        self.offers.append(update_weights)
        super().offer(update_weights, samples, round_number)

    def withdraw(self, reason: str, layout: list[np.ndarray] | None = None) -> None:
        self.withdrawals.append(reason)
        super().withdraw(reason, layout)


@dataclass
class Cart:
    """A cart's store in a folder that outlives engines (a restart closes and re-opens it)."""

    folder: Path
    opened: Store | None = None
    network: FakeNetwork = field(default_factory=FakeNetwork)

    @property
    def store(self) -> Store:
        if self.opened is None:
            self.opened = open_store(self.folder, catalogue=CATALOGUE)
        return self.opened

    def engine(self) -> tuple[RoundEngine, RecordingExchange]:
        exchange = RecordingExchange(self.network)
        models = ModelVersions(self.store, self.folder)
        engine = RoundEngine(self.store, models, Learner(TASK), exchange, self.network, seed=0)  # type: ignore[arg-type]
        return engine, exchange

    def restart(self) -> None:
        if self.opened is not None:
            self.opened.close()
            self.opened = None


@pytest.fixture
def cart(tmp_path: Path) -> Iterator[Cart]:
    made = Cart(tmp_path / "cart")
    synth.fill_store(made.store, synth.generate(CATALOGUE, 300, seed=5)[0])
    yield made
    made.restart()


NOISE, CLIP, BUDGET = 1.0, 0.5, 8.0  # one round: ε 4.73, two: 7.08, three: 8.9 > 8


async def test_sharing_stops_at_the_budget_says_so_and_survives_a_restart(cart: Cart):
    round_settings.save(
        cart.store,
        {
            "local_epochs": 1,
            "dp_noise_multiplier": NOISE,
            "dp_clip_norm": CLIP,
            "dp_delta": DELTA,
            "dp_epsilon_budget": BUDGET,
        },
    )
    engine, exchange = cart.engine()
    starts, records = [], []
    for _ in range(3):
        starts.append(engine.current)
        records.append(await engine.run_round())
    shared, stopped = records[:2], records[2]

    for n, record in enumerate(shared, start=1):
        assert list(record.timings)[:3] == ["train", PRIVATIZE, "exchange"], "the engine picked the private workflow"
        privacy = record.privacy
        assert privacy is not None and privacy.shared and privacy.spent, privacy
        assert privacy.epsilon == pytest.approx(accountant.epsilon([NOISE] * n, DELTA))
        assert privacy.rounds_shared == n and privacy.epsilon_left == pytest.approx(BUDGET - privacy.epsilon)
        assert privacy.update_norm is not None and privacy.clipped == (privacy.update_norm > CLIP)
        assert privacy.unnoised and record.local, "the unnoised and the privatized model are both scored"
    assert shared[0].privacy.epsilon < shared[1].privacy.epsilon <= BUDGET  # type: ignore[union-attr]

    # what was offered is start + clipped update + noise of std NOISE x CLIP per coordinate
    assert len(exchange.offers) == 2
    size = sum(w.size for w in starts[0])
    for start, offered, record in zip(starts, exchange.offers, shared):
        moved = _flat(offered) - _flat(start)
        clipped = min(record.privacy.update_norm, CLIP)  # type: ignore[union-attr,type-var]
        expected = math.sqrt(clipped**2 + size * (NOISE * CLIP) ** 2)
        assert np.linalg.norm(moved) == pytest.approx(expected, rel=0.15), "the offer is not the noised update"

    privacy = stopped.privacy
    assert privacy is not None and not privacy.shared and not privacy.spent
    assert privacy.note.startswith(f"{BUDGET_SPENT}: sharing this round would bring ε to ")
    assert "this cart no longer shares its updates" in privacy.note
    assert privacy.epsilon == pytest.approx(shared[1].privacy.epsilon)  # type: ignore[union-attr]
    assert exchange.withdrawals == [privacy.note]
    assert stopped.kept in ("current", "best"), "nothing trained on this round's rows is kept"
    assert stopped.local == stopped.current
    logged = recent_rounds(cart.store)[-1]
    assert isinstance(logged, RoundRecord) and logged.privacy == privacy, "the round log says why"

    # a peer asking now is told why
    asker = Identity.generate()
    exchange.on_message(asker.node_id, sign_request(asker, cart.network.identity.node_id, TASK.name, 3))
    peer, answer = await asyncio.wait_for(cart.network.sent.get(), 10)
    assert isinstance(answer, UpdateDeclined) and answer.reason.startswith(BUDGET_SPENT), answer

    cart.restart()  # the ledger is in the store: a restarted cart remembers what it spent
    assert len(accountant.load_ledger(cart.store)) == 2
    engine, exchange = cart.engine()
    again = await engine.run_round()
    assert again.privacy is not None and not again.privacy.shared and exchange.offers == []
    assert again.privacy.epsilon == pytest.approx(shared[1].privacy.epsilon)  # type: ignore[union-attr]

    round_settings.save(cart.store, {"dp_epsilon_budget": 10.0})  # a bigger budget: ε goes on from where it was
    resumed = await engine.run_round()
    assert resumed.privacy is not None and resumed.privacy.shared and len(exchange.offers) == 1
    assert resumed.privacy.epsilon == pytest.approx(accountant.epsilon([NOISE] * 3, DELTA))


async def test_a_private_update_is_the_step_from_the_swarm_model_the_round_trained_from(cart: Cart):
    """With a swarm model adopted, TRAIN starts from it, so the update clipped and noised is local - swarm model; taken
    from the kept model instead, the distance between the two would fill the clip and the update would be lost."""
    round_settings.save(
        cart.store, {"local_epochs": 1, "dp_noise_multiplier": NOISE, "dp_clip_norm": CLIP, "dp_delta": DELTA}
    )
    engine, exchange = cart.engine()
    engine.swarm = [w + 1.0 for w in engine.current]  # far from the kept model: sqrt(size) apart
    swarm, kept = engine.swarm, engine.current
    record = await engine.run_round()
    assert record.privacy is not None and record.privacy.shared, record.privacy
    [offered] = exchange.offers
    size = sum(w.size for w in swarm)
    clipped = min(record.privacy.update_norm, CLIP)  # type: ignore[type-var]
    expected = math.sqrt(clipped**2 + size * (NOISE * CLIP) ** 2)
    assert np.linalg.norm(_flat(offered) - _flat(swarm)) == pytest.approx(expected, rel=0.15)
    assert np.linalg.norm(_flat(offered) - _flat(kept)) > 1.5 * expected, "the update was taken from the kept model"


async def test_a_damaged_ledger_stops_sharing(cart: Cart):
    round_settings.save(cart.store, {"local_epochs": 1, "dp_noise_multiplier": NOISE, "dp_clip_norm": CLIP})
    cart.store.set_setting(accountant.LEDGER_KEY, {"spends": [{"round": "?"}]})
    engine, exchange = cart.engine()
    record = await engine.run_round()
    assert record.privacy is not None and not record.privacy.shared
    assert record.privacy.note.startswith(f"{BUDGET_SPENT}: how much is unknown")
    assert exchange.offers == []


async def test_privacy_off_runs_todays_round(cart: Cart):
    round_settings.save(cart.store, {"local_epochs": 1})
    engine, exchange = cart.engine()
    record = await engine.run_round()
    assert list(record.timings) == DEFAULT_WORKFLOW.names and record.privacy is None
    assert len(exchange.offers) == 1 and accountant.load_ledger(cart.store) == []


# ---------------------------------------------------------------- fedcart simulate


def test_simulate_refuses_noise_without_a_clip_norm(cli):
    assert "needs dp_clip_norm above 0" in cli("simulate", "--dp-noise", "1", code=2).output


@pytest.mark.slow
def test_simulate_reports_accuracy_next_to_epsilon(cli, tmp_path: Path):
    noise, clip = 1.0, 0.5
    out = cli(
        "simulate",
        *("--carts", "3", "--rounds", "2", "--bridges", "1", "--rows", "300", "--epochs", "1", "--k", "2"),
        *("--dp-noise", str(noise), "--dp-clip", str(clip), "--out", "report"),
    ).output
    epsilon = accountant.epsilon([noise, noise], DELTA)
    assert f"at ε = {epsilon:.3f} (δ = 1e-05)" in out, out
    with (tmp_path / "report" / "simulate.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [float(r["epsilon"]) for r in rows] == pytest.approx([accountant.epsilon([noise], DELTA), epsilon])
    assert [r["sharing"] for r in rows] == ["3", "3"]
