"""The AWS model: every `aws:*` resource and invoke is carried out in moto, in process.

Each handler turns the Pulumi inputs of one resource type into the boto3 calls the
provider would make, so moto checks the references (a subnet outside its VPC, a
rule naming a missing group, an ASG in an unknown subnet) as AWS would, and the
outputs are the ids, ARNs and attributes moto gives back.

Where moto lacks an operation (see `docs/engine.md`), the handler checks the inputs
itself against AWS's documented rules and says so in its docstring.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from typing import Any

import boto3
from botocore.exceptions import ClientError, ParamValidationError

from swarmstack.engine.mocks import EngineError, UnsupportedByEngine, registrar
from swarmstack.engine.s3_policy import judged_as

Outputs = dict[str, Any]
Handler = Callable[["AwsBackend", str, dict[str, Any]], tuple[str, Outputs]]
Invoke = Callable[["AwsBackend", dict[str, Any]], Outputs]

HANDLERS: dict[str, Handler] = {}
INVOKES: dict[str, Invoke] = {}


handles = registrar(HANDLERS)
"""`@handles("aws:ec2/vpc:Vpc")`: the handler of one resource type."""
answers = registrar(INVOKES)
"""`@answers("aws:index/getRegion:getRegion")`: the answer to one invoke."""


_NO_AMIS = "MOTO_EC2_LOAD_DEFAULT_AMIS"


STAND_IN_CIDR = "10.240.0.0/16"
"""The range of an existing network's offline stand-in (`seed_existing_network`)."""


class AwsBackend:
    """One moto account in one region, for one run of the program."""

    account = "123456789012"

    def __init__(self, region: str):
        self.region = region
        self._mock: Any = None
        self._clients: dict[str, Any] = {}
        self._amis_setting: str | None = None
        self.state: dict[str, Any] = {}
        """Facts handlers share that moto does not keep (e.g. SSM associations)."""
        self.made: set[tuple[str, str]] = set()
        """What this backend made itself, as (kind, key): `confirm` need not ask moto about it."""

    def __enter__(self) -> AwsBackend:
        import os

        from moto import mock_aws

        for key, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                           ("AWS_SESSION_TOKEN", "testing"), ("AWS_DEFAULT_REGION", self.region)):
            os.environ.setdefault(key, value)
        # moto's ~5,000 default AMIs cost seconds a run (and again at every reset); the
        # images that public SSM parameters name are published one by one instead. The
        # setting is restored on exit, so other uses of moto in the process keep them.
        self._amis_setting = os.environ.get(_NO_AMIS)
        os.environ.setdefault(_NO_AMIS, "false")
        _cache_moto_dispatch()
        _index_moto_lookups()
        _lazy_kms_key_pairs()
        self._mock = mock_aws()
        self._mock.start()
        return self

    def __exit__(self, *exc: object) -> None:
        import os

        if self._mock is not None:
            self._mock.stop()
            self._mock = None
        if self._amis_setting is None:
            os.environ.pop(_NO_AMIS, None)

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = _client(service, self.region)
        return self._clients[service]

    @property
    def ec2(self) -> Any:
        return self.client("ec2")

    def seed_existing_network(self, vpc_id: str, private_subnet_ids: list[str],
                              public_subnet_ids: list[str]) -> None:
        """A stand-in for the network a stack names as existing (`network.existing`), with
        its very ids, so that `swarmstack plan` can run a brownfield stack offline: a VPC
        (`STAND_IN_CIDR`) with an internet gateway, and the subnets, the nth of each list
        in the region's nth zone. Only the ids are the user's; `pulumi preview` looks up the
        real VPC (its range, the subnets' zones)."""
        from unittest import mock

        from moto.ec2.models import subnets, vpcs

        ec2 = self.ec2
        with mock.patch.object(vpcs, "random_vpc_id", return_value=vpc_id):
            ec2.create_vpc(CidrBlock=STAND_IN_CIDR)
        gateway = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
        ec2.attach_internet_gateway(InternetGatewayId=gateway, VpcId=vpc_id)
        zones = [z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"]]
        base = STAND_IN_CIDR.split(".")[:2]
        for offset, ids in ((0, private_subnet_ids), (100, public_subnet_ids)):
            for index, subnet_id in enumerate(ids):
                with mock.patch.object(subnets, "random_subnet_id", return_value=subnet_id):
                    ec2.create_subnet(VpcId=vpc_id, CidrBlock=".".join([*base, str(offset + index), "0/24"]),
                                      AvailabilityZone=zones[index % len(zones)])

    def confirm(self, kind: str, key: str, check: Callable[[], object]) -> None:
        """That the `kind` named `key` exists: `check()`, a call AWS refuses (or answers
        empty) when it does not, unless this backend made it (`made`). The engine deletes
        nothing it made, so what it made still exists and the call could only say so again:
        each alarm asked after its topic, each bucket setting after its bucket, each launch
        template after its image, about a tenth of a run's calls. What the program names
        but did not make (a topic, bucket or image of the user's) is still asked after."""
        if (kind, key) not in self.made:
            check()

    def publish_image(self, image_id: str) -> None:
        """Make an AMI that AWS publishes (and a public SSM parameter names) exist in
        moto, from moto's own copy of the region's current Amazon images."""
        if ("image", image_id) in self.made:
            return
        if self.ec2.describe_images(Filters=[{"Name": "image-id", "Values": [image_id]}])["Images"]:
            self.made.add(("image", image_id))
            return
        from moto.ec2.models import ec2_backends
        from moto.ec2.models.amis import Ami
        from moto.utilities.utils import load_resource

        for path in ("latest_amis", "ecs/optimized_amis"):
            key = f"ec2/resources/{path}/{self.region}.json"
            if key not in _AMIS:
                try:
                    _AMIS[key] = load_resource(key)
                except FileNotFoundError:
                    _AMIS[key] = []
            images = _AMIS[key]
            for image in images:
                if image["ami_id"] == image_id:
                    backend = ec2_backends[self.account][self.region]
                    backend.amis[image_id] = Ami(backend, **{**image, "owner_alias": "amazon"})
                    self.made.add(("image", image_id))
                    return

    def arn(self, service: str, resource: str, region: bool = True) -> str:
        return f"arn:aws:{service}:{self.region if region else ''}:{self.account}:{resource}"

    def create(self, type_: str, name: str, inputs: dict[str, Any]) -> tuple[str, Outputs]:
        handler = HANDLERS.get(type_)
        if handler is None:
            raise UnsupportedByEngine(f"{type_} '{name}': the engine has no model of this AWS resource type")
        problem = check_name(type_, name, inputs)
        if problem:
            raise EngineError(f"{type_} '{name}': {problem}")
        try:
            rid, outputs = handler(self, name, inputs)
        except (ClientError, ParamValidationError) as err:
            raise EngineError(f"{type_} '{name}': AWS refuses it: {err}") from None
        return rid, {**inputs, **outputs, "id": rid}

    def invoke(self, token: str, args: dict[str, Any]) -> Outputs:
        fn = INVOKES.get(token)
        if fn is None:
            raise UnsupportedByEngine(f"{token}: the engine has no model of this AWS invoke")
        try:
            return fn(self, args)
        except ClientError as err:
            raise EngineError(f"{token}: AWS refuses it: {err}") from None


_CLIENTS: dict[tuple[str, str], Any] = {}


def _cache_moto_dispatch() -> None:
    """moto finds the handler of every request by listing its response class's methods
    (`inspect.getmembers`, in `BaseResponse.call_action`): about a twentieth of a run. The
    classes do not change while a process runs, so the list is made once per class, and
    the cache stays for the rest of the process (it changes no answer)."""
    import functools

    import moto.core.responses as responses

    if not hasattr(responses.method_names_from_class, "cache_info"):
        responses.method_names_from_class = functools.cache(responses.method_names_from_class)  # type: ignore[assignment]


def _index_moto_lookups() -> None:
    """Three of moto's EC2 lookups scan everything for one id, so that launching N instances
    costs N² (each launch attaches its volume: `get_instance`, `describe_volumes` of that
    one volume; each response lists each resource's tags: `describe_tags` over every tag).
    A 1,000-worker stack spent most of its plan there. The replacements give the same
    answers: ids are unique, so the newest-first scan finds the object the full scan found
    (an instance being launched is in the newest reservation); a resource's tags are its
    entry in the tag table, in the order `describe_tags` lists them (its id filter is an
    exact match); one volume by id is that volume. Made once per process."""
    from moto.ec2.exceptions import InvalidInstanceIdError, InvalidVolumeIdError
    from moto.ec2.models.core import TaggedEC2Resource
    from moto.ec2.models.elastic_block_store import EBSBackend
    from moto.ec2.models.instances import InstanceBackend
    from moto.ec2.utils import EC2_PREFIX_TO_RESOURCE, get_prefix

    if getattr(InstanceBackend, "_swarmstack_indexed", False):
        return

    def get_instance_by_id(self: Any, instance_id: str) -> Any:
        for reservation in reversed(self.reservations.values()):
            for instance in reversed(reservation.instances):
                if instance.id == instance_id:
                    return instance
        return None

    def get_instance(self: Any, instance_id: str) -> Any:
        found = get_instance_by_id(self, instance_id)
        if found is None:
            raise InvalidInstanceIdError(instance_id)
        return found

    def get_tags(self: Any) -> list[dict[str, str]]:
        if not self.id:
            return []
        table = self.ec2_backend.tags
        kind = EC2_PREFIX_TO_RESOURCE.get(get_prefix(self.id), "")
        return [{"resource_id": self.id, "key": key, "value": value, "resource_type": kind}
                for key, value in table.get(self.id, {}).items()]

    scan_volumes = EBSBackend.describe_volumes

    def describe_volumes(self: Any, volume_ids: list[str] | None = None, filters: Any = None) -> Any:
        if volume_ids and len(volume_ids) == 1 and not filters:
            if volume_ids[0] not in self.volumes:
                raise InvalidVolumeIdError(set(volume_ids))
            return [self.volumes[volume_ids[0]]]
        return scan_volumes(self, volume_ids, filters)

    InstanceBackend._swarmstack_originals = {  # type: ignore[attr-defined]  # tests compare against them
        "get_instance_by_id": InstanceBackend.get_instance_by_id, "get_instance": InstanceBackend.get_instance,
        "get_tags": TaggedEC2Resource.get_tags, "describe_volumes": scan_volumes}
    InstanceBackend.get_instance_by_id = get_instance_by_id  # type: ignore[method-assign]
    InstanceBackend.get_instance = get_instance  # type: ignore[method-assign]
    TaggedEC2Resource.get_tags = get_tags  # type: ignore[method-assign]
    EBSBackend.describe_volumes = describe_volumes  # type: ignore[method-assign]
    InstanceBackend._swarmstack_indexed = True  # type: ignore[attr-defined]


class _LazyPrivateKey:
    """moto's private key of a KMS key, made when first used (sign, verify, the public key)."""

    def __init__(self, make: Any, key_spec: str):
        self._make, self._key_spec, self._key = make, key_spec, None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("_make", "_key_spec", "_key"):  # copy, pickle: no key
            raise AttributeError(name)
        if self._key is None:
            self._key = self._make(self._key_spec)
        return getattr(self._key, name)


def _lazy_kms_key_pairs() -> None:
    """moto makes a 2048-bit RSA key pair for every KMS key it creates, symmetric ones
    included (where only asymmetric signing uses it): about 70 ms of CPU a key, a tenth of a
    prod-aws run. The pair is made when first used instead. Made once per process."""
    import moto.kms.models as kms

    if isinstance(kms.generate_private_key, functools.partial):
        return
    kms.generate_private_key = functools.partial(_LazyPrivateKey, kms.generate_private_key)  # type: ignore[assignment]


AUTO_NAME_SUFFIX = 8
"""Pulumi names a resource without an explicit name `<logical name>-<7 random characters>`."""
NAME_LIMITS: dict[str, tuple[str, int]] = {
    "aws:lb/loadBalancer:LoadBalancer": ("name", 32),
    "aws:lb/targetGroup:TargetGroup": ("name", 32),
    "aws:autoscaling/group:Group": ("name", 255),
    "aws:ec2/launchTemplate:LaunchTemplate": ("name", 128),
    "aws:ec2/securityGroup:SecurityGroup": ("name", 255),
    "aws:iam/role:Role": ("name", 64),
    "aws:iam/instanceProfile:InstanceProfile": ("name", 128),
    "aws:iam/rolePolicy:RolePolicy": ("name", 128),
    "aws:sns/topic:Topic": ("name", 256),
    "aws:cloudwatch/metricAlarm:MetricAlarm": ("name", 255),
    "aws:cloudwatch/logGroup:LogGroup": ("name", 512),
    "aws:cloudwatch/logMetricFilter:LogMetricFilter": ("name", 512),
    "aws:s3/bucket:Bucket": ("bucket", 63),
    "aws:scheduler/schedule:Schedule": ("name", 64),
}
"""The name input of each auto-named type and the longest name AWS (and so the provider) takes."""


def check_name(type_: str, name: str, inputs: dict[str, Any]) -> str | None:
    """Why the provider would refuse this resource's physical name, or None. A name the
    program gives must fit; without one, Pulumi's auto-name (logical name, a dash and 7
    random characters) must fit, for the provider fails rather than shortens it (moto
    accepts or truncates either: the engine must not)."""
    if type_ not in NAME_LIMITS:
        return None
    key, limit = NAME_LIMITS[type_]
    given = inputs.get(key)
    if given:
        if len(str(given)) > limit:
            return f"{key} '{given}' is {len(str(given))} characters; AWS takes at most {limit}"
        return None
    if inputs.get(f"{key}Prefix"):
        return None
    if len(name) + AUTO_NAME_SUFFIX > limit:
        return (f"{key} '{name}-' plus 7 random chars is longer than maximum length {limit} "
                f"({len(name) + AUTO_NAME_SUFFIX}): Pulumi does not shorten auto-names; give it an explicit {key}")
    return None


UNSIGNED_SERVICES = frozenset({"autoscaling", "cloudwatch", "ec2", "elbv2", "iam", "kms", "logs", "scheduler", "sns",
                               "ssm", "sts"})
"""The services whose requests the engine sends unsigned. moto checks no signature unless
IAM evaluation is on (`INITIAL_NO_AUTH_ACTION_COUNT`), which the engine's runs never are
(the node-access tests turn it on afterwards, with their own signed clients), and signing
(SigV4: canonical request, HMACs) was a twentieth of a call. Every other service, S3 above
all (moto reads an unsigned S3 request as anonymous, as S3 does), is signed as before."""


def _client(service: str, region: str) -> Any:
    """One boto3 client per service and region for the process: building one parses the
    service's model (a quarter of a second for EC2). moto intercepts requests while a
    mock is started, whichever mock the client was created under, so sharing is safe."""
    key = (service, region)
    if key not in _CLIENTS:
        if service in UNSIGNED_SERVICES:
            from botocore import UNSIGNED
            from botocore.config import Config

            _CLIENTS[key] = boto3.client(service, region_name=region, config=Config(signature_version=UNSIGNED))
        else:
            _CLIENTS[key] = boto3.client(service, region_name=region)
    return _CLIENTS[key]


def tag_specs(kind: str, inputs: dict[str, Any]) -> list[dict[str, Any]]:
    tags = inputs.get("tags") or {}
    if not tags:
        return []
    return [{"ResourceType": kind, "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}]


def tags_all(inputs: dict[str, Any]) -> Outputs:
    return {"tagsAll": dict(inputs.get("tags") or {})}


def need(inputs: dict[str, Any], key: str, type_: str, name: str) -> Any:
    if inputs.get(key) in (None, ""):
        raise EngineError(f"{type_} '{name}': {key} is required")
    return inputs[key]


def as_int(value: Any) -> int:
    """Numbers come back from the mock runtime as floats."""
    return int(value)


# ---------------------------------------------------------------- invokes

@answers("aws:index/getAvailabilityZones:getAvailabilityZones")
def _zones(aws: AwsBackend, args: dict[str, Any]) -> Outputs:
    zones = aws.ec2.describe_availability_zones()["AvailabilityZones"]
    state = args.get("state")
    zones = [z for z in zones if state is None or z["State"] == state]
    return {"names": [z["ZoneName"] for z in zones], "zoneIds": [z["ZoneId"] for z in zones],
            "id": aws.region, "groupNames": [aws.region] * len(zones)}


@answers("aws:index/getRegion:getRegion")
def _region(aws: AwsBackend, args: dict[str, Any]) -> Outputs:
    return {"name": aws.region, "region": aws.region, "id": aws.region,
            "endpoint": f"ec2.{aws.region}.amazonaws.com", "description": aws.region}


@answers("aws:index/getCallerIdentity:getCallerIdentity")
def _caller(aws: AwsBackend, args: dict[str, Any]) -> Outputs:
    ident = aws.client("sts").get_caller_identity()
    return {"accountId": ident["Account"], "arn": ident["Arn"], "userId": ident["UserId"], "id": ident["Account"]}


@answers("aws:index/getPartition:getPartition")
def _partition(aws: AwsBackend, args: dict[str, Any]) -> Outputs:
    return {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws",
            "reverseDnsPrefix": "com.amazonaws"}


@answers("aws:ssm/getParameter:getParameter")
def _parameter(aws: AwsBackend, args: dict[str, Any]) -> Outputs:
    found = aws.client("ssm").get_parameter(Name=args["name"], WithDecryption=bool(args.get("withDecryption", True)))
    p = found["Parameter"]
    if args["name"].startswith("/aws/service/") and str(p["Value"]).startswith("ami-"):
        aws.publish_image(p["Value"])
    return {"name": p["Name"], "value": p["Value"], "type": p["Type"], "arn": p["ARN"],
            "version": p["Version"], "id": p["Name"], "insecureValue": p["Value"]}


# ---------------------------------------------------------------- network

@handles("aws:ec2/vpc:Vpc")
def _vpc(aws: AwsBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    vpc = aws.ec2.create_vpc(CidrBlock=need(i, "cidrBlock", "Vpc", name),
                             TagSpecifications=tag_specs("vpc", i))["Vpc"]
    vid = vpc["VpcId"]
    for attr in ("enableDnsHostnames", "enableDnsSupport"):
        if attr in i:
            aws.ec2.modify_vpc_attribute(VpcId=vid, **{attr[0].upper() + attr[1:]: {"Value": bool(i[attr])}})
    groups = aws.ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vid]},
                                                       {"Name": "group-name", "Values": ["default"]}])
    tables = aws.ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vid]}])["RouteTables"]
    acls = aws.ec2.describe_network_acls(Filters=[{"Name": "vpc-id", "Values": [vid]}])["NetworkAcls"]
    return vid, {"arn": aws.arn("ec2", f"vpc/{vid}"), "cidrBlock": vpc["CidrBlock"],
                 "defaultSecurityGroupId": groups["SecurityGroups"][0]["GroupId"],
                 "mainRouteTableId": tables[0]["RouteTableId"] if tables else "",
                 "defaultNetworkAclId": acls[0]["NetworkAclId"] if acls else "",
                 "ownerId": aws.account, **tags_all(i)}


