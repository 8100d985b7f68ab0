"""The nodes' identity: an instance role and profile per swarm role, holding exactly what
the role uses — and nothing attached that grants more.

What a node may do, and why each grant is there (each action checked against the AWS
Service Authorization Reference; "star only" means the action has no resource type there):
- Swarm state, under `/swarmstack/<cluster>/<generation>/`: managers read and write it
  (`init`, `takeover/*`, `tokens/*`, `managers`); workers read `init`, `tokens/worker`
  and `managers` only.
- The Docker API's TLS parameters, `/swarmstack/<cluster>/tls/*`: managers read them.
- The cluster key, only through SSM (`kms:ViaService`) and only for the parameters the role
  uses: SSM passes the parameter's ARN as the encryption context `PARAMETER_ARN`, so a
  worker can decrypt `tokens/worker` and nothing else. Managers decrypt the tokens and
  `tls/server-key`, and encrypt the tokens they store (a standard SecureString is encrypted
  with `kms:Encrypt`; `GenerateDataKey` is for advanced parameters, which we do not use).
- Workers also carry explicit Denies on the manager-only paths (`tokens/manager`, `tls/*`),
  on every write under `/swarmstack/<cluster>/`, and on the key for anything but the worker
  token: a second wall should a broader Allow ever be attached to the role.
- Session Manager and the prune's State Manager association, through our own statements
  instead of `AmazonSSMManagedInstanceCore` (which allows `ssm:GetParameter(s)` on `*` and
  so hands every worker the manager token): the agent's channels (`ssmmessages:*Channel`,
  the six `ec2messages:` calls; star only), its registration and association calls on this
  account's instances, and the one document the prune and the metrics agent run (`AWS-RunShellScript`).
- CloudWatch Logs: write to the cluster's own log groups.
- Node metrics (`metrics.py`), when on: `cloudwatch:PutMetricData` into the cluster's own
  namespace only (the `cloudwatch:namespace` condition) and `ec2:DescribeTags`.
- Raft backups (`backup.py`), when on: managers put and get objects under `swarm/` in the
  backup bucket, get the restore tools (`tools/restore-*`) and write nothing else there, list
  `swarm/`, and use the cluster key through S3 for that bucket only (`kms:ViaService` s3,
  `kms:EncryptionContext:aws:s3:arn` the bucket's ARN: with an S3 Bucket Key the context
  is the bucket, not the object). Workers get nothing of it and
  carry an explicit Deny on the bucket.
- The private registry (`registry.py`), when on: both roles pull from the cluster's own ECR
  repositories and no other (`ecr:GetAuthorizationToken` on `*`, its only form).
- `ec2:DescribeInstances`, `autoscaling:DescribeAutoScalingInstances`,
  `autoscaling:DescribeAutoScalingGroups`: star only. A node uses them to find its own
  group and whether a peer still exists.
- `autoscaling:CompleteLifecycleAction` (and `SetInstanceHealth`) on the cluster's own
  groups: granted by each node group (`nodes.py`), which knows its group's ARN.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import pulumi
import pulumi_aws as aws

from components.aws.backup import PREFIX as BACKUP_PREFIX
from components.aws.backup import bucket_arn_of
from components.aws.registry import pull_statements, repository_arn
from components.common.namespace import cluster_tree, state_prefix, tls_prefix
from swarmstack.config.tags import ROLE_TAG
from userdata.render import RESTORE_TOOL_PREFIX

WORKER_READS = ("init", "tokens/worker", "managers")
"""What a worker reads of its generation's state."""
MANAGER_ONLY = ("tokens/manager",)
"""Generation state a worker must never read (besides the whole `tls/` tree)."""
PRUNE_DOCUMENT = "AWS-RunShellScript"
"""The SSM document the prune association (`maintenance.py`) and the metrics agent's (`metrics.py`) run."""
SESSION_CHANNELS = ("ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel",
                    "ssmmessages:OpenControlChannel", "ssmmessages:OpenDataChannel")
