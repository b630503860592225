"""Atomic file writes (replace, owner-only, create-once), the SHA-256 helper and typed transfer meta."""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from cartnet import files
from cartnet.files import sha256_file, sha256_hex, write_atomic
from cartnet.payloads import ModelPublication, PayloadError, WeightUpdate


def test_replace_writes_whole_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "file.bin"
    assert write_atomic(path, b"first")
    assert write_atomic(path, [b"sec", memoryview(b"ond")])
    assert path.read_bytes() == b"second"
    assert sorted(p.name for p in path.parent.iterdir()) == ["file.bin"]


def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "file.bin"
    write_atomic(path, b"old")

    def chunks() -> Iterator[bytes]:
        yield b"half of the new"
        raise RuntimeError("the producer failed")

    with pytest.raises(RuntimeError, match="producer failed"):
        write_atomic(path, chunks())

    def no_replace(src: object, dst: object) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", no_replace)
    with pytest.raises(OSError, match="disk gone"):
        write_atomic(path, b"new")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["file.bin"]


def test_private_files_are_owner_only_and_others_follow_the_umask(tmp_path: Path) -> None:
    old_umask = os.umask(0o022)
    try:
        write_atomic(tmp_path / "secret", b"s", private=True)
        write_atomic(tmp_path / "public", b"p")
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE((tmp_path / "secret").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "public").stat().st_mode) == 0o644


def test_create_once_refuses_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "key"
    assert write_atomic(path, b"winner", private=True, exclusive=True)
    assert not write_atomic(path, b"loser", private=True, exclusive=True)
    assert path.read_bytes() == b"winner"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["key"]


def test_create_once_loses_a_race_to_a_file_that_appears_meanwhile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "key"
    real_link = os.link

    def racing_link(src: str, dst: str) -> None:
        path.write_bytes(b"other process")
        real_link(src, dst)

    monkeypatch.setattr(os, "link", racing_link)
    assert not write_atomic(path, b"mine", exclusive=True)
    assert path.read_bytes() == b"other process"
    assert [p.name for p in tmp_path.iterdir()] == ["key"]


def test_digest_of_bytes_equals_digest_of_chunks_and_of_the_streamed_file(tmp_path: Path) -> None:
    data = os.urandom(3 * files.STREAM_BLOCK + 12345)
    path = tmp_path / "blob"
    path.write_bytes(data)
    expected = hashlib.sha256(data).hexdigest()
    assert sha256_hex(data) == sha256_hex(memoryview(data)) == expected
    assert sha256_hex([data[:100], memoryview(data)[100:]]) == expected
    assert sha256_file(path) == sha256_file(path, block=4096) == expected


def test_payloads_round_trip_through_meta_strings() -> None:
    manifest = base64.b64encode(os.urandom(1500)).decode()
    publication = ModelPublication(manifest=manifest, signature="c2ln")
    meta = publication.to_meta()
    assert meta["signature"] == "c2ln" and set(meta) == {
        "signature",
        "manifest.0",
        "manifest.1",
        "manifest.2",
        "manifest.3",
    }
    assert all(len(value) <= 512 for value in meta.values())
    assert "".join(meta[f"manifest.{n}"] for n in range(4)) == manifest
    assert ModelPublication.from_meta(meta) == publication
    update = WeightUpdate(request_id="ab", samples=100, task="recommend", round=3)
    assert WeightUpdate.from_meta({**update.to_meta(), "added_later": "x"}) == update


@pytest.mark.parametrize(
    ("meta", "reason"),
    [
        ({"request_id": "ab", "task": "t", "round": "1"}, "lacks 'samples'"),
        (
            {"request_id": "ab", "samples": "many", "task": "t", "round": "1"},
            "samples: Input should be a valid integer",
        ),
    ],
)
def test_bad_meta_is_refused_naming_the_field(meta: dict[str, str], reason: str) -> None:
    with pytest.raises(PayloadError, match=reason):
        WeightUpdate.from_meta(meta)


def test_model_meta_without_a_signed_manifest_names_what_is_missing() -> None:
    old_style = {"version": "1", "accuracy": "0.5", "task": "t", "profiles": "[]", "categories": "[]"}
    with pytest.raises(PayloadError, match="lacks 'manifest'"):
        ModelPublication.from_meta(old_style)
    with pytest.raises(PayloadError, match="lacks 'signature'"):
        ModelPublication.from_meta({"manifest.0": "abc"})
    with pytest.raises(PayloadError, match="lacks 'manifest'"):
        ModelPublication.from_meta({"signature": "c2ln", "manifest.1": "abc"})  # pieces count from 0
