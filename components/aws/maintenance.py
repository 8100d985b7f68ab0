"""The scheduled `docker system prune` on every node of the cluster, as an SSM State
Manager association (`AWS-RunShellScript`) targeting the tag `swarmstack:cluster`.

State Manager can send an association's output only to S3, so the script itself
writes its output to the cluster's `/prune` log group (one stream per instance) with
the aws CLI and the node role's own logs permission; SSM keeps the last output of
each run too (`aws ssm list-association-executions`).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.common.prune import prune_commands
from swarmstack.config.cron import parse_cron, to_aws

DOCUMENT = "AWS-RunShellScript"


def prune_script(until: str, volumes: bool, log_group: str, region: str) -> str:
    """The shell script the association runs on each node. Pure."""
    steps = " && ".join(prune_commands(until, volumes))
    group = shlex.quote(log_group)
    return "\n".join([
        "#!/bin/bash",
        "set -uo pipefail",
        "command -v docker >/dev/null || { echo 'no docker on this node'; exit 0; }",
        f"out=$( {{ {steps}; }} 2>&1 ); rc=$?",
        'printf \'%s\\n\' "$out"',
        "instance=$(cat /var/lib/cloud/data/instance-id 2>/dev/null || hostname)",
        "if command -v aws >/dev/null && command -v python3 >/dev/null; then",
        f"  aws logs create-log-stream --region {region} --log-group-name {group} "
        '--log-stream-name "$instance" >/dev/null 2>&1 || true',
        "  events=$(printf '%s' \"$out\" | python3 -c 'import json,sys,time; "
        "print(json.dumps([{\"timestamp\": int(time.time()*1000), "
        "\"message\": sys.stdin.read() or \"(no output)\"}]))')",
        f"  aws logs put-log-events --region {region} --log-group-name {group} "
        '--log-stream-name "$instance" --log-events "$events" >/dev/null || echo "could not write to the log group"',
        "fi",
        'exit "$rc"',
    ])


@dataclass(frozen=True)
class PruneArgs:
    """The prune schedule and what it removes."""

    cluster: str
    """The cluster's name: the association targets instances tagged with it."""
    region: str
    """The stack's region."""
    schedule: str
    """Standard 5-field cron in UTC (translated to SSM's `cron(...)`)."""
    until: str
    """Only prune objects older than this (`24h`)."""
    volumes: bool
    """Also prune unused volumes."""
    log_group: pulumi.Input[str]
    """Where the output goes."""


class Prune(pulumi.ComponentResource):
    """One State Manager association."""

    schedule_expression: str

    def __init__(self, name: str, args: PruneArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("swarmstack:aws:Prune", name, None, opts)
        self.schedule_expression = to_aws(parse_cron(args.schedule))
        script = pulumi.Output.from_input(args.log_group).apply(
            lambda group: prune_script(args.until, args.volumes, group, args.region))
        aws.ssm.Association(
            f"{name}-prune", name=DOCUMENT, association_name=f"swarmstack-{args.cluster}-prune",
            schedule_expression=self.schedule_expression, apply_only_at_cron_interval=True,
            targets=[{"key": "tag:swarmstack:cluster", "values": [args.cluster]}],
            parameters={"commands": script, "executionTimeout": "3600"},
            max_concurrency="50%", max_errors="100%", compliance_severity="LOW",
            opts=pulumi.ResourceOptions(parent=self))
        self.register_outputs({"schedule": self.schedule_expression})
