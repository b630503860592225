"""The acceptance rule cannot drift, and every round logs the swarm's gain over a local-only model.

The rule itself (`acceptance.choose`) is checked on a table of scores. The rest
runs the real DECIDE and LOCAL_ONLY phases on a real Keras recommend model and
real held-out rows: a scripted TRAIN stand-in offers chosen weights as this
round's local model and aggregate, taken from a bank of models between a
trained one and the untrained one, each scored beforehand on the same held-out
rows. That is how a drifting sequence of aggregates is fed in, each one a
little worse than the last and within the tolerance of the local model (which
is the drifted current model, as when a cart has too few new rows to train):
the old rule (aggregate against this round's local model) accepted all of them.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import numpy as np
import pytest

from cartnet.weights import decode
from child_cart.aggregation import Update
from child_cart.models.versions import ModelVersions, read_weights_file, save_weights_file
from child_cart.rounds import settings as round_settings
from child_cart.rounds import swarm_model
from child_cart.rounds.acceptance import Candidate, Scored, choose, margin, standard_error
from child_cart.rounds.engine import RoundEngine
from child_cart.rounds.exchange import Collected
from child_cart.rounds.learner import Learner
from child_cart.rounds.phases import DEFAULT_WORKFLOW, Decide, Evaluate, LocalOnly, Train, local_only_path
from child_cart.rounds.roundlog import RoundRecord, best_version, log_round, recent_rounds
from child_cart.rounds.settings import RoundSettings
from child_cart.rounds.workflow import Phase, RoundContext, RoundPhase, Weights, Workflow
from child_cart.store import Store, open_store
from child_cart.synth import shoppers as synth
from fedcart.inprocess import run_round
from tests import trustkit
from tests.rounds.swarmkit import CATALOGUE, TASK, swarm

log = logging.getLogger(__name__)

TOLERANCE = 0.05
ROWS = 1300  # ~975 basket steps, ~200 of them held out: accuracy moves in steps of 0.005
NODE = "ac" * 20
M = TASK.primary_metric


# ---------------------------------------------------------------- the rule on a table of scores


def _verdict(
    tolerance: float = TOLERANCE, error: str = "", metric: str = "accuracy", rows: int = 0, **scores: float
) -> tuple:
    candidates = [Scored(Candidate(name), {metric: value}) for name, value in scores.items()]
    verdict = choose(candidates, metric, metric != "loss", tolerance, error, rows)
    return verdict.kept.value, verdict.accepted


@pytest.mark.parametrize(
    ("scores", "expected"),
    [
        ({"aggregate": 0.40, "local": 0.35, "current": 0.30}, ("aggregate", True)),
        ({"aggregate": 0.31, "local": 0.35, "current": 0.30}, ("aggregate", True)),  # within tolerance of the top
        ({"aggregate": 0.29, "local": 0.35, "current": 0.30}, ("local", False)),
        ({"aggregate": 0.20, "local": 0.28, "current": 0.30}, ("current", False)),
        # drifted: within tolerance of local and current, not of the best so far
        ({"aggregate": 0.24, "local": 0.27, "current": 0.27, "best": 0.30}, ("best", False)),
        ({"aggregate": 0.26, "local": 0.27, "current": 0.27, "best": 0.30}, ("aggregate", True)),
        ({"aggregate": 0.10, "local": 0.27, "current": 0.28, "best": 0.30}, ("best", False)),
        ({"aggregate": 0.10, "local": 0.30, "current": 0.30, "best": 0.30}, ("local", False)),  # ties: freshest first
    ],
)
def test_rule_keeps_the_aggregate_within_tolerance_of_the_best_else_the_best(scores, expected):
    assert _verdict(**scores) == expected


@pytest.mark.parametrize(
    ("rows", "scores", "expected"),
    [
        # 45 held-out rows: the top's standard error sqrt(0.35 * 0.65 / 45) = 0.071 widens the margin to
        # sqrt(0.05^2 + 0.071^2) = 0.087
        (45, {"aggregate": 0.27, "local": 0.35, "current": 0.30}, ("aggregate", True)),
        (45, {"aggregate": 0.26, "local": 0.35, "current": 0.30}, ("local", False)),
        (45, {"aggregate": 0.10, "local": 0.27, "current": 0.28, "best": 0.30}, ("best", False)),  # poisoned
        # 10,000 rows: 0.0048, the tolerance nearly alone
        (10_000, {"aggregate": 0.29, "local": 0.35, "current": 0.30}, ("local", False)),
        (10_000, {"aggregate": 0.30, "local": 0.35, "current": 0.30}, ("aggregate", True)),
    ],
)
def test_the_margin_widens_by_the_standard_error_of_few_rows(rows, scores, expected):
    assert _verdict(rows=rows, **scores) == expected


def test_no_standard_error_for_a_loss_or_unknown_rows():
    assert standard_error(0.35, 45, True) == pytest.approx(0.0711, abs=1e-4)
    assert margin(0.05, 0.35, 45, True) == pytest.approx(0.0870, abs=1e-4)
    assert standard_error(0.35, 0, True) == standard_error(1.4, 45, False) == standard_error(1.4, 45, True) == 0.0
    assert _verdict(metric="loss", rows=45, aggregate=1.2, local=1.0, current=1.3) == ("local", False)


def test_rule_turns_a_lower_is_better_metric_around():
    assert _verdict(metric="loss", aggregate=1.02, local=1.0, current=1.3) == ("aggregate", True)
    assert _verdict(metric="loss", aggregate=1.2, local=1.0, current=1.3) == ("local", False)
    assert _verdict(metric="loss", aggregate=1.2, local=1.4, current=1.3, best=0.9) == ("best", False)


def test_rule_without_scores_or_aggregate_says_why():
    no_rows = choose([Scored(Candidate.LOCAL, {}), Scored(Candidate.CURRENT, {})], "accuracy", True, TOLERANCE)
    assert (no_rows.kept, no_rows.accepted) == (Candidate.LOCAL, False)
    assert "no held-out rows" in no_rows.reason
    alone = choose(
        [Scored(Candidate.LOCAL, {"accuracy": 0.2}), Scored(Candidate.CURRENT, {"accuracy": 0.3})],
        "accuracy",
        True,
        TOLERANCE,
        "no peer updates arrived",
    )
    assert (alone.kept, alone.accepted) == (Candidate.CURRENT, False)
    assert alone.reason == "no peer updates arrived; kept the current model (accuracy 0.3000)"


def test_reasons_name_the_kept_candidate_and_the_yardstick():
    scores = [("aggregate", 0.24), ("local", 0.27), ("current", 0.27), ("best", 0.30)]
    refused = choose([Scored(Candidate(n), {"accuracy": v}) for n, v in scores], "accuracy", True, TOLERANCE)
    assert refused.reason == (
        "the aggregate (accuracy 0.2400) is more than 0.05 below the best model so far (accuracy 0.3000); "
        "kept the best model so far (accuracy 0.3000)"
    )
    scores[0] = ("aggregate", 0.26)
    kept = choose([Scored(Candidate(n), {"accuracy": v}) for n, v in scores], "accuracy", True, TOLERANCE)
    assert kept.reason == (
        "kept the aggregate (accuracy 0.2600): within 0.05 of the best model so far (accuracy 0.3000)"
    )


# ---------------------------------------------------------------- real Keras models, real phases


@dataclass(frozen=True)
class Banked:
    """A model and its accuracy on the test cart's held-out rows."""

    weights: Weights
    score: float


