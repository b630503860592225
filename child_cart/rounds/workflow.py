"""The round as a workflow: typed phases that read and write one round context.

A round is an ordered list of phase objects; the engine runs them in order and
times each one. Another shape of round (a masked exchange, a local adaptation
step after aggregation) is a new `RoundPhase` placed in a new `Workflow`, never
an edit of the engine:

    DEFAULT_WORKFLOW.inserted_after(Phase.AGGREGATE, LocalAdaptation())
    DEFAULT_WORKFLOW.replaced(Phase.EXCHANGE, MaskedExchange())

p2pfl's stages and workflows are the model. Unlike its stages, which pick the
next stage themselves, ours stay a fixed list: every round of one workflow
runs the same phases, so their timings compare from round to round and cart
to cart.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from cartnet.messages import PeerInfo
from child_cart.aggregation import Update
from child_cart.models.versions import ModelVersion
from child_cart.rounds.roundlog import Metrics, PrivacyRecord
from child_cart.rounds.settings import RoundSettings

if TYPE_CHECKING:
    from child_cart.rounds.engine import RoundEngine
    from child_cart.rounds.secure import MaskedSum

Weights = list[np.ndarray]


class Phase(enum.StrEnum):
    """The built-in phases' names, which are the keys of a round's `timings`.

    A string enum, so a phase added later may use any other plain string as its
    name and still sit beside these in the same timings dict.
    """

    TRAIN = "train"
    EXCHANGE = "exchange"
    AGGREGATE = "aggregate"
    EVALUATE = "evaluate"
    LOCAL_ONLY = "local_only"
    DECIDE = "decide"
    ADOPT = "adopt"
    PUBLISH = "publish"


@dataclass
class RoundContext:
    """What one round's phases read and write, grouped by the phase that fills it in.

    Everything here lives for one round. What outlives a round (the current
    model, the learner, the exchange, the rows trained on so far) stays on the
    engine, reachable as `ctx.engine`.
    """

    engine: RoundEngine
    settings: RoundSettings
    number: int
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    timings: dict[str, float] = field(default_factory=dict)
    # TRAIN: this cart's fresh update (also what it offers peers) and its held-out metrics
    own: Update | None = None
    local_metrics: Metrics = field(default_factory=dict)
    trained: bool = False  # False when too few rows were new and the current model was offered untrained
    # PRIVATIZE (differential privacy on): what was shared, ε spent so far; `own` is then the privatized update
    privacy: PrivacyRecord | None = None
    # EXCHANGE: whom we asked, the updates that passed every check, who was skipped and why;
    # whose update requests we refused as not genuine (forged, replayed, unverifiable), and why
    asked: list[PeerInfo] = field(default_factory=list)
    peer_updates: list[Update] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)
    # EXCHANGE with secure aggregation on (`secure.py`): the survivors' unmasked weighted sum, or why there is none
    masked: MaskedSum | None = None
    # AGGREGATE: the combined weights, or why there are none
    aggregated: Weights | None = None
    aggregate_error: str = ""
    aggregation_notes: list[str] = field(default_factory=list)  # what the rule adapted (Krum's f lowered, ...)
    # PERSONALIZE: the aggregate as the swarm made it, before this cart fine-tuned `aggregated` on its own rows
    shared: Weights | None = None
    # EVALUATE: held-out metrics of every received update and of the aggregate
    received: dict[str, Metrics] = field(default_factory=dict)
    aggregated_metrics: Metrics = field(default_factory=dict)
    # LOCAL_ONLY: the cart's local-only shadow model (never sees a peer's weights) and its held-out metrics
    local_only: Weights | None = None
    local_only_metrics: Metrics = field(default_factory=dict)
    # DECIDE: the verdict, which candidate was kept, the model version it saved, the best so far, the swarm's gain
    accepted: bool = False
    reason: str = ""
    version: ModelVersion | None = None
    current_metrics: Metrics = field(default_factory=dict)
    kept: str = ""
    kept_metrics: Metrics = field(default_factory=dict)
    best_version: str | None = None
    best_metrics: Metrics = field(default_factory=dict)
    swarm_gain: float | None = None
    swarm_gain_error: float | None = None
    # ADOPT: what became of the swarm model, the one the next round trains from (`swarm_model.py`), and its score
    swarm_model: str = ""
    swarm_metrics: Metrics = field(default_factory=dict)

    @property
    def aggregator(self) -> str:
        """The task's own rule when its models need one (a forest cannot be averaged), else the settings'."""
        return self.engine.task.aggregator or self.settings.aggregator

    @property
    def local(self) -> Weights:
        """This round's local weights; a workflow without TRAIN before the reader is a programming error."""
        if self.own is None:
            raise RuntimeError("no local update in this round: the workflow needs a train phase before this one")
        return self.own.weights

    @property
    def updates(self) -> list[Update]:
        """Every update the round can aggregate: ours first, then the peers'."""
        return [self.own, *self.peer_updates] if self.own is not None else list(self.peer_updates)


class RoundPhase(ABC):
    """One job of a round, named by the key its timing is logged under.

    Phases keep no state of their own: one workflow object serves every
    engine of a process (the simulator runs many carts on one loop), so a
    phase reads and writes only the context and the engine behind it.
    """

    name: ClassVar[str]

    @abstractmethod
    async def run(self, ctx: RoundContext) -> None:
        """Do this phase's job, reading what earlier phases left in `ctx` and writing its own part."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class Workflow:
    """An ordered list of phases with distinct names (each name is one key of the round's timings).

    Immutable: `inserted_after` and `replaced` return a new workflow, so a
    shared one such as `DEFAULT_WORKFLOW` cannot change under a running engine.
    """

    def __init__(self, *phases: RoundPhase) -> None:
        names = [str(phase.name) for phase in phases]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"phase names must be unique, they key the round's timings: {', '.join(repeated)}")
        self._phases = phases

    def __iter__(self) -> Iterator[RoundPhase]:
        return iter(self._phases)

    def __len__(self) -> int:
        return len(self._phases)

    def __repr__(self) -> str:
        return f"Workflow({' -> '.join(self.names)})"

    @property
    def names(self) -> list[str]:
        return [str(phase.name) for phase in self._phases]

    def index(self, name: str) -> int:
        """Where the phase called `name` runs; KeyError naming the phases there are if none is."""
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(f"no phase {name!r} in {self!r}") from None

    def inserted_after(self, name: str, phase: RoundPhase) -> Workflow:
        """This workflow with `phase` running right after the phase called `name`."""
        at = self.index(name) + 1
        return Workflow(*self._phases[:at], phase, *self._phases[at:])

    def replaced(self, name: str, phase: RoundPhase) -> Workflow:
        """This workflow with the phase called `name` swapped for `phase`, in the same place."""
        at = self.index(name)
        return Workflow(*self._phases[:at], phase, *self._phases[at + 1 :])
