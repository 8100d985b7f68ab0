"""Shared volumes on AWS, built by the real program in moto: an encrypted, backed-up EFS file
system, a mount target in each node subnet, NFS open to the node groups only; and the
engine refuses what EFS refuses (a second mount target in a zone, groups of another VPC)."""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import pytest
from shipped import graph_of

from components.aws.volumes import MOUNT_OPTIONS, NFS_PORT, nfs_rules, volume_create_command
from swarmstack.engine.aws import AwsBackend, check_file_system
from swarmstack.engine.graph import Graph
from swarmstack.engine.mocks import EngineError
from swarmstack.engine.run import backends_for, run_stack
from tests.unit.test_aws_cluster import ROOT, shipped


@dataclass
class Shared:
    graph: Graph
    file_systems: list[dict[str, Any]]
    backup: dict[str, Any]
    mount_targets: list[dict[str, Any]]
    target_groups: dict[str, list[str]]
    rules: list[dict[str, Any]]
    subnets: dict[str, dict[str, Any]]
    aliases: dict[str, str]


def deploy_shared(stack: str, drop_workers: bool = False) -> Shared:
    config = shipped(stack)
    config["swarmstack:cluster"]["sharedVolumes"] = {"enabled": True}
    if drop_workers:
        config["swarmstack:cluster"]["workers"] = []
    with ExitStack() as exits:
        backends = backends_for(config, exits)
        backend = backends["aws"]
        assert isinstance(backend, AwsBackend)
        graph = run_stack(stack, config, ROOT, backends=backends)
        efs, ec2, kms = backend.client("efs"), backend.ec2, backend.client("kms")
        systems = efs.describe_file_systems()["FileSystems"]
        fsid = systems[0]["FileSystemId"]
        targets = efs.describe_mount_targets(FileSystemId=fsid)["MountTargets"]
        return Shared(
            graph=graph, file_systems=systems,
            backup=efs.describe_backup_policy(FileSystemId=fsid)["BackupPolicy"],
            mount_targets=targets,
            target_groups={t["MountTargetId"]: efs.describe_mount_target_security_groups(
                MountTargetId=t["MountTargetId"])["SecurityGroups"] for t in targets},
            rules=ec2.describe_security_group_rules()["SecurityGroupRules"],
            subnets={s["SubnetId"]: s for s in ec2.describe_subnets()["Subnets"]},
            aliases={a["AliasName"]: kms.describe_key(KeyId=a["TargetKeyId"])["KeyMetadata"]["Arn"]
                     for a in kms.list_aliases()["Aliases"] if a["AliasName"].startswith("alias/swarmstack/")})


@pytest.fixture(scope="module")
def prod() -> Shared:
    return deploy_shared("prod-aws")


def test_one_file_system_encrypted_with_the_cluster_key_and_backed_up(prod: Shared) -> None:
    [fs] = prod.file_systems
    assert fs["Encrypted"] is True
    assert fs["KmsKeyId"] == prod.aliases["alias/swarmstack/prod"]
    assert fs["ThroughputMode"] == "elastic" and fs["PerformanceMode"] == "generalPurpose"
    assert prod.backup == {"Status": "ENABLED"}


def test_a_mount_target_in_each_node_subnet_one_per_zone(prod: Shared) -> None:
    node_subnets = set(prod.graph.outputs["nodeSubnetIds"])
    assert len(node_subnets) == 3
    assert {t["SubnetId"] for t in prod.mount_targets} == node_subnets
    assert len({t["AvailabilityZoneName"] for t in prod.mount_targets}) == 3
    assert all(prod.subnets[t["SubnetId"]]["MapPublicIpOnLaunch"] is False for t in prod.mount_targets)


def _nfs_group(shared: Shared) -> str:
    [group] = {g for groups in shared.target_groups.values() for g in groups}
    return group


def test_nfs_reaches_the_mount_targets_from_the_node_groups_only(prod: Shared) -> None:
    group = _nfs_group(prod)
    nodes = prod.graph.outputs["securityGroupIds"]
    ingress = [r for r in prod.rules if r["GroupId"] == group and not r["IsEgress"]]
    assert sorted((r["IpProtocol"], r["FromPort"], r["ToPort"], r["ReferencedGroupInfo"]["GroupId"])
                  for r in ingress) == sorted(
        ("tcp", NFS_PORT, NFS_PORT, nodes[role]) for role in ("managers", "workers"))
    assert not any(r.get("CidrIpv4") or r.get("CidrIpv6") for r in ingress)
    assert not [r for r in prod.rules if r["GroupId"] == group and r["IsEgress"]]  # the provider drops AWS's default


