"""What a stack costs a month: the plan's resources priced from a snapshot. Pure.

The estimate reads the graph the engine recorded (what the program really creates:
groups and their launch templates, scale sets, NAT gateways, addresses, balancers,
keys, log groups, alarms, stores), not the config, so it cannot drift from the
program. Prices come from `swarmstack.prices` as `Decimal`s; each item is rounded to
the cent and the total is the sum of the items.

What the estimate assumes (per node and month: log GB, NAT GB, store requests; per
balancer: LCUs or GB) is in the snapshot's `usage` and said in each item's text.
Data transfer out of the cloud, support plans, taxes and free tiers are not counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from swarmstack.engine.graph import Graph, Resource
from swarmstack.prices import PriceError

CENT = Decimal("0.01")
DAYS_PER_MONTH = Decimal(30)
"""Log retention is counted in 30-day months: 90 days keeps three months of logs."""


@dataclass(frozen=True)
class Item:
    """One line of the estimate: a quantity of one priced unit."""

    resource: str
    """The resource (or group of resources) the cost belongs to, by its name in the plan."""
    kind: str
    """instances, spot instances, disks, nat, public ip, load balancer, kms, key vault, logs, alarms, storage,
    registry."""
    description: str
    quantity: Decimal
    unit: str
    unit_price: Decimal

    @property
    def monthly(self) -> Decimal:
        return (self.quantity * self.unit_price).quantize(CENT, rounding=ROUND_HALF_UP)

    def as_dict(self) -> dict[str, Any]:
        return {"resource": self.resource, "kind": self.kind, "description": self.description,
                "quantity": float(self.quantity), "unit": self.unit, "unitPrice": float(self.unit_price),
                "monthly": float(self.monthly)}


@dataclass(frozen=True)
class Estimate:
    """Every item of a stack's month, and where the prices come from."""

    stack: str
    cloud: str
    region: str
    currency: str
    source: str
    date: str
    items: list[Item] = field(default_factory=list)
    nodes: int = 0

    @property
    def total(self) -> Decimal:
        return sum((item.monthly for item in self.items), Decimal(0))

    def as_json(self) -> dict[str, Any]:
        """Exactly `{"currency", "total", "items", "prices": {"source", "date"}}`."""
        return {"currency": self.currency, "total": float(self.total),
                "items": [item.as_dict() for item in self.items],
                "prices": {"source": self.source, "date": self.date}}


def estimate(graph: Graph, region: str, prices: dict[str, Any]) -> Estimate:
    """Price every resource of `graph` (a stack in `region`) from `prices`."""
    table = _Table(prices, graph.cloud, region)
    items, nodes = (_aws if graph.cloud == "aws" else _azure)(graph, table)
    return Estimate(stack=graph.stack, cloud=graph.cloud, region=region, currency=str(prices.get("currency", "USD")),
                    source=str(prices["source"]), date=str(prices["date"]), items=items, nodes=nodes)


class _Table:
    """The prices of one region, with errors that say which key is missing and where to add it."""

    def __init__(self, prices: dict[str, Any], cloud: str, region: str) -> None:
        self.file = str(prices.get("_override") or prices.get("_file") or f"swarmstack/prices/{cloud}.json")
        self.snapshot = str(prices.get("_file", f"swarmstack/prices/{cloud}.json"))
        self.region = region
        self.hours = Decimal(prices["hoursPerMonth"])
        self.usage: dict[str, Decimal] = prices["usage"]
        regions: dict[str, Any] = prices["regions"]
        if region not in regions:
            raise PriceError(f"{self.snapshot}: no prices for region {region}; the snapshot has "
                             f"{', '.join(sorted(regions))}: add regions.{region} (shaped like "
                             f"regions.{next(iter(regions))}) in a --prices FILE")
        self.prices: dict[str, Any] = regions[region]

    def get(self, *path: str) -> Decimal:
        value: Any = self.prices
        for part in path:
            if not isinstance(value, dict) or part not in value:
                where = ".".join(("regions", self.region, *path))
                what = f"{path[-1]} ({path[0]})" if len(path) > 1 else path[0]
                raise PriceError(f"{self.snapshot}: no price for {what} in {self.region} (key {where}); "
                                 f"add it in a --prices FILE")
            value = value[part]
        return Decimal(value)

    def mapping(self, key: str) -> dict[str, Any]:
        value = self.prices.get(key)
        return value if isinstance(value, dict) else {}


