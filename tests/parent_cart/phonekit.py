"""Phone models for bridge tests: real TFLite files LiteRT loads, built without TensorFlow, and what carts say about them.

`tiny_tflite(n_in, n_out)` writes a one-layer (FULLY_CONNECTED) TFLite flatbuffer with
LiteRT's own schema bindings: a real model LiteRT loads and runs, made in a millisecond,
so bridge tests never import TensorFlow. `claims(version)` is what a cart signs about it
(recommend-shaped: 2 + profiles + categories in, one output per category).
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import aiohttp
import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as schema

from cartnet import phone_models
from cartnet.certificates import Certificate
from cartnet.identity import Identity
from cartnet.payloads import ModelPublication
from cartnet.phone_models import ModelClaims, ModelManifest
from cartnet.presence import now_ms
from parent_cart.bridge import Bridge

PROFILES = ["student", "family"]
CATEGORIES = ["dairy", "bakery", "produce"]
CREATED = "2026-11-23T10:00:00+00:00"


def tiny_tflite(n_in: int = 2 + len(PROFILES) + len(CATEGORIES), n_out: int = len(CATEGORIES), seed: int = 0) -> bytes:
    """A real TFLite model: float32 [-1, n_in] -> FULLY_CONNECTED -> float32 [-1, n_out] (`seed` picks the weights)."""
    rng = np.random.default_rng(seed)
    weights = rng.standard_normal((n_out, n_in)).astype(np.float32)
    bias = rng.standard_normal(n_out).astype(np.float32)

    def buffer(data: np.ndarray | None = None) -> Any:
        made = schema.BufferT()
        made.data = None if data is None else list(data.tobytes())
        return made

    def tensor(name: str, shape: list[int], index: int, signature: list[int] | None = None) -> Any:
        made = schema.TensorT()
        made.name, made.shape, made.shapeSignature, made.buffer = name, shape, signature, index
        made.type = schema.TensorType.FLOAT32
        return made

    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.FULLY_CONNECTED
    code.version = 1
    op = schema.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, [0, 1, 2], [3]
    op.builtinOptionsType = schema.BuiltinOptions.FullyConnectedOptions
    op.builtinOptions = schema.FullyConnectedOptionsT()
    graph = schema.SubGraphT()
    graph.name = "main"
    graph.tensors = [
        tensor("features", [1, n_in], 1, [-1, n_in]),
        tensor("weights", [n_out, n_in], 2),
        tensor("bias", [n_out], 3),
        tensor("categories", [1, n_out], 4, [-1, n_out]),
    ]
    graph.operators, graph.inputs, graph.outputs = [op], [0], [3]
    model = schema.ModelT()
    model.version, model.description = 3, "fedcart test model"
    model.buffers = [buffer(), buffer(), buffer(weights), buffer(bias), buffer()]
    model.operatorCodes, model.subgraphs = [code], [graph]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def claims(version: int, **overrides: Any) -> ModelClaims:
    """What a cart says about a recommend model of `version` (`overrides` replace any field)."""
    fields: dict[str, Any] = {
        "task": "recommend",
        "version": version,
        "round": 4,
        "created": CREATED,
        "accuracy": 0.82,
        "metrics": {"accuracy": 0.82, "loss": 1.25},
        "profiles": PROFILES,
        "categories": CATEGORIES,
    }
    fields.update(overrides)
    return ModelClaims(**fields)


def manifest(tflite: bytes, certificate: Certificate, version: int, **overrides: Any) -> ModelManifest:
    """The manifest a cart holding `certificate` would sign (shapes read by LiteRT unless overridden)."""
    return phone_models.describe(tflite, certificate, claims(version, **overrides))


def publication_meta(signed: phone_models.SignedModel) -> dict[str, str]:
    """A transfer's meta carrying `signed`, as `BridgeClient.publish_model` sends it."""
    return ModelPublication(manifest=signed.manifest_b64, signature=signed.signature_b64).to_meta()


def forged_signature(identity: Identity, data: bytes) -> bytes:
    """`identity`'s signature over `data` as if it were a model manifest (for tests that re-sign altered bytes)."""
    return identity.sign(phone_models.MANIFEST_LABEL + data)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def served(bridge: Bridge) -> tuple[dict[str, Any], bytes]:
    """`/models/latest.json` and `/models/latest`, checked as a phone does: against the swarm key alone."""
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{bridge.url}/models/latest.json") as response:
            assert response.status == 200, f"bridge {bridge.node_id[:8]} serves no model"
            document = await response.json()
        async with session.get(f"{bridge.url}/models/latest") as response:
            assert response.status == 200
            data = await response.read()
    published = phone_models.PublishedModel.model_validate(document)
    model = phone_models.verify(published.signed, bridge.membership.swarm.public_key, now_ms())
    await asyncio.to_thread(phone_models.check_model, data, model)
    return document, data
