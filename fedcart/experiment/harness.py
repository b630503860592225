"""`fedcart experiment`: one IoT detection task, three ways of training it, on the same data and epoch budget.

- federated:   N real `CartNode`s behind real bridges (127.0.0.1) run R rounds of
               the real protocol (train, encrypted exchange with k peers,
               aggregate, keep-or-reject), each cart on its own rows only;
- centralized: every cart's rows pooled on one learner, R x E epochs;
- local-only:  every cart trains on its own rows, R x E epochs, no exchange.

All three are judged on the same rows after every round: the union of the
carts' held-out rows, each row scored by the model that would score it in the
field (its own cart's model, calibrated on that cart's held-out benign rows,
for federated and local-only; the one central model, calibrated on the pooled
calibration rows, for centralized). Metrics are then counted per sample over
that whole set. Data are the synthetic fleets (`child_cart.tasks.iot`), or a
real data set's CSV files dealt out to carts by device.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cartnet.identity import Identity
from child_cart.node import CartNode
from child_cart.rounds.learner import KERAS_LOCK, Learner
from child_cart.rounds.roundlog import RoundRecord
from child_cart.settings import CartSettings
from child_cart.synth import traffic as synth_traffic
from child_cart.synth import weather as synth_weather
from child_cart.tasks import Dataset, get_task
from child_cart.tasks.iot import loaders, partition
from child_cart.tasks.iot.detector import DetectionTask
from child_cart.tasks.iot.metrics import Detection, detection_metrics
from child_cart.tasks.iot.rows import TRAFFIC, fill_store
from fedcart import inprocess
from fedcart.experiment.resources import CodecProfile, Meter, Usage, profile_codec

log = logging.getLogger(__name__)

SCENARIOS = ("federated", "centralized", "local")
FORMATS = ("nbaiot", "edge-iiotset", "ton-iot")
FLOAT_BYTES = 4


@dataclass(frozen=True)
class ExperimentConfig:
    """What to run; every scenario gets the same rows, rounds and local epochs per round."""

    task: str = "iot-anomaly"
    carts: int = 9
    rounds: int = 5
    epochs: int = 2
    rows_per_cart: int = 600
    scenarios: tuple[str, ...] = SCENARIOS
    aggregator: str = "fedavg"
    k: int = 3
    bridges: int = 2
    seed: int = 0
    data: Path | None = None
    data_format: str | None = None
    limit: int | None = None
    energy: bool = True
    out_dir: Path = Path("reports/experiment")


@dataclass
class RoundResult:
    """One scenario after one round, judged on the whole held-out set."""

    scenario: str
    round: int
    metrics: dict[str, float]
    threshold: float
    usage: Usage
    bytes_sent: int = 0
    bytes_received: int = 0
    accepted: int | None = None


@dataclass
class NodeRound:
    """One federated cart in one round: what its round log says, plus its update's codec profile."""

    round: int
    cart: int
    record: RoundRecord
    codec: CodecProfile


@dataclass
class ScenarioResult:
    """Everything a scenario produced: per-round results, its final per-sample detection, its cost."""

    name: str
    rounds: list[RoundResult] = field(default_factory=list)
    nodes: list[NodeRound] = field(default_factory=list)
    detection: Detection | None = None
    thresholds: list[float] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    bytes_sent: int = 0
    bytes_received: int = 0

    @property
    def final(self) -> RoundResult:
        """The result after the last round (what the summary reports)."""
        return self.rounds[-1]


@dataclass
class Fleet:
    """The task and each cart's rows and tensors (the same for every scenario)."""

    task: DetectionTask
    data: list[list[dict]]
    datasets: list[Dataset]
    settings: CartSettings

    @functools.cached_property
    def pooled(self) -> Dataset:
        """Every cart's rows as one data set (the centralized scenario's); its held-out rows are the carts' held-out rows."""
        return self.task.make_dataset([row for rows in self.data for row in rows])


class Judge:
    """Scores weights on a cart's held-out rows with that cart's own calibration, on one reusable model."""

    def __init__(self, task: DetectionTask) -> None:
        self.task = task
        with KERAS_LOCK:
            self.model = task.build_model(seed=0)

    def detect(self, weights: list[np.ndarray], dataset: Dataset) -> tuple[Detection, list[float]]:
        """(per-sample detection on the held-out rows, the decision thresholds used)."""
        with KERAS_LOCK:
            self.model.set_weights(weights)
            self.task.calibrate(self.model, dataset)
            return self.task.detect(self.model, dataset.x_val, dataset.y_val), self.task.decision_thresholds(self.model)

    def fleet(self, weights: list[list[np.ndarray]], datasets: list[Dataset]) -> tuple[Detection, list[float]]:
        """Each cart's held-out rows scored by its own weights, joined into one evaluation set."""
        judged = [self.detect(w, d) for w, d in zip(weights, datasets)]
        return Detection.concat([d for d, _ in judged]), [t for _, thresholds in judged for t in thresholds]


