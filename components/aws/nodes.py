"""A node group: one launch template and one auto scaling group for the managers or
for one worker pool, spread over the node subnets of every zone.

Managers are one group across the zones, not one group per zone: Auto Scaling then
keeps them balanced (1-1-1, 2-2-1, ...), and an instance refresh of one group replaces
one manager at a time (checkpoints at every manager, launch before terminate), where
per-zone groups would each be refreshed at once and could together take the swarm
below quorum. `AZRebalance` is suspended for managers so that Auto Scaling never
terminates a manager just to even out the zones; scale-in protection keeps scaling
activities off them; the `swarmstack-drain` termination hook gives a leaving node
time to be drained and demoted (the node watches its own lifecycle state in IMDS).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import pulumi
import pulumi_aws as aws

from swarmstack.config.architecture import architecture

DRAIN_HOOK = "swarmstack-drain"
AL2023 = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-{arch}"
ROOT_DEVICE = "/dev/xvda"  # Amazon Linux's root device; a custom AMI must use the same
IMDS_HOP_LIMIT = 1
"""1, not 2: the metadata service answers the host only. Containers on bridge and
overlay networks sit one hop further and so cannot take the node role's credentials."""
GROUP_METRICS = ("GroupInServiceInstances", "GroupDesiredCapacity", "GroupPendingInstances",
                 "GroupTerminatingInstances", "GroupTotalInstances")
HEARTBEAT = {"manager": 900, "worker": 600}
"""Seconds a leaving node has to drain (and, for a manager, be demoted) before AWS goes on."""
CHECKPOINT_DELAY = 300
"""Seconds an instance refresh waits at each checkpoint: a new manager becomes Reachable."""



def pool_architecture(instance_types: list[str]) -> Literal["x86_64", "arm64"]:
    """The one architecture of a pool; a launch template has one image. Pure."""
    archs = {architecture(t) for t in instance_types}
    if len(archs) != 1:
        raise ValueError(f"instance types {', '.join(instance_types)} mix x86_64 and arm64; one image cannot "
                         "boot both: keep one architecture per pool")
    return archs.pop()


def default_image_parameter(arch: str) -> str:
    """The public SSM parameter naming the current Amazon Linux 2023 AMI. Pure."""
    return AL2023.format(arch=arch)


def quorum(managers: int) -> int:
    """Raft's majority of `managers`. Pure."""
    return managers // 2 + 1


def refresh_preferences(role: Literal["manager", "worker"], count: int) -> dict[str, Any]:
    """Instance refresh settings that never take the swarm below its size. Pure.

    Min healthy 100% means launch before terminate: a replacement joins before the old
    node is drained. Managers get exactly one extra instance (max healthy = 100% plus
    one manager) and a checkpoint at every manager, so one is replaced at a time and
    raft always has a full quorum. Workers get up to half again at a time.
    """
    size = max(count, 1)
    one_more = 100 + math.ceil(100 / size)
    if role == "manager":
        return {"min_healthy_percentage": 100, "max_healthy_percentage": min(200, one_more),
                "checkpoint_percentages": [round(100 * k / size) for k in range(1, size + 1)],
                "checkpoint_delay": str(CHECKPOINT_DELAY), "instance_warmup": "300", "skip_matching": True,
                "scale_in_protected_instances": "Refresh", "standby_instances": "Terminate"}
    return {"min_healthy_percentage": 100, "max_healthy_percentage": min(200, max(150, one_more)),
            "instance_warmup": "300", "skip_matching": True, "scale_in_protected_instances": "Refresh",
            "standby_instances": "Terminate"}


@dataclass(frozen=True)
class NodeGroupArgs:
    """One role's (or one pool's) machines."""

    cluster: str
    """The cluster's name (tags)."""
    role: Literal["manager", "worker"]
    """Swarm role of the nodes."""
    pool: str
    """Pool name; `managers` for the managers."""
    count: int
    """How many nodes."""
    instance_types: list[str]
    """One type, or several for a spot pool (all of one architecture)."""
    spot: bool
    """Run on spot capacity with a mixed instances policy."""
    disk_gib: int
    """Root volume size in GiB."""
    subnet_ids: pulumi.Input[list[str]]
    """The node subnets, one per zone."""
    security_group_id: pulumi.Input[str]
    """The role's security group."""
    instance_profile_arn: pulumi.Input[str]
    """The role's instance profile."""
    user_data: pulumi.Input[str]
    """The cloud-init user data, already base64-encoded."""
    public_ip: bool
    """Give nodes public addresses (only when they sit in public subnets)."""
    image_id: str | None = None
    """A pinned AMI id; wins over `image_parameter`."""
    image_parameter: str | None = None
    """An SSM parameter naming the AMI; unset means current Amazon Linux 2023 for the architecture."""
    key_name: str | None = None
    """An EC2 key pair for SSH; None means no SSH key at all."""
    ebs_kms_key_arn: pulumi.Input[str] | None = None
    """Encrypt the root volume with this key instead of the account's default EBS key."""
    lifecycle_roles: dict[str, pulumi.Input[str]] = field(default_factory=dict)
    """Role label to IAM role name: who may complete this group's lifecycle actions."""
    tags: dict[str, str] = field(default_factory=dict)
    """Tags for every resource and every instance."""


