"""After an accepted round: export the model to TFLite (checked against Keras), sign its manifest and hand both to
the bridge for phones."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from cartnet.client import BridgeClient
from child_cart.models.export import ExportResult, export_tflite
from child_cart.models.signing import phone_claims
from child_cart.models.versions import ModelVersion, ModelVersions
from child_cart.rounds.learner import KERAS_LOCK
from child_cart.rounds.roundlog import next_round_number
from child_cart.store import Store
from child_cart.tasks.base import Task

log = logging.getLogger(__name__)


class PhonePublisher:
    """Exports a model version and uploads it to the cart's bridge (`GET /models/latest` serves it)."""

    def __init__(self, store: Store, data_dir: Path, task: Task, client: BridgeClient, tolerance: float) -> None:
        self.store, self.data_dir, self.task, self.client, self.tolerance = store, data_dir, task, client, tolerance

    async def __call__(self, version: ModelVersion) -> None:
        result = await asyncio.to_thread(self._export)
        models = ModelVersions(self.store, self.data_dir)
        exported = await asyncio.to_thread(models.get, result.version_id)
        tflite = await asyncio.to_thread(result.tflite_path.read_bytes)
        round_number = await asyncio.to_thread(next_round_number, self.store)
        await self.client.publish_model(tflite, phone_claims(self.task, exported, round_number))
        log.info(
            "published %s (tflite sha256 %s) to bridge %s",
            exported.id,
            result.sha256[:12],
            (self.client.bridge_id or "")[:8],
        )

    def _export(self) -> ExportResult:
        with KERAS_LOCK:
            return export_tflite(self.store, self.data_dir, self.task, self.tolerance)
