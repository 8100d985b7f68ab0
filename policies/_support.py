"""What every rule needs: unknown-aware access to properties, and one normalised view
of "who may reach which port" across AWS security groups, Azure NSGs and load balancers.

Pure Python on top of `pulumi_policy`; no cloud SDK is imported, so the pack runs in the
small virtualenv `pulumi preview --policy-pack` makes from `policies/requirements.txt`.
"""

from __future__ import annotations

import base64
import binascii
import functools
import gzip
import ipaddress
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

from pulumi_policy import (
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError, _is_unknown

UNKNOWN = UNKNOWN_STRING_VALUE
"""The sentinel the engine sends for a value not known until the update runs."""

CLUSTER_TYPES = ("swarmstack:aws:Cluster", "swarmstack:azure:Cluster")
SUMMARY_KEYS = ("cloud", "clusterName", "production", "managerCount", "zones", "dockerApi",
                "pruneVolumes", "pruneSchedule", "logKms")
ROLE_TAG = "swarmstack:role"

# --- building rules ----------------------------------------------------------------------


class Report(Protocol):
    """The engine's `report_violation`: a message, and for stack rules the resource's URN."""

    def __call__(self, message: str, urn: str | None = None, /) -> None: ...


def resource_rule(validate: Callable[[ResourceValidationArgs, Report], None],
                  **kwargs: Any) -> ResourceValidationPolicy:
    """A ResourceValidationPolicy whose validate may leave out the URN (the engine's callback defaults it)."""
    return ResourceValidationPolicy(validate=cast(Any, validate), **kwargs)


def stack_rule(validate: Callable[[StackValidationArgs, Report], None], **kwargs: Any) -> StackValidationPolicy:
    return StackValidationPolicy(validate=cast(Any, validate), **kwargs)


# --- unknown-aware access ------------------------------------------------------------


def is_unknown(value: Any) -> bool:
    return _is_unknown(value)


def plain(value: Any) -> Any:
    """The value under pulumi_policy's unknown-checking proxies, as plain dicts and lists
    (unknowns stay as their sentinel strings: test them with `is_unknown`)."""
    if isinstance(value, Mapping):
        target = cast(Any, value)["__target"] if _is_proxy(value) else value
        return {key: plain(item) for key, item in dict(target).items()}
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        if _is_proxy(value):
            value = cast(Any, value)["__target"]
        return [plain(item) for item in value]
    return value


def _is_proxy(value: Any) -> bool:
    return type(value).__name__ in ("_DictProxy", "_ListProxy")


def need(value: Any, *path: str | int) -> Any:
    """Return `value`, or raise the engine's UnknownValueError when the rule cannot
    decide without it (the engine then reports that the policy can't run in preview)."""
    if is_unknown(value):
        raise UnknownValueError(value, [str(p) for p in path])
    return value


def dig(props: Any, *path: str | int, default: Any = None) -> Any:
    """`props[a][b][c]` on plain data, `default` where a step is missing. An unknown
    step yields the unknown sentinel (check it with `is_unknown` or `need`)."""
    current = props
    for step in path:
        if is_unknown(current):
            return current
        if isinstance(step, int):
            if not isinstance(current, list) or step >= len(current):
                return default
        elif not isinstance(current, dict) or step not in current:
            return default
        current = current[step]
    return default if current is None else current


def truthy(value: Any) -> bool:
    """AWS takes some booleans as strings (launch template `encrypted: "true"`)."""
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return value is True


def number(value: Any) -> float | None:
    """Numbers cross the wire as floats (3 arrives as 3.0); strings of digits count too."""
    if isinstance(value, bool) or value is None or is_unknown(value):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value))
    except ValueError:
        return None


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    return [value]


# --- the cluster summary ---------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    """The `swarmstack:<cloud>:Cluster` component's summary props."""

    urn: str
    cloud: str
    production: bool
    manager_count: int | None
    zones: int | None
    docker_api: bool
    prune_volumes: bool
    prune_schedule: str | None
    log_kms: bool

    @staticmethod
    def from_props(urn: str, props: dict[str, Any]) -> Summary:
        count, zones = number(props.get("managerCount")), number(props.get("zones"))
        return Summary(
            urn=urn,
            cloud=str(props.get("cloud", "")),
            production=truthy(props.get("production")),
            manager_count=int(count) if count is not None else None,
            zones=int(zones) if zones is not None else None,
            docker_api=truthy(props.get("dockerApi")),
            prune_volumes=truthy(props.get("pruneVolumes")),
            prune_schedule=props.get("pruneSchedule") if isinstance(props.get("pruneSchedule"), str) else None,
            log_kms=truthy(props.get("logKms")),
        )


