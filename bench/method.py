"""The one method every benchmark uses: paired rounds, disturbed rounds excluded, answers checked by content.

- A **round** is one timed run of one side (Trace or a reference) on the same inputs. Rounds are run in pairs,
  Trace and the reference back to back, the order alternating from one round to the next, so slow drifts of
  the machine hit both sides of a pair alike.
- Each round records the CPU of the processes it measures (the process groups the benchmark started) and what
  the whole machine used meanwhile (``/proc/stat``); the difference is **outside load**. A round whose outside
  load exceeds a set share of the machine (``Rule.max_outside_share``, default 10%) is excluded, and so is its
  pair; the count of excluded pairs is reported with the figure.
- The figure is the **median of the pair ratios** (reference seconds / Trace seconds: above 1, Trace is faster),
  with the lowest and highest ratio and the number of pairs.
- Answers are compared by **content**: per dataset the row count, sums of columns and an order-independent
  hash of the rows' keys (``digest``), not counts alone.

Everything here is pure except ``Meter``, which reads ``/proc``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import statistics
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Round:
    """One timed run of one side.

    ``seconds``: the figure (the benchmark's own start and stop). ``window_s``: the span over which the CPU was
    read (at least ``seconds``; defaults to it). ``cpu``: CPU seconds of each measured process group over the
    window. ``machine_cpu``: CPU seconds the whole machine worked over the window (``/proc/stat``).
    """

    side: str
    index: int
    seconds: float
    cpu: Mapping[str, float] = field(default_factory=dict)
    machine_cpu: float = 0.0
    cores: int = 1
    window_s: float | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def window(self) -> float:
        return self.window_s if self.window_s is not None else self.seconds

    @property
    def outside_cpu(self) -> float:
        """CPU seconds used outside the measured groups over the window (never negative)."""
        return max(0.0, self.machine_cpu - sum(self.cpu.values()))

    @property
    def outside_share(self) -> float:
        """Outside CPU as a share of the whole machine (all cores) over the window."""
        capacity = self.window * self.cores
        return self.outside_cpu / capacity if capacity > 0 else 0.0

    def cpu_pct(self) -> dict[str, int]:
        """Each group's CPU, and ``outside``, in % of one core over the window."""
        window = self.window or 1.0
        shares = {group: round(100 * seconds / window) for group, seconds in self.cpu.items()}
        shares["outside"] = round(100 * self.outside_cpu / window)
        return shares

    def as_dict(self) -> dict[str, Any]:
        return {"side": self.side, "round": self.index, "seconds": round(self.seconds, 3),
                "window_s": round(self.window, 3), "cpu_s": {k: round(v, 2) for k, v in self.cpu.items()},
                "machine_cpu_s": round(self.machine_cpu, 2), "cores": self.cores,
                "outside_share": round(self.outside_share, 3), "cpu_pct": self.cpu_pct(), **self.extra}


@dataclass(frozen=True)
class Rule:
    """When a round is too disturbed to count: more than ``max_outside_share`` of the machine used outside."""

    max_outside_share: float = 0.10

    def __post_init__(self) -> None:
        if not 0 <= self.max_outside_share <= 1:
            raise ValueError(f"max_outside_share must be between 0 and 1, got {self.max_outside_share}")

    def reason(self, round_: Round) -> str | None:
        """Why ``round_`` is excluded, or None if it counts."""
        if round_.outside_share > self.max_outside_share:
            return (f"{round_.side} round {round_.index}: {round_.outside_share:.0%} of the machine used outside "
                    f"the measured processes (limit {self.max_outside_share:.0%})")
        return None


@dataclass(frozen=True)
class Pair:
    """A reference round and a subject (Trace) round of the same index, run back to back on the same inputs."""

    reference: Round
    subject: Round

    @property
    def ratio(self) -> float:
        """Reference seconds / subject seconds: the subject's speed as a multiple of the reference's."""
        return self.reference.seconds / self.subject.seconds

    def excluded(self, rule: Rule) -> list[str]:
        """The reasons this pair does not count (empty if it does)."""
        return [r for r in (rule.reason(self.reference), rule.reason(self.subject)) if r]


def pair_rounds(rounds: Iterable[Round], reference: str, subject: str) -> list[Pair]:
    """The pairs of ``reference`` and ``subject`` rounds with the same index, in index order.

    Raises ValueError if a side has a round the other lacks, or two rounds of one index: a ratio across
    rounds that did not run together is not a paired ratio.
    """
    sides: dict[str, dict[int, Round]] = {reference: {}, subject: {}}
    for r in rounds:
        if r.side in sides:
            if r.index in sides[r.side]:
                raise ValueError(f"two {r.side} rounds with index {r.index}")
            sides[r.side][r.index] = r
    unpaired = set(sides[reference]) ^ set(sides[subject])
    if unpaired:
        raise ValueError(f"rounds {sorted(unpaired)} of {reference!r} / {subject!r} have no partner")
    return [Pair(sides[reference][i], sides[subject][i]) for i in sorted(sides[reference])]


def pair_ratios(pairs: Sequence[Pair], rule: Rule) -> tuple[list[float], list[str]]:
    """The ratios of the pairs that count, and the reasons for the pairs that do not."""
    ratios: list[float] = []
    reasons: list[str] = []
    for pair in pairs:
        why = pair.excluded(rule)
        if why:
            reasons.append("; ".join(why))
        else:
            ratios.append(pair.ratio)
    return ratios, reasons


@dataclass(frozen=True)
class Summary:
    """The median of the counted pair ratios with its spread; ``excluded``: pairs left out."""

    median: float | None
    low: float | None
    high: float | None
    n: int
    excluded: int
    ratios: tuple[float, ...]

    def as_dict(self) -> dict[str, Any]:
        def r(x: float | None) -> float | None:
            return None if x is None else round(x, 3)

        return {"median": r(self.median), "min": r(self.low), "max": r(self.high), "n": self.n,
                "excluded": self.excluded, "ratios": [round(x, 3) for x in self.ratios]}

    def __str__(self) -> str:
        if self.median is None:
            return f"no pair counted ({self.excluded} excluded)"
        return (f"{self.median:.2f}x (min {self.low:.2f}x, max {self.high:.2f}x, {self.n} pairs, "
                f"{self.excluded} excluded)")


def summary(pairs: Sequence[Pair], rule: Rule) -> Summary:
    """Median, min and max of the counted pairs' ratios, how many counted and how many were excluded."""
    ratios, reasons = pair_ratios(pairs, rule)
    if not ratios:
        return Summary(None, None, None, 0, len(reasons), ())
    return Summary(statistics.median(ratios), min(ratios), max(ratios), len(ratios), len(reasons), tuple(ratios))


def order(index: int, sides: Sequence[str]) -> list[str]:
    """The order of round ``index``'s runs: ``sides`` as given on even indices, reversed on odd ones (with the
    subject in the middle of three, each reference runs before it in half the rounds and after it in the rest)."""
    return list(sides) if index % 2 == 0 else list(reversed(sides))


# ---------------------------------------------------------------- content checks
def key_hash(keys: Iterable[Any]) -> str:
    """An order-independent sha256 of ``keys`` (a multiset: the same keys in any order hash alike, a
    missing, extra, duplicated or changed key does not)."""
    digest = hashlib.sha256()
    for text in sorted(repr(k) for k in keys):
        digest.update(text.encode())
        digest.update(b"\n")
    return digest.hexdigest()


def digest(rows: int, sums: Mapping[str, int | float], keys: Iterable[Any]) -> dict[str, Any]:
    """What two answers must share to be the same: the row count, column sums and the keys' hash."""
    return {"rows": rows, "sums": dict(sorted(sums.items())), "keys": key_hash(keys)}


def content_mismatches(expected: Mapping[str, Mapping[str, Any]], got: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Per dataset (or query), each field of ``digest`` where ``got`` differs from ``expected``; empty if equal."""
    problems = [f"{name}: missing" for name in expected if name not in got]
    problems += [f"{name}: not expected" for name in got if name not in expected]
    for name in expected:
        if name in got:
            problems += [f"{name}: {part} {got[name].get(part)!r} != expected {expected[name].get(part)!r}"
                         for part in ("rows", "sums", "keys") if got[name].get(part) != expected[name].get(part)]
    return problems


# ---------------------------------------------------------------- reading /proc
def machine_cpu_seconds(stat: str | None = None) -> float:
    """CPU seconds the whole machine has worked since boot, from ``/proc/stat``'s ``cpu`` line."""
    if stat is None:
        with open("/proc/stat") as file:
            stat = file.readline()
    parts = stat.split()
    if not parts or parts[0] != "cpu":
        raise ValueError(f"not /proc/stat's cpu line: {stat[:60]!r}")
    # user nice system idle iowait irq softirq steal (guest and guest_nice are inside user and nice)
    values = [int(v) for v in parts[1:9]] + [0] * max(0, 9 - len(parts))
    user, nice, system, _idle, _iowait, irq, softirq, steal = values[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


class Meter:
    """CPU seconds of process groups (each root with its descendants) and of the machine, between start and stop.

    Read twice, at ``start()`` and ``stop()``, not polled (polling /proc costs CPU on the cores it measures).
    A descendant that exits in between is not lost: its parent, having reaped it, counts it in its
    ``children_*`` times. ``shallow`` groups are counted without their descendants (e.g. the benchmark's own
    process, whose children are measured apart).
    """

    def __init__(self, groups: Mapping[str, Sequence[int]], *, shallow: Sequence[str] = ()) -> None:
        import psutil  # type: ignore[import-untyped]

        self._psutil = psutil
        self._groups = groups
        self._shallow = tuple(shallow)
        self._first: dict[str, float] = {}
        self._machine = 0.0
        self._began = 0.0

    def _sample(self) -> dict[str, float]:
        seen = dict.fromkeys(self._groups, 0.0)
        for group, pids in self._groups.items():
            deep = group not in self._shallow
            for pid in pids:
                try:
                    root = self._psutil.Process(pid)
                    family = [root, *root.children(recursive=True)] if deep else [root]
                except self._psutil.NoSuchProcess:
                    continue
                for proc in family:
                    with contextlib.suppress(self._psutil.NoSuchProcess, self._psutil.AccessDenied):
                        t = proc.cpu_times()
                        seen[group] += t.user + t.system + ((t.children_user + t.children_system) if deep else 0.0)
        return seen

    def start(self) -> Meter:
        self._first = self._sample()
        self._machine = machine_cpu_seconds()
        self._began = time.monotonic()
        return self

    def stop(self, exited: Mapping[str, float] | None = None) -> tuple[float, dict[str, float], float]:
        """``(window seconds, {group: CPU seconds}, machine CPU seconds)`` since ``start()``.

        ``exited``: CPU seconds of groups that ended before stop() (e.g. a child's ``rusage``), added as given.
        """
        last = self._sample()
        machine = machine_cpu_seconds() - self._machine
        window = time.monotonic() - self._began
        used = {group: max(0.0, last[group] - self._first[group]) for group in self._groups}
        used.update(exited or {})
        return window, used, machine
