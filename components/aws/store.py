"""The encryption of the swarm's store: the cluster's own KMS key.

On AWS the store is SSM Parameter Store itself, under `/swarmstack/<cluster>/`: the
nodes write the init marker and the join tokens there, `pulumi up` the Docker API's
TLS parameters (components/aws/tls.py); who may read what is in identity.py. The
secret ones are SecureString parameters encrypted with this key, so the key is the
one resource the AWS store needs (the Azure counterpart, components/azure/store.py,
creates a table and a Key Vault). With `logging.kms` it also encrypts the log
groups, and it encrypts the alarm topic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.aws.identity import Account
from components.common.namespace import cluster_tree


def key_policy(partition: str, region: str, account: str, cluster: str, for_logs: bool) -> dict[str, Any]:
    """The key policy. Pure.

    The account root administers the key (AWS refuses a policy that locks the account
    out; IAM policies then grant the nodes narrow use). In a key policy `Resource: "*"`
    means "this key". With `for_logs`, CloudWatch Logs may use it for the cluster's own
    log groups only (the encryption context names the log group). CloudWatch alarms may
    use it to publish to the alarm topic, which it encrypts (an alarm cannot publish to a
    topic under the AWS-managed `alias/aws/sns`, whose policy the account cannot extend).
    """
    statements: list[dict[str, Any]] = [{
        "Sid": "AccountAdministers",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:{partition}:iam::{account}:root"},
        "Action": "kms:*",
        "Resource": "*",
    }]
    statements.append({
        "Sid": "CloudWatchAlarmsToTheEncryptedTopic",
        "Effect": "Allow",
        "Principal": {"Service": "cloudwatch.amazonaws.com"},
        "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
        "Resource": "*",
    })
    if for_logs:
        statements.append({
            "Sid": "CloudWatchLogsForTheClusterGroups",
            "Effect": "Allow",
            "Principal": {"Service": f"logs.{region}.amazonaws.com"},
            "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
            "Resource": "*",
            "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn":
                                      f"arn:{partition}:logs:{region}:{account}:log-group:{cluster_tree(cluster)}/*"}},
        })
    return {"Version": "2012-10-17", "Statement": statements}


@dataclass(frozen=True)
class ClusterKeyArgs:
    """What the key needs to know."""

    cluster: str
    """The cluster's name (names the alias and scopes the logs grant)."""
    region: str
    """The stack's region (the CloudWatch Logs service principal is regional)."""
    for_logs: bool
    """Let CloudWatch Logs encrypt the cluster's log groups with it."""
    tags: dict[str, str]
    """Tags for the key."""
    account: Account
    """The account, partition and region (looked up once by the cluster: `account_of`)."""


class ClusterKey(pulumi.ComponentResource):
    """A symmetric KMS key with yearly rotation and the alias `alias/swarmstack/<cluster>`."""

    arn: pulumi.Output[str]
    key_id: pulumi.Output[str]
    alias: str

    def __init__(self, name: str, args: ClusterKeyArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("swarmstack:aws:ClusterKey", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        account, partition = args.account.id, args.account.partition
        key = aws.kms.Key(
            f"{name}-key", description=f"swarmstack {args.cluster}: SSM parameters and logs",
            enable_key_rotation=True, deletion_window_in_days=30,
            policy=pulumi.Output.json_dumps(key_policy(partition, args.region, account, args.cluster, args.for_logs)),
            tags={**args.tags, "Name": f"{name}-key"}, opts=child)
        self.alias = f"alias/swarmstack/{args.cluster}"
        aws.kms.Alias(f"{name}-key", name=self.alias, target_key_id=key.key_id, opts=child)
        self.arn = key.arn
        self.key_id = key.key_id
        self.register_outputs({"arn": self.arn, "alias": self.alias})
