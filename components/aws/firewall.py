"""The swarm's firewalls on AWS: the cluster's three security groups (managers,
workers, load balancer) and their rules, one `SecurityGroupIngressRule`/`EgressRule` a
flow, built from the port matrix (the pure `aws_rules` first, then the component)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import pulumi
import pulumi_aws as aws

from components.common.names import LIMITS, fit
from components.common.ports import NEVER_OPEN, Exposure, Ingress, Role, ingress_matrix

GROUPS: tuple[Role, ...] = ("managers", "workers", "lb")
ANYWHERE = "0.0.0.0/0"


@dataclass(frozen=True)
class AwsRule:
    """One security group rule as AWS takes it."""

    key: str
    """Stable identity of the rule inside the cluster (part of the child's name)."""
    group: Role
    """The group the rule belongs to."""
    direction: Literal["ingress", "egress"]
    """Inbound to the group, or outbound from it."""
    protocol: str
    """`tcp`, `udp`, `50` (ESP) or `-1` (all)."""
    port: int | None
    """None for ESP and all-protocol rules."""
    peer_group: Role | None
    """The other end when it is one of the cluster's groups."""
    cidr: str | None
    """The other end when it is an address range."""
    description: str
    """Why the rule exists, as AWS shows it."""


def aws_rules(exposure: Exposure, admin_cidrs: list[str], client_cidr: str) -> list[AwsRule]:
    """Every rule of the cluster's groups, from the port matrix. Pure.

    Admin flows become one rule per admin range; client flows (published ports on the
    load balancer) come from `client_cidr` (anywhere for a public load balancer, the
    VPC for an internal one). Without worker pools nothing flows to or from the
    workers' group. Nodes may send anywhere (they pull images and reach AWS
    APIs); the load balancer may send only to the nodes on the ports it forwards.
    """
    rules: list[AwsRule] = []
    for flow in ingress_matrix(exposure):
        if not exposure.has_workers and "workers" in (flow.source, flow.target):
            continue  # the workers' group stays empty until a pool exists: no flows to or from it
        if flow.port == NEVER_OPEN:
            raise ValueError(f"the port matrix opens {NEVER_OPEN}, the plaintext Docker API")
        protocol = "50" if flow.protocol == "esp" else flow.protocol
        base = f"{flow.target}-in-{flow.source}-{flow.protocol}" + (f"-{flow.port}" if flow.port else "")
        if flow.source in ("managers", "workers", "lb"):
            rules.append(AwsRule(base, flow.target, "ingress", protocol, flow.port, flow.source, None,
                                 flow.description))
        elif flow.source == "admins":
            for index, cidr in enumerate(admin_cidrs):
                rules.append(AwsRule(f"{base}-{index}", flow.target, "ingress", protocol, flow.port, None, cidr,
                                     flow.description))
        else:
            rules.append(AwsRule(base, flow.target, "ingress", protocol, flow.port, None, client_cidr,
                                 flow.description))
        if flow.source == "lb":
            rules.append(_lb_egress(flow))
    for group in ("managers", "workers"):
        rules.append(AwsRule(f"{group}-out-all", group, "egress", "-1", None, None, ANYWHERE,
                             "nodes reach image registries, AWS APIs and whatever containers call"))
    return rules


def _lb_egress(flow: Ingress) -> AwsRule:
    return AwsRule(f"lb-out-{flow.target}-{flow.protocol}-{flow.port}", "lb", "egress", flow.protocol, flow.port,
                   flow.target, None, f"forward {flow.port}/{flow.protocol} and health checks to {flow.target}")


@dataclass(frozen=True)
class SecurityGroupsArgs:
    """What the cluster's firewalls need."""

    vpc_id: pulumi.Input[str]
    """The VPC the groups live in."""
    vpc_cidr: pulumi.Input[str]
    """The VPC's range: clients of an internal load balancer come from here."""
    exposure: Exposure
    """What the cluster exposes (API, SSH, published ports, workers, load balancer)."""
    admin_cidrs: list[str]
    """Address ranges of the admins (TLS Docker API, SSH)."""
    public_lb: bool
    """Whether the load balancer faces the internet (clients from anywhere)."""
    tags: dict[str, str]
    """Tags for every group."""


class SecurityGroups(pulumi.ComponentResource):
    """Managers, workers and load balancer groups; nothing open that the matrix does not open."""

    managers_id: pulumi.Output[str]
    workers_id: pulumi.Output[str]
    lb_id: pulumi.Output[str] | None
    """None when the cluster has no load balancer."""

    def __init__(self, name: str, args: SecurityGroupsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("swarmstack:aws:SecurityGroups", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        roles = [g for g in GROUPS if g != "lb" or args.exposure.load_balancer]
        groups = {
            role: aws.ec2.SecurityGroup(
                # "swarmstack-" first: EC2 refuses group names that start with "sg-" (a cluster named sg)
                f"{name}-{role}", name=fit(f"swarmstack-{name}-{role}", LIMITS["security-group"]), vpc_id=args.vpc_id,
                description=f"swarmstack {name} {role}",
                tags={**args.tags, "Name": f"{name}-{role}"}, opts=child)
            for role in roles
        }
        client_cidr = pulumi.Output.from_input(args.vpc_cidr) if not args.public_lb else ANYWHERE
        for rule in aws_rules(args.exposure, args.admin_cidrs, "__clients__"):
            cidr = client_cidr if rule.cidr == "__clients__" else rule.cidr
            common: dict[str, Any] = {
                "security_group_id": groups[rule.group].id,
                "ip_protocol": rule.protocol,
                "from_port": rule.port,
                "to_port": rule.port,
                "description": rule.description,
                "referenced_security_group_id": groups[rule.peer_group].id if rule.peer_group else None,
                "cidr_ipv4": cidr,
                "tags": {**args.tags, "Name": f"{name}-{rule.key}"},
            }
            if rule.direction == "ingress":
                aws.vpc.SecurityGroupIngressRule(f"{name}-{rule.key}", **common, opts=child)
            else:
                aws.vpc.SecurityGroupEgressRule(f"{name}-{rule.key}", **common, opts=child)
        self.managers_id = groups["managers"].id
        self.workers_id = groups["workers"].id
        self.lb_id = groups["lb"].id if "lb" in groups else None
        self.register_outputs({"managers": self.managers_id, "workers": self.workers_id, "lb": self.lb_id})
