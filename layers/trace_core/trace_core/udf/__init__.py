"""User functions (UDFs): signed bundles and the fail-closed loader (docs/specs/udf.md, invariant 10).

- ``manifest``: the ``bundle_manifest.json`` model and its canonical signing bytes (pure);
- ``signing``: Ed25519 keys, key ids, signatures (pure);
- ``paths``: the rules a path inside a bundle must satisfy (pure);
- ``archive``: building a bundle zip and the fail-closed check at upload and load (pure: bytes in);
- ``models``: the registry's records (pure);
- ``registry``: the Postgres adapter for signing keys, bundles and versions (SQL in ``queries.sql``);
- ``service``: upload (check, store, register) and fetch (check again, extract) over those ports;
- ``runtime_api``: the AWS Lambda Runtime API, served to a sandboxed instance on a Unix socket;
- ``sandbox`` (+ ``seccomp``): one instance under bubblewrap (namespaces, no network, rlimits, seccomp);
- ``invoker``: the ``RuntimeInvoker`` port and the Lite adapter with warm instances.

This ``__init__`` imports nothing, so the pure modules stay free of psycopg.
"""