def load_fleet(config: ExperimentConfig) -> Fleet:
    """The carts' rows (synthetic or read from CSV) and the task configured for them (IOT_* environment variables)."""
    if config.data is None:
        settings = CartSettings(_env_file=None)
        task = _detection_task(config.task, settings)
        generate = synth_traffic.generate if task.schema == TRAFFIC else synth_weather.generate
        data = generate(config.rows_per_cart, config.carts, config.seed)
    else:
        data, features = _from_csv(config, config.data)
        settings = (
            CartSettings(_env_file=None, iot_anomaly_features=features) if features else CartSettings(_env_file=None)
        )
        task = _detection_task(config.task, settings)
    datasets = [task.make_dataset(rows) for rows in data]
    empty = [i for i, d in enumerate(datasets) if len(d.x_train) == 0 or len(d.x_val) == 0]
    if empty:
        raise ValueError(f"carts {empty} have no training or no held-out rows: use more rows per cart or fewer carts")
    return Fleet(task, data, datasets, settings)


def _detection_task(name: str, settings: CartSettings) -> DetectionTask:
    task = get_task(name, settings)
    if not isinstance(task, DetectionTask):
        raise ValueError(f"task {name!r} is not an IoT detection task (use `fedcart simulate` for it)")
    return task


def _from_csv(config: ExperimentConfig, root: Path) -> tuple[list[list[dict]], int | None]:
    """Rows of the real data set at `root` dealt to carts by device, and the feature count when the format fixes it from the file."""
    features = None
    if config.data_format == "nbaiot":
        rows = loaders.load_nbaiot(root, config.limit)
    elif config.data_format == "edge-iiotset":
        rows, names = loaders.load_edge_iiotset(root, config.limit)
        features = len(names)
    elif config.data_format == "ton-iot":
        rows = loaders.load_ton_iot_weather(root, config.limit)
    else:
        raise ValueError(f"--format must be one of {', '.join(FORMATS)} with --data")
    return partition.by_device(rows, config.carts), features


# --- scenarios ---------------------------------------------------------------------------


def run_centralized(config: ExperimentConfig, fleet: Fleet, judge: Judge, tick: Callable[[], None]) -> ScenarioResult:
    """One learner on all rows; after each round of E epochs, judged on the pooled held-out rows."""
    result = ScenarioResult("centralized")
    learner = Learner(fleet.task, seed=config.seed, batch_size=fleet.settings.train_batch_size)
    learner.load_rows([row for rows in fleet.data for row in rows])
    weights = learner.initial_weights
    upload = _upload_bytes(fleet.datasets)
    for number in range(config.rounds):
        with Meter() as usage:
            weights = learner.train(weights, config.epochs)
        detection, thresholds = judge.detect(weights, fleet.pooled)
        sent = upload if number == 0 else 0
        result.rounds.append(_round(fleet.task, "centralized", number, detection, thresholds, usage, sent, sent))
        result.detection, result.thresholds = detection, thresholds
        tick()
    return result


def run_local(config: ExperimentConfig, fleet: Fleet, judge: Judge, tick: Callable[[], None]) -> ScenarioResult:
    """Every cart alone; after each round, each cart's held-out rows judged by its own model."""
    result = ScenarioResult("local")
    learners = [Learner(fleet.task, seed=config.seed, batch_size=fleet.settings.train_batch_size) for _ in fleet.data]
    for learner, rows in zip(learners, fleet.data):
        learner.load_rows(rows)
    weights = [learner.initial_weights for learner in learners]
    for number in range(config.rounds):
        with Meter() as usage:
            weights = [learner.train(w, config.epochs) for learner, w in zip(learners, weights)]
        detection, thresholds = judge.fleet(weights, fleet.datasets)
        result.rounds.append(_round(fleet.task, "local", number, detection, thresholds, usage))
        result.detection, result.thresholds = detection, thresholds
        tick()
    return result


