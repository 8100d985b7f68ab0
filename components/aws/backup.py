"""The bucket the managers back the swarm's raft state up to: only the managers can write
it and nobody else, administrators included, can read what is in it.

A backup is the manager's `/var/lib/docker/swarm` (the node script's `backup` command). With
autolock off it holds the raft log's encryption keys next to the log itself: the swarm's
secrets and configs, join tokens and the CA key. It is as sensitive as a manager's disk,
so the bucket is

- versioned, and encrypted by default with the cluster's KMS key (SSE-KMS, S3 Bucket Key
  on: S3 asks KMS for a bucket-level data key, and the encryption context it passes is the
  bucket's ARN, which the managers' key grant names);
- private: public access blocked, ACLs off (`BucketOwnerEnforced`), TLS only;
- closed by its policy to every principal but the manager role for object reads and
  writes (`aws:PrincipalArn`), so an account administrator cannot read a backup either,
  until they delete the bucket policy (which the policy leaves to them) or use the root
  user;
- emptied by a lifecycle rule: a backup expires `retentionDays` after it was written,
  and a version that stopped being current (an overwrite, a delete) NONCURRENT_DAYS later.

It also holds the managers' restore tool, `tools/restore-<sha256>.sh` (`restore_tool_key`):
the part of the node script only `swarmstack-node backup` and `restore` run, which the 16 KiB
of EC2 user data has no room for. The stack writes it (the rendered `userdata.restore_tool`,
under the cluster key like the backups), one object per version, and leaves the earlier
ones: a manager reads the one its user data names, and runs it only when its sha256 is the
one its user data carries. The policy's manager-only rule covers the backups (`swarm/`), so the
deployer can write the tool; the managers' role may read it and write nothing there.

`pulumi destroy`: a production stack keeps the bucket and its settings (`retain_on_delete`):
the backups are for the day the cluster is gone. The name is deterministic, so the same
stack deployed again finds them (it must `pulumi import` the bucket first: docs/aws.md).
Other stacks delete the bucket with its backups (`force_destroy`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.common.names import bucket_name
from userdata.render import restore_tool_key

PREFIX = "swarm/"
"""Where the managers keep their backups in the bucket (every key starts with it)."""
NONCURRENT_DAYS = 3
"""Days an overwritten or deleted backup version stays before S3 removes it."""
UPLOAD_DAYS = 1
"""Days after which S3 aborts an unfinished multipart upload (a manager that died mid-backup)."""
OBJECT_ACTIONS = ("s3:GetObject*", "s3:PutObject*", "s3:DeleteObject*", "s3:RestoreObject")
"""What the bucket policy refuses every principal but the managers: reading, writing or
deleting a backup, any version of it, its ACL, tags or attributes."""


def backup_bucket_name(cluster: str, account: str, region: str) -> str:
    """The bucket's global name: cluster, account and region make it unique and stable
    (the same stack deployed again names the same bucket). Pure."""
    return bucket_name(f"swarmstack-{cluster}-backups-{account}-{region}")


def bucket_arn_of(partition: str, bucket: str) -> str:
    """An S3 bucket's ARN (S3 ARNs name neither region nor account). Pure."""
    return f"arn:{partition}:s3:::{bucket}"


def bucket_policy(bucket_arn: str, manager_role_arn: str) -> dict[str, Any]:
    """Plain HTTP refused to everyone; reading and writing backups (`swarm/`) refused to every
    principal whose ARN is not the manager role (an instance's session is judged by its
    role's ARN). Bucket-level calls (listing, the bucket's own settings, deleting this
    policy) and the restore tool (written by the stack) stay with the account's IAM. Pure."""
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "TlsOnly", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
         "Resource": [bucket_arn, f"{bucket_arn}/*"],
         "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
        {"Sid": "OnlyManagersTouchBackups", "Effect": "Deny", "Principal": "*", "Action": list(OBJECT_ACTIONS),
         "Resource": f"{bucket_arn}/{PREFIX}*",
         "Condition": {"StringNotEquals": {"aws:PrincipalArn": manager_role_arn}}},
    ]}


def lifecycle_rules(retention_days: int) -> list[aws.s3.BucketLifecycleConfigurationRuleArgsDict]:
    """The bucket's lifecycle: backups expire after `retention_days`, old versions
    NONCURRENT_DAYS after they stop being current, unfinished uploads after a day, and the
    delete markers left once every version is gone. Pure."""
    if retention_days < 1:
        raise ValueError(f"retention_days {retention_days} must be at least 1")
    return [
        {"id": "expire-backups", "status": "Enabled", "filter": {"prefix": PREFIX},
         "expiration": {"days": retention_days},
         "noncurrent_version_expiration": {"noncurrent_days": NONCURRENT_DAYS},
         "abort_incomplete_multipart_upload": {"days_after_initiation": UPLOAD_DAYS}},
        {"id": "remove-expired-delete-markers", "status": "Enabled", "filter": {"prefix": PREFIX},
         "expiration": {"expired_object_delete_marker": True}},
    ]


