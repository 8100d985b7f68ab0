"""What the cluster tells a person: where the nodes' logs go, and what says the swarm is unwell.

- Log groups (`LogGroups`): `/swarmstack/<cluster>/<kind>` for containers, Docker
  events, the bootstrap and prune, with retention and, with `logging.kms`, the
  cluster key.
- Alarms and a dashboard (`Monitoring`): metric filters on the nodes' Docker events,
  alarms (OOM kills, crash-looping containers, managers below quorum or below their
  count, unhealthy load balancer targets) into one SNS topic, and a dashboard.

The `/events` log group holds one JSON object per Docker event, as
`docker events --format '{{json .}}'` prints it; the metric filters read that shape.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from components.aws.identity import Account
from components.common.cert_expiry import WARN_DAYS, warning_at, warning_message
from components.common.names import LIMITS, fit
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


OOM_PATTERN = '{ ($.Type = "container") && ($.Action = "oom") }'
CRASH_PATTERN = '{ ($.Type = "container") && ($.Action = "die") && ($.Actor.Attributes.exitCode != "0") }'
RESTART_THRESHOLD = 5
"""Containers exiting with an error within 5 minutes before the alarm fires (a task crash-looping)."""


def namespace(cluster: str) -> str:
    """The CloudWatch namespace of the cluster's own metrics. Pure."""
    return f"swarmstack/{cluster}"


def dashboard_body(cluster: str, region: str, manager_group: str, worker_groups: dict[str, str],
                   lb_suffix: str | None, target_groups: dict[str, str], node_metrics: bool = False) -> dict[str, Any]:
    """The dashboard's widgets; with `node_metrics`, the fullest node's memory, swap and root
    disk per group (`metrics.py`). Pure."""
    ns = namespace(cluster)
    groups = {"managers": manager_group, **worker_groups}
    widgets: list[dict[str, Any]] = [
        {"type": "metric", "x": 0, "y": 0, "width": 12, "height": 6, "properties": {
            "title": "Nodes in service", "region": region, "view": "timeSeries", "stat": "Minimum", "period": 60,
            "metrics": [["AWS/AutoScaling", "GroupInServiceInstances", "AutoScalingGroupName", name,
                         {"label": label}] for label, name in groups.items()]}},
        {"type": "metric", "x": 12, "y": 0, "width": 12, "height": 6, "properties": {
            "title": "CPU by group", "region": region, "view": "timeSeries", "stat": "Average", "period": 300,
            "metrics": [["AWS/EC2", "CPUUtilization", "AutoScalingGroupName", name, {"label": label}]
                        for label, name in groups.items()]}},
        {"type": "metric", "x": 0, "y": 6, "width": 12, "height": 6, "properties": {
            "title": "Containers: OOM kills and error exits", "region": region, "view": "timeSeries",
            "stat": "Sum", "period": 300,
            "metrics": [[ns, "ContainerOOMKills"], [ns, "ContainerErrorExits"]]}},
    ]
    if lb_suffix is not None and target_groups:
        widgets.append({"type": "metric", "x": 12, "y": 6, "width": 12, "height": 6, "properties": {
            "title": "Load balancer targets", "region": region, "view": "timeSeries", "stat": "Maximum",
            "period": 60,
            "metrics": [["AWS/NetworkELB", metric, "TargetGroup", tg, "LoadBalancer", lb_suffix,
                         {"label": f"{key} {metric}"}]
                        for key, tg in target_groups.items()
                        for metric in ("HealthyHostCount", "UnHealthyHostCount")]}})
    if node_metrics:
        for x, (title, metric, extra) in enumerate((("Memory used %, fullest node", "mem_used_percent", []),
                                                    ("Root disk used %, fullest node", "disk_used_percent",
                                                     ["path", "/"]),
                                                    ("Swap used %, fullest node", "swap_used_percent", []))):
            widgets.append({"type": "metric", "x": 8 * x, "y": 12, "width": 8, "height": 6, "properties": {
                "title": title, "region": region, "view": "timeSeries", "stat": "Maximum", "period": 60,
                "metrics": [[ns, metric, "AutoScalingGroupName", name, *extra, {"label": label}]
                            for label, name in groups.items()]}})
    return {"widgets": widgets}