async def run_federated(
    config: ExperimentConfig, fleet: Fleet, judge: Judge, tick: Callable[[], None]
) -> ScenarioResult:
    """Real carts behind real bridges; after each round, each cart's held-out rows judged by its kept model."""
    result = ScenarioResult("federated")
    options = {"aggregator": config.aggregator, "k": config.k, "local_epochs": config.epochs}
    with tempfile.TemporaryDirectory(prefix="fedcart-experiment-") as scratch:
        root = Path(scratch)
        bridges = await inprocess.start_bridges(config.bridges, root)
        nodes: list[CartNode] = []
        try:
            make_node = functools.partial(CartNode, task=fleet.task)
            nodes = await inprocess.start_carts(
                fleet.data, bridges, root, options, make_node=make_node, fill=fill_store
            )
            recipient = Identity.load_or_create(root / "codec-profile")
            for number in range(config.rounds):
                await _federated_round(number, nodes, fleet, judge, recipient, result)
                tick()
        finally:
            for node in nodes:
                await node.stop()
            for bridge in bridges:
                await bridge.stop()
    return result


async def _federated_round(
    number: int, nodes: list[CartNode], fleet: Fleet, judge: Judge, recipient: Identity, result: ScenarioResult
) -> None:
    with Meter() as usage:
        records = await inprocess.run_round(nodes)
    current = [node.engine.current for node in nodes]
    detection, thresholds = await asyncio.to_thread(judge.fleet, current, fleet.datasets)
    for cart, (node, record) in enumerate(zip(nodes, records)):
        codec = await asyncio.to_thread(profile_codec, node.engine.current, recipient, node.node_id)
        result.nodes.append(NodeRound(number, cart, record, codec))
    sent, received = sum(r.bytes_out for r in records), sum(r.bytes_in for r in records)
    accepted = sum(r.accepted for r in records)
    result.rounds.append(
        _round(fleet.task, "federated", number, detection, thresholds, usage, sent, received, accepted)
    )
    result.detection, result.thresholds = detection, thresholds


def _round(
    task: DetectionTask,
    scenario: str,
    number: int,
    detection: Detection,
    thresholds: list[float],
    usage: Usage,
    sent: int = 0,
    received: int = 0,
    accepted: int | None = None,
) -> RoundResult:
    metrics = {**detection_metrics(detection), "loss": task.loss(detection)}
    return RoundResult(scenario, number + 1, metrics, float(np.mean(thresholds)), usage, sent, received, accepted)


def _upload_bytes(datasets: list[Dataset]) -> int:
    """What centralizing costs on the wire: every cart's rows (features and labels) as float32, once."""
    return sum(
        (part.size if part is not None else 0) * FLOAT_BYTES
        for d in datasets
        for part in (d.x_train, d.y_train, d.x_val, d.y_val, d.x_calib, d.y_calib)
    )


def run_experiment(config: ExperimentConfig, fleet: Fleet, tick: Callable[[str], None]) -> dict[str, ScenarioResult]:
    """Run the asked scenarios in order (`tick(name)` after every round) and total their costs."""
    unknown = set(config.scenarios) - set(SCENARIOS)
    if unknown:
        raise ValueError(f"unknown scenario(s) {', '.join(sorted(unknown))}; known: {', '.join(SCENARIOS)}")
    judge = Judge(fleet.task)
    results: dict[str, ScenarioResult] = {}
    for name in config.scenarios:
        step = functools.partial(tick, name)
        with Meter(energy=config.energy) as usage:
            if name == "federated":
                result = asyncio.run(run_federated(config, fleet, judge, step))
            elif name == "centralized":
                result = run_centralized(config, fleet, judge, step)
            else:
                result = run_local(config, fleet, judge, step)
        results[name] = _totals(result, usage.energy_kwh)
    return results


def _totals(result: ScenarioResult, energy_kwh: float | None) -> ScenarioResult:
    """A scenario's cost summed over its rounds (time, CPU, bytes; peak RSS is the highest round's)."""
    result.usage = Usage(
        seconds=round(sum(r.usage.seconds for r in result.rounds), 3),
        cpu_seconds=round(sum(r.usage.cpu_seconds for r in result.rounds), 3),
        peak_rss_mb=max(r.usage.peak_rss_mb for r in result.rounds),
        energy_kwh=energy_kwh,
    )
    result.bytes_sent = sum(r.bytes_sent for r in result.rounds)
    result.bytes_received = sum(r.bytes_received for r in result.rounds)
    return result