@dataclass
class Bank:
    rows: list[dict]
    good: Banked
    models: list[Banked]
    held_out: int

    @property
    def margin(self) -> float:
        """How far below the good model (the best so far in these tests) an aggregate is still kept."""
        return margin(TOLERANCE, self.good.score, self.held_out, True)

    def drifting(self, start: Banked, step: float, below: float) -> list[Banked]:
        """Models each at most `step` worse than the one before, down to more than `below` under `start`."""
        chain, previous = [], start.score
        while previous >= start.score - below:
            steps = [m for m in self.models if previous - step <= m.score <= previous - 0.004]
            assert steps, f"no model within {step} below {previous:.3f}: {sorted(m.score for m in self.models)}"
            chosen = min(steps, key=lambda m: m.score)
            chain.append(chosen)
            previous = chosen.score
        return chain

    def near(self, score: float) -> Banked:
        return min(self.models, key=lambda m: abs(m.score - score))


@pytest.fixture(scope="module")
def bank(tmp_path_factory: pytest.TempPathFactory) -> Bank:
    """A trained model, and 81 models on the line from it to the untrained one, scored on the held-out rows."""
    import keras

    keras.utils.set_random_seed(0)
    rows = synth.generate(CATALOGUE, ROWS, seed=3)[0]
    store = open_store(tmp_path_factory.mktemp("bank"), catalogue=CATALOGUE)
    try:
        synth.fill_store(store, rows)
        learner = Learner(TASK)
        learner.load_rows(TASK.rows(store))
    finally:
        store.close()
    start = learner.initial_weights
    good = learner.train(start, 20)
    line = [[(1 - t) * g + t * s for g, s in zip(good, start)] for t in np.linspace(0.0, 1.0, 81)]
    models = [Banked(w, learner.evaluate(w)[M]) for w in line]
    log.info("bank: %s", [round(m.score, 3) for m in models])
    return Bank(rows, models[0], models, learner.val_samples)


