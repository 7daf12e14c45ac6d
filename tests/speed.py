"""Speed floors that give the same verdict on a machine 3x faster or 3x slower.

A floor in rows/s or seconds is a guess about the machine. Instead the code under test is timed
against a yardstick run at the same moment on the same data (both the best of a few runs, so
a neighbour's burst of load hits neither much), and the floor is a ratio: "cleaning costs at
most 10 word scans". A regression that makes the code several times slower still fails it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

_WORD = re.compile(r"\w+")


def best_seconds(fn: Callable[[], object], repeats: int = 3) -> float:
    """The fastest of `repeats` runs of fn()."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def word_scan(texts: list[str]) -> None:
    """The yardstick for passes over text: lower-case each text and find its words (a regex
    and a string method per row, as cleaners and detectors do)."""
    for text in texts:
        _WORD.findall(text.lower())


def times_yardstick(fn: Callable[[], object], yardstick: Callable[[], object]) -> float:
    """How many yardsticks fn() costs here and now."""
    return best_seconds(fn) / best_seconds(yardstick)
