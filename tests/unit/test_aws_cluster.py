"""The AWS cluster, built by the real program in moto, for every config family.

Each family is run once (module fixtures); the tests then read what moto holds,
through boto3, not only what the program asked for.
"""

from __future__ import annotations

import base64
import copy
import datetime
import fnmatch
import gzip
import ipaddress
import json
import re
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from components.aws.identity import UNSCOPABLE_ACTIONS
from components.aws.nodes import architecture
from components.common.managers import quorum
from swarmstack.config.cron import parse_cron, to_aws
from swarmstack.config.load import read_stack_file, validate
from swarmstack.engine.aws import AwsBackend
from swarmstack.engine.graph import Graph
from swarmstack.engine.run import backends_for, run_stack

ROOT = Path(__file__).resolve().parents[2]
SWARM_PORTS = {("tcp", 2377), ("tcp", 7946), ("udp", 7946), ("udp", 4789), ("50", -1)}


@dataclass
class Deployed:
    """One run of the program: the stack's config, its graph and what moto holds after it."""

    name: str
    config: dict[str, Any]
    graph: Graph
    aws: dict[str, Any]

    @property
    def cluster(self) -> Any:
        return validate(self.name, "test", self.config).cluster


def snapshot(backend: AwsBackend) -> dict[str, Any]:
    """What moto holds, read back through the AWS APIs."""
    ec2, asg, elb = backend.ec2, backend.client("autoscaling"), backend.client("elbv2")
    iam, logs, ssm = backend.client("iam"), backend.client("logs"), backend.client("ssm")
    default_vpcs = {v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"] if v.get("IsDefault")}
    groups = [g for g in ec2.describe_security_groups()["SecurityGroups"] if g["VpcId"] not in default_vpcs]
    group_ids = {g["GroupId"] for g in groups}
    templates = {}
    for template in ec2.describe_launch_templates()["LaunchTemplates"]:
        versions = ec2.describe_launch_template_versions(LaunchTemplateId=template["LaunchTemplateId"])
        templates[template["LaunchTemplateId"]] = versions["LaunchTemplateVersions"][0]["LaunchTemplateData"]
    auto = asg.describe_auto_scaling_groups()["AutoScalingGroups"]
    roles = {}
    for role in iam.list_roles()["Roles"]:
        name = role["RoleName"]
        inline = {p: iam.get_role_policy(RoleName=name, PolicyName=p)["PolicyDocument"]
                  for p in iam.list_role_policies(RoleName=name)["PolicyNames"]}
        attached = [p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]]
        roles[name] = {"inline": inline, "attached": attached, "tags": role.get("Tags", [])}
    balancers = elb.describe_load_balancers()["LoadBalancers"]
    listeners = [listener for lb in balancers
                 for listener in elb.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]]
    return {
        "vpcs": ec2.describe_vpcs()["Vpcs"],
        "nats": [n for n in ec2.describe_nat_gateways()["NatGateways"] if n["State"] != "deleted"],
        "route_tables": ec2.describe_route_tables()["RouteTables"],
        "subnets": {s["SubnetId"]: s for s in ec2.describe_subnets()["Subnets"]},
        "groups": {g["GroupId"]: g for g in groups},
        "rules": [r for r in ec2.describe_security_group_rules()["SecurityGroupRules"] if r["GroupId"] in group_ids],
        "images": {i["ImageId"]: i for i in ec2.describe_images(
            ImageIds=sorted({t["ImageId"] for t in templates.values()}))["Images"]} if templates else {},
        "templates": templates,
        "asgs": {g["AutoScalingGroupName"]: g for g in auto},
        "hooks": {g["AutoScalingGroupName"]: asg.describe_lifecycle_hooks(
            AutoScalingGroupName=g["AutoScalingGroupName"])["LifecycleHooks"] for g in auto},
        "target_groups_of": {g["AutoScalingGroupName"]: [t["LoadBalancerTargetGroupARN"] for t in
                             asg.describe_load_balancer_target_groups(
                                 AutoScalingGroupName=g["AutoScalingGroupName"])["LoadBalancerTargetGroups"]]
                             for g in auto},
        "refresh": dict(backend.state.get("instance_refresh", {})),
        "balancers": balancers,
        "lb_attributes": {lb["LoadBalancerArn"]: {a["Key"]: a["Value"] for a in elb.describe_load_balancer_attributes(
            LoadBalancerArn=lb["LoadBalancerArn"])["Attributes"]} for lb in balancers},
        "listeners": listeners,
        "target_groups": {t["TargetGroupArn"]: t for t in elb.describe_target_groups()["TargetGroups"]}
        if balancers else {},
        "log_groups": {g["logGroupName"]: g for g in logs.describe_log_groups()["logGroups"]},
        "metric_filters": logs.describe_metric_filters()["metricFilters"],
        "alarms": {a["AlarmName"]: a for a in backend.client("cloudwatch").describe_alarms()["MetricAlarms"]},
        "dashboards": [d["DashboardName"] for d in backend.client("cloudwatch").list_dashboards()["DashboardEntries"]],
        "roles": roles,
        "profiles": iam.list_instance_profiles()["InstanceProfiles"],
        "parameters": {p["Name"]: p for p in ssm.describe_parameters(
            ParameterFilters=[{"Key": "Path", "Option": "Recursive", "Values": ["/swarmstack"]}])["Parameters"]},
        "associations": list(backend.state.get("associations", {}).values()),
        "keys": {k["KeyId"]: backend.client("kms").describe_key(KeyId=k["KeyId"])["KeyMetadata"]
                 for k in backend.client("kms").list_keys()["Keys"]},
        "aliases": {a["AliasName"]: a.get("TargetKeyId") for a in backend.client("kms").list_aliases()["Aliases"]},
        "buckets": [b["Name"] for b in backend.client("s3").list_buckets()["Buckets"]],
    }


