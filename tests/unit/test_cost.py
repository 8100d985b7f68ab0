"""`swarmstack cost`: the arithmetic on hand-built plans with hand-computed figures, the
snapshot and its overrides, and the estimate of real plans as a user asks for it."""

from __future__ import annotations

import json
import re
import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from shipped import program_runs_shared  # noqa: F401 (an autouse fixture: the CLI's runs shared)

from swarmstack.cli import EXIT_CONFIG, main
from swarmstack.config.load import load_stack
from swarmstack.cost import estimate
from swarmstack.engine.graph import Graph, Resource
from swarmstack.prices import PriceError, load_prices

ROOT = Path(__file__).resolve().parents[2]

AWS_PRICES = """{
  "source": "hand-made test prices", "date": "2026-01-01", "currency": "USD", "hoursPerMonth": 730,
  "usage": {"logGBPerNodeMonth": 2, "flowLogGBPerNodeMonth": 1, "natGBPerNodeMonth": 10,
            "storeRequestsPerNodeMonth": 20000, "nlbLcu": 1, "bucketGB": 10},
  "regions": {"eu-west-1": {
    "instances": {"t3.small": 0.02, "m6i.large": 0.1, "m5.large": 0.08}, "spotDiscount": 0.5,
    "ebsGBMonth": {"gp3": 0.08}, "natGatewayHour": 0.05, "natGatewayGB": 0.05, "nlbHour": 0.025,
    "nlbLcuHour": 0.006, "publicIpv4Hour": 0.005, "kmsKeyMonth": 1, "kmsPer10kRequests": 0.03,
    "logsIngestGB": 0.5, "logsStoreGBMonth": 0.03, "alarmMonth": 0.1, "customMetricMonth": 0.3, "dashboardMonth": 3, "s3GBMonth": 0.023}}
}"""

AZURE_PRICES = """{
  "source": "hand-made test prices", "date": "2026-01-01", "currency": "USD", "hoursPerMonth": 730,
  "usage": {"logGBPerNodeMonth": 2, "natGBPerNodeMonth": 10, "storeRequestsPerNodeMonth": 20000,
            "loadBalancerGBMonth": 100, "storageGB": 1},
  "regions": {"westeurope": {
    "vmSizes": {"Standard_D2s_v5": 0.1, "Standard_D4s_v5": 0.2, "Standard_D4as_v5": 0.18}, "spotDiscount": 0.5,
    "managedDiskMonth": {"Premium_LRS": {"32": 5, "64": 9}, "StandardSSD_LRS": {"64": 6, "128": 10}},
    "natGatewayHour": 0.045, "natGatewayGB": 0.045, "publicIpHour": 0.005, "loadBalancerHour": 0.025,
    "loadBalancerExtraRuleHour": 0.01, "loadBalancerIncludedRules": 5, "loadBalancerGB": 0.005,
    "keyVaultPer10kOperations": 0.03, "storageGBMonth": {"Standard_ZRS": 0.06},
    "logsIngestGB": 2.5, "logsRetentionGBMonth": 0.1, "logsIncludedRetentionDays": 31,
    "logAlertMonth": {"PT5M": 1.5}}}
}"""


def prices(text: str) -> dict[str, Any]:
    return dict(json.loads(text, parse_float=Decimal, parse_int=Decimal))


def res(type_: str, name: str, inputs: dict[str, Any], id_: str = "", parent: str = "") -> Resource:
    return Resource(urn=f"urn:pulumi:t::swarmstack::{type_}::{name}", type=type_, name=name, parent=parent,
                    custom=True, inputs=inputs, outputs={}, id=id_ or name)


