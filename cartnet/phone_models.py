"""Signed phone models: what a cart signs when it publishes a TFLite model, what bridges and phones check.

A cart that publishes a model for phones signs a *model manifest* with its own Ed25519
key: the model's SHA-256 and size, task, version, round, held-out metrics, label lists,
the input and output signature LiteRT reads from the file, the publisher's node id and
its swarm certificate. The signature covers `MANIFEST_LABEL` followed by the exact
manifest bytes (canonical JSON: sorted keys, no spaces, ASCII), and those bytes travel
as they are, base64 in the upload's meta and in the bridge's `/models/latest.json`
(`manifest`): a verifier checks the signature over the bytes it was given and only
then parses them, so no second implementation has to re-create a canonical form
(Java on the phone re-creates only the certificate's, whose fields are fixed).

Believing a signed model (`verify`) needs nothing but the swarm's public key: the
certificate must be this swarm authority's, for a cart, current, not revoked; the
manifest must be signed by that certificate's key and name it as publisher; its
version (creation time in ms) may be at most `max_skew_ms` ahead of the verifier's
clock. Believing the bytes (`check_model`) adds their hash and size and LiteRT's view
of them: one float32 input and one float32 output with the declared shapes, one
output per category. LiteRT is imported on first use only (callers run it on a worker
thread), and TensorFlow never.

`PublishedModel` is the `/models/latest.json` document (the bridge writes it, phones and
the exporter's golden fixture read it); `pairing_uri` is what a phone is given (a QR
code) to trust a swarm: the bridge URL and the swarm's public key.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from cartnet.certificates import Certificate, CertificateError, RevocationList, SwarmKey, swarm_id_of
from cartnet.certificates import verify as verify_certificate
from cartnet.files import sha256_hex
from cartnet.identity import Identity, verify_signature
from cartnet.messages import Digest, Message, NodeId, SwarmId

MANIFEST_LABEL = b"fedcart-phone-model-v1|"
"""Signed before the manifest bytes, so a signature made for any other record never passes for a model's."""
MAX_MANIFEST_BYTES = 8192
"""A manifest is about 1.5 KB (the label lists are the bulk); anything near this is not one."""
MAX_VERSION = 2**53 - 1
"""Versions are Unix ms; JSON readers that hold numbers as doubles (the phone's) keep them exact up to here."""
DEFAULT_MAX_SKEW_MS = 5 * 60 * 1000
"""How far ahead of a verifier's clock a version may be (carts' clocks differ a little)."""
PAIRING_SCHEME = "fedcart"
"""`fedcart://pair?...`: what a phone scans to trust a swarm."""

Label = Annotated[str, Field(min_length=1, max_length=64)]
Task = Annotated[str, Field(pattern=r"^[a-z0-9_-]{1,32}$")]
MetricName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_@.-]{1,32}$")]
Finite = Annotated[float, Field(allow_inf_nan=False)]
Shape = Annotated[list[Annotated[int, Field(ge=-1, le=1 << 24)]], Field(min_length=1, max_length=4)]