def deploy(stack: str, config: dict[str, Any], prepare: Callable[[AwsBackend], None] | None = None) -> Deployed:
    with ExitStack() as exits:
        backends = backends_for(config, exits)
        backend = backends["aws"]
        assert isinstance(backend, AwsBackend)
        if prepare is not None:
            prepare(backend)
        graph = run_stack(stack, config, ROOT, backends=backends)
        return Deployed(stack, config, graph, snapshot(backend))


def shipped(stack: str) -> dict[str, Any]:
    return copy.deepcopy(read_stack_file(stack, ROOT)[1])


def make_ca() -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ops CA")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem


def existing_vpc(backend: AwsBackend) -> None:
    """A VPC the user already has (in the range of swarmstack's first overlay pool): three
    private and three public subnets, an IGW, a key pair."""
    ec2 = backend.ec2
    vpc = ec2.create_vpc(CidrBlock="10.240.0.0/16")["Vpc"]["VpcId"]
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    zones = [z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"]][:3]
    ids = {}
    for index, zone in enumerate(zones):
        for tier, offset in (("private", 0), ("public", 100)):
            ids[f"{tier}{index}"] = ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.240.{offset + index}.0/24",
                                                      AvailabilityZone=zone)["Subnet"]["SubnetId"]
    ec2.create_key_pair(KeyName="ops")
    backend.state["existing"] = {"vpc": vpc, **ids}


def existing_config() -> tuple[dict[str, Any], Callable[[AwsBackend], None]]:
    """Existing VPC, internal LB with a UDP port, the user's CA, no workers, SSH, volumes pruned."""
    ca_cert, ca_key = make_ca()
    holder: dict[str, Any] = {}

    def prepare(backend: AwsBackend) -> None:
        existing_vpc(backend)
        ids = backend.state["existing"]
        cluster = holder["config"]["swarmstack:cluster"]
        cluster["network"] = {"existing": {
            "networkId": ids["vpc"], "privateSubnetIds": [ids[f"private{i}"] for i in range(3)],
            "publicSubnetIds": [ids[f"public{i}"] for i in range(3)]}}

    config = shipped("prod-aws")
    cluster = config["swarmstack:cluster"]
    cluster.update({"name": "brownfield", "production": False, "workers": [],
                    "access": {"adminCidrs": ["198.51.100.0/24", "203.0.113.7/32"], "sshKeyName": "ops"},
                    "dockerApi": {"enabled": True, "ca": "provided", "caCertPem": ca_cert},
                    "loadBalancer": {"public": False, "ports": [{"port": 8443}, {"port": 5353, "protocol": "udp"}]},
                    "logging": {"retentionDays": 14, "kms": False},
                    "prune": {"schedule": "15 3 * * 0", "volumes": True, "until": "48h"},
                    # placeholders until prepare() has made the VPC: the config must validate
                    "network": {"existing": {"networkId": "vpc-0123456789abcdef0",
                                             "privateSubnetIds": ["subnet-00000001", "subnet-00000002",
                                                                  "subnet-00000003"]}}})
    config["swarmstack:dockerApiCaKey"] = ca_key
    holder["config"] = config
    return config, prepare


def single_nat_config() -> dict[str, Any]:
    """One NAT, no API, no load balancer, a Graviton spot pool and an empty pool, a pinned image parameter."""
    config = shipped("prod-aws")
    cluster = config["swarmstack:cluster"]
    cluster.update({"name": "lean", "production": False, "managers": {"count": 3, "instanceType": "t4g.small"},
                    "workers": [{"name": "arm", "count": 2, "instanceType": ["m7g.large", "c7g.large"], "spot": True},
                                {"name": "idle", "count": 0, "instanceType": "t4g.micro"}],
                    "network": {"new": {"cidr": "10.50.0.0/20", "zones": 3, "nat": "single"}},
                    "access": {}, "dockerApi": {"enabled": False},
                    "loadBalancer": {"enabled": False},
                    "logging": {"retentionDays": 30, "kms": False},
                    "image": {"ssmParameter": "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64"},
                    "prune": {"enabled": True, "schedule": "0 */4 * * *"}})
    return config


