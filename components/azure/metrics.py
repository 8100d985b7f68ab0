"""Node memory, swap and disk on Azure: performance counters the nodes' Azure Monitor Agent
collects into the cluster's Log Analytics workspace (`Perf` table), and alerts on them.

The agent and the data collection rule are the logging's (`observability.py`): the counters are one
more data source of that rule (`PERF_COUNTERS`), so metrics need `logging.enabled`
(`swarmstack/config/rules.py` says so). Every node of every scale set reports, so one
alert per measure covers every node group; it splits by computer (and mount point), so
each full node alerts on its own and names itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_azure_native as azure

from components.common.metrics import DISK_PATHS, DISK_WINDOW_MINUTES, INTERVAL_SECONDS, MEMORY_WINDOW_MINUTES

PERF_COUNTERS = ("Memory(*)\\% Used Memory", "Memory(*)\\% Used Swap Space", "Logical Disk(*)\\% Used Space")
"""The Linux counters the agent samples (object(instance)\\counter); in `Perf` they read
ObjectName `Memory` / `Logical Disk`, CounterName `% Used Memory` ..., InstanceName the mount point."""
PERF_STREAM = "Microsoft-Perf"


def disk_query(paths: Sequence[str] = DISK_PATHS) -> str:
    """KQL: each node's fullest sample of each measured mount point in the window. Pure."""
    listed = ", ".join(f'"{p}"' for p in paths)
    return ("Perf\n"
            '| where ObjectName == "Logical Disk" and CounterName == "% Used Space"\n'
            f"| where InstanceName in ({listed})\n"
            "| summarize UsedPercent = max(CounterValue) by Computer, InstanceName")


def memory_query() -> str:
    """KQL: each node's lowest memory use in the window, so a node alerts only when its memory
    stayed high all along. Pure."""
    return ("Perf\n"
            '| where ObjectName == "Memory" and CounterName == "% Used Memory"\n'
            "| summarize UsedPercent = min(CounterValue) by Computer")


def minutes(value: int) -> str:
    """An ISO 8601 duration of whole minutes. Pure."""
    return f"PT{value}M"


@dataclass(frozen=True)
class NodeMetricsArgs:
    """Where the counters land and when to alert."""

    cluster: str
    resource_group: pulumi.Input[str]
    location: str
    workspace_id: pulumi.Input[str]
    """The logging's Log Analytics workspace (its data collection rule carries PERF_COUNTERS)."""
    disk_alarm_percent: int
    memory_alarm_percent: int
    action_group_ids: Sequence[pulumi.Input[str]] = ()
    """Who hears the alerts (`observability.py`); empty for nobody."""
    tags: dict[str, str] = field(default_factory=dict)


class NodeMetrics(pulumi.ComponentResource):
    """The disk and memory alerts."""

    def __init__(self, name: str, args: NodeMetricsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("swarmstack:azure:NodeMetrics", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        actions = azure.monitor.ActionsArgs(action_groups=list(args.action_group_ids)) \
            if args.action_group_ids else None
        for key, title, description, query, split, window, threshold in (
            ("disk", "a node's disk is filling up",
             f"A node's disk ({', '.join(DISK_PATHS)}) is more than {args.disk_alarm_percent}% full: prune "
             "images and volumes, or give its group bigger disks (diskGiB).",
             disk_query(), ("Computer", "InstanceName"), DISK_WINDOW_MINUTES, args.disk_alarm_percent),
            ("memory", "a node's memory stays high",
             f"A node has used more than {args.memory_alarm_percent}% of its memory for {MEMORY_WINDOW_MINUTES} "
             "minutes: containers will be OOM-killed; set memory limits or scale out.",
             memory_query(), ("Computer",), MEMORY_WINDOW_MINUTES, args.memory_alarm_percent),
        ):
            azure.monitor.ScheduledQueryRule(
                f"{name}-{key}", resource_group_name=args.resource_group, location=args.location,
                rule_name=f"{name}-{key}", display_name=f"{args.cluster}: {title}", description=description,
                severity=2, enabled=True, scopes=[args.workspace_id], evaluation_frequency=minutes(5),
                window_size=minutes(window),
                criteria=azure.monitor.ScheduledQueryRuleCriteriaArgs(all_of=[azure.monitor.ConditionArgs(
                    query=query, time_aggregation="Maximum", metric_measure_column="UsedPercent",
                    operator="GreaterThan", threshold=threshold,
                    dimensions=[azure.monitor.DimensionArgs(name=column, operator="Include", values=["*"])
                                for column in split],
                    failing_periods=azure.monitor.ConditionFailingPeriodsArgs(
                        number_of_evaluation_periods=1, min_failing_periods_to_alert=1))]),
                actions=actions, tags=args.tags, opts=child)
        self.register_outputs({})


def counter_source() -> azure.monitor.PerfCounterDataSourceArgs:
    """The data collection rule's performance counter source. Pure."""
    return azure.monitor.PerfCounterDataSourceArgs(
        name="node-metrics", streams=[PERF_STREAM], sampling_frequency_in_seconds=INTERVAL_SECONDS,
        counter_specifiers=list(PERF_COUNTERS))
