#!/usr/bin/env bash
# Runs inside LocalStack when it is ready: the same buckets and queues `trace-lite up` provisions on moto.
set -euo pipefail
for b in datasets results scratch; do awslocal s3 mb "s3://$b" || true; done
for q in trace-tasks trace-sink trace-deliveries; do
  dlq_url=$(awslocal sqs create-queue --queue-name "$q-dlq" --query QueueUrl --output text)
  dlq_arn=$(awslocal sqs get-queue-attributes --queue-url "$dlq_url" --attribute-names QueueArn --query Attributes.QueueArn --output text)
  awslocal sqs create-queue --queue-name "$q" \
    --attributes "{\"VisibilityTimeout\":\"30\",\"RedrivePolicy\":\"{\\\"deadLetterTargetArn\\\":\\\"$dlq_arn\\\",\\\"maxReceiveCount\\\":\\\"5\\\"}\"}"
done