@dataclass(frozen=True)
class MonitoringArgs:
    """What the alarms and the dashboard watch."""

    cluster: str
    """The cluster's name."""
    region: str
    """The stack's region (dashboard widgets name it)."""
    events_group: pulumi.Input[str]
    """The log group of the nodes' Docker events."""
    manager_count: int
    """How many managers there should be."""
    manager_quorum: int
    """Raft's majority of them (`components/common/managers.py`): the alarm fires below it."""
    manager_group: pulumi.Input[str]
    """The managers' auto scaling group."""
    account: Account
    """The account, partition and region (looked up once by the cluster: `account_of`)."""
    worker_groups: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """Pool name to auto scaling group."""
    lb_arn_suffix: pulumi.Input[str] | None = None
    """The load balancer, for target health; None without one."""
    target_groups: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """Listener key to target group ARN suffix."""
    tags: dict[str, str] = field(default_factory=dict)
    """Tags for every resource."""
    key_arn: pulumi.Input[str] | None = None
    """The cluster key; the alarm topic is encrypted with it (its key policy lets CloudWatch
    alarms use it). None leaves the topic unencrypted."""
    alarm_emails: Sequence[str] = ()
    """Email addresses subscribed to the alarm topic (each confirms from the mail AWS sends)."""
    alarm_https: Sequence[str] = ()
    """HTTPS endpoints subscribed to the alarm topic (they confirm the subscription)."""
    certificate_expiries: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """Certificate (`server`, `ca`) to its end (RFC 3339): each warns on the alarm topic
    `WARN_DAYS` before it."""
    node_metrics: bool = False
    """The nodes publish memory, swap and disk (`metrics.py`): the dashboard shows them."""


def subscriptions(emails: Sequence[str], https: Sequence[str]) -> list[tuple[str, str, str]]:
    """(child name suffix, protocol, endpoint) of each alarm subscription. The suffix is
    drawn from the endpoint, so reordering the config replaces nothing. Pure."""
    return [(f"{protocol}-{hashlib.sha256(endpoint.encode()).hexdigest()[:8]}", protocol, endpoint)
            for protocol, endpoints in (("email", emails), ("https", https)) for endpoint in endpoints]


def scheduler_trust_policy(account: str) -> dict[str, Any]:
    """EventBridge Scheduler may assume the warnings' role for this account's schedules only. Pure."""
    return {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "scheduler.amazonaws.com"}, "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"aws:SourceAccount": account}}}]}


def publish_policy(topic_arn: str, key_arn: str | None) -> dict[str, Any]:
    """Publish to the alarm topic and nothing else; with an encrypted topic, the two key
    operations SNS performs for the publisher. Pure."""
    statements: list[dict[str, Any]] = [{"Effect": "Allow", "Action": "sns:Publish", "Resource": topic_arn}]
    if key_arn is not None:
        statements.append({"Effect": "Allow", "Action": ["kms:GenerateDataKey", "kms:Decrypt"], "Resource": key_arn})
    return {"Version": "2012-10-17", "Statement": statements}


