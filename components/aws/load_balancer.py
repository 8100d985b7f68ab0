"""The network load balancer in front of the swarm, and where it writes its access logs.

- `LoadBalancer`: a TCP/UDP listener and target group per published port (to the
  workers, or the managers when there are none), and the TLS Docker API on 2376 to the
  managers, reachable from the admins only (the load balancer's security group admits
  2376 from `adminCidrs` and nothing else).
- `AccessLogBucket`: the S3 bucket a production load balancer writes its access logs
  to: private, encrypted, TLS-only, owned by the account, and emptied after the log
  retention. Network load balancers log only TLS listeners; swarmstack's listeners are
  TCP/UDP (TLS ends at the swarm's services), so the bucket stays nearly empty. It is
  there so that a TLS listener added later is logged from its first connection, and
  because scanners (CKV_AWS_91) ask for it; flow logs record the TCP traffic itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from components.aws.identity import Account
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


ACCESS_LOG_PREFIX = "nlb"
"""Where in the bucket the load balancer writes (the policy lets log delivery write only there)."""


def access_log_bucket_policy(partition: str, account: str, bucket_arn: str) -> dict[str, Any]:
    """Log delivery may write under the account's own prefix; no principal at all, in this
    account or any other, may use plain HTTP. Pure."""
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "LogDeliveryWrite", "Effect": "Allow", "Principal": {"Service": "delivery.logs.amazonaws.com"},
         "Action": "s3:PutObject", "Resource": f"{bucket_arn}/{ACCESS_LOG_PREFIX}/AWSLogs/{account}/*",
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
    account: Account
    """The account, partition and region (looked up once by the cluster: `account_of`)."""
    name: pulumi.Input[str] | None = None
    """The bucket's name (globally unique, 3 to 63 lowercase characters); None lets Pulumi name it."""


class AccessLogBucket(pulumi.ComponentResource):
    """A private, encrypted bucket with a log-delivery policy and an expiry rule."""

    bucket: pulumi.Output[str]
    prefix: str

    def __init__(self, name: str, args: AccessLogBucketArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("swarmstack:aws:AccessLogBucket", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        account, partition = args.account.id, args.account.partition
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
            rules=[{"id": "expire-logs", "status": "Enabled", "filter": {"prefix": f"{ACCESS_LOG_PREFIX}/"},
                    "expiration": {"days": args.retention_days}}], opts=child)
        policy = aws.s3.BucketPolicy(
            f"{name}-policy", bucket=bucket.id,
            policy=pulumi.Output.json_dumps(
                bucket.arn.apply(lambda arn: access_log_bucket_policy(partition, account, arn))),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[block, owner]))
        self.bucket = pulumi.Output.all(bucket.bucket, policy.id).apply(lambda v: v[0])
        self.prefix = ACCESS_LOG_PREFIX
        self.register_outputs({"bucket": self.bucket})
