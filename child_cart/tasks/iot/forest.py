"""A random forest held as plain numpy arrays, so it travels like any other weight list.

scikit-learn grows the trees (all features tried at every split, since the
weather rows have only five; classes re-weighted per bootstrap sample, since
attacks are rare); this module copies each tree into fixed-size
arrays (a complete binary tree of the configured depth bounds the node count)
and predicts with them, so a forest goes through `cartnet.weights` (safetensors,
no pickle) and the encrypted transfers unchanged. The weight list is

    0 feature   int32   [trees, nodes]     feature tested at the node (-1: leaf)
    1 threshold float64 [trees, nodes]     go left when x[feature] <= threshold
    2 children  int32   [trees, nodes, 2]  left, right; a leaf points to itself
    3 value     float32 [trees, nodes]     attack share of the (class-balanced) training rows at the node
    4 vote      float32 [trees]            weight of the tree's vote

Leaves pointing to themselves make prediction a fixed number of steps (the
depth) for every tree at once. The forest's P(attack) is the vote-weighted mean
of its trees' leaves, which is what scikit-learn's forest computes when every
vote is equal; joining forests is concatenating these arrays.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

FEATURE, THRESHOLD, CHILDREN, VALUE, VOTE = range(5)
WEIGHT_COUNT = 5


def max_nodes(depth: int) -> int:
    """Nodes of a complete binary tree of `depth` levels below the root."""
    return 2 ** (depth + 1) - 1


class TreeForest:
    """A binary-classification forest with `get_weights`/`set_weights`, as the round machinery expects of a model."""

    def __init__(self, features: int, trees: int, depth: int, seed: int = 0, min_samples_leaf: int = 2) -> None:
        if trees < 1 or depth < 1 or features < 1:
            raise ValueError("a forest needs at least one feature and one tree of depth >= 1")
        self.features, self.trees, self.depth = features, trees, depth
        self.seed, self.min_samples_leaf = seed, min_samples_leaf
        self._weights = stumps(trees, depth)

    def get_weights(self) -> list[np.ndarray]:
        return [w.copy() for w in self._weights]

    def set_weights(self, weights: list[np.ndarray]) -> None:
        check_layout(weights, self.depth, self.features)
        self._weights = [np.asarray(w) for w in weights]

    @property
    def size(self) -> int:
        """How many trees vote (grows when forests are joined)."""
        return len(self._weights[VOTE])

    def fit(self, x: np.ndarray, y: np.ndarray) -> None:
        """Grow `trees` new trees on (x, y), replacing whatever trees the forest held."""
        from sklearn.ensemble import RandomForestClassifier

        grown = RandomForestClassifier(
            n_estimators=self.trees,
            max_depth=self.depth,
            min_samples_leaf=self.min_samples_leaf,
            max_features=None,
            class_weight="balanced_subsample",
            random_state=self.seed,
            n_jobs=1,
        ).fit(np.asarray(x, dtype=np.float32).reshape(-1, self.features), np.asarray(y, dtype=np.int64))
        self._weights = from_sklearn(grown, self.depth)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """P(attack) per row."""
        return predict(self._weights, x, self.depth)


def stumps(trees: int, depth: int) -> list[np.ndarray]:
    """An untrained forest: every tree a single leaf that says benign (P(attack) = 0)."""
    nodes = max_nodes(depth)
    children = np.broadcast_to(np.arange(nodes, dtype=np.int32)[None, :, None], (trees, nodes, 2)).copy()
    return [
        np.full((trees, nodes), -1, dtype=np.int32),
        np.zeros((trees, nodes), dtype=np.float64),
        children,
        np.zeros((trees, nodes), dtype=np.float32),
        np.full(trees, 1.0 / trees, dtype=np.float32),
    ]


def from_sklearn(forest: Any, depth: int) -> list[np.ndarray]:
    """Copy a fitted scikit-learn forest into the array layout (equal votes summing to 1).

    `forest` is a fitted `RandomForestClassifier`; scikit-learn ships no type information, hence Any.
    """
    estimators = forest.estimators_
    weights = stumps(len(estimators), depth)
    attack_column = list(forest.classes_).index(1) if 1 in forest.classes_ else None
    for t, estimator in enumerate(estimators):
        _copy_tree(estimator.tree_, attack_column, [w[t] for w in weights[:VOTE]])
    return weights


def _copy_tree(tree: Any, attack_column: int | None, into: list[np.ndarray]) -> None:
    feature, threshold, children, value = into
    n = tree.node_count
    if n > len(feature):
        raise ValueError(f"tree has {n} nodes, more than depth allows ({len(feature)})")
    leaf = tree.children_left[:n] < 0
    own = np.arange(n, dtype=np.int32)
    feature[:n] = np.where(leaf, -1, tree.feature[:n])
    threshold[:n] = np.where(leaf, 0.0, tree.threshold[:n])
    children[:n, 0] = np.where(leaf, own, tree.children_left[:n])
    children[:n, 1] = np.where(leaf, own, tree.children_right[:n])
    counts = tree.value[:n, 0, :]
    totals = counts.sum(axis=1)
    attack = counts[:, attack_column] if attack_column is not None else np.zeros(n)
    value[:n] = np.divide(attack, totals, out=np.zeros(n), where=totals > 0)


def predict(weights: list[np.ndarray], x: np.ndarray, depth: int) -> np.ndarray:
    """Vote-weighted P(attack) of every row, walking all trees `depth` steps at once."""
    feature, threshold, children, value, vote = weights
    rows = np.asarray(x, dtype=np.float32).astype(np.float64)
    trees = np.arange(len(vote))[:, None]
    samples = np.arange(len(rows))[None, :]
    node = np.zeros((len(vote), len(rows)), dtype=np.int64)
    for _ in range(depth):
        tested = np.maximum(feature[trees, node], 0)
        right = rows[samples, tested] > threshold[trees, node]
        node = children[trees, node, right.astype(np.int64)]
    leaves = value[trees, node].astype(np.float64)
    total = float(vote.sum())
    if total <= 0:
        raise ValueError("a forest whose votes sum to zero cannot predict")
    return (vote.astype(np.float64) @ leaves) / total


def check_layout(weights: list[np.ndarray], depth: int, features: int) -> None:
    """Refuse arrays that are not a forest of this depth over this many features (they would index out of bounds)."""
    if len(weights) != WEIGHT_COUNT:
        raise ValueError(f"a forest has {WEIGHT_COUNT} arrays, got {len(weights)}")
    trees, nodes = len(weights[VOTE]), max_nodes(depth)
    expected = [(trees, nodes), (trees, nodes), (trees, nodes, 2), (trees, nodes), (trees,)]
    for i, (array, shape) in enumerate(zip(weights, expected)):
        if tuple(np.shape(array)) != shape:
            raise ValueError(f"forest array {i} is {np.shape(array)}, expected {shape}")
    children = np.asarray(weights[CHILDREN])
    if children.size and (children.min() < 0 or children.max() >= nodes):
        raise ValueError("forest child index out of range")
    tested = np.asarray(weights[FEATURE])
    if tested.size and (tested.min() < -1 or tested.max() >= features):
        raise ValueError(f"forest tests a feature outside 0..{features - 1}")
    if np.any(np.asarray(weights[VOTE]) < 0):
        raise ValueError("forest votes must not be negative")