AGENT_MESSAGES = ("ec2messages:AcknowledgeMessage", "ec2messages:DeleteMessage", "ec2messages:FailMessage",
                  "ec2messages:GetEndpoint", "ec2messages:GetMessages", "ec2messages:SendReply")
DISCOVERY = ("ec2:DescribeInstances", "autoscaling:DescribeAutoScalingInstances",
             "autoscaling:DescribeAutoScalingGroups")
UNSCOPABLE_ACTIONS = (*DISCOVERY, *SESSION_CHANNELS, *AGENT_MESSAGES)
"""Every action the nodes hold on `Resource: "*"`: none has a resource type in the Service
Authorization Reference, so "*" is the narrowest form AWS accepts."""
PARAMETER_READS = ("ssm:GetParameter", "ssm:GetParameters")
PARAMETER_WRITES = ("ssm:PutParameter", "ssm:DeleteParameter", "ssm:DeleteParameters",
                    "ssm:LabelParameterVersion", "ssm:UnlabelParameterVersion")
PARAMETER_BULK_READS = ("ssm:GetParametersByPath", "ssm:GetParameterHistory")
"""Reads that return values of many parameters (a path) or of old versions."""


def backup_statements(role: Literal["manager", "worker"], region: str, key_arn: str,
                      bucket_arn: str) -> list[dict[str, Any]]:
    """What a node role may do with the raft backup bucket. Pure."""
    if role == "worker":
        return [{"Sid": "DenyBackups", "Effect": "Deny", "Action": "s3:*",
                 "Resource": [bucket_arn, f"{bucket_arn}/*"]}]
    return [
        {"Sid": "BackupObjects", "Effect": "Allow", "Action": ["s3:PutObject", "s3:GetObject"],
         "Resource": f"{bucket_arn}/{BACKUP_PREFIX}*"},
        {"Sid": "RestoreTool", "Effect": "Allow", "Action": "s3:GetObject",
         "Resource": f"{bucket_arn}/{RESTORE_TOOL_PREFIX}*"},
        {"Sid": "BackupListing", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": bucket_arn,
         "Condition": {"StringLike": {"s3:prefix": [BACKUP_PREFIX, f"{BACKUP_PREFIX}*"]}}},
        {"Sid": "BackupKeyThroughS3", "Effect": "Allow", "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
         "Resource": key_arn,
         "Condition": {"StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com",
                                        "kms:EncryptionContext:aws:s3:arn": bucket_arn}}},
    ]


def metrics_statements(namespace: str) -> list[dict[str, Any]]:
    """What the CloudWatch agent needs (`metrics.py`): put metrics into the cluster's namespace
    only (`PutMetricData` has no resource type; `cloudwatch:namespace` scopes it), and
    `ec2:DescribeTags` (star only), with which it learns its instance's group. Pure."""
    return [
        {"Sid": "NodeMetrics", "Effect": "Allow", "Action": "cloudwatch:PutMetricData", "Resource": "*",
         "Condition": {"StringEquals": {"cloudwatch:namespace": namespace}}},
        {"Sid": "NodeMetricsGroup", "Effect": "Allow", "Action": "ec2:DescribeTags", "Resource": "*"},
    ]