@dataclass
class Script:
    """What the scripted TRAIN stand-in offers each round: (local or None for the current model, aggregate), and the
    peers' updates every round's aggregate was made of (EVALUATE scores them)."""

    rounds: deque[tuple[Weights | None, Weights | None]] = field(default_factory=deque)
    peers: list[Weights] = field(default_factory=list)


class Scripted(RoundPhase):
    """TRAIN stand-in: the cart's real rows, then the script's local model (untrained: the current one) and aggregate."""

    name = Phase.TRAIN

    def __init__(self, script: Script) -> None:
        self.script = script

    async def run(self, ctx: RoundContext) -> None:
        engine = ctx.engine
        engine.learner.load_rows(await asyncio.to_thread(engine.task.rows, engine.store))
        local, aggregate = self.script.rounds.popleft()
        local = engine.current if local is None else local
        ctx.own = Update(engine.node_id, local, engine.learner.train_samples)
        ctx.local_metrics = engine.learner.evaluate(local)
        ctx.aggregated = aggregate
        ctx.peer_updates = [Update(f"peer-{i}", w, ctx.own.samples) for i, w in enumerate(self.script.peers)]
        if aggregate is None:
            ctx.aggregate_error = "no peer updates arrived"


class Identity:
    node_id = NODE


class Offline:
    """What the engine needs of a network and an exchange when no peer exists."""

    identity, bridge_id = Identity(), ""
    bytes_in = bytes_out = 0
    verifier = trustkit.verifier()

    async def peers(self, *, sample: int | None = None, task: str | None = None, known=(), by_id=False) -> list:
        return []

    def offer(self, *args: object) -> None:
        return None

    async def collect(self, *args: object, **options: object) -> Collected:
        return Collected()

    def extra_draw(self, *args: object) -> int:
        return 0

    def prefer_responsive(self, drawn: list, *args: object) -> list:
        return drawn


@dataclass
class Cart:
    """One cart's store and model versions in a folder that outlives engines (a restart closes and re-opens them)."""

    folder: Path
    opened: Store | None = None

    @property
    def store(self) -> Store:
        if self.opened is None:
            self.opened = open_store(self.folder, catalogue=CATALOGUE)
        return self.opened

    @property
    def models(self) -> ModelVersions:
        return ModelVersions(self.store, self.folder)

    def engine(self, workflow: Workflow) -> RoundEngine:
        offline = Offline()
        return RoundEngine(self.store, self.models, Learner(TASK), offline, offline, workflow=workflow, seed=0)

    def restart(self) -> None:
        if self.opened is not None:
            self.opened.close()
            self.opened = None


