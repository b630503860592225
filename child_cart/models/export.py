"""TFLite export: convert the newest model, prove LiteRT computes what Keras computes, then publish it.

"Publish" means: the `.tflite` is written into `data_dir/models/` under its
sha256 (with a `sha256sum -c` sidecar), recorded on the model version (where the bridge upload and the UI
download find it), and golden vectors for the Android app's tests are
written next to it. A model whose LiteRT outputs differ from Keras beyond
the tolerance is refused and nothing is written.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cartnet.files import sha256_hex, write_atomic
from child_cart.models.versions import MODELS_DIR, ModelVersion, ModelVersions
from child_cart.store import Store
from child_cart.tasks.base import Task, import_keras

log = logging.getLogger(__name__)

DEFAULT_TOLERANCE = 1e-4


class ExportError(RuntimeError):
    """An export that was refused: `code` for programs, `message` for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ExportResult:
    """What an accepted export wrote."""

    version_id: str
    tflite_path: Path
    sha256: str
    max_abs_diff: float
    checked_rows: int
    golden_path: Path | None


def to_tflite(model: Any) -> bytes:
    """Convert a Keras model with TensorFlow's own converter (its SavedModel chatter goes to the debug log)."""
    import_keras()
    import tensorflow as tf

    chatter = io.StringIO()
    with contextlib.redirect_stdout(chatter):
        converted = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    log.debug("converter said: %s", chatter.getvalue().strip())
    return bytes(converted)


def run_litert(tflite: bytes, x: np.ndarray) -> np.ndarray:
    """Run a TFLite model on a batch with LiteRT (no TensorFlow needed): what a phone computes."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=tflite)
    source = interpreter.get_input_details()[0]
    batch = np.ascontiguousarray(x, dtype=source["dtype"])
    interpreter.resize_tensor_input(source["index"], list(batch.shape))
    interpreter.allocate_tensors()
    interpreter.set_tensor(source["index"], batch)
    interpreter.invoke()
    return np.array(interpreter.get_tensor(interpreter.get_output_details()[0]["index"]))


def export_tflite(
    store: Store,
    data_dir: Path,
    task: Task,
    tolerance: float = DEFAULT_TOLERANCE,
    golden_path: Path | None = None,
) -> ExportResult:
    """Export the task's newest model version; raises ExportError (writing nothing) when it cannot be trusted."""
    models = ModelVersions(store, data_dir)
    version = models.latest(task.name)
    if version is None:
        raise ExportError("no_model", f"No trained {task.name} model yet: run `fedcart train` first.")
    model = task.build_model()
    model.set_weights(models.load_weights(version))
    x = _check_inputs(task, task.rows(store))
    tflite = to_tflite(model)
    diff = _max_abs_diff(np.asarray(model.predict(x, batch_size=1024, verbose=0)), run_litert(tflite, x))
    if not diff <= tolerance:
        raise ExportError(
            "mismatch",
            f"TFLite output differs from Keras by {diff:.3g} (tolerance {tolerance:.3g}) on {len(x)} rows: not published.",
        )
    return _publish(models, version, task, tflite, diff, len(x), golden_path)


def _check_inputs(task: Task, rows: list[dict]) -> np.ndarray:
    """Held-out rows plus the task's reference inputs: what the export is compared on."""
    parts = [p for p in (task.make_dataset(rows).x_val, task.reference_inputs()) if p is not None and len(p)]
    if not parts:
        raise ExportError("no_inputs", "No held-out rows to check the TFLite model on.")
    return np.concatenate(parts)


def _max_abs_diff(expected: np.ndarray, actual: np.ndarray) -> float:
    if expected.shape != actual.shape:
        return float("inf")
    return float(np.max(np.abs(expected.astype(np.float64) - actual.astype(np.float64))))


def _publish(
    models: ModelVersions,
    version: ModelVersion,
    task: Task,
    tflite: bytes,
    diff: float,
    checked: int,
    golden_path: Path | None,
) -> ExportResult:
    digest = sha256_hex(tflite)
    relative = f"{MODELS_DIR}/{task.name}-{digest[:16]}.tflite"
    write_atomic(models.path(relative), tflite, private=True)
    sidecar = models.path(relative + ".sha256")
    write_atomic(sidecar, f"{digest}  {models.path(relative).name}\n".encode("ascii"), private=True)
    models.attach(
        version.id,
        tflite_path=relative,
        tflite_sha256=digest,
        info={**version.info, "tflite_max_abs_diff": diff, "tflite_checked_rows": checked},
    )
    golden = task.golden_vectors(lambda x: run_litert(tflite, x), digest)
    written_golden = None
    if golden is not None:
        written_golden = golden_path or models.models_dir / f"{task.name}-golden.json"
        write_atomic(written_golden, (json.dumps(golden, indent=1) + "\n").encode("utf-8"), private=True)
    log.info("exported %s to %s (sha256 %s, max |diff| %.2e)", version.id, relative, digest[:16], diff)
    return ExportResult(version.id, models.path(relative), digest, diff, checked, written_golden)
