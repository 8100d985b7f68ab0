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
    "aws:cloudwatch/logMetricFilter:LogMetricFilter": ("logGroupName",),
    "aws:cloudwatch/metricAlarm:MetricAlarm": ("metricName", "comparisonOperator", "threshold"),
    "aws:ssm/parameter:Parameter": ("name", "type"),
    "aws:ssm/association:Association": ("scheduleExpression",),
    "aws:ecr/repository:Repository": ("name", "imageTagMutability", "imageScanningConfiguration"),
    "azure-native:containerregistry:Registry": ("sku", "adminUserEnabled", "anonymousPullEnabled"),
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


def _name_like(key: str) -> bool:
    """`name`, `bucket`, `dashboardName`, ...: a property holding a resource's real name."""
    return key in ("name", "bucket") or key.endswith("Name")


def id_names(graph: Graph) -> dict[str, str]:
    """The opaque ids, each mapped to the name of the one resource it identifies, so that
    references read as names (`subnetId=dev-public-a`, not `subnet-48a9...`).

    An id is opaque unless the resource it identifies holds the same string in a name-like
    property (`_name_like`, among its inputs or outputs). AWS makes up `vpc-...`, `sg-...`
    and ARNs, Azure its ARM paths: those are replaced. But a log group's, an SSM
    parameter's, an alarm's, an Auto Scaling group's or a bucket's id is its real name
    (an IAM role's the name the provider generated): the name a reader looks up in the
    console, so it is printed as it is, wherever it appears. An id that identifies more
    than one resource (a bucket and its policy, versioning, ... all have the bucket's name)
    is not replaced either: no one name would be right."""
    owners: dict[str, list[Resource]] = {}
    for r in graph.resources:
        if r.custom and r.id:
            owners.setdefault(r.id, []).append(r)
    return {
        id_: found[0].name for id_, found in owners.items()
        if len(found) == 1 and not any(
            _name_like(key) and value == id_
            for props in (found[0].inputs, found[0].outputs) for key, value in props.items())
    }


def properties(resource: Resource, names: dict[str, str]) -> str:
    """The resource's key properties, `key=value` each; ids in them (`names`) read as the
    names of the resources they identify, but the resource's own id is never replaced."""
    keys = KEY_PROPERTIES.get(resource.type, ())
    others = {k: v for k, v in names.items() if k != resource.id} if resource.id in names else names
    shown = []
    for key in keys:
        value = "[secret]" if key in resource.secret_inputs else resource.inputs.get(key)
        if value in (None, "", [], {}):
            continue
        shown.append(f"{key}={_compact(value, others)}")
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
