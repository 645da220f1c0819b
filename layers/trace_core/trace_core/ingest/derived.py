"""Derived datasets: relations computed from a Cryo dataset of the same range, then staged like one.

``staking_events`` is decoded from the range's ``logs`` (:mod:`trace_core.decode.staking`).
When a request asks for a derived dataset, Cryo extracts its source into the
sub-range's directory, :func:`derive` writes the derived file next to it under
the name Cryo would have used, and the source file is removed unless it was
requested too. From there on a derived file is staged, committed and made
visible exactly like a Cryo file: same commit protocol, same manifests, same
deterministic version ids. See docs/decisions/0801-decoded-datasets.md.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from trace_core.datasets import naming
from trace_core.decode import errors as decode_errors
from trace_core.decode import staking
from trace_core.ingest import errors, rewrite


@dataclasses.dataclass(frozen=True)
class Derived:
    """A dataset computed from one Cryo dataset of the same range by a pure ``transform``."""

    name: str
    source: str
    version: str
    transform: Callable[[pa.Table], pa.Table]


DERIVED: dict[str, Derived] = {
    staking.DATASET: Derived(staking.DATASET, "logs", staking.VERSION, staking.staking_events),
}

def cryo_datasets(requested: Sequence[str]) -> list[str]:
    """What Cryo must extract for ``requested``: its Cryo datasets plus the sources of derived ones, in order."""
    out: list[str] = []
    for name in requested:
        wanted = DERIVED[name].source if name in DERIVED else name
        if wanted not in out:
            out.append(wanted)
    return out


def provenance(dataset: str, cryo_version: str) -> str:
    """What produced ``dataset``'s files, for its manifest: Cryo's version, plus the decoder's if derived."""
    spec = DERIVED.get(dataset)
    return f"{cryo_version} + {spec.version}" if spec else cryo_version


def derive(requested: Sequence[str], out_dir: Path, *, network: str, start: int, end: int, compression: str) -> None:
    """Write every derived dataset of ``requested`` for ``[start, end)`` from its source file in ``out_dir``."""
    sources: set[str] = set()
    for name in requested:
        spec = DERIVED.get(name)
        if spec is None:
            continue
        source = out_dir / naming.cryo_file_name(network, spec.source, start, end)
        if not source.is_file():
            raise errors.ExtractError(
                f"cryo wrote no {source.name}, which {name} is derived from", reason="missing file",
            )
        try:
            table = spec.transform(pq.read_table(source))
        except decode_errors.DecodeError as exc:
            # The logs are the chain's: a retry decodes the same bytes, so do not burn attempts on it.
            raise errors.DerivationError(
                f"cannot derive {name} from blocks [{start}, {end}): {exc.message}", dataset=name,
                **exc.details,
            ) from exc
        # pyarrow writes full statistics (NULL counts included), unlike Cryo: see rewrite.py.
        pq.write_table(table, out_dir / naming.cryo_file_name(network, name, start, end),
                       compression=rewrite.pyarrow_compression(compression), write_statistics=True)
        sources.add(spec.source)
    for source_name in sources - set(requested):
        (out_dir / naming.cryo_file_name(network, source_name, start, end)).unlink(missing_ok=True)
