"""The ``cryo_ingest`` operator: extract a block range with Cryo, stage it, publish it on completion.

- ``request``: the task payload (validated) and the extraction config hash.
- ``extract``: runs ``cryo.freeze`` sub-range by sub-range and stages each file as it appears.
- ``operator``: the worker-facing operator (``run(ctx)``) and its ``on_success`` commit hook.

See docs/specs/datasets.md.
"""
