"""The stack config: every shipped stack validates; every mistake gets its exact line."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from swarmstack.config.load import load_stack, read_stack_file, validate
from swarmstack.config.problems import ConfigError

ROOT = Path(__file__).resolve().parents[2]
STACKS = sorted(p.name[len("Pulumi."):-len(".yaml")] for p in (ROOT / "stacks").glob("Pulumi.*.yaml"))


def test_the_four_example_stacks_are_shipped() -> None:
    assert {"dev-aws", "prod-aws", "dev-azure", "prod-azure"} <= set(STACKS)


@pytest.mark.parametrize("stack", STACKS)
def test_every_shipped_stack_validates(stack: str) -> None:
    settings = load_stack(stack, ROOT)
    assert settings.cluster.name
    assert settings.source == f"stacks/Pulumi.{stack}.yaml"


def test_prod_aws_is_what_the_readme_promises() -> None:
    cfg = load_stack("prod-aws", ROOT).cluster
    assert cfg.managers.count == 3 and cfg.network.new is not None
    assert cfg.network.new.zones == 3 and cfg.network.new.nat == "perZone"
    assert [p.spot for p in cfg.workers] == [False, True]
    assert cfg.docker_api.enabled
    assert [(p.port, p.protocol) for p in cfg.load_balancer.ports] == [(80, "tcp"), (443, "tcp")]


def errors(stack: str, mutate: Any) -> list[str]:
    source, config = read_stack_file(stack, ROOT)
    config = copy.deepcopy(config)
    mutate(config["swarmstack:cluster"], config)
    with pytest.raises(ConfigError) as caught:
        validate(stack, source, config)
    return caught.value.lines


P = "stacks/Pulumi.prod-aws.yaml: swarmstack:cluster."


def _set(path: str, value: Any) -> Any:
    """A mutation that sets `a.b[0].c` in the cluster mapping."""
    def mutate(cluster: dict[str, Any], _config: dict[str, Any]) -> None:
        target: Any = cluster
        parts = path.replace("]", "").replace("[", ".").split(".")
        for part in parts[:-1]:
            target = target[int(part)] if part.isdigit() else target.setdefault(part, {})
        last = parts[-1]
        if last.isdigit():
            target[int(last)] = value
        else:
            target[last] = value
    return mutate


BAD = [
    ("managers.count", 2, "managers.count = 2: must be 1, 3, 5 or 7 (an odd count keeps a raft quorum)"),
    ("managers.count", 9, "managers.count = 9: must be 1, 3, 5 or 7 (an odd count keeps a raft quorum)"),
    ("managers.diskGiB", 10, "managers.diskGiB = 10: must be a whole number of GiB from 20 to 1024"),
    ("workers[0].diskGiB", 2048, "workers[0].diskGiB = 2048: must be a whole number of GiB from 20 to 1024"),
    ("workers[0].count", -1, "workers[0].count = -1: must be a whole number from 0 to 1000"),
    ("workers[0].count", 1001, "workers[0].count = 1001: must be a whole number from 0 to 1000"),
    ("managers.instanceType", "m6i_large",
     "managers.instanceType = m6i_large: must be an EC2 instance type such as t3.medium or m6i.large"),
    ("managers.instanceType", "Standard_D2s_v5",
     "managers.instanceType = Standard_D2s_v5: must be an EC2 instance type such as t3.medium or m6i.large"),
    ("network.new.cidr", "10.20.0.1/16", "network.new.cidr = 10.20.0.1/16: host bits are set; the network is 10.20.0.0/16"),
    ("network.new.cidr", "10.20.0.0/8", "network.new.cidr = 10.20.0.0/8: host bits are set; the network is 10.0.0.0/8"),
    ("network.new.cidr", "10.0.0.0/8", "network.new.cidr = 10.0.0.0/8: the prefix must be from /16 to /24"),
    ("network.new.cidr", "10.20.0.0/26", "network.new.cidr = 10.20.0.0/26: the prefix must be from /16 to /24"),
    ("network.new.cidr", "10.300.0.0/16",
     "network.new.cidr = 10.300.0.0/16: not an IPv4 CIDR; write it as a.b.c.d/n, for example 10.20.0.0/16"),
    ("network.new.cidr", "8.8.0.0/16",
     "network.new.cidr = 8.8.0.0/16: must be a private range (10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16)"),
    ("network.new.zones", 2, "network.new.zones = 2: 3 managers need at least 3 zones, so that losing one zone "
     "keeps a raft quorum: set zones to 3 or more (or managers.count to 1)"),
    ("network.new.nat", "always", "network.new.nat = always: must be none, single or perZone"),
    ("loadBalancer.ports[0].port", 2377,
     "loadBalancer.ports[0].port = 2377: is swarm cluster management; publish services on another port"),
    ("loadBalancer.ports[0].port", 2375,
     "loadBalancer.ports[0].port = 2375: is the plaintext Docker API; publish services on another port"),
    ("loadBalancer.ports[0].port", 2376,
     "loadBalancer.ports[0].port = 2376: is the TLS Docker API; publish services on another port"),
    ("loadBalancer.ports[0].port", 7946,
     "loadBalancer.ports[0].port = 7946: is swarm node gossip; publish services on another port"),
    ("loadBalancer.ports[0].port", 4789,
     "loadBalancer.ports[0].port = 4789: is the swarm overlay (VXLAN); publish services on another port"),
    ("loadBalancer.ports[1].port", 80, "loadBalancer.ports[1] = 80/tcp: is published twice; list each port and protocol once"),
    ("loadBalancer.ports[0].port", 70000, "loadBalancer.ports[0].port = 70000: must be a port number from 1 to 65535"),
    ("access.adminCidrs", ["0.0.0.0/0"], "access.adminCidrs[0] = 0.0.0.0/0: opens the TLS Docker API to the whole "
     "internet; list your admins' own ranges"),
    ("access.adminCidrs", ["::/0"], "access.adminCidrs[0] = ::/0: opens the TLS Docker API to the whole internet; "
     "list your admins' own ranges"),
    ("access.adminCidrs", [], "access.adminCidrs = []: the TLS Docker API is on but nobody may reach it; "
     "list the admins' address ranges"),
    ("logging.retentionDays", 10, "logging.retentionDays = 10: CloudWatch Logs keeps logs for one of 1, 3, 5, 7, 14, "
     "30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653 days"),
    ("prune.schedule", "61 * * * *", "prune.schedule = 61 * * * *: minute 61 is outside 0-59"),
    ("prune.schedule", "* * *", "prune.schedule = * * *: must be 5 cron fields 'minute hour day-of-month month "
     "day-of-week', got 3"),
    ("prune.schedule", "0 3 1 * MON", "prune.schedule = 0 3 1 * MON: set day-of-month or day-of-week, not both "
     "(clouds disagree on combining them)"),
    ("prune.schedule", "0 */6 * * *", "prune.schedule = 0 */6 * * *: on AWS it runs at hours 0,6,12,18; State "
     "Manager runs associations only every 30 minutes, every 1, 2, 4, 8 or 12 hours, or every day or week at a set "
     "time (no month or day of the month; days of the week as one range such as MON-FRI), e.g. 42 1 * * *, "
     "0 */4 * * * or 30 2 * * 1-5"),
    ("prune.schedule", "0 3 * * 1,3,5", "prune.schedule = 0 3 * * 1,3,5: on AWS its days of the week (MON,WED,FRI) "
     "are not one range; State Manager runs associations only every 30 minutes, every 1, 2, 4, 8 or 12 hours, or "
     "every day or week at a set time (no month or day of the month; days of the week as one range such as "
     "MON-FRI), e.g. 42 1 * * *, 0 */4 * * * or 30 2 * * 1-5"),
    ("prune.schedule", "15 4 1 * *", "prune.schedule = 15 4 1 * *: on AWS it names days of the month (1); State "
     "Manager runs associations only every 30 minutes, every 1, 2, 4, 8 or 12 hours, or every day or week at a set "
     "time (no month or day of the month; days of the week as one range such as MON-FRI), e.g. 42 1 * * *, "
     "0 */4 * * * or 30 2 * * 1-5"),
    ("prune.until", "yesterday", "prune.until = yesterday: must be a duration such as 24h, 90m or 1h30m"),
    ("tags.owner", "SWMTKN-1-3pu6hszjas19xyp7ghgosyx9k8atbfcr8p2is99znpy26u2lkl-1awxwuwd3z9j1z3puu7rcgdbx",
     "tags.owner = SWMTKN-1-3pu…: looks like a swarm join token; plain config is not for secrets: "
     "use `pulumi config set --secret` or the cloud's secret store"),
    ("tags.deployer", "AKIAIOSFODNN7EXAMPLE", "tags.deployer = AKIAIOSFODNN…: looks like an AWS access key id; plain "
     "config is not for secrets: use `pulumi config set --secret` or the cloud's secret store"),
    ("dockerApi.caCertPem", "-----BEGIN EC PRIVATE KEY-----\nMHc\n-----END EC PRIVATE KEY-----",
     "dockerApi.caCertPem = -----BEGIN E…: looks like a private key; plain config is not for secrets: "
     "use `pulumi config set --secret` or the cloud's secret store"),
    ("managers.spot", True, "managers.spot = true: unknown key; valid keys here: count, instanceType, diskGiB"),
    ("workers[0].colour", "blue", "workers[0].colour = blue: unknown key; valid keys here: name, count, instanceType, "
     "diskGiB, spot, labels"),
    ("workers[1].name", "general", "workers[1].name = general: another pool has this name; names must be unique"),
    ("workers[0].instanceType", ["m6i.large", "m5.large"], "workers[0].instanceType = [\"m6i.large\", \"m5.large\"]: "
     "several instance types are only used by spot pools; give one or set spot: true"),
    ("cloud", "gcp", "cloud = gcp: must be aws or azure"),
    ("name", "Prod_1", "name = Prod_1: must be lowercase letters, digits and dashes, starting with a letter"),
    ("image.id", "ubuntu", "image.id = ubuntu: must be an AMI id such as ami-0123456789abcdef0"),
    ("workers[1].instanceType", ["m6i.large", "m7g.large"], "workers[1].instanceType = [\"m6i.large\", "
     "\"m7g.large\"]: mixes x86_64 and arm64 (Graviton) types; one image cannot boot both: keep one "
     "architecture per pool"),
    ("tags.Name", "x", "tags.Name = x: is set by swarmstack itself; choose another tag key"),
    ("tags.swarmstack:stack", "mine", "tags.swarmstack:stack = mine: is set by swarmstack itself; choose another "
     "tag key"),
    ("alarms.email", ["ops@example.com", "ops"], "alarms.email[1] = ops: is not an email address such as "
     "ops@example.com"),
    ("alarms.https", ["http://hooks.example.com/a"], "alarms.https[0] = http://hooks.example.com/a: must be an "
     "https:// URL; alarms are not sent over plain HTTP"),
    ("alarms.sms", ["+15550100"], "alarms.sms = [\"+15550100\"]: unknown key; valid keys here: email, https"),
    ("backup.retentionDays", 0, "backup.retentionDays = 0: must be a whole number of days from 1 to 3650"),
    ("backup.retentionDays", 3651, "backup.retentionDays = 3651: must be a whole number of days from 1 to 3650"),
    ("backup.retentionDays", "14", "backup.retentionDays = 14: must be a whole number of days from 1 to 3650"),
    ("backup.schedule", "17 3 * *", "backup.schedule = 17 3 * *: must be 5 cron fields 'minute hour day-of-month "
     "month day-of-week', got 4"),
    ("backup.schedule", "17 25 * * *", "backup.schedule = 17 25 * * *: hour 25 is outside 0-23"),
    ("backup.enabled", 3, "backup.enabled = 3: must be true or false (unset: on for production stacks)"),
    ("backup.bucket", "mine", "backup.bucket = mine: unknown key; valid keys here: enabled, schedule, retentionDays"),
    ("metrics.diskAlarmPercent", 100, "metrics.diskAlarmPercent = 100: must be a whole percentage from 50 to 99"),
    ("metrics.diskAlarmPercent", "80", "metrics.diskAlarmPercent = 80: must be a whole percentage from 50 to 99"),
    ("metrics.memoryAlarmPercent", 20, "metrics.memoryAlarmPercent = 20: must be a whole percentage from 50 to 99"),
    ("metrics.cpu", True, "metrics.cpu = true: unknown key; valid keys here: enabled, diskAlarmPercent, "
     "memoryAlarmPercent"),
]


@pytest.mark.parametrize(("path", "value", "expected"), BAD, ids=[f"{b[0]}={b[1]}" for b in BAD])
def test_a_bad_value_gets_its_exact_line(path: str, value: Any, expected: str) -> None:
    assert P + expected in errors("prod-aws", _set(path, value))


@pytest.mark.parametrize(("production", "enabled", "expected"), [
    (True, None, True), (False, None, False), (True, False, False), (False, True, True)])
def test_backups_are_on_by_default_in_production_only(production: bool, enabled: bool | None,
                                                      expected: bool) -> None:
    source, config = read_stack_file("prod-aws", ROOT)
    config = copy.deepcopy(config)
    cluster = config["swarmstack:cluster"]
    cluster["production"] = production
    cluster["backup"] = {} if enabled is None else {"enabled": enabled}
    cfg = validate("prod-aws", source, config).cluster
    assert cfg.backup_enabled is expected
    assert (cfg.backup.schedule, cfg.backup.retention_days) == ("17 3 * * *", 14)


def test_the_production_stacks_show_their_backups() -> None:
    for stack in ("prod-aws", "prod-azure"):
        cfg = load_stack(stack, ROOT).cluster
        assert cfg.backup.enabled is True and cfg.backup_enabled
    for stack in ("dev-aws", "dev-azure"):
        assert not load_stack(stack, ROOT).cluster.backup_enabled


def test_many_problems_are_all_reported_one_line_each() -> None:
    def mutate(cluster: dict[str, Any], _config: dict[str, Any]) -> None:
        _set("network.new.cidr", "10.20.0.1/16")(cluster, _config)
        _set("access.adminCidrs", ["0.0.0.0/0"])(cluster, _config)
        _set("logging.retentionDays", 8)(cluster, _config)
    lines = errors("prod-aws", mutate)
    assert len(lines) == 3
    assert all(line.startswith(P) for line in lines)


def test_a_pinned_ami_needs_one_architecture() -> None:
    def mutate(cluster: dict[str, Any], _config: dict[str, Any]) -> None:
        cluster["image"] = {"id": "ami-0123456789abcdef0"}
        cluster["workers"][0]["instanceType"] = "m7g.large"
    assert errors("prod-aws", mutate) == [
        P + "image.id = ami-0123456789abcdef0: one pinned AMI serves every group, but the instance types mix "
        "x86_64 and arm64 (Graviton): use one architecture, or leave image.id unset"]


def test_worker_total_over_1000_is_refused() -> None:
    def mutate(cluster: dict[str, Any], _config: dict[str, Any]) -> None:
        cluster["workers"][0]["count"] = 600
        cluster["workers"][1]["count"] = 500
    assert errors("prod-aws", mutate) == [P + "workers = 1100 workers in all: all pools together may have at most 1000 workers"]


def test_both_or_neither_network_is_refused() -> None:
    def both(cluster: dict[str, Any], _config: dict[str, Any]) -> None:
        cluster["network"]["existing"] = {"networkId": "vpc-0123456789abcdef0",
                                          "privateSubnetIds": ["subnet-0123456789abcdef0"]}
    assert errors("prod-aws", both) == [P + 'network = {"new": true, "existing": true}: set exactly one of `new` '
                                        "(a network swarmstack creates) or `existing` (network id and subnet ids)"]


def test_existing_network_needs_three_subnets_for_three_managers() -> None:
    def mutate(cluster: dict[str, Any], _config: dict[str, Any]) -> None:
        cluster["network"] = {"existing": {"networkId": "vpc-0123456789abcdef0",
                                           "privateSubnetIds": ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"],
                                           "publicSubnetIds": ["subnet-0123456789abcdef2"]}}
    assert errors("prod-aws", mutate) == [
        P + 'network.existing.privateSubnetIds = ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"]: '
        "3 managers need subnets in at least 3 zones, so that losing one zone keeps a raft quorum: "
        "list one subnet per zone, 3 or more"]


def test_ssh_open_to_the_world_is_refused_even_without_the_api() -> None:
    def mutate(cluster: dict[str, Any], _config: dict[str, Any]) -> None:
        cluster["dockerApi"] = {"enabled": False}
        cluster["access"] = {"adminCidrs": ["0.0.0.0/0"], "sshKeyName": "ops"}
    assert errors("prod-aws", mutate) == [
        P + "access.adminCidrs[0] = 0.0.0.0/0: opens SSH to the whole internet; list your admins' own ranges"]


def test_the_region_is_required_and_named_by_its_key() -> None:
    def mutate(_cluster: dict[str, Any], config: dict[str, Any]) -> None:
        del config["aws:region"]
    assert errors("prod-aws", mutate) == [
        "stacks/Pulumi.prod-aws.yaml: aws:region = (missing): a aws stack needs its region: "
        "pulumi config set aws:region <region>"]



@pytest.mark.parametrize(("region", "why"), [
    ("eu-west1", "not an AWS region name (like eu-west-1 or us-gov-west-1)"),
    ("EU-WEST-1", "not an AWS region name (like eu-west-1 or us-gov-west-1)"),
    ("cn-north-1", "in the aws-cn partition (amazonaws.com.cn)"),
    ("eusc-de-east-1", "in the aws-eusc partition (amazonaws.eu)"),
    ("us-isob-east-1", "in an isolated partition"),
])
def test_an_aws_region_outside_the_partitions_swarmstack_addresses_is_refused(region: str, why: str) -> None:
    """The nodes call https://<service>.<region>.amazonaws.com, and the roles' conditions
    name `ssm.<region>.amazonaws.com`: a region of another partition would deploy nodes
    that never reach their store. Refused before anything is created."""
    def mutate(_cluster: dict[str, Any], config: dict[str, Any]) -> None:
        config["aws:region"] = region
    assert errors("prod-aws", mutate) == [
        f"stacks/Pulumi.prod-aws.yaml: aws:region = {region}: {why}; swarmstack deploys to the regions "
        "of the aws and aws-us-gov partitions, whose endpoints end in amazonaws.com"]


def test_a_govcloud_region_is_taken() -> None:
    source, config = read_stack_file("prod-aws", ROOT)
    config = {**copy.deepcopy(config), "aws:region": "us-gov-west-1"}
    assert validate("prod-aws", source, config).region == "us-gov-west-1"

def test_an_unknown_swarmstack_key_is_refused() -> None:
    def mutate(_cluster: dict[str, Any], config: dict[str, Any]) -> None:
        config["swarmstack:clustr"] = {"cloud": "aws"}
    lines = errors("prod-aws", mutate)
    assert lines == ['stacks/Pulumi.prod-aws.yaml: swarmstack:clustr = {"cloud": "aws"}: unknown key; '
                     "swarmstack reads swarmstack:cluster and swarmstack:dockerApiCaKey"]


def test_azure_takes_any_prune_schedule_its_timer_can_run() -> None:
    source, config = read_stack_file("prod-azure", ROOT)
    config = copy.deepcopy(config)
    config["swarmstack:cluster"]["prune"] = {"schedule": "0 */6 1,15 * *"}
    assert validate("prod-azure", source, config).cluster.prune.schedule == "0 */6 1,15 * *"


def test_azure_checks_its_own_sizes_and_retention() -> None:
    source, config = read_stack_file("prod-azure", ROOT)
    config = copy.deepcopy(config)
    config["swarmstack:cluster"]["managers"]["instanceType"] = "m6i.large"
    config["swarmstack:cluster"]["logging"]["retentionDays"] = 7
    with pytest.raises(ConfigError) as caught:
        validate("prod-azure", source, config)
    prefix = "stacks/Pulumi.prod-azure.yaml: swarmstack:cluster."
    assert caught.value.lines == [
        prefix + "managers.instanceType = m6i.large: must be an Azure VM size such as Standard_D2s_v5",
        prefix + "logging.retentionDays = 7: Log Analytics keeps logs for 30 to 730 days",
    ]


def test_azure_metrics_need_the_logging_workspace() -> None:
    source, config = read_stack_file("prod-azure", ROOT)
    config = copy.deepcopy(config)
    config["swarmstack:cluster"]["logging"] = {"enabled": False}
    config["swarmstack:cluster"]["metrics"] = {"enabled": True}
    with pytest.raises(ConfigError) as caught:
        validate("prod-azure", source, config)
    assert caught.value.lines == [
        "stacks/Pulumi.prod-azure.yaml: swarmstack:cluster.metrics.enabled = true: on Azure the metrics go to the "
        "Log Analytics workspace of `logging`: set logging.enabled to true, or metrics.enabled to false"]
    config["swarmstack:cluster"]["metrics"] = {"enabled": False}
    validate("prod-azure", source, config)


def test_alarm_endpoints_are_accepted_on_both_clouds() -> None:
    for stack in ("prod-aws", "prod-azure"):
        source, config = read_stack_file(stack, ROOT)
        config = copy.deepcopy(config)
        config["swarmstack:cluster"]["alarms"] = {"email": ["ops@example.com"],
                                                  "https": ["https://hooks.example.com/a"]}
        cluster = validate(stack, source, config).cluster
        assert cluster.alarms.email == ["ops@example.com"] and cluster.alarms.https == ["https://hooks.example.com/a"]


def test_a_missing_stack_file_names_the_stacks_there() -> None:
    with pytest.raises(ConfigError) as caught:
        load_stack("nope", ROOT)
    assert caught.value.lines[0].startswith("stacks/Pulumi.nope.yaml: swarmstack:cluster = (missing): no such stack "
                                            "file; stacks here: ")
    assert "prod-aws" in caught.value.lines[0]


AZ = "stacks/Pulumi.prod-azure.yaml: swarmstack:cluster."
VNET = "/subscriptions/0/resourceGroups/net/providers/Microsoft.Network/virtualNetworks/core"


def test_azure_existing_vnet_counts_zones_not_subnets() -> None:
    source, config = read_stack_file("prod-azure", ROOT)
    config = copy.deepcopy(config)
    config["swarmstack:cluster"]["network"] = {"existing": {"networkId": VNET, "privateSubnetIds": [VNET + "/subnets/a"]}}
    assert validate("prod-azure", source, config).cluster.zone_count == 3
    config["swarmstack:cluster"]["network"]["existing"]["zones"] = 2
    config["swarmstack:cluster"]["network"]["existing"]["publicSubnetIds"] = [VNET + "/subnets/b"]
    with pytest.raises(ConfigError) as caught:
        validate("prod-azure", source, config)
    assert caught.value.lines == [
        AZ + 'network.existing.publicSubnetIds = ["' + VNET + '/subnets/b"]: is for AWS; an Azure load balancer '
        "needs no subnet of its own: remove it",
        AZ + "network.existing.zones = 2: 3 managers need at least 3 zones, so that losing one zone keeps a raft "
        "quorum: set zones to 3 (or managers.count to 1)",
    ]


def test_azure_nat_per_zone_is_refused() -> None:
    source, config = read_stack_file("prod-azure", ROOT)
    config = copy.deepcopy(config)
    config["swarmstack:cluster"]["network"]["new"]["nat"] = "perZone"
    with pytest.raises(ConfigError) as caught:
        validate("prod-azure", source, config)
    assert caught.value.lines == [AZ + "network.new.nat = perZone: an Azure subnet takes one NAT gateway, and "
                                  "subnets span every zone: use single (or none)"]
