"""RecentKeys: the keys of what ended lately (requests, unmaskings), so a late message is told from a stray one.

An honest peer's answer can arrive after the round that asked for it moved on;
a stranger's never answered anything of ours. Remembering the last few thousand
ended keys tells the two apart (a late one is logged at info, a stray one is a
warning) in bounded memory: the oldest key is forgotten first.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class RecentKeys(Generic[K]):
    """At most `limit` keys, the most recently added ones."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._keys: OrderedDict[K, None] = OrderedDict()

    def add(self, key: K) -> None:
        self._keys[key] = None
        self._keys.move_to_end(key)
        while len(self._keys) > self.limit:
            self._keys.popitem(last=False)

    def __contains__(self, key: object) -> bool:
        return key in self._keys