def small_aws() -> Graph:
    """One t3.small manager, two spot workers (m6i.large or m5.large), one NAT, a public NLB in two
    zones, a key, node logs kept 60 days, flow logs kept 30, two alarms, an access-log bucket."""
    lt = "aws:ec2/launchTemplate:LaunchTemplate"
    disk = lambda gib: [{"deviceName": "/dev/xvda", "ebs": {"volumeSize": float(gib), "volumeType": "gp3"}}]  # noqa: E731
    private = [{"associatePublicIpAddress": "false"}]
    return Graph(stack="small", cloud="aws", resources=[
        res(lt, "s-managers-lt", {"instanceType": "t3.small", "blockDeviceMappings": disk(20),
                                  "networkInterfaces": private}, "lt-1"),
        res(lt, "s-spot-lt", {"instanceType": "m6i.large", "blockDeviceMappings": disk(30),
                              "networkInterfaces": private}, "lt-2"),
        res("aws:autoscaling/group:Group", "s-managers-asg", {"desiredCapacity": 1.0, "launchTemplate": {"id": "lt-1"}}),
        res("aws:autoscaling/group:Group", "s-spot-asg", {"desiredCapacity": 2.0, "mixedInstancesPolicy": {
            "instancesDistribution": {"onDemandBaseCapacity": 0.0, "onDemandPercentageAboveBaseCapacity": 0.0},
            "launchTemplate": {"launchTemplateSpecification": {"launchTemplateId": "lt-2"},
                               "overrides": [{"instanceType": "m6i.large"}, {"instanceType": "m5.large"}]}}}),
        res("aws:ec2/eip:Eip", "s-nat-a", {"domain": "vpc"}),
        res("aws:ec2/natGateway:NatGateway", "s-nat-a", {"subnetId": "subnet-1"}),
        res("aws:lb/loadBalancer:LoadBalancer", "s-nlb", {"loadBalancerType": "network", "internal": False,
                                                          "subnets": ["subnet-1", "subnet-2"]}),
        res("aws:kms/key:Key", "s-key", {}),
        res("aws:cloudwatch/logGroup:LogGroup", "s-logs-containers", {"name": "/s/containers", "retentionInDays": 60.0}),
        res("aws:cloudwatch/logGroup:LogGroup", "s-flow-logs", {"name": "/s/flow", "retentionInDays": 30.0}),
        res("aws:ec2/flowLog:FlowLog", "s-flow-logs", {"logDestination": "arn:aws:logs:eu-west-1:1:log-group:/s/flow"}),
        res("aws:cloudwatch/metricAlarm:MetricAlarm", "s-alarm-1", {}, parent="urn:pulumi:t::swarmstack::c::s-monitoring"),
        res("aws:cloudwatch/metricAlarm:MetricAlarm", "s-alarm-2", {}, parent="urn:pulumi:t::swarmstack::c::s-monitoring"),
        res("aws:s3/bucket:Bucket", "s-lb-logs", {}),
    ])


def test_a_small_aws_stack_costs_what_the_hand_computation_says() -> None:
    result = estimate(small_aws(), "eu-west-1", prices(AWS_PRICES))
    assert [(i.resource, str(i.monthly)) for i in result.items] == [
        ("s-managers-asg", "14.60"),   # 1 × 730 h × 0.02
        ("s-managers-asg", "1.60"),    # 20 GiB × 0.08
        ("s-spot-asg", "65.70"),       # 2 × 730 h × (0.1 + 0.08) / 2 × (1 - 0.5)
        ("s-spot-asg", "4.80"),        # 2 × 30 GiB × 0.08
        ("s-nat-a", "36.50"),          # 730 h × 0.05
        ("s-nat-a", "1.50"),           # 3 nodes × 10 GB × 0.05
        ("s-nat-a", "3.65"),           # its Elastic IP: 730 h × 0.005
        ("s-nlb", "18.25"),            # 730 h × 0.025
        ("s-nlb", "4.38"),             # 1 LCU × 730 h × 0.006
        ("s-nlb", "7.30"),             # 2 zones' public IPv4 × 730 h × 0.005
        ("s-key", "1.00"),
        ("s-key", "0.18"),             # 3 nodes × 20000 requests / 10k × 0.03
        ("s-logs-containers", "3.00"),  # 3 nodes × 2 GB × 0.5
        ("s-logs-containers", "0.36"),  # 6 GB × 60/30 months × 0.03
        ("s-flow-logs", "1.50"),       # 3 nodes × 1 GB × 0.5
        ("s-flow-logs", "0.09"),       # 3 GB × 30/30 × 0.03
        ("s-monitoring", "0.20"),      # 2 alarms × 0.1
        ("s-lb-logs", "0.23"),         # 10 GB × 0.023
    ]
    assert result.total == Decimal("164.84")
    assert result.nodes == 3
    spot = result.items[2]
    assert spot.kind == "spot instances"
    assert spot.description == ("2 × spot (mean of m6i.large, m5.large on-demand less an average 50% spot discount) "
                                "× 730 h")
    assert "2 GB/month (assumed)" in result.items[12].description


