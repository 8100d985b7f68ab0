"""Node memory, swap and disk on AWS: the CloudWatch agent on every node, and alarms per
node group into the cluster's alarm topic (`observability.py`, whose dashboard shows them).

The agent is installed and configured by State Manager, not by the user data: EC2 takes
16 KiB of gzipped user data and the node script fills it. One association runs
`AWS-RunShellScript` (the document the prune runs, which the node roles may already use)
on every instance tagged with the cluster: State Manager runs it when it is created, on
each instance that registers later (a scaled-out or replaced node), and again every 30
minutes, so a failed download is tried again and a changed configuration reaches every
node. The script (`agent_script`) is idempotent: it installs the agent when it is
missing (Amazon Linux: `dnf install amazon-cloudwatch-agent`; Debian and Ubuntu: AWS's
package from the region's download bucket, over HTTPS), writes the configuration
rendered here (`agent_config`) and restarts the agent only when that configuration
changed or the agent is not running.

The agent publishes to the cluster's own namespace (`observability.namespace`), per instance
and aggregated per auto scaling group (and per group and mount point for disks); the node
roles may put metrics into that namespace only (`identity.py`: `cloudwatch:PutMetricData`
with the `cloudwatch:namespace` condition) and call `ec2:DescribeTags`, which the agent
uses to learn its instance's group. The alarms watch the group aggregates with the
`Maximum` statistic: the fullest node of the group.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from components.common.metrics import DISK_PATHS, DISK_WINDOW_MINUTES, INTERVAL_SECONDS, MEMORY_WINDOW_MINUTES

AGENT_DIR = "/opt/aws/amazon-cloudwatch-agent"
CONFIG_PATH = f"{AGENT_DIR}/etc/swarmstack.json"
SCHEDULE = "rate(30 minutes)"
"""How often State Manager runs the agent script again (its shortest rate)."""
GROUP = "AutoScalingGroupName"


def agent_config(namespace: str) -> dict[str, Any]:
    """The CloudWatch agent's configuration (its JSON schema: `agent`, `metrics`). Pure."""
    return {
        "agent": {"metrics_collection_interval": INTERVAL_SECONDS, "run_as_user": "root"},
        "metrics": {
            "namespace": namespace,
            "append_dimensions": {GROUP: "${aws:AutoScalingGroupName}", "InstanceId": "${aws:InstanceId}"},
            "aggregation_dimensions": [[GROUP], [GROUP, "path"]],
            "metrics_collected": {
                "mem": {"measurement": ["mem_used_percent"]},
                "swap": {"measurement": ["swap_used_percent"]},
                "disk": {"measurement": ["used_percent"], "resources": list(DISK_PATHS), "drop_device": True},
            },
        },
    }


def agent_script(namespace: str, region: str) -> str:
    """The shell script State Manager runs on every node: install the agent when missing,
    apply `agent_config`, keep it running. Pure."""
    config = json.dumps(agent_config(namespace), sort_keys=True)
    package = (f"https://amazoncloudwatch-agent-{region}.s3.{region}.amazonaws.com/"
               '"$distro"/"$(dpkg --print-architecture)"/latest/amazon-cloudwatch-agent.deb')
    return "\n".join([
        "#!/bin/bash",
        "set -euo pipefail",
        f"ctl={AGENT_DIR}/bin/amazon-cloudwatch-agent-ctl",
        f"config={CONFIG_PATH}",
        'if [ ! -x "$ctl" ]; then',
        "  if command -v dnf >/dev/null; then",
        "    dnf install -y amazon-cloudwatch-agent",
        "  elif command -v dpkg >/dev/null; then",
        "    distro=debian",
        "    ! grep -qx 'ID=ubuntu' /etc/os-release || distro=ubuntu",
        '    deb=$(mktemp --suffix .deb)',
        f"    curl -fsSL --retry 5 -o \"$deb\" {package}",
        '    dpkg -i -E "$deb"',
        '    rm -f "$deb"',
        "  else",
        "    echo 'neither dnf nor dpkg: cannot install the CloudWatch agent here' >&2",
        "    exit 1",
        "  fi",
        "fi",
        'mkdir -p "${config%/*}"',
        'new=$(mktemp "$config.XXXXXX")',
        "# shellcheck disable=SC2016 # the agent expands ${aws:...} itself",
        f"printf '%s\\n' {shlex.quote(config)} >\"$new\"",
        'if cmp -s "$new" "$config" && "$ctl" -a status | grep -q \'"status": "running"\'; then',
        '  rm -f "$new"',
        "  echo 'the CloudWatch agent runs with this configuration'",
        "  exit 0",
        "fi",
        'mv "$new" "$config"',
        '"$ctl" -a fetch-config -m ec2 -s -c "file:$config"',
        "echo 'the CloudWatch agent runs with the new configuration'",
    ])