FAMILIES = ("prod-aws", "dev-aws", "existing", "single-nat")


@pytest.fixture(scope="module", params=FAMILIES)
def deployed(request: pytest.FixtureRequest) -> Deployed:
    return _deployed(request.param)


_RUNS: dict[str, Deployed] = {}


def _deployed(family: str) -> Deployed:
    if family not in _RUNS:
        if family in ("prod-aws", "dev-aws"):
            _RUNS[family] = deploy(family, shipped(family))
        elif family == "existing":
            config, prepare = existing_config()
            _RUNS[family] = deploy("existing", config, prepare)
        else:
            _RUNS[family] = deploy("single-nat", single_nat_config())
    return _RUNS[family]


# ------------------------------------------------------------------ helpers


def group_ids(d: Deployed) -> dict[str, str]:
    """Role (managers, workers, lb) to the group's id, from the stack outputs."""
    out = d.graph.outputs["securityGroupIds"]
    return {"managers": out["managers"], "workers": out["workers"],
            **({"lb": out["loadBalancer"]} if "loadBalancer" in out else {})}


def ingress(d: Deployed, group: str) -> list[dict[str, Any]]:
    return [r for r in d.aws["rules"] if r["GroupId"] == group and not r["IsEgress"]]


def covers(rule: dict[str, Any], port: int) -> bool:
    return rule["IpProtocol"] == "-1" or (rule.get("FromPort", -1) <= port <= rule.get("ToPort", -1))


def published(d: Deployed) -> set[tuple[str, int]]:
    lb = d.cluster.load_balancer
    return {(p.protocol, p.port) for p in lb.ports} if lb.enabled else set()


def vpc_cidr(d: Deployed) -> str:
    return next(v["CidrBlock"] for v in d.aws["vpcs"] if v["VpcId"] == d.graph.outputs["vpcId"])


def node_templates(d: Deployed) -> dict[str, dict[str, Any]]:
    return d.aws["templates"]


def asg_of(d: Deployed, pool: str) -> dict[str, Any]:
    name = d.graph.outputs["managerGroup"] if pool == "managers" else d.graph.outputs["workerGroups"][pool]
    return d.aws["asgs"][name]


# ------------------------------------------------------------------ firewall


def test_nothing_anywhere_opens_the_plaintext_docker_api(deployed: Deployed) -> None:
    for rule in deployed.aws["rules"]:
        if not rule["IsEgress"]:
            assert not covers(rule, 2375), rule


def test_the_tls_api_is_reachable_from_admin_ranges_only_and_only_when_on(deployed: Deployed) -> None:
    ids = group_ids(deployed)
    admins = set(deployed.cluster.access.admin_cidrs)
    found = [r for r in deployed.aws["rules"] if not r["IsEgress"] and covers(r, 2376)]
    if not deployed.cluster.docker_api.enabled:
        assert found == []
        return
    assert found
    for rule in found:
        if rule["GroupId"] == ids.get("lb"):
            assert rule.get("CidrIpv4") in admins
        else:
            assert rule["GroupId"] == ids["managers"]
            assert rule.get("CidrIpv4") in admins or rule.get("ReferencedGroupInfo", {}).get("GroupId") == ids.get("lb")
    lb_sources = {r.get("CidrIpv4") for r in found if r["GroupId"] == ids.get("lb")}
    if "lb" in ids:
        assert lb_sources == admins


def test_swarm_ports_are_open_between_node_groups_only(deployed: Deployed) -> None:
    ids = group_ids(deployed)
    nodes = {ids["managers"], ids["workers"]}
    seen = set()
    for rule in deployed.aws["rules"]:
        if rule["IsEgress"]:
            continue
        key = (rule["IpProtocol"], rule.get("FromPort", -1))
        if key in SWARM_PORTS or any(covers(rule, port) for _, port in SWARM_PORTS if port > 0):
            assert rule["GroupId"] in nodes, rule
            assert "CidrIpv4" not in rule and "CidrIpv6" not in rule, rule
            assert rule["ReferencedGroupInfo"]["GroupId"] in nodes, rule
            seen.add((rule["GroupId"], rule["ReferencedGroupInfo"]["GroupId"], key))
    members = nodes if deployed.cluster.workers else {ids["managers"]}
    for target in members:
        for source in members:
            for key in SWARM_PORTS - ({("tcp", 2377)} if target == ids["workers"] else set()):
                assert (target, source, key) in seen, (target, source, key)
    assert all(t in members and s in members for t, s, _ in seen)
    assert not any(k == ("tcp", 2377) and t == ids["workers"] for t, _, k in seen)


