"""Datasets: the registry of datasets and their versions, the object store port, and the commit protocol.

- ``naming``: pure functions for version ids and object keys.
- ``models``: manifests, staged outputs and registry rows (frozen pydantic).
- ``objectstore``: the ``ObjectStore`` port, its S3 adapter and an in-memory fake.
- ``registry``: Postgres rows for datasets and dataset versions.
- ``commit``: stage outputs under an attempt's prefix, then publish them inside
  the dispatcher's completion transaction.
- ``cleanup``: delete staging prefixes that no live attempt owns.

See docs/specs/datasets.md for the protocol and the manifest format.
"""
