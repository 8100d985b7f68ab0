"""What the cluster tells a person on Azure: where the nodes' logs go, and who hears that
the swarm is unwell.

- Logs and the quorum alarm (`Logs`): a Log Analytics workspace, the data collection
  rule the nodes' Azure Monitor Agent follows, and an alert when managers fall below
  quorum.
- Where the alerts go (`Monitoring`): an action group of the stack's `alarms` (emails
  and HTTPS endpoints), the Azure side of the AWS alarm topic and its subscriptions.
  Azure Monitor alerts fire without an action group too (they show in the portal's
  alert list), so a stack without `alarms` gets none: there is nobody to tell.

How logs get there (the user data sets this up, see docs/azure.md):
- containers log through Docker's `syslog` driver to facility local0 (`docker logs`
  still works through Docker's dual logging), tagged with the container name;
- `docker events` are written as JSON lines to facility local1;
- dockerd itself logs to daemon, the bootstrap to local2;
- the agent ships those facilities to the workspace's `Syslog` table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_azure_native as azure

from components.azure.metrics import PERF_STREAM, counter_source

FACILITIES = {"local0": "containers", "local1": "docker events", "local2": "swarmstack bootstrap",
              "daemon": "dockerd and systemd services"}


def quorum_query(computer_prefix: str) -> str:
    """KQL: how many managers sent a heartbeat in the window (0 when none did)."""
    return ("Heartbeat\n"
            f"| where Computer startswith \"{computer_prefix}\"\n"
            "| summarize managers = dcount(Computer)")


@dataclass(frozen=True)
class LogsArgs:
    """Where logs go and how long they stay."""

    resource_group: pulumi.Input[str]
    """Name of the cluster's resource group."""
    location: str
    """Azure region."""
    retention_days: int
    """Log Analytics retention, 30 to 730 days."""
    manager_count: int
    """How many managers the swarm should have."""
    manager_quorum: int
    """Raft's majority of them (`components/common/managers.py`): the alert fires below it."""
    manager_computer_prefix: str
    """Host name prefix of the managers, as in the Heartbeat table."""
    action_group_ids: Sequence[pulumi.Input[str]]
    """Who hears the quorum alert (`Monitoring` below); empty for nobody."""
    tags: dict[str, str]
    """Tags for every resource."""
    node_metrics: bool = False
    """The agent also samples memory, swap and disk use (`metrics.counter_source`)."""


class Logs(pulumi.ComponentResource):
    """The workspace, the collection rule and the quorum alert."""

    workspace_id: pulumi.Output[str]
    workspace_customer_id: pulumi.Output[str]
    """The workspace id a person pastes into `az monitor log-analytics query -w`."""
    collection_rule_id: pulumi.Output[str]

    def __init__(self, name: str, args: LogsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("swarmstack:azure:Logs", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        workspace = azure.operationalinsights.Workspace(
            f"{name}-workspace", resource_group_name=args.resource_group, location=args.location,
            workspace_name=f"{name}-workspace", retention_in_days=args.retention_days,
            sku=azure.operationalinsights.WorkspaceSkuArgs(name="PerGB2018"), tags=args.tags, opts=child)
        rule = azure.monitor.DataCollectionRule(
            f"{name}-collection", resource_group_name=args.resource_group, location=args.location,
            data_collection_rule_name=f"{name}-collection", kind="Linux",
            description="swarm nodes: containers, docker events, dockerd, bootstrap",
            data_sources=azure.monitor.DataCollectionRuleDataSourcesArgs(syslog=[
                azure.monitor.SyslogDataSourceArgs(
                    name="swarm", streams=["Microsoft-Syslog"], facility_names=list(FACILITIES),
                    log_levels=["Info", "Notice", "Warning", "Error", "Critical", "Alert", "Emergency"])],
                performance_counters=[counter_source()] if args.node_metrics else None),
            destinations=azure.monitor.DataCollectionRuleDestinationsArgs(log_analytics=[
                azure.monitor.LogAnalyticsDestinationArgs(name="workspace", workspace_resource_id=workspace.id)]),
            data_flows=[azure.monitor.DataFlowArgs(streams=["Microsoft-Syslog"], destinations=["workspace"]),
                        *([azure.monitor.DataFlowArgs(streams=[PERF_STREAM], destinations=["workspace"])]
                          if args.node_metrics else [])],
            tags=args.tags, opts=child)
        azure.monitor.ScheduledQueryRule(
            f"{name}-quorum", resource_group_name=args.resource_group, location=args.location,
            rule_name=f"{name}-manager-quorum", display_name=f"{name}: swarm managers below quorum",
            description=f"Fewer than {args.manager_quorum} of {args.manager_count} managers sent a "
                        "heartbeat: the swarm cannot schedule or join until quorum is back.",
            severity=1, enabled=True, scopes=[workspace.id], evaluation_frequency="PT5M", window_size="PT10M",
            criteria=azure.monitor.ScheduledQueryRuleCriteriaArgs(all_of=[azure.monitor.ConditionArgs(
                query=quorum_query(args.manager_computer_prefix), time_aggregation="Minimum",
                metric_measure_column="managers", operator="LessThan", threshold=args.manager_quorum,
                failing_periods=azure.monitor.ConditionFailingPeriodsArgs(
                    number_of_evaluation_periods=1, min_failing_periods_to_alert=1))]),
            actions=azure.monitor.ActionsArgs(action_groups=list(args.action_group_ids))
            if args.action_group_ids else None,
            tags=args.tags, opts=child)
        self.workspace_id = workspace.id
        self.workspace_customer_id = workspace.customer_id
        self.collection_rule_id = rule.id
        self.register_outputs({"workspaceId": self.workspace_id})


SHORT_NAME_LIMIT = 12
"""An action group's short name (the sender of its SMS and emails): at most 12 characters."""


def short_name(cluster: str) -> str:
    """The action group's short name for a cluster. Pure."""
    return cluster[:SHORT_NAME_LIMIT]


@dataclass(frozen=True)
class MonitoringArgs:
    """Who hears about the cluster's alerts."""

    cluster: str
    resource_group: pulumi.Input[str]
    emails: tuple[str, ...]
    """Email addresses (`alarms.email`)."""
    https: tuple[str, ...]
    """HTTPS endpoints (`alarms.https`), sent Azure Monitor's common alert schema."""
    tags: dict[str, str]


class Monitoring(pulumi.ComponentResource):
    """The action group every alert of the cluster names, when the stack says who hears them."""

    action_group_ids: list[pulumi.Output[str]]
    """Empty without `alarms`."""

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("swarmstack:azure:Monitoring", name, None, opts)
        self.action_group_ids = []
        if args.emails or args.https:
            group = azure.monitor.ActionGroup(
                f"{name}-alarms", resource_group_name=args.resource_group, location="Global",
                action_group_name=f"{name}-alarms", group_short_name=short_name(args.cluster), enabled=True,
                email_receivers=[azure.monitor.MicrosoftCommonEmailReceiverArgs(
                    name=f"email-{n}", email_address=address, use_common_alert_schema=True)
                    for n, address in enumerate(args.emails, 1)],
                webhook_receivers=[azure.monitor.WebhookReceiverArgs(
                    name=f"https-{n}", service_uri=uri, use_common_alert_schema=True)
                    for n, uri in enumerate(args.https, 1)],
                tags=args.tags, opts=pulumi.ResourceOptions(parent=self))
            self.action_group_ids = [group.id]
        self.register_outputs({})