@dataclass(frozen=True)
class AlarmSpec:
    """One node-metric alarm of one node group."""

    key: str
    """Suffix of the child and alarm names (`<pool>-disk-root`)."""
    description: str
    metric: str
    dimensions: dict[str, str]
    """Besides the group's own (`AutoScalingGroupName`)."""
    period: int
    periods: int
    threshold: int


def alarm_specs(pool: str, disk_percent: int, memory_percent: int) -> list[AlarmSpec]:
    """The alarms of one node group: each measured disk fuller than `disk_percent` on any
    node; memory above `memory_percent` for `MEMORY_WINDOW_MINUTES` on the group's fullest
    node at every minute. Pure."""
    specs = []
    for path in DISK_PATHS:
        label = "root" if path == "/" else path.strip("/").replace("/", "-")
        specs.append(AlarmSpec(
            f"{pool}-disk-{label}", f"A node of {pool} has its disk at {path} more than {disk_percent}% full: "
            "prune images and volumes, or give the group bigger disks (diskGiB).",
            "disk_used_percent", {"path": path}, DISK_WINDOW_MINUTES * 60, 1, disk_percent))
    specs.append(AlarmSpec(
        f"{pool}-memory", f"A node of {pool} has used more than {memory_percent}% of its memory for "
        f"{MEMORY_WINDOW_MINUTES} minutes: containers will be OOM-killed; set memory limits or scale out.",
        "mem_used_percent", {}, INTERVAL_SECONDS, MEMORY_WINDOW_MINUTES * 60 // INTERVAL_SECONDS,
        memory_percent))
    return specs


@dataclass(frozen=True)
class NodeMetricsArgs:
    """Where the agent runs, where it publishes, and when to alarm."""

    cluster: str
    """The cluster's name: the association targets instances tagged with it."""
    region: str
    """The stack's region (the agent package is downloaded from it)."""
    namespace: str
    """The CloudWatch namespace the agent publishes to."""
    groups: Mapping[str, pulumi.Input[str]]
    """Pool name (`managers` and each worker pool) to its auto scaling group."""
    topic_arn: pulumi.Input[str]
    """The alarm topic."""
    disk_alarm_percent: int
    memory_alarm_percent: int
    tags: dict[str, str] = field(default_factory=dict)


class NodeMetrics(pulumi.ComponentResource):
    """The agent's State Manager association and each node group's alarms."""

    def __init__(self, name: str, args: NodeMetricsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("swarmstack:aws:NodeMetrics", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        aws.ssm.Association(
            f"{name}-agent", name="AWS-RunShellScript", association_name=f"swarmstack-{args.cluster}-metrics-agent",
            schedule_expression=SCHEDULE,
            targets=[{"key": "tag:swarmstack:cluster", "values": [args.cluster]}],
            parameters={"commands": agent_script(args.namespace, args.region), "executionTimeout": "900"},
            max_concurrency="100%", max_errors="100%", compliance_severity="MEDIUM", opts=child)
        for pool, group in args.groups.items():
            for spec in alarm_specs(pool, args.disk_alarm_percent, args.memory_alarm_percent):
                dimensions = {GROUP: group, **spec.dimensions}
                aws.cloudwatch.MetricAlarm(
                    f"{name}-{spec.key}", name=f"swarmstack-{args.cluster}-{spec.key}",
                    alarm_description=spec.description, namespace=args.namespace, metric_name=spec.metric,
                    dimensions=dimensions, statistic="Maximum", period=spec.period,
                    evaluation_periods=spec.periods, datapoints_to_alarm=spec.periods, threshold=spec.threshold,
                    comparison_operator="GreaterThanThreshold", treat_missing_data="notBreaching",
                    alarm_actions=[args.topic_arn], ok_actions=[args.topic_arn],
                    tags={**args.tags, "Name": f"{name}-{spec.key}"}, opts=child)
        self.register_outputs({})
