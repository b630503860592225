"""What a piece of the experiment cost: wall time, process CPU, peak RSS, optional energy, and the weight codec's stages.

Everything runs in one process (the simulated carts share one TensorFlow), so
CPU and memory are the process's: CPU seconds from getrusage, peak RSS from
the kernel's high-water mark, which `Meter` resets on entry (Linux
/proc/self/clear_refs) so each measured span reports its own peak; where that
file cannot be written the lifetime peak is reported instead. Energy comes from
codecarbon when it is installed (estimated from the CPU model's power where no
hardware counter is readable), else it is left out.

The codec profile times each stage a weight update goes through on its way
to a peer (serialize, compress, encrypt; then decrypt, decompress,
deserialize) with the real `cartnet.weights` and `cartnet.e2e` calls, and
records the bytes after each stage.
"""

from __future__ import annotations

import importlib.util
import logging
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cartnet import e2e, weights
from cartnet.identity import Identity

log = logging.getLogger(__name__)

CLEAR_REFS = Path("/proc/self/clear_refs")
STATUS = Path("/proc/self/status")
RESET_PEAK = "5"


@dataclass
class Usage:
    """Cost of one measured span."""

    seconds: float = 0.0
    cpu_seconds: float = 0.0
    peak_rss_mb: float = 0.0
    energy_kwh: float | None = None


class Meter:
    """Context manager measuring wall time, process CPU and peak RSS (and energy when asked and available)."""

    def __init__(self, energy: bool = False) -> None:
        self.usage = Usage()
        self._tracker = _energy_tracker() if energy else None

    def __enter__(self) -> Usage:
        _reset_peak_rss()
        self._cpu, self._wall = _cpu_seconds(), time.perf_counter()
        if self._tracker is not None:
            self._tracker.start()
        return self.usage

    def __exit__(self, *exc: object) -> None:
        self.usage.seconds = round(time.perf_counter() - self._wall, 3)
        self.usage.cpu_seconds = round(_cpu_seconds() - self._cpu, 3)
        self.usage.peak_rss_mb = round(peak_rss_mb(), 1)
        if self._tracker is not None:
            self._tracker.stop()
            self.usage.energy_kwh = float(self._tracker.final_emissions_data.energy_consumed)


def energy_available() -> bool:
    """True when codecarbon is installed (energy is then measured per scenario)."""
    return importlib.util.find_spec("codecarbon") is not None


def _energy_tracker() -> Any:
    if not energy_available():
        return None
    from codecarbon import OfflineEmissionsTracker

    return OfflineEmissionsTracker(country_iso_code="USA", save_to_file=False, log_level="error")


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _reset_peak_rss() -> None:
    try:
        CLEAR_REFS.write_text(RESET_PEAK)
    except OSError as exc:
        log.debug("cannot reset the peak RSS (%s): reporting the process's lifetime peak", exc)


def peak_rss_mb() -> float:
    """Peak resident memory since the last reset (VmHWM), in MB; the lifetime peak where /proc is missing."""
    try:
        for line in STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        log.debug("no /proc/self/status: using getrusage's lifetime peak")
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass
class CodecProfile:
    """Bytes after each stage of sending one update, and seconds per stage."""

    raw_bytes: int
    serialized_bytes: int
    compressed_bytes: int
    sealed_bytes: int
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def compression_ratio(self) -> float:
        """Serialized size over compressed size (what zstd saved)."""
        return self.serialized_bytes / max(1, self.compressed_bytes)


def profile_codec(arrays: list[np.ndarray], recipient: Identity, sender_id: str) -> CodecProfile:
    """Run one update through every stage the exchange uses, timing each."""
    seconds: dict[str, float] = {}
    plain = _timed(seconds, "serialize", weights.encode, arrays, compress=False)
    both = _timed(seconds, "serialize+compress", weights.encode, arrays, compress=True)
    sealed = _timed(seconds, "encrypt", e2e.seal, both, recipient.kx_public_key, sender_id)
    opened = _timed(seconds, "decrypt", e2e.open_sealed, bytes(sealed), recipient.kx_key, sender_id)
    _timed(seconds, "deserialize", weights.decode, plain)
    _timed(seconds, "decompress+deserialize", weights.decode, bytes(opened))
    seconds["compress"] = max(0.0, seconds.pop("serialize+compress") - seconds["serialize"])
    seconds["decompress"] = max(0.0, seconds.pop("decompress+deserialize") - seconds["deserialize"])
    return CodecProfile(sum(a.nbytes for a in arrays), len(plain), len(both), len(sealed), seconds)


def _timed(seconds: dict[str, float], stage: str, call: Any, *args: Any, **kwargs: Any) -> Any:
    start = time.perf_counter()
    result = call(*args, **kwargs)
    seconds[stage] = time.perf_counter() - start
    return result
