"""The task registry: the one place a new model plugs in.

A factory per task name; `get_task(name, **options)` builds a fresh task
(options such as `catalogue` or `val_fraction` go to its constructor).
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from child_cart.tasks.base import Task
from child_cart.tasks.recommend import RecommendTask

log = logging.getLogger(__name__)

DEFAULT_TASK = "recommend"

_FACTORIES: dict[str, Callable[..., Task]] = {}


def register(name: str, factory: Callable[..., Task]) -> None:
    """Make a task available under `name`; registering a taken name is a mistake, so it raises."""
    if name in _FACTORIES:
        raise ValueError(f"task {name!r} is already registered")
    _FACTORIES[name] = factory
    log.debug("registered task %s", name)


def get_task(name: str = DEFAULT_TASK, **options: Any) -> Task:
    """A new instance of the named task."""
    try:
        factory = _FACTORIES[name]
    except KeyError:
        raise KeyError(f"unknown task {name!r}; known tasks: {', '.join(task_names())}") from None
    return factory(**options)


def task_names() -> list[str]:
    """Registered task names, sorted."""
    return sorted(_FACTORIES)


register(RecommendTask.name, RecommendTask)