def _item(resource: Resource | str, kind: str, description: str, quantity: Decimal | int, unit: str,
          unit_price: Decimal) -> Item:
    name = resource if isinstance(resource, str) else resource.name
    return Item(name, kind, description, Decimal(quantity), unit, unit_price)


def _number(value: Any, default: int = 0) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else default


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _of(graph: Graph, type_: str) -> list[Resource]:
    """The resources of one type by name: the same order whatever order the program registered them in."""
    return sorted(graph.of_type(type_), key=lambda r: r.name)


def _urn_name(urn: str) -> str:
    """The name at the end of a URN (a parent component's name)."""
    return urn.rsplit("::", 1)[-1] if urn else ""


def _gb(value: Decimal) -> str:
    return f"{value.normalize():f}"


# --- AWS ----------------------------------------------------------------------


def _aws(graph: Graph, t: _Table) -> tuple[list[Item], int]:
    items: list[Item] = []
    templates = {r.id: r for r in _of(graph, "aws:ec2/launchTemplate:LaunchTemplate")}
    nodes = 0
    for group in _of(graph, "aws:autoscaling/group:Group"):
        count = _number(group.inputs.get("desiredCapacity"), _number(group.inputs.get("minSize")))
        nodes += count
        items += _aws_group(group, count, templates, t)
    nats = _of(graph, "aws:ec2/natGateway:NatGateway")
    for nat in nats:
        items.append(_item(nat, "nat", f"NAT gateway × {t.hours} h", t.hours, "gateway-hour",
                           t.get("natGatewayHour")))
    if nats and nodes:
        per_node = t.usage["natGBPerNodeMonth"]
        items.append(_item(nats[0].name.rsplit("-", 1)[0] if len(nats) > 1 else nats[0].name, "nat",
                           f"NAT data processing: {nodes} nodes × {_gb(per_node)} GB/month (assumed)",
                           nodes * per_node, "GB", t.get("natGatewayGB")))
    for eip in _of(graph, "aws:ec2/eip:Eip"):
        items.append(_item(eip, "public ip", f"public IPv4 address (Elastic IP) × {t.hours} h", t.hours,
                           "address-hour", t.get("publicIpv4Hour")))
    for balancer in _of(graph, "aws:lb/loadBalancer:LoadBalancer"):
        items += _aws_balancer(balancer, t)
    keys = _of(graph, "aws:kms/key:Key")
    for key in keys:
        items.append(_item(key, "kms", "KMS customer-managed key", 1, "key-month", t.get("kmsKeyMonth")))
    if keys and nodes:
        requests = t.usage["storeRequestsPerNodeMonth"]
        items.append(_item(keys[0], "kms", f"KMS requests: {nodes} nodes × {_gb(requests)} requests/month "
                           "(assumed: SecureString reads)", nodes * requests / 10000, "10k requests",
                           t.get("kmsPer10kRequests")))
    items += _aws_logs(graph, nodes, t)
    alarms = _of(graph, "aws:cloudwatch/metricAlarm:MetricAlarm")
    if alarms:
        items.append(_item(_urn_name(alarms[0].parent) or alarms[0].name, "alarms",
                           f"{len(alarms)} CloudWatch alarms (standard resolution)", len(alarms),
                           "alarm-month", t.get("alarmMonth")))
    agents = [a for a in _of(graph, "aws:ssm/association:Association")
              if str(a.inputs.get("associationName", "")).endswith("-metrics-agent")]
    if agents:
        groups = len(_of(graph, "aws:autoscaling/group:Group"))
        # components/aws/metrics.py: per node memory, swap, root disk; per group those three
        # aggregated and the disk per mount point.
        count = 3 * nodes + 4 * groups
        items.append(_item(agents[0], "alarms", f"{count} CloudWatch custom metrics (node metrics: 3 per node, "
                           "4 per group)", count, "metric-month", t.get("customMetricMonth")))
    for board in _of(graph, "aws:cloudwatch/dashboard:Dashboard"):
        items.append(_item(board, "alarms", "CloudWatch dashboard", 1, "dashboard-month", t.get("dashboardMonth")))
    for fs in _of(graph, "aws:efs/fileSystem:FileSystem"):
        items += _aws_file_system(fs, t)
    for bucket in _of(graph, "aws:s3/bucket:Bucket"):
        stored = t.usage["bucketGB"]
        what = "raft backups" if (bucket.inputs.get("tags") or {}).get("swarmstack:purpose") == "raft-backups" \
            else "access logs"
        items.append(_item(bucket, "storage", f"S3 Standard: {_gb(stored)} GB stored (assumed: {what})",
                           stored, "GB-month", t.get("s3GBMonth")))
    repositories = _of(graph, "aws:ecr/repository:Repository")
    if repositories:
        stored = t.usage["registryGB"]
        items.append(_item(_urn_name(repositories[0].parent) or repositories[0].name, "registry",
                           f"ECR storage: {len(repositories)} repositories, {_gb(stored)} GB of images in all "
                           "(assumed; pulls in the region and basic scanning are free)", stored, "GB-month",
                           t.get("ecrGBMonth")))
    return items, nodes