def test_ssh_only_with_a_key_and_only_from_admins(deployed: Deployed) -> None:
    found = [r for r in deployed.aws["rules"] if not r["IsEgress"] and covers(r, 22)]
    if deployed.cluster.access.ssh_key_name is None:
        assert found == []
        for data in node_templates(deployed).values():
            assert "KeyName" not in data
        return
    assert {r.get("CidrIpv4") for r in found} == set(deployed.cluster.access.admin_cidrs)
    for data in node_templates(deployed).values():
        assert data["KeyName"] == deployed.cluster.access.ssh_key_name


def test_published_ports_reach_nodes_only_through_the_load_balancer(deployed: Deployed) -> None:
    ids = group_ids(deployed)
    ports = published(deployed)
    if "lb" not in ids:
        assert not any(r["GroupId"] not in (ids["managers"], ids["workers"]) for r in deployed.aws["rules"])
        return
    vpc_cidr = next(v["CidrBlock"] for v in deployed.aws["vpcs"] if v["VpcId"] == deployed.graph.outputs["vpcId"])
    clients = "0.0.0.0/0" if deployed.cluster.load_balancer.public else vpc_cidr
    target = ids["workers"] if deployed.cluster.workers else ids["managers"]
    for protocol, port in ports:
        on_lb = [r for r in ingress(deployed, ids["lb"]) if r["IpProtocol"] == protocol and covers(r, port)]
        assert [r.get("CidrIpv4") for r in on_lb] == [clients]
        on_nodes = [r for r in deployed.aws["rules"] if not r["IsEgress"] and r["IpProtocol"] == protocol
                    and covers(r, port) and r["GroupId"] != ids["lb"]]
        assert [(r["GroupId"], r["ReferencedGroupInfo"]["GroupId"]) for r in on_nodes] == [(target, ids["lb"])]
    # the load balancer's group lets in nothing but published ports and the API
    allowed = ports | ({("tcp", 2376)} if deployed.cluster.docker_api.enabled else set())
    assert {(r["IpProtocol"], r["FromPort"]) for r in ingress(deployed, ids["lb"])} == allowed


def test_a_new_vpc_has_its_default_group_closed(deployed: Deployed) -> None:
    if deployed.cluster.network.new is None:
        pytest.skip("an existing VPC's default group is the user's")
    vpc = deployed.graph.outputs["vpcId"]
    default = [g for g in deployed.aws["groups"].values() if g["VpcId"] == vpc and g["GroupName"] == "default"]
    assert default[0]["IpPermissions"] == [] and default[0]["IpPermissionsEgress"] == []


def test_egress_follows_the_nat_mode(deployed: Deployed) -> None:
    new = deployed.cluster.network.new
    if new is None:
        assert deployed.aws["nats"] == []
        return
    vpc = deployed.graph.outputs["vpcId"]
    nats = [n for n in deployed.aws["nats"] if n["VpcId"] == vpc]
    assert len(nats) == {"none": 0, "single": 1, "perZone": new.zones}[new.nat]
    zone_of = {s: deployed.aws["subnets"][s]["AvailabilityZone"] for s in deployed.aws["subnets"]}
    nat_zone = {n["NatGatewayId"]: zone_of[n["SubnetId"]] for n in nats}
    for subnet in deployed.graph.outputs["nodeSubnetIds"]:
        table = next(t for t in deployed.aws["route_tables"]
                     if any(a.get("SubnetId") == subnet for a in t.get("Associations", [])))
        (default,) = [r for r in table["Routes"] if r.get("DestinationCidrBlock") == "0.0.0.0/0"]
        if new.nat == "none":
            assert default["GatewayId"].startswith("igw-")  # nodes in public subnets
            assert deployed.aws["subnets"][subnet]["MapPublicIpOnLaunch"] is True
        else:
            assert deployed.aws["subnets"][subnet]["MapPublicIpOnLaunch"] is False
            if new.nat == "perZone":  # each zone leaves through its own NAT: a zone outage stays local
                assert nat_zone[default["NatGatewayId"]] == zone_of[subnet]
            else:
                assert default["NatGatewayId"] in nat_zone


# ------------------------------------------------------------------ nodes


def test_every_launch_template_requires_imdsv2_and_encrypts_its_root_volume(deployed: Deployed) -> None:
    templates = node_templates(deployed)
    assert len(templates) == 1 + len(deployed.cluster.workers)
    for data in templates.values():
        assert data["MetadataOptions"]["HttpTokens"] == "required"
        assert data["MetadataOptions"]["HttpPutResponseHopLimit"] == 1
        (root,) = data["BlockDeviceMappings"]
        assert root["Ebs"]["Encrypted"] is True
        assert root["Ebs"]["VolumeType"] == "gp3"


