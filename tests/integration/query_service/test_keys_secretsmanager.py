"""The Secrets Manager key store against the moto server: created by the first minter, rotated with overlap."""

from __future__ import annotations

import uuid

import boto3
import pytest
from trace_core import settings as settings_mod
from trace_core.auth import errors, grants, keys, tokens

ISSUER = "trace-sm-test"


@pytest.fixture
def secret_id() -> str:
    return f"trace/test-keys-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def sm_settings(moto_url, secret_id, tmp_path) -> settings_mod.Settings:
    return settings_mod.load({}, home=tmp_path, aws_endpoint_url=moto_url, token_keys="secretsmanager",
                             token_keys_secret=secret_id)


def _grant():
    version = uuid.uuid4().hex
    return grants.build([{"dataset_key": "monad_local/blocks", "dataset_uuid": uuid.uuid4(), "dataset_version": version,
                          "storage_prefix": f"cryo/1/x/0_10/{version}/", "range_start": 0, "range_end": 10}])


def _mint(store) -> str:
    return tokens.mint_user_token(store, issuer=ISSUER, org_id=uuid.uuid4(), subject="s", grants=_grant())


def _verify(store, token):
    return tokens.verify(store, token, audience=tokens.USER_AUDIENCE, issuer=ISSUER)


def test_minter_creates_the_secret_and_a_separate_verifier_reads_it(sm_settings, moto_url, secret_id):
    # GIVEN no secret yet: a verifier refuses everything rather than creating one
    verifier = keys.from_settings(sm_settings, min_reload_s=0.0)
    assert isinstance(verifier, keys.SecretsManagerKeyStore)
    minter = keys.from_settings(sm_settings)
    token = _mint(minter)  # WHEN the minter signs, the secret is created
    # THEN the verifier (another process' view) accepts the token
    assert _verify(verifier, token).key_id == minter.signing_key().kid
    client = boto3.client("secretsmanager", endpoint_url=moto_url, region_name="us-east-1")
    assert '"trace.keyring/1"' in client.get_secret_value(SecretId=secret_id)["SecretString"]


def test_rotation_keeps_the_previous_key_for_the_overlap(sm_settings):
    minter = keys.from_settings(sm_settings)
    verifier = keys.from_settings(sm_settings, min_reload_s=0.0)
    before = _mint(minter)
    _verify(verifier, before)
    minter.rotate()
    after = _mint(minter)
    # Both verify at a verifier that had the old ring cached.
    assert _verify(verifier, before).key_id != _verify(verifier, after).key_id
    with pytest.raises(errors.TokenInvalidError) as caught:
        _verify(verifier, after.replace(after.split(".")[0], before.split(".")[0]))
    assert caught.value.problem == "signature"


def test_unreachable_secrets_manager_is_a_clear_key_store_error(tmp_path):
    settings = settings_mod.load({}, home=tmp_path, aws_endpoint_url="http://127.0.0.1:9", token_keys="secretsmanager")
    store = keys.from_settings(settings)
    with pytest.raises(errors.KeyStoreError) as caught:
        store.signing_key()
    assert "secretsmanager:GetSecretValue" in caught.value.details["fix"]
