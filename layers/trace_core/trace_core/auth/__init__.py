"""Capability tokens: signing keys, minting and verification, and the dataset grants they carry.

- ``models``: grants pinned to dataset versions, and the verified claims of a token.
- ``keyring``: the pure key ring (current signing key, keys kept for verification during rotation).
- ``keys``: the ``KeyStore`` port and its adapters (a 0600 file under ``home``, Secrets Manager).
- ``tokens``: mint user and task tokens, verify them (EdDSA pinned, audience, issuer, expiry).
- ``grants``: which pinned versions a principal gets (from the versions chain sync made visible).
- ``issuing``: the Lite principal, and the token a worker gets for a claimed task.

See docs/specs/query_service.md and docs/decisions/0701-capability-tokens.md.
"""