class ModelRefused(ValueError):
    """A signed model (or its bytes) that must not be served or used; `code` is a fixed label, the message says why.

    Codes: malformed, not_canonical, wrong_swarm, publisher_mismatch, bad_signature, future_version,
    hash_mismatch, not_a_model, wrong_signature, and the certificate's own (expired, revoked, wrong_role, ...).
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _iso_time(value: str) -> str:
    datetime.fromisoformat(value)
    return value


def _distinct(values: list[str]) -> list[str]:
    if len(set(values)) != len(values):
        raise ValueError("lists a label twice")
    if any(not value.strip() for value in values):
        raise ValueError("holds a blank label")
    return values


Labels = Annotated[list[Label], AfterValidator(_distinct)]


class ModelManifest(Message):
    """What a publishing cart signs about one TFLite model (canonical JSON of this is what the signature covers)."""

    type: Literal["phone_model"] = "phone_model"
    swarm_id: SwarmId
    task: Task
    version: int = Field(ge=0, le=MAX_VERSION, description="Creation time in Unix ms: newer is larger swarm-wide")
    round: int = Field(ge=0, description="The publishing cart's round that accepted the model")
    sha256: Digest
    size: int = Field(ge=0)
    created: Annotated[str, Field(max_length=64), AfterValidator(_iso_time)]
    accuracy: Finite = Field(description="The task's primary held-out metric")
    metrics: Annotated[dict[MetricName, Finite], Field(max_length=16)] = {}
    profiles: Annotated[Labels, Field(max_length=64)]
    categories: Annotated[Labels, Field(min_length=1, max_length=256)]
    input_shape: Shape
    output_shape: Shape
    publisher: NodeId
    certificate: Certificate


def manifest_bytes(manifest: ModelManifest) -> bytes:
    """The one byte form of a manifest: what is signed, shipped and verified."""
    return json.dumps(manifest.model_dump(mode="json"), sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class SignedModel:
    """A manifest's exact bytes and the publisher's signature over `MANIFEST_LABEL` + those bytes."""

    manifest: bytes
    signature: bytes

    @property
    def manifest_b64(self) -> str:
        return base64.b64encode(self.manifest).decode()

    @property
    def signature_b64(self) -> str:
        return base64.b64encode(self.signature).decode()

    @classmethod
    def from_base64(cls, manifest: str, signature: str) -> SignedModel:
        """From the base64 text of a meta or a latest.json; ModelRefused('malformed') when it is not base64."""
        try:
            return cls(base64.b64decode(manifest, validate=True), base64.b64decode(signature, validate=True))
        except (binascii.Error, ValueError):
            raise ModelRefused("malformed", "model manifest or signature is not valid base64") from None


def sign(identity: Identity, manifest: ModelManifest) -> SignedModel:
    """The cart's signature over its manifest (the manifest must name this cart as publisher)."""
    if manifest.publisher != identity.node_id or manifest.certificate.public_key != identity.public_key:
        raise ValueError("a cart signs only manifests naming itself and its own certificate")
    data = manifest_bytes(manifest)
    return SignedModel(data, identity.sign(MANIFEST_LABEL + data))


