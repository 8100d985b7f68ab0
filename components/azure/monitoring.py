"""Where the cluster's alerts go on Azure: an action group of the stack's `alarms` (emails
and HTTPS endpoints), the Azure side of the AWS alarm topic and its subscriptions.

Azure Monitor alerts fire without an action group too (they show in the portal's alert
list), so a stack without `alarms` gets none: there is nobody to tell.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_azure_native as azure

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