def small_azure() -> Graph:
    vmss = "azure-native:compute:VirtualMachineScaleSet"
    nic = lambda public: {"networkInterfaceConfigurations": [{"ipConfigurations": [  # noqa: E731
        {"publicIPAddressConfiguration": {"name": "public"}} if public else {"name": "private"}]}]}
    rule = {"name": "r"}
    return Graph(stack="small", cloud="azure", resources=[
        res(vmss, "s-managers", {"sku": {"name": "Standard_D2s_v5", "capacity": 1.0}, "virtualMachineProfile": {
            "storageProfile": {"osDisk": {"diskSizeGB": 30.0, "managedDisk": {"storageAccountType": "Premium_LRS"}}},
            "networkProfile": nic(True)}}),
        res(vmss, "s-w-spot", {"sku": {"name": "Mix", "capacity": 2.0},
                               "skuProfile": {"vmSizes": [{"name": "Standard_D4s_v5"}, {"name": "Standard_D4as_v5"}]},
                               "virtualMachineProfile": {"priority": "Spot", "storageProfile": {"osDisk": {
                                   "diskSizeGB": 128.0, "managedDisk": {"storageAccountType": "StandardSSD_LRS"}}},
                                   "networkProfile": nic(False)}}),
        res("azure-native:network:NatGateway", "s-nat", {}),
        res("azure-native:network:PublicIPAddress", "s-nat", {}),
        res("azure-native:network:LoadBalancer", "s-lb", {"loadBalancingRules": [rule] * 6}),
        res("azure-native:keyvault:Vault", "s-vault", {}),
        res("azure-native:storage:StorageAccount", "s-storage", {"sku": {"name": "Standard_ZRS"}}),
        res("azure-native:operationalinsights:Workspace", "s-logs", {"retentionInDays": 91.0}),
        res("azure-native:monitor:ScheduledQueryRule", "s-quorum", {"evaluationFrequency": "PT5M"}),
    ])


def test_a_small_azure_stack_costs_what_the_hand_computation_says() -> None:
    result = estimate(small_azure(), "westeurope", prices(AZURE_PRICES))
    assert [(i.resource, str(i.monthly)) for i in result.items] == [
        ("s-managers", "73.00"),   # 1 × 730 h × 0.1
        ("s-managers", "5.00"),    # 30 GiB Premium: the 32 GiB tier
        ("s-managers", "3.65"),    # its public IP: 730 h × 0.005
        ("s-w-spot", "138.70"),    # 2 × 730 h × (0.2 + 0.18) / 2 × (1 - 0.5)
        ("s-w-spot", "20.00"),     # 2 × 128 GiB Standard SSD: the 128 GiB tier at 10
        ("s-nat", "32.85"),        # 730 h × 0.045
        ("s-nat", "1.35"),         # 3 nodes × 10 GB × 0.045
        ("s-nat", "3.65"),         # the NAT's public IP
        ("s-lb", "18.25"),         # 730 h × 0.025 (5 rules included)
        ("s-lb", "7.30"),          # the sixth rule: 730 h × 0.01
        ("s-lb", "0.50"),          # 100 GB × 0.005
        ("s-vault", "0.18"),       # 3 nodes × 20000 operations / 10k × 0.03
        ("s-storage", "0.06"),     # 1 GB × 0.06
        ("s-logs", "15.00"),       # 3 nodes × 2 GB × 2.5
        ("s-logs", "1.20"),        # 6 GB × (91 - 31)/30 months × 0.1
        ("s-quorum", "1.50"),
    ]
    assert result.total == Decimal("322.19")