def _aws_file_system(fs: Resource, t: _Table) -> list[Item]:
    """Shared volumes: EFS Standard storage and its AWS Backup copy for the assumed GB stored;
    with elastic throughput, the assumed GB read and written (bursting has no transfer charge)."""
    stored = t.usage["efsGB"]
    items = [_item(fs, "storage", f"EFS Standard: {_gb(stored)} GB stored (assumed: shared volumes)", stored,
                   "GB-month", t.get("efsStandardGBMonth")),
             _item(fs, "storage", f"EFS backups (AWS Backup, warm): {_gb(stored)} GB (assumed: one full copy)",
                   stored, "GB-month", t.get("efsBackupGBMonth"))]
    if str(fs.inputs.get("throughputMode") or "bursting") == "elastic":
        read, written = t.usage["efsReadGBMonth"], t.usage["efsWriteGBMonth"]
        items.append(_item(fs, "storage", f"EFS elastic throughput: {_gb(read)} GB read/month (assumed)", read,
                           "GB", t.get("efsElasticReadGB")))
        items.append(_item(fs, "storage", f"EFS elastic throughput: {_gb(written)} GB written/month (assumed)",
                           written, "GB", t.get("efsElasticWriteGB")))
    return items


def _aws_group(group: Resource, count: int, templates: dict[str, Resource], t: _Table) -> list[Item]:
    mixed = group.inputs.get("mixedInstancesPolicy") or {}
    spec = (mixed.get("launchTemplate") or {}).get("launchTemplateSpecification") or {}
    template_id = spec.get("launchTemplateId") or (group.inputs.get("launchTemplate") or {}).get("id")
    template = templates.get(str(template_id))
    if template is None:
        raise PriceError(f"{group.name}: its launch template {template_id!r} is not in the plan")
    overrides = [o.get("instanceType") for o in (mixed.get("launchTemplate") or {}).get("overrides") or []]
    types = [str(x) for x in overrides if x] or [str(template.inputs.get("instanceType"))]
    distribution = mixed.get("instancesDistribution") or {}
    base = min(count, _number(distribution.get("onDemandBaseCapacity")))
    percent = _number(distribution.get("onDemandPercentageAboveBaseCapacity"), 100) if mixed else 100
    on_demand = base + (count - base) * percent // 100
    spot = count - on_demand
    items: list[Item] = []
    hourly = {name: t.get("instances", name) for name in types}
    if on_demand:
        first = types[0]
        items.append(_item(group, "instances", f"{on_demand} × {first} on-demand × {t.hours} h",
                           on_demand * t.hours, "instance-hour", hourly[first]))
    if spot:
        discount = t.get("spotDiscount")
        mean = sum(hourly.values(), Decimal(0)) / len(hourly)
        named = types[0] if len(types) == 1 else f"mean of {', '.join(types)}"
        items.append(_item(group, "spot instances",
                           f"{spot} × spot ({named} on-demand less an average {discount * 100:.0f}% spot "
                           f"discount) × {t.hours} h", spot * t.hours, "instance-hour", mean * (1 - discount)))
    for mapping in template.inputs.get("blockDeviceMappings") or []:
        ebs = mapping.get("ebs") or {}
        size = _number(ebs.get("volumeSize"), 8)
        kind = str(ebs.get("volumeType") or "gp2")
        items.append(_item(group, "disks", f"{count} × {size} GiB EBS {kind}", count * size, "GB-month",
                           t.get("ebsGBMonth", kind)))
    public = any(_truthy(n.get("associatePublicIpAddress")) for n in template.inputs.get("networkInterfaces") or [])
    if public and count:
        items.append(_item(group, "public ip", f"{count} × public IPv4 address (one a node) × {t.hours} h",
                           count * t.hours, "address-hour", t.get("publicIpv4Hour")))
    return items