@handles("aws:ec2/subnet:Subnet")
def _subnet(aws: AwsBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    kwargs: dict[str, Any] = {"VpcId": need(i, "vpcId", "Subnet", name),
                              "CidrBlock": need(i, "cidrBlock", "Subnet", name),
                              "TagSpecifications": tag_specs("subnet", i)}
    if i.get("availabilityZone"):
        kwargs["AvailabilityZone"] = i["availabilityZone"]
    subnet = aws.ec2.create_subnet(**kwargs)["Subnet"]
    sid = subnet["SubnetId"]
    if i.get("mapPublicIpOnLaunch"):
        aws.ec2.modify_subnet_attribute(SubnetId=sid, MapPublicIpOnLaunch={"Value": True})
    return sid, {"arn": subnet.get("SubnetArn", aws.arn("ec2", f"subnet/{sid}")),
                 "availabilityZone": subnet["AvailabilityZone"],
                 "availabilityZoneId": subnet.get("AvailabilityZoneId", ""),
                 "mapPublicIpOnLaunch": bool(i.get("mapPublicIpOnLaunch", False)), **tags_all(i)}


@handles("aws:ec2/internetGateway:InternetGateway")
def _igw(aws: AwsBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    igw = aws.ec2.create_internet_gateway(TagSpecifications=tag_specs("internet-gateway", i))["InternetGateway"]
    gid = igw["InternetGatewayId"]
    if i.get("vpcId"):
        aws.ec2.attach_internet_gateway(InternetGatewayId=gid, VpcId=i["vpcId"])
    return gid, {"arn": aws.arn("ec2", f"internet-gateway/{gid}"), "ownerId": aws.account, **tags_all(i)}


@handles("aws:ec2/eip:Eip")
def _eip(aws: AwsBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    eip = aws.ec2.allocate_address(Domain=i.get("domain", "vpc"), TagSpecifications=tag_specs("elastic-ip", i))
    return eip["AllocationId"], {"allocationId": eip["AllocationId"], "publicIp": eip["PublicIp"],
                                 "domain": "vpc", **tags_all(i)}


@handles("aws:ec2/natGateway:NatGateway")
def _nat(aws: AwsBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    kwargs: dict[str, Any] = {"SubnetId": need(i, "subnetId", "NatGateway", name),
                              "TagSpecifications": tag_specs("natgateway", i)}
    if i.get("connectivityType", "public") == "public":
        kwargs["AllocationId"] = need(i, "allocationId", "NatGateway", name)
        if not aws.ec2.describe_addresses(AllocationIds=[kwargs["AllocationId"]])["Addresses"]:
            raise EngineError(f"NatGateway '{name}': allocation {kwargs['AllocationId']} does not exist")
    nat = aws.ec2.create_nat_gateway(**kwargs)["NatGateway"]
    return nat["NatGatewayId"], {"connectivityType": i.get("connectivityType", "public"), **tags_all(i)}


@handles("aws:ec2/routeTable:RouteTable")
def _route_table(aws: AwsBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    table = aws.ec2.create_route_table(VpcId=need(i, "vpcId", "RouteTable", name),
                                       TagSpecifications=tag_specs("route-table", i))["RouteTable"]
    tid = table["RouteTableId"]
    for route in i.get("routes") or []:
        _add_route(aws, name, tid, route)
    return tid, {"arn": aws.arn("ec2", f"route-table/{tid}"), "ownerId": aws.account, **tags_all(i)}


def _add_route(aws: AwsBackend, name: str, table_id: str, route: dict[str, Any]) -> None:
    kwargs: dict[str, Any] = {"RouteTableId": table_id}
    if route.get("destinationCidrBlock") or route.get("cidrBlock"):
        kwargs["DestinationCidrBlock"] = route.get("destinationCidrBlock") or route.get("cidrBlock")
    if route.get("destinationIpv6CidrBlock"):
        kwargs["DestinationIpv6CidrBlock"] = route["destinationIpv6CidrBlock"]
    targets = {"gatewayId": "GatewayId", "natGatewayId": "NatGatewayId",
               "vpcPeeringConnectionId": "VpcPeeringConnectionId", "networkInterfaceId": "NetworkInterfaceId",
               "transitGatewayId": "TransitGatewayId"}
    given = [k for k in targets if route.get(k)]
    if len(given) != 1:
        raise EngineError(f"Route '{name}': exactly one target is required, got {given or 'none'}")
    kwargs[targets[given[0]]] = route[given[0]]
    if given[0] == "natGatewayId":
        gateways = aws.ec2.describe_nat_gateways(NatGatewayIds=[route["natGatewayId"]])["NatGateways"]
        if not gateways:
            raise EngineError(f"Route '{name}': NAT gateway {route['natGatewayId']} does not exist")
    aws.ec2.create_route(**kwargs)


@handles("aws:ec2/route:Route")
def _route(aws: AwsBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    table = need(i, "routeTableId", "Route", name)
    _add_route(aws, name, table, i)
    return f"r-{table}{i.get('destinationCidrBlock', '')}", {"state": "active", "origin": "CreateRoute"}


@handles("aws:ec2/routeTableAssociation:RouteTableAssociation")
def _association(aws: AwsBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    kwargs = {"RouteTableId": need(i, "routeTableId", "RouteTableAssociation", name)}
    if i.get("subnetId"):
        kwargs["SubnetId"] = i["subnetId"]
    elif i.get("gatewayId"):
        kwargs["GatewayId"] = i["gatewayId"]
    else:
        raise EngineError(f"RouteTableAssociation '{name}': subnetId or gatewayId is required")
    assoc = aws.ec2.associate_route_table(**kwargs)
    return assoc["AssociationId"], {}


def _rule_permission(rule: dict[str, Any]) -> dict[str, Any]:
    protocol = str(rule.get("ipProtocol") or rule.get("protocol"))
    permission: dict[str, Any] = {"IpProtocol": protocol}
    if protocol not in ("-1", "50", "esp", "all"):
        permission["FromPort"] = as_int(rule["fromPort"])
        permission["ToPort"] = as_int(rule["toPort"])
    elif protocol != "-1":
        # AWS ignores ports for protocols without them; moto needs a value.
        permission["FromPort"] = permission["ToPort"] = -1
    for key, target, inner in (("cidrIpv4", "IpRanges", "CidrIp"), ("cidrIpv6", "Ipv6Ranges", "CidrIpv6")):
        if rule.get(key):
            permission[target] = [{inner: rule[key], "Description": rule.get("description", "")}]
    for key in ("cidrBlocks",):
        if rule.get(key):
            permission["IpRanges"] = [{"CidrIp": c} for c in rule[key]]
    if rule.get("ipv6CidrBlocks"):
        permission["Ipv6Ranges"] = [{"CidrIpv6": c} for c in rule["ipv6CidrBlocks"]]
    ref = rule.get("referencedSecurityGroupId") or rule.get("sourceSecurityGroupId")
    groups = list(rule.get("securityGroups") or []) + ([ref] if ref else [])
    if rule.get("self"):
        groups.append(rule["__self"])
    if groups:
        permission["UserIdGroupPairs"] = [{"GroupId": g, "Description": rule.get("description", "")} for g in groups]
    if rule.get("prefixListId"):
        permission["PrefixListIds"] = [{"PrefixListId": rule["prefixListId"]}]
    return permission


def _check_rule_source(type_: str, name: str, rule: dict[str, Any]) -> None:
    sources = [k for k in ("cidrIpv4", "cidrIpv6", "referencedSecurityGroupId", "prefixListId") if rule.get(k)]
    if len(sources) != 1:
        raise EngineError(f"{type_} '{name}': exactly one of cidrIpv4, cidrIpv6, referencedSecurityGroupId "
                          f"or prefixListId is required, got {sources or 'none'}")


@handles("aws:ec2/securityGroup:SecurityGroup")
def _security_group(aws: AwsBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    group_name = i.get("name") or f"{i.get('namePrefix', name)}{abs(hash(name)) % 10**8:08d}"
    if group_name.lower().startswith("sg-"):
        raise EngineError(f"SecurityGroup '{name}': InvalidParameterValue: group names may not start with sg- "
                          f"({group_name})")
    group = aws.ec2.create_security_group(GroupName=group_name, VpcId=need(i, "vpcId", "SecurityGroup", name),
                                          Description=i.get("description", "Managed by Pulumi"),
                                          TagSpecifications=tag_specs("security-group", i))
    gid = group["GroupId"]
    # As the provider does: drop AWS's default allow-all egress, then apply the inline rules.
    described = aws.ec2.describe_security_groups(GroupIds=[gid])["SecurityGroups"][0]
    if described.get("IpPermissionsEgress"):
        aws.ec2.revoke_security_group_egress(GroupId=gid, IpPermissions=described["IpPermissionsEgress"])
    for direction, call in (("ingress", aws.ec2.authorize_security_group_ingress),
                            ("egress", aws.ec2.authorize_security_group_egress)):
        for rule in i.get(direction) or []:
            call(GroupId=gid, IpPermissions=[_rule_permission({**rule, "__self": gid})])
    return gid, {"arn": aws.arn("ec2", f"security-group/{gid}"), "name": group_name,
                 "ownerId": aws.account, "ingress": i.get("ingress") or [], "egress": i.get("egress") or [],
                 **tags_all(i)}


@handles("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")
def _default_security_group(aws: AwsBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    vpc = need(i, "vpcId", "DefaultSecurityGroup", name)
    found = aws.ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc]},
                                                      {"Name": "group-name", "Values": ["default"]}])
    group = found["SecurityGroups"][0]
    gid = group["GroupId"]
    # The provider makes the group's rules exactly the inputs: revoke everything, add those.
    if group.get("IpPermissions"):
        aws.ec2.revoke_security_group_ingress(GroupId=gid, IpPermissions=group["IpPermissions"])
    if group.get("IpPermissionsEgress"):
        aws.ec2.revoke_security_group_egress(GroupId=gid, IpPermissions=group["IpPermissionsEgress"])
    for direction, call in (("ingress", aws.ec2.authorize_security_group_ingress),
                            ("egress", aws.ec2.authorize_security_group_egress)):
        for rule in i.get(direction) or []:
            call(GroupId=gid, IpPermissions=[_rule_permission({**rule, "__self": gid})])
    return gid, {"arn": aws.arn("ec2", f"security-group/{gid}"), "name": "default",
                 "ingress": i.get("ingress") or [], "egress": i.get("egress") or [], **tags_all(i)}


def _sg_rule(direction: str) -> Handler:
    type_ = f"aws:vpc/securityGroup{direction.title()}Rule:SecurityGroup{direction.title()}Rule"

    def handler(aws: AwsBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
        _check_rule_source(type_, name, i)
        group = need(i, "securityGroupId", type_, name)
        call = aws.ec2.authorize_security_group_ingress if direction == "ingress" \
            else aws.ec2.authorize_security_group_egress
        result = call(GroupId=group, IpPermissions=[_rule_permission(i)])
        rules = result.get("SecurityGroupRules") or [{}]
        rid = rules[0].get("SecurityGroupRuleId") or f"sgr-{abs(hash(name)) % 10**17:017d}"
        return rid, {"securityGroupRuleId": rid,
                     "arn": aws.arn("ec2", f"security-group-rule/{rid}"), **tags_all(i)}

    HANDLERS[type_] = handler
    return handler


_sg_rule("ingress")
_sg_rule("egress")


@handles("aws:ec2/flowLog:FlowLog")
def _flow_log(aws: AwsBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    kwargs: dict[str, Any] = {"ResourceIds": [need(i, "vpcId", "FlowLog", name)], "ResourceType": "VPC",
                              "TrafficType": need(i, "trafficType", "FlowLog", name)}
    destination_type = i.get("logDestinationType", "cloud-watch-logs")
    if destination_type == "cloud-watch-logs":
        kwargs["LogDestinationType"] = "cloud-watch-logs"
        kwargs["LogGroupName"] = need(i, "logDestination", "FlowLog", name).split(":log-group:")[-1].rstrip(":*")
        kwargs["DeliverLogsPermissionArn"] = need(i, "iamRoleArn", "FlowLog", name)
    else:
        kwargs["LogDestinationType"] = destination_type
        kwargs["LogDestination"] = need(i, "logDestination", "FlowLog", name)
    result = aws.client("ec2").create_flow_logs(**kwargs)
    if result.get("Unsuccessful"):
        raise EngineError(f"FlowLog '{name}': AWS refuses it: {result['Unsuccessful']}")
    fid = result["FlowLogIds"][0]
    return fid, {"arn": aws.arn("ec2", f"vpc-flow-log/{fid}"), **tags_all(i)}


# ---------------------------------------------------------------- logs

@handles("aws:cloudwatch/logGroup:LogGroup")
def _log_group(aws: AwsBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    logs = aws.client("logs")
    group = i.get("name") or f"{i.get('namePrefix', name)}"
    kwargs: dict[str, Any] = {"logGroupName": group}
    if i.get("kmsKeyId"):
        kwargs["kmsKeyId"] = i["kmsKeyId"]
    if i.get("tags"):
        kwargs["tags"] = i["tags"]
    logs.create_log_group(**kwargs)
    if i.get("retentionInDays"):
        logs.put_retention_policy(logGroupName=group, retentionInDays=as_int(i["retentionInDays"]))
    return group, {"name": group, "arn": aws.arn("logs", f"log-group:{group}"), **tags_all(i)}


def policy_document(value: Any) -> dict[str, Any]:
    """An IAM policy input is a JSON string (or already a mapping)."""
    return json.loads(value) if isinstance(value, str) else dict(value)


# ---------------------------------------------------------------- iam

@handles("aws:iam/role:Role")
def _role(aws: AwsBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    role_name = i.get("name") or f"{name}-{abs(hash(name)) % 10**7:07d}"
    trust = need(i, "assumeRolePolicy", "Role", name)
    kwargs: dict[str, Any] = {"RoleName": role_name, "AssumeRolePolicyDocument":
                              trust if isinstance(trust, str) else json.dumps(trust),
                              "Path": i.get("path", "/")}
    if i.get("tags"):
        kwargs["Tags"] = [{"Key": k, "Value": v} for k, v in i["tags"].items()]
    role = aws.client("iam").create_role(**kwargs)["Role"]
    for arn in i.get("managedPolicyArns") or []:
        aws.client("iam").attach_role_policy(RoleName=role_name, PolicyArn=arn)
    return role_name, {"name": role_name, "arn": role["Arn"], "uniqueId": role["RoleId"], **tags_all(i)}


@handles("aws:iam/rolePolicy:RolePolicy")
def _role_policy(aws: AwsBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    role = need(i, "role", "RolePolicy", name)
    policy_name = i.get("name") or name
    document = need(i, "policy", "RolePolicy", name)
    aws.client("iam").put_role_policy(RoleName=role, PolicyName=policy_name,
                                      PolicyDocument=document if isinstance(document, str) else json.dumps(document))
    return f"{role}:{policy_name}", {"name": policy_name}


def _aws_managed_policy(aws: AwsBackend, arn: str) -> None:
    """Make one AWS-managed policy known to moto, from moto's own copy of AWS's list.

    moto can load all ~1,500 AWS-managed policies, but that costs over a second a run;
    loading the one a role attaches keeps the check (an unknown ARN is refused) cheap.
    """
    from moto.iam.aws_managed_policies import aws_managed_policies_data
    from moto.iam.models import AWSManagedPolicy, iam_backends

    name = arn.rsplit("/", 1)[-1]
    known = _MANAGED.get("data")
    if known is None:
        known = _MANAGED["data"] = json.loads(aws_managed_policies_data)
    if name not in known or not arn.startswith("arn:aws:iam::aws:policy/"):
        return  # moto then refuses the attachment, as AWS would
    backend = iam_backends[aws.account]["aws"]
    if arn not in backend.managed_policies:
        backend.managed_policies[arn] = AWSManagedPolicy.from_data(name, aws.account, aws.region, known[name])


_MANAGED: dict[str, Any] = {}
_AMIS: dict[str, list[dict[str, Any]]] = {}


@handles("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
def _role_policy_attachment(aws: AwsBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    role = need(i, "role", "RolePolicyAttachment", name)
    arn = need(i, "policyArn", "RolePolicyAttachment", name)
    _aws_managed_policy(aws, arn)
    aws.client("iam").attach_role_policy(RoleName=role, PolicyArn=arn)
    return f"{role}-{abs(hash(arn)) % 10**8:08d}", {}


@handles("aws:iam/instanceProfile:InstanceProfile")
def _instance_profile(aws: AwsBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    iam = aws.client("iam")
    profile_name = i.get("name") or f"{i.get('namePrefix', name)}-{abs(hash(name)) % 10**7:07d}"
    kwargs: dict[str, Any] = {"InstanceProfileName": profile_name, "Path": i.get("path", "/")}
    if i.get("tags"):
        kwargs["Tags"] = [{"Key": k, "Value": v} for k, v in i["tags"].items()]
    profile = iam.create_instance_profile(**kwargs)["InstanceProfile"]
    if i.get("role"):
        iam.get_role(RoleName=i["role"])  # moto adds a missing role silently; AWS refuses
        iam.add_role_to_instance_profile(InstanceProfileName=profile_name, RoleName=i["role"])
    return profile_name, {"name": profile_name, "arn": profile["Arn"], "uniqueId": profile["InstanceProfileId"],
                          **tags_all(i)}


# ---------------------------------------------------------------- kms

@handles("aws:kms/key:Key")
def _kms_key(aws: AwsBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    kms = aws.client("kms")
    kwargs: dict[str, Any] = {"Description": i.get("description", ""),
                              "KeyUsage": i.get("keyUsage", "ENCRYPT_DECRYPT"),
                              "KeySpec": i.get("customerMasterKeySpec", "SYMMETRIC_DEFAULT")}
    if i.get("policy"):
        document = policy_document(i["policy"])
        _check_key_policy(name, document)
        kwargs["Policy"] = json.dumps(document)
    if i.get("tags"):
        kwargs["Tags"] = [{"TagKey": k, "TagValue": v} for k, v in i["tags"].items()]
    key = kms.create_key(**kwargs)["KeyMetadata"]
    if i.get("enableKeyRotation"):
        kms.enable_key_rotation(KeyId=key["KeyId"])
    return key["KeyId"], {"arn": key["Arn"], "keyId": key["KeyId"], **tags_all(i)}


def _check_key_policy(name: str, document: dict[str, Any]) -> None:
    """AWS refuses a key policy that would lock the account out of the key
    (unless bypassPolicyLockoutSafetyCheck): some statement must let the account's
    root (and so IAM) administer it."""
    for statement in document.get("Statement", []):
        principal = statement.get("Principal", {})
        aws_principal = principal.get("AWS") if isinstance(principal, dict) else principal
        principals = aws_principal if isinstance(aws_principal, list) else [aws_principal]
        actions = statement.get("Action", [])
        actions = actions if isinstance(actions, list) else [actions]
        if statement.get("Effect") == "Allow" and any(str(p).endswith(":root") for p in principals) \
                and ("kms:*" in actions or "kms:PutKeyPolicy" in actions):
            return
    raise EngineError(f"kms Key '{name}': MalformedPolicyDocumentException: the new key policy will not allow "
                      "you to update the key policy in the future (no statement lets the account root administer it)")


@handles("aws:kms/alias:Alias")
def _kms_alias(aws: AwsBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    alias = need(i, "name", "Alias", name)
    if not alias.startswith("alias/") or alias.startswith("alias/aws/"):
        raise EngineError(f"kms Alias '{name}': the name must start with alias/ and not alias/aws/, got {alias}")
    target = need(i, "targetKeyId", "Alias", name)
    aws.client("kms").describe_key(KeyId=target)
    aws.client("kms").create_alias(AliasName=alias, TargetKeyId=target)
    return alias, {"arn": aws.arn("kms", alias), "targetKeyArn": aws.arn("kms", f"key/{target.rsplit('/', 1)[-1]}")}


# ---------------------------------------------------------------- ssm

SSM_PARAMETER_TYPES = ("String", "StringList", "SecureString")


@handles("aws:ssm/parameter:Parameter")
def _ssm_parameter(aws: AwsBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    path = i.get("name") or name
    kind = need(i, "type", "Parameter", name)
    if kind not in SSM_PARAMETER_TYPES:
        raise EngineError(f"ssm Parameter '{name}': type must be one of {SSM_PARAMETER_TYPES}, got {kind}")
    kwargs: dict[str, Any] = {"Name": path, "Type": kind, "Value": need(i, "value", "Parameter", name),
                              "Tier": i.get("tier", "Standard"), "Overwrite": bool(i.get("overwrite", False))}
    if i.get("description"):
        kwargs["Description"] = i["description"]
    if i.get("keyId"):
        if kind != "SecureString":
            raise EngineError(f"ssm Parameter '{name}': keyId is only for SecureString parameters")
        aws.client("kms").describe_key(KeyId=i["keyId"])  # moto does not check the key exists
        kwargs["KeyId"] = i["keyId"]
    if i.get("tags"):
        kwargs["Tags"] = [{"Key": k, "Value": v} for k, v in i["tags"].items()]
    result = aws.client("ssm").put_parameter(**kwargs)
    found = aws.client("ssm").get_parameter(Name=path)["Parameter"]
    return path, {"name": path, "arn": found["ARN"], "version": result["Version"], "tier": kwargs["Tier"],
                  "dataType": "text", **tags_all(i)}


# SSM State Manager: moto has no CreateAssociation. The handler checks the inputs
# against the rules the API documents and keeps the association in `aws.state`.
SSM_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
SSM_CRON = re.compile(r"^cron\((\S+) (\S+) (\S+) (\S+) (\S+)(?: (\S+))?\)$")
SSM_TARGET_KEY = re.compile(r"^(InstanceIds|tag:[\w.:/=+\-@ ]{1,128}|tag-key|resource-groups:Name|"
                            r"resource-groups:ResourceTypeFilters)$")
BUILTIN_DOCUMENTS = {"AWS-RunShellScript": {"commands", "workingDirectory", "executionTimeout"},
                     "AWS-RunPowerShellScript": {"commands", "workingDirectory", "executionTimeout"},
                     "AWS-UpdateSSMAgent": {"version", "allowDowngrade"},
                     "AWS-GatherSoftwareInventory": set()}


SSM_ASSOCIATION_FORMS = ("State Manager runs associations only every 30 minutes, every 1, 2, 4, 8 or 12 hours, "
                         "or every day or week at a set time")
SSM_DAY = r"(?:[1-7]|SUN|MON|TUE|WED|THU|FRI|SAT)"


def check_schedule_expression(expression: str) -> str | None:
    """Why State Manager would refuse an association's schedule, or None (moto has no
    CreateAssociation). The rules of the AWS Systems Manager User Guide, "Reference:
    Cron and rate expressions for Systems Manager", associations section: `rate()` of 30
    minutes to less than 31 days (a singular unit for 1, plural otherwise); `cron(min
    hour day-of-month month day-of-week [year])` with exactly one of day-of-month and
    day-of-week `?`, no month or day of the month, and only these forms: every 30
    minutes (`m/30 *`), every 1, 2, 4, 8 or 12 hours (`m h/N`), or every day or week
    at a set time (`m h`, a day of the week or one range of them such as `MON-FRI`)."""
    rate = SSM_RATE.match(expression)
    if rate:
        amount, unit = int(rate.group(1)), rate.group(2)
        if (amount == 1) == unit.endswith("s"):
            return f"rate({amount} {unit}): the unit is singular for 1 and plural otherwise"
        minutes = amount * {"minute": 1, "hour": 60, "day": 1440}[unit.rstrip("s")]
        if minutes < 30:
            return "rate() schedules must be at least 30 minutes"
        return None if minutes < 31 * 1440 else "rate() schedules must be shorter than 31 days"
    cron = SSM_CRON.match(expression)
    if not cron:
        return "must be cron(minute hour day-of-month month day-of-week [year]) or rate(n unit)"
    minute, hour, dom, month, dow, year = cron.groups()
    if (dom == "?") == (dow == "?"):
        return "exactly one of day-of-month and day-of-week must be ?"
    for label, value, high in (("minute", minute, 59), ("hour", hour, 23)):
        for number in re.findall(r"\d+", value.split("/")[0]):
            if int(number) > high:
                return f"{label} {number} is out of range"
    if month != "*" or year not in (None, "*"):
        return f"month '{month}': associations take no month (and no year); {SSM_ASSOCIATION_FORMS}"
    if dom not in ("*", "?"):
        return f"day-of-month '{dom}': associations take no day of the month; {SSM_ASSOCIATION_FORMS}"
    every_day = dow in ("*", "?")
    if not every_day and not re.fullmatch(f"{SSM_DAY}(?:-{SSM_DAY})?", dow):
        return f"day-of-week '{dow}': one day or one range of days (MON-FRI); {SSM_ASSOCIATION_FORMS}"
    half_hourly = re.fullmatch(r"([0-9]|[12][0-9])/30", minute) and hour == "*"
    single_minute = re.fullmatch(r"[0-5]?[0-9]", minute)
    step = re.fullmatch(r"(\d{1,2})/(\d{1,2})", hour)
    hourly = single_minute and step and int(step.group(2)) in (1, 2, 4, 8, 12) and \
        int(step.group(1)) < int(step.group(2))
    at_a_time = single_minute and re.fullmatch(r"1?[0-9]|2[0-3]", hour)
    if ((half_hourly or hourly) and every_day) or at_a_time:
        return None
    return f"cron({minute} {hour} …): {SSM_ASSOCIATION_FORMS}"


@handles("aws:ssm/association:Association")
def _ssm_association(aws: AwsBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    type_ = "ssm Association"
    document = need(i, "name", type_, name)
    if document not in BUILTIN_DOCUMENTS:
        try:
            aws.client("ssm").describe_document(Name=document)
        except ClientError:
            raise EngineError(f"{type_} '{name}': InvalidDocument: document {document} does not exist") from None
    else:
        unknown = set(i.get("parameters") or {}) - BUILTIN_DOCUMENTS[document]
        if unknown:
            raise EngineError(f"{type_} '{name}': InvalidParameters: {document} has no parameter(s) "
                              f"{sorted(unknown)}")
        if document == "AWS-RunShellScript" and not (i.get("parameters") or {}).get("commands"):
            raise EngineError(f"{type_} '{name}': InvalidParameters: AWS-RunShellScript needs commands")
    schedule = i.get("scheduleExpression")
    if schedule:
        problem = check_schedule_expression(schedule)
        if problem:
            raise EngineError(f"{type_} '{name}': ValidationException: scheduleExpression {schedule}: {problem}")
    targets = i.get("targets") or []
    if i.get("instanceId") is None and not targets:
        raise EngineError(f"{type_} '{name}': targets (or instanceId) are required")
    if len(targets) > 5:
        raise EngineError(f"{type_} '{name}': at most 5 targets, got {len(targets)}")
    for target in targets:
        key, values = target.get("key", ""), target.get("values") or []
        if not SSM_TARGET_KEY.match(key):
            raise EngineError(f"{type_} '{name}': target key '{key}' is not InstanceIds, tag:<key>, tag-key "
                              "or resource-groups:…")
        if not values or len(values) > 50 or any(not str(v) for v in values):
            raise EngineError(f"{type_} '{name}': target '{key}' needs 1 to 50 non-empty values")
    location = i.get("outputLocation")
    if location:
        bucket = location.get("s3BucketName")
        if not bucket:
            raise EngineError(f"{type_} '{name}': outputLocation needs s3BucketName (S3 is the only output "
                              "location State Manager associations support)")
        aws.confirm("bucket", bucket, lambda: aws.client("s3").head_bucket(Bucket=bucket))
    for key in ("maxConcurrency", "maxErrors"):
        value = i.get(key)
        if value is not None and not re.fullmatch(r"\d+%?", str(value)):
            raise EngineError(f"{type_} '{name}': {key} must be a number or a percentage, got {value}")
    association_id = f"{abs(hash((name, document))) % 16**32:032x}"
    association_id = "-".join((association_id[:8], association_id[8:12], association_id[12:16],
                               association_id[16:20], association_id[20:]))
    aws.state.setdefault("associations", {})[association_id] = {**i, "associationId": association_id}
    return association_id, {"associationId": association_id,
                            "arn": aws.arn("ssm", f"association/{association_id}")}


# ---------------------------------------------------------------- invokes of existing things

@answers("aws:ec2/getVpc:getVpc")
def _get_vpc(aws: AwsBackend, args: dict[str, Any]) -> Outputs:
    vpc = aws.ec2.describe_vpcs(VpcIds=[args["id"]])["Vpcs"][0]
    return {"id": vpc["VpcId"], "cidrBlock": vpc["CidrBlock"], "arn": aws.arn("ec2", f"vpc/{vpc['VpcId']}"),
            "state": vpc["State"], "default": vpc.get("IsDefault", False), "ownerId": aws.account}


@answers("aws:ec2/getSubnet:getSubnet")
def _get_subnet(aws: AwsBackend, args: dict[str, Any]) -> Outputs:
    subnet = aws.ec2.describe_subnets(SubnetIds=[args["id"]])["Subnets"][0]
    return {"id": subnet["SubnetId"], "vpcId": subnet["VpcId"], "cidrBlock": subnet["CidrBlock"],
            "availabilityZone": subnet["AvailabilityZone"], "availabilityZoneId": subnet.get("AvailabilityZoneId", ""),
            "mapPublicIpOnLaunch": subnet.get("MapPublicIpOnLaunch", False),
            "arn": subnet.get("SubnetArn", aws.arn("ec2", f"subnet/{subnet['SubnetId']}"))}


# ---------------------------------------------------------------- compute

def _truthy(value: Any) -> bool:
    """The provider takes some booleans of launch templates as strings ("true")."""
    return value is True or str(value).lower() == "true"


def _launch_template_data(aws: AwsBackend, name: str, i: dict[str, Any]) -> dict[str, Any]:
    type_ = "LaunchTemplate"
    data: dict[str, Any] = {}
    if i.get("imageId"):
        image = i["imageId"]
        if not image.startswith("resolve:ssm:"):
            def image_exists() -> None:
                if not aws.ec2.describe_images(ImageIds=[image])["Images"]:
                    raise EngineError(f"{type_} '{name}': image {image} does not exist")
            aws.confirm("image", image, image_exists)
        data["ImageId"] = image
    if i.get("instanceType"):
        data["InstanceType"] = i["instanceType"]
    if i.get("keyName"):
        aws.ec2.describe_key_pairs(KeyNames=[i["keyName"]])
        data["KeyName"] = i["keyName"]
    profile = i.get("iamInstanceProfile") or {}
    if profile:
        profile_name = profile.get("name") or str(profile.get("arn", "")).rsplit("/", 1)[-1]
        aws.client("iam").get_instance_profile(InstanceProfileName=profile_name)
        data["IamInstanceProfile"] = {"Arn": profile["arn"]} if profile.get("arn") else {"Name": profile_name}
    metadata = i.get("metadataOptions") or {}
    if metadata:
        tokens = metadata.get("httpTokens", "optional")
        if tokens not in ("optional", "required"):
            raise EngineError(f"{type_} '{name}': metadataOptions.httpTokens must be optional or required")
        hops = as_int(metadata.get("httpPutResponseHopLimit", 1))
        if not 1 <= hops <= 64:
            raise EngineError(f"{type_} '{name}': metadataOptions.httpPutResponseHopLimit must be 1 to 64")
        data["MetadataOptions"] = {"HttpTokens": tokens, "HttpPutResponseHopLimit": hops,
                                   "HttpEndpoint": metadata.get("httpEndpoint", "enabled"),
                                   "InstanceMetadataTags": metadata.get("instanceMetadataTags", "disabled")}
    mappings = []
    for mapping in i.get("blockDeviceMappings") or []:
        ebs = mapping.get("ebs") or {}
        volume_type = ebs.get("volumeType", "gp3")
        if volume_type not in ("standard", "io1", "io2", "gp2", "gp3", "sc1", "st1"):
            raise EngineError(f"{type_} '{name}': unknown volume type {volume_type}")
        size = as_int(ebs.get("volumeSize", 8))
        if volume_type in ("gp2", "gp3") and not 1 <= size <= 16384:
            raise EngineError(f"{type_} '{name}': {volume_type} volumes are 1 to 16384 GiB, got {size}")
        out: dict[str, Any] = {"VolumeSize": size, "VolumeType": volume_type,
                               "Encrypted": _truthy(ebs.get("encrypted", False)),
                               "DeleteOnTermination": _truthy(ebs.get("deleteOnTermination", True))}
        if ebs.get("kmsKeyId"):
            if not out["Encrypted"]:
                raise EngineError(f"{type_} '{name}': kmsKeyId needs encrypted = true")
            aws.client("kms").describe_key(KeyId=ebs["kmsKeyId"])
            out["KmsKeyId"] = ebs["kmsKeyId"]
        for key, target in (("iops", "Iops"), ("throughput", "Throughput")):
            if ebs.get(key) is not None:
                out[target] = as_int(ebs[key])
        mappings.append({"DeviceName": need(mapping, "deviceName", type_, name), "Ebs": out})
    if mappings:
        data["BlockDeviceMappings"] = mappings
    interfaces = []
    for nic in i.get("networkInterfaces") or []:
        groups = list(nic.get("securityGroups") or [])
        if groups:
            found = aws.ec2.describe_security_groups(GroupIds=groups)["SecurityGroups"]
            if len({g["VpcId"] for g in found}) > 1:
                raise EngineError(f"{type_} '{name}': security groups of one interface must share a VPC")
        entry: dict[str, Any] = {"DeviceIndex": as_int(nic.get("deviceIndex", 0)), "Groups": groups,
                                 "DeleteOnTermination": _truthy(nic.get("deleteOnTermination", True))}
        if nic.get("associatePublicIpAddress") not in (None, ""):
            entry["AssociatePublicIpAddress"] = _truthy(nic["associatePublicIpAddress"])
        if nic.get("subnetId"):
            entry["SubnetId"] = nic["subnetId"]
        interfaces.append(entry)
    if interfaces:
        if i.get("vpcSecurityGroupIds"):
            raise EngineError(f"{type_} '{name}': InvalidParameterCombination: network interfaces and "
                              "instance-level security groups may not be specified together")
        data["NetworkInterfaces"] = interfaces
    if i.get("vpcSecurityGroupIds"):
        aws.ec2.describe_security_groups(GroupIds=list(i["vpcSecurityGroupIds"]))
        data["SecurityGroupIds"] = list(i["vpcSecurityGroupIds"])
    if i.get("userData"):
        import base64
        import binascii
        try:
            raw = base64.b64decode(i["userData"], validate=True)
        except (binascii.Error, ValueError):
            raise EngineError(f"{type_} '{name}': userData must be base64-encoded") from None
        if len(raw) > 16 * 1024:
            raise EngineError(f"{type_} '{name}': user data is {len(raw)} bytes; EC2 takes at most 16 KB")
        data["UserData"] = i["userData"]
    specs = []
    for spec in i.get("tagSpecifications") or []:
        kind = spec.get("resourceType")
        if kind not in ("instance", "volume", "network-interface", "spot-instances-request", "elastic-gpu"):
            raise EngineError(f"{type_} '{name}': tag specifications cannot tag {kind}")
        tags = [{"Key": k, "Value": v} for k, v in (spec.get("tags") or {}).items()]
        specs.append({"ResourceType": kind, "Tags": tags})
    if specs:
        data["TagSpecifications"] = specs
    if i.get("monitoring"):
        data["Monitoring"] = {"Enabled": _truthy(i["monitoring"].get("enabled", False))}
    return data


@handles("aws:ec2/launchTemplate:LaunchTemplate")
def _launch_template(aws: AwsBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    template_name = i.get("name") or f"{i.get('namePrefix', name)}{abs(hash(name)) % 10**8:08d}"
    kwargs: dict[str, Any] = {"LaunchTemplateName": template_name,
                              "LaunchTemplateData": _launch_template_data(aws, name, i)}
    if i.get("tags"):
        kwargs["TagSpecifications"] = tag_specs("launch-template", i)
    template = aws.ec2.create_launch_template(**kwargs)["LaunchTemplate"]
    tid = template["LaunchTemplateId"]
    # What _check_architectures reads of a template this run made: its one version's image
    # and type, without reading the version back (its user data, 16 KiB a group, serialised
    # and parsed again).
    data = kwargs["LaunchTemplateData"]
    aws.state.setdefault("template_launch", {})[tid] = (data.get("ImageId", ""), data.get("InstanceType"))
    return tid, {"arn": aws.arn("ec2", f"launch-template/{tid}"), "name": template_name,
                 "latestVersion": template["LatestVersionNumber"],
                 "defaultVersion": template["DefaultVersionNumber"], **tags_all(i)}


LIFECYCLE_TRANSITIONS = ("autoscaling:EC2_INSTANCE_LAUNCHING", "autoscaling:EC2_INSTANCE_TERMINATING")
SPOT_STRATEGIES = ("lowest-price", "capacity-optimized", "capacity-optimized-prioritized", "price-capacity-optimized")


def check_lifecycle_hook(hook: dict[str, Any]) -> str | None:
    """Why Auto Scaling would refuse a lifecycle hook, or None."""
    name = hook.get("name") or hook.get("lifecycleHookName") or ""
    if not re.fullmatch(r"[A-Za-z0-9\-_/]{1,255}", name):
        return f"hook name '{name}' must be 1 to 255 letters, digits, -, _ or /"
    if hook.get("lifecycleTransition") not in LIFECYCLE_TRANSITIONS:
        return f"lifecycleTransition must be one of {LIFECYCLE_TRANSITIONS}"
    heartbeat = hook.get("heartbeatTimeout")
    if heartbeat is not None and not 30 <= as_int(heartbeat) <= 7200:
        return f"heartbeatTimeout {as_int(heartbeat)} is outside 30 to 7200 seconds"
    if hook.get("defaultResult", "ABANDON") not in ("CONTINUE", "ABANDON"):
        return "defaultResult must be CONTINUE or ABANDON"
    if bool(hook.get("notificationTargetArn")) != bool(hook.get("roleArn")):
        return "notificationTargetArn and roleArn go together"
    return None


def check_instance_refresh(refresh: dict[str, Any], has_template: bool) -> str | None:
    """Why Auto Scaling would refuse these instance refresh settings, or None. moto
    does not model instance refresh; these are the rules of StartInstanceRefresh."""
    if refresh.get("strategy") != "Rolling":
        return "strategy must be Rolling"
    prefs = refresh.get("preferences") or {}
    low = prefs.get("minHealthyPercentage")
    high = prefs.get("maxHealthyPercentage")
    low_i = 90 if low is None else as_int(low)
    if not 0 <= low_i <= 100:
        return f"minHealthyPercentage {low_i} is outside 0 to 100"
    if high is not None:
        high_i = as_int(high)
        if not 100 <= high_i <= 200:
            return f"maxHealthyPercentage {high_i} is outside 100 to 200"
        if low is None:
            return "maxHealthyPercentage needs minHealthyPercentage"
        if high_i - low_i > 100:
            return "maxHealthyPercentage may exceed minHealthyPercentage by at most 100"
    checkpoints = [as_int(c) for c in prefs.get("checkpointPercentages") or []]
    if checkpoints and (any(not 1 <= c <= 100 for c in checkpoints) or checkpoints != sorted(set(checkpoints))):
        return "checkpointPercentages must be rising values from 1 to 100"
    delay = prefs.get("checkpointDelay")
    if delay not in (None, "") and not 0 <= as_int(delay) <= 172800:
        return "checkpointDelay must be 0 to 172800 seconds"
    warmup = prefs.get("instanceWarmup")
    if warmup not in (None, "") and as_int(warmup) < 0:
        return "instanceWarmup must not be negative"
    for key, allowed in (("scaleInProtectedInstances", ("Refresh", "Ignore", "Wait")),
                         ("standbyInstances", ("Terminate", "Ignore", "Wait"))):
        if prefs.get(key) not in (None, *allowed):
            return f"{key} must be one of {allowed}"
    if (prefs.get("skipMatching") or prefs.get("autoRollback")) and not has_template:
        return "skipMatching and autoRollback need a launch template"
    return None


def _template_spec(spec: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if spec.get("id") or spec.get("launchTemplateId"):
        out["LaunchTemplateId"] = spec.get("id") or spec.get("launchTemplateId")
    if spec.get("name") or spec.get("launchTemplateName"):
        out["LaunchTemplateName"] = spec.get("name") or spec.get("launchTemplateName")
    if spec.get("version") not in (None, ""):
        out["Version"] = str(spec["version"]).removesuffix(".0")
    return out


@handles("aws:autoscaling/group:Group")
def _asg(aws: AwsBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    type_ = "autoscaling Group"
    asg = aws.client("autoscaling")
    group = i.get("name") or f"{i.get('namePrefix', name)}-{abs(hash(name)) % 10**7:07d}"
    low, high = as_int(need(i, "minSize", type_, name)), as_int(need(i, "maxSize", type_, name))
    desired = as_int(i["desiredCapacity"]) if i.get("desiredCapacity") is not None else low
    if not low <= desired <= high:
        raise EngineError(f"{type_} '{name}': ValidationError: desired capacity {desired} is outside "
                          f"min {low} to max {high}")
    subnets = list(i.get("vpcZoneIdentifiers") or [])
    if not subnets:
        raise EngineError(f"{type_} '{name}': vpcZoneIdentifiers is required in a VPC")
    found = aws.ec2.describe_subnets(SubnetIds=subnets)["Subnets"]
    if len({s["VpcId"] for s in found}) != 1:
        raise EngineError(f"{type_} '{name}': ValidationError: the subnets are in different VPCs")
    kwargs: dict[str, Any] = {"AutoScalingGroupName": group, "MinSize": low, "MaxSize": high,
                              "DesiredCapacity": desired, "VPCZoneIdentifier": ",".join(subnets),
                              "NewInstancesProtectedFromScaleIn": bool(i.get("protectFromScaleIn", False)),
                              "CapacityRebalance": bool(i.get("capacityRebalance", False))}
    template, mixed = i.get("launchTemplate"), i.get("mixedInstancesPolicy") or {}
    if bool(template) == bool(mixed):
        raise EngineError(f"{type_} '{name}': give exactly one of launchTemplate and mixedInstancesPolicy")
    if template:
        kwargs["LaunchTemplate"] = _template_spec(template)
    else:
        spec = (mixed.get("launchTemplate") or {})
        overrides = spec.get("overrides") or []
        if not 1 <= len(overrides) <= 40:
            raise EngineError(f"{type_} '{name}': a mixed instances policy takes 1 to 40 overrides")
        distribution = mixed.get("instancesDistribution") or {}
        strategy = distribution.get("spotAllocationStrategy", "lowest-price")
        if strategy not in SPOT_STRATEGIES:
            raise EngineError(f"{type_} '{name}': spotAllocationStrategy must be one of {SPOT_STRATEGIES}")
        share = as_int(distribution.get("onDemandPercentageAboveBaseCapacity", 100))
        if not 0 <= share <= 100:
            raise EngineError(f"{type_} '{name}': onDemandPercentageAboveBaseCapacity must be 0 to 100")
        template_spec = _template_spec(spec.get("launchTemplateSpecification") or {})
        if "LaunchTemplateId" in template_spec:  # moto does not check the template of a mixed policy
            aws.ec2.describe_launch_templates(LaunchTemplateIds=[template_spec["LaunchTemplateId"]])
        kwargs["MixedInstancesPolicy"] = {
            "LaunchTemplate": {"LaunchTemplateSpecification": template_spec,
                               "Overrides": [{"InstanceType": o["instanceType"]} for o in overrides]},
            "InstancesDistribution": {"OnDemandBaseCapacity": as_int(distribution.get("onDemandBaseCapacity", 0)),
                                      "OnDemandPercentageAboveBaseCapacity": share,
                                      "SpotAllocationStrategy": strategy}}
    _check_architectures(aws, type_, name, kwargs)
    if i.get("healthCheckType"):
        if i["healthCheckType"] not in ("EC2", "ELB", "VPC_LATTICE", "EBS"):
            raise EngineError(f"{type_} '{name}': unknown healthCheckType {i['healthCheckType']}")
        kwargs["HealthCheckType"] = i["healthCheckType"]
    if i.get("healthCheckGracePeriod") is not None:
        kwargs["HealthCheckGracePeriod"] = as_int(i["healthCheckGracePeriod"])
    if i.get("terminationPolicies"):
        kwargs["TerminationPolicies"] = list(i["terminationPolicies"])
    tags = [{"Key": t["key"], "Value": t["value"], "PropagateAtLaunch": bool(t.get("propagateAtLaunch", False))}
            for t in i.get("tags") or []]
    if tags:
        kwargs["Tags"] = tags
    hooks = i.get("initialLifecycleHooks") or []
    for hook in hooks:
        problem = check_lifecycle_hook(hook)
        if problem:
            raise EngineError(f"{type_} '{name}': ValidationError: lifecycle hook: {problem}")
    refresh = i.get("instanceRefresh")
    if refresh:
        problem = check_instance_refresh(refresh, has_template=True)
        if problem:
            raise EngineError(f"{type_} '{name}': ValidationError: instance refresh: {problem}")
    if i.get("targetGroupArns"):
        aws.client("elbv2").describe_target_groups(TargetGroupArns=list(i["targetGroupArns"]))
        kwargs["TargetGroupARNs"] = list(i["targetGroupArns"])
    asg.create_auto_scaling_group(**kwargs)
    for hook in hooks:
        hook_kwargs: dict[str, Any] = {"LifecycleHookName": hook["name"], "AutoScalingGroupName": group,
                                       "LifecycleTransition": hook["lifecycleTransition"],
                                       "DefaultResult": hook.get("defaultResult", "ABANDON")}
        if hook.get("heartbeatTimeout") is not None:
            hook_kwargs["HeartbeatTimeout"] = as_int(hook["heartbeatTimeout"])
        asg.put_lifecycle_hook(**hook_kwargs)
    if i.get("suspendedProcesses"):
        asg.suspend_processes(AutoScalingGroupName=group, ScalingProcesses=list(i["suspendedProcesses"]))
    if i.get("enabledMetrics"):
        asg.enable_metrics_collection(AutoScalingGroupName=group, Metrics=list(i["enabledMetrics"]),
                                      Granularity=i.get("metricsGranularity", "1Minute"))
    if refresh:
        aws.state.setdefault("instance_refresh", {})[group] = refresh
    # The group's ARN and zones, read from moto's model of the group it made: what
    # DescribeAutoScalingGroups answers, without its list of the group's instances to
    # serialise and parse (100 instances for a pool of 100). What an attachment checks is
    # kept for it, for the same reason.
    from moto.autoscaling.models import autoscaling_backends

    made = autoscaling_backends[aws.account][aws.region].autoscaling_groups[group]
    aws.state.setdefault("group_subnets", {})[group] = made.vpc_zone_identifier
    return group, {"name": group, "arn": made.arn, "availabilityZones": list(made.availability_zones),
                   "desiredCapacity": desired}


def _check_architectures(aws: AwsBackend, type_: str, name: str, kwargs: dict[str, Any]) -> None:
    """EC2 refuses to launch an image on an instance type of another architecture
    (and an unknown instance type); an auto scaling group would fail every launch."""
    mixed = kwargs.get("MixedInstancesPolicy")
    spec = mixed["LaunchTemplate"]["LaunchTemplateSpecification"] if mixed else kwargs["LaunchTemplate"]
    if "LaunchTemplateId" not in spec:
        return
    made = aws.state.get("template_launch", {}).get(spec["LaunchTemplateId"])
    if made is None:
        versions = aws.ec2.describe_launch_template_versions(LaunchTemplateId=spec["LaunchTemplateId"])
        data = versions["LaunchTemplateVersions"][0]["LaunchTemplateData"]
        made = (data.get("ImageId", ""), data.get("InstanceType"))
    image, instance_type = made
    types = [o["InstanceType"] for o in mixed["LaunchTemplate"]["Overrides"]] if mixed else \
        [instance_type] if instance_type else []
    if not image or image.startswith("resolve:ssm:") or not types:
        return
    images = aws.ec2.describe_images(ImageIds=[image])["Images"]
    if not images:
        raise EngineError(f"{type_} '{name}': image {image} does not exist")
    arch = images[0].get("Architecture", "x86_64")
    for info in aws.ec2.describe_instance_types(InstanceTypes=types)["InstanceTypes"]:
        supported = info.get("ProcessorInfo", {}).get("SupportedArchitectures", [])
        if supported and arch not in supported:
            raise EngineError(f"{type_} '{name}': InvalidParameterValue: image {image} is {arch}, instance type "
                              f"{info['InstanceType']} runs {', '.join(supported)}")


@handles("aws:autoscaling/attachment:Attachment")
def _asg_attachment(aws: AwsBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    type_ = "autoscaling Attachment"
    group = need(i, "autoscalingGroupName", type_, name)
    asg = aws.client("autoscaling")
    subnets = aws.state.get("group_subnets", {}).get(group)  # a group this run made (_asg): it exists
    if subnets is None:
        found = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"]
        if not found:
            raise EngineError(f"{type_} '{name}': ValidationError: auto scaling group {group} does not exist")
        subnets = found[0]["VPCZoneIdentifier"]
    target_group = need(i, "lbTargetGroupArn", type_, name)
    described = aws.client("elbv2").describe_target_groups(TargetGroupArns=[target_group])["TargetGroups"][0]
    vpcs = {s["VpcId"] for s in aws.ec2.describe_subnets(SubnetIds=subnets.split(","))["Subnets"]}
    if vpcs != {described["VpcId"]}:
        raise EngineError(f"{type_} '{name}': target group {described['TargetGroupName']} is in "
                          f"{described['VpcId']}, the group's instances in {sorted(vpcs)}")
    asg.attach_load_balancer_target_groups(AutoScalingGroupName=group, TargetGroupARNs=[target_group])
    return f"{group}-{abs(hash(target_group)) % 10**8:08d}", {}


# ---------------------------------------------------------------- load balancing

def _lb_name(i: dict[str, Any], name: str) -> str:
    base = i.get("name") or f"{i.get('namePrefix', name)[:24]}-{abs(hash(name)) % 10**6:06d}"
    if not re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,30}[A-Za-z0-9])?", base) or base.startswith("internal-"):
        raise EngineError(f"'{name}': load balancer and target group names are 1 to 32 letters, digits "
                          f"and inner hyphens, got {base}")
    return base


def _suffix(arn: str, marker: str) -> str:
    return marker + arn.split(f":{marker}", 1)[-1] if f":{marker}" in arn else arn.split(":")[-1]


@handles("aws:lb/loadBalancer:LoadBalancer")
def _load_balancer(aws: AwsBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    type_ = "lb LoadBalancer"
    elb = aws.client("elbv2")
    kind = i.get("loadBalancerType", "application")
    internal = bool(i.get("internal", False))
    subnets = list(i.get("subnets") or [])
    found = aws.ec2.describe_subnets(SubnetIds=subnets)["Subnets"] if subnets else []
    zones = [s["AvailabilityZone"] for s in found]
    if len(zones) != len(set(zones)):
        raise EngineError(f"{type_} '{name}': InvalidConfigurationRequest: a load balancer takes one subnet "
                          f"per availability zone, got {zones}")
    if not internal and found:
        vpc = found[0]["VpcId"]
        gateways = aws.ec2.describe_internet_gateways(
            Filters=[{"Name": "attachment.vpc-id", "Values": [vpc]}])["InternetGateways"]
        if not gateways:
            raise EngineError(f"{type_} '{name}': InvalidSubnet: VPC {vpc} has no internet gateway")
    kwargs: dict[str, Any] = {"Name": _lb_name(i, name), "Subnets": subnets, "Type": kind,
                              "Scheme": "internal" if internal else "internet-facing",
                              "IpAddressType": i.get("ipAddressType", "ipv4")}
    if i.get("securityGroups"):
        aws.ec2.describe_security_groups(GroupIds=list(i["securityGroups"]))
        kwargs["SecurityGroups"] = list(i["securityGroups"])
    if i.get("tags"):
        kwargs["Tags"] = [{"Key": k, "Value": v} for k, v in i["tags"].items()]
    lb = elb.create_load_balancer(**kwargs)["LoadBalancers"][0]
    arn = lb["LoadBalancerArn"]
    attributes = [{"Key": "deletion_protection.enabled", "Value": str(bool(i.get("enableDeletionProtection"))).lower()}]
    if i.get("enableCrossZoneLoadBalancing") is not None:
        attributes.append({"Key": "load_balancing.cross_zone.enabled",
                           "Value": str(bool(i["enableCrossZoneLoadBalancing"])).lower()})
    logs = i.get("accessLogs") or {}
    if logs.get("enabled"):
        bucket = need(logs, "bucket", type_, name)
        aws.confirm("bucket", bucket, lambda: aws.client("s3").head_bucket(Bucket=bucket))
        attributes += [{"Key": "access_logs.s3.enabled", "Value": "true"},
                       {"Key": "access_logs.s3.bucket", "Value": logs["bucket"]},
                       {"Key": "access_logs.s3.prefix", "Value": logs.get("prefix", "")}]
    elb.modify_load_balancer_attributes(LoadBalancerArn=arn, Attributes=attributes)
    return arn, {"arn": arn, "arnSuffix": _suffix(arn, "loadbalancer/")[len("loadbalancer/"):],
                 "dnsName": lb["DNSName"], "zoneId": lb.get("CanonicalHostedZoneId", ""),
                 "name": lb["LoadBalancerName"],
                 "vpcId": lb.get("VpcId", ""), **tags_all(i)}


@handles("aws:lb/targetGroup:TargetGroup")
def _target_group(aws: AwsBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    type_ = "lb TargetGroup"
    protocol = need(i, "protocol", type_, name)
    health = i.get("healthCheck") or {}
    health_protocol = health.get("protocol", "HTTP" if protocol.startswith("HTTP") else "TCP")
    if protocol in ("UDP", "TCP_UDP") and health_protocol not in ("TCP", "HTTP", "HTTPS"):
        raise EngineError(f"{type_} '{name}': a {protocol} target group needs a TCP, HTTP or HTTPS health check")
    kwargs: dict[str, Any] = {"Name": _lb_name(i, name), "Protocol": protocol,
                              "Port": as_int(need(i, "port", type_, name)),
                              "VpcId": need(i, "vpcId", type_, name), "TargetType": i.get("targetType", "instance"),
                              "HealthCheckProtocol": health_protocol,
                              "HealthCheckPort": str(health.get("port", "traffic-port"))}
    for key, target in (("interval", "HealthCheckIntervalSeconds"), ("healthyThreshold", "HealthyThresholdCount"),
                        ("unhealthyThreshold", "UnhealthyThresholdCount"), ("timeout", "HealthCheckTimeoutSeconds")):
        if health.get(key) is not None:
            kwargs[target] = as_int(health[key])
    if health.get("path"):
        kwargs["HealthCheckPath"] = health["path"]
    if i.get("tags"):
        kwargs["Tags"] = [{"Key": k, "Value": v} for k, v in i["tags"].items()]
    group = aws.client("elbv2").create_target_group(**kwargs)["TargetGroups"][0]
    arn = group["TargetGroupArn"]
    if i.get("deregistrationDelay") is not None:
        delay = as_int(i["deregistrationDelay"])
        if not 0 <= delay <= 3600:
            raise EngineError(f"{type_} '{name}': deregistrationDelay must be 0 to 3600 seconds")
        aws.client("elbv2").modify_target_group_attributes(
            TargetGroupArn=arn, Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": str(delay)}])
    return arn, {"arn": arn, "arnSuffix": _suffix(arn, "targetgroup/"), "name": group["TargetGroupName"],
                 **tags_all(i)}


@handles("aws:lb/listener:Listener")
def _listener(aws: AwsBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    type_ = "lb Listener"
    elb = aws.client("elbv2")
    lb_arn = need(i, "loadBalancerArn", type_, name)
    lb = elb.describe_load_balancers(LoadBalancerArns=[lb_arn])["LoadBalancers"][0]
    protocol = need(i, "protocol", type_, name)
    if lb["Type"] == "network" and protocol not in ("TCP", "UDP", "TCP_UDP", "TLS"):
        raise EngineError(f"{type_} '{name}': a network load balancer listens on TCP, UDP, TCP_UDP or TLS")
    actions = []
    for action in i.get("defaultActions") or []:
        if action.get("type") != "forward" or not action.get("targetGroupArn"):
            raise EngineError(f"{type_} '{name}': only forward actions to a target group are modelled")
        group = elb.describe_target_groups(TargetGroupArns=[action["targetGroupArn"]])["TargetGroups"][0]
        if group["Protocol"] != protocol and not (group["Protocol"] == "TCP_UDP" and protocol in ("TCP", "UDP")):
            raise EngineError(f"{type_} '{name}': a {protocol} listener cannot forward to a "
                              f"{group['Protocol']} target group")
        if group["VpcId"] != lb["VpcId"]:
            raise EngineError(f"{type_} '{name}': the target group is in another VPC than the load balancer")
        actions.append({"Type": "forward", "TargetGroupArn": action["targetGroupArn"]})
    if not actions:
        raise EngineError(f"{type_} '{name}': defaultActions is required")
    listener = elb.create_listener(LoadBalancerArn=lb_arn, Protocol=protocol,
                                   Port=as_int(need(i, "port", type_, name)), DefaultActions=actions)["Listeners"][0]
    return listener["ListenerArn"], {"arn": listener["ListenerArn"], **tags_all(i)}


# ---------------------------------------------------------------- monitoring

@handles("aws:cloudwatch/logMetricFilter:LogMetricFilter")
def _metric_filter(aws: AwsBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    type_ = "cloudwatch LogMetricFilter"
    logs = aws.client("logs")
    group = need(i, "logGroupName", type_, name)
    if not any(g["logGroupName"] == group for g in logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]):
        raise EngineError(f"{type_} '{name}': ResourceNotFoundException: log group {group} does not exist")
    transform = need(i, "metricTransformation", type_, name)
    metric: dict[str, Any] = {"metricName": transform["name"], "metricNamespace": transform["namespace"],
                              "metricValue": transform["value"]}
    if transform.get("defaultValue") not in (None, ""):
        metric["defaultValue"] = float(transform["defaultValue"])
    filter_name = i.get("name") or name
    logs.put_metric_filter(logGroupName=group, filterName=filter_name,
                           filterPattern=need(i, "pattern", type_, name), metricTransformations=[metric])
    return filter_name, {"name": filter_name}


ALARM_OPERATORS = ("GreaterThanOrEqualToThreshold", "GreaterThanThreshold", "LessThanThreshold",
                   "LessThanOrEqualToThreshold")
ALARM_STATISTICS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")


@handles("aws:cloudwatch/metricAlarm:MetricAlarm")
def _metric_alarm(aws: AwsBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    type_ = "cloudwatch MetricAlarm"
    alarm = i.get("name") or name
    operator = need(i, "comparisonOperator", type_, name)
    if operator not in ALARM_OPERATORS:
        raise EngineError(f"{type_} '{name}': comparisonOperator must be one of {ALARM_OPERATORS}")
    statistic = i.get("statistic")
    if statistic not in ALARM_STATISTICS:
        raise EngineError(f"{type_} '{name}': statistic must be one of {ALARM_STATISTICS}")
    period = as_int(need(i, "period", type_, name))
    if period not in (10, 20, 30) and period % 60:
        raise EngineError(f"{type_} '{name}': period must be 10, 20, 30 or a multiple of 60, got {period}")
    periods = as_int(need(i, "evaluationPeriods", type_, name))
    if i.get("datapointsToAlarm") is not None and not 1 <= as_int(i["datapointsToAlarm"]) <= periods:
        raise EngineError(f"{type_} '{name}': datapointsToAlarm must be 1 to evaluationPeriods")
    missing = i.get("treatMissingData", "missing")
    if missing not in ("breaching", "notBreaching", "ignore", "missing"):
        raise EngineError(f"{type_} '{name}': unknown treatMissingData {missing}")
    actions = list(i.get("alarmActions") or []) + list(i.get("okActions") or [])
    for action in actions:
        if action.startswith("arn:aws:sns:"):
            aws.confirm("topic", action, functools.partial(aws.client("sns").get_topic_attributes, TopicArn=action))
    kwargs: dict[str, Any] = {
        "AlarmName": alarm, "ComparisonOperator": operator, "EvaluationPeriods": periods,
        "MetricName": need(i, "metricName", type_, name), "Namespace": need(i, "namespace", type_, name),
        "Period": period, "Statistic": statistic, "Threshold": float(need(i, "threshold", type_, name)),
        "TreatMissingData": missing, "AlarmDescription": i.get("alarmDescription", ""),
        "Dimensions": [{"Name": k, "Value": v} for k, v in (i.get("dimensions") or {}).items()],
        "AlarmActions": list(i.get("alarmActions") or []), "OKActions": list(i.get("okActions") or [])}
    if i.get("datapointsToAlarm") is not None:
        kwargs["DatapointsToAlarm"] = as_int(i["datapointsToAlarm"])
    aws.client("cloudwatch").put_metric_alarm(**kwargs)
    return alarm, {"arn": aws.arn("cloudwatch", f"alarm:{alarm}"), **tags_all(i)}


@handles("aws:cloudwatch/dashboard:Dashboard")
def _dashboard(aws: AwsBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    type_ = "cloudwatch Dashboard"
    dashboard = need(i, "dashboardName", type_, name)
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,255}", dashboard):
        raise EngineError(f"{type_} '{name}': dashboard names are letters, digits, - and _")
    body = need(i, "dashboardBody", type_, name)
    try:
        widgets = json.loads(body).get("widgets")
    except (ValueError, AttributeError):
        widgets = None
    if not isinstance(widgets, list):
        raise EngineError(f"{type_} '{name}': InvalidParameterInput: the body must be JSON with a widgets list")
    for widget in widgets:
        if widget.get("type") not in ("metric", "text", "log", "alarm", "explorer"):
            raise EngineError(f"{type_} '{name}': unknown widget type {widget.get('type')}")
    aws.client("cloudwatch").put_dashboard(DashboardName=dashboard, DashboardBody=body)
    return dashboard, {"dashboardArn": aws.arn("cloudwatch", f"dashboard/{dashboard}", region=False)}


@handles("aws:sns/topic:Topic")
def _topic(aws: AwsBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    topic = i.get("name") or f"{i.get('namePrefix', name)}-{abs(hash(name)) % 10**7:07d}"
    kwargs: dict[str, Any] = {"Name": topic}
    if i.get("kmsMasterKeyId"):
        kwargs["Attributes"] = {"KmsMasterKeyId": i["kmsMasterKeyId"]}
    if i.get("tags"):
        kwargs["Tags"] = [{"Key": k, "Value": v} for k, v in i["tags"].items()]
    arn = aws.client("sns").create_topic(**kwargs)["TopicArn"]
    aws.made.add(("topic", arn))
    return arn, {"arn": arn, "name": topic, **tags_all(i)}


SNS_PROTOCOLS = ("http", "https", "email", "email-json", "sms", "sqs", "application", "lambda", "firehose")
SNS_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


@handles("aws:sns/topicSubscription:TopicSubscription")
def _topic_subscription(aws: AwsBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    """moto subscribes any endpoint under any protocol; SNS refuses an unknown protocol, an
    email endpoint that is not an address and a URL whose scheme is not the protocol's,
    so the handler checks those itself. Email and HTTPS subscriptions stay pending until
    the endpoint confirms (the provider asks SNS for the ARN at once)."""
    type_ = "sns TopicSubscription"
    topic = need(i, "topic", type_, name)
    protocol = need(i, "protocol", type_, name)
    endpoint = need(i, "endpoint", type_, name)
    if protocol not in SNS_PROTOCOLS:
        raise EngineError(f"{type_} '{name}': InvalidParameter: Invalid parameter: Protocol {protocol}; one of "
                          f"{SNS_PROTOCOLS}")
    if protocol.startswith("email") and not SNS_EMAIL.fullmatch(endpoint):
        raise EngineError(f"{type_} '{name}': InvalidParameter: Invalid parameter: Email address {endpoint}")
    if protocol in ("http", "https") and not endpoint.startswith(f"{protocol}://"):
        raise EngineError(f"{type_} '{name}': InvalidParameter: Invalid parameter: Endpoint must match the "
                          f"specified protocol ({endpoint} is not {protocol}://)")
    sns = aws.client("sns")
    aws.confirm("topic", topic, lambda: sns.get_topic_attributes(TopicArn=topic))
    arn = sns.subscribe(TopicArn=topic, Protocol=protocol, Endpoint=endpoint,
                        ReturnSubscriptionArn=True)["SubscriptionArn"]
    pending = protocol in ("http", "https", "email", "email-json")
    return arn, {"arn": arn, "ownerId": aws.account, "pendingConfirmation": pending,
                 "confirmationWasAuthenticated": not pending}


SCHEDULE_EXPRESSION = re.compile(
    r"at\(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\)|rate\(\d+ (minute|hour|day)s?\)|cron\(.+\)")


@handles("aws:scheduler/schedule:Schedule")
def _schedule(aws: AwsBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    """moto keeps a schedule as given; EventBridge Scheduler refuses an expression that
    is not `at(yyyy-mm-ddThh:mm:ss)`, `rate(...)` or `cron(...)`, a time window mode
    other than OFF or FLEXIBLE and (at invocation, which the handler checks now) a role
    or SNS target that does not exist."""
    type_ = "scheduler Schedule"
    schedule = i.get("name") or f"{name}-{abs(hash(name)) % 10**7:07d}"
    expression = need(i, "scheduleExpression", type_, name)
    if not SCHEDULE_EXPRESSION.fullmatch(expression):
        raise EngineError(f"{type_} '{name}': ValidationException: {expression} is not at(yyyy-mm-ddThh:mm:ss), "
                          "rate(value unit) or cron(fields)")
    window = need(i, "flexibleTimeWindow", type_, name)
    if window.get("mode") not in ("OFF", "FLEXIBLE"):
        raise EngineError(f"{type_} '{name}': flexibleTimeWindow.mode must be OFF or FLEXIBLE, got "
                          f"{window.get('mode')}")
    target = need(i, "target", type_, name)
    arn, role = need(target, "arn", type_, name), need(target, "roleArn", type_, name)
    if arn.startswith("arn:aws:sns:"):
        aws.confirm("topic", arn, lambda: aws.client("sns").get_topic_attributes(TopicArn=arn))
    aws.client("iam").get_role(RoleName=role.rsplit("/", 1)[-1])
    boto_target: dict[str, Any] = {"Arn": arn, "RoleArn": role}
    if target.get("input") is not None:
        boto_target["Input"] = target["input"]
    kwargs: dict[str, Any] = {"Name": schedule, "ScheduleExpression": expression, "Target": boto_target,
                              "FlexibleTimeWindow": {"Mode": window["mode"], **(
                                  {"MaximumWindowInMinutes": as_int(window["maximumWindowInMinutes"])}
                                  if window.get("maximumWindowInMinutes") is not None else {})},
                              "State": i.get("state", "ENABLED"),
                              "ActionAfterCompletion": i.get("actionAfterCompletion", "NONE")}
    for key, boto_key in (("scheduleExpressionTimezone", "ScheduleExpressionTimezone"),
                          ("description", "Description"), ("groupName", "GroupName")):
        if i.get(key):
            kwargs[boto_key] = i[key]
    out = aws.client("scheduler").create_schedule(**kwargs)
    return schedule, {"arn": out["ScheduleArn"], "name": schedule}


# ---------------------------------------------------------------- s3

S3_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


@handles("aws:s3/bucket:Bucket")
def _bucket(aws: AwsBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    bucket = i.get("bucket") or f"{i.get('bucketPrefix', name)}-{abs(hash(name)) % 10**7:07d}".lower()
    if not S3_BUCKET_NAME.match(bucket) or ".." in bucket:
        raise EngineError(f"s3 Bucket '{name}': InvalidBucketName: {bucket}")
    s3 = aws.client("s3")
    kwargs: dict[str, Any] = {"Bucket": bucket}
    if aws.region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": aws.region}
    s3.create_bucket(**kwargs)
    aws.made.add(("bucket", bucket))
    if i.get("tags"):
        s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in i["tags"].items()]})
    return bucket, {"bucket": bucket, "arn": f"arn:aws:s3:::{bucket}", "region": aws.region,
                    "bucketDomainName": f"{bucket}.s3.amazonaws.com", **tags_all(i)}


def _existing_bucket(aws: AwsBackend, type_: str, name: str, i: dict[str, Any]) -> str:
    bucket = need(i, "bucket", type_, name)
    aws.confirm("bucket", bucket, lambda: aws.client("s3").head_bucket(Bucket=bucket))
    return bucket


@handles("aws:s3/bucketPolicy:BucketPolicy")
def _bucket_policy(aws: AwsBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    bucket = _existing_bucket(aws, "s3 BucketPolicy", name, i)
    document = policy_document(need(i, "policy", "s3 BucketPolicy", name))
    for statement in document.get("Statement", []):
        for resource in as_list(statement.get("Resource")):
            if not (resource == f"arn:aws:s3:::{bucket}" or resource.startswith(f"arn:aws:s3:::{bucket}/")):
                raise EngineError(f"s3 BucketPolicy '{name}': MalformedPolicy: Policy has invalid resource "
                                  f"{resource} (not this bucket)")
    aws.client("s3").put_bucket_policy(Bucket=bucket, Policy=json.dumps(document))
    return bucket, {}


@handles("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
def _bucket_public_access_block(aws: AwsBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    bucket = _existing_bucket(aws, "s3 BucketPublicAccessBlock", name, i)
    keys = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    aws.client("s3").put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
        k[0].upper() + k[1:]: bool(i.get(k, False)) for k in keys})
    return bucket, {}


@handles("aws:s3/bucketOwnershipControls:BucketOwnershipControls")
def _bucket_ownership(aws: AwsBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    bucket = _existing_bucket(aws, "s3 BucketOwnershipControls", name, i)
    ownership = (i.get("rule") or {}).get("objectOwnership")
    if ownership not in ("BucketOwnerPreferred", "ObjectWriter", "BucketOwnerEnforced"):
        raise EngineError(f"s3 BucketOwnershipControls '{name}': unknown objectOwnership {ownership}")
    aws.client("s3").put_bucket_ownership_controls(
        Bucket=bucket, OwnershipControls={"Rules": [{"ObjectOwnership": ownership}]})
    return bucket, {}


@handles("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")
def _bucket_encryption(aws: AwsBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    bucket = _existing_bucket(aws, "s3 BucketServerSideEncryptionConfiguration", name, i)
    rules = []
    for rule in i.get("rules") or []:
        default = rule.get("applyServerSideEncryptionByDefault") or {}
        algorithm = default.get("sseAlgorithm")
        if algorithm not in ("AES256", "aws:kms", "aws:kms:dsse"):
            raise EngineError(f"s3 encryption '{name}': sseAlgorithm must be AES256, aws:kms or aws:kms:dsse")
        entry: dict[str, Any] = {"SSEAlgorithm": algorithm}
        if default.get("kmsMasterKeyId"):
            if algorithm == "AES256":
                raise EngineError(f"s3 encryption '{name}': InvalidArgument: kmsMasterKeyId is only for aws:kms "
                                  "or aws:kms:dsse, not AES256")
            # moto stores any key id; S3 encrypts nothing with a key that does not exist
            aws.client("kms").describe_key(KeyId=default["kmsMasterKeyId"])
            entry["KMSMasterKeyID"] = default["kmsMasterKeyId"]
        rules.append({"ApplyServerSideEncryptionByDefault": entry,
                      "BucketKeyEnabled": bool(rule.get("bucketKeyEnabled", False))})
    aws.client("s3").put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": rules})
    return bucket, {}


@handles("aws:s3/bucketVersioning:BucketVersioning")
def _bucket_versioning(aws: AwsBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    """moto takes any status string; S3 takes Enabled or Suspended (the provider also
    accepts Disabled, for a bucket that never had versioning: it makes no call), and MFA
    delete only with the device's code."""
    bucket = _existing_bucket(aws, "s3 BucketVersioning", name, i)
    config = need(i, "versioningConfiguration", "s3 BucketVersioning", name)
    status = config.get("status")
    if status not in ("Enabled", "Suspended", "Disabled"):
        raise EngineError(f"s3 BucketVersioning '{name}': status must be Enabled, Suspended or Disabled, got {status}")
    mfa_delete = config.get("mfaDelete")
    if mfa_delete not in (None, "Enabled", "Disabled"):
        raise EngineError(f"s3 BucketVersioning '{name}': mfaDelete must be Enabled or Disabled, got {mfa_delete}")
    if mfa_delete == "Enabled" and not i.get("mfa"):
        raise EngineError(f"s3 BucketVersioning '{name}': InvalidRequest: mfaDelete Enabled needs mfa "
                          "(the root user's device serial and code)")
    if status != "Disabled":
        aws.client("s3").put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": status})
    return bucket, {}


LIFECYCLE_RULES_MAX = 1000


def check_lifecycle_rule(rule: dict[str, Any]) -> str | None:
    """Why S3 would refuse one lifecycle rule, or None (moto stores zero or negative days,
    an expiration with both days and a date, a rule with no action). From the S3 API
    reference, `LifecycleRule` and its `LifecycleExpiration`, `NoncurrentVersionExpiration`
    and `AbortIncompleteMultipartUpload`."""
    rule_id = str(rule.get("id") or "")
    if not rule_id or len(rule_id) > 255:
        return f"id {rule_id!r} must be 1 to 255 characters"
    if rule.get("status") not in ("Enabled", "Disabled"):
        return f"rule {rule_id}: status must be Enabled or Disabled, got {rule.get('status')}"
    actions = ("expiration", "noncurrentVersionExpiration", "abortIncompleteMultipartUpload")
    if not any(rule.get(a) for a in actions):
        return f"rule {rule_id}: has no action (expiration, noncurrent version expiration or abort)"
    tagged = bool((rule.get("filter") or {}).get("tag") or ((rule.get("filter") or {}).get("and") or {}).get("tags"))
    expiration = rule.get("expiration") or {}
    if expiration:
        given = [k for k in ("days", "date", "expiredObjectDeleteMarker")
                 if expiration.get(k) is not None and expiration.get(k) is not False and expiration.get(k) != ""]
        if len(given) != 1:
            return f"rule {rule_id}: expiration takes exactly one of days, date or expiredObjectDeleteMarker"
        if expiration.get("days") is not None and as_int(expiration["days"]) < 1:
            return f"rule {rule_id}: expiration days {as_int(expiration['days'])} must be a positive whole number"
        if expiration.get("expiredObjectDeleteMarker") and tagged:
            return f"rule {rule_id}: expiredObjectDeleteMarker cannot be used with a tag filter"
    noncurrent = rule.get("noncurrentVersionExpiration") or {}
    if noncurrent:
        if noncurrent.get("noncurrentDays") is None or as_int(noncurrent["noncurrentDays"]) < 1:
            return f"rule {rule_id}: noncurrentVersionExpiration noncurrentDays must be a positive whole number"
        newer = noncurrent.get("newerNoncurrentVersions")
        if newer is not None and not 1 <= as_int(newer) <= 100:
            return f"rule {rule_id}: newerNoncurrentVersions must be 1 to 100"
    abort = rule.get("abortIncompleteMultipartUpload") or {}
    if abort:
        if abort.get("daysAfterInitiation") is None or as_int(abort["daysAfterInitiation"]) < 1:
            return f"rule {rule_id}: abortIncompleteMultipartUpload daysAfterInitiation must be a positive number"
        if tagged:
            return f"rule {rule_id}: abortIncompleteMultipartUpload cannot be used with a tag filter"
    return None


@handles("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
def _bucket_lifecycle(aws: AwsBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    """Each rule is checked first (`check_lifecycle_rule`): moto stores what S3 refuses."""
    bucket = _existing_bucket(aws, "s3 BucketLifecycleConfiguration", name, i)
    given = i.get("rules") or []
    if not 1 <= len(given) <= LIFECYCLE_RULES_MAX:
        raise EngineError(f"s3 BucketLifecycleConfiguration '{name}': 1 to {LIFECYCLE_RULES_MAX} rules, "
                          f"got {len(given)}")
    ids = [str(rule.get("id") or "") for rule in given]
    if len(set(ids)) != len(ids):
        raise EngineError(f"s3 BucketLifecycleConfiguration '{name}': InvalidArgument: rule ids must be unique")
    rules = []
    for rule in given:
        if rule.get("transitions") or rule.get("noncurrentVersionTransitions"):
            raise UnsupportedByEngine(f"s3 BucketLifecycleConfiguration '{name}': storage class transitions "
                                      "are not modelled")
        problem = check_lifecycle_rule(rule)
        if problem:
            raise EngineError(f"s3 BucketLifecycleConfiguration '{name}': InvalidArgument: {problem}")
        entry: dict[str, Any] = {"ID": rule["id"], "Status": rule["status"],
                                 "Filter": {"Prefix": (rule.get("filter") or {}).get("prefix", "")}}
        expiration = rule.get("expiration") or {}
        if expiration.get("days") is not None:
            entry["Expiration"] = {"Days": as_int(expiration["days"])}
        elif expiration.get("date"):
            entry["Expiration"] = {"Date": expiration["date"]}
        elif expiration.get("expiredObjectDeleteMarker"):
            entry["Expiration"] = {"ExpiredObjectDeleteMarker": True}
        noncurrent = rule.get("noncurrentVersionExpiration") or {}
        if noncurrent:
            entry["NoncurrentVersionExpiration"] = {"NoncurrentDays": as_int(noncurrent["noncurrentDays"]),
                                                    **({"NewerNoncurrentVersions": as_int(
                                                        noncurrent["newerNoncurrentVersions"])}
                                                       if noncurrent.get("newerNoncurrentVersions") else {})}
        abort = rule.get("abortIncompleteMultipartUpload") or {}
        if abort:
            entry["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": as_int(abort["daysAfterInitiation"])}
        rules.append(entry)
    aws.client("s3").put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": rules})
    return bucket, {}


@handles("aws:s3/bucketObjectv2:BucketObjectv2")
def _bucket_object(aws: AwsBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    """An object from inline `content` (a `source` file or asset is not modelled), with the
    encryption it asks for: S3 refuses a KMS key id without aws:kms, and a key that does not exist."""
    bucket = _existing_bucket(aws, "s3 BucketObjectv2", name, i)
    key = need(i, "key", "s3 BucketObjectv2", name)
    if i.get("source") is not None or i.get("contentBase64") is not None:
        raise UnsupportedByEngine(f"s3 BucketObjectv2 '{name}': only inline content is modelled")
    kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key, "Body": str(i.get("content") or "").encode()}
    if i.get("contentType"):
        kwargs["ContentType"] = i["contentType"]
    sse = i.get("serverSideEncryption")
    if i.get("kmsKeyId"):
        if sse not in ("aws:kms", "aws:kms:dsse"):
            raise EngineError(f"s3 BucketObjectv2 '{name}': InvalidArgument: kmsKeyId needs serverSideEncryption "
                              f"aws:kms, got {sse}")
        aws.client("kms").describe_key(KeyId=i["kmsKeyId"])
        kwargs["SSEKMSKeyId"] = i["kmsKeyId"]
    if sse:
        kwargs["ServerSideEncryption"] = sse
    if i.get("bucketKeyEnabled"):
        kwargs["BucketKeyEnabled"] = True
    # Judged by the bucket's policy as the deploying principal over TLS (moto alone cannot
    # evaluate its conditions, and would refuse every caller).
    with judged_as(aws.client("sts").get_caller_identity()["Arn"]):
        out = aws.client("s3").put_object(**kwargs)
    return key, {"bucket": bucket, "key": key, "etag": str(out.get("ETag", "")).strip('"'),
                 "versionId": out.get("VersionId", ""), "serverSideEncryption": sse or "",
                 "kmsKeyId": i.get("kmsKeyId", ""), "contentType": i.get("contentType", ""), **tags_all(i)}


# ---------------------------------------------------------------- ecr

@handles("aws:ecr/repository:Repository")
def _ecr_repository(aws: AwsBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    """A private repository. moto checks the name and the tag mutability; the handler checks
    the encryption as `CreateRepository` does (moto stores any key): `AES256` or `KMS`
    (`KMS_DSSE` only in GovCloud), a key only with `KMS`, and a key that exists (ECR calls
    `DescribeKey` on it before it creates its grants)."""
    repository = need(i, "name", "ecr Repository", name)
    kwargs: dict[str, Any] = {"repositoryName": repository}
    if i.get("imageTagMutability"):
        kwargs["imageTagMutability"] = i["imageTagMutability"]
    scanning = i.get("imageScanningConfiguration") or {}
    kwargs["imageScanningConfiguration"] = {"scanOnPush": bool(scanning.get("scanOnPush", False))}
    encryption = as_list(i.get("encryptionConfigurations"))
    if len(encryption) > 1:
        raise EngineError(f"ecr Repository '{name}': at most one encryptionConfiguration")
    if encryption:
        kind, key = encryption[0].get("encryptionType", "AES256"), encryption[0].get("kmsKey")
        if kind not in ("AES256", "KMS"):
            raise EngineError(f"ecr Repository '{name}': InvalidParameterException: encryptionType must be AES256 "
                              f"or KMS, got {kind}")
        if key and kind != "KMS":
            raise EngineError(f"ecr Repository '{name}': InvalidParameterException: a kmsKey needs encryptionType KMS")
        config: dict[str, Any] = {"encryptionType": kind}
        if key:
            key_arn = aws.client("kms").describe_key(KeyId=key)["KeyMetadata"]["Arn"]
            config["kmsKey"] = key_arn
        kwargs["encryptionConfiguration"] = config
    if i.get("tags"):
        kwargs["tags"] = [{"Key": k, "Value": v} for k, v in i["tags"].items()]
    out = aws.client("ecr").create_repository(**kwargs)["repository"]
    return repository, {"name": repository, "arn": out["repositoryArn"], "registryId": out["registryId"],
                        "repositoryUrl": out["repositoryUri"], **tags_all(i)}


@handles("aws:ecr/lifecyclePolicy:LifecyclePolicy")
def _ecr_lifecycle_policy(aws: AwsBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    """The repository exists; moto validates the policy's rules as ECR does."""
    repository = need(i, "repository", "ecr LifecyclePolicy", name)
    document = need(i, "policy", "ecr LifecyclePolicy", name)
    text = document if isinstance(document, str) else json.dumps(document)
    out = aws.client("ecr").put_lifecycle_policy(repositoryName=repository, lifecyclePolicyText=text)
    return repository, {"registryId": out["registryId"]}


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


# ---------------------------------------------------------------- efs

EFS_THROUGHPUT_MODES = ("bursting", "provisioned", "elastic")
EFS_PERFORMANCE_MODES = ("generalPurpose", "maxIO")
EFS_MOUNT_TARGET_GROUPS = 5
"""At most 5 security groups on a mount target (AWS: CreateMountTarget, SecurityGroups)."""


def check_file_system(i: dict[str, Any]) -> str | None:
    """Why EFS would refuse these file system settings, or None (moto checks only kmsKeyId
    without encrypted). Pure."""
    throughput = i.get("throughputMode", "bursting")
    performance = i.get("performanceMode", "generalPurpose")
    if throughput not in EFS_THROUGHPUT_MODES:
        return f"throughputMode must be one of {', '.join(EFS_THROUGHPUT_MODES)}, got {throughput!r}"
    if performance not in EFS_PERFORMANCE_MODES:
        return f"performanceMode must be generalPurpose or maxIO, got {performance!r}"
    if throughput == "elastic" and performance != "generalPurpose":
        return "elastic throughput needs performanceMode generalPurpose"
    if (throughput == "provisioned") != (i.get("provisionedThroughputInMibps") is not None):
        return "provisionedThroughputInMibps is given with, and only with, throughputMode provisioned"
    if i.get("kmsKeyId") and not _truthy(i.get("encrypted")):
        return "kmsKeyId needs encrypted: true"
    return None


def _efs_model(aws: AwsBackend, file_system_id: str) -> Any:
    from moto.efs.models import efs_backends

    return efs_backends[aws.account][aws.region].file_systems_by_id[file_system_id]


def _existing_file_system(aws: AwsBackend, type_: str, name: str, i: dict[str, Any]) -> dict[str, Any]:
    fsid = need(i, "fileSystemId", type_, name)
    return dict(aws.client("efs").describe_file_systems(FileSystemId=fsid)["FileSystems"][0])


@handles("aws:efs/fileSystem:FileSystem")
def _file_system(aws: AwsBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    problem = check_file_system(i)
    if problem:
        raise EngineError(f"efs FileSystem '{name}': BadRequest: {problem}")
    kwargs: dict[str, Any] = {"CreationToken": i.get("creationToken") or f"{name}-{abs(hash(name)) % 10**7:07d}",
                              "PerformanceMode": i.get("performanceMode", "generalPurpose"),
                              "ThroughputMode": i.get("throughputMode", "bursting"),
                              "Encrypted": _truthy(i.get("encrypted"))}
    if i.get("kmsKeyId"):
        # moto does not look the key up; EFS refuses a key that does not exist or is not symmetric.
        key = aws.client("kms").describe_key(KeyId=i["kmsKeyId"])["KeyMetadata"]
        if key.get("KeySpec", "SYMMETRIC_DEFAULT") != "SYMMETRIC_DEFAULT" or key.get("KeyState") != "Enabled":
            raise EngineError(f"efs FileSystem '{name}': EFS takes only enabled symmetric KMS keys, "
                              f"got {key.get('KeySpec')} ({key.get('KeyState')})")
        kwargs["KmsKeyId"] = i["kmsKeyId"]
    if i.get("provisionedThroughputInMibps") is not None:
        kwargs["ProvisionedThroughputInMibps"] = float(i["provisionedThroughputInMibps"])
    if i.get("tags"):
        kwargs["Tags"] = [{"Key": k, "Value": v} for k, v in i["tags"].items()]
    efs = aws.client("efs")
    fs = efs.create_file_system(**kwargs)
    fsid = fs["FileSystemId"]
    policies = as_list(i.get("lifecyclePolicies"))
    if policies:
        efs.put_lifecycle_configuration(FileSystemId=fsid, LifecyclePolicies=[
            {k[0].upper() + k[1:]: v for k, v in policy.items()} for policy in policies])
    return fsid, {"arn": fs["FileSystemArn"], "dnsName": f"{fsid}.efs.{aws.region}.amazonaws.com",
                  "creationToken": kwargs["CreationToken"], "encrypted": kwargs["Encrypted"],
                  "kmsKeyId": i.get("kmsKeyId", ""), "ownerId": aws.account,
                  "performanceMode": kwargs["PerformanceMode"], "throughputMode": kwargs["ThroughputMode"],
                  "numberOfMountTargets": 0, **tags_all(i)}


@handles("aws:efs/backupPolicy:BackupPolicy")
def _efs_backup_policy(aws: AwsBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    """moto has no PutBackupPolicy: the handler checks the status and sets the file system's
    backup flag in moto's model, so DescribeBackupPolicy answers as EFS would."""
    fs = _existing_file_system(aws, "efs BackupPolicy", name, i)
    status = (i.get("backupPolicy") or {}).get("status")
    if status not in ("ENABLED", "DISABLED"):
        raise EngineError(f"efs BackupPolicy '{name}': ValidationException: status must be ENABLED or DISABLED, "
                          f"got {status!r}")
    _efs_model(aws, fs["FileSystemId"])._backup = status == "ENABLED"
    return fs["FileSystemId"], {}


@handles("aws:efs/mountTarget:MountTarget")
def _mount_target(aws: AwsBackend, name: str, i: dict[str, Any]) -> tuple[str, Outputs]:
    """moto keeps one mount target per zone and one VPC per file system; the handler adds that
    the groups (1 to 5) are in the subnet's VPC, which moto does not check."""
    fs = _existing_file_system(aws, "efs MountTarget", name, i)
    subnet_id = need(i, "subnetId", "efs MountTarget", name)
    groups = [str(g) for g in as_list(i.get("securityGroups"))]
    if not 1 <= len(groups) <= EFS_MOUNT_TARGET_GROUPS:
        raise EngineError(f"efs MountTarget '{name}': give 1 to {EFS_MOUNT_TARGET_GROUPS} security groups, "
                          f"got {len(groups)} (none means the VPC's default group)")
    subnet = aws.ec2.describe_subnets(SubnetIds=[subnet_id])["Subnets"][0]
    for group in aws.ec2.describe_security_groups(GroupIds=groups)["SecurityGroups"]:
        if group["VpcId"] != subnet["VpcId"]:
            raise EngineError(f"efs MountTarget '{name}': SecurityGroupNotFound: {group['GroupId']} is in "
                              f"{group['VpcId']}, the subnet in {subnet['VpcId']}")
    kwargs: dict[str, Any] = {"FileSystemId": fs["FileSystemId"], "SubnetId": subnet_id, "SecurityGroups": groups}
    if i.get("ipAddress"):
        kwargs["IpAddress"] = i["ipAddress"]
    target = aws.client("efs").create_mount_target(**kwargs)
    zone = target["AvailabilityZoneName"]
    return target["MountTargetId"], {
        "availabilityZoneName": zone, "availabilityZoneId": target.get("AvailabilityZoneId", ""),
        "ipAddress": target["IpAddress"], "networkInterfaceId": target["NetworkInterfaceId"],
        "fileSystemArn": fs["FileSystemArn"], "ownerId": aws.account,
        "dnsName": f"{fs['FileSystemId']}.efs.{aws.region}.amazonaws.com",
        "mountTargetDnsName": f"{zone}.{fs['FileSystemId']}.efs.{aws.region}.amazonaws.com"}