def parse(data: bytes) -> ModelManifest:
    """The manifest in `data`, which must be its canonical form; ModelRefused otherwise (nothing is verified)."""
    if len(data) > MAX_MANIFEST_BYTES:
        raise ModelRefused("malformed", f"model manifest of {len(data)} bytes exceeds {MAX_MANIFEST_BYTES}")
    try:
        manifest = ModelManifest.model_validate_json(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "manifest"
        raise ModelRefused("malformed", f"malformed model manifest: {where}: {first['msg']}") from None
    if manifest_bytes(manifest) != data:
        raise ModelRefused("not_canonical", "model manifest is not in canonical form (sorted keys, compact, ASCII)")
    return manifest


def verify(
    signed: SignedModel,
    swarm_public_key: bytes,
    now: int,
    *,
    revocations: RevocationList | None = None,
    max_skew_ms: int = DEFAULT_MAX_SKEW_MS,
    publisher: str | None = None,
) -> ModelManifest:
    """The manifest, when a certified cart of this swarm signed it and its version is not ahead of `now`
    (Unix ms) by more than `max_skew_ms`; else ModelRefused saying what is wrong.

    `publisher`, when given, is the node id that must have published it (the uploading cart).
    """
    manifest = parse(signed.manifest)
    swarm_id = swarm_id_of(swarm_public_key)
    if manifest.swarm_id != swarm_id:
        raise ModelRefused("wrong_swarm", f"model is for swarm {manifest.swarm_id[:8]}, not this swarm {swarm_id[:8]}")
    cert = manifest.certificate
    try:
        verify_certificate(cert, swarm_public_key, "cart", now, revocations=revocations)
    except CertificateError as exc:
        raise ModelRefused(exc.code, f"publisher's {exc}") from None
    if manifest.publisher != cert.node_id:
        raise ModelRefused("publisher_mismatch", "model names a publisher other than its certificate's node")
    if publisher is not None and publisher != manifest.publisher:
        raise ModelRefused(
            "publisher_mismatch", f"model is published by {manifest.publisher[:8]}, not by uploader {publisher[:8]}"
        )
    if not verify_signature(cert.public_key, signed.signature, MANIFEST_LABEL + signed.manifest):
        raise ModelRefused("bad_signature", "bad model signature (not made by the publisher's certified key)")
    if manifest.version > now + max_skew_ms:
        raise ModelRefused(
            "future_version",
            f"version {manifest.version} is from the future (more than {max_skew_ms // 1000} s after {now})",
        )
    if manifest.output_shape[-1] != len(manifest.categories):
        raise ModelRefused(
            "wrong_signature",
            f"model declares {manifest.output_shape[-1]} outputs for {len(manifest.categories)} categories",
        )
    return manifest


# --- the bytes ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TensorSignature:
    """LiteRT's view of a model: each input's and output's (shape signature, dtype name)."""

    inputs: list[tuple[list[int], str]]
    outputs: list[tuple[list[int], str]]


def tflite_signature(data: bytes) -> TensorSignature:
    """Load `data` with LiteRT (imported here, on first use) and read its tensors; ModelRefused('not_a_model').

    Blocking and CPU-bound: call it on a worker thread. Never imports TensorFlow.
    """
    from ai_edge_litert.interpreter import Interpreter

    try:
        interpreter = Interpreter(model_content=bytes(data))
        interpreter.allocate_tensors()
        details = interpreter.get_input_details(), interpreter.get_output_details()
    except (ValueError, RuntimeError) as exc:
        raise ModelRefused("not_a_model", f"not a TFLite model LiteRT loads: {exc}") from None
    inputs, outputs = ([_tensor(d) for d in group] for group in details)
    return TensorSignature(inputs, outputs)


def _tensor(detail: dict[str, Any]) -> tuple[list[int], str]:
    shape = detail.get("shape_signature")
    if shape is None or len(shape) == 0:
        shape = detail["shape"]
    return [int(n) for n in shape], getattr(detail["dtype"], "__name__", str(detail["dtype"]))


def declared_shapes(signature: TensorSignature) -> tuple[list[int], list[int]]:
    """A phone model's (input shape, output shape): one float32 tensor each; ModelRefused otherwise."""
    if len(signature.inputs) != 1 or len(signature.outputs) != 1:
        raise ModelRefused(
            "wrong_signature",
            f"model has {len(signature.inputs)} inputs and {len(signature.outputs)} outputs, phones run 1 and 1",
        )
    (input_shape, input_type), (output_shape, output_type) = signature.inputs[0], signature.outputs[0]
    if (input_type, output_type) != ("float32", "float32"):
        raise ModelRefused("wrong_signature", f"model takes {input_type} and gives {output_type}, not float32")
    return input_shape, output_shape


def check_model(data: bytes, manifest: ModelManifest) -> None:
    """The bytes are the model `manifest` describes and LiteRT loads them with its declared signature;
    ModelRefused otherwise. Blocking (hashing, LiteRT): call it on a worker thread."""
    if len(data) != manifest.size:
        raise ModelRefused("hash_mismatch", f"model has {len(data)} bytes, its manifest says {manifest.size}")
    if sha256_hex(data) != manifest.sha256:
        raise ModelRefused("hash_mismatch", "model bytes do not match the SHA-256 in their signed manifest")
    shapes = declared_shapes(tflite_signature(data))
    if shapes != (manifest.input_shape, manifest.output_shape):
        raise ModelRefused(
            "wrong_signature",
            f"model's tensors are {shapes[0]} -> {shapes[1]}, its manifest declares "
            f"{manifest.input_shape} -> {manifest.output_shape}",
        )


# --- what phones read ---------------------------------------------------------------------------


class PublishedModel(BaseModel):
    """`GET /models/latest.json`: the signed manifest, its signature and certificate, and its fields for reading.

    The plain fields repeat the signed manifest's so that people (and older apps) can read them; a
    phone verifies `manifest` with `signature` and `certificate` against its swarm key and uses
    only what the manifest says (it refuses a document whose plain fields disagree with it).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = Field(ge=0)
    sha256: Digest
    created: str
    accuracy: Finite
    size: int = Field(ge=0)
    task: Task
    profiles: list[Label]
    categories: list[Label]
    round: int = Field(ge=0)
    metrics: dict[MetricName, Finite]
    publisher: NodeId
    swarm_id: SwarmId
    input_shape: Shape
    output_shape: Shape
    manifest: str = Field(description="base64 of the exact manifest bytes the signature covers")
    signature: str = Field(description="base64 Ed25519 signature over MANIFEST_LABEL + manifest bytes")
    certificate: Certificate

    @classmethod
    def of(cls, signed: SignedModel, manifest: ModelManifest) -> PublishedModel:
        return cls(
            **manifest.model_dump(exclude={"type", "certificate"}),
            manifest=signed.manifest_b64,
            signature=signed.signature_b64,
            certificate=manifest.certificate,
        )

    @property
    def signed(self) -> SignedModel:
        return SignedModel.from_base64(self.manifest, self.signature)

    @model_validator(mode="after")
    def _agrees_with_manifest(self) -> PublishedModel:
        """The plain fields are the signed manifest's (whether it verifies is the reader's business)."""
        try:
            manifest = parse(self.signed.manifest)
        except ModelRefused as exc:
            raise ValueError(str(exc)) from None
        if any(getattr(self, name) != getattr(manifest, name) for name in ModelManifest.model_fields if name != "type"):
            raise ValueError("plain fields differ from the signed manifest")
        return self

    @property
    def filename(self) -> str:
        return f"model-v{self.version}-{self.sha256[:16]}.tflite"


# --- pairing a phone with a swarm ---------------------------------------------------------------


def pairing_uri(bridge_url: str, swarm: SwarmKey) -> str:
    """`fedcart://pair?v=1&bridge=URL&key=KEY&swarm=ID`: a bridge to ask and the swarm key to trust
    (base64url, no padding; the swarm id lets a reader catch a mistyped key). The text of a pairing QR code."""
    parts = urlsplit(bridge_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"a phone needs an http(s) bridge URL, not {bridge_url!r}")
    key = base64.urlsafe_b64encode(swarm.public_key).decode().rstrip("=")
    return (
        f"{PAIRING_SCHEME}://pair?v=1&bridge={quote(bridge_url.rstrip('/'), safe='')}&key={key}&swarm={swarm.swarm_id}"
    )


# --- what a publishing cart says -------------------------------------------------------------------


@dataclass(frozen=True)
class ModelClaims:
    """What a cart says about a model it publishes (the rest of the manifest comes from the bytes and its certificate).

    `input_shape` / `output_shape` left at None are read from the model with LiteRT.
    """

    task: str
    version: int
    round: int
    created: str
    accuracy: float
    profiles: list[str]
    categories: list[str]
    metrics: dict[str, float] = field(default_factory=dict)
    input_shape: list[int] | None = None
    output_shape: list[int] | None = None


def describe(tflite: bytes, certificate: Certificate, claims: ModelClaims) -> ModelManifest:
    """The manifest a cart holding `certificate` signs for `tflite`; reads LiteRT's shapes when `claims` lacks them
    (blocking then: call it on a worker thread). ValidationError when a claim is out of range."""
    shapes = (claims.input_shape, claims.output_shape)
    if shapes[0] is None or shapes[1] is None:
        shapes = declared_shapes(tflite_signature(tflite))
    return ModelManifest(
        swarm_id=certificate.swarm_id,
        task=claims.task,
        version=claims.version,
        round=claims.round,
        sha256=sha256_hex(tflite),
        size=len(tflite),
        created=claims.created,
        accuracy=claims.accuracy,
        metrics=claims.metrics,
        profiles=claims.profiles,
        categories=claims.categories,
        input_shape=shapes[0],
        output_shape=shapes[1],
        publisher=certificate.node_id,
        certificate=certificate,
    )