def test_launch_templates_carry_the_nodes_user_data_tags_and_addressing(deployed: Deployed) -> None:
    public = deployed.cluster.network.new is not None and deployed.cluster.network.new.nat == "none"
    sizes = {"managers": deployed.cluster.managers.disk_gib} | {p.name: p.disk_gib for p in deployed.cluster.workers}
    pools = set()
    for data in node_templates(deployed).values():
        text = gzip.decompress(base64.b64decode(data["UserData"])).decode()
        assert text.startswith("#cloud-config\n")
        (pool,) = set(re.findall(r"ADDRESS_POOL='?([0-9./]+)", text))
        assert not ipaddress.ip_network(pool).overlaps(ipaddress.ip_network(vpc_cidr(deployed)))
        tags = {t["Key"]: t["Value"] for spec in data["TagSpecifications"] if spec["ResourceType"] == "instance"
                for t in spec["Tags"]}
        assert tags["swarmstack:cluster"] == deployed.cluster.name
        assert tags["swarmstack:role"] in ("manager", "worker")
        pools.add(tags["swarmstack:pool"])
        assert data["BlockDeviceMappings"][0]["Ebs"]["VolumeSize"] == sizes[tags["swarmstack:pool"]]
        assert data["NetworkInterfaces"][0]["AssociatePublicIpAddress"] is public
        assert data["IamInstanceProfile"]["Arn"].split("/")[-1] in {p["InstanceProfileName"]
                                                                    for p in deployed.aws["profiles"]}
    assert pools == set(sizes)


def test_the_image_follows_the_architecture(deployed: Deployed) -> None:
    for data in node_templates(deployed).values():
        image = deployed.aws["images"][data["ImageId"]]
        assert image["Architecture"] == architecture(data["InstanceType"])
        if deployed.cluster.image.id is None and deployed.cluster.image.ssm_parameter is None:
            assert image["Name"].startswith("al2023-ami-")


def test_every_group_spans_node_subnets_in_distinct_zones(deployed: Deployed) -> None:
    zones = deployed.cluster.zone_count
    node_subnets = set(deployed.graph.outputs["nodeSubnetIds"])
    for group in deployed.aws["asgs"].values():
        subnets = group["VPCZoneIdentifier"].split(",")
        assert set(subnets) == node_subnets
        azs = [deployed.aws["subnets"][s]["AvailabilityZone"] for s in subnets]
        assert len(set(azs)) == len(azs) == zones


def test_managers_are_protected_balanced_and_replaced_one_at_a_time(deployed: Deployed) -> None:
    count = deployed.cluster.managers.count
    group = asg_of(deployed, "managers")
    assert (group["MinSize"], group["DesiredCapacity"], group["MaxSize"]) == (count, count, count + 1)
    assert len(group["Instances"]) == count  # moto launched them from the template
    assert all(i["ProtectedFromScaleIn"] for i in group["Instances"])
    assert group["NewInstancesProtectedFromScaleIn"] is True
    assert [p["ProcessName"] for p in group["SuspendedProcesses"]] == ["AZRebalance"]
    assert group["HealthCheckType"] == "EC2"
    prefs = deployed.aws["refresh"][group["AutoScalingGroupName"]]["preferences"]
    assert prefs["minHealthyPercentage"] == 100
    headroom = prefs["maxHealthyPercentage"] / 100 * count - count
    assert 1 <= headroom < 2  # exactly one extra manager at a time
    assert len(prefs["checkpointPercentages"]) == count and prefs["checkpointPercentages"][-1] == 100
    assert prefs["scaleInProtectedInstances"] == "Refresh"


def test_every_group_has_the_join_and_drain_hooks_and_waits_for_its_nodes(deployed: Deployed) -> None:
    for name, hooks in deployed.aws["hooks"].items():
        by_name = {hook["LifecycleHookName"]: hook for hook in hooks}
        assert set(by_name) == {"swarmstack-join", "swarmstack-drain"}, name
        drain, join = by_name["swarmstack-drain"], by_name["swarmstack-join"]
        assert drain["LifecycleTransition"] == "autoscaling:EC2_INSTANCE_TERMINATING"
        assert 30 <= drain["HeartbeatTimeout"] <= 7200
        assert drain["DefaultResult"] == "CONTINUE"
        # a new node is InService only once it has joined; one that never joins is abandoned
        assert join["LifecycleTransition"] == "autoscaling:EC2_INSTANCE_LAUNCHING"
        assert join["DefaultResult"] == "ABANDON"
        assert join["HeartbeatTimeout"] >= 15 * 60 + 300  # the node gives up after 15 minutes
        assert deployed.aws["refresh"][name]["preferences"]["minHealthyPercentage"] == 100
    for group in deployed.graph.of_type("aws:autoscaling/group:Group"):
        # pulumi up fails when nodes never join, after longer than a join may take
        assert group.inputs["waitForCapacityTimeout"] == "30m"


