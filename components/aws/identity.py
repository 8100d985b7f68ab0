"""The nodes' identity: an instance role and profile per swarm role, least privilege.

What a node may do, and why each grant is there:
- SSM parameters under `/swarmstack/<cluster>/` only. Managers read and write all of
  it (election marker, join tokens, manager list, TLS material). Workers read only
  `init`, `tokens/worker` and `managers`; never `tokens/manager` or `tls/server-key`.
- KMS on the cluster's key only, and only through SSM (`kms:ViaService`): workers
  decrypt, managers also encrypt (they store the join tokens).
- CloudWatch Logs: write to the cluster's own log groups.
- `ec2:DescribeInstances` and `autoscaling:DescribeAutoScalingInstances`: AWS has no
  resource-level permissions for these two (they only take `Resource: "*"`). A node
  uses them to find its own auto scaling group and whether a peer still exists.
- Session Manager: the AWS-managed `AmazonSSMManagedInstanceCore`, so that nobody
  needs SSH.
- `autoscaling:CompleteLifecycleAction` on the cluster's own groups: granted by each
  node group (`nodes.py`), which knows its group's ARN.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import pulumi
import pulumi_aws as aws

SSM_CORE = "AmazonSSMManagedInstanceCore"
WORKER_READS = ("init", "tokens/worker", "managers")
UNSCOPABLE_ACTIONS = ("ec2:DescribeInstances", "autoscaling:DescribeAutoScalingInstances")
"""Actions AWS only allows on `Resource: "*"`: the one documented exception."""


def node_policy(role: Literal["manager", "worker"], partition: str, region: str, account: str, cluster: str,
                log_group_arns: list[str], key_arn: str, generation: str) -> dict[str, Any]:
    """The inline policy of a node role. Pure.

    The nodes keep the swarm's state under `/swarmstack/<cluster>/<generation>/`; the
    stack's own parameters (TLS) sit beside it under `/swarmstack/<cluster>/tls/`."""
    parameters = f"arn:{partition}:ssm:{region}:{account}:parameter/swarmstack/{cluster}"
    if role == "manager":
        ssm: dict[str, Any] = {
            "Sid": "ClusterParameters",
            "Effect": "Allow",
            "Action": ["ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath", "ssm:PutParameter",
                       "ssm:DeleteParameter", "ssm:LabelParameterVersion"],
            "Resource": [parameters, f"{parameters}/*"],
        }
        kms_actions = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"]
    else:
        ssm = {
            "Sid": "JoinParameters",
            "Effect": "Allow",
            "Action": ["ssm:GetParameter", "ssm:GetParameters"],
            "Resource": [f"{parameters}/{generation}/{name}" for name in WORKER_READS],
        }
        kms_actions = ["kms:Decrypt"]
    return {"Version": "2012-10-17", "Statement": [
        ssm,
        {"Sid": "ClusterKeyThroughSsm", "Effect": "Allow", "Action": kms_actions, "Resource": key_arn,
         "Condition": {"StringEquals": {"kms:ViaService": f"ssm.{region}.amazonaws.com"}}},
        {"Sid": "ClusterLogs", "Effect": "Allow",
         "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
         "Resource": [arn for group in log_group_arns for arn in (group, f"{group}:log-stream:*")]},
        {"Sid": "DescribeOnlyOnStar", "Effect": "Allow", "Action": list(UNSCOPABLE_ACTIONS), "Resource": "*"},
    ]}


def trust_policy() -> dict[str, Any]:
    """EC2 instances may assume the role. Pure."""
    return {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": "ec2.amazonaws.com"}}]}


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


class NodeIdentity(pulumi.ComponentResource):
    """An IAM role, its inline policy, Session Manager core, and an instance profile."""

    role_name: pulumi.Output[str]
    role_arn: pulumi.Output[str]
    profile_arn: pulumi.Output[str]

    def __init__(self, name: str, args: NodeIdentityArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("swarmstack:aws:NodeIdentity", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        invoke = pulumi.InvokeOptions(parent=self)
        account = aws.get_caller_identity(opts=invoke).account_id
        partition = aws.get_partition(opts=invoke).partition
        role = aws.iam.Role(f"{name}-role", assume_role_policy=pulumi.Output.json_dumps(trust_policy()),
                            description=f"swarmstack {args.cluster} {args.role} nodes",
                            tags={**args.tags, "Name": f"{name}-role"}, opts=child)
        document = pulumi.Output.all(pulumi.Output.from_input(args.key_arn),
                                     pulumi.Output.from_input(args.generation), *args.log_group_arns).apply(
            lambda values: node_policy(args.role, partition, args.region, account, args.cluster,
                                       list(values[2:]), values[0], values[1]))
        aws.iam.RolePolicy(f"{name}-policy", role=role.id, policy=pulumi.Output.json_dumps(document), opts=child)
        core = aws.iam.RolePolicyAttachment(f"{name}-ssm-core", role=role.name,
                                            policy_arn=f"arn:{partition}:iam::aws:policy/{SSM_CORE}", opts=child)
        profile = aws.iam.InstanceProfile(f"{name}-profile", role=role.name,
                                          tags={**args.tags, "Name": f"{name}-profile"},
                                          opts=pulumi.ResourceOptions(parent=self, depends_on=[core]))
        self.role_name = role.name
        self.role_arn = role.arn
        self.profile_arn = profile.arn
        self.register_outputs({"roleArn": self.role_arn, "profileArn": self.profile_arn})