class Monitoring(pulumi.ComponentResource):
    """Metric filters, alarms into an SNS topic, and a dashboard."""

    topic_arn: pulumi.Output[str]
    dashboard_name: pulumi.Output[str]

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("swarmstack:aws:Monitoring", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        ns = namespace(args.cluster)
        topic = aws.sns.Topic(f"{name}-alarms", name=fit(f"swarmstack-{args.cluster}-alarms", LIMITS["sns-topic"]),
                              kms_master_key_id=args.key_arn, tags={**args.tags, "Name": f"{name}-alarms"}, opts=child)
        for suffix, protocol, endpoint in subscriptions(args.alarm_emails, args.alarm_https):
            aws.sns.TopicSubscription(f"{name}-alarms-{suffix}", topic=topic.arn, protocol=protocol,
                                      endpoint=endpoint, opts=child)
        filters = []
        for key, metric, pattern in (("oom", "ContainerOOMKills", OOM_PATTERN),
                                     ("error-exits", "ContainerErrorExits", CRASH_PATTERN)):
            filters.append(aws.cloudwatch.LogMetricFilter(
                f"{name}-{key}", name=f"{args.cluster}-{key}", log_group_name=args.events_group, pattern=pattern,
                metric_transformation={"name": metric, "namespace": ns, "value": "1", "default_value": "0"},
                opts=child))

        def alarm(key: str, description: str, **kwargs: Any) -> None:
            aws.cloudwatch.MetricAlarm(
                f"{name}-{key}", name=f"swarmstack-{args.cluster}-{key}", alarm_description=description,
                alarm_actions=[topic.arn], ok_actions=[topic.arn], tags={**args.tags, "Name": f"{name}-{key}"},
                opts=pulumi.ResourceOptions(parent=self, depends_on=filters), **kwargs)

        alarm("oom-kills", "A container was killed for running out of memory.", namespace=ns,
              metric_name="ContainerOOMKills", statistic="Sum", period=300, evaluation_periods=1,
              threshold=0, comparison_operator="GreaterThanThreshold", treat_missing_data="notBreaching")
        alarm("error-exits", f"More than {RESTART_THRESHOLD} containers exited with an error in 5 minutes "
              "(a service is crash-looping).", namespace=ns, metric_name="ContainerErrorExits", statistic="Sum",
              period=300, evaluation_periods=1, threshold=RESTART_THRESHOLD,
              comparison_operator="GreaterThanThreshold", treat_missing_data="notBreaching")
        manager_dims = {"AutoScalingGroupName": args.manager_group}
        alarm("managers-below-quorum", f"Fewer than {args.manager_quorum} of {args.manager_count} managers "
              "are in service: the swarm cannot schedule or change anything.", namespace="AWS/AutoScaling",
              metric_name="GroupInServiceInstances", dimensions=manager_dims, statistic="Minimum", period=60,
              evaluation_periods=2, threshold=args.manager_quorum, comparison_operator="LessThanThreshold",
              treat_missing_data="breaching")
        alarm("managers-missing", f"Fewer than {args.manager_count} managers are in service: one more loss "
              "may cost the quorum.", namespace="AWS/AutoScaling", metric_name="GroupInServiceInstances",
              dimensions=manager_dims, statistic="Minimum", period=60, evaluation_periods=10, datapoints_to_alarm=10,
              threshold=args.manager_count, comparison_operator="LessThanThreshold", treat_missing_data="breaching")
        if args.lb_arn_suffix is not None:
            for key, target_group in args.target_groups.items():
                alarm(f"unhealthy-{key}", f"Targets of {key} fail their health check.", namespace="AWS/NetworkELB",
                      metric_name="UnHealthyHostCount",
                      dimensions={"TargetGroup": target_group, "LoadBalancer": args.lb_arn_suffix},
                      statistic="Maximum", period=60, evaluation_periods=3, threshold=0,
                      comparison_operator="GreaterThanThreshold", treat_missing_data="notBreaching")
        groups = pulumi.Output.all(
            manager=args.manager_group, lb=args.lb_arn_suffix,
            workers=pulumi.Output.all(**args.worker_groups) if args.worker_groups else {},
            targets=pulumi.Output.all(**args.target_groups) if args.target_groups else {})
        body = groups.apply(lambda g: json.dumps(dashboard_body(
            args.cluster, args.region, g["manager"], dict(g["workers"]), g["lb"], dict(g["targets"]),
            args.node_metrics)))
        dashboard = aws.cloudwatch.Dashboard(f"{name}-dashboard", dashboard_name=f"swarmstack-{args.cluster}",
                                             dashboard_body=body, opts=child)
        if args.certificate_expiries:
            self._expiry_warnings(name, args, topic)
        self.topic_arn = topic.arn
        self.dashboard_name = dashboard.dashboard_name
        self.register_outputs({"topicArn": self.topic_arn, "dashboard": self.dashboard_name})

    def _expiry_warnings(self, name: str, args: MonitoringArgs, topic: aws.sns.Topic) -> None:
        """A one-time schedule per certificate that publishes the warning to the alarm
        topic `WARN_DAYS` before the certificate ends. A re-issued certificate has a new
        end, so the schedule moves with it."""
        child = pulumi.ResourceOptions(parent=self)
        account = args.account.id
        role = aws.iam.Role(f"{name}-expiry", name=fit(f"swarmstack-{args.cluster}-cert-expiry", LIMITS["iam-role"]),
                            assume_role_policy=pulumi.Output.json_dumps(scheduler_trust_policy(account)),
                            description="EventBridge Scheduler: certificate expiry warnings to the alarm topic",
                            tags={**args.tags, "Name": f"{name}-expiry"}, opts=child)
        policy = aws.iam.RolePolicy(
            f"{name}-expiry", role=role.name, name="publish-to-the-alarm-topic",
            policy=pulumi.Output.all(topic.arn, args.key_arn).apply(
                lambda v: json.dumps(publish_policy(v[0], v[1]))), opts=child)
        for certificate, end in args.certificate_expiries.items():
            end_time = pulumi.Output.from_input(end)
            message = pulumi.Output.all(certificate, end_time).apply(
                lambda v: warning_message(args.cluster, v[0], v[1]))
            aws.scheduler.Schedule(
                f"{name}-expiry-{certificate}",
                name=fit(f"swarmstack-{args.cluster}-{certificate}-cert-expiry", LIMITS["schedule"]),
                description=f"Warns {WARN_DAYS} days before the Docker API {certificate} certificate expires",
                schedule_expression=end_time.apply(warning_at), schedule_expression_timezone="UTC",
                flexible_time_window=aws.scheduler.ScheduleFlexibleTimeWindowArgs(mode="OFF"),
                target=aws.scheduler.ScheduleTargetArgs(arn=topic.arn, role_arn=role.arn, input=message),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]))
