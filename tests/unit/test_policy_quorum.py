"""Manager rules: odd count, zones, on-demand, no single manager in production."""

from __future__ import annotations

from typing import Any

from policy_testing import messages, resource, summary

from policies import quorum

ASG = "aws:autoscaling/group:Group"
LT = "aws:ec2/launchTemplate:LaunchTemplate"
SUBNET = "aws:ec2/subnet:Subnet"
VMSS = "azure-native:compute:VirtualMachineScaleSet"


def subnets() -> list:  # type: ignore[type-arg]
    return [resource(SUBNET, f"private-{z}", {"vpcId": "vpc-1", "cidrBlock": f"10.20.{i}.0/24",
                                              "availabilityZone": f"eu-west-1{z}"}, {"id": f"subnet-{z}"})
            for i, z in enumerate("abc")]


def manager_template(**changes: Any) -> Any:
    props = {"namePrefix": "prod-managers-", "tags": {"swarmstack:role": "manager"}}
    props.update(changes)
    return resource(LT, "prod-managers", props, {"id": "lt-0managers"})


def manager_asg(**changes: Any) -> Any:
    props: dict[str, Any] = {"desiredCapacity": 3.0, "minSize": 3.0, "maxSize": 3.0,
                             "vpcZoneIdentifiers": ["subnet-a", "subnet-b", "subnet-c"],
                             "launchTemplate": {"id": "lt-0managers", "version": "$Latest"},
                             "tags": [{"key": "swarmstack:role", "value": "manager", "propagateAtLaunch": True}]}
    props.update(changes)
    return resource(ASG, "prod-managers", {k: v for k, v in props.items() if v is not None})


def worker_asg() -> Any:
    return resource(ASG, "prod-workers-batch", {
        "desiredCapacity": 2.0, "minSize": 2.0, "maxSize": 2.0, "vpcZoneIdentifiers": ["subnet-a"],
        "mixedInstancesPolicy": {"instancesDistribution": {"onDemandPercentageAboveBaseCapacity": 0.0},
                                 "launchTemplate": {"launchTemplateSpecification": {"launchTemplateId": "lt-0w"}}},
        "tags": [{"key": "swarmstack:role", "value": "worker", "propagateAtLaunch": True}]})


def stack(*extra: Any, **summary_changes: Any) -> list:  # type: ignore[type-arg]
    return [summary(**summary_changes), *subnets(), manager_template(), *extra]


# --- manager-count-odd --------------------------------------------------------------------------

def test_manager_count_passes() -> None:
    assert messages(quorum.manager_count_odd, *stack(manager_asg(), worker_asg())) == []


def test_manager_count_breaks() -> None:
    assert messages(quorum.manager_count_odd, *stack(manager_asg(desiredCapacity=4.0))) == [
        "the manager groups hold 4 managers (prod-managers (4)); use 1, 3, 5 or 7 so that raft keeps a majority"]
    assert messages(quorum.manager_count_odd, *stack(manager_asg(), manager_count=4)) == [
        "the cluster asks for 4 managers; use 1, 3, 5 or 7 so that raft keeps a majority"]
    assert messages(quorum.manager_count_odd, *stack(manager_asg(desiredCapacity=5.0))) == [
        "the manager groups hold 5 managers but the cluster asks for 3"]


def test_manager_count_tagged_on_the_template_only() -> None:
    untagged = manager_asg(tags=[], desiredCapacity=2.0)
    assert messages(quorum.manager_count_odd, *stack(untagged)) == [
        "the manager groups hold 2 managers (prod-managers (2)); use 1, 3, 5 or 7 so that raft keeps a majority"]


def test_manager_count_one_group_per_zone_adds_up() -> None:
    groups = [resource(ASG, f"prod-managers-{z}", {
        "desiredCapacity": 1.0, "vpcZoneIdentifiers": [f"subnet-{z}"], "launchTemplate": {"id": "lt-0managers"}})
        for z in "abc"]
    assert messages(quorum.manager_count_odd, *stack(*groups)) == []
    assert messages(quorum.managers_spread_over_zones, *stack(*groups)) == []


# --- managers-spread-over-zones -------------------------------------------------------------------

def test_managers_spread_passes() -> None:
    assert messages(quorum.managers_spread_over_zones, *stack(manager_asg())) == []
    single = manager_asg(desiredCapacity=1.0, vpcZoneIdentifiers=["subnet-a"])
    assert messages(quorum.managers_spread_over_zones, *stack(single, manager_count=1)) == []


