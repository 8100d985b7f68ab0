"""The cluster's CloudWatch log groups: containers, events, bootstrap and prune."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.common.namespace import log_group_names


@dataclass(frozen=True)
class LogGroupsArgs:
    """What the log groups need."""

    cluster: str
    """The cluster's name (part of every group name)."""
    retention_days: int
    """Days to keep events; one of CloudWatch's allowed values."""
    kms_key_arn: pulumi.Input[str] | None
    """Encrypt the groups with this key; None for CloudWatch's own encryption."""
    tags: dict[str, str]
    """Tags for every group."""


class LogGroups(pulumi.ComponentResource):
    """One log group per kind, with retention and optional KMS."""

    names: dict[str, str]
    arns: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: LogGroupsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("swarmstack:aws:LogGroups", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.names = log_group_names(args.cluster)
        self.arns = {}
        for kind, group in self.names.items():
            resource = aws.cloudwatch.LogGroup(
                f"{name}-{kind}", name=group, retention_in_days=args.retention_days,
                kms_key_id=args.kms_key_arn, tags={**args.tags, "Name": group}, opts=child)
            self.arns[kind] = resource.arn
        self.register_outputs({"names": self.names})