def node_policy(role: Literal["manager", "worker"], partition: str, region: str, account: str, cluster: str,
                log_group_arns: list[str], key_arn: str, generation: str,
                backup_bucket_arn: str | None = None, metrics_namespace: str | None = None,
                repository_arns: list[str] | None = None) -> dict[str, Any]:
    """The inline policy of a node role. Pure.

    The nodes keep the swarm's state under `/swarmstack/<cluster>/<generation>/`; the
    stack's own parameters (TLS) sit beside it under `/swarmstack/<cluster>/tls/`. With
    `backup_bucket_arn` the managers may keep raft backups there (`backup_statements`); with
    `repository_arns` the node pulls from those ECR repositories (`registry.pull_statements`)."""
    parameter = f"arn:{partition}:ssm:{region}:{account}:parameter"
    tree = parameter + cluster_tree(cluster)
    state, tls = parameter + state_prefix(cluster, generation), parameter + tls_prefix(cluster)
    through_ssm = {"kms:ViaService": f"ssm.{region}.amazonaws.com"}
    context = "kms:EncryptionContext:PARAMETER_ARN"
    if role == "manager":
        own: list[dict[str, Any]] = [
            {"Sid": "SwarmState", "Effect": "Allow", "Action": [*PARAMETER_READS, "ssm:PutParameter"],
             "Resource": f"{state}/*"},
            {"Sid": "DockerApiTls", "Effect": "Allow", "Action": list(PARAMETER_READS), "Resource": f"{tls}/*"},
            {"Sid": "DecryptTokensAndTlsKey", "Effect": "Allow", "Action": "kms:Decrypt", "Resource": key_arn,
             "Condition": {"StringEquals": through_ssm,
                           "StringLike": {context: [f"{state}/tokens/*", f"{tls}/*"]}}},
            {"Sid": "EncryptTokens", "Effect": "Allow", "Action": "kms:Encrypt", "Resource": key_arn,
             "Condition": {"StringEquals": through_ssm, "StringLike": {context: f"{state}/tokens/*"}}},
        ]
    else:
        worker_token = f"{state}/tokens/worker"
        own = [
            {"Sid": "JoinParameters", "Effect": "Allow", "Action": list(PARAMETER_READS),
             "Resource": [f"{state}/{name}" for name in WORKER_READS]},
            {"Sid": "DecryptWorkerToken", "Effect": "Allow", "Action": "kms:Decrypt", "Resource": key_arn,
             "Condition": {"StringEquals": {**through_ssm, context: worker_token}}},
            {"Sid": "DenyManagerOnlyParameters", "Effect": "Deny", "Action": list(PARAMETER_READS),
             "Resource": [*(f"{tree}/*/{name}" for name in MANAGER_ONLY), f"{tls}/*"]},
            {"Sid": "DenyBulkReadsAndWrites", "Effect": "Deny", "Action": [*PARAMETER_BULK_READS, *PARAMETER_WRITES],
             "Resource": [tree, f"{tree}/*"]},
            {"Sid": "DenyKeyButForWorkerToken", "Effect": "Deny",
             "Action": ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:ReEncryptFrom"],
             "Resource": key_arn, "Condition": {"StringNotEquals": {context: worker_token}}},
        ]
    if backup_bucket_arn is not None:
        own += backup_statements(role, region, key_arn, backup_bucket_arn)
    if metrics_namespace is not None:
        own += metrics_statements(metrics_namespace)
    own += pull_statements(repository_arns or [])
    instances = f"arn:{partition}:ec2:{region}:{account}:instance/*"
    document = f"arn:{partition}:ssm:{region}:*:document/{PRUNE_DOCUMENT}"
    return {"Version": "2012-10-17", "Statement": [
        *own,
        {"Sid": "SsmAgentOnTheseInstances", "Effect": "Allow",
         "Action": ["ssm:UpdateInstanceInformation", "ssm:ListInstanceAssociations", "ssm:PutComplianceItems"],
         "Resource": instances},
        {"Sid": "PruneAssociation", "Effect": "Allow",
         "Action": ["ssm:DescribeAssociation", "ssm:UpdateAssociationStatus", "ssm:UpdateInstanceAssociationStatus"],
         "Resource": [f"arn:{partition}:ssm:{region}:{account}:association/*", instances, document]},
        {"Sid": "PruneDocument", "Effect": "Allow", "Action": ["ssm:GetDocument", "ssm:DescribeDocument"],
         "Resource": document},
        {"Sid": "ClusterLogs", "Effect": "Allow",
         "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
         "Resource": [arn for group in log_group_arns for arn in (group, f"{group}:log-stream:*")]},
        {"Sid": "NoResourceLevelPermissions", "Effect": "Allow", "Action": list(UNSCOPABLE_ACTIONS),
         "Resource": "*"},
    ]}


