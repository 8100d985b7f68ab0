"""Who may reach the nodes: the Docker API, the swarm's own ports, SSH/RDP, and the
load balancer. Rules on AWS security groups / rules and Azure NSGs / load balancers."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    ResourceValidationArgs,
    StackValidationArgs,
)

from ._cluster import summaries
from ._flows import BALANCERS, FIREWALLS, Flow, Source, flows, forwards, port_text
from ._props import UNKNOWN, as_list, dig, is_unknown, need, plain
from ._rules import Report, resource_rule, stack_rule

DOCKER_PLAIN = 2375
DOCKER_TLS = 2376
SWARM_PORTS: tuple[tuple[int | None, tuple[str, ...], str], ...] = (
    (2377, ("tcp",), "swarm management (2377/tcp)"),
    (7946, ("tcp", "udp"), "swarm gossip (7946/tcp+udp)"),
    (4789, ("udp",), "the overlay VXLAN (4789/udp)"),
    (None, ("esp",), "encrypted overlay traffic (ESP)"),
)
ADMIN_PORTS = ((22, "SSH (22/tcp)"), (3389, "RDP (3389/tcp)"))
NODE_SOURCE_TAGS = {"virtualnetwork"}


def _sources(items: tuple[Source, ...] | list[Source]) -> str:
    return ", ".join(str(s) for s in items) or "nowhere"


def _flows(args: ResourceValidationArgs) -> list[Flow]:
    return flows(args.resource_type, plain(args.props))


# --- no-plaintext-docker-api -------------------------------------------------------------


def _no_plaintext_docker_api(args: ResourceValidationArgs, report: Report) -> None:
    for flow in _flows(args):
        if flow.sources and flow.covers(DOCKER_PLAIN, ("tcp",)):
            report(f"{flow.where} allows {port_text(flow)} from {_sources(flow.sources)}, "
                   "which opens the plaintext Docker API (2375/tcp)")
    for fwd in forwards(args.resource_type, plain(args.props)):
        if fwd.covers(DOCKER_PLAIN, ("tcp",)):
            report(f"{fwd.where}: the load balancer forwards {port_text(fwd)}, "
                   "which exposes the plaintext Docker API (2375/tcp)")


no_plaintext_docker_api = resource_rule(
    name="no-plaintext-docker-api",
    resource_types=(*FIREWALLS, *BALANCERS),
    description="Nothing opens 2375/tcp, the unauthenticated plaintext Docker API, from anywhere.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_no_plaintext_docker_api,
    remediation_steps="Remove the rule or listener. The Docker API is served only on 2376 with "
                      "tlsverify (dockerApi.enabled: true), never on 2375.",
)

# --- docker-tls-api-not-public -------------------------------------------------------------


def _docker_tls_api_not_public(args: ResourceValidationArgs, report: Report) -> None:
    for flow in _flows(args):
        world = [s for s in flow.sources if s.is_world]
        if world and flow.covers(DOCKER_TLS, ("tcp",)):
            report(f"{flow.where} allows {port_text(flow)} from {_sources(world)}: the TLS Docker API "
                   "(2376/tcp) must be reachable from the admins' ranges only")


docker_tls_api_not_public = resource_rule(
    name="docker-tls-api-not-public",
    resource_types=FIREWALLS,
    description="The TLS Docker API (2376/tcp) is never open to 0.0.0.0/0, ::/0 or the Internet.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_docker_tls_api_not_public,
    remediation_steps="List your admins' own ranges in access.adminCidrs; a client certificate is "
                      "not a reason to expose the daemon to the whole internet.",
)

# --- ssh-rdp-not-public --------------------------------------------------------------------


def _ssh_rdp_not_public(args: ResourceValidationArgs, report: Report) -> None:
    for flow in _flows(args):
        world = [s for s in flow.sources if s.is_world]
        if not world:
            continue
        for port, what in ADMIN_PORTS:
            if flow.covers(port, ("tcp",)):
                report(f"{flow.where} allows {port_text(flow)} from {_sources(world)}, "
                       f"which opens {what} to the world")


ssh_rdp_not_public = resource_rule(
    name="ssh-rdp-not-public",
    resource_types=FIREWALLS,
    description="SSH (22) and RDP (3389) are never open to 0.0.0.0/0, ::/0 or the Internet.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_ssh_rdp_not_public,
    remediation_steps="Limit SSH to access.adminCidrs, or leave SSH off and use Session Manager "
                      "(AWS) / Run Command (Azure).",
)

# --- no-all-ports-to-world -------------------------------------------------------------------


def _no_all_ports_to_world(args: ResourceValidationArgs, report: Report) -> None:
    for flow in _flows(args):
        world = [s for s in flow.sources if s.is_world]
        if world and flow.all_ports:
            report(f"{flow.where} allows {port_text(flow)} from {_sources(world)}")


no_all_ports_to_world = resource_rule(
    name="no-all-ports-to-world",
    resource_types=FIREWALLS,
    description="No firewall rule allows every port or protocol from the whole internet.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_no_all_ports_to_world,
    remediation_steps="Open only the published ports, on the load balancer's group.",
)

# --- swarm-ports-internal-only ---------------------------------------------------------------


def _bad_swarm_source(source: Source, cloud: str) -> str | None:
    """Why a source may not reach the swarm ports, or None when it may."""
    if source.kind == "unknown":
        return None  # an id or prefix not known until the update; the stack rule checks it then
    if source.is_world:
        return "the internet"
    if source.kind == "group":
        return None
    if source.kind == "tag":
        if source.value.lower() in NODE_SOURCE_TAGS:
            return None
        if source.value.lower() == "azureloadbalancer":
            return "the load balancer"
        return f"service tag {source.value}"
    if source.kind == "cidr" and cloud == "azure" and source.is_private_cidr:
        return None  # checked against the VNet's address space by swarm-ports-from-nodes-only
    if source.kind == "cidr":
        return f"address range {source.value}"
    return f"{source.kind} {source.value}"


def _swarm_ports_internal_only(args: ResourceValidationArgs, report: Report) -> None:
    cloud = "azure" if args.resource_type.startswith("azure-native:") else "aws"
    hint = ("reference the swarm's security groups (referencedSecurityGroupId), not address ranges"
            if cloud == "aws" else "allow only the VirtualNetwork tag or the VNet's own range")
    for flow in _flows(args):
        for port, protocols, what in SWARM_PORTS:
            if not flow.covers(port, protocols):
                continue
            for source in flow.sources:
                why = _bad_swarm_source(source, cloud)
                if why is not None:
                    report(f"{flow.where} allows {port_text(flow)} from {source}, so {why} reaches {what}; {hint}")
    for fwd in forwards(args.resource_type, plain(args.props)):
        for port, protocols, what in SWARM_PORTS:
            if port is not None and fwd.covers(port, protocols):
                report(f"{fwd.where}: the load balancer forwards {port_text(fwd)}, which exposes {what}")


swarm_ports_internal_only = resource_rule(
    name="swarm-ports-internal-only",
    resource_types=(*FIREWALLS, *BALANCERS),
    description="Swarm ports (2377/tcp, 7946/tcp+udp, 4789/udp, ESP) are reachable only from the swarm's "
                "own groups (AWS) or address space (Azure), never from the internet or a load balancer.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_swarm_ports_internal_only,
    remediation_steps="AWS: allow them with referencedSecurityGroupId set to the manager/worker groups. "
                      "Azure: source VirtualNetwork (or the VNet's CIDR). Never publish them on a load "
                      "balancer: 4789 is unauthenticated and 2377 accepts join requests.",
)

# --- default-security-group-closed --------------------------------------------------------------


def _default_security_group_closed(args: ResourceValidationArgs, report: Report) -> None:
    props = plain(args.props)
    for key in ("ingress", "egress"):
        rules = need(props.get(key), key)
        if rules:
            report(f"the VPC's default security group has {len(as_list(rules))} {key} rule(s); "
                   "it should allow nothing, so that nothing lands in it by accident")


default_security_group_closed = resource_rule(
    name="default-security-group-closed",
    resource_types=("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup",),
    description="The VPC's default security group allows no traffic in or out.",
    enforcement_level=EnforcementLevel.ADVISORY,
    validate=_default_security_group_closed,
    remediation_steps="Manage the default group with aws.ec2.DefaultSecurityGroup and empty ingress/egress.",
)

# --- stack: docker-tls-api-only-when-enabled -------------------------------------------------------


def _resources_props(args: StackValidationArgs) -> Iterator[tuple[Any, dict[str, Any]]]:
    for resource in args.resources:
        yield resource, plain(resource.props)


def _docker_tls_api_only_when_enabled(args: StackValidationArgs, report: Report) -> None:
    found = summaries(args.resources)
    if not found:
        args.not_applicable("no swarmstack Cluster summary in the stack")
    if any(s.docker_api for s in found):
        return
    for resource, props in _resources_props(args):
        for flow in flows(resource.resource_type, props):
            if flow.sources and flow.covers(DOCKER_TLS, ("tcp",)):
                report(f"{resource.name}: {flow.where} allows {port_text(flow)} from {_sources(flow.sources)}, "
                       "but the stack has the Docker API off (dockerApi.enabled: false)", resource.urn)
        for fwd in forwards(resource.resource_type, props):
            if fwd.covers(DOCKER_TLS, ("tcp",)):
                report(f"{resource.name}: {fwd.where} forwards {port_text(fwd)}, "
                       "but the stack has the Docker API off (dockerApi.enabled: false)", resource.urn)


docker_tls_api_only_when_enabled = stack_rule(
    name="docker-tls-api-only-when-enabled",
    description="2376/tcp is opened only in stacks that turn the TLS Docker API on (dockerApi.enabled).",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_docker_tls_api_only_when_enabled,
    remediation_steps="Set dockerApi.enabled: true (which sets up tlsverify and the CA), or remove the rule.",
)

# --- stack: swarm-ports-from-nodes-only --------------------------------------------------------------


def _node_and_lb_groups(args: StackValidationArgs) -> tuple[set[str], set[str]]:
    """Ids of the security groups nodes run in, and of the groups load balancers use."""
    nodes: set[str] = set()
    balancers: set[str] = set()
    for resource, props in _resources_props(args):
        if resource.resource_type in ("aws:ec2/launchTemplate:LaunchTemplate", "aws:ec2/instance:Instance"):
            nodes.update(str(g) for g in as_list(props.get("vpcSecurityGroupIds")))
            for nic in as_list(props.get("networkInterfaces")):
                if isinstance(nic, dict):
                    nodes.update(str(g) for g in as_list(nic.get("securityGroups")))
        elif resource.resource_type in ("aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer"):
            balancers.update(str(g) for g in as_list(props.get("securityGroups")))
    return nodes, balancers


def _vnet_ranges(args: StackValidationArgs) -> list[str]:
    ranges = []
    for resource, props in _resources_props(args):
        if resource.resource_type == "azure-native:network:VirtualNetwork":
            for prefix in as_list(dig(props, "addressSpace", "addressPrefixes")):
                try:
                    ranges.append(str(ipaddress.ip_network(str(prefix), strict=False)))
                except ValueError:
                    continue
    return ranges


def _swarm_ports_from_nodes_only(args: StackValidationArgs, report: Report) -> None:
    nodes, balancers = _node_and_lb_groups(args)
    nodes = {g for g in nodes if not is_unknown(g)}
    unknown_balancer = any(is_unknown(g) for g in balancers)
    vnets = [ipaddress.ip_network(r) for r in _vnet_ranges(args)]
    for resource, props in _resources_props(args):
        group = props.get("securityGroupId")
        for flow in flows(resource.resource_type, props):
            for port, protocols, what in SWARM_PORTS:
                if not flow.covers(port, protocols):
                    continue
                for source in flow.sources:
                    if source.kind == "group" and resource.resource_type.startswith("aws:") and (
                            is_unknown(source.value) or (
                            unknown_balancer and source.value not in nodes and source.value != "self")):
                        # which group is not known before the update: the engine says it can't judge
                        need(UNKNOWN, resource.name, flow.where, "source group")
                    if source.kind == "group" and source.value in balancers:
                        report(f"{resource.name}: {flow.where} lets the load balancer's group {source.value} "
                               f"reach {what}", resource.urn)
                    elif (source.kind == "group" and nodes and source.value not in nodes
                          and source.value != "self" and source.value != group):
                        report(f"{resource.name}: {flow.where} lets group {source.value}, which no swarm node "
                               f"runs in, reach {what}", resource.urn)
                    elif source.kind == "cidr" and resource.resource_type.startswith("azure-native:") and vnets:
                        net = ipaddress.ip_network(source.value, strict=False)
                        if not any(net.version == v.version and net.subnet_of(v) for v in vnets):  # type: ignore[arg-type]
                            report(f"{resource.name}: {flow.where} lets {source.value}, outside the VNet "
                                   f"({', '.join(map(str, vnets))}), reach {what}", resource.urn)


swarm_ports_from_nodes_only = stack_rule(
    name="swarm-ports-from-nodes-only",
    description="The groups or ranges allowed to the swarm ports are the swarm's own nodes: not the load "
                "balancer's group, not another group, not a range outside the VNet.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_swarm_ports_from_nodes_only,
    remediation_steps="Reference only the manager and worker security groups (AWS), or the VNet's "
                      "address space (Azure).",
)

# --- stack: esp-between-nodes ----------------------------------------------------------------------


NODE_FIREWALLS = ("aws:ec2/securityGroup:SecurityGroup", "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
                  "aws:ec2/securityGroupRule:SecurityGroupRule", "azure-native:network:NetworkSecurityGroup",
                  "azure-native:network:SecurityRule")


def _esp_between_nodes(args: StackValidationArgs, report: Report) -> None:
    firewalls = [(r, p) for r, p in _resources_props(args) if r.resource_type in NODE_FIREWALLS]
    if not firewalls:
        args.not_applicable("the stack has no node firewall")
    for resource, props in firewalls:
        cloud = "azure" if resource.resource_type.startswith("azure-native:") else "aws"
        for flow in flows(resource.resource_type, props):
            if flow.covers(None, ("esp",)) and any(
                    s.kind != "unknown" and _bad_swarm_source(s, cloud) is None for s in flow.sources):
                return
    report("no rule allows ESP (IP protocol 50) between the swarm's nodes, so encrypted overlay "
           "networks (--opt encrypted) will silently drop traffic")


esp_between_nodes = stack_rule(
    name="esp-between-nodes",
    description="ESP (IP protocol 50) is allowed between nodes, so encrypted overlays work.",
    enforcement_level=EnforcementLevel.ADVISORY,
    validate=_esp_between_nodes,
    remediation_steps="AWS: an ingress rule with ipProtocol \"50\" from each node group. Azure: an NSG "
                      "rule with protocol Esp from VirtualNetwork.",
)

RESOURCE_POLICIES = [no_plaintext_docker_api, docker_tls_api_not_public, swarm_ports_internal_only,
                     ssh_rdp_not_public, no_all_ports_to_world, default_security_group_closed]
STACK_POLICIES = [docker_tls_api_only_when_enabled, swarm_ports_from_nodes_only, esp_between_nodes]