def test_without_workers_only_the_managers_mount() -> None:
    shared = deploy_shared("dev-aws", drop_workers=True)
    group = _nfs_group(shared)
    ingress = [r for r in shared.rules if r["GroupId"] == group and not r["IsEgress"]]
    assert [r["ReferencedGroupInfo"]["GroupId"] for r in ingress] == [
        shared.graph.outputs["securityGroupIds"]["managers"]]
    assert len(shared.mount_targets) == 2  # dev-aws: two zones


def test_the_outputs_say_how_to_mount_it(prod: Shared) -> None:
    out = prod.graph.outputs["sharedVolumes"]
    fsid = prod.file_systems[0]["FileSystemId"]
    assert out["fileSystemId"] == fsid
    assert out["address"] == f"{fsid}.efs.eu-west-1.amazonaws.com"
    assert out["device"] == ":/"
    assert out["volumeCreate"] == volume_create_command(out["address"])


def test_the_volume_command_uses_the_kernel_client_with_efs_mount_options() -> None:
    command = volume_create_command("fs-1.efs.eu-west-1.amazonaws.com", "data")
    assert command == ("docker volume create --driver local --opt type=nfs --opt o=addr=fs-1.efs.eu-west-1."
                       "amazonaws.com,nfsvers=4.1,rsize=1048576,wsize=1048576,hard,timeo=600,retrans=2,noresvport "
                       "--opt device=:/ data")
    assert "tls" not in MOUNT_OPTIONS.split(",") and "iam" not in MOUNT_OPTIONS.split(",")


def test_nfs_rules_follow_the_worker_pools() -> None:
    assert [r.peer_group for r in nfs_rules(True)] == ["managers", "workers"]
    assert [r.peer_group for r in nfs_rules(False)] == ["managers"]


def test_shipped_stacks_have_no_file_system() -> None:
    graph = graph_of("dev-aws")  # the shipped stack, built once per test run (tests/unit/shipped.py)
    assert not graph.of_type("aws:efs/fileSystem:FileSystem") and "sharedVolumes" not in graph.outputs


# ------------------------------------------------------------------ the engine is as strict as EFS

@pytest.fixture
def backend() -> Any:
    with AwsBackend("eu-west-1") as aws:
        yield aws


def _vpc_with_zones(aws: AwsBackend, cidr: str) -> tuple[str, list[str]]:
    vpc, _ = aws.create("aws:ec2/vpc:Vpc", f"vpc-{cidr}", {"cidrBlock": cidr})
    subnets = []
    base = cidr.split(".")
    for index, zone in enumerate(("eu-west-1a", "eu-west-1a", "eu-west-1b")):
        sid, _ = aws.create("aws:ec2/subnet:Subnet", f"s-{cidr}-{index}", {
            "vpcId": vpc, "cidrBlock": f"{base[0]}.{base[1]}.{index}.0/24", "availabilityZone": zone})
        subnets.append(sid)
    return vpc, subnets


def test_the_engine_refuses_a_second_mount_target_in_a_zone(backend: AwsBackend) -> None:
    vpc, subnets = _vpc_with_zones(backend, "10.1.0.0/16")
    group, _ = backend.create("aws:ec2/securityGroup:SecurityGroup", "nfs", {"name": "nfs", "vpcId": vpc})
    fs, _ = backend.create("aws:efs/fileSystem:FileSystem", "fs", {"encrypted": True})
    backend.create("aws:efs/mountTarget:MountTarget", "a", {"fileSystemId": fs, "subnetId": subnets[0],
                                                            "securityGroups": [group]})
    with pytest.raises(EngineError, match="MountTargetConflict"):
        backend.create("aws:efs/mountTarget:MountTarget", "a2", {"fileSystemId": fs, "subnetId": subnets[1],
                                                                 "securityGroups": [group]})
    backend.create("aws:efs/mountTarget:MountTarget", "b", {"fileSystemId": fs, "subnetId": subnets[2],
                                                            "securityGroups": [group]})


def test_the_engine_refuses_a_mount_target_group_of_another_vpc(backend: AwsBackend) -> None:
    _vpc, subnets = _vpc_with_zones(backend, "10.1.0.0/16")
    other, _ = backend.create("aws:ec2/vpc:Vpc", "other", {"cidrBlock": "10.2.0.0/16"})
    group, _ = backend.create("aws:ec2/securityGroup:SecurityGroup", "elsewhere", {"name": "x", "vpcId": other})
    fs, _ = backend.create("aws:efs/fileSystem:FileSystem", "fs", {})
    with pytest.raises(EngineError, match=f"{group} is in {other}"):
        backend.create("aws:efs/mountTarget:MountTarget", "a", {"fileSystemId": fs, "subnetId": subnets[0],
                                                                "securityGroups": [group]})
    with pytest.raises(EngineError, match="give 1 to 5 security groups, got 0"):
        backend.create("aws:efs/mountTarget:MountTarget", "a", {"fileSystemId": fs, "subnetId": subnets[0]})