def summaries(resources: Sequence[Any]) -> list[Summary]:
    """Every cluster summary a stack policy can see (in the resources' props)."""
    found = []
    for resource in resources:
        if resource.resource_type in CLUSTER_TYPES:
            props = plain(resource.props)
            if all(key in props for key in ("production", "managerCount")):
                found.append(Summary.from_props(resource.urn, props))
    return found


# --- tags and roles ----------------------------------------------------------------------


def tags_of(resource_type: str, props: dict[str, Any]) -> dict[str, str]:
    """Tags as a plain mapping, whatever shape the resource type keeps them in."""
    tags: dict[str, str] = {}
    raw = props.get("tags")
    if isinstance(raw, dict):
        tags.update({k: v for k, v in raw.items() if isinstance(v, str)})
    elif isinstance(raw, list):  # autoscaling group: [{key, value, propagateAtLaunch}]
        for item in raw:
            if isinstance(item, dict) and isinstance(item.get("key"), str) and isinstance(item.get("value"), str):
                tags[item["key"]] = item["value"]
    for spec in as_list(props.get("tagSpecifications")):  # launch template
        if isinstance(spec, dict) and isinstance(spec.get("tags"), dict):
            tags.update({k: v for k, v in spec["tags"].items() if isinstance(v, str)})
    return tags


def role_of(resource_type: str, props: dict[str, Any]) -> str | None:
    return tags_of(resource_type, props).get(ROLE_TAG)


# --- ports and sources -----------------------------------------------------------------

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


# --- user data ---------------------------------------------------------------------------


def decode_user_data(value: Any) -> str | None:
    """User data as text: base64 decoded (and gunzipped) when it is base64, else as is."""
    if not isinstance(value, str) or is_unknown(value):
        return None
    return _decode(value)


@functools.lru_cache(maxsize=64)
def _decode(value: str) -> str:
    compact = re.sub(r"\s+", "", value)
    data: bytes | None = None
    if compact and re.fullmatch(r"[A-Za-z0-9+/]+={0,2}", compact) and len(compact) % 4 == 0:
        try:
            data = base64.b64decode(compact, validate=True)
        except (binascii.Error, ValueError):
            data = None
    if data is None:
        return value
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except OSError:
            return value
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return value


def user_data_fields(resource_type: str, props: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """(property path, raw value) of every user data / custom data property of a node resource."""
    if resource_type == "aws:ec2/launchTemplate:LaunchTemplate":
        yield "userData", props.get("userData")
    elif resource_type == "aws:ec2/instance:Instance":
        yield "userData", props.get("userData")
        yield "userDataBase64", props.get("userDataBase64")
    elif resource_type == "azure-native:compute:VirtualMachineScaleSet":
        profile = props.get("virtualMachineProfile")
        yield "virtualMachineProfile.osProfile.customData", dig(profile, "osProfile", "customData")
        yield "virtualMachineProfile.userData", dig(profile, "userData")
    elif resource_type == "azure-native:compute:VirtualMachine":
        yield "osProfile.customData", dig(props, "osProfile", "customData")
        yield "userData", props.get("userData")


# --- files written by user data ------------------------------------------------------------------


def written_files(text: str) -> tuple[tuple[str, str], ...]:
    """(path, content) of files a node's user data writes: cloud-init `write_files` entries
    (plain, base64 or gzip+base64) and shell heredocs (`cat > PATH <<EOF … EOF`)."""
    return _written_files_cached(text)


@functools.lru_cache(maxsize=64)
def _parse_cloud_config(text: str) -> Any:
    import yaml  # a dependency of pulumi itself, so in the pack's virtualenv too

    try:
        return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError:
        return None


@functools.lru_cache(maxsize=64)
def _written_files_cached(text: str) -> tuple[tuple[str, str], ...]:
    return tuple(_written_files(text))


def _written_files(text: str) -> Iterator[tuple[str, str]]:
    if text.lstrip().startswith("#cloud-config"):
        document = _parse_cloud_config(text)
        entries = document.get("write_files") if isinstance(document, dict) else None
        for entry in entries if isinstance(entries, list) else []:
            if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
                continue
            content = entry.get("content", "")
            encoding = str(entry.get("encoding", "")).lower()
            if isinstance(content, str) and encoding in ("b64", "base64", "gz+b64", "gzip+base64", "gz+base64"):
                content = decode_user_data(content) or content
            if isinstance(content, str):
                yield entry["path"], content
    for match in re.finditer(r"cat\s*>\s*['\"]?(\S+?)['\"]?\s*<<-?\s*['\"]?(\w+)['\"]?\n(.*?)\n\s*\2\b", text, re.S):
        yield match.group(1), match.group(3)
