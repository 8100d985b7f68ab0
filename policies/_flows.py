"""One normalised view of "who may reach which port" across AWS security groups, Azure
NSGs and load balancers."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ._props import as_list, dig, is_unknown, number, truthy

AWS_FIREWALLS = ("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
                 "aws:ec2/securityGroupRule:SecurityGroupRule", "aws:ec2/securityGroup:SecurityGroup",
                 "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")
AZURE_FIREWALLS = ("azure-native:network:NetworkSecurityGroup", "azure-native:network:SecurityRule")
FIREWALLS = (*AWS_FIREWALLS, *AZURE_FIREWALLS)
"""Resource types `flows` reads."""
BALANCERS = ("aws:lb/listener:Listener", "aws:alb/listener:Listener", "aws:lb/targetGroup:TargetGroup",
             "aws:alb/targetGroup:TargetGroup", "azure-native:network:LoadBalancer",
             "azure-native:network:InboundNatRule")
"""Resource types `forwards` reads."""

PRIVATE_BLOCKS = tuple(ipaddress.ip_network(block) for block in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7"))
"""Address space a VNet may use (RFC 1918, shared address space, IPv6 unique local)."""
WORLD_TAGS = {"*", "internet", "any", "0.0.0.0"}
PROTOCOLS = {"-1": "all", "all": "all", "*": "all", "6": "tcp", "tcp": "tcp", "17": "udp", "udp": "udp",
             "50": "esp", "esp": "esp", "1": "icmp", "icmp": "icmp", "58": "icmpv6", "icmpv6": "icmpv6",
             "51": "ah", "ah": "ah"}


@dataclass(frozen=True)
class Source:
    """Where inbound traffic may come from."""

    kind: str
    """`cidr`, `group` (a security group / ASG reference), `prefix-list`, `tag` (an Azure
    service tag such as VirtualNetwork) or `unknown` (not known until the update)."""
    value: str

    @property
    def is_world(self) -> bool:
        if self.kind == "tag":
            return self.value.lower() in WORLD_TAGS
        if self.kind == "cidr":
            try:
                return ipaddress.ip_network(self.value, strict=False).prefixlen == 0
            except ValueError:
                return False
        return False

    @property
    def is_private_cidr(self) -> bool:
        if self.kind != "cidr":
            return False
        try:
            network = ipaddress.ip_network(self.value, strict=False)
        except ValueError:
            return False
        return network.prefixlen > 0 and any(
            network.version == block.version and network.subnet_of(block)  # type: ignore[arg-type]
            for block in PRIVATE_BLOCKS)

    def __str__(self) -> str:
        return self.value if self.kind in ("cidr", "tag") else f"{self.kind} {self.value}"


@dataclass(frozen=True)
class Flow:
    """One allowed inbound flow: protocol, port range (None for all ports), sources."""

    protocol: str
    """tcp, udp, esp, icmp, ..., or `all`."""
    low: int | None
    high: int | None
    sources: tuple[Source, ...]
    where: str
    """How to name the flow in a message: `ingress`, `ingress[2]`, `securityRules[0] (ssh)`."""

    def covers(self, port: int | None, protocols: Sequence[str]) -> bool:
        """Whether this flow lets `port` (None: a port-less protocol such as ESP) in over any of `protocols`."""
        if self.protocol != "all" and self.protocol not in protocols:
            return False
        if port is None or self.protocol == "all" or self.low is None or self.high is None:
            return True
        return self.low <= port <= self.high

    @property
    def all_ports(self) -> bool:
        return self.protocol == "all" or (self.protocol in ("tcp", "udp") and (self.low is None or (
            self.low <= 0 and (self.high or 0) >= 65535)))


def _protocol(value: Any) -> str:
    if is_unknown(value):
        return "all"  # unknown: assume the widest, a rule then says what it can't rule out
    return PROTOCOLS.get(str(value).lower(), str(value).lower())


def _port(value: Any) -> int | None:
    n = number(value)
    return None if n is None else int(n)


def _aws_ports(protocol: str, low: Any, high: Any) -> tuple[int | None, int | None]:
    if protocol not in ("tcp", "udp"):
        return None, None
    lo, hi = _port(low), _port(high)
    if lo is None or hi is None or lo < 0:
        return None, None
    return lo, hi


def _cidr_sources(values: Any) -> list[Source]:
    out = []
    for value in as_list(values):
        out.append(Source("unknown", "(unknown)") if is_unknown(value) else Source("cidr", str(value)))
    return out


def aws_flows(resource_type: str, props: dict[str, Any]) -> list[Flow]:
    """Inbound flows of an AWS security group, group rule or ingress rule resource."""
    if resource_type == "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule":
        protocol = _protocol(props.get("ipProtocol"))
        low, high = _aws_ports(protocol, props.get("fromPort"), props.get("toPort"))
        sources: list[Source] = []
        sources += _cidr_sources(props.get("cidrIpv4"))
        sources += _cidr_sources(props.get("cidrIpv6"))
        if props.get("prefixListId") is not None:
            sources.append(Source("prefix-list", "(unknown)" if is_unknown(props["prefixListId"])
                                  else str(props["prefixListId"])))
        if props.get("referencedSecurityGroupId") is not None:
            sources.append(Source("group", str(props["referencedSecurityGroupId"])))
        return [Flow(protocol, low, high, tuple(sources), "ingress")]
    if resource_type == "aws:ec2/securityGroupRule:SecurityGroupRule":
        if props.get("type") != "ingress":
            return []
        return [_aws_block(props, "ingress", props.get("sourceSecurityGroupId"))]
    if resource_type in ("aws:ec2/securityGroup:SecurityGroup", "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"):
        blocks = props.get("ingress")
        if is_unknown(blocks):
            return []  # computed (preview of a group whose rules are separate resources): judged at update
        return [_aws_block(block, f"ingress[{i}]", None) for i, block in enumerate(as_list(blocks))
                if isinstance(block, dict)]
    return []


def _aws_block(block: dict[str, Any], where: str, source_group: Any) -> Flow:
    protocol = _protocol(block.get("protocol"))
    low, high = _aws_ports(protocol, block.get("fromPort"), block.get("toPort"))
    sources = _cidr_sources(block.get("cidrBlocks")) + _cidr_sources(block.get("ipv6CidrBlocks"))
    sources += [Source("prefix-list", str(p)) for p in as_list(block.get("prefixListIds"))]
    groups = as_list(block.get("securityGroups"))
    if source_group is not None:
        groups.append(source_group)
    sources += [Source("group", str(g)) for g in groups]
    if truthy(block.get("self")):
        sources.append(Source("group", "self"))
    return Flow(protocol, low, high, tuple(sources), where)


def _azure_ports(rule: dict[str, Any]) -> list[tuple[int | None, int | None]]:
    ranges = as_list(rule.get("destinationPortRanges")) + as_list(rule.get("destinationPortRange"))
    out: list[tuple[int | None, int | None]] = []
    for text in ranges:
        if is_unknown(text) or str(text).strip() == "*":
            out.append((None, None))
            continue
        first, _, last = str(text).partition("-")
        try:
            out.append((int(first), int(last or first)))
        except ValueError:
            out.append((None, None))
    return out or [(None, None)]


def azure_rule_flows(rule: dict[str, Any], where: str) -> list[Flow]:
    """Inbound Allow flows of one Azure security rule (inline or standalone)."""
    if str(rule.get("access", "")).lower() != "allow" or str(rule.get("direction", "")).lower() != "inbound":
        return []
    protocol = _protocol(rule.get("protocol"))
    sources: list[Source] = []
    for prefix in as_list(rule.get("sourceAddressPrefixes")) + as_list(rule.get("sourceAddressPrefix")):
        if is_unknown(prefix):
            sources.append(Source("unknown", "(unknown)"))
            continue
        text = str(prefix)
        try:
            ipaddress.ip_network(text, strict=False)
            sources.append(Source("cidr", text))
        except ValueError:
            sources.append(Source("tag", text))
    for group in as_list(rule.get("sourceApplicationSecurityGroups")):
        sources.append(Source("group", str(dig(group, "id", default="(application security group)"))))
    if not sources:
        sources.append(Source("tag", "*"))
    name = rule.get("name")
    label = f"{where} ({name})" if isinstance(name, str) and name and where != name else where
    return [Flow(protocol, low, high, tuple(sources), label) for low, high in _azure_ports(rule)]


def azure_flows(resource_type: str, props: dict[str, Any]) -> list[Flow]:
    if resource_type == "azure-native:network:NetworkSecurityGroup":
        rules = props.get("securityRules")
        if is_unknown(rules):
            return []
        return [flow for i, rule in enumerate(as_list(rules)) if isinstance(rule, dict)
                for flow in azure_rule_flows(rule, f"securityRules[{i}]")]
    if resource_type == "azure-native:network:SecurityRule":
        return azure_rule_flows(props, "rule")
    return []


def flows(resource_type: str, props: dict[str, Any]) -> list[Flow]:
    """Every inbound flow a firewall resource allows (empty for other types)."""
    return aws_flows(resource_type, props) + azure_flows(resource_type, props)


@dataclass(frozen=True)
class Forward:
    """A port a load balancer accepts and forwards to the nodes."""

    protocol: str
    low: int | None
    high: int | None
    where: str

    def covers(self, port: int, protocols: Sequence[str]) -> bool:
        if self.protocol != "all" and self.protocol not in protocols:
            return False
        return self.low is None or self.high is None or self.low <= port <= self.high


def forwards(resource_type: str, props: dict[str, Any]) -> list[Forward]:
    """Ports load balancer resources listen on or forward (AWS listeners and target
    groups, Azure load balancing and NAT rules)."""
    out: list[Forward] = []
    if resource_type in ("aws:lb/listener:Listener", "aws:alb/listener:Listener"):
        port = _port(props.get("port"))
        protocol = _lb_protocol(props.get("protocol"))
        out.append(Forward(protocol, port, port, "port"))
    elif resource_type in ("aws:lb/targetGroup:TargetGroup", "aws:alb/targetGroup:TargetGroup"):
        port = _port(props.get("port"))
        if port is not None:
            out.append(Forward(_lb_protocol(props.get("protocol")), port, port, "port"))
    elif resource_type == "azure-native:network:LoadBalancer":
        for i, rule in enumerate(as_list(props.get("loadBalancingRules"))):
            if isinstance(rule, dict):
                out += _azure_forward(rule, f"loadBalancingRules[{i}]")
        for i, rule in enumerate(as_list(props.get("inboundNatRules"))):
            if isinstance(rule, dict):
                out += _azure_forward(rule, f"inboundNatRules[{i}]")
        for i, pool in enumerate(as_list(props.get("inboundNatPools"))):
            if isinstance(pool, dict):
                out += _azure_forward(pool, f"inboundNatPools[{i}]")
    elif resource_type == "azure-native:network:InboundNatRule":
        out += _azure_forward(props, "rule")
    return out


def _lb_protocol(value: Any) -> str:
    text = "tcp" if value is None or is_unknown(value) else str(value).lower()
    if text in ("tcp", "tls", "http", "https"):
        return "tcp"
    if text == "udp":
        return "udp"
    return "all"  # TCP_UDP, GENEVE, All


def _azure_forward(rule: dict[str, Any], where: str) -> list[Forward]:
    protocol = _lb_protocol(rule.get("protocol"))
    out = []
    for key in ("frontendPort", "backendPort"):
        port = _port(rule.get(key))
        if port is not None and port != 0:
            out.append(Forward(protocol, port, port, f"{where}.{key}"))
        elif port == 0 and str(rule.get("protocol", "")).lower() == "all":
            out.append(Forward("all", None, None, f"{where}.{key}"))  # HA ports: everything
    low, high = _port(rule.get("frontendPortRangeStart")), _port(rule.get("frontendPortRangeEnd"))
    if low is not None and high is not None:
        out.append(Forward(protocol, low, high, f"{where}.frontendPortRange"))
    return out


def port_text(flow: Flow | Forward) -> str:
    if flow.protocol == "all":
        return "all traffic"
    if flow.low is None:
        return f"all {flow.protocol} ports" if flow.protocol in ("tcp", "udp") else flow.protocol
    if flow.low == flow.high:
        return f"{flow.low}/{flow.protocol}"
    return f"{flow.low}-{flow.high}/{flow.protocol}"