def test_workers_match_their_pools_and_spot_pools_mix_types(deployed: Deployed) -> None:
    for pool in deployed.cluster.workers:
        group = asg_of(deployed, pool.name)
        assert group["DesiredCapacity"] == pool.count
        assert group["NewInstancesProtectedFromScaleIn"] is False
        if pool.spot:
            policy = group["MixedInstancesPolicy"]
            assert [o["InstanceType"] for o in policy["LaunchTemplate"]["Overrides"]] == pool.instance_type
            assert policy["InstancesDistribution"] == {"OnDemandBaseCapacity": 0,
                                                       "OnDemandPercentageAboveBaseCapacity": 0,
                                                       "SpotAllocationStrategy": "price-capacity-optimized"}
            assert group["CapacityRebalance"] is True
        else:
            assert group.get("MixedInstancesPolicy") is None
            assert "LaunchTemplate" in group


# ------------------------------------------------------------------ load balancer


def test_a_listener_and_target_group_per_published_port(deployed: Deployed) -> None:
    cfg = deployed.cluster
    if not cfg.load_balancer.enabled:
        assert deployed.aws["balancers"] == [] and "loadBalancerDns" not in deployed.graph.outputs
        return
    (lb,) = deployed.aws["balancers"]
    assert lb["Type"] == "network"
    assert lb["Scheme"] == ("internet-facing" if cfg.load_balancer.public else "internal")
    expected = {(p.protocol.upper(), p.port) for p in cfg.load_balancer.ports}
    if cfg.docker_api.enabled:
        expected.add(("TCP", 2376))
    assert {(listener["Protocol"], listener["Port"]) for listener in deployed.aws["listeners"]} == expected
    managers = asg_of(deployed, "managers")["AutoScalingGroupName"]
    service_groups = ({asg_of(deployed, p.name)["AutoScalingGroupName"] for p in cfg.workers} if cfg.workers
                      else {managers})
    for listener in deployed.aws["listeners"]:
        arn = listener["DefaultActions"][0]["TargetGroupArn"]
        target = deployed.aws["target_groups"][arn]
        assert target["Port"] == listener["Port"] and target["HealthCheckProtocol"] == "TCP"
        attached = {name for name, arns in deployed.aws["target_groups_of"].items() if arn in arns}
        assert attached == ({managers} if listener["Port"] == 2376 else service_groups)
    lb_subnets = {z["SubnetId"] for z in lb["AvailabilityZones"]}
    outputs_public = set(deployed.graph.outputs["nodeSubnetIds"]) if not cfg.load_balancer.public else None
    if outputs_public is not None:
        assert lb_subnets == outputs_public


def test_production_protects_and_logs_the_load_balancer(deployed: Deployed) -> None:
    for lb in deployed.aws["balancers"]:
        attributes = deployed.aws["lb_attributes"][lb["LoadBalancerArn"]]
        production = deployed.cluster.production
        assert attributes["deletion_protection.enabled"] == str(production).lower()
        if production:
            assert attributes["access_logs.s3.enabled"] == "true"
            assert attributes["access_logs.s3.bucket"] in deployed.aws["buckets"]
        else:  # no access-log bucket (a backup bucket may be there: backups are their own setting)
            assert [b for b in deployed.aws["buckets"] if "-backups-" not in b] == []


# ------------------------------------------------------------------ identity


def statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    found = document["Statement"]
    return found if isinstance(found, list) else [found]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_node_policies_have_no_wildcards_but_the_documented_ones(deployed: Deployed) -> None:
    roles = {n: r for n, r in deployed.aws["roles"].items() if any(p.endswith("policy") or "lifecycle" in p
                                                                  for p in r["inline"])}
    node_roles = [r for n, r in roles.items() if "flow" not in n]
    assert len(node_roles) == 2
    name = deployed.cluster.name
    for role in node_roles:
        assert role["attached"] == []  # no AWS-managed policy: they grant more than a node uses
        for document in role["inline"].values():
            for statement in statements(document):
                if statement["Effect"] == "Deny":
                    continue  # the worker's second wall may be wide
                for action in as_list(statement["Action"]):
                    assert "*" not in action, action
                for resource in as_list(statement["Resource"]):
                    if resource == "*":
                        assert set(as_list(statement["Action"])) <= set(UNSCOPABLE_ACTIONS)
                    elif "*" in resource:
                        # log streams of the cluster's groups, the managers' generation and the TLS
                        # parameters, this account's instances and associations, the prune's document,
                        # the backups and the restore tools
                        assert re.search(r":log-stream:\*$|:ec2:[a-z0-9-]+:\d{12}:instance/\*$|"
                                         r":ssm:[a-z0-9-]+:\d{12}:association/\*$|"
                                         r":ssm:[a-z0-9-]+:\*:document/AWS-RunShellScript$|"
                                         r":autoscaling:[a-z0-9-]+:\d{12}:autoScalingGroup:\*:autoScalingGroupName/"
                                         r"[a-z0-9-]+$|"
                                         r"^arn:aws:s3:::[a-z0-9.-]+/swarm/\*$|"  # the raft backups, managers only
                                         r"^arn:aws:s3:::[a-z0-9.-]+/tools/restore-\*$|"  # each version's restore tool
                                         f":parameter/swarmstack/{name}/([0-9a-f]{{8}}|tls)/\\*$", resource), resource


