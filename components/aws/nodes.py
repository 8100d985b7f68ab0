"""A node group: one launch template and one auto scaling group for the managers or
for one worker pool, spread over the node subnets of every zone.

Managers are one group across the zones, not one group per zone: Auto Scaling then
keeps them balanced (1-1-1, 2-2-1, ...), and an instance refresh of one group replaces
one manager at a time (checkpoints at every manager, launch before terminate), where
per-zone groups would each be refreshed at once and could together take the swarm
below quorum. `AZRebalance` is suspended for managers so that Auto Scaling never
terminates a manager just to even out the zones; scale-in protection keeps scaling
activities off them; the `swarmstack-drain` termination hook gives a leaving node
time to be drained and demoted (the node watches its own lifecycle state in IMDS),
and the `swarmstack-join` launch hook keeps a new node out of service until it has
joined the swarm (`components/common/hooks.py`).

Order (checked on the graph by `swarmstack/deploy_order.py`): the group depends on
everything its nodes need from their first boot to their drain (the role's policies
and profile, the log groups, the TLS parameters, the NAT routes of its subnets, and
the permission to complete its lifecycle actions), so Pulumi creates all of it first
and deletes it only after the group has drained. That permission is scoped by the
group's explicit name, never by the group's ARN: a grant that depended on the group
would be deleted before the group's nodes had completed their drain hooks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import pulumi
import pulumi_aws as aws

from components.aws.identity import Account
from components.common.hooks import DRAIN_HEARTBEAT, DRAIN_HOOK, JOIN_HEARTBEAT, JOIN_HOOK, group_delete_timeout
from components.common.names import LIMITS, fit
from swarmstack.config.architecture import architecture
from swarmstack.config.tags import CLUSTER_TAG, POOL_TAG, ROLE_TAG

AL2023 = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-{arch}"
ROOT_DEVICE = "/dev/xvda"  # Amazon Linux's root device; a custom AMI must use the same
IMDS_HOP_LIMIT = 1
"""1, not 2: the metadata service answers the host only. Containers on bridge and
overlay networks sit one hop further and so cannot take the node role's credentials."""
GROUP_METRICS = ("GroupInServiceInstances", "GroupDesiredCapacity", "GroupPendingInstances",
                 "GroupTerminatingInstances", "GroupTotalInstances")
HEARTBEAT = DRAIN_HEARTBEAT
"""Seconds a leaving node has to drain (and, for a manager, be demoted) before AWS goes on."""
WAIT_FOR_CAPACITY = "30m"
"""How long `pulumi up` waits for a group's nodes to be InService, i.e. joined (the
launch hook): longer than a node may take to join (the launch hook's 20 minutes, and
a worker of a cold start waiting for the load balancer, the TLS material and the
first manager's init), so a normal cold start never fails, while nodes that never
join fail the deployment instead of reporting success."""
CHECKPOINT_DELAY = 300
"""Seconds an instance refresh waits at each checkpoint: a new manager becomes Reachable."""



def group_name_for(component: str) -> str:
    """The auto scaling group's explicit name for the node group component `component`
    (`prod-managers` -> `prod-managers-asg`). Explicit so that the permission to complete
    its lifecycle actions can name it before the group exists. Pure."""
    return fit(f"{component}-asg", LIMITS["asg"])


def lifecycle_resource(partition: str, region: str, account: str, group_name: str) -> str:
    """The ARN pattern of one auto scaling group by name (its ARN carries a UUID that is
    only known once the group exists). Pure."""
    return f"arn:{partition}:autoscaling:{region}:{account}:autoScalingGroup:*:autoScalingGroupName/{group_name}"


def lifecycle_policy(partition: str, region: str, account: str, group_name: str) -> dict[str, Any]:
    """What a role needs to see its nodes through one group's lifecycle hooks: complete and
    extend their actions, and mark a node unhealthy, on that group only. Pure."""
    return {"Version": "2012-10-17",
            "Statement": [{"Sid": "LifecycleHooks", "Effect": "Allow",
                           "Action": ["autoscaling:CompleteLifecycleAction",
                                      "autoscaling:RecordLifecycleActionHeartbeat",
                                      "autoscaling:SetInstanceHealth"],
                           "Resource": lifecycle_resource(partition, region, account, group_name)}]}


def delete_timeout(role: Literal["manager", "worker"]) -> str:
    """The group's delete timeout: every node drains at once for up to its heartbeat,
    then shuts down; 10 minutes to spare. Pure."""
    return f"{math.ceil(group_delete_timeout(role) / 60) + 10}m"


def lifecycle_hooks(role: Literal["manager", "worker"]) -> list[dict[str, Any]]:
    """The group's lifecycle hooks. Pure."""
    return [{"name": JOIN_HOOK, "lifecycle_transition": "autoscaling:EC2_INSTANCE_LAUNCHING",
             "heartbeat_timeout": JOIN_HEARTBEAT, "default_result": "ABANDON"},
            {"name": DRAIN_HOOK, "lifecycle_transition": "autoscaling:EC2_INSTANCE_TERMINATING",
             "heartbeat_timeout": DRAIN_HEARTBEAT[role], "default_result": "CONTINUE"}]


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
    account: Account
    """The account, partition and region (looked up once by the cluster: `account_of`)."""
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
    boot_dependencies: list[pulumi.Resource] = field(default_factory=list)
    """What the nodes read or need from their first boot to their drain (the role's
    policies, log groups, TLS parameters, NAT routes; components stand for their
    children): the group depends on all of it."""
    tags: dict[str, str] = field(default_factory=dict)
    """Tags for every resource and every instance."""


class NodeGroup(pulumi.ComponentResource):
    """Launch template + auto scaling group + join and drain hooks + refresh policy."""

    group_name: pulumi.Output[str]
    group_arn: pulumi.Output[str]
    launch_template_id: pulumi.Output[str]
    image_id: pulumi.Output[str]

    def __init__(self, name: str, args: NodeGroupArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("swarmstack:aws:NodeGroup", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        arch = pool_architecture(args.instance_types)
        image = self._image(args, arch)
        node_tags = {**args.tags, "Name": f"{args.cluster}-{args.pool}", CLUSTER_TAG: args.cluster,
                     ROLE_TAG: args.role, POOL_TAG: args.pool}
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
        template = aws.ec2.LaunchTemplate(f"{name}-lt", name=fit(f"{name}-lt", LIMITS["launch-template"]),
                                          opts=child, **template_args)
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
            name=group_name_for(name),
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
            initial_lifecycle_hooks=lifecycle_hooks(args.role),
            wait_for_capacity_timeout=WAIT_FOR_CAPACITY,
            instance_refresh={"strategy": "Rolling", "preferences": refresh_preferences(args.role, args.count)},
            tags=[{"key": k, "value": v, "propagate_at_launch": False}
                  for k, v in {**node_tags, "Name": f"{name}-asg"}.items()],
            **placement)
        account, partition, region = args.account.id, args.account.partition, args.account.region
        grants = [aws.iam.RolePolicy(
            f"{name}-lifecycle-{label}", name=fit(f"{name}-lifecycle-{label}", LIMITS["iam-policy"]), role=role_name,
            policy=pulumi.Output.json_dumps(lifecycle_policy(partition, region, account, group_args["name"])),
            opts=child) for label, role_name in args.lifecycle_roles.items()]
        group = aws.autoscaling.Group(f"{name}-asg", opts=pulumi.ResourceOptions(
            parent=self, depends_on=[*args.boot_dependencies, *grants],
            custom_timeouts=pulumi.CustomTimeouts(delete=delete_timeout(args.role))), **group_args)
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
