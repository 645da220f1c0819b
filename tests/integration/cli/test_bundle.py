"""`trace-lite bundle init | build | upload | list` against real Postgres and a moto S3 server.

What a user relies on: a bundle they init and build uploads as version 1, the next build as version 2;
the same archive twice, an archive changed after signing, or a bad option is refused with the field or
the entry and the rule named, and nothing is stored or registered for it.
"""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.integration.cli.conftest import Run


@pytest.fixture
def bundles_bucket(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, str]]:
    s3 = boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1", aws_access_key_id="test",
                      aws_secret_access_key="test")
    name = f"bundles-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=name)
    monkeypatch.setenv("TRACE_BUNDLES_BUCKET", name)
    yield s3, name
    for item in s3.list_objects_v2(Bucket=name).get("Contents", []):
        s3.delete_object(Bucket=name, Key=item["Key"])
    s3.delete_bucket(Bucket=name)


@pytest.fixture
def clean_registry(db: Any) -> None:
    db.execute("DELETE FROM state.udf_bundle_versions")
    db.execute("DELETE FROM state.udf_bundles")
    db.execute("DELETE FROM state.udf_signing_keys")


def _objects(s3: Any, bucket: str) -> list[str]:
    return sorted(item["Key"] for item in s3.list_objects_v2(Bucket=bucket).get("Contents", []))


@pytest.mark.usefixtures("clean_registry")
@pytest.mark.parametrize("runtime", ["python", "node"])
def test_init_build_upload_list_gives_version_1_then_2(cli: Run, tmp_path: Path, bundles_bucket, db,
                                                         runtime: str) -> None:
    s3, bucket = bundles_bucket
    directory = tmp_path / f"greeter-{runtime}"
    assert cli("bundle", "init", str(directory), "--runtime", runtime)[0] == 0
    assert (directory / "bundle.json").is_file()

    code, out, err = cli("bundle", "build", str(directory), "--out", str(tmp_path / "v1.zip"))
    assert code == 0, err
    code, out, err = cli("bundle", "upload", str(tmp_path / "v1.zip"))
    assert code == 0, err
    assert out.strip() == f"greeter-{runtime} 1"

    code, _, err = cli("bundle", "build", str(directory), "--out", str(tmp_path / "v2.zip"))
    assert code == 0, err
    assert cli("bundle", "upload", str(tmp_path / "v2.zip"))[1].strip() == f"greeter-{runtime} 2"

    code, out, _ = cli("bundle", "list")
    assert code == 0 and f"greeter-{runtime}" in out and " 2 " in out
    rows = db.execute("SELECT version, storage_key, sha256 FROM state.udf_bundle_versions WHERE name = %s "
                      "ORDER BY version", (f"greeter-{runtime}",)).fetchall()
    assert [r["version"] for r in rows] == [1, 2]
    # Each archive is stored at its content address, and the registry points at it.
    assert _objects(s3, bucket) == sorted(r["storage_key"] for r in rows)


