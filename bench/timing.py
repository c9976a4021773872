"""Timing: warm-up, then repeats interleaved across competitors; median and min of one timer.

One wall-clock timer (time.perf_counter) brackets each call, after the device has been
synchronised on both sides, so a device that queues work asynchronously is timed to the end of
its work. Repeats are interleaved (ref, ours, flex, ref, ours, flex, ...) so that a noisy
neighbour on a shared machine slows every competitor alike instead of one of them.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable, Dict, Mapping, Optional


@dataclass(frozen=True)
class Timing:
    samples_us: tuple  # every timed run, in microseconds, in the order run
    warmup: int

    @property
    def median_us(self) -> float:
        return statistics.median(self.samples_us)

    @property
    def min_us(self) -> float:
        return min(self.samples_us)

    def as_dict(self) -> dict:
        return {
            "median_us": self.median_us,
            "min_us": self.min_us,
            "samples_us": list(self.samples_us),
            "warmup": self.warmup,
        }


def _no_sync() -> None:
    return None


def time_once(fn: Callable[[], object], synchronize: Callable[[], None] = _no_sync) -> float:
    """Run `fn` once and return its wall-clock time in microseconds."""
    synchronize()
    start = time.perf_counter()
    fn()
    synchronize()
    return (time.perf_counter() - start) * 1e6


def measure_interleaved(
    fns: Mapping[str, Callable[[], object]],
    warmup: Mapping[str, int],
    repeats: int,
    synchronize: Callable[[], None] = _no_sync,
    on_sample: Optional[Callable[[str, int, float], None]] = None,
) -> Dict[str, Timing]:
    """Warm each function up `warmup[name]` times, then time `repeats` rounds of all of them.

    Each round calls every function once in the order given. Returns one Timing per name.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    for name, fn in fns.items():
        for _ in range(warmup.get(name, 0)):
            time_once(fn, synchronize)
    samples: Dict[str, list] = {name: [] for name in fns}
    for round_index in range(repeats):
        for name, fn in fns.items():
            elapsed = time_once(fn, synchronize)
            samples[name].append(elapsed)
            if on_sample is not None:
                on_sample(name, round_index, elapsed)
    return {name: Timing(tuple(s), warmup.get(name, 0)) for name, s in samples.items()}