def role_documents(deployed: Deployed, role: str) -> list[dict[str, Any]]:
    found = [r for r in deployed.aws["roles"].values()
             if any(p == f"{deployed.cluster.name}-{role}-policy" for p in r["inline"])]
    assert len(found) == 1, role
    return list(found[0]["inline"].values())


def test_workers_cannot_read_the_manager_token_or_the_server_key(deployed: Deployed) -> None:
    text = json.dumps([{**d, "Statement": [s for s in statements(d) if s["Effect"] == "Allow"]}
                       for d in role_documents(deployed, "worker")])
    prefix = f"parameter/swarmstack/{deployed.cluster.name}"
    assert "tokens/manager" not in text and "tls/" not in text and f"{prefix}/*" not in text
    for name in ("init", "tokens/worker", "managers"):
        assert re.search(f"{prefix}/[0-9a-f]{{8}}/{name}\"", text), name  # under this deployment's generation


def test_lifecycle_actions_are_scoped_to_the_clusters_own_groups(deployed: Deployed) -> None:
    arns = {g["AutoScalingGroupARN"] for g in deployed.aws["asgs"].values()}
    for role in deployed.aws["roles"].values():
        for name, document in role["inline"].items():
            for statement in statements(document):
                if "autoscaling:CompleteLifecycleAction" in as_list(statement["Action"]):
                    # each pattern names one group by its explicit name (the ARN's UUID is a wildcard)
                    for pattern in as_list(statement["Resource"]):
                        assert len([a for a in arns if fnmatch.fnmatchcase(a, pattern)]) == 1, (name, pattern)


def test_kms_use_is_on_the_clusters_key_only(deployed: Deployed) -> None:
    key = deployed.aws["aliases"][f"alias/swarmstack/{deployed.cluster.name}"]
    key_arn = deployed.aws["keys"][key]["Arn"]
    for role in ("manager", "worker"):
        for document in role_documents(deployed, role):
            for statement in statements(document):
                if any(a.startswith("kms:") for a in as_list(statement["Action"])):
                    assert as_list(statement["Resource"]) == [key_arn]


# ------------------------------------------------------------------ tls


def test_docker_api_material_is_in_ssm_and_the_bundle_is_secret(deployed: Deployed) -> None:
    cfg, outputs, params = deployed.cluster, deployed.graph.outputs, deployed.aws["parameters"]
    prefix = f"/swarmstack/{cfg.name}/tls"
    if not cfg.docker_api.enabled:
        assert not any(name.startswith(prefix) for name in params)
        assert "clientTls" not in outputs and "dockerHost" not in outputs
        return
    key = deployed.aws["aliases"][f"alias/swarmstack/{cfg.name}"]
    assert params[f"{prefix}/server-key"]["Type"] == "SecureString"
    assert params[f"{prefix}/server-key"]["KeyId"] in (key, deployed.aws["keys"][key]["Arn"])
    assert params[f"{prefix}/ca-cert"]["Type"] == params[f"{prefix}/server-cert"]["Type"] == "String"
    assert "clientTls" in deployed.graph.secret_outputs
    bundle = outputs["clientTls"]
    ca = x509.load_pem_x509_certificate(bundle["ca.pem"].encode())
    client = x509.load_pem_x509_certificate(bundle["cert.pem"].encode())
    client.verify_directly_issued_by(ca)
    assert "PRIVATE KEY" in bundle["key.pem"]
    server_cert = next(r for r in deployed.graph.of_type("tls:index/locallySignedCert:LocallySignedCert")
                       if r.name.endswith("-server")).outputs["certPem"]
    server = x509.load_pem_x509_certificate(server_cert.encode())
    server.verify_directly_issued_by(ca)
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    assert ipaddress.ip_address("127.0.0.1") in names.get_values_for_type(x509.IPAddress)
    if cfg.load_balancer.enabled:
        dns = outputs["loadBalancerDns"]
        assert dns in names.get_values_for_type(x509.DNSName)
        assert outputs["dockerHost"] == f"tcp://{dns}:2376"
    if cfg.docker_api.ca == "provided":
        assert bundle["ca.pem"] == cfg.docker_api.ca_cert_pem


# ------------------------------------------------------------------ observability and maintenance


def test_log_groups_keep_events_as_configured(deployed: Deployed) -> None:
    cfg = deployed.cluster
    names = deployed.graph.outputs["logGroups"]
    assert set(names) == {"containers", "events", "bootstrap", "prune"}
    for name in names.values():
        group = deployed.aws["log_groups"][name]
        assert group["retentionInDays"] == cfg.logging.retention_days
        assert bool(group.get("kmsKeyId")) is cfg.logging.kms
    if cfg.network.new is not None and cfg.network.new.flow_logs:
        flow = deployed.aws["log_groups"][f"/swarmstack/{cfg.name}/flow-logs"]
        assert bool(flow.get("kmsKeyId")) is cfg.logging.kms


