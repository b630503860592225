"""Typed transfer metadata: one pydantic model per payload kind, shared by sender and receiver.

A transfer's manifest carries `meta`, a small flat dict of strings signed with
the rest of the manifest (`TransferManifest.meta`). What those strings mean
depends on the transfer's purpose, so each purpose has one model here: the
sender builds it and sends `to_meta()`, the receiver reads it back with
`from_meta(manifest.meta)`, which validates and raises `PayloadError` naming the
bad field. On the wire numbers travel as text and lists as compact JSON; keys a
model does not know are ignored, so a newer sender can add some.

The models describe the shape of the data. What a receiver is willing to act on
(size limits, value ranges) stays with the receiver: the bridge's `ModelMeta`,
the cart's update checks.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cartnet.quantize import Precision

TransferMeta = dict[str, str]
"""`meta` as it travels in a manifest."""
META_PIECE = 512
"""Longest meta value (`cartnet.messages.TransferManifest.meta`)."""
MAX_MANIFEST_TEXT = 30 * META_PIECE
"""Base64 of a signed model manifest, in at most 30 meta values (a manifest is about 2 KB of it)."""


class PayloadError(ValueError):
    """Transfer meta that does not fit its payload model; the message names the field."""


def describe(exc: ValidationError) -> str:
    """The first problem of a validation error, naming its field: `lacks 'version'`, `accuracy: ...`."""
    first = exc.errors()[0]
    field = ".".join(map(str, first["loc"]))
    if first["type"] == "missing":
        return f"lacks {field!r}"
    return f"{field}: {first['msg']}"


def _text(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (list, tuple)):
        return json.dumps(list(value), separators=(",", ":"))
    raise TypeError(f"cannot put {type(value).__name__} into transfer meta")


class Payload(BaseModel):
    """Base of every payload kind: `purpose` names the transfers it describes."""

    model_config = ConfigDict(frozen=True)

    purpose: ClassVar[str]

    def to_meta(self) -> TransferMeta:
        """The strings to send as the manifest's `meta` (fields left at None are left out)."""
        return {name: _text(value) for name, value in self if value is not None}

    @classmethod
    def from_meta(cls, meta: Mapping[str, str]) -> Self:
        """Validate a received manifest's `meta`; PayloadError names the first bad or missing field."""
        try:
            return cls.model_validate(meta)
        except ValidationError as exc:
            raise PayloadError(describe(exc)) from None


class ModelPublication(Payload):
    """A cart's TFLite model, uploaded to its bridge for phones (the blob is the model).

    All it carries is the cart's signed model manifest (`cartnet.phone_models`): its exact
    bytes as base64 and the signature over them. Meta values are short, so the base64 text
    travels cut into pieces, `manifest.0`, `manifest.1`, ..., joined again by `from_meta`.
    """

    purpose: ClassVar[str] = "model"

    manifest: Annotated[str, Field(min_length=1, max_length=MAX_MANIFEST_TEXT)]
    signature: Annotated[str, Field(min_length=1, max_length=128)]

    def to_meta(self) -> TransferMeta:
        pieces = [self.manifest[i : i + META_PIECE] for i in range(0, len(self.manifest), META_PIECE)]
        return {"signature": self.signature, **{f"manifest.{n}": piece for n, piece in enumerate(pieces)}}

    @classmethod
    def from_meta(cls, meta: Mapping[str, str]) -> Self:
        pieces: list[str] = []
        while f"manifest.{len(pieces)}" in meta:
            pieces.append(meta[f"manifest.{len(pieces)}"])
        fields = {"signature": meta.get("signature"), "manifest": "".join(pieces) or None}
        try:
            return cls.model_validate({name: value for name, value in fields.items() if value is not None})
        except ValidationError as exc:
            raise PayloadError(describe(exc)) from None


class WeightUpdate(Payload):
    """A cart's weights answering a peer's `UpdateRequest` (the blob is sealed for the requester)."""

    purpose: ClassVar[str] = "update"

    request_id: str
    samples: int
    task: str
    round: int
    precision: Precision = "float32"
    """How the weights were packed (`cartnet.quantize`); older carts send none: float32."""


class MaskedAnswer(Payload):
    """A cart's masked, fixed-point, sample-weighted update answering a `MaskedRequest` (secure aggregation).

    The blob (sealed for the requester) holds the masked uint32 vector and the commitments to its seeds;
    `samples` is the sender's claimed sample count, already clipped to the request's `sample_cap`, which it
    scaled its update by before masking; `signature` is base64 of its signature over the masked update's
    `cartnet.secagg.MaskedUpdate.signed_bytes`."""

    purpose: ClassVar[str] = "masked_update"

    request_id: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
    cohort_id: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
    samples: Annotated[int, Field(ge=1, le=1_000_000)]
    task: Annotated[str, Field(max_length=32)]
    round: Annotated[int, Field(ge=0)]
    signature: Annotated[str, Field(min_length=88, max_length=88)]


KINDS: tuple[type[Payload], ...] = (ModelPublication, WeightUpdate, MaskedAnswer)
"""Every payload kind: `cartnet.compact` sends their purposes, meta keys and enum texts by number."""
