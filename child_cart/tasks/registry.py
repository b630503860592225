"""The task registry: the one place a new model plugs in.

A factory per task name takes the cart's settings (or None for defaults)
and returns a fresh task, so each task reads the settings it cares about.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from child_cart.settings import CartSettings
from child_cart.tasks.base import Task
from child_cart.tasks.iot_anomaly import AnomalyTask
from child_cart.tasks.iot_intrusion import ForestIntrusionTask, IntrusionTask
from child_cart.tasks.recommend import RecommendTask

log = logging.getLogger(__name__)

DEFAULT_TASK = "recommend"

TaskFactory = Callable[[CartSettings | None], Task]

_FACTORIES: dict[str, TaskFactory] = {}


def register(name: str, factory: TaskFactory) -> None:
    """Make a task available under `name`; registering a taken name is a mistake, so it raises."""
    if name in _FACTORIES:
        raise ValueError(f"task {name!r} is already registered")
    _FACTORIES[name] = factory
    log.debug("registered task %s", name)


def get_task(name: str = DEFAULT_TASK, settings: CartSettings | None = None) -> Task:
    """A new instance of the named task, configured from `settings` (None: the task's defaults)."""
    try:
        factory = _FACTORIES[name]
    except KeyError:
        raise KeyError(f"unknown task {name!r}; known tasks: {', '.join(task_names())}") from None
    return factory(settings)


def task_names() -> list[str]:
    """Registered task names, sorted."""
    return sorted(_FACTORIES)


register(RecommendTask.name, RecommendTask.from_settings)
register(AnomalyTask.name, AnomalyTask.from_settings)
register(IntrusionTask.name, IntrusionTask.from_settings)
register(ForestIntrusionTask.name, ForestIntrusionTask.from_settings)