@settings(max_examples=40, deadline=None)
@given(managers=st.integers(min_value=0, max_value=1000), spot=st.integers(min_value=0, max_value=1000))
def test_machines_cost_exactly_their_count_times_one_machine(managers: int, spot: int) -> None:
    graph = small_aws()
    for resource in graph.resources:
        if resource.name in ("s-managers-asg", "s-spot-asg"):
            resource.inputs["desiredCapacity"] = float(managers if resource.name == "s-managers-asg" else spot)
    result = estimate(graph, "eu-west-1", prices(AWS_PRICES))
    machines = {(i.resource, i.kind): i.monthly for i in result.items if i.kind in ("instances", "spot instances",
                                                                                  "disks")}
    assert machines.get(("s-managers-asg", "instances"), Decimal(0)) == managers * Decimal("14.60")
    assert machines[("s-managers-asg", "disks")] == managers * Decimal("1.60")
    assert machines.get(("s-spot-asg", "spot instances"), Decimal(0)) == spot * Decimal("32.85")
    assert machines[("s-spot-asg", "disks")] == spot * Decimal("2.40")
    assert result.nodes == managers + spot
    assert result.total == sum((i.monthly for i in result.items), Decimal(0))


def test_json_has_exactly_the_documented_shape() -> None:
    document = estimate(small_aws(), "eu-west-1", prices(AWS_PRICES)).as_json()
    assert set(document) == {"currency", "total", "items", "prices"}
    assert document["currency"] == "USD" and document["total"] == 164.84
    assert document["prices"] == {"source": "hand-made test prices", "date": "2026-01-01"}
    assert document["items"][0] == {"resource": "s-managers-asg", "kind": "instances",
                                    "description": "1 × t3.small on-demand × 730 h", "quantity": 730.0,
                                    "unit": "instance-hour", "unitPrice": 0.02, "monthly": 14.6}
    json.dumps(document)  # plain JSON, no Decimal left


def test_a_type_missing_from_the_prices_is_named_with_the_key_to_add() -> None:
    table = prices(AWS_PRICES)
    del table["regions"]["eu-west-1"]["instances"]["m5.large"]
    with pytest.raises(PriceError) as err:
        estimate(small_aws(), "eu-west-1", table)
    assert str(err.value) == ("swarmstack/prices/aws.json: no price for m5.large (instances) in eu-west-1 "
                              "(key regions.eu-west-1.instances.m5.large); add it in a --prices FILE")


def test_a_region_missing_from_the_snapshot_says_which_regions_it_has() -> None:
    with pytest.raises(PriceError) as err:
        estimate(small_aws(), "ap-south-1", load_prices("aws"))
    assert str(err.value) == ("swarmstack/prices/aws.json: no prices for region ap-south-1; the snapshot has "
                              "eu-central-1, eu-west-1, us-east-1: add regions.ap-south-1 (shaped like "
                              "regions.us-east-1) in a --prices FILE")


@pytest.mark.parametrize("cloud", ["aws", "azure"])
def test_the_snapshot_is_dated_sourced_and_prices_every_type_the_shipped_stacks_name(cloud: str) -> None:
    snapshot = load_prices(cloud)
    assert snapshot["date"] == "2026-11-29" and "approximate" in snapshot["source"].lower()
    stacks = [load_stack(p.name[len("Pulumi."):-len(".yaml")], ROOT) for p in (ROOT / "stacks").glob("Pulumi.*.yaml")]
    key = "instances" if cloud == "aws" else "vmSizes"
    for stack in (s for s in stacks if s.cluster.cloud == cloud):
        table = snapshot["regions"][stack.region][key]
        named = [stack.cluster.managers.instance_type, *(t for p in stack.cluster.workers for t in p.instance_type)]
        assert [t for t in named if t not in table] == [], stack.stack
    families = ("t3.", "m5.", "m6i.", "m7i.", "m6g.", "m7g.") if cloud == "aws" else \
        ("Standard_B2s", "Standard_D2s_v5", "Standard_D4as_v5", "Standard_E2s_v5")
    for region in snapshot["regions"].values():
        assert all(any(t.startswith(f) for t in region[key]) for f in families)
        assert all(Decimal(0) < price < Decimal(10) for price in region[key].values())