@pytest.mark.usefixtures("clean_registry")
def test_a_replayed_or_tampered_archive_is_refused_naming_the_rule_and_nothing_is_stored(
        cli: Run, tmp_path: Path, bundles_bucket, db) -> None:
    s3, bucket = bundles_bucket
    directory = tmp_path / "fn"
    cli("bundle", "init", str(directory), "--runtime", "python")
    cli("bundle", "build", str(directory), "--out", str(tmp_path / "v1.zip"))
    assert cli("bundle", "upload", str(tmp_path / "v1.zip"))[0] == 0
    stored = _objects(s3, bucket)

    # The same archive again: a replay of version 1.
    code, _, err = cli("bundle", "upload", str(tmp_path / "v1.zip"))
    assert code == 1
    assert "version-not-newer" in err and "replay" in err

    # Version 2 with main.py changed after signing: the manifest's digest no longer matches.
    cli("bundle", "build", str(directory), "--out", str(tmp_path / "v2.zip"))
    tampered = io.BytesIO()
    with zipfile.ZipFile(tmp_path / "v2.zip") as src, zipfile.ZipFile(tampered, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            dst.writestr(info, data + b"\nimport os\n" if info.filename == "main.py" else data)
    (tmp_path / "evil.zip").write_bytes(tampered.getvalue())
    code, _, err = cli("bundle", "upload", str(tmp_path / "evil.zip"))
    assert code == 1
    assert "'main.py'" in err and ("size-mismatch" in err or "sha256-mismatch" in err)

    assert _objects(s3, bucket) == stored
    assert [r["version"] for r in db.execute("SELECT version FROM state.udf_bundle_versions WHERE name = 'fn'")] == [1]


def test_bad_options_are_refused_naming_the_field(cli: Run, tmp_path: Path) -> None:
    code, _, err = cli("bundle", "init", str(tmp_path / "x"), "--runtime", "cobol")
    assert code == 1 and "runtime" in err and "python, node or rust" in err
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    code, _, err = cli("bundle", "init", str(tmp_path / "full"), "--runtime", "python")
    assert code == 1 and "not empty" in err
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"
    code, _, err = cli("bundle", "init", str(tmp_path / "Bad Name"), "--runtime", "python")
    assert code == 1 and "bundle name" in err
    code, _, err = cli("bundle", "build", str(tmp_path / "nowhere"))
    assert code == 1 and "bundle.json" in err
    code, _, err = cli("bundle", "upload", str(tmp_path / "missing.zip"))
    assert code == 1 and "no such file" in err


@pytest.mark.usefixtures("clean_registry", "bundles_bucket")
@pytest.mark.parametrize("runtime", ["python", "node"])
def test_invoke_runs_the_handler_in_the_sandbox_and_a_failure_exits_1_with_its_type(cli: Run, tmp_path: Path,
                                                                                   runtime: str) -> None:
    directory = tmp_path / f"counter-{runtime}"
    cli("bundle", "init", str(directory), "--runtime", runtime)
    cli("bundle", "build", str(directory), "--out", str(tmp_path / "v1.zip"))
    assert cli("bundle", "upload", str(tmp_path / "v1.zip"))[0] == 0
    event = tmp_path / "event.json"
    event.write_text('{"rows": [{"a": 1}, {"a": 2}, {"a": 3}], "params": {}, "context": {}}')

    code, out, err = cli("bundle", "invoke", f"counter-{runtime}", "--input", str(event))
    assert code == 0, err
    result = json.loads(out)
    assert result["rows"] == 3 and result["request_id"]  # called as Lambda calls it: the context's request id

    # Version 2 throws: the invocation fails with the handler's error type, and version 1 still answers.
    if runtime == "python":
        (directory / "main.py").write_text("def handler(event, context):\n    raise KeyError('no such row')\n")
    else:
        (directory / "index.js").write_text("exports.handler = async () => { throw new RangeError('no such row'); };\n")
    cli("bundle", "build", str(directory), "--out", str(tmp_path / "v2.zip"))
    assert cli("bundle", "upload", str(tmp_path / "v2.zip"))[0] == 0
    code, out, err = cli("bundle", "invoke", f"counter-{runtime}", "--input", str(event))
    assert code == 1 and out == ""
    assert ("KeyError" if runtime == "python" else "RangeError") in err and "no such row" in err
    code, out, _ = cli("bundle", "invoke", f"counter-{runtime}@1", "--input", str(event))
    assert code == 0 and json.loads(out)["rows"] == 3


@pytest.mark.usefixtures("clean_registry", "bundles_bucket")
def test_invoke_refuses_an_unknown_bundle_and_bad_input_naming_them(cli: Run, tmp_path: Path) -> None:
    event = tmp_path / "event.json"
    event.write_text("{}")
    code, _, err = cli("bundle", "invoke", "nobody", "--input", str(event))
    assert code == 1 and "no registered bundle 'nobody'" in err
    code, _, err = cli("bundle", "invoke", "nobody@x", "--input", str(event))
    assert code == 1 and "version after @" in err
    event.write_text("{not json")
    code, _, err = cli("bundle", "invoke", "nobody", "--input", str(event))
    assert code == 1 and "not JSON" in err


EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "bundles"
TRANSFERS = {"rows": [{"transaction_hash": "0x01", "value_string": str(2**255 + 1)},
                      {"transaction_hash": "0x02", "value_string": "999"},
                      {"transaction_hash": "0x03", "value_string": str(2**200)}],
             "params": {"threshold": str(2**200)}, "context": {}}


@pytest.mark.usefixtures("clean_registry", "bundles_bucket")
@pytest.mark.parametrize("example", ["large-transfers-python", "large-transfers-node", "row-count-rust"])
def test_the_examples_build_upload_and_answer(cli: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              example: str) -> None:
    monkeypatch.setenv("CARGO_TARGET_DIR", str(tmp_path / "target"))  # the example's tree stays clean
    code, _, err = cli("bundle", "build", str(EXAMPLES / example), "--out", str(tmp_path / "b.zip"))
    assert code == 0, err
    assert cli("bundle", "upload", str(tmp_path / "b.zip"))[1].strip() == f"{example} 1"
    event = tmp_path / "event.json"
    event.write_text(json.dumps(TRANSFERS))
    code, out, err = cli("bundle", "invoke", example, "--input", str(event))
    assert code == 0, err
    result = json.loads(out)
    if example == "row-count-rust":
        assert result["rows"] == 3 and result["request_id"]
    else:  # exact uint256 comparison: 2**255 + 1 and 2**200 pass a 2**200 threshold, 999 does not
        assert [r["transaction_hash"] for r in result["flagged"]] == ["0x01", "0x03"]
        assert result["flagged"][0]["value"] == str(2**255 + 1) and result["checked"] == 3
