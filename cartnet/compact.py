"""The compact wire form of a control message: its JSON document in MessagePack, names and hex by number.

A round's control messages were most of its bytes for a small model: around each
1.1 KB update copy went a 615-byte signed manifest, a 384-byte signed request and
274 bytes of want and done, as JSON with field names spelled out, ids in hex and
signatures in base64. This form keeps the document (the same objects and fields,
validated by the same schemas in `cartnet.messages`) and changes only its bytes:

- a field name, message type or enum value of the schemas (and a transfer
  payload's meta key or purpose) is an index into `NAMES` (an int as a map key,
  extension 2 as a value), not its text;
- a lowercase hex string of 16 bytes or more (node ids, transfer ids, digests)
  travels as its bytes (extension 1), and comes back as the same hex;
- binary fields (keys, signatures, sealed shares) travel as raw bytes, not base64.

Every mapping is exact, so a decoded message equals the one encoded and
`messages.signed_bytes` (canonical JSON of the fields) is the same on both ends:
signatures do not depend on this form. The cost is that both ends must share
`NAMES`, which follows from the schemas: a node of another release that changed a
schema could not have read the other's messages anyway (`extra="forbid"`).

`decode` is bounded like the JSON form's: at most `MAX_CONTROL_BYTES`, at most
`MAX_DEPTH` nested arrays and maps, and for any input it returns a message or
raises `MessageError`, nothing else.
"""

from __future__ import annotations

import re
import types
from collections.abc import Iterator
from typing import Any, Literal, Union, get_args, get_origin

import msgpack
from pydantic import BaseModel

from cartnet import messages, payloads
from cartnet.messages import MAX_CONTROL_BYTES, MAX_DEPTH, AnyMessage, Message, MessageError

HEX, NAME = 1, 2
"""MessagePack extension types: a hex string as its bytes; an index into `NAMES` as one byte."""
_HEX_TEXT = re.compile(r"(?:[0-9a-f]{2}){16,}")


def _models(model: type[BaseModel]) -> Iterator[type[BaseModel]]:
    """`model` and every model its fields nest, depth first."""
    yield model
    for field in model.model_fields.values():
        yield from _nested(field.annotation)


def _nested(annotation: Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield from _models(annotation)
    elif get_origin(annotation) in (list, dict, Union, types.UnionType) or hasattr(annotation, "__metadata__"):
        for arg in get_args(annotation):
            yield from _nested(arg)


def _literals(annotation: Any) -> Iterator[str]:
    if get_origin(annotation) is Literal:
        yield from (value for value in get_args(annotation) if isinstance(value, str))
    for arg in get_args(annotation):
        yield from _literals(arg)


def _names() -> tuple[str, ...]:
    """Every field name, message type and enum text of the control messages and of the transfer payloads (a
    manifest's meta keys and purposes), sorted: the same on every node."""
    schemas = {nested for cls in (*messages.MESSAGE_CLASSES, *payloads.KINDS) for nested in _models(cls)}
    names = {name for schema in schemas for name in schema.model_fields}
    names |= {
        text for schema in schemas for field in schema.model_fields.values() for text in _literals(field.annotation)
    }
    return tuple(sorted(names | {kind.purpose for kind in payloads.KINDS}))


NAMES = _names()
_INDEX = {name: at for at, name in enumerate(NAMES)}
assert len(NAMES) <= 256, "a NAME extension holds one byte"


def encode(message: Message) -> bytes:
    """The compact form of `message`."""
    return dumps(message.model_dump(mode="python"))


def dumps(document: Any) -> bytes:
    """The compact form of any JSON-like document (tests forge bad messages with it); MessageError when too big."""
    try:
        data: bytes = msgpack.packb(_shrink(document), use_bin_type=True)
    except (OverflowError, TypeError, ValueError) as exc:
        raise MessageError("message", f"cannot be encoded: {exc}") from None
    if len(data) > MAX_CONTROL_BYTES:
        raise MessageError("message", f"{len(data)} bytes exceeds the {MAX_CONTROL_BYTES}-byte limit")
    return data


def _shrink(value: Any) -> Any:
    if isinstance(value, dict):
        return {_INDEX.get(key, key): _shrink(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_shrink(item) for item in value]
    if isinstance(value, str):
        if (at := _INDEX.get(value)) is not None:
            return msgpack.ExtType(NAME, bytes((at,)))
        if _HEX_TEXT.fullmatch(value):
            return msgpack.ExtType(HEX, bytes.fromhex(value))
    return value


def decode(data: bytes | bytearray | memoryview) -> AnyMessage:
    """Parse and validate one compact control message; raises MessageError (and only that) naming what is wrong."""
    size = data.nbytes if isinstance(data, memoryview) else len(data)
    if size > MAX_CONTROL_BYTES:
        raise MessageError("message", f"{size} bytes exceeds the {MAX_CONTROL_BYTES}-byte limit")
    try:
        document = msgpack.unpackb(data, raw=False, strict_map_key=False, ext_hook=_extension)
    except MessageError:
        raise
    except msgpack.StackError:
        raise MessageError("message", f"nested more than {MAX_DEPTH} levels deep") from None
    except Exception as exc:  # msgpack's ValueErrors (truncated, extra data), bad UTF-8, an unhashable key
        raise MessageError("message", f"not MessagePack: {str(exc) or type(exc).__name__}") from None
    return messages.validate(_expand(document, 0))


def _extension(code: int, data: bytes) -> str:
    if code == HEX:
        return data.hex()
    if code == NAME and len(data) == 1 and data[0] < len(NAMES):
        return NAMES[data[0]]
    raise MessageError("message", f"unknown extension {code} of {len(data)} bytes")


def _expand(value: Any, depth: int) -> Any:
    """Map keys back to names, refusing nesting deeper than MAX_DEPTH (so no input makes this recurse far)."""
    if isinstance(value, (dict, list)) and depth >= MAX_DEPTH:
        raise MessageError("message", f"nested more than {MAX_DEPTH} levels deep")
    if isinstance(value, list):
        return [_expand(item, depth + 1) for item in value]
    if isinstance(value, dict):
        return {_key(key): _expand(item, depth + 1) for key, item in value.items()}
    return value


def _key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, int) and not isinstance(key, bool) and 0 <= key < len(NAMES):
        return NAMES[key]
    raise MessageError("message", f"a map key must be a name or a name's index, not {key!r:.40}")
