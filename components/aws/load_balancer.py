"""The network load balancer in front of the swarm: a TCP/UDP listener and target
group per published port (to the workers, or the managers when there are none), and
the TLS Docker API on 2376 to the managers, reachable from the admins only (the load
balancer's security group admits 2376 from `adminCidrs` and nothing else)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from components.common.names import lb_name
from components.common.ports import DOCKER_TLS_PORT

HEALTH_CHECK: dict[str, Any] = {"protocol": "TCP", "port": "traffic-port", "interval": 10, "healthy_threshold": 3,
                "unhealthy_threshold": 3}
"""TCP on the forwarded port: any node answers it once a service publishes the port
(the swarm routing mesh). Node groups use EC2 health checks, not these, so a service
that is down never makes Auto Scaling terminate nodes."""
DEREGISTRATION_DELAY = 30
"""Seconds; the drain hook, not the load balancer, gives connections time to finish."""


@dataclass(frozen=True)
class Forward:
    """One listener: port, protocol and the node groups behind it."""

    port: int
    """The port clients connect to, and the nodes' published port behind it."""
    protocol: str
    """`TCP` or `UDP`."""
    groups: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """Pool name to the auto scaling group whose instances are the targets (attached by
    `LoadBalancer.attach`, once the groups exist)."""


def listener_key(port: int, protocol: str) -> str:
    """Stable child-name part of a listener. Pure."""
    return f"{protocol.lower()}-{port}"


@dataclass(frozen=True)
class LoadBalancerArgs:
    """What the load balancer needs."""

    vpc_id: pulumi.Input[str]
    """The VPC of the targets."""
    subnet_ids: pulumi.Input[list[str]]
    """One subnet per zone: public ones for an internet-facing balancer, node subnets for an internal one."""
    internal: bool
    """Internal to the VPC instead of internet-facing."""
    security_group_id: pulumi.Input[str]
    """The load balancer's own security group."""
    forwards: list[Forward]
    """Published ports, and 2376 to the managers when the Docker API is on."""
    deletion_protection: bool
    """Refuse deletion (production)."""
    access_logs_bucket: pulumi.Input[str] | None = None
    """Write access logs to this bucket; None for no access logs."""
    access_logs_prefix: str = ""
    """Key prefix of the access logs in the bucket."""
    tags: dict[str, str] = field(default_factory=dict)
    """Tags for every resource."""


class LoadBalancer(pulumi.ComponentResource):
    """An NLB with its listeners and target groups; `attach` adds the node groups.

    The balancer comes before the node groups: the managers' TLS certificate names its
    DNS name, and the managers must not boot before their certificate is stored."""

    dns_name: pulumi.Output[str]
    arn_suffix: pulumi.Output[str]
    target_groups: dict[str, pulumi.Output[str]]
    """Listener key (`tcp-80`) to the target group's ARN suffix (for alarms)."""

    def __init__(self, name: str, args: LoadBalancerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("swarmstack:aws:LoadBalancer", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        lb = aws.lb.LoadBalancer(
            f"{name}-nlb", name=lb_name(f"{name}-nlb"), load_balancer_type="network", internal=args.internal,
            subnets=args.subnet_ids,
            security_groups=[args.security_group_id], enable_deletion_protection=args.deletion_protection,
            enable_cross_zone_load_balancing=False, ip_address_type="ipv4",
            access_logs={"enabled": True, "bucket": args.access_logs_bucket, "prefix": args.access_logs_prefix}
            if args.access_logs_bucket is not None else None,
            tags={**args.tags, "Name": f"{name}-nlb"}, opts=child)
        self.target_groups = {}
        self._arns: dict[str, pulumi.Output[str]] = {}
        for forward in args.forwards:
            key = listener_key(forward.port, forward.protocol)
            group = aws.lb.TargetGroup(
                f"{name}-{key}", name=lb_name(f"{name}-{key}"), port=forward.port, protocol=forward.protocol,
                vpc_id=args.vpc_id,
                target_type="instance", health_check=aws.lb.TargetGroupHealthCheckArgs(**HEALTH_CHECK),
                deregistration_delay=DEREGISTRATION_DELAY,
                tags={**args.tags, "Name": f"{name}-{key}"}, opts=child)
            aws.lb.Listener(f"{name}-{key}", load_balancer_arn=lb.arn, port=forward.port,
                            protocol=forward.protocol,
                            default_actions=[{"type": "forward", "target_group_arn": group.arn}],
                            tags={**args.tags, "Name": f"{name}-{key}"}, opts=child)
            self._arns[key] = group.arn
            self.target_groups[key] = group.arn_suffix
        self._name = name
        self.attach(args.forwards)
        self.dns_name = lb.dns_name
        self.arn_suffix = lb.arn_suffix
        self.register_outputs({"dnsName": self.dns_name})

    def attach(self, forwards: list[Forward]) -> None:
        """Attach each forward's node groups to its target group."""
        for forward in forwards:
            key = listener_key(forward.port, forward.protocol)
            for pool, group_name in forward.groups.items():
                aws.autoscaling.Attachment(f"{self._name}-{key}-{pool}", autoscaling_group_name=group_name,
                                           lb_target_group_arn=self._arns[key],
                                           opts=pulumi.ResourceOptions(parent=self))


def docker_api_forward(manager_group: pulumi.Input[str] | None = None) -> Forward:
    """The 2376 listener to the managers."""
    return Forward(DOCKER_TLS_PORT, "TCP", {"managers": manager_group} if manager_group is not None else {})
