"""The newest signed TFLite model carts published, kept on disk for phones.

Carts upload with an ordinary signed transfer addressed to the bridge (purpose "model",
meta a `cartnet.payloads.ModelPublication`: the cart's signed model manifest, see
`cartnet.phone_models`). A model is served only when all of this holds:

* `admit`, from the transfer's manifest alone, before a byte of the model travels: the
  model manifest is signed by the uploading cart with the key its certificate names, the
  certificate is this swarm's, for a cart, current and not revoked, the size is the
  transfer's, and the version (creation time in ms) is newer than the one served and no
  later than the bridge's clock plus `max_skew_ms`;
* `check`, once every chunk arrived and verified: the bytes hash to the signed SHA-256 and
  LiteRT loads them with the declared input and output signature (one float32 tensor in,
  one out, an output per category). LiteRT is imported on first use and runs on a worker
  thread; the bridge never imports TensorFlow. A refusal reaches the uploader as the
  transfer's answer.

A model is written to a temporary file, fsynced and renamed, and only then does the
`latest.json` pointer (written the same way; the `/models/latest.json` document with the
manifest, signature and certificate) name it, so a crash at any moment leaves either the
old model or the new one, never half of one. The newest version wins, also when two
uploads race. At start the pointer is believed only if it still verifies (signature,
certificate, not from the future, the file's hash): a pointer written before models were
signed, or one from the future, is dropped, so it cannot block honest publications. When a
revocation list names the publisher of the model being served, it is withdrawn.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from pydantic import ValidationError

from cartnet import phone_models
from cartnet.certificates import RevocationList, SwarmKey
from cartnet.files import sha256_file, write_atomic
from cartnet.messages import TransferManifest
from cartnet.payloads import ModelPublication, PayloadError
from cartnet.phone_models import ModelManifest, ModelRefused, PublishedModel, SignedModel
from cartnet.presence import now_ms
from cartnet.transfer import Received

log = logging.getLogger(__name__)

LATEST = "latest.json"
PURPOSE = ModelPublication.purpose

ModelMeta = PublishedModel
"""What `GET /models/latest.json` returns (the name the rest of the bridge knows it by)."""


class ModelError(ValueError):
    """An upload the bridge will not serve to phones."""


class Trust(Protocol):
    """What the store needs to know about the swarm (a bridge's `Membership` is one)."""

    @property
    def swarm(self) -> SwarmKey: ...

    @property
    def revocations(self) -> RevocationList | None: ...


class ModelStore:
    """`data_dir/models/`: model files plus the `latest.json` pointer to the newest."""

    def __init__(
        self,
        directory: Path,
        keep: int,
        max_bytes: int,
        trust: Trust,
        max_skew_ms: int = phone_models.DEFAULT_MAX_SKEW_MS,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.directory = directory
        self.keep = keep
        self.max_bytes = max_bytes
        self.trust = trust
        self.max_skew_ms = max_skew_ms
        self.clock = clock
        """Unix ms; tests may replace it."""
        self.refused: Counter[str] = Counter()
        """Refused uploads by `ModelRefused` code (and `purpose`, `size`, `meta`, `stale`)."""
        directory.mkdir(parents=True, exist_ok=True)
        self.latest = self._load()
        self._lock = asyncio.Lock()
        self._published = asyncio.Event()

    def path(self, meta: PublishedModel) -> Path:
        return self.directory / meta.filename

    # --- an upload's three steps -----------------------------------------------------------

    def admit(self, peer: str, manifest: TransferManifest) -> str | None:
        """TransferHub accept hook: None to accept the upload, else the reason it is refused."""
        if manifest.purpose != PURPOSE:
            return self._refuse(
                "purpose", f"the bridge accepts only purpose {PURPOSE!r} transfers, not {manifest.purpose!r}"
            )
        if manifest.total_size > self.max_bytes:
            return self._refuse("size", f"model of {manifest.total_size} bytes exceeds the {self.max_bytes}-byte limit")
        try:
            model = self.verified(peer, manifest)
        except ModelError as exc:
            return str(exc)
        if model.size != manifest.total_size:
            return self._refuse(
                "hash_mismatch", f"upload of {manifest.total_size} bytes, its model manifest says {model.size}"
            )
        return self._stale(model)

    async def check(self, received: Received) -> str | None:
        """TransferHub check hook: the complete bytes are the signed model and LiteRT loads them."""
        if received.manifest.purpose != PURPOSE:
            return None
        try:
            model = self.verified(received.peer, received.manifest)
            await asyncio.to_thread(phone_models.check_model, received.data, model)
        except ModelError as exc:
            return str(exc)
        except ModelRefused as exc:
            return self._refuse(exc.code, f"model refused: {exc}")
        return self._stale(model)

    async def save(self, received: Received) -> PublishedModel | None:
        """Store a checked upload if it is still the newest; returns what is served now, or None if superseded."""
        signed = self._signed(received.manifest)
        model = self.verified(received.peer, received.manifest)
        meta = PublishedModel.of(signed, model)
        async with self._lock:
            if self.latest is not None and meta.version <= self.latest.version:
                log.info("model v%d arrived after v%d: not published", meta.version, self.latest.version)
                return None
            await asyncio.to_thread(self._write, meta, received.chunks)
            self.latest = meta
            self._published.set()
            self._published = asyncio.Event()
        log.info(
            "published model v%d (%d bytes, sha256 %s, round %d) signed by cart %s",
            meta.version,
            meta.size,
            meta.sha256[:12],
            meta.round,
            meta.publisher[:8],
        )
        return meta

    async def adopt(self, signed: SignedModel, data: bytes) -> PublishedModel | None:
        """Serve a model another bridge accepted (agreed in the DHT, parent_cart.agreement) once it verifies like an
        upload (signature, certificate, not from the future; the bytes' hash and LiteRT's view) and is still newer
        than the one served by (version, sha256); returns it, or None when it is not newer. ModelError otherwise."""
        try:
            model = phone_models.verify(
                signed,
                self.trust.swarm.public_key,
                self.clock(),
                revocations=self.trust.revocations,
                max_skew_ms=self.max_skew_ms,
            )
            if len(data) > self.max_bytes:
                raise ModelRefused("size", f"model of {len(data)} bytes exceeds the {self.max_bytes}-byte limit")
            await asyncio.to_thread(phone_models.check_model, data, model)
        except ModelRefused as exc:
            raise ModelError(self._refuse(exc.code, f"agreed model refused: {exc}")) from None
        meta = PublishedModel.of(signed, model)
        async with self._lock:
            if not self.older_than(meta.version, meta.sha256):
                return None
            await asyncio.to_thread(self._write, meta, [data])
            self.latest = meta
            self._published.set()
            self._published = asyncio.Event()
        log.info("serving agreed model v%d (sha256 %s) of cart %s", meta.version, meta.sha256[:12], meta.publisher[:8])
        return meta

    def older_than(self, version: int, sha256: str) -> bool:
        """True when the model served (if any) loses to (version, sha256): the swarm-wide order of models."""
        latest = self.latest
        return latest is None or (latest.version, latest.sha256) < (version, sha256)

    def file_of(self, sha256: str) -> Path | None:
        """The file of the model served, if its SHA-256 is `sha256` (what a peer bridge fetches)."""
        latest = self.latest
        if latest is None or latest.sha256 != sha256:
            return None
        path = self.path(latest)
        return path if path.is_file() else None

    def verified(self, peer: str, manifest: TransferManifest) -> ModelManifest:
        """The upload's model manifest, signed by `peer` (a certified cart of this swarm) and not from the future;
        ModelError with the reason otherwise."""
        try:
            return phone_models.verify(
                self._signed(manifest),
                self.trust.swarm.public_key,
                self.clock(),
                revocations=self.trust.revocations,
                max_skew_ms=self.max_skew_ms,
                publisher=peer,
            )
        except ModelRefused as exc:
            raise ModelError(self._refuse(exc.code, f"model refused: {exc}")) from None

    def _signed(self, manifest: TransferManifest) -> SignedModel:
        try:
            publication = ModelPublication.from_meta(manifest.meta)
            return SignedModel.from_base64(publication.manifest, publication.signature)
        except PayloadError as exc:
            raise ModelError(self._refuse("unsigned", f"model refused: no signed model manifest ({exc})")) from None
        except ModelRefused as exc:
            raise ModelError(self._refuse(exc.code, f"model refused: {exc}")) from None

    def _stale(self, model: ModelManifest) -> str | None:
        latest = self.latest
        if latest is not None and model.version <= latest.version:
            return self._refuse(
                "stale", f"version {model.version} is not newer than the published version {latest.version}"
            )
        return None

    def _refuse(self, code: str, reason: str) -> str:
        self.refused[code] += 1
        return reason

    # --- serving -------------------------------------------------------------------------------

    async def wait_for(self, version: int) -> PublishedModel:
        """Return once a model of at least `version` is being served (the upload's Done precedes storage)."""
        while self.latest is None or self.latest.version < version:
            await self._published.wait()
        return self.latest

    def withdraw_revoked(self, revocations: RevocationList) -> None:
        """A newer revocation list: stop serving the current model if its publisher is named in it."""
        latest = self.latest
        if latest is None or not revocations.names(latest.publisher):
            return
        self.latest = None
        (self.directory / LATEST).unlink(missing_ok=True)
        log.warning(
            "withdrew model v%d: its publisher %s is revoked (list %d)",
            latest.version,
            latest.publisher[:8],
            revocations.serial,
        )

    def _write(self, meta: PublishedModel, chunks: list[bytes | bytearray | memoryview]) -> None:
        write_atomic(self.path(meta), chunks)
        write_atomic(self.directory / LATEST, meta.model_dump_json(indent=1).encode())
        self._prune(meta)

    def _prune(self, newest: PublishedModel) -> None:
        models = sorted(self.directory.glob("model-v*.tflite"), key=lambda p: p.stat().st_mtime, reverse=True)
        for stale in [p for p in models if p.name != newest.filename][self.keep - 1 :]:
            stale.unlink(missing_ok=True)

    def _load(self) -> PublishedModel | None:
        """The pointer on disk, if it still verifies and the file it names is really there (a crash cannot break this)."""
        try:
            meta = PublishedModel.model_validate_json((self.directory / LATEST).read_bytes())
        except FileNotFoundError:
            return None
        except (ValidationError, OSError) as exc:
            log.error(
                "ignoring unreadable or unsigned %s (no model served until the next publication): %s", LATEST, exc
            )
            return None
        try:
            phone_models.verify(
                meta.signed,
                self.trust.swarm.public_key,
                self.clock(),
                revocations=self.trust.revocations,
                max_skew_ms=self.max_skew_ms,
            )
        except ModelRefused as exc:
            log.error("ignoring %s (no model served until the next publication): %s", LATEST, exc)
            return None
        path = self.path(meta)
        if not path.is_file() or path.stat().st_size != meta.size or sha256_file(path) != meta.sha256:
            log.error("%s names %s, which is missing, truncated or altered: no model served", LATEST, path.name)
            return None
        return meta
