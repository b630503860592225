"""The newest TFLite model carts published, kept on disk for phones.

Carts upload with an ordinary signed transfer addressed to the bridge (purpose "model",
meta a `cartnet.payloads.ModelPublication`);
`admit` refuses a bad upload from its manifest alone, before a byte of it travels. A
model is written to a temporary file, fsynced and renamed, and only then does the
`latest.json` pointer (written the same way) name it, so a crash at any moment leaves
either the old model or the new one, never half of one. The newest version wins, also
when two uploads race.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cartnet.files import sha256_hex, write_atomic
from cartnet.messages import TransferManifest
from cartnet.payloads import ModelPublication, PayloadError, describe
from cartnet.transfer import Received

log = logging.getLogger(__name__)

LATEST = "latest.json"
PURPOSE = ModelPublication.purpose
Label = Annotated[str, Field(min_length=1, max_length=64)]


class ModelMeta(BaseModel):
    """What `GET /models/latest.json` returns; the Android app reads exactly these fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = Field(ge=0)
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    created: str
    accuracy: float = Field(allow_inf_nan=False)
    size: int = Field(ge=0)
    task: Annotated[str, Field(pattern=r"^[a-z0-9_-]{1,32}$")]
    profiles: Annotated[list[Label], Field(max_length=64)]
    categories: Annotated[list[Label], Field(max_length=256)]

    @property
    def filename(self) -> str:
        return f"model-v{self.version}-{self.sha256[:16]}.tflite"


class ModelError(ValueError):
    """Metadata a cart sent with a model that the bridge will not serve to phones."""


def meta_from_manifest(manifest: TransferManifest, sha256: str = "0" * 64) -> ModelMeta:
    """The upload's `ModelPublication`, held to what the bridge serves; ModelError names the bad field."""
    try:
        publication = ModelPublication.from_meta(manifest.meta)
        return ModelMeta(
            version=publication.version,
            sha256=sha256,
            created=publication.created or datetime.now(UTC).isoformat(timespec="seconds"),
            accuracy=publication.accuracy,
            size=manifest.total_size,
            task=publication.task,
            profiles=publication.profiles,
            categories=publication.categories,
        )
    except PayloadError as exc:
        raise ModelError(f"model meta {exc}") from None
    except ValidationError as exc:
        raise ModelError(f"model meta {describe(exc)}") from None


class ModelStore:
    """`data_dir/models/`: model files plus the `latest.json` pointer to the newest."""

    def __init__(self, directory: Path, keep: int, max_bytes: int) -> None:
        self.directory = directory
        self.keep = keep
        self.max_bytes = max_bytes
        directory.mkdir(parents=True, exist_ok=True)
        self.latest = self._load()
        self._lock = asyncio.Lock()
        self._published = asyncio.Event()

    def path(self, meta: ModelMeta) -> Path:
        return self.directory / meta.filename

    def admit(self, _peer: str, manifest: TransferManifest) -> str | None:
        """TransferHub accept hook: None to accept the upload, else the reason it is refused."""
        if manifest.purpose != PURPOSE:
            return f"the bridge accepts only purpose {PURPOSE!r} transfers, not {manifest.purpose!r}"
        if manifest.total_size > self.max_bytes:
            return f"model of {manifest.total_size} bytes exceeds the {self.max_bytes}-byte limit"
        try:
            meta = meta_from_manifest(manifest)
        except ModelError as exc:
            return str(exc)
        if self.latest is not None and meta.version <= self.latest.version:
            return f"version {meta.version} is not newer than the published version {self.latest.version}"
        return None

    async def save(self, received: Received) -> ModelMeta | None:
        """Store a verified upload if it is still the newest; returns its metadata, or None if superseded."""
        sha256 = await asyncio.to_thread(sha256_hex, received.chunks)
        meta = meta_from_manifest(received.manifest, sha256)
        async with self._lock:
            if self.latest is not None and meta.version <= self.latest.version:
                log.info("model v%d arrived after v%d: not published", meta.version, self.latest.version)
                return None
            await asyncio.to_thread(self._write, meta, received.chunks)
            self.latest = meta
            self._published.set()
            self._published = asyncio.Event()
        log.info(
            "published model v%d (%d bytes, sha256 %s) from %s", meta.version, meta.size, sha256[:12], received.peer[:8]
        )
        return meta

    async def wait_for(self, version: int) -> ModelMeta:
        """Return once a model of at least `version` is being served (the upload's Done precedes storage)."""
        while self.latest is None or self.latest.version < version:
            await self._published.wait()
        return self.latest

    def _write(self, meta: ModelMeta, chunks: list[bytes | memoryview]) -> None:
        write_atomic(self.path(meta), chunks)
        write_atomic(self.directory / LATEST, meta.model_dump_json(indent=1).encode())
        self._prune(meta)

    def _prune(self, newest: ModelMeta) -> None:
        models = sorted(self.directory.glob("model-v*.tflite"), key=lambda p: p.stat().st_mtime, reverse=True)
        for stale in [p for p in models if p.name != newest.filename][self.keep - 1 :]:
            stale.unlink(missing_ok=True)

    def _load(self) -> ModelMeta | None:
        """The pointer on disk, if the file it names is really there (a crash cannot break this)."""
        try:
            meta = ModelMeta.model_validate_json((self.directory / LATEST).read_bytes())
        except FileNotFoundError:
            return None
        except (ValidationError, OSError) as exc:
            log.error("ignoring unreadable %s: %s", LATEST, exc)
            return None
        path = self.path(meta)
        if not path.is_file() or path.stat().st_size != meta.size:
            log.error("%s names %s, which is missing or truncated: no model served", LATEST, path.name)
            return None
        return meta
