"""Least-privilege S3 grants with explicit actions.

CDK's grant_read/grant_write use ``s3:GetObject*``-style wildcards; these name each action.
"""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3

READ_OBJECT = ["s3:GetObject"]
WRITE_OBJECT = ["s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"]
DELETE_OBJECT = ["s3:DeleteObject"]


def _keys(bucket: s3.IBucket, prefix: str) -> str:
    return bucket.arn_for_objects(f"{prefix}*")


def _list(grantee: iam.IGrantable, bucket: s3.IBucket, prefix: str) -> None:
    conditions = {"StringLike": {"s3:prefix": [f"{prefix}*"]}} if prefix else None
    grantee.grant_principal.add_to_principal_policy(
        iam.PolicyStatement(actions=["s3:ListBucket"], resources=[bucket.bucket_arn], conditions=conditions)
    )


def read(grantee: iam.IGrantable, bucket: s3.IBucket, prefix: str = "") -> None:
    """List and read the objects under ``prefix``."""
    _list(grantee, bucket, prefix)
    grantee.grant_principal.add_to_principal_policy(
        iam.PolicyStatement(actions=READ_OBJECT, resources=[_keys(bucket, prefix)])
    )


def read_write(grantee: iam.IGrantable, bucket: s3.IBucket, prefix: str = "", *, delete: bool = False) -> None:
    """List, read and write (multipart included) the objects under ``prefix``; delete them too if asked."""
    _list(grantee, bucket, prefix)
    actions = READ_OBJECT + WRITE_OBJECT + (DELETE_OBJECT if delete else [])
    grantee.grant_principal.add_to_principal_policy(
        iam.PolicyStatement(actions=actions, resources=[_keys(bucket, prefix)])
    )
