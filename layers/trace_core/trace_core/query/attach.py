"""Trusted attach: granted, pinned data becomes named relations before any untrusted SQL runs.

A :class:`RelationSource` is one relation: either local Parquet files (the
caller has already verified each against its manifest's sha256, e.g. in the
Query Service's verified cache) or an Arrow table (trusted code read it, e.g.
from S3 or Postgres hot tables). A dataset spanning many ranges is one
relation over all its files. The file list is fixed when the query starts, so
the query sees exactly the pinned versions whatever commits meanwhile.

Parquet files become a view over ``read_parquet([...exact files...])`` and
DuckDB's ``allowed_paths`` is set to exactly those files before external
access is switched off: native scan speed (measured in
``docs/decisions/0501-query-attach.md``), and no other file is readable.
Arrow tables are registered in memory. :func:`validate` is pure and runs in
the parent; :func:`attach` runs in the worker on a not yet locked connection.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from trace_core.query import errors
from trace_core.query.gate.rules import context

if TYPE_CHECKING:
    import duckdb

# read_parquet treats these as glob patterns; a verified file path never needs them.
_GLOB_CHARACTERS = frozenset("*?[]{}")


@dataclasses.dataclass(frozen=True)
class RelationSource:
    """The data behind one relation: Parquet ``files`` (in range order) or an Arrow ``table``."""

    files: tuple[Path, ...] = ()
    table: pa.Table | None = None

    @classmethod
    def parquet(cls, files: Iterable[str | os.PathLike[str]]) -> RelationSource:
        """A relation over these verified local Parquet files (one schema)."""
        return cls(files=tuple(Path(f) for f in files))

    @classmethod
    def arrow(cls, table: pa.Table) -> RelationSource:
        """A relation over an in-memory Arrow table."""
        return cls(table=table)


def validate(relations: Mapping[str, RelationSource], *, data_roots: Sequence[Path] = ()) -> dict[str, RelationSource]:
    """Check names and sources; return them keyed by folded name, files made absolute and resolved.

    Raises :class:`~trace_core.query.errors.InvalidRelationError` naming the relation and what was expected.
    """
    roots = [Path(root).resolve() for root in data_roots]
    checked: dict[str, RelationSource] = {}
    for name, source in relations.items():
        folded = next(iter(context.granted_names([name])))
        if folded in checked:
            raise errors.InvalidRelationError(
                f"relation {name!r} is given twice (names are case-insensitive)", relation=name, expected="unique names"
            )
        if not isinstance(source, RelationSource):
            raise errors.InvalidRelationError(
                f"relation {name!r}: expected a RelationSource, got {type(source).__name__}",
                relation=name, expected="RelationSource",
            )
        if (source.table is None) == (not source.files):
            raise errors.InvalidRelationError(
                f"relation {name!r} needs exactly one of Parquet files or an Arrow table",
                relation=name, expected="files or table",
            )
        if source.table is not None:
            if not isinstance(source.table, pa.Table):
                raise errors.InvalidRelationError(
                    f"relation {name!r}: table must be a pyarrow.Table", relation=name, expected="pyarrow.Table"
                )
            checked[folded] = source
            continue
        checked[folded] = RelationSource(files=tuple(_checked_file(name, f, roots) for f in source.files))
    return checked


def _checked_file(name: str, file: Path, roots: Sequence[Path]) -> Path:
    text = str(file)
    if any(c in _GLOB_CHARACTERS for c in text) or any(ord(c) < 32 for c in text):
        raise errors.InvalidRelationError(
            f"relation {name!r}: file path {text!r} contains glob or control characters",
            relation=name, expected="a plain file path",
        )
    path = Path(os.path.realpath(file))
    if not path.is_file():
        raise errors.InvalidRelationError(
            f"relation {name!r}: {text} is not a readable regular file", relation=name, expected="an existing file"
        )
    if roots and not any(path.is_relative_to(root) for root in roots):
        raise errors.InvalidRelationError(
            f"relation {name!r}: {text} is outside the engine's data roots",
            relation=name, expected="a file beneath " + ", ".join(str(r) for r in roots),
        )
    return path


def attach(con: duckdb.DuckDBPyConnection, relations: Mapping[str, RelationSource]) -> list[str]:
    """Create each relation on ``con`` (still unlocked); return the files the views read, for ``allowed_paths``."""
    files: list[str] = []
    for name, source in relations.items():
        if source.table is not None:
            con.register(name, source.table)
            continue
        paths = [str(p) for p in source.files]
        # The relation API quotes the paths itself: no SQL is built from strings here.
        con.read_parquet(paths, hive_partitioning=False, union_by_name=False).create_view(name)
        files.extend(paths)
    return files


def redactions(relations: Mapping[str, RelationSource]) -> dict[str, str]:
    """File path -> placeholder, so error messages name the relation instead of the cache layout."""
    return {str(path): f"<{name}[{i}]>" for name, source in relations.items() for i, path in enumerate(source.files)}
