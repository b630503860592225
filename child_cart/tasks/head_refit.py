"""Refit a softmax output layer on one cart's rows, pulled toward the swarm's: personalization that cannot overfit.

Personalizing by fine-tuning (a few Keras epochs on the cart's rows) moves
every weight with a fixed learning rate for a fixed number of steps: on a cart
of a few hundred rows one epoch is too much for some carts and too little for
others, and nothing on the cart tells which. Here only the output layer (the
head) moves, with the body's features fixed: multinomial logistic regression
on those features, plus a ridge pulling the head toward the swarm's head,

    mean cross-entropy(rows) + strength / 2 * ||head - swarm_head||^2.

That problem is convex, so L-BFGS solves it exactly and the answer depends on
nothing but the rows and the strength. The strength is chosen per cart by
k-fold cross-validation on its training rows (the held-out rows that score the
result are never seen): a cart whose shoppers are like the swarm's keeps the
swarm's head, one whose mix differs moves as far as its own rows support.
FedRep and FedPer personalize the same layer; Ditto pulls toward the global
model the same way. Measured at 20 carts x 300 purchases (`fedcart simulate`,
seeds 0-4): README, non-IID methods.

Logit offsets that are not weights (the recommender's penalty on categories
already in the basket) are passed in, so the fit scores the rows as the model
would. Limits: a head is a kernel and a bias over features of a few dozen
units; a few thousand rows and seven strengths x five folds take well under a
second on one core.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.optimize import minimize
from scipy.special import log_softmax

STRENGTHS = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)
"""The ridge strengths cross-validation picks from: from "the rows decide" to "stay at the swarm's head"."""
FOLDS = 5
MAX_ITERATIONS = 500


class Head(NamedTuple):
    """A dense softmax layer's weights: logits = features @ kernel + bias (+ offsets)."""

    kernel: np.ndarray
    bias: np.ndarray


class Rows(NamedTuple):
    """What the head sees of a cart's training rows: the body's features, the fixed logit offsets, the labels."""

    features: np.ndarray
    offsets: np.ndarray
    labels: np.ndarray

    def subset(self, index: np.ndarray) -> Rows:
        return Rows(self.features[index], self.offsets[index], self.labels[index])


def refit_head(rows: Rows, prior: Head, strengths: tuple[float, ...] = STRENGTHS, seed: int = 0) -> Head:
    """The head fitted to `rows`, pulled toward `prior` with the strength cross-validation picks.

    With too few rows to hold one out per fold (fewer than `FOLDS`) the prior is returned unchanged.
    """
    if len(rows.labels) < FOLDS:
        return prior
    strength = pick_strength(rows, prior, strengths, seed)
    return fit(rows, prior, strength)


def pick_strength(rows: Rows, prior: Head, strengths: tuple[float, ...], seed: int = 0) -> float:
    """The strength whose fits predict the left-out fold best (summed log-loss over `FOLDS` folds)."""
    folds = np.array_split(np.random.default_rng(seed).permutation(len(rows.labels)), FOLDS)
    losses = []
    for strength in strengths:
        total = 0.0
        for k, held in enumerate(folds):
            train = np.concatenate([f for j, f in enumerate(folds) if j != k])
            total += log_loss(fit(rows.subset(train), prior, strength), rows.subset(held))
        losses.append(total)
    return strengths[int(np.argmin(losses))]


def fit(rows: Rows, prior: Head, strength: float) -> Head:
    """The convex fit: mean cross-entropy plus strength / 2 * squared distance to `prior`, solved by L-BFGS."""
    features = rows.features.astype(np.float64)
    start = _flat(prior)
    shape = prior.kernel.shape

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        log_p = _log_probabilities(_unflat(theta, shape), features, rows.offsets)
        picked = np.arange(len(rows.labels)), rows.labels
        gradient = np.exp(log_p)
        gradient[picked] -= 1.0
        gradient /= len(rows.labels)
        pull = theta - start
        loss = -log_p[picked].mean() + 0.5 * strength * float(pull @ pull)
        return loss, np.concatenate([(features.T @ gradient).ravel(), gradient.sum(axis=0)]) + strength * pull

    solved = minimize(objective, start, jac=True, method="L-BFGS-B", options={"maxiter": MAX_ITERATIONS})
    head = _unflat(solved.x, shape)
    return Head(head.kernel.astype(prior.kernel.dtype), head.bias.astype(prior.bias.dtype))


def log_loss(head: Head, rows: Rows) -> float:
    """Summed cross-entropy of `head` on `rows`."""
    log_p = _log_probabilities(head, rows.features.astype(np.float64), rows.offsets)
    return float(-log_p[np.arange(len(rows.labels)), rows.labels].sum())


def _log_probabilities(head: Head, features: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    return log_softmax(features @ head.kernel + head.bias + offsets, axis=1)


def _flat(head: Head) -> np.ndarray:
    return np.concatenate([np.ravel(head.kernel), np.ravel(head.bias)]).astype(np.float64)


def _unflat(theta: np.ndarray, shape: tuple[int, ...]) -> Head:
    size = int(np.prod(shape))
    return Head(theta[:size].reshape(shape), theta[size:])