def _aws_balancer(balancer: Resource, t: _Table) -> list[Item]:
    kind = str(balancer.inputs.get("loadBalancerType") or "application")
    if kind != "network":
        raise PriceError(f"{t.snapshot}: no price for a {kind} load balancer ({balancer.name}); "
                         "the estimate prices network load balancers")
    lcu = t.usage["nlbLcu"]
    items = [_item(balancer, "load balancer", f"Network Load Balancer × {t.hours} h", t.hours, "balancer-hour",
                   t.get("nlbHour")),
             _item(balancer, "load balancer", f"NLB capacity: {_gb(lcu)} LCU (assumed) × {t.hours} h",
                   lcu * t.hours, "LCU-hour", t.get("nlbLcuHour"))]
    if not _truthy(balancer.inputs.get("internal")):
        zones = len(balancer.inputs.get("subnets") or balancer.inputs.get("subnetMappings") or [])
        if zones:
            items.append(_item(balancer, "public ip", f"{zones} × public IPv4 address (one a zone) × {t.hours} h",
                               zones * t.hours, "address-hour", t.get("publicIpv4Hour")))
    return items


def _aws_logs(graph: Graph, nodes: int, t: _Table) -> list[Item]:
    groups = _of(graph, "aws:cloudwatch/logGroup:LogGroup")
    flow_targets: dict[str, Resource] = {}
    for flow in _of(graph, "aws:ec2/flowLog:FlowLog"):
        destination = str(flow.inputs.get("logDestination") or "")
        for group in groups:
            if destination.endswith(f":log-group:{group.inputs.get('name')}"):
                flow_targets[group.urn] = group
    node_groups = [g for g in groups if g.urn not in flow_targets]
    items: list[Item] = []
    if node_groups and nodes:
        items += _log_items(node_groups[0].name.rsplit("-", 1)[0] if len(node_groups) > 1 else node_groups[0].name,
                            "node logs", nodes, t.usage["logGBPerNodeMonth"],
                            max(_number(g.inputs.get("retentionInDays"), 30) for g in node_groups), t)
    for group in flow_targets.values():
        items += _log_items(group.name, "VPC flow logs", nodes, t.usage["flowLogGBPerNodeMonth"],
                            _number(group.inputs.get("retentionInDays"), 30), t)
    return items


def _log_items(name: str, what: str, nodes: int, per_node: Decimal, retention: int, t: _Table) -> list[Item]:
    ingested = nodes * per_node
    months = Decimal(retention) / DAYS_PER_MONTH
    return [
        _item(name, "logs", f"{what} ingested: {nodes} nodes × {_gb(per_node)} GB/month (assumed)", ingested, "GB",
              t.get("logsIngestGB")),
        _item(name, "logs", f"{what} stored: {_gb(ingested)} GB/month kept {retention} days "
              "(uncompressed, so at most)", ingested * months, "GB-month", t.get("logsStoreGBMonth")),
    ]


# --- Azure --------------------------------------------------------------------


