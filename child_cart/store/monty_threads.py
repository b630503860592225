"""One montydb document encoding at a time in a process (a workaround, in this module only).

montydb without the bson package (how our embedded stores were created, so it stays)
encodes a document as JSON and checks every key with `ast.literal_eval`. CPython 3.11
keeps the AST converter's recursion depth per interpreter, not per thread, so two
threads encoding at once can fail with "SystemError: AST constructor recursion depth
mismatch". One cart writes from one thread at a time, but an in-process swarm (`fedcart
simulate`, the tests) runs many carts' store writes on worker threads of one process:
a round's log write failed that way once in a full test run. `serialise()` wraps the
encoder in a process-wide lock; the encoding is a small part of a write (SQLite's
sync is the rest), so writes to different stores still overlap where it costs.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

from montydb.types import _nobson

ENCODING = threading.Lock()
"""Held while montydb encodes a document."""


def serialise() -> None:
    """Make montydb's JSON encoder take `ENCODING` (idempotent): on the class, for sessions montydb starts later,
    and on its active codec if it runs without bson already."""
    encode = _nobson.NoBSON.document_encode
    if getattr(encode, "one_at_a_time", False):
        return
    unlocked = encode.__func__

    def one_at_a_time(cls: type, doc: Any, *args: Any, **kwargs: Any) -> bytes:
        with ENCODING:
            return bytes(unlocked(cls, doc, *args, **kwargs))

    one_at_a_time.one_at_a_time = True  # type: ignore[attr-defined]
    _nobson.NoBSON.document_encode = classmethod(one_at_a_time)
    codec = sys.modules.get("montydb.types.bson")
    if codec is not None and codec.__dict__.get("bson_used") is False:
        codec.document_encode = _nobson.NoBSON.document_encode  # type: ignore[attr-defined]
