"""The managers as a whole: how many, where, on what. Stack rules, because no single
resource knows: they read the manager groups (tagged `swarmstack:role=manager`) and the
Cluster component's summary (`managerCount`, `zones`, `production`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    StackValidationArgs,
)

from ._cluster import ROLE_TAG, Summary, summaries, tags_of
from ._props import as_list, dig, is_unknown, number, plain
from ._rules import Report, stack_rule

ASG = "aws:autoscaling/group:Group"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
SUBNET = "aws:ec2/subnet:Subnet"
SCALE_SET = "azure-native:compute:VirtualMachineScaleSet"
MANAGER_COUNTS = (1, 3, 5, 7)


@dataclass
class ManagerGroup:
    """One group of manager machines (an ASG or a scale set)."""

    name: str
    urn: str
    count: int | None
    """Desired capacity; None when not known before the update."""
    zones: set[str] | None
    """Zones it spans; None when not known before the update."""
    spot: str | None = None
    """Why it may run on spot capacity, or None."""
    extra: dict[str, Any] = field(default_factory=dict)


def _launch_template_refs(props: dict[str, Any]) -> list[dict[str, Any]]:
    refs = [props.get("launchTemplate")]
    refs.append(dig(props, "mixedInstancesPolicy", "launchTemplate", "launchTemplateSpecification"))
    return [r for r in refs if isinstance(r, dict)]


def _asg_spot(props: dict[str, Any], templates: list[dict[str, Any]]) -> str | None:
    distribution = dig(props, "mixedInstancesPolicy", "instancesDistribution")
    if dig(props, "mixedInstancesPolicy") is not None:
        above = number(dig(distribution, "onDemandPercentageAboveBaseCapacity", default=100))
        base = number(dig(distribution, "onDemandBaseCapacity", default=0)) or 0
        desired = number(props.get("maxSize")) or number(props.get("desiredCapacity")) or 0
        if above is not None and above < 100 and desired > base:
            return (f"mixedInstancesPolicy.instancesDistribution.onDemandPercentageAboveBaseCapacity is "
                    f"{int(above)} above a base of {int(base)}")
    for template in templates:
        if str(dig(template, "instanceMarketOptions", "marketType", default="")).lower() == "spot":
            return "its launch template sets instanceMarketOptions.marketType: spot"
    return None


def manager_groups(args: StackValidationArgs) -> list[ManagerGroup]:
    """Every group of managers in the stack, AWS or Azure."""
    resources = [(r, plain(r.props)) for r in args.resources]
    templates: dict[str, dict[str, Any]] = {}
    zone_of_subnet: dict[str, str] = {}
    for resource, props in resources:
        if resource.resource_type == LAUNCH_TEMPLATE:
            for key in (props.get("id"), props.get("name"), resource.name):
                if isinstance(key, str) and not is_unknown(key):
                    templates[key] = props
        elif resource.resource_type == SUBNET:
            subnet_id, zone = props.get("id"), props.get("availabilityZone")
            if isinstance(subnet_id, str) and isinstance(zone, str) and not is_unknown(zone) \
                    and not is_unknown(subnet_id):
                zone_of_subnet[subnet_id] = zone
    groups = []
    for resource, props in resources:
        if resource.resource_type == ASG:
            used = []
            for ref in _launch_template_refs(props):
                for key in ("id", "name", "launchTemplateId", "launchTemplateName"):
                    if isinstance(ref.get(key), str) and ref[key] in templates:
                        used.append(templates[ref[key]])
            roles = {tags_of(ASG, props).get(ROLE_TAG)} | {tags_of(LAUNCH_TEMPLATE, t).get(ROLE_TAG) for t in used}
            if "manager" not in roles:
                continue
            desired = number(props.get("desiredCapacity"))
            if desired is None:
                desired = number(props.get("minSize"))
            zones: set[str] | None = None
            azs = props.get("availabilityZones")
            subnets = props.get("vpcZoneIdentifiers")
            if isinstance(azs, list) and azs and not any(is_unknown(z) for z in azs):
                zones = {str(z) for z in azs}
            elif isinstance(subnets, list) and subnets and all(
                    isinstance(s, str) and s in zone_of_subnet for s in subnets):
                zones = {zone_of_subnet[s] for s in subnets}
            groups.append(ManagerGroup(resource.name, resource.urn, int(desired) if desired is not None else None,
                                       zones, _asg_spot(props, used)))
        elif resource.resource_type == SCALE_SET:
            if tags_of(SCALE_SET, props).get(ROLE_TAG) != "manager":
                continue
            capacity = number(dig(props, "sku", "capacity"))
            zone_list = props.get("zones")
            zones = None if is_unknown(zone_list) else {str(z) for z in as_list(zone_list)} or {"(no zone)"}
            priority = str(dig(props, "virtualMachineProfile", "priority", default="Regular"))
            spot = None
            if priority.lower() in ("spot", "low"):
                spot = f"virtualMachineProfile.priority is {priority}"
            elif number(dig(props, "priorityMixPolicy", "regularPriorityPercentageAboveBase", default=100)) not in (
                    None, 100.0):
                spot = "priorityMixPolicy puts part of it on Spot"
            groups.append(ManagerGroup(resource.name, resource.urn,
                                       int(capacity) if capacity is not None else None, zones, spot))
    return groups


def _the_cluster(args: StackValidationArgs) -> Summary | None:
    found = summaries(args.resources)
    return found[0] if found else None


def _manager_total(groups: list[ManagerGroup]) -> int | None:
    if not groups or any(g.count is None for g in groups):
        return None
    return sum(g.count or 0 for g in groups)


# --- manager-count-odd -----------------------------------------------------------------------


def _manager_count_odd(args: StackValidationArgs, report: Report) -> None:
    summary = _the_cluster(args)
    groups = manager_groups(args)
    if summary is None and not groups:
        args.not_applicable("no swarmstack Cluster summary and no manager groups in the stack")
    if summary is not None and summary.manager_count is not None and summary.manager_count not in MANAGER_COUNTS:
        report(f"the cluster asks for {summary.manager_count} managers; use 1, 3, 5 or 7 so that raft keeps a "
               "majority", summary.urn)
    total = _manager_total(groups)
    if total is None:
        return
    if total not in MANAGER_COUNTS:
        names = ", ".join(f"{g.name} ({g.count})" for g in groups)
        report(f"the manager groups hold {total} managers ({names}); use 1, 3, 5 or 7 so that raft keeps a "
               "majority", groups[0].urn)
    elif summary is not None and summary.manager_count in MANAGER_COUNTS and total != summary.manager_count:
        report(f"the manager groups hold {total} managers but the cluster asks for {summary.manager_count}",
               groups[0].urn)


manager_count_odd = stack_rule(
    name="manager-count-odd",
    description="The swarm has 1, 3, 5 or 7 managers: an odd count, so that raft keeps a majority.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_manager_count_odd,
    remediation_steps="Set managers.count to 3 (tolerates one loss), 5 (two) or 7 (three).",
)

# --- managers-spread-over-zones ------------------------------------------------------------------


def _managers_spread_over_zones(args: StackValidationArgs, report: Report) -> None:
    summary = _the_cluster(args)
    groups = manager_groups(args)
    count = _manager_total(groups)
    if count is None and summary is not None:
        count = summary.manager_count
    if count is None or count < 3:
        args.not_applicable("fewer than 3 managers")
    known = [g for g in groups if g.zones is not None]
    if groups and len(known) == len(groups):
        zones = set().union(*(g.zones or set() for g in known))
        if len(zones) < 3:
            report(f"{count} managers run in {len(zones)} zone(s) ({', '.join(sorted(zones))}); spread them over "
                   "at least 3 so that losing one zone keeps a raft majority", groups[0].urn)
        return
    if summary is not None and summary.zones is not None and summary.zones < 3:
        report(f"{count} managers over {summary.zones} zone(s); spread them over at least 3 so that losing one "
               "zone keeps a raft majority", summary.urn)


managers_spread_over_zones = stack_rule(
    name="managers-spread-over-zones",
    description="With 3 or more managers, the managers span at least 3 availability zones.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_managers_spread_over_zones,
    remediation_steps="Use network.new.zones: 3 or more (or 3 existing private subnets in distinct zones).",
)

# --- managers-on-demand ------------------------------------------------------------------------


def _managers_on_demand(args: StackValidationArgs, report: Report) -> None:
    groups = manager_groups(args)
    if not groups:
        args.not_applicable("no manager groups in the stack")
    for group in groups:
        if group.spot:
            report(f"manager group {group.name} may run on spot capacity: {group.spot}; an interruption "
                   "takes a raft member away without warning", group.urn)


managers_on_demand = stack_rule(
    name="managers-on-demand",
    description="Managers never run on spot / Spot capacity.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_managers_on_demand,
    remediation_steps="Keep spot for worker pools (workers[].spot: true); managers are always on-demand.",
)

# --- single-manager-not-production ----------------------------------------------------------------


def _single_manager_not_production(args: StackValidationArgs, report: Report) -> None:
    summary = _the_cluster(args)
    if summary is None:
        args.not_applicable("no swarmstack Cluster summary in the stack")
    assert summary is not None
    if not summary.production:
        args.not_applicable("the stack is not marked production")
    total = _manager_total(manager_groups(args))
    count = total if total is not None else summary.manager_count
    if count == 1:
        report("a production stack runs a single manager: losing it stops all scheduling and joins; "
               "use 3 managers over 3 zones", summary.urn)


single_manager_not_production = stack_rule(
    name="single-manager-not-production",
    description="A stack marked production runs more than one manager.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_single_manager_not_production,
    remediation_steps="Set managers.count: 3 (and network zones: 3), or production: false for a dev stack.",
)

RESOURCE_POLICIES: list = []
STACK_POLICIES = [manager_count_odd, managers_spread_over_zones, managers_on_demand, single_manager_not_production]