class NodeGroup(pulumi.ComponentResource):
    """Launch template + auto scaling group + drain hook + refresh policy."""

    group_name: pulumi.Output[str]
    group_arn: pulumi.Output[str]
    launch_template_id: pulumi.Output[str]
    image_id: pulumi.Output[str]

    def __init__(self, name: str, args: NodeGroupArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("swarmstack:aws:NodeGroup", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        arch = pool_architecture(args.instance_types)
        image = self._image(args, arch)
        node_tags = {**args.tags, "Name": f"{args.cluster}-{args.pool}", "swarmstack:cluster": args.cluster,
                     "swarmstack:role": args.role, "swarmstack:pool": args.pool}
        ebs: dict[str, Any] = {"volume_size": args.disk_gib, "volume_type": "gp3", "encrypted": "true",
                               "delete_on_termination": "true"}
        if args.ebs_kms_key_arn is not None:
            ebs["kms_key_id"] = args.ebs_kms_key_arn
        template_args: dict[str, Any] = dict(
            description=f"swarmstack {args.cluster} {args.role} {args.pool}",
            image_id=image,
            instance_type=args.instance_types[0],
            key_name=args.key_name,
            iam_instance_profile={"arn": args.instance_profile_arn},
            metadata_options={"http_endpoint": "enabled", "http_tokens": "required",
                              "http_put_response_hop_limit": IMDS_HOP_LIMIT, "instance_metadata_tags": "disabled"},
            block_device_mappings=[{"device_name": ROOT_DEVICE, "ebs": ebs}],
            network_interfaces=[{"device_index": 0, "security_groups": [args.security_group_id],
                                 "associate_public_ip_address": "true" if args.public_ip else "false",
                                 "delete_on_termination": "true"}],
            user_data=args.user_data,
            update_default_version=True,
            tag_specifications=[{"resource_type": kind, "tags": node_tags}
                                for kind in ("instance", "volume", "network-interface")],
            tags={**args.tags, "Name": f"{name}-lt"})
        template = aws.ec2.LaunchTemplate(f"{name}-lt", opts=child, **template_args)
        version = template.latest_version.apply(lambda v: str(int(v)))
        placement: dict[str, Any]
        if args.spot:
            placement = {"mixed_instances_policy": {
                "launch_template": {
                    "launch_template_specification": {"launch_template_id": template.id, "version": version},
                    "overrides": [{"instance_type": t} for t in args.instance_types]},
                "instances_distribution": {"on_demand_base_capacity": 0,
                                           "on_demand_percentage_above_base_capacity": 0,
                                           "spot_allocation_strategy": "price-capacity-optimized"}},
                "capacity_rebalance": True}
        else:
            placement = {"launch_template": {"id": template.id, "version": version}}
        manager = args.role == "manager"
        group_args: dict[str, Any] = dict(
            vpc_zone_identifiers=args.subnet_ids,
            min_size=args.count,
            max_size=args.count + 1,
            desired_capacity=args.count,
            health_check_type="EC2",
            health_check_grace_period=300,
            default_instance_warmup=300,
            protect_from_scale_in=manager,
            suspended_processes=["AZRebalance"] if manager else [],
            enabled_metrics=list(GROUP_METRICS),
            metrics_granularity="1Minute",
            initial_lifecycle_hooks=[{"name": DRAIN_HOOK,
                                      "lifecycle_transition": "autoscaling:EC2_INSTANCE_TERMINATING",
                                      "heartbeat_timeout": HEARTBEAT[args.role], "default_result": "CONTINUE"}],
            instance_refresh={"strategy": "Rolling", "preferences": refresh_preferences(args.role, args.count)},
            tags=[{"key": k, "value": v, "propagate_at_launch": False}
                  for k, v in {**node_tags, "Name": f"{name}-asg"}.items()],
            **placement)
        group = aws.autoscaling.Group(f"{name}-asg", opts=child, **group_args)
        for label, role_name in args.lifecycle_roles.items():
            aws.iam.RolePolicy(f"{name}-lifecycle-{label}", role=role_name, policy=pulumi.Output.json_dumps({
                "Version": "2012-10-17",
                "Statement": [{"Sid": "DrainHook", "Effect": "Allow",
                               "Action": ["autoscaling:CompleteLifecycleAction",
                                          "autoscaling:RecordLifecycleActionHeartbeat"],
                               "Resource": group.arn}]}), opts=child)
        self.group_name = group.name
        self.group_arn = group.arn
        self.launch_template_id = template.id
        self.image_id = pulumi.Output.from_input(image)
        self.register_outputs({"groupName": self.group_name, "launchTemplateId": self.launch_template_id})

    def _image(self, args: NodeGroupArgs, arch: str) -> pulumi.Input[str]:
        if args.image_id is not None:
            return args.image_id
        parameter = args.image_parameter or default_image_parameter(arch)
        return aws.ssm.get_parameter_output(name=parameter, opts=pulumi.InvokeOptions(parent=self)).insecure_value
