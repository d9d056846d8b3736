"""The progress bar of a long sync (tqdm; only the command line shows one)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Final

from tqdm import tqdm

#: Syncs with fewer new entries than this get no progress bar.
PROGRESS_MIN_ENTRIES: Final = 10_000


@contextmanager
def entries_bar(total: int, *, desc: str, enabled: bool) -> Iterator[Callable[[int], object]]:
    """A bar on stderr for ``total`` entries; yields the function that advances it by n."""
    bar = tqdm(
        total=total,
        unit=" entries",
        unit_scale=True,
        file=sys.stderr,
        disable=not enabled or total < PROGRESS_MIN_ENTRIES,
        desc=desc,
        leave=False,
    )
    try:
        yield bar.update
    finally:
        bar.close()
