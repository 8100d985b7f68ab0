"""Turning a graph into what `swarmstack plan` shows: a tree by component, the key
properties of each resource, the stack outputs and a summary. Pure."""

from __future__ import annotations

from collections import Counter
from typing import Any

from swarmstack.engine.graph import Graph, Resource

# The properties a reader checks first, by resource type; everything else is in --json.
KEY_PROPERTIES: dict[str, tuple[str, ...]] = {
    "aws:ec2/vpc:Vpc": ("cidrBlock",),
    "aws:ec2/subnet:Subnet": ("cidrBlock", "availabilityZone", "mapPublicIpOnLaunch"),
    "aws:ec2/route:Route": ("routeTableId", "destinationCidrBlock", "gatewayId", "natGatewayId"),
    "aws:ec2/routeTableAssociation:RouteTableAssociation": ("subnetId", "routeTableId"),
    "aws:ec2/natGateway:NatGateway": ("subnetId",),
    "aws:ec2/securityGroup:SecurityGroup": ("description",),
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": (
        "securityGroupId", "ipProtocol", "fromPort", "toPort", "cidrIpv4", "cidrIpv6", "referencedSecurityGroupId"),
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": (
        "securityGroupId", "ipProtocol", "fromPort", "toPort", "cidrIpv4", "referencedSecurityGroupId"),
    "aws:ec2/launchTemplate:LaunchTemplate": ("instanceType", "imageId"),
    "aws:autoscaling/group:Group": ("minSize", "maxSize", "desiredCapacity", "vpcZoneIdentifiers"),
    "aws:autoscaling/lifecycleHook:LifecycleHook": ("lifecycleTransition", "heartbeatTimeout"),
    "aws:lb/loadBalancer:LoadBalancer": ("loadBalancerType", "internal"),
    "aws:lb/listener:Listener": ("port", "protocol"),
    "aws:lb/targetGroup:TargetGroup": ("port", "protocol"),
    "aws:cloudwatch/logGroup:LogGroup": ("name", "retentionInDays"),
    "aws:cloudwatch/metricAlarm:MetricAlarm": ("metricName", "comparisonOperator", "threshold"),
    "aws:ssm/parameter:Parameter": ("name", "type"),
    "aws:ssm/association:Association": ("scheduleExpression",),
    "aws:efs/fileSystem:FileSystem": ("encrypted", "kmsKeyId", "throughputMode"),
    "aws:efs/backupPolicy:BackupPolicy": ("backupPolicy",),
    "aws:efs/mountTarget:MountTarget": ("subnetId", "securityGroups"),
    "azure-native:network:VirtualNetwork": ("addressSpace",),
    "azure-native:network:Subnet": ("addressPrefix",),
    "azure-native:network:SecurityRule": ("priority", "direction", "access", "protocol",
                                          "destinationPortRange", "sourceAddressPrefix"),
    "azure-native:compute:VirtualMachineScaleSet": ("sku", "zones"),
    "azure-native:network:LoadBalancer": ("sku",),
    "azure-native:operationalinsights:Workspace": ("retentionInDays",),
    "azure-native:storage:FileShare": ("enabledProtocols", "shareQuota", "rootSquash"),
}


def _compact(value: Any, names: dict[str, str]) -> str:
    if isinstance(value, str):
        return names.get(value, value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_compact(v, names) for v in value) + "]"
    if isinstance(value, dict):
        inner = ", ".join(f"{k}={_compact(v, names)}" for k, v in value.items() if v not in (None, "", [], {}))
        return "{" + inner + "}"
    return str(value)


def id_names(graph: Graph) -> dict[str, str]:
    """Map every resource id to its name, so references read as names."""
    return {r.id: r.name for r in graph.resources if r.custom and r.id}


def properties(resource: Resource, names: dict[str, str]) -> str:
    keys = KEY_PROPERTIES.get(resource.type, ())
    shown = []
    for key in keys:
        value = "[secret]" if key in resource.secret_inputs else resource.inputs.get(key)
        if value in (None, "", [], {}):
            continue
        shown.append(f"{key}={_compact(value, names)}")
    return "  ".join(shown)


def render_tree(graph: Graph) -> list[str]:
    names = id_names(graph)
    by_parent: dict[str, list[Resource]] = {}
    known = {r.urn for r in graph.resources}
    for r in graph.resources:
        parent = r.parent if r.parent in known else ""
        by_parent.setdefault(parent, []).append(r)
    lines: list[str] = []

    def walk(urn: str, prefix: str) -> None:
        children = sorted(by_parent.get(urn, []), key=lambda r: (r.custom, r.type, r.name))
        for index, child in enumerate(children):
            last = index == len(children) - 1
            branch = "└─ " if last else "├─ "
            label = f"{child.short_type} {child.name}"
            props = properties(child, names) if child.custom else ""
            lines.append(f"{prefix}{branch}{label}" + (f"  {props}" if props else ""))
            walk(child.urn, prefix + ("   " if last else "│  "))

    walk("", "")
    return lines


def summary(graph: Graph) -> dict[str, Any]:
    custom = graph.custom
    return {
        "resources": len(custom),
        "components": len(graph.resources) - len(custom),
        "byType": dict(sorted(Counter(r.type for r in custom).items())),
    }


def shown_outputs(graph: Graph) -> dict[str, Any]:
    return {k: ("[secret]" if k in graph.secret_outputs else v) for k, v in graph.outputs.items()}


def render_text(graph: Graph, region: str) -> str:
    lines = [f"Plan for stack {graph.stack} ({graph.cloud}, {region}): offline, through the engine", ""]
    lines += render_tree(graph)
    lines += ["", "Outputs:"]
    for key, value in shown_outputs(graph).items():
        lines.append(f"  {key}: {_compact(value, {})}")
    s = summary(graph)
    lines += ["", f"Summary: {s['resources']} resources to create in {s['components']} components"]
    for type_, count in s["byType"].items():
        lines.append(f"  {count:4d}  {type_}")
    return "\n".join(lines)


def render_json(graph: Graph, region: str) -> dict[str, Any]:
    return {
        "stack": graph.stack,
        "cloud": graph.cloud,
        "region": region,
        "resources": [
            {"urn": r.urn, "type": r.type, "name": r.name, "parent": r.parent, "custom": r.custom,
             "id": r.id, "inputs": {k: "[secret]" if k in r.secret_inputs else v for k, v in r.inputs.items()},
             "dependencies": list(r.dependencies), "propertyDependencies": dict(r.property_dependencies),
             "customTimeouts": dict(r.custom_timeouts)}
            for r in graph.resources
        ],
        "outputs": shown_outputs(graph),
        "summary": summary(graph),
    }
