"""Model versions: weights on disk (cartnet's weight codec, content-addressed), their record in `models`.

A version is numbered per task (`recommend-v000003`). The weights file is
named by its sha256 and written atomically, readable by the owner alone
(`cartnet.files.write_atomic`), before the record that points to it, so a
crash leaves at worst an unreferenced file, never a record without weights;
loading checks the hash.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from cartnet import weights as weight_codec
from cartnet.files import sha256_hex, write_atomic
from child_cart.store import Store
from child_cart.store.rows import store_time

log = logging.getLogger(__name__)

MODELS_DIR = "models"
CLAIM_ATTEMPTS = 20


class ModelCorrupt(RuntimeError):
    """A weights file is missing or does not match the hash its record holds."""


class ModelVersion(BaseModel):
    """One stored model version (the `models` document, `_id` = `id`)."""

    id: str
    task: str
    version: int
    created: datetime
    weights_path: str
    weights_sha256: str
    samples: int
    metrics: dict[str, float] = Field(default_factory=dict)
    source: str = "local"
    parent: str | None = None
    info: dict[str, Any] = Field(default_factory=dict)
    tflite_path: str | None = None
    tflite_sha256: str | None = None

    def to_doc(self) -> dict:
        doc = self.model_dump(exclude={"id"})
        doc["_id"] = self.id
        return doc

    @classmethod
    def from_doc(cls, doc: dict) -> ModelVersion:
        return cls.model_validate({**doc, "id": doc["_id"]})


def encode_weights(weights: list[np.ndarray]) -> bytes:
    """Weights in the same safe codec the wire uses (safetensors inside, uncompressed on disk)."""
    return weight_codec.encode(weights, compress=False)


def decode_weights(data: bytes) -> list[np.ndarray]:
    """Inverse of `encode_weights`."""
    return weight_codec.decode(data)


def save_weights_file(path: Path, weights: list[np.ndarray]) -> None:
    """Replace a cart's own weights file beside its versions (a swarm or local-only model: not a version), atomically
    and readable by the owner alone. Encoding and writing block: callers on the loop run it on a thread."""
    write_atomic(path, encode_weights(weights), private=True)


def read_weights_file(path: Path, what: str) -> list[np.ndarray] | None:
    """The weights `save_weights_file` wrote, or None when there are none yet or they cannot be read (logged, naming
    `what`): the caller starts that model afresh."""
    if not path.exists():
        return None
    try:
        return decode_weights(path.read_bytes())
    except (OSError, weight_codec.WeightsError) as exc:
        log.warning("%s %s unreadable (%s): starting it afresh", what, path, exc)
        return None


class ModelVersions:
    """The model versions of one cart."""

    def __init__(self, store: Store, data_dir: Path) -> None:
        self._store = store
        self.data_dir = Path(data_dir)

    @property
    def models_dir(self) -> Path:
        return self.data_dir / MODELS_DIR

    def path(self, relative: str) -> Path:
        """Absolute path of a file a record names relative to the data dir."""
        return self.data_dir / relative

    def save(
        self,
        task: str,
        weights: list[np.ndarray],
        samples: int,
        metrics: dict[str, float] | None = None,
        source: str = "local",
        parent: str | None = None,
        info: dict[str, Any] | None = None,
    ) -> ModelVersion:
        """Store weights and record them as the task's next version."""
        data = encode_weights(weights)
        digest = sha256_hex(data)
        relative = f"{MODELS_DIR}/{task}-{digest[:16]}.weights"
        write_atomic(self.path(relative), data, private=True)
        for _ in range(CLAIM_ATTEMPTS):
            number = self._next_number(task)
            version = ModelVersion(
                id=f"{task}-v{number:06d}",
                task=task,
                version=number,
                created=store_time(datetime.now(UTC)),
                weights_path=relative,
                weights_sha256=digest,
                samples=samples,
                metrics=metrics or {},
                source=source,
                parent=parent,
                info=info or {},
            )
            if self._store.insert_new("models", version.to_doc()):
                log.info("stored %s (%d samples, %s)", version.id, samples, version.metrics)
                return version
        raise RuntimeError(f"could not claim a version number for {task} after {CLAIM_ATTEMPTS} tries")

    def latest(self, task: str) -> ModelVersion | None:
        """The newest version of a task, or None before the first one."""
        doc = next(iter(self._store.models.find({"task": task}).sort("version", -1).limit(1)), None)
        return ModelVersion.from_doc(doc) if doc else None

    def get(self, version_id: str) -> ModelVersion:
        """One version by id."""
        doc = self._store.models.find_one({"_id": version_id})
        if doc is None:
            raise KeyError(f"no model version {version_id!r}")
        return ModelVersion.from_doc(doc)

    def versions(self, task: str) -> list[ModelVersion]:
        """All versions of a task, newest first."""
        return [ModelVersion.from_doc(d) for d in self._store.models.find({"task": task}).sort("version", -1)]

    def load_weights(self, version: ModelVersion) -> list[np.ndarray]:
        """A version's weights, checked against the hash in its record."""
        data = self._read_checked(version.weights_path, version.weights_sha256)
        return decode_weights(data)

    def read_tflite(self, version: ModelVersion) -> bytes:
        """A version's exported TFLite bytes, checked against their hash."""
        if version.tflite_path is None or version.tflite_sha256 is None:
            raise ModelCorrupt(f"{version.id} has not been exported to TFLite")
        return self._read_checked(version.tflite_path, version.tflite_sha256)

    def attach(self, version_id: str, **fields: Any) -> ModelVersion:
        """Add fields to a version's record (e.g. its TFLite file once exported)."""
        updated = ModelVersion.model_validate({**self.get(version_id).model_dump(), **fields})
        self._store.put("models", updated.to_doc())
        return updated

    def _next_number(self, task: str) -> int:
        latest = self.latest(task)
        return 1 if latest is None else latest.version + 1

    def _read_checked(self, relative: str, digest: str) -> bytes:
        path = self.path(relative)
        try:
            data = path.read_bytes()
        except FileNotFoundError as exc:
            raise ModelCorrupt(f"model file {path} is missing") from exc
        if sha256_hex(data) != digest:
            raise ModelCorrupt(f"model file {path} does not match its recorded sha256")
        return data