def _azure(graph: Graph, t: _Table) -> tuple[list[Item], int]:
    items: list[Item] = []
    nodes = 0
    for scale_set in _of(graph, "azure-native:compute:VirtualMachineScaleSet"):
        count = _number((scale_set.inputs.get("sku") or {}).get("capacity"))
        nodes += count
        items += _azure_scale_set(scale_set, count, t)
    nats = _of(graph, "azure-native:network:NatGateway")
    for nat in nats:
        items.append(_item(nat, "nat", f"NAT gateway × {t.hours} h", t.hours, "gateway-hour",
                           t.get("natGatewayHour")))
    if nats and nodes:
        per_node = t.usage["natGBPerNodeMonth"]
        items.append(_item(nats[0], "nat", f"NAT data processing: {nodes} nodes × {_gb(per_node)} GB/month "
                           "(assumed)", nodes * per_node, "GB", t.get("natGatewayGB")))
    for address in _of(graph, "azure-native:network:PublicIPAddress"):
        items.append(_item(address, "public ip", f"Standard public IP address × {t.hours} h", t.hours,
                           "address-hour", t.get("publicIpHour")))
    for balancer in _of(graph, "azure-native:network:LoadBalancer"):
        items += _azure_balancer(balancer, t)
    for vault in _of(graph, "azure-native:keyvault:Vault"):
        operations = t.usage["storeRequestsPerNodeMonth"]
        items.append(_item(vault, "key vault", f"Key Vault operations: {nodes} nodes × {_gb(operations)}/month "
                           "(assumed)", nodes * operations / 10000, "10k operations",
                           t.get("keyVaultPer10kOperations")))
    for share in _of(graph, "azure-native:storage:FileShare"):
        account = next((a for a in _of(graph, "azure-native:storage:StorageAccount")
                        if a.outputs.get("name") == share.outputs.get("accountName")), None)
        sku = str(((account.inputs.get("sku") if account else None) or {}).get("name") or "Premium_LRS")
        quota = _number(share.inputs.get("shareQuota"), 100)
        items.append(_item(share, "storage", f"premium file share {sku}: {quota} GiB provisioned (billed whether "
                           "used or not)", quota, "GiB-month", t.get("premiumFilesGiBMonth", sku)))
    for account in _of(graph, "azure-native:storage:StorageAccount"):
        if account.inputs.get("kind") == "FileStorage":
            continue  # billed by its shares' provisioned size, above
        stored = t.usage["storageGB"]
        sku = str((account.inputs.get("sku") or {}).get("name") or "Standard_LRS")
        items.append(_item(account, "storage", f"storage account {sku}: {_gb(stored)} GB stored (assumed: "
                           "the swarm's tables)", stored, "GB-month", t.get("storageGBMonth", sku)))
    for registry in _of(graph, "azure-native:containerregistry:Registry"):
        sku = str((registry.inputs.get("sku") or {}).get("name") or "Standard")
        days = (t.hours / 24).quantize(Decimal("0.01"))
        items.append(_item(registry, "registry", f"Container Registry {sku} × {_gb(days)} days (storage included "
                           "up to the SKU's allowance)", days, "registry-day", t.get("containerRegistryDay", sku)))
    for workspace in _of(graph, "azure-native:operationalinsights:Workspace"):
        items += _azure_workspace(workspace, nodes, t)
    for rule in _of(graph, "azure-native:monitor:ScheduledQueryRule"):
        frequency = str(rule.inputs.get("evaluationFrequency") or "PT5M")
        items.append(_item(rule, "alarms", f"log alert rule evaluated every {frequency}", 1, "rule-month",
                           t.get("logAlertMonth", frequency)))
    return items, nodes


def _azure_scale_set(scale_set: Resource, count: int, t: _Table) -> list[Item]:
    sku = scale_set.inputs.get("sku") or {}
    profile = scale_set.inputs.get("virtualMachineProfile") or {}
    sizes = [str(s.get("name")) for s in (scale_set.inputs.get("skuProfile") or {}).get("vmSizes") or []] \
        or [str(sku.get("name"))]
    hourly = {size: t.get("vmSizes", size) for size in sizes}
    items: list[Item] = []
    if profile.get("priority") == "Spot":
        discount = t.get("spotDiscount")
        mean = sum(hourly.values(), Decimal(0)) / len(hourly)
        named = sizes[0] if len(sizes) == 1 else f"mean of {', '.join(sizes)}"
        items.append(_item(scale_set, "spot instances",
                           f"{count} × Spot ({named} pay-as-you-go less an average {discount * 100:.0f}% Spot "
                           f"discount) × {t.hours} h", count * t.hours, "instance-hour", mean * (1 - discount)))
    elif count:
        items.append(_item(scale_set, "instances", f"{count} × {sizes[0]} pay-as-you-go × {t.hours} h",
                           count * t.hours, "instance-hour", hourly[sizes[0]]))
    disk = (profile.get("storageProfile") or {}).get("osDisk") or {}
    size = _number(disk.get("diskSizeGB"), 30)
    kind = str((disk.get("managedDisk") or {}).get("storageAccountType") or "StandardSSD_LRS")
    tiers = sorted((int(k), k) for k in t.mapping("managedDiskMonth").get(kind, {}))
    tier = next((key for gib, key in tiers if gib >= size), None)
    if tier is None:
        raise PriceError(f"{t.snapshot}: no {kind} disk tier of {size} GiB or more in {t.region} "
                         f"(key regions.{t.region}.managedDiskMonth.{kind}); add it in a --prices FILE")
    items.append(_item(scale_set, "disks", f"{count} × {size} GiB managed disk {kind} (billed as the "
                       f"{tier} GiB tier)", count, "disk-month", t.get("managedDiskMonth", kind, tier)))
    interfaces = (profile.get("networkProfile") or {}).get("networkInterfaceConfigurations") or []
    public = any(ip.get("publicIPAddressConfiguration")
                 for nic in interfaces for ip in nic.get("ipConfigurations") or [])
    if public and count:
        items.append(_item(scale_set, "public ip", f"{count} × Standard public IP (one a node) × {t.hours} h",
                           count * t.hours, "address-hour", t.get("publicIpHour")))
    return items