def test_alarms_watch_quorum_ooms_crashes_and_targets(deployed: Deployed) -> None:
    cfg, alarms = deployed.cluster, deployed.aws["alarms"]
    quorum_alarm = alarms[f"swarmstack-{cfg.name}-managers-below-quorum"]
    assert quorum_alarm["Threshold"] == quorum(cfg.managers.count)
    assert quorum_alarm["ComparisonOperator"] == "LessThanThreshold"
    assert quorum_alarm["Dimensions"] == [{"Name": "AutoScalingGroupName",
                                           "Value": deployed.graph.outputs["managerGroup"]}]
    assert {f"swarmstack-{cfg.name}-oom-kills", f"swarmstack-{cfg.name}-error-exits",
            f"swarmstack-{cfg.name}-managers-missing"} <= set(alarms)
    unhealthy = [a for a in alarms if "-unhealthy-" in a]
    assert len(unhealthy) == len(deployed.aws["listeners"])
    for alarm in alarms.values():
        assert alarm["AlarmActions"] == [deployed.graph.outputs["alarmTopicArn"]]
    assert {f["filterName"] for f in deployed.aws["metric_filters"]} == {f"{cfg.name}-oom", f"{cfg.name}-error-exits"}
    assert deployed.aws["dashboards"] == [f"swarmstack-{cfg.name}"]
    assert deployed.graph.outputs["dashboardUrl"].endswith(f"#dashboards:name=swarmstack-{cfg.name}")


def test_prune_runs_on_the_configured_schedule_and_spares_volumes_unless_asked(deployed: Deployed) -> None:
    cfg = deployed.cluster
    (association,) = deployed.aws["associations"]
    assert association["scheduleExpression"] == to_aws(parse_cron(cfg.prune.schedule))
    assert association["name"] == "AWS-RunShellScript"
    assert association["targets"] == [{"key": "tag:swarmstack:cluster", "values": [cfg.name]}]
    script = association["parameters"]["commands"]
    assert f"docker image prune --all --force --filter until={cfg.prune.until}" in script
    assert "docker system prune" not in script  # a manager must not prune (external) overlay networks
    assert ("docker volume prune" in script) is cfg.prune.volumes
    assert "--volumes" not in script
    assert cfg.logging.enabled and f"/swarmstack/{cfg.name}/prune" in script


def test_outputs_give_a_person_what_they_need(deployed: Deployed) -> None:
    outputs, cfg = deployed.graph.outputs, deployed.cluster
    assert outputs["vpcId"].startswith("vpc-")
    assert outputs["managerShell"].startswith("aws ssm start-session")
    assert f"Values={cfg.name}" in outputs["managerShell"]
    assert set(outputs["securityGroupIds"]) >= {"managers", "workers"}
    summary = deployed.graph.of_type("swarmstack:aws:Cluster")[0]
    assert summary.inputs["managerCount"] == cfg.managers.count


def test_a_missing_existing_subnet_is_refused() -> None:
    config, prepare = existing_config()

    def broken(backend: AwsBackend) -> None:
        prepare(backend)
        cluster = config["swarmstack:cluster"]
        subnets = cluster["network"]["existing"]["privateSubnetIds"]
        subnets[2] = subnets[0].replace(subnets[0][-4:], "beef")

    with pytest.raises(Exception, match=r"InvalidSubnetID.NotFound|does not exist"):
        deploy("broken", config, broken)


def test_existing_subnets_sharing_a_zone_are_refused() -> None:
    config, prepare = existing_config()

    def same_zone(backend: AwsBackend) -> None:
        prepare(backend)
        ids = backend.state["existing"]
        config["swarmstack:cluster"]["network"]["existing"]["privateSubnetIds"] = [
            ids["private0"], ids["private1"], ids["public0"]]

    with pytest.raises(Exception) as caught:
        deploy("same-zone", config, same_zone)
    message = str(caught.value)  # as every config problem reads: the file, the key, the value, what is wrong
    assert message.startswith("stacks/Pulumi.same-zone.yaml: swarmstack:cluster.network.existing.privateSubnetIds"
                              " = [\"subnet-"), message
    assert "two subnets share zone" in message and "list one subnet per availability zone" in message, message


def test_the_policy_pack_finds_nothing_mandatory(deployed: Deployed) -> None:
    from swarmstack.policy import evaluate

    for preview in (True, False):  # `pulumi preview` of a new stack, then `pulumi up`
        found = evaluate(deployed.graph, preview=preview)
        assert [f"{f.rule}: {f.message}" for f in found if f.level == "mandatory"] == [], preview
