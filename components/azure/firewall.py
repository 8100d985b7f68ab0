"""The swarm's firewalls on Azure: the port matrix as network security group rules, with
priorities (pure: `node_rules`, `assign_priorities`), then the component that creates an
application security group and an NSG per node role from them.

Azure differs from AWS in ways the rules must show rather than hide:
- A load balancer has no firewall of its own and keeps the client's address, so a
  published port is allowed on the nodes from the clients themselves (the Internet,
  or the VNet for an internal balancer) and from the `AzureLoadBalancer` tag, where
  the health probes come from.
- A node group is named by an application security group (ASG) that its NICs join,
  the analogue of an AWS security-group reference.
- Every NSG ends with a deny-all at 4096 (the built-in `AllowVnetInBound` at 65000
  would otherwise open every port inside the VNet) and starts with a deny of 2375,
  the plaintext Docker API, at 100, so nothing added later in between can open it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pulumi
import pulumi_azure_native as azure

from components.common.ports import NEVER_OPEN, Exposure, Ingress, Role, ingress_matrix
from swarmstack.config.tags import ROLE_TAG

FIRST_PRIORITY = 100
LAST_PRIORITY = 4096
ALLOW_FROM = 110
"""The first priority an allow rule gets; 100 is the 2375 deny."""
STEP = 10
"""Gap between allow rules, so a hand-made rule can be slotted in between."""

LB_TAG = "AzureLoadBalancer"


@dataclass(frozen=True)
class Source:
    """Where a rule lets traffic come from: node groups, one service tag, or address ranges."""

    kind: Literal["asg", "tag", "cidrs", "any"]
    """What `values` holds."""
    values: tuple[str, ...]
    """ASG roles (`managers`), one tag (`Internet`), or CIDRs."""


@dataclass(frozen=True)
class NsgRule:
    """One inbound NSG rule, before priorities and ASG ids are filled in."""

    name: str
    """Unique within the NSG, e.g. `allow-2377-tcp-from-managers-workers`."""
    access: Literal["Allow", "Deny"]
    """Allow or Deny."""
    protocol: Literal["Tcp", "Udp", "Esp", "*"]
    """NSG protocol."""
    port: int | None
    """None: every port (ESP has none)."""
    source: Source
    """Where the traffic may come from."""
    description: str
    """Why the rule exists (the matrix's descriptions)."""
    priority: int = 0
    """100..4096, unique in the NSG; 0 until assigned."""


def _protocol(ingress: Ingress) -> Literal["Tcp", "Udp", "Esp"]:
    return {"tcp": "Tcp", "udp": "Udp", "esp": "Esp"}[ingress.protocol]  # type: ignore[return-value]


def _sources(ingress: Ingress, matrix: list[Ingress], admin_cidrs: tuple[str, ...], lb_public: bool) -> list[Source]:
    """What a matrix source becomes on Azure (see the module docstring for `lb`)."""
    if ingress.source in ("managers", "workers"):
        return [Source("asg", (ingress.source,))]
    if ingress.source == "admins":
        return [Source("cidrs", admin_cidrs)] if admin_cidrs else []
    if ingress.source == "clients":
        return [Source("tag", ("Internet" if lb_public else "VirtualNetwork",))]
    # Through the load balancer: the probes, and whoever may reach the balancer on this port.
    sources = [Source("tag", (LB_TAG,))]
    for front in matrix:
        if front.target == "lb" and (front.protocol, front.port) == (ingress.protocol, ingress.port):
            sources += _sources(front, matrix, admin_cidrs, lb_public)
    return sources


def _rule_name(protocol: str, port: int | None, source: Source) -> str:
    what = "esp" if protocol == "Esp" else f"{port}-{protocol.lower()}"
    if source.kind == "asg":
        origin = "-".join(source.values)
    elif source.kind == "tag":
        origin = source.values[0].lower()
    else:
        origin = "admins"
    return f"allow-{what}-from-{origin}"


def node_rules(role: Role, exposure: Exposure, admin_cidrs: tuple[str, ...], lb_public: bool) -> list[NsgRule]:
    """The inbound rules of one node group's NSG, in order, priorities assigned.

    Flows with the same protocol, port and kind of source are merged into one rule
    (one rule may name several ASGs, or several address ranges).
    """
    matrix = ingress_matrix(exposure)
    merged: dict[tuple[str, int | None, str, tuple[str, ...]], tuple[set[str], list[str], list[str]]] = {}
    for ingress in matrix:
        if ingress.target != role:
            continue
        for source in _sources(ingress, matrix, admin_cidrs, lb_public):
            # ASG sources merge across roles; tags and CIDR lists merge only with the same values.
            key = (_protocol(ingress), ingress.port, source.kind, () if source.kind == "asg" else source.values)
            values, order, descriptions = merged.setdefault(key, (set(), [], []))
            for value in source.values:
                if value not in values:
                    values.add(value)
                    order.append(value)
            if ingress.description not in descriptions:
                descriptions.append(ingress.description)
    allows = []
    for (protocol, port, kind, _), (_, order, descriptions) in merged.items():
        source = Source(kind, tuple(order))  # type: ignore[arg-type]
        allows.append(NsgRule(_rule_name(protocol, port, source), "Allow", protocol, port,  # type: ignore[arg-type]
                              source, "; ".join(descriptions)))
    deny_plain = NsgRule("deny-docker-plaintext-api", "Deny", "Tcp", NEVER_OPEN, Source("any", ()),
                         "the plaintext Docker API is never reachable", FIRST_PRIORITY)
    deny_rest = NsgRule("deny-all-other-inbound", "Deny", "*", None, Source("any", ()),
                        "everything not allowed above, including the rest of the VNet", LAST_PRIORITY)
    priorities = assign_priorities(len(allows))
    return [deny_plain,
            *(NsgRule(r.name, r.access, r.protocol, r.port, r.source, r.description, p)
              for r, p in zip(allows, priorities, strict=True)),
            deny_rest]


def assign_priorities(count: int, first: int = ALLOW_FROM, last: int = LAST_PRIORITY - 1,
                      step: int = STEP) -> list[int]:
    """`count` unique, increasing priorities from `first` to at most `last`.

    Spaced `step` apart while they fit, closer when they do not; ValueError when
    even consecutive numbers do not fit (Azure allows at most 4096 - 100 + 1 rules).
    """
    if count < 0:
        raise ValueError(f"count must not be negative, got {count}")
    if count == 0:
        return []
    room = last - first
    if count - 1 > room:
        raise ValueError(f"{count} rules do not fit between priorities {first} and {last}")
    gap = step if (count - 1) * step <= room else max(1, room // (count - 1))
    return [first + index * gap for index in range(count)]


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
