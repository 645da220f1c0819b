#!/usr/bin/env bash
# LocalStack runs this once it is ready (init/ready.d): the buckets and queues `trace-lite up`
# provisions on moto. Their one declaration is trace_core/lite/provision.py (QUEUES, buckets());
# tests/infra/test_localstack.py runs this script and checks it creates exactly what provision() does.
set -euo pipefail
for bucket in datasets results scratch bundles; do
  awslocal s3 mb "s3://$bucket" || true  # already there: fine
done
for queue in trace-tasks trace-sink trace-deliveries; do
  dlq_url=$(awslocal sqs create-queue --queue-name "$queue-dlq" --query QueueUrl --output text)
  dlq_arn=$(awslocal sqs get-queue-attributes --queue-url "$dlq_url" --attribute-names QueueArn \
    --query Attributes.QueueArn --output text)
  awslocal sqs create-queue --queue-name "$queue" \
    --attributes "{\"VisibilityTimeout\":\"30\",\"RedrivePolicy\":\"{\\\"deadLetterTargetArn\\\":\\\"$dlq_arn\\\",\\\"maxReceiveCount\\\":\\\"5\\\"}\"}"
done
