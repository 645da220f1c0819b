"""Decoders: raw Cryo datasets in, typed relations out. Pure functions over pyarrow tables (no I/O).

- :mod:`trace_core.decode.events`: the Monad staking event ABI and its topic0s.
- :mod:`trace_core.decode.staking`: ``logs`` -> ``staking_events``.

ERC-20 ``Transfer`` needs no decoder of ours: Cryo's own ``erc20_transfers`` dataset
carries the value as an exact decimal string (``value_string``); see
docs/decisions/0801-decoded-datasets.md.
"""
