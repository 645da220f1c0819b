"""Block windows: which blocks are synced, whether a window fits, and where to sample it. Pure.

Every analytic sums history (a balance at block b is every transfer up to b), so
a window ``[from_block, to_block)`` must lie inside the first contiguous run of
synced ranges, counted from its start: a gap before the window would silently
drop transfers. Ranges are end-exclusive, as everywhere in Trace.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

from trace_core.analytics import errors

Range = tuple[int, int]


def merge(ranges: Iterable[Range]) -> list[Range]:
    """Sorted, with touching or overlapping ranges joined: ``[(0,100),(100,200),(300,400)] -> [(0,200),(300,400)]``."""
    merged: list[Range] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def describe(ranges: Sequence[Range]) -> str:
    return ", ".join(f"[{s}, {e})" for s, e in ranges) if ranges else "none"


@dataclasses.dataclass(frozen=True)
class Window:
    """``[from_block, to_block)`` plus the synced history it reads from (``history_from``)."""

    from_block: int
    to_block: int
    history_from: int

    @property
    def tip(self) -> int:
        """The window's last block."""
        return self.to_block - 1

    def __len__(self) -> int:
        return self.to_block - self.from_block


def resolve(relation: str, synced: Iterable[Range], from_block: int | None, to_block: int | None) -> Window:
    """The window to run over, defaults filled from the synced ranges, or WindowError naming them."""
    ranges = merge(synced)
    if not ranges:
        raise errors.WindowError(
            f"no synced blocks of {relation}: sync a range that includes it first (trace-lite apply)",
            relation=relation, synced=[],
        )
    start, end = ranges[0]
    lo = start if from_block is None else from_block
    hi = end if to_block is None else to_block
    if hi <= lo:
        raise errors.WindowError(
            f"to_block ({hi}) must be greater than from_block ({lo}); windows are end-exclusive",
            relation=relation, field="to_block", synced=ranges,
        )
    if lo < start or hi > end:
        gap = f" (blocks [{end}, {ranges[1][0]}) are not synced)" if len(ranges) > 1 else ""
        raise errors.WindowError(
            f"window [{lo}, {hi}) is outside the synced blocks of {relation}: {describe(ranges)}{gap}; "
            f"choose a window inside [{start}, {end})",
            relation=relation, field="from_block" if lo < start else "to_block", synced=ranges,
        )
    return Window(from_block=lo, to_block=hi, history_from=start)


@dataclasses.dataclass(frozen=True)
class Sampling:
    """``count`` buckets of ``step`` blocks from the window's start; bucket k is sampled at its last block."""

    from_block: int
    to_block: int
    step: int

    @property
    def count(self) -> int:
        return -(-(self.to_block - self.from_block) // self.step)

    def block(self, bucket: int) -> int:
        """The block bucket ``bucket`` is sampled at (the window's last block for the last bucket)."""
        return min(self.from_block + (bucket + 1) * self.step - 1, self.to_block - 1)

    @property
    def blocks(self) -> list[int]:
        return [self.block(k) for k in range(self.count)]


def sampling(window: Window, samples: int) -> Sampling:
    """At most ``samples`` evenly spaced sample blocks over ``window``, always ending at its last block."""
    if samples < 1:
        raise errors.ParameterError(f"samples must be >= 1, got {samples}", field="samples", expected=">= 1")
    step = max(1, -(-len(window) // samples))
    return Sampling(from_block=window.from_block, to_block=window.to_block, step=step)