@pytest.fixture
def cart(tmp_path: Path, bank: Bank) -> Iterator[Callable[[Weights], Cart]]:
    """A cart with the bank's rows whose current model (latest version) is the given weights."""
    made: list[Cart] = []

    def make(current: Weights) -> Cart:
        made.append(cart := Cart(tmp_path / f"cart-{len(made)}"))
        synth.fill_store(cart.store, bank.rows)
        round_settings.save(cart.store, {"tolerance": TOLERANCE})
        cart.models.save(TASK.name, current, len(bank.rows), source="local")
        return cart

    yield make
    for cart in made:
        cart.restart()


def scripted(script: Script) -> Workflow:
    return Workflow(Scripted(script), Evaluate(), LocalOnly(), Decide())


async def test_a_drifting_sequence_of_aggregates_is_refused_below_the_best_so_far(bank, cart):
    start = bank.good
    drift = bank.drifting(start, step=0.02, below=bank.margin)
    assert len(drift) >= 3, [m.score for m in drift]
    drift.append(bank.drifting(drift[-1], step=0.02, below=0.0)[0])  # one more, still lower
    script = Script(deque((None, m.weights) for m in drift))
    engine = cart(start.weights).engine(scripted(script))
    records = [await engine.run_round() for _ in drift]

    scores = [m.score for m in drift]
    within = [s >= start.score - bank.margin for s in scores]
    assert [r.accepted for r in records] == within, [(r.accepted, r.reason) for r in records]
    first_refused = within.index(False)
    for record, score in zip(records, scores):
        assert record.aggregated[M] == pytest.approx(score), "DECIDE scored on other rows than the bank"
        assert record.kept_metrics[M] >= start.score - bank.margin - 1e-9, "kept a model below the floor"
    for record in records[: first_refused + 1]:
        assert record.aggregated[M] >= record.local[M] - TOLERANCE, "the old rule would have accepted this one"
    assert records[first_refused].kept == "best", records[first_refused].reason
    assert "below the best model so far" in records[first_refused].reason
    assert all(r.kept in ("best", "current") for r in records[first_refused:])
    assert engine.learner.evaluate(engine.current)[M] == pytest.approx(start.score), "the best model is back"
    assert {r.best_version for r in records[first_refused:]} == {records[first_refused].best_version}


async def test_the_best_of_the_candidates_is_kept(bank, cart):
    high, mid, low = bank.good, bank.near(bank.good.score - 0.03), bank.near(bank.good.score - 0.12)
    assert high.score - low.score > bank.margin + 0.02 and high.score > mid.score > low.score
    cases = [  # (current, local, aggregate) -> kept
        ((low, mid, high), "aggregate"),
        ((mid, high, low), "local"),
        ((high, mid, low), "current"),
        ((mid, low, high), "aggregate"),
    ]
    for (current, local, aggregate), kept in cases:
        made = cart(current.weights)
        before = made.models.latest(TASK.name)
        engine = made.engine(scripted(Script(deque([(local.weights, aggregate.weights)]))))
        record = await engine.run_round()
        winner = {"aggregate": aggregate, "local": local, "current": current}[kept]
        assert (record.kept, record.accepted) == (kept, kept == "aggregate"), record.reason
        assert record.kept_metrics[M] == pytest.approx(winner.score)
        assert record.current[M] == pytest.approx(current.score)
        assert all(np.array_equal(a, b) for a, b in zip(engine.current, winner.weights))
        latest = engine.models.latest(TASK.name)
        assert (latest.id == before.id) == (kept == "current"), "a kept current model is not saved again"
        assert latest.source == ("local" if kept == "current" else kept)
        assert record.best_version == latest.id