def _azure_balancer(balancer: Resource, t: _Table) -> list[Item]:
    rules = len(balancer.inputs.get("loadBalancingRules") or []) + len(balancer.inputs.get("outboundRules") or [])
    included = int(t.get("loadBalancerIncludedRules"))
    extra = max(0, rules - included)
    data = t.usage["loadBalancerGBMonth"]
    items = [_item(balancer, "load balancer", f"Standard Load Balancer ({rules} rules, {included} included) "
                   f"× {t.hours} h", t.hours, "balancer-hour", t.get("loadBalancerHour"))]
    if extra:
        items.append(_item(balancer, "load balancer", f"{extra} rules beyond {included} × {t.hours} h",
                           extra * t.hours, "rule-hour", t.get("loadBalancerExtraRuleHour")))
    items.append(_item(balancer, "load balancer", f"data processed: {_gb(data)} GB/month (assumed)", data, "GB",
                       t.get("loadBalancerGB")))
    return items


def _azure_workspace(workspace: Resource, nodes: int, t: _Table) -> list[Item]:
    per_node = t.usage["logGBPerNodeMonth"]
    ingested = nodes * per_node
    retention = _number(workspace.inputs.get("retentionInDays"), 30)
    included = int(t.get("logsIncludedRetentionDays"))
    items = [_item(workspace, "logs", f"Log Analytics ingestion: {nodes} nodes × {_gb(per_node)} GB/month "
                   "(assumed)", ingested, "GB", t.get("logsIngestGB"))]
    if retention > included:
        months = Decimal(retention - included) / DAYS_PER_MONTH
        items.append(_item(workspace, "logs", f"Log Analytics retention: {_gb(ingested)} GB/month kept "
                           f"{retention} days ({included} included)", ingested * months, "GB-month",
                           t.get("logsRetentionGBMonth")))
    return items


# --- text ---------------------------------------------------------------------


def render_text(result: Estimate) -> str:
    width = max([len(i.resource) for i in result.items] + [8])
    lines = [f"Monthly estimate for stack {result.stack} ({result.cloud}, {result.region}): "
             f"{result.total:,.2f} {result.currency}",
             f"Prices: {result.source}",
             f"Prices dated {result.date}; approximate list prices, not a quote.", ""]
    for item in result.items:
        lines.append(f"  {item.resource:<{width}}  {item.monthly:>10,.2f}  {item.description}")
    lines.append(f"  {'total':<{width}}  {result.total:>10,.2f}  {result.currency} a month "
                 f"({result.nodes} nodes, {len(result.items)} items)")
    lines += ["", "Not counted: data transfer out of the cloud, requests beyond the assumptions above, "
              "free tiers, support plans and taxes."]
    return "\n".join(lines)


def one_line(result: Estimate, stack: str | None = None) -> str:
    """What `swarmstack plan STACK` shows (`stack`: as the user named it, default the result's)."""
    return (f"Estimated cost: {result.total:,.2f} {result.currency}/month ({result.nodes} nodes; prices of "
            f"{result.date}, approximate; `swarmstack cost {stack or result.stack}` for the items)")