def test_an_override_file_merges_negotiated_prices_over_the_snapshot(tmp_path: Path) -> None:
    override = tmp_path / "negotiated.yaml"
    override.write_text(yaml.safe_dump({"source": "Acme EDP 2026", "usage": {"logGBPerNodeMonth": 3},
                                        "regions": {"eu-west-1": {"instances": {"m6i.large": 0.0642,
                                                                                "m8i.large": 0.1}}}}))
    merged = load_prices("aws", override)
    snapshot = load_prices("aws")
    region = merged["regions"]["eu-west-1"]
    assert region["instances"]["m6i.large"] == Decimal("0.0642") and region["instances"]["m8i.large"] == Decimal("0.1")
    assert region["instances"]["t3.small"] == snapshot["regions"]["eu-west-1"]["instances"]["t3.small"]
    assert region["natGatewayHour"] == snapshot["regions"]["eu-west-1"]["natGatewayHour"]
    assert merged["usage"]["logGBPerNodeMonth"] == Decimal(3)
    assert merged["usage"]["natGBPerNodeMonth"] == snapshot["usage"]["natGBPerNodeMonth"]
    assert merged["source"].endswith(f"Overridden by {override} (Acme EDP 2026)")
    assert merged["date"] == snapshot["date"]


@pytest.mark.parametrize(("document", "message"), [
    ({"regions": {"eu-west-1": {"natGatewayHours": 0.04}}},
     "regions.eu-west-1.natGatewayHours: unknown key; valid keys here: instances, spotDiscount, ebsGBMonth, "
     "natGatewayHour, natGatewayGB, nlbHour, nlbLcuHour, publicIpv4Hour, kmsKeyMonth, kmsPer10kRequests, "
     "logsIngestGB, logsStoreGBMonth, alarmMonth, customMetricMonth, dashboardMonth, s3GBMonth, ecrGBMonth, "
     "efsStandardGBMonth, efsElasticReadGB, efsElasticWriteGB, efsBackupGBMonth"),
    ({"regions": {"eu-west-1": {"instances": {"m6i.large": "cheap"}}}},
     "regions.eu-west-1.instances.m6i.large = 'cheap': must be a number, 0 or more"),
    ({"usage": {"logGBPerNodeMonth": -1}}, "usage.logGBPerNodeMonth = Decimal('-1'): must be a number, 0 or more"),
    ({"regions": {"eu-west-1": {"instances": 0.1}}},
     "regions.eu-west-1.instances = Decimal('0.1'): must be a mapping like the snapshot's"),
])
def test_a_bad_override_is_one_line_naming_file_key_and_what_is_valid(tmp_path: Path, document: dict[str, Any],
                                                                      message: str) -> None:
    override = tmp_path / "prices.json"
    override.write_text(json.dumps(document))
    with pytest.raises(PriceError) as err:
        load_prices("aws", override)
    assert str(err.value) == f"{override}: {message}"