def trust_policy() -> dict[str, Any]:
    """EC2 instances may assume the role. Pure."""
    return {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": "ec2.amazonaws.com"}}]}


@dataclass(frozen=True)
class Account:
    """Where the stack deploys. Every ARN and every name global to the account needs it; the
    cluster looks it up once (`account_of`) and hands it to each component, because each
    lookup is a synchronous provider call (`get_caller_identity`, `get_partition`)."""

    id: str
    """The 12-digit account id."""
    partition: str
    """`aws`, `aws-cn` or `aws-us-gov`."""
    region: str
    """The stack's region (`aws:region`)."""


def account_of(region: str, parent: pulumi.Resource) -> Account:
    """The deploying account, from two provider lookups (the region is the stack's)."""
    invoke = pulumi.InvokeOptions(parent=parent)
    return Account(id=aws.get_caller_identity(opts=invoke).account_id,
                   partition=aws.get_partition(opts=invoke).partition, region=region)


@dataclass(frozen=True)
class NodeIdentityArgs:
    """What a node role needs."""

    role: Literal["manager", "worker"]
    """Which swarm role the instances have."""
    cluster: str
    """The cluster's name (scopes parameters and logs)."""
    region: str
    """The stack's region."""
    log_group_arns: list[pulumi.Output[str]]
    """The cluster's log groups the nodes write to."""
    key_arn: pulumi.Input[str]
    """The cluster's KMS key."""
    generation: pulumi.Input[str]
    """This deployment's generation: where the nodes keep the swarm's state."""
    tags: dict[str, str]
    """Tags for the role and profile."""
    account: Account
    """The account, partition and region (looked up once by the cluster: `account_of`)."""
    backup_bucket: str | None = None
    """The raft backup bucket's name (deterministic, so known before the bucket exists), or None."""
    metrics_namespace: str | None = None
    """The CloudWatch namespace the nodes' agent publishes to (`metrics.py`), or None."""
    repositories: tuple[str, ...] = ()
    """Full ECR names of the repositories the nodes pull from (deterministic ARNs)."""


class NodeIdentity(pulumi.ComponentResource):
    """An IAM role, its one inline policy (`node_policy`), and an instance profile."""

    role_name: pulumi.Output[str]
    role_arn: pulumi.Output[str]
    profile_arn: pulumi.Output[str]

    def __init__(self, name: str, args: NodeIdentityArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("swarmstack:aws:NodeIdentity", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        account, partition = args.account.id, args.account.partition
        role = aws.iam.Role(f"{name}-role", assume_role_policy=pulumi.Output.json_dumps(trust_policy()),
                            description=f"swarmstack {args.cluster} {args.role} nodes",
                            tags={**args.tags, "Name": f"{name}-role", ROLE_TAG: args.role}, opts=child)
        document = pulumi.Output.all(pulumi.Output.from_input(args.key_arn),
                                     pulumi.Output.from_input(args.generation), *args.log_group_arns).apply(
            lambda values: node_policy(
                args.role, partition, args.region, account, args.cluster, list(values[2:]), values[0], values[1],
                bucket_arn_of(partition, args.backup_bucket) if args.backup_bucket else None,
                args.metrics_namespace,
                [repository_arn(partition, args.region, account, repo) for repo in args.repositories]))
        policy = aws.iam.RolePolicy(f"{name}-policy", role=role.id, policy=pulumi.Output.json_dumps(document),
                                    opts=child)
        profile = aws.iam.InstanceProfile(f"{name}-profile", role=role.name,
                                          tags={**args.tags, "Name": f"{name}-profile"},
                                          opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]))
        self.role_name = role.name
        self.role_arn = role.arn
        self.profile_arn = profile.arn
        self.register_outputs({"roleArn": self.role_arn, "profileArn": self.profile_arn})
