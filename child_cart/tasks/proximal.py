"""FedProx's proximal term (Li et al. 2020): training adds mu/2 * ||w - w_start||^2 to the task's loss.

`w_start` is what the model holds when training begins: in a round, the model
the cart starts from (the swarm's aggregate it kept, or its current model), so
local steps are pulled back toward it and carts with skewed rows drift less
apart between exchanges.

It works for any task that trains its Keras model with `model.fit` (its own
`Task.fit` included), because it is a weight regularizer on every trainable
variable: Keras adds regularizer losses to the training loss. The regularizers
are attached once per model and read two Keras variables each (the anchor and
mu), so the compiled training function is traced once and re-used: a round
only assigns the anchors and mu. With mu = 0 (the default, plain FedAvg) the
term is not attached at all.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from child_cart.tasks.base import import_keras

_ATTACHED = "_fedcart_proximal"


class _Proximal:
    """The regularizers of one model: an anchor per trainable variable and one shared mu."""

    def __init__(self, model: Any) -> None:
        keras = import_keras()
        self.mu = keras.Variable(0.0, trainable=False, name="fedprox_mu")
        self.anchors = []
        for variable in model.trainable_variables:
            anchor = keras.Variable(variable.numpy(), trainable=False, name="fedprox_anchor")
            self.anchors.append((variable, anchor))
            variable.regularizer = _Term(anchor, self.mu)
        model.train_function = None  # re-traced on the next fit, now with the proximal term in the loss

    def start(self, mu: float) -> None:
        for variable, anchor in self.anchors:
            anchor.assign(variable.value)
        self.mu.assign(mu)


class _Term:
    """mu/2 * ||w - anchor||^2 for one variable (a Keras regularizer is any callable of the variable)."""

    def __init__(self, anchor: Any, mu: Any) -> None:
        self.anchor, self.mu = anchor, mu

    def __call__(self, weights: Any) -> Any:
        ops = import_keras().ops
        return 0.5 * self.mu * ops.sum(ops.square(weights - self.anchor))


@contextlib.contextmanager
def proximal(model: Any, mu: float) -> Iterator[None]:
    """Within the block, `model.fit` minimises loss + mu/2 * ||w - w_at_entry||^2; mu = 0 changes nothing.

    Raises ValueError for a negative mu. A model with no trainable variables
    (a tree ensemble) is trained as it is: there is nothing to pull.
    """
    if mu < 0:
        raise ValueError(f"the proximal mu must be >= 0, got {mu}")
    term: _Proximal | None = getattr(model, _ATTACHED, None)
    if mu > 0 and term is None and getattr(model, "trainable_variables", None):
        term = _Proximal(model)
        setattr(model, _ATTACHED, term)
    if term is not None:
        term.start(mu)
    try:
        yield
    finally:
        if term is not None:
            term.mu.assign(0.0)