async def test_the_best_so_far_survives_a_restart(bank, cart):
    start = bank.good
    drift = bank.drifting(start, step=0.02, below=bank.margin)
    accepted, beyond = [m for m in drift if m.score >= start.score - bank.margin], drift[-1]
    assert accepted and beyond.score >= accepted[-1].score - TOLERANCE, "a restart would forget the floor unnoticed"
    made = cart(start.weights)
    script = Script(deque((None, m.weights) for m in accepted))
    engine = made.engine(scripted(script))
    before = [await engine.run_round() for _ in accepted]
    assert all(r.accepted for r in before), [r.reason for r in before]
    best = before[-1].best_version
    assert best is not None and best != engine.models.latest(TASK.name).id

    made.restart()
    script.rounds.append((None, beyond.weights))
    engine = made.engine(scripted(script))
    assert best_version(engine.store, TASK.name) == best
    record = await engine.run_round()
    assert (record.accepted, record.kept) == (False, "best"), record.reason
    assert record.current[M] == pytest.approx(accepted[-1].score)
    assert record.kept_metrics[M] == pytest.approx(start.score)
    assert engine.learner.evaluate(engine.current)[M] == pytest.approx(start.score)


async def test_swarm_gain_is_logged_against_a_local_only_model_that_persists(tmp_path, bank, cart):
    """The default round on a cart without peers: real training, a real local-only shadow, the gain between them."""
    made = cart(bank.good.weights)
    round_settings.save(made.store, {"local_epochs": 2})
    engine = made.engine(DEFAULT_WORKFLOW)
    shadow = local_only_path(made.models, TASK.name)
    first = await engine.run_round()
    saved = shadow.read_bytes()
    made.restart()
    engine = made.engine(DEFAULT_WORKFLOW)
    second = await engine.run_round()
    for record in (first, second):
        assert list(record.timings) == [
            "train",
            "exchange",
            "aggregate",
            "evaluate",
            "local_only",
            "decide",
            "adopt",
            "publish",
        ]
        assert record.swarm_model.startswith("no aggregate to adopt (no peer updates arrived)"), record.swarm_model
        assert record.metric == M and record.kept in ("local", "current") and not record.accepted
        assert record.reason.startswith("no peer updates arrived; kept the ")
        assert record.swarm_gain == pytest.approx(record.kept_metrics[M] - record.local_only[M], abs=1e-6)
        assert record.swarm_gain_error is not None and 0 < record.swarm_gain_error < 0.2, record.swarm_gain_error
    assert shadow.read_bytes() != saved, "the local-only model did not train again after the restart"
    assert [w.shape for w in decode(saved)] == [w.shape for w in bank.good.weights]
    # the shadow started from the untrained model, not from the cart's trained one, which is ahead of it
    assert first.swarm_gain > 0, first


def test_old_round_documents_still_read(tmp_path):
    store = open_store(tmp_path, catalogue=CATALOGUE)
    try:
        old = {
            "_id": f"{NODE}:000000",
            "node_id": NODE,
            "round": 0,
            "task": "recommend",
            "aggregator": "fedavg",
            "started": "2026-01-01T00:00:00Z",
            "finished": "2026-01-01T00:00:05Z",
            "local": {"accuracy": 0.3},
            "aggregated": {"accuracy": 0.31},
            "accepted": True,
            "reason": "aggregate of 3 updates",
            "model_version": 1,
        }
        store.put("rounds", old)
        (record,) = recent_rounds(store)
        assert (record.swarm_gain, record.local_only, record.kept, record.best_version) == (None, {}, "", None)
        assert best_version(store, "recommend") is None
        log_round(store, record.model_copy(update={"round": 1, "best_version": "recommend-v000002"}))
        log_round(store, record.model_copy(update={"round": 2}))
        assert best_version(store, "recommend") == "recommend-v000002", "a round without one does not forget it"
        assert best_version(store, "iot-anomaly") is None
    finally:
        store.close()


@pytest.mark.slow
async def test_swarm_gain_with_peers_is_recorded_every_round(tmp_path):
    async with swarm(tmp_path, carts=3, rows=400, local_epochs=2) as s:
        records: list[RoundRecord] = []
        for _ in range(3):
            records += await run_round(s.nodes)
    for record in records:
        assert record.local_only and record.kept and record.best_version, record
        assert record.swarm_gain == pytest.approx(record.kept_metrics[M] - record.local_only[M], abs=1e-6)
        assert record.swarm_gain_error is not None and record.swarm_gain_error < 0.2, record
    gains = [(r.node_id[:6], r.round, r.kept, r.swarm_gain, r.swarm_gain_error) for r in records]
    log.warning("swarm gains (cart, round, kept, gain, its standard error): %s", gains)


