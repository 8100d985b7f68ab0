"""Shared volumes on AWS: an EFS file system every node can mount with Docker's own `local`
volume driver (`type=nfs`), so a volume follows its service from node to node.

- The file system is encrypted at rest with the cluster's KMS key (the key policy lets the
  account's IAM administer it; EFS creates its grant as the deploying principal, which needs
  `kms:CreateGrant` and `kms:DescribeKey` in IAM, as every principal that deploys here has).
- Automatic backups (AWS Backup's default EFS plan) are on: `aws.efs.BackupPolicy` ENABLED.
- One mount target in each node subnet (EFS allows one per zone), in a group of its own that
  admits NFS (2049/tcp) from the managers' and workers' groups and nothing else.
- No file system policy. A Deny on `aws:SecureTransport: false` or an Allow to the node roles
  only works for clients that mount through the EFS mount helper (efs-utils: `-o tls`, `-o iam`,
  stunnel or efs-proxy); Docker's local driver hands its options to the kernel's NFS client,
  which speaks plain NFSv4.1 without IAM, so either policy would refuse every volume. Access is
  the network's: only the node groups reach the mount targets. docs/volumes.md says so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import pulumi
import pulumi_aws as aws

from components.common.names import LIMITS, fit

NFS_PORT = 2049
"""NFS over TCP, the only port an EFS mount target serves."""
ZONE_LETTERS = "abcdef"

MOUNT_OPTIONS = "nfsvers=4.1,rsize=1048576,wsize=1048576,hard,timeo=600,retrans=2,noresvport"
"""The options the EFS mount helper uses on Linux (AWS: "Mount settings used by EFS mount helper")."""


@dataclass(frozen=True)
class NfsRule:
    """One ingress rule of the mount targets' group."""

    key: str
    """Stable identity inside the cluster (part of the child's name)."""
    peer_group: Literal["managers", "workers"]
    """The node group that may mount."""
    description: str
    """Why the rule exists, as AWS shows it."""


def nfs_rules(has_workers: bool) -> list[NfsRule]:
    """Who may reach the mount targets: the managers, and the workers when a pool exists (their
    group is otherwise empty and gets no rules, as in `security_groups.aws_rules`). Pure."""
    peers: list[Literal["managers", "workers"]] = ["managers", "workers"] if has_workers else ["managers"]
    return [NfsRule(f"in-{peer}-tcp-{NFS_PORT}", peer, f"NFS from the {peer} to the shared volumes")
            for peer in peers]


def volume_create_command(dns_name: str, name: str = "shared") -> str:
    """The `docker volume create` that mounts the file system's root with Docker's local driver. Pure."""
    return (f"docker volume create --driver local --opt type=nfs "
            f"--opt o=addr={dns_name},{MOUNT_OPTIONS} --opt device=:/ {name}")


def _nth(index: int) -> Callable[[list[str]], str]:
    """The `index`th of a list, for `Output.apply`."""
    return lambda ids: ids[index]


@dataclass(frozen=True)
class SharedVolumesArgs:
    """What the shared file system needs."""

    cluster: str
    """The cluster's name (the creation token and the group's name)."""
    vpc_id: pulumi.Input[str]
    """The VPC the mount targets' group lives in."""
    subnet_ids: pulumi.Output[list[str]]
    """The node subnets, one per zone: a mount target in each."""
    subnet_count: int
    """How many node subnets there are (known before they exist)."""
    node_groups: dict[str, pulumi.Input[str]]
    """Security group id by role (`managers`, `workers`): who may mount."""
    has_workers: bool
    """Whether any worker pool exists (else the workers' group gets no rule)."""
    key_arn: pulumi.Input[str]
    """The cluster's KMS key: it encrypts the file data at rest."""
    throughput_mode: Literal["elastic", "bursting"]
    """EFS throughput mode."""
    production: bool
    """Production stacks protect the file system from `pulumi destroy`."""
    tags: dict[str, str]
    """Tags for every resource."""


class SharedVolumes(pulumi.ComponentResource):
    """An encrypted, backed-up EFS file system with a mount target per node subnet."""

    file_system_id: pulumi.Output[str]
    dns_name: pulumi.Output[str]
    """`<fs-id>.efs.<region>.amazonaws.com`: resolves, inside the VPC, to the mount target of the caller's zone."""
    security_group_id: pulumi.Output[str]

    def __init__(self, name: str, args: SharedVolumesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("swarmstack:aws:SharedVolumes", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        if not 1 <= args.subnet_count <= len(ZONE_LETTERS):
            raise ValueError(f"subnet_count {args.subnet_count} must be 1 to {len(ZONE_LETTERS)}")
        file_system = aws.efs.FileSystem(
            f"{name}-fs", creation_token=f"swarmstack-{args.cluster}-volumes", encrypted=True,
            kms_key_id=args.key_arn, performance_mode="generalPurpose", throughput_mode=args.throughput_mode,
            tags={**args.tags, "Name": f"{name}-fs"},
            opts=pulumi.ResourceOptions(parent=self, protect=args.production))
        aws.efs.BackupPolicy(f"{name}-backup", file_system_id=file_system.id,
                             backup_policy=aws.efs.BackupPolicyBackupPolicyArgs(status="ENABLED"), opts=child)
        group = aws.ec2.SecurityGroup(
            f"{name}-nfs", name=fit(f"swarmstack-{name}-nfs", LIMITS["security-group"]), vpc_id=args.vpc_id,
            description=f"swarmstack {name} shared volumes: NFS from the nodes",
            tags={**args.tags, "Name": f"{name}-nfs"}, opts=child)
        for rule in nfs_rules(args.has_workers):
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-{rule.key}", security_group_id=group.id, ip_protocol="tcp", from_port=NFS_PORT,
                to_port=NFS_PORT, referenced_security_group_id=args.node_groups[rule.peer_group],
                description=rule.description, tags={**args.tags, "Name": f"{name}-{rule.key}"}, opts=child)
        for index in range(args.subnet_count):
            aws.efs.MountTarget(
                f"{name}-{ZONE_LETTERS[index]}", file_system_id=file_system.id,
                subnet_id=args.subnet_ids.apply(_nth(index)), security_groups=[group.id],
                opts=child)
        self.file_system_id = file_system.id
        self.dns_name = file_system.dns_name
        self.security_group_id = group.id
        self.register_outputs({"fileSystemId": self.file_system_id, "dnsName": self.dns_name,
                               "securityGroupId": self.security_group_id})
