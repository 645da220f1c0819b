"""``awslocal`` for tests: the few AWS CLI forms local/localstack/init-aws.sh uses, sent to ``AWS_ENDPOINT_URL``.

There is no Docker (so no LocalStack) and no AWS CLI in the test environment; this
runs the init script's calls against a real moto server with boto3 instead. A
form it does not know fails loudly, so a new command in the script needs a line
here before its test can pass.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import boto3


def _client(service: str) -> Any:
    return boto3.client(service, endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name="us-east-1")


def main(argv: list[str]) -> int:
    if argv[:2] == ["s3", "mb"] and len(argv) == 3 and argv[2].startswith("s3://"):
        _client("s3").create_bucket(Bucket=argv[2].removeprefix("s3://"))
        print(f"make_bucket: {argv[2].removeprefix('s3://')}")
        return 0
    parser = argparse.ArgumentParser(prog="awslocal", exit_on_error=False)
    parser.add_argument("service", choices=["sqs"])
    parser.add_argument("operation", choices=["create-queue", "get-queue-attributes"])
    parser.add_argument("--queue-name")
    parser.add_argument("--queue-url")
    parser.add_argument("--attributes")
    parser.add_argument("--attribute-names")
    parser.add_argument("--query", choices=["QueueUrl", "Attributes.QueueArn"])
    parser.add_argument("--output", choices=["text"])
    args = parser.parse_args(argv)
    sqs = _client("sqs")
    if args.operation == "create-queue":
        attributes = json.loads(args.attributes) if args.attributes else {}
        url = sqs.create_queue(QueueName=args.queue_name, Attributes=attributes)["QueueUrl"]
        print(url if args.query == "QueueUrl" else json.dumps({"QueueUrl": url}))
        return 0
    attributes = sqs.get_queue_attributes(QueueUrl=args.queue_url, AttributeNames=[args.attribute_names])
    if args.query != "Attributes.QueueArn":
        raise SystemExit(f"awslocal_moto: unsupported query {args.query!r}")
    print(attributes["Attributes"]["QueueArn"])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