# ---------------------------------------------------------------- the swarm model (swarm_model.py)


@pytest.mark.parametrize(
    ("aggregate", "previous", "rows", "adopted"),
    [
        ({"accuracy": 0.40}, {"accuracy": 0.42}, 0, True),  # a little below: what non-IID data does
        ({"accuracy": 0.36}, {"accuracy": 0.42}, 0, False),  # more than the tolerance below: poisoned, say
        ({"accuracy": 0.36}, {"accuracy": 0.42}, 60, True),  # within tolerance and one standard error of 60 rows
        ({"accuracy": 0.10}, {"accuracy": 0.42}, 60, False),
        ({"accuracy": 0.30}, {}, 0, True),  # nothing scored to compare with
        ({}, {"accuracy": 0.42}, 0, False),  # no held-out rows: nothing to judge it on
    ],
)
def test_an_aggregate_is_adopted_within_the_margin_of_the_swarm_model_it_replaces(aggregate, previous, rows, adopted):
    verdict, reason = swarm_model.judge(aggregate, previous, "accuracy", True, TOLERANCE, rows)
    assert verdict is adopted, reason
    assert reason.startswith("adopted") is adopted


@pytest.mark.parametrize(
    ("received", "expected"),
    [
        ({"a": 0.30, "b": 0.10, "c": 0.20}, (0.20, "the median peer update", False)),
        ({"a": 0.30, "b": 0.10, "c": 0.20, "d": 0.40}, (0.20, "the median peer update", False)),  # the lower median
        ({"a": 0.30, "b": None}, (0.30, "the median peer update", False)),  # an update with no score is not counted
        ({}, (0.50, "the model kept this round", True)),  # no update to judge against (secure aggregation)
    ],
)
def test_a_first_aggregate_is_judged_against_the_median_peer_update(received, expected):
    metrics = {peer: ({} if value is None else {M: value}) for peer, value in received.items()}
    ctx = RoundContext(cast(Any, SimpleNamespace(task=TASK)), RoundSettings(), 1)
    ctx.received, ctx.kept_metrics = metrics, {M: 0.50}
    against = swarm_model.first_yardstick(ctx)
    assert (against.metrics[M], against.named, against.margin) == expected


def swarm_scripted(script: Script) -> Workflow:
    return Workflow(Scripted(script), Evaluate(), LocalOnly(), Decide(), swarm_model.Adopt())


async def test_an_aggregate_not_kept_is_still_the_swarm_model_the_next_round_trains_from(bank, cart):
    local, swarm = bank.good, bank.near(bank.good.score - 0.05)
    aggregate = bank.near(bank.good.score - bank.margin - 0.03)
    assert swarm.score - bank.margin <= aggregate.score < local.score - bank.margin, "the scores do not split"
    made = cart(swarm.weights)
    script = Script(deque([(None, swarm.weights), (local.weights, aggregate.weights)]))
    engine = made.engine(swarm_scripted(script))
    first = await engine.run_round()
    assert first.kept == "aggregate" and first.swarm_model.startswith("adopted"), first.swarm_model
    assert first.swarm_metrics == first.aggregated, "the round log does not score the swarm model it adopted"
    record = await engine.run_round()
    assert (record.kept, record.accepted) == ("local", False), record.reason
    assert record.swarm_model.startswith("adopted the aggregate"), record.swarm_model
    assert record.swarm_metrics == record.aggregated != record.kept_metrics, "served and trained-from look alike"
    assert _same(engine.swarm, aggregate.weights)

    started_from: list[Weights] = []
    engine.learner.train = lambda weights, *args: started_from.append(weights) or weights  # type: ignore[method-assign]
    ctx = RoundContext(engine, round_settings.load(made.store), record.round + 1)
    await Train(offer=False).run(ctx)
    assert started_from and started_from[0] is engine.swarm, "TRAIN did not start from the swarm model"

    made.restart()
    assert _same(made.engine(swarm_scripted(Script())).swarm, aggregate.weights), "the swarm model did not persist"


