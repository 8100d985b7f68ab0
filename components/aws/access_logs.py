"""The S3 bucket a production load balancer writes its access logs to: private,
encrypted, TLS-only, owned by the account, and emptied after the log retention.

Network load balancers log only TLS listeners; swarmstack's listeners are TCP/UDP
(TLS ends at the swarm's services), so the bucket stays nearly empty. It is there so
that a TLS listener added later is logged from its first connection, and because
scanners (CKV_AWS_91) ask for it; flow logs record the TCP traffic itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

PREFIX = "nlb"


def bucket_policy(partition: str, account: str, bucket_arn: str) -> dict[str, Any]:
    """Log delivery may write under the account's own prefix; no principal at all, in this
    account or any other, may use plain HTTP. Pure."""
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "LogDeliveryWrite", "Effect": "Allow", "Principal": {"Service": "delivery.logs.amazonaws.com"},
         "Action": "s3:PutObject", "Resource": f"{bucket_arn}/{PREFIX}/AWSLogs/{account}/*",
         "Condition": {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control", "aws:SourceAccount": account}}},
        {"Sid": "LogDeliveryAclCheck", "Effect": "Allow", "Principal": {"Service": "delivery.logs.amazonaws.com"},
         "Action": "s3:GetBucketAcl", "Resource": bucket_arn,
         "Condition": {"StringEquals": {"aws:SourceAccount": account}}},
        {"Sid": "TlsOnly", "Effect": "Deny", "Principal": "*",
         "Action": "s3:*", "Resource": [bucket_arn, f"{bucket_arn}/*"],
         "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
    ]}


@dataclass(frozen=True)
class AccessLogBucketArgs:
    """What the bucket needs."""

    retention_days: int
    """Days after which log objects expire."""
    tags: dict[str, str]
    """Tags for the bucket."""
    name: pulumi.Input[str] | None = None
    """The bucket's name (globally unique, 3 to 63 lowercase characters); None lets Pulumi name it."""


class AccessLogBucket(pulumi.ComponentResource):
    """A private, encrypted bucket with a log-delivery policy and an expiry rule."""

    bucket: pulumi.Output[str]
    prefix: str

    def __init__(self, name: str, args: AccessLogBucketArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("swarmstack:aws:AccessLogBucket", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        invoke = pulumi.InvokeOptions(parent=self)
        account = aws.get_caller_identity(opts=invoke).account_id
        partition = aws.get_partition(opts=invoke).partition
        bucket = aws.s3.Bucket(f"{name}-bucket", bucket=args.name, force_destroy=False,
                               tags={**args.tags, "Name": f"{name}-bucket"},
                               opts=child)
        owner = aws.s3.BucketOwnershipControls(f"{name}-ownership", bucket=bucket.id,
                                               rule={"object_ownership": "BucketOwnerEnforced"}, opts=child)
        block = aws.s3.BucketPublicAccessBlock(f"{name}-private", bucket=bucket.id, block_public_acls=True,
                                               block_public_policy=True, ignore_public_acls=True,
                                               restrict_public_buckets=True, opts=child)
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption", bucket=bucket.id,
            rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"}}], opts=child)
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-expiry", bucket=bucket.id,
            rules=[{"id": "expire-logs", "status": "Enabled", "filter": {"prefix": f"{PREFIX}/"},
                    "expiration": {"days": args.retention_days}}], opts=child)
        policy = aws.s3.BucketPolicy(
            f"{name}-policy", bucket=bucket.id,
            policy=pulumi.Output.json_dumps(bucket.arn.apply(lambda arn: bucket_policy(partition, account, arn))),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[block, owner]))
        self.bucket = pulumi.Output.all(bucket.bucket, policy.id).apply(lambda v: v[0])
        self.prefix = PREFIX
        self.register_outputs({"bucket": self.bucket})