def test_the_engine_refuses_a_missing_key_and_a_bad_backup_status(backend: AwsBackend) -> None:
    with pytest.raises(EngineError, match="NotFoundException"):
        backend.create("aws:efs/fileSystem:FileSystem", "fs", {
            "encrypted": True, "kmsKeyId": "arn:aws:kms:eu-west-1:123456789012:key/00000000-0000-0000-0000-000000000000"})
    fs, _ = backend.create("aws:efs/fileSystem:FileSystem", "fs2", {"encrypted": True})
    with pytest.raises(EngineError, match="status must be ENABLED or DISABLED, got 'ON'"):
        backend.create("aws:efs/backupPolicy:BackupPolicy", "b", {"fileSystemId": fs, "backupPolicy": {"status": "ON"}})


@pytest.mark.parametrize(("inputs", "problem"), [
    ({"kmsKeyId": "k"}, "kmsKeyId needs encrypted: true"),
    ({"throughputMode": "elastic", "performanceMode": "maxIO"}, "elastic throughput needs performanceMode generalPurpose"),
    ({"throughputMode": "provisioned"}, "provisionedThroughputInMibps is given with, and only with, throughputMode "
                                        "provisioned"),
    ({"throughputMode": "fast"}, "throughputMode must be one of bursting, provisioned, elastic, got 'fast'"),
    ({"encrypted": True, "throughputMode": "elastic"}, None),
])
def test_file_system_settings_are_checked_as_efs_checks_them(inputs: dict[str, Any], problem: str | None) -> None:
    assert check_file_system(inputs) == problem


# ------------------------------------------------------------------ the policy pack over the real program

def test_the_pack_passes_the_shared_volumes_and_its_rules_bite(prod: Shared) -> None:
    import copy

    from swarmstack.policy import evaluate

    assert [f for f in evaluate(prod.graph) if f.level == "mandatory"] == []
    preview = evaluate(prod.graph, preview=True)
    assert [f for f in preview if f.level == "mandatory" and not f.message.startswith("can't run policy")] == []
    broken = copy.deepcopy(prod.graph)
    [fs] = broken.of_type("aws:efs/fileSystem:FileSystem")
    fs.outputs["encrypted"] = fs.inputs["encrypted"] = False
    [rule] = [r for r in broken.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
              if r.name.endswith("in-workers-tcp-2049")]
    for props in (rule.inputs, rule.outputs):
        props.pop("referencedSecurityGroupId")
        props["cidrIpv4"] = "0.0.0.0/0"
    hit = {f.rule for f in evaluate(broken) if f.level == "mandatory"}
    assert {"efs-encrypted", "nfs-not-open-to-cidrs"} <= hit


def test_the_estimate_prices_the_file_system_and_the_plan_shows_it(prod: Shared) -> None:
    from decimal import Decimal

    from swarmstack.cost import estimate
    from swarmstack.plan import render_text
    from swarmstack.prices import load_prices

    items = [i for i in estimate(prod.graph, "eu-west-1", load_prices("aws")).items
             if i.resource == "prod-volumes-fs"]
    assert [(i.quantity, i.unit_price, i.monthly) for i in items] == [
        (Decimal(10), Decimal("0.33"), Decimal("3.30")), (Decimal(10), Decimal("0.055"), Decimal("0.55")),
        (Decimal(20), Decimal("0.03"), Decimal("0.60")), (Decimal(5), Decimal("0.06"), Decimal("0.30"))]
    text = render_text(prod.graph, "eu-west-1")
    assert "sharedVolumes" in text and "encrypted=true" in text.replace(" ", "").replace(":", "=")


def test_every_node_group_is_deleted_before_the_mount_targets(prod: Shared) -> None:
    """A node whose NFS server vanished first would hang on its hard mounts while it drains."""
    groups = prod.graph.of_type("aws:autoscaling/group:Group")
    needed = [*prod.graph.of_type("aws:efs/mountTarget:MountTarget"),
              *[r for r in prod.graph.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
                if r.name.startswith("prod-volumes-in-")]]
    assert groups and len(needed) == 5
    for group in groups:
        for resource in needed:
            assert prod.graph.depends_on(group.urn, resource.urn), (group.name, resource.name)