def test_managers_spread_breaks() -> None:
    two_zones = manager_asg(vpcZoneIdentifiers=["subnet-a", "subnet-b"])
    assert messages(quorum.managers_spread_over_zones, *stack(two_zones)) == [
        "3 managers run in 2 zone(s) (eu-west-1a, eu-west-1b); spread them over at least 3 so that losing one "
        "zone keeps a raft majority"]
    azs = manager_asg(vpcZoneIdentifiers=None, availabilityZones=["eu-west-1a"])
    assert messages(quorum.managers_spread_over_zones, *stack(azs)) == [
        "3 managers run in 1 zone(s) (eu-west-1a); spread them over at least 3 so that losing one zone keeps a "
        "raft majority"]


def test_managers_spread_with_a_subnet_entry_of_an_odd_shape_falls_back_to_the_summary() -> None:
    # A subnet list holding something that is not a subnet id (a list, a map) names no zone.
    odd = manager_asg(vpcZoneIdentifiers=[[], "subnet-b", "subnet-c"])
    assert messages(quorum.managers_spread_over_zones, *stack(odd, zones=2)) == [
        "3 managers over 2 zone(s); spread them over at least 3 so that losing one zone keeps a raft majority"]


def test_managers_spread_falls_back_to_the_summary() -> None:
    assert messages(quorum.managers_spread_over_zones, summary(zones=2)) == [
        "3 managers over 2 zone(s); spread them over at least 3 so that losing one zone keeps a raft majority"]


def test_managers_spread_on_azure() -> None:
    vmss = resource(VMSS, "managers", {"sku": {"capacity": 3.0}, "zones": ["1", "2"],
                                       "tags": {"swarmstack:role": "manager"}})
    assert messages(quorum.managers_spread_over_zones, summary(cloud="azure"), vmss) == [
        "3 managers run in 2 zone(s) (1, 2); spread them over at least 3 so that losing one zone keeps a raft "
        "majority"]
    no_zones = resource(VMSS, "managers", {"sku": {"capacity": 3.0}, "tags": {"swarmstack:role": "manager"}})
    assert messages(quorum.managers_spread_over_zones, summary(cloud="azure"), no_zones) == [
        "3 managers run in 1 zone(s) ((no zone)); spread them over at least 3 so that losing one zone keeps a "
        "raft majority"]


# --- managers-on-demand --------------------------------------------------------------------------

def test_managers_on_demand_passes() -> None:
    assert messages(quorum.managers_on_demand, *stack(manager_asg(), worker_asg())) == []


def test_managers_on_spot_are_refused() -> None:
    mixed = manager_asg(launchTemplate=None, mixedInstancesPolicy={
        "instancesDistribution": {"onDemandBaseCapacity": 0.0, "onDemandPercentageAboveBaseCapacity": 50.0},
        "launchTemplate": {"launchTemplateSpecification": {"launchTemplateId": "lt-0managers"}}})
    assert messages(quorum.managers_on_demand, *stack(mixed)) == [
        "manager group prod-managers may run on spot capacity: mixedInstancesPolicy.instancesDistribution."
        "onDemandPercentageAboveBaseCapacity is 50 above a base of 0; an interruption takes a raft member away "
        "without warning"]
    spot_template = [summary(), *subnets(), manager_template(instanceMarketOptions={"marketType": "spot"}),
                     manager_asg()]
    assert messages(quorum.managers_on_demand, *spot_template) == [
        "manager group prod-managers may run on spot capacity: its launch template sets "
        "instanceMarketOptions.marketType: spot; an interruption takes a raft member away without warning"]
    vmss = resource(VMSS, "managers", {"sku": {"capacity": 3.0}, "zones": ["1", "2", "3"],
                                       "tags": {"swarmstack:role": "manager"},
                                       "virtualMachineProfile": {"priority": "Spot"}})
    assert messages(quorum.managers_on_demand, vmss) == [
        "manager group managers may run on spot capacity: virtualMachineProfile.priority is Spot; an interruption "
        "takes a raft member away without warning"]


# --- single-manager-not-production ----------------------------------------------------------------

def test_single_manager_in_dev_passes() -> None:
    single = manager_asg(desiredCapacity=1.0)
    assert messages(quorum.single_manager_not_production, *stack(single, manager_count=1, production=False)) == []
    assert messages(quorum.single_manager_not_production, *stack(manager_asg())) == []


def test_single_manager_in_production_is_refused() -> None:
    expected = ["a production stack runs a single manager: losing it stops all scheduling and joins; use 3 "
                "managers over 3 zones"]
    assert messages(quorum.single_manager_not_production, summary(manager_count=1)) == expected
    single = manager_asg(desiredCapacity=1.0)
    assert messages(quorum.single_manager_not_production, *stack(single)) == expected