def test_an_unreadable_override_says_so(tmp_path: Path) -> None:
    with pytest.raises(PriceError, match=r"prices.json: cannot read the price override file: No such file"):
        load_prices("aws", tmp_path / "prices.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises(PriceError, match=r"broken.json: not valid JSON: Expecting property name"):
        load_prices("aws", broken)


# --- real plans, as a user runs them -----------------------------------------


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("Pulumi.yaml", "__main__.py"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "stacks", tmp_path / "stacks")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def cost_json(stack: str, capsys: pytest.CaptureFixture[str], *extra: str) -> dict[str, Any]:
    code = main(["cost", stack, "--json", *extra])
    out = capsys.readouterr()
    assert code == 0, out.err
    return dict(json.loads(out.out))


def test_ten_more_workers_add_what_ten_such_instances_and_their_disks_cost(
        project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = cost_json("prod-aws", capsys)
    path = project / "stacks" / "Pulumi.prod-aws.yaml"
    document = yaml.safe_load(path.read_text())
    general = document["config"]["swarmstack:cluster"]["workers"][0]
    assert (general["instanceType"], general["diskGiB"], general["count"]) == ("m6i.large", 100, 3)
    general["count"] = 13
    path.write_text(yaml.safe_dump(document))
    after = cost_json("prod-aws", capsys)

    snapshot = load_prices("aws")
    region, usage = snapshot["regions"]["eu-west-1"], snapshot["usage"]
    hours = snapshot["hoursPerMonth"]
    machines = 10 * (hours * region["instances"]["m6i.large"] + 100 * region["ebsGBMonth"]["gp3"])

    def by_kind(document: dict[str, Any], kinds: set[str]) -> Decimal:
        return sum((Decimal(str(i["monthly"])) for i in document["items"] if i["kind"] in kinds), Decimal(0))

    machine_kinds = {"instances", "spot instances", "disks"}
    assert by_kind(after, machine_kinds) - by_kind(before, machine_kinds) == machines == Decimal("869.10")
    # What else grows with nodes is the per-node usage the output says it assumes.
    per_node = 10 * (usage["natGBPerNodeMonth"] * region["natGatewayGB"]
                     + usage["storeRequestsPerNodeMonth"] / 10000 * region["kmsPer10kRequests"]
                     + (usage["logGBPerNodeMonth"] + usage["flowLogGBPerNodeMonth"])
                     * (region["logsIngestGB"] + 3 * region["logsStoreGBMonth"]))  # kept 90 days
    assert Decimal(str(after["total"])) - Decimal(str(before["total"])) == machines + per_node
    unchanged = [(i["resource"], i["monthly"]) for i in before["items"] if i["kind"] in {"nat", "load balancer"}
                 and "assumed" not in i["description"]]
    assert unchanged == [(i["resource"], i["monthly"]) for i in after["items"]
                         if i["kind"] in {"nat", "load balancer"} and "assumed" not in i["description"]]


def test_cost_and_plan_agree_and_say_where_prices_come_from(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    document = cost_json("dev-azure", capsys)
    assert document["prices"]["date"] == "2026-11-29"
    assert sum(Decimal(str(i["monthly"])) for i in document["items"]) == Decimal(str(document["total"]))
    kinds = {i["kind"] for i in document["items"]}
    assert {"instances", "disks", "public ip", "load balancer", "key vault", "logs", "storage"} <= kinds
    assert main(["plan", "dev-azure", "--no-policy"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("Estimated cost:")]
    assert lines == [f"Estimated cost: {Decimal(str(document['total'])):,.2f} USD/month (2 nodes; prices of "
                     "2026-11-29, approximate; `swarmstack cost dev-azure` for the items)"]


def test_cost_text_and_a_missing_type_in_a_real_stack(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = project / "stacks" / "Pulumi.dev-aws.yaml"
    document = yaml.safe_load(path.read_text())
    document["config"]["swarmstack:cluster"]["workers"][0]["instanceType"] = "c5.large"
    path.write_text(yaml.safe_dump(document))
    assert main(["cost", "dev-aws"]) == EXIT_CONFIG
    assert capsys.readouterr().err.strip() == (
        "swarmstack/prices/aws.json: no price for c5.large (instances) in eu-west-1 "
        "(key regions.eu-west-1.instances.c5.large); add it in a --prices FILE")
    override = project / "negotiated.json"
    override.write_text(json.dumps({"regions": {"eu-west-1": {"instances": {"c5.large": 0.096}}}}))
    assert main(["cost", "dev-aws", "--prices", str(override)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Monthly estimate for stack dev-aws (aws, eu-west-1): ")
    assert re.search(r"\n  dev-general-asg +70\.08  1 × c5\.large on-demand × 730 h\n", out), out
    assert f"Overridden by {override}" in out and "Prices dated 2026-11-29" in out
