"""Learning tasks: the Task interface, the registry, and the built-in tasks."""

from child_cart.tasks.base import Dataset, Task, import_keras
from child_cart.tasks.registry import DEFAULT_TASK, get_task, register, task_names

__all__ = ["DEFAULT_TASK", "Dataset", "Task", "get_task", "import_keras", "register", "task_names"]
