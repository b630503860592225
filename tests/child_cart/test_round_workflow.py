"""The round as a workflow: a new phase plugs in without an edit of the engine.

The end-to-end test runs real carts (real bridge, real Keras) whose engines get
today's round plus one extra phase after AGGREGATE, a no-op stand-in for a local
adaptation step, and checks that it ran in its place and is timed and logged.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from child_cart.node import CartNode
from child_cart.rounds.engine import RoundEngine
from child_cart.rounds.phases import DEFAULT_WORKFLOW
from child_cart.rounds.workflow import Phase, RoundContext, RoundPhase, Workflow
from fedcart.inprocess import run_round
from tests.rounds.swarmkit import swarm

BUILT_IN = ["train", "exchange", "aggregate", "evaluate", "local_only", "decide", "adopt", "publish"]
WITH_ADAPT = ["train", "exchange", "aggregate", "adapt", "evaluate", "local_only", "decide", "adopt", "publish"]


@dataclass
class Seen:
    """What the adaptation phase found in the context when it ran."""

    node_id: str
    engine_phase: str | None
    had_aggregate: bool
    aggregate_scored: bool


class LocalAdaptation(RoundPhase):
    """A no-op personalisation step that records what it saw (a real phase would keep no state)."""

    name = "adapt"

    def __init__(self) -> None:
        self.seen: list[Seen] = []

    async def run(self, ctx: RoundContext) -> None:
        self.seen.append(
            Seen(ctx.engine.node_id, ctx.engine.phase, ctx.aggregated is not None, bool(ctx.aggregated_metrics))
        )


def adapting_node(adapt: LocalAdaptation):
    """A CartNode whose engine runs today's round with `adapt` after AGGREGATE, passed in through the constructor."""

    def make(settings, **options) -> CartNode:
        node = CartNode(settings, **options)
        workflow = DEFAULT_WORKFLOW.inserted_after(Phase.AGGREGATE, adapt)
        node.engine = RoundEngine(
            node.store, node.models, node.learner, node.exchange, node.client, node.bus, workflow=workflow
        )
        return node

    return make


class Noop(RoundPhase):
    name = Phase.TRAIN

    async def run(self, ctx: RoundContext) -> None:
        return None


def test_default_workflow_is_todays_round():
    assert DEFAULT_WORKFLOW.names == BUILT_IN == [p.value for p in Phase]
    assert repr(DEFAULT_WORKFLOW) == f"Workflow({' -> '.join(BUILT_IN)})"


def test_workflows_are_built_not_edited():
    adapt = LocalAdaptation()
    longer = DEFAULT_WORKFLOW.inserted_after(Phase.AGGREGATE, adapt)
    assert longer.names == WITH_ADAPT
    assert DEFAULT_WORKFLOW.names == BUILT_IN, "the shared default must not change"
    swapped = DEFAULT_WORKFLOW.replaced(Phase.TRAIN, Noop())
    assert swapped.names == BUILT_IN and next(iter(swapped)).__class__ is Noop


def test_workflow_refuses_duplicate_and_unknown_phase_names():
    with pytest.raises(ValueError, match="unique.*train"):
        Workflow(*DEFAULT_WORKFLOW, Noop())
    with pytest.raises(KeyError, match="no phase 'adapt'"):
        DEFAULT_WORKFLOW.inserted_after("adapt", Noop())


@pytest.mark.slow
async def test_a_new_phase_runs_in_its_place_and_is_timed(tmp_path):
    adapt = LocalAdaptation()
    async with swarm(tmp_path, carts=2, rows=200, make_node=adapting_node(adapt), local_epochs=1) as s:
        records = await run_round(s.nodes)
    assert sorted(seen.node_id for seen in adapt.seen) == sorted(node.node_id for node in s.nodes)
    for seen in adapt.seen:
        assert seen.engine_phase == "adapt", "the engine names the phase it is running"
        assert seen.had_aggregate and not seen.aggregate_scored, "adapt runs after AGGREGATE and before EVALUATE"
    for record in records:
        assert list(record.timings) == WITH_ADAPT
        assert record.timings["adapt"] >= 0
        assert len(record.peers_answered) == 1, record.skipped
        assert record.aggregated and record.model_version is not None