@pytest.mark.parametrize(
    ("first_round", "peers"),
    [(False, False), (True, False), (True, True)],
    ids=["trained", "first-round", "first-round-with-honest-peers"],
)
async def test_a_poisoned_aggregate_is_neither_kept_nor_trained_from(bank, cart, first_round, peers):
    """In a first round the model the round starts from is the untrained one, which a poisoned aggregate can match:
    the yardstick before any adoption is the median peer update, or without one the model DECIDE kept (here the
    fresh local one)."""
    poisoned, untrained = bank.models[-2], bank.models[-1]  # the untrained end of the line: far below the margin
    made = cart(untrained.weights if first_round else bank.good.weights)
    local = bank.good.weights if first_round else None
    honest = [bank.near(bank.good.score - d).weights for d in (0.02, 0.05, 0.08)] if peers else []
    engine = made.engine(swarm_scripted(Script(deque([(local, poisoned.weights)]), honest)))
    record = await engine.run_round()
    assert not record.accepted and record.kept == ("local" if first_round else "current"), record.reason
    assert "the swarm model stays" in record.swarm_model, record.swarm_model
    assert ("the median peer update" in record.swarm_model) is peers, record.swarm_model
    assert engine.swarm is None, "the poisoned aggregate became the swarm model"
    assert record.swarm_metrics == {}, "a score for a swarm model the cart does not have"
    assert not swarm_model.path(engine.models, TASK.name).exists()


async def test_a_cart_unlike_its_peers_adopts_an_aggregate_that_holds_up_against_their_updates(bank, cart):
    """A store unlike the others: its own model beats every aggregate on its rows by more than the margin, and so do
    the peers' updates. It serves its own model but trains from the aggregate, or it would learn alone forever and
    offer its peers that model every round."""
    peers = [bank.near(bank.good.score - bank.margin - d) for d in (0.06, 0.09, 0.12)]
    aggregate = bank.near(peers[1].score + 0.01)
    assert aggregate.score < bank.good.score - bank.margin, "the aggregate is not far below the cart's own model"
    made = cart(bank.models[-1].weights)  # untrained: the first round
    script = Script(deque([(bank.good.weights, aggregate.weights)]), [p.weights for p in peers])
    engine = made.engine(swarm_scripted(script))
    record = await engine.run_round()
    assert (record.kept, record.accepted) == ("local", False), record.reason
    assert record.swarm_model.startswith("adopted the aggregate"), record.swarm_model
    assert "not below the median peer update" in record.swarm_model, record.swarm_model
    assert _same(engine.swarm, aggregate.weights), "the cart does not train from the swarm's aggregate"


@pytest.mark.parametrize("content", [None, b"not weights"], ids=["missing", "unreadable"])
def test_a_swarm_or_local_only_file_that_cannot_be_read_starts_that_model_afresh(tmp_path, caplog, content):
    file = tmp_path / "recommend-swarm.weights"
    if content is not None:
        file.write_bytes(content)
    assert read_weights_file(file, "swarm model") is None
    assert swarm_model.load(file, [np.zeros(2)]) is None
    assert ("unreadable" in caplog.text) is (content is not None), caplog.text


def test_a_saved_swarm_model_loads_only_into_its_own_layout(tmp_path):
    file, weights = tmp_path / "recommend-swarm.weights", [np.arange(3, dtype=np.float32)]
    save_weights_file(file, weights)
    assert _same(swarm_model.load(file, [np.zeros(3, np.float32)]), weights)
    assert swarm_model.load(file, [np.zeros(4, np.float32)]) is None, "a model of another layout was trained from"


def _same(weights: Weights | None, expected: Weights) -> bool:
    return weights is not None and all(np.array_equal(a, b) for a, b in zip(weights, expected, strict=True))
