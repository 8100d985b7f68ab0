"""The swarm's firewalls on Azure: an application security group and an NSG per node role."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_azure_native as azure

from components.azure.nsg_rules import NsgRule, node_rules
from components.common.ports import Exposure
from swarmstack.config.tags import ROLE_TAG

ROLES = ("managers", "workers")


@dataclass(frozen=True)
class FirewallArgs:
    """Where the firewalls go and what they let in."""

    resource_group: pulumi.Input[str]
    """Name of the cluster's resource group."""
    location: str
    """Azure region."""
    exposure: Exposure
    """What the cluster exposes (the port matrix's input)."""
    admin_cidrs: tuple[str, ...]
    """Address ranges of the admins (TLS Docker API, SSH)."""
    lb_public: bool
    """True when the load balancer faces the Internet (clients come from anywhere)."""
    tags: dict[str, str]
    """Tags for every resource."""


class Firewall(pulumi.ComponentResource):
    """ASGs name the node groups in rules; NSGs (one per role) hold the port matrix."""

    asg_ids: dict[str, pulumi.Output[str]]
    """Application security group id by role; the scale sets' NICs join them."""
    nsg_ids: dict[str, pulumi.Output[str]]
    """Network security group id by role."""
    rules: dict[str, list[NsgRule]]
    """The rules as planned, by role (for tests and docs)."""

    def __init__(self, name: str, args: FirewallArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("swarmstack:azure:Firewall", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.asg_ids, self.nsg_ids, self.rules = {}, {}, {}
        for role in ROLES:
            asg = azure.network.ApplicationSecurityGroup(
                f"{name}-{role}", resource_group_name=args.resource_group, location=args.location,
                application_security_group_name=f"{name}-{role}", tags={**args.tags, ROLE_TAG: role},
                opts=child)
            self.asg_ids[role] = asg.id
        for role in ROLES:
            self.rules[role] = node_rules(role, args.exposure, args.admin_cidrs, args.lb_public)  # type: ignore[arg-type]
            nsg = azure.network.NetworkSecurityGroup(
                f"{name}-{role}", resource_group_name=args.resource_group, location=args.location,
                network_security_group_name=f"{name}-{role}",
                security_rules=[self._rule(rule) for rule in self.rules[role]],
                tags={**args.tags, ROLE_TAG: role}, opts=child)
            self.nsg_ids[role] = nsg.id
        self.register_outputs({"asgIds": self.asg_ids, "nsgIds": self.nsg_ids})

    def _rule(self, rule: NsgRule) -> azure.network.SecurityRuleArgs:
        source: dict[str, object] = {}
        if rule.source.kind == "asg":
            source["source_application_security_groups"] = [
                azure.network.ApplicationSecurityGroupArgs(id=self.asg_ids[role]) for role in rule.source.values]
        elif rule.source.kind == "tag":
            source["source_address_prefix"] = rule.source.values[0]
        elif rule.source.kind == "cidrs":
            source["source_address_prefixes"] = list(rule.source.values)
        else:
            source["source_address_prefix"] = "*"
        return azure.network.SecurityRuleArgs(
            name=rule.name, priority=rule.priority, direction="Inbound", access=rule.access,
            protocol=rule.protocol, source_port_range="*",
            destination_port_range="*" if rule.port is None else str(rule.port),
            destination_address_prefix="*", description=rule.description[:140], **source)  # type: ignore[arg-type]
