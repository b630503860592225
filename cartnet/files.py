"""Files written whole or not at all, and the one SHA-256 helper.

Every file a node keeps (keys, secrets, model weights, TFLite models and their
pointer) goes through `write_atomic`: the bytes are written to a temporary
sibling, fsynced, then moved into place and the directory fsynced, so a crash at
any moment leaves the old file or the whole new one, never half of one.

Two options cover every caller:

- `private=True` creates the file readable and writable by its owner alone
  (0600); otherwise it gets the mode `open()` would give it (0666 less the umask).
- `exclusive=True` creates the file only if the name is free: the temporary file
  is hard-linked into place, which is atomic and fails when the name exists, so
  two processes starting at once cannot both win and nobody reads a half-written
  secret. It returns False, writing nothing, when the file already exists.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Iterable
from pathlib import Path

Buffer = bytes | bytearray | memoryview
"""What can be written or hashed: a bytes-like object, or an iterable of them (chunks)."""

STREAM_BLOCK = 1024 * 1024
_TEMP_ATTEMPTS = 16


def sha256_hex(data: Buffer | Iterable[Buffer]) -> str:
    """Hex SHA-256 of bytes, or of chunks taken in order (the same digest as their concatenation)."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return hashlib.sha256(data).hexdigest()
    digest = hashlib.sha256()
    for chunk in data:
        digest.update(chunk)
    return digest.hexdigest()


def sha256_file(path: Path, block: int = STREAM_BLOCK) -> str:
    """Hex SHA-256 of a file's content, read in blocks (memory stays flat however large the file)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def write_atomic(
    path: Path,
    data: Buffer | Iterable[Buffer],
    *,
    private: bool = False,
    exclusive: bool = False,
) -> bool:
    """Write `data` to `path` all at once (see the module docstring); False only when `exclusive` found it taken.

    The parent directory is created if needed. On any error the temporary file
    is removed and the error propagates (OSError and its subclasses, as `open()`
    would raise them); `path` is then untouched.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if exclusive and path.exists():
        return False
    tmp = _write_temp(path, data, 0o600 if private else 0o666)
    try:
        if exclusive:
            try:
                os.link(tmp, path)
            except FileExistsError:
                return False
        else:
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)
    return True


def fsync_dir(directory: Path) -> None:
    """Make a rename or link in `directory` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_temp(path: Path, data: Buffer | Iterable[Buffer], mode: int) -> Path:
    """A new hidden sibling of `path` holding `data`, fsynced; created with `mode` (the umask applies)."""
    fd, tmp = _open_temp(path, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            if isinstance(data, (bytes, bytearray, memoryview)):
                handle.write(data)
            else:
                for chunk in data:
                    handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def _open_temp(path: Path, mode: int) -> tuple[int, Path]:
    for _ in range(_TEMP_ATTEMPTS):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name next to {path}")