@dataclass(frozen=True)
class BackupBucketArgs:
    """What the backup bucket needs."""

    name: str
    """The bucket's global name (`backup_bucket_name`)."""
    key_arn: pulumi.Input[str]
    """The cluster's KMS key: the bucket's default encryption."""
    manager_role_arn: pulumi.Input[str]
    """The manager nodes' role: the only principal the bucket policy lets at the backups."""
    retention_days: int
    """Days a backup is kept (`backup.retentionDays`)."""
    production: bool
    """Production: `pulumi destroy` leaves the bucket, its backups and its settings in place."""
    tags: dict[str, str]
    """Tags for the bucket."""
    restore_tool: pulumi.Input[str]
    """The managers' restore tool (`userdata.restore_tool` of their parameters), kept under
    `restore_tool_key` of its text."""


class BackupBucket(pulumi.ComponentResource):
    """A versioned, KMS-encrypted, private bucket only the managers can use."""

    bucket: pulumi.Output[str]
    arn: pulumi.Output[str]
    store: pulumi.Output[str]
    """`s3://<bucket>`: what the managers' user data names as `backup_store`."""

    def __init__(self, name: str, args: BackupBucketArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("swarmstack:aws:BackupBucket", name, None, opts)
        # A production bucket outlives the stack: every child is left in place by destroy,
        # or deleting e.g. the policy would open the retained backups to the account.
        keep = args.production
        child = pulumi.ResourceOptions(parent=self, retain_on_delete=keep)
        bucket = aws.s3.Bucket(f"{name}-bucket", bucket=args.name, force_destroy=not keep,
                               tags={**args.tags, "Name": f"{name}-bucket", "swarmstack:purpose": "raft-backups"},
                               opts=child)
        owner = aws.s3.BucketOwnershipControls(f"{name}-ownership", bucket=bucket.id,
                                               rule={"object_ownership": "BucketOwnerEnforced"}, opts=child)
        block = aws.s3.BucketPublicAccessBlock(f"{name}-private", bucket=bucket.id, block_public_acls=True,
                                               block_public_policy=True, ignore_public_acls=True,
                                               restrict_public_buckets=True, opts=child)
        versioning = aws.s3.BucketVersioning(f"{name}-versioning", bucket=bucket.id,
                                             versioning_configuration={"status": "Enabled"}, opts=child)
        encryption = aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption", bucket=bucket.id,
            rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": "aws:kms",
                                                                "kms_master_key_id": args.key_arn},
                    "bucket_key_enabled": True}], opts=child)
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-expiry", bucket=bucket.id, rules=lifecycle_rules(args.retention_days),
            opts=pulumi.ResourceOptions(parent=self, retain_on_delete=keep, depends_on=[versioning]))
        policy = aws.s3.BucketPolicy(
            f"{name}-policy", bucket=bucket.id,
            policy=pulumi.Output.json_dumps(pulumi.Output.all(bucket.arn, args.manager_role_arn).apply(
                lambda v: bucket_policy(v[0], v[1]))),
            opts=pulumi.ResourceOptions(parent=self, retain_on_delete=keep, depends_on=[block, owner]))
        # Written after the policy that lets the deployer write it (an older one refused every
        # principal but the managers) and the encryption it is written under. Each version has
        # its own key (its sha256), and a replaced one is left in place: a manager launched
        # before this update keeps reading the tool its user data names, for its backups and a
        # restore, until the instance refresh replaces it. A non-production bucket's
        # force_destroy deletes them all with the bucket.
        tool = aws.s3.BucketObjectv2(
            f"{name}-restore-tool", bucket=bucket.id,
            key=pulumi.Output.from_input(args.restore_tool).apply(restore_tool_key), content=args.restore_tool,
            content_type="text/x-shellscript", server_side_encryption="aws:kms", kms_key_id=args.key_arn,
            bucket_key_enabled=True, opts=pulumi.ResourceOptions(
                parent=self, retain_on_delete=True, depends_on=[policy, encryption, versioning]))
        # Ready once every setting and the restore tool are in place: the managers' first backup
        # must find it whole, and a manager can restore as soon as it runs.
        self.bucket = pulumi.Output.all(bucket.bucket, policy.id, encryption.id, versioning.id, tool.id).apply(
            lambda v: v[0])
        self.arn = bucket.arn
        self.store = self.bucket.apply(lambda b: f"s3://{b}")
        self.register_outputs({"bucket": self.bucket, "store": self.store})
